"""Train and evaluate transformer variants on one algorithmic task: one vmapped sweep per call.

One run (`run`), from its key k -> (k_init, k_data, k_eval):

    train   `steps` Adam steps (global-norm clip). Step t draws one length n ~ U{1..N} (one per
            sequence when mix_lengths) and B samples of that length padded to N and laid out by
            algorithmic.layout (the encoder reads answer j at slot n + j, the causal decoder at
            n - 1 + j); positions p = positional.positions(pe, k_p, n + m, T, batch=B,
            randomized=r), T = seq_len(task, N), so the whole run is ONE compiled lax.scan.
            loss = mean over the batch of  sum_j y_mask_j * CE(logits[read_j], y_j).
    eval    each test length n in its own shape T_n = seq_len(task, n) (no padding to the longest),
            `eval_batch` fresh sequences, each with its own positions (randomized runs draw new
            subsets at test time too); accuracy(n) = mean over sequences of the masked fraction of
            answer slots whose argmax class is right.

A variant is (randomized, causal, gain): traced values, so the variants of one encoding family
share one compiled sweep. Seeds are paired: variant v of seed s uses run key s of the caller's
stream for every v (the same init and the same training data).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theory.engine.sweep import sweep
from theory.engine.train import OptimizerConfig, Trace, make_optimizer, raise_if_diverged, train
from theory.models import positional, transformer
from theory.tasks import algorithmic


class Variant(NamedTuple):
    name: str
    randomized: bool     # positions = sorted random subset of {0..L-1} (train and test)
    causal: bool         # causal mask (decoder layout) or none (encoder layout)
    gain: float          # scale of the additive embedding: 0 turns sin/cos into no encoding


VARIANTS = (
    Variant("sin_cos", False, False, 1.0),              # encoder, sin/cos at 0..T-1
    Variant("randomized_sin_cos", True, False, 1.0),    # encoder, sin/cos at sorted random positions
    Variant("nope_causal", False, True, 0.0),           # causal decoder, no positional encoding
    Variant("nope_noncausal", False, False, 0.0),       # the same without the mask (the control)
)


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Everything shape-like or static of one sweep (hashable: the sweep's compile cache key)."""
    task: str
    model: transformer.TransformerConfig
    train_max_len: int
    steps: int
    batch: int
    lr: float
    clip: float
    eval_lengths: tuple[int, ...]
    eval_batch: int
    eval_chunk: int
    log_every: int
    mix_lengths: bool


def sequences(task: algorithmic.Task, key: jax.Array, n, N: int, causal, B: int):
    """B samples of length n (a scalar or (B,)) padded to N, and their layouts (leaves (B, ...))."""
    n_b = jnp.broadcast_to(jnp.asarray(n, jnp.int32), (B,))                       # (B,)
    s = jax.vmap(lambda k, m: task.sample(k, m, N))(jax.random.split(key, B), n_b)
    lay = jax.vmap(lambda si: algorithmic.layout(task, si, N, causal))(s)
    return s, lay


def per_sequence(params, mcfg, s, lay, pos, causal, gain):
    """(loss, accuracy) per sequence (B,): CE summed over answer slots, masked per-slot accuracy."""
    def one(si, li, pi):
        logits, _ = transformer.forward(params, li.tokens, pi, li.pad_mask, mcfg, causal, gain)
        out = logits[li.read]                                          # (M, C)
        logp = jax.nn.log_softmax(out, axis=-1)                        # (M, C)
        nll = -jnp.take_along_axis(logp, si.y[:, None], axis=-1)[:, 0]  # (M,)
        w = si.y_mask.astype(out.dtype)                                # (M,)
        hit = (jnp.argmax(out, axis=-1) == si.y).astype(out.dtype)     # (M,)
        return jnp.sum(nll * w), jnp.sum(hit * w) / jnp.sum(w)
    return jax.vmap(one)(s, lay, pos)


def run(key, randomized, causal, gain, *, spec: RunSpec, run_id=0, progress=None):
    """Train one model from `key`; (accuracy per eval length (E,), loss trace, first bad step)."""
    task, mcfg = algorithmic.get(spec.task), spec.model
    N, B = spec.train_max_len, spec.batch
    k_init, k_data, k_eval = jax.random.split(key, 3)
    params = transformer.init(k_init, mcfg)
    T = algorithmic.seq_len(task, N)

    def sample_batch(k):
        k_n, k_s, k_p = jax.random.split(k, 3)
        n = jax.random.randint(k_n, (B,) if spec.mix_lengths else (), 1, N + 1)   # lengths of this step
        s, lay = sequences(task, k_s, n, N, causal, B)
        pos = positional.positions(mcfg.pe, k_p, lay.n_tokens, T, batch=B, randomized=randomized)  # (B, T)
        return s, lay, pos

    def loss_fn(p, batch):
        s, lay, pos = batch
        loss, _ = per_sequence(p, mcfg, s, lay, pos, causal, gain)    # (B,)
        return jnp.mean(loss)

    opt = make_optimizer(OptimizerConfig("adam", clip=spec.clip), spec.lr, spec.steps)
    params, trace = train(k_data, params, loss_fn, sample_batch, opt, steps=spec.steps,
                          log_every=spec.log_every, progress=progress, run_id=run_id)

    def eval_length(k, n):
        T_n = algorithmic.seq_len(task, n)

        def eval_one(k1):
            k_s, k_p = jax.random.split(k1)
            s, lay = sequences(task, k_s, n, n, causal, 1)
            pos = positional.positions(mcfg.pe, k_p, lay.n_tokens[0], T_n, randomized=randomized)  # (T_n,)
            _, acc = per_sequence(params, mcfg, s, lay, pos[None, :], causal, gain)   # (1,)
            return acc[0]
        keys = jax.random.split(k, spec.eval_batch)                                   # (eval_batch, 2)
        return jnp.mean(jax.lax.map(eval_one, keys, batch_size=spec.eval_chunk))

    acc = jnp.stack([eval_length(jax.random.fold_in(k_eval, n), n) for n in spec.eval_lengths])   # (E,)
    return acc, trace.loss, trace.first_bad_step


def train_and_eval(cfg, task: str, kind: str, variants, run_keys: jax.Array, steps: int,
                   eval_lengths, progress: str | None = None, eval_batch: int | None = None,
                   batch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sweep variants x seeds (run_keys (S, 2), paired over variants) of encoding family `kind`.

    Returns acc (V, S, E) and the loss traces (V, S, steps / log_every)."""
    V, S = len(variants), run_keys.shape[0]
    keys = jnp.tile(run_keys, (V, 1))                                              # (V*S, 2)
    rand = np.repeat([v.randomized for v in variants], S)                          # (V*S,)
    causal = np.repeat([v.causal for v in variants], S)                            # (V*S,)
    gain = np.repeat([v.gain for v in variants], S).astype(np.float32)             # (V*S,)
    spec = RunSpec(task=task, model=cfg.model(algorithmic.get(task), kind),
                   train_max_len=cfg.train_max_len, steps=steps, batch=batch or cfg.batch, lr=cfg.lr,
                   clip=cfg.clip, eval_lengths=tuple(eval_lengths),
                   eval_batch=eval_batch or cfg.eval_batch, eval_chunk=cfg.eval_chunk,
                   log_every=cfg.log_every, mix_lengths=cfg.mix_lengths)
    fn = functools.partial(run, spec=spec, progress=progress)
    n_runs = V * S                     # shard over the most devices that divide the runs: no padding
    n_dev = max(d for d in range(1, len(jax.devices()) + 1) if n_runs % d == 0)
    acc, loss, bad = sweep(fn, keys, n_devices=n_dev, randomized=rand, causal=causal, gain=gain)
    raise_if_diverged(Trace(None, loss, None, bad), f"length_generalization/{task}/{kind}",
                      {"variant": np.repeat([v.name for v in variants], S), "lr": cfg.lr})
    return np.asarray(acc).reshape(V, S, -1), np.asarray(loss).reshape(V, S, -1)
