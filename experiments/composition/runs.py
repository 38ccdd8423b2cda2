"""Training runs of `composition`'s induction head: Bietti et al.'s simplified transformer
(theory/models/induction_transformer.py) on bigram sequences with triggers (theory/tasks/bigram.py),
each run one jitted loop of SGD steps (`theory.engine.train.train`), vmapped over seeds by
`theory.engine.sweep.sweep`.

    run key -> k_bigram, k_init, k_data, k_probe, k_test = split(key, 5): the run's bigram model and
               triggers, the weights, the training batches, the fixed probe batch, the test batch
    loss      cross-entropy on the targets outs >= 2 only (ihead_basic_main.py, loss_head_only)
    optimizer SGD, momentum, L2 weight decay added to the gradient (torch.optim.SGD's weight_decay)
    log       every `probe_every` steps: the three memory probes and the in-context accuracy on the
              fixed probe batch
    test      a fresh batch: in-context accuracy on the targets, the bigram-only predictor
              argmax_y P[x_t, y] on the same targets, both on the other positions, and the two
              layers' attention maps of the first test sequence, the final wk0 probe position by
              position and how often each position's previous-token memory is read on that batch
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from theory.engine.sweep import sweep
from theory.engine.train import train
from theory.models import induction_transformer as it
from theory.tasks import bigram

PROBE_BATCH = 32          # sequences of the fixed batch the in-training accuracy is read on
TEST_BATCH = 256          # sequences of the final test (~5000 targets: s.e. of an accuracy <= 0.007)
MAP_LEN = 64              # attention maps stored for the figure: the first 64 positions


def optimizer(lr: float, momentum: float, weight_decay: float) -> optax.GradientTransformation:
    """torch.optim.SGD(lr, momentum, weight_decay): g + wd w, heavy-ball trace, step -lr."""
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.trace(decay=momentum), optax.scale(-lr))


def accuracies(trained, frozen, P, s: bigram.Sample) -> dict:
    """Accuracy of the model and of the bigram-only predictor argmax_y P[x_t, y] on the targets
    (outs >= 2), pooled over positions; the bigram-only one also averaged over sequences (each
    sequence with a target weighs once, so a self-looping trigger a -> a counts once, not ~T times);
    and both on the positions that follow no trigger (outs == 0)."""
    logits = jax.vmap(lambda x: it.forward(trained, frozen, x)[0])(s.x)    # (B, T, V)
    model = jnp.argmax(logits, axis=-1) == s.y                             # (B, T)
    bigram_only = jnp.argmax(P[s.x], axis=-1) == s.y                       # (B, T)
    target, plain = s.outs >= 2, s.outs == 0
    real = jnp.result_type(float)
    frac = lambda hit, m, axis=None: (jnp.sum(hit & m, axis=axis) / jnp.maximum(jnp.sum(m, axis=axis), 1)).astype(real)
    has = jnp.any(target, axis=1)                                          # (B,)
    per_seq = jnp.sum(jnp.where(has, frac(bigram_only, target, 1), 0.0)) / jnp.maximum(jnp.sum(has), 1).astype(real)
    return {"model": frac(model, target), "bigram": frac(bigram_only, target), "bigram_per_sequence": per_seq,
            "model_plain": frac(model, plain), "bigram_plain": frac(bigram_only, plain),
            "targets": jnp.sum(target)}


def induction_run(vocab: int, seq_len: int, n_triggers: int, d: int, steps: int, batch: int, lr: float,
                  momentum: float, weight_decay: float, probe_every: int, progress, key, run_id):
    """One run: (probe trace, final test accuracies, attention maps, trained weights' probes)."""
    k_bigram, k_init, k_data, k_probe, k_test = jax.random.split(key, 5)
    model = bigram.draw_bigram(k_bigram, vocab, n_triggers)
    trained0, frozen = it.init(k_init, vocab, seq_len, d)
    probe_batch = bigram.sample_batch(k_probe, model, seq_len, PROBE_BATCH)
    loss = lambda q, s: it.head_loss(q, frozen, s.x, s.y, s.outs)
    log_fn = lambda q: {**it.probes(q, frozen, model.triggers),
                        "accuracy": accuracies(q, frozen, model.P, probe_batch)["model"]}
    trained, tr = train(k_data, trained0, loss, lambda k: bigram.sample_batch(k, model, seq_len, batch),
                        optimizer(lr, momentum, weight_decay), steps=steps, log_every=probe_every,
                        log_fn=log_fn, run_id=run_id, progress=progress)
    test = bigram.sample_batch(k_test, model, seq_len, TEST_BATCH)
    _, A1, A2 = it.forward(trained, frozen, test.x[0])
    return {"trace": tr, "test": accuracies(trained, frozen, model.P, test),
            "initial_probes": it.probes(trained0, frozen, model.triggers),
            "final_probes": it.probes(trained, frozen, model.triggers),
            "wk0_hits": it.previous_token_hits(trained, frozen), "key_uses": bigram.previous_token_uses(test),
            "maps": {"layer1": A1[:MAP_LEN, :MAP_LEN], "layer2": A2[:MAP_LEN, :MAP_LEN],
                     "x": test.x[0, :MAP_LEN], "outs": test.outs[0, :MAP_LEN]}}


def sweep_induction(cfg, keys: jax.Array, progress):
    """Every seed of the induction head in one vmapped sweep (one compile)."""
    run = functools.partial(induction_run, cfg.vocab, cfg.seq_len, cfg.n_triggers, cfg.d_model, cfg.steps,
                            cfg.batch, float(cfg.lr), float(cfg.momentum), float(cfg.weight_decay),
                            cfg.probe_every, progress)
    return sweep(run, keys)
