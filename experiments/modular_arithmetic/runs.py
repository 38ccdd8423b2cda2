"""Training runs of `modular_arithmetic`: the quadratic MLP of d-doshi/Grokking
(Training_scripts/phase_diagrams_wd.py, utils/models.py `fcn`, utils/optimization.py), each run one
jitted loop of full-batch AdamW steps (`theory.engine.train.train`), vmapped over seeds and weight
decays by `theory.engine.sweep.sweep`.

    run key -> k_split, k_init = split(key): the train/test split of the p^2 pairs (theory/tasks/
               modular.py) and the init, every weight N(0, (0.5 / (2N)^(1/3))^2)
    loss      MSE to the one-hot label, mean over batch x p (nn.MSELoss); one step = one epoch
    optimizer AdamW lr 1e-2, betas (0.9, 0.98), eps 1e-8, decoupled weight decay wd (traced)
    log       every LOG_EVERY epochs (the grokking run; the Fourier runs log once, at the end): train and
              test accuracy

and Nanda et al. 2023's one-layer transformer (progress-measures-paper, transformers.py `Config`,
`Trainer`, `full_loss`): run key -> k_split, k_init; training fraction 0.3 of the p^2 pairs (round(0.3
p^2): 3831 at p = 113, theirs int(): 3830); init as theory/models/relu_transformer.py; AdamW lr 1e-3,
wd 1 (every parameter, biases included, as torch's AdamW over model.parameters()), betas (0.9, 0.98),
eps 1e-8, lr min((step + 1)/10, 1) x 1e-3 (theirs LambdaLR min(step/10, 1): the same ramp one step
earlier, so their step 0 does not move); full batch, one step = one epoch; a parameter snapshot every
T_LOG_EVERY epochs in the trace (the progress measures are computed from the snapshots afterwards).
Cost: only the '=' row is computed (relu_transformer.last_logits); the MLP of 3831 rows dominates.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from experiments.modular_arithmetic.config import T_LOG_EVERY
from theory.engine.sweep import sweep  # the parts train through this module only
from theory.engine.train import OptimizerConfig, make_optimizer, train
from theory.models import quadratic_mlp as qm
from theory.models import relu_transformer as rt
from theory.tasks import modular

LR = 1e-2
BETAS = (0.9, 0.98)
EPS = 1e-8
LOG_EVERY = 5


def init_std(N: int) -> float:
    """0.5 / (2N)^(1/3) (utils/models.py `fcn`: std 0.25**0.5 / (2 h)^(1/3))."""
    return 0.5 / (2 * N) ** (1 / 3)


def instance(key: jax.Array, p: int, N: int, frac: float):
    """(train pairs, test pairs, initial params) of the run with key `key`."""
    k_split, k_init = jax.random.split(key)
    train_set, test_set = modular.split(k_split, p, frac)
    return train_set, test_set, qm.init_quadratic_mlp(k_init, p, N, init_std(N))


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def instances(keys: jax.Array, p: int, N: int, frac: float):
    """`instance` for each of R keys (leaves with a leading run axis)."""
    return jax.vmap(lambda k: instance(k, p, N, frac))(keys)


def mlp_run(p: int, N: int, frac: float, epochs: int, log_every: int, progress, key, run_id, wd):
    """Full-batch AdamW on the MSE of the quadratic MLP; returns the final params, the trace
    (train/test accuracy every `log_every` epochs) and the final training loss."""
    train_set, test_set, p0 = instance(key, p, N, frac)
    opt = make_optimizer(OptimizerConfig(name="adamw", b1=BETAS[0], b2=BETAS[1], eps=EPS, weight_decay=wd),
                         LR, epochs)
    loss = lambda q, s: qm.mse_loss(q, s.a, s.b, s.c)
    log_fn = lambda q: (qm.accuracy(q, *train_set), qm.accuracy(q, *test_set))
    params, tr = train(key, p0, loss, lambda k: train_set, opt, steps=epochs, log_every=log_every,
                       log_fn=log_fn, run_id=run_id, progress=progress)
    return params, tr, loss(params, train_set)


def sweep_mlp(cfg, frac: float, epochs: int, keys: jax.Array, wds, progress, log_every: int = LOG_EVERY):
    """Every run of one (frac, epochs) setting in one vmapped sweep (one compile)."""
    run = functools.partial(mlp_run, cfg.mlp_p, cfg.mlp_width, float(frac), int(epochs), int(log_every), progress)
    return sweep(run, keys, wd=jnp.asarray(wds, dtype=jnp.result_type(float)))


# --- Part 3: Nanda et al. 2023's one-layer transformer (progress-measures-paper, transformers.py) ---
T_LR = 1e-3
T_WD = 1.0
T_BETAS = (0.9, 0.98)
T_WARMUP = 10            # LambdaLR(min(step / 10, 1)); here lr * min((step + 1) / 10, 1): one step earlier
T_FRAC = 0.3
T_SHAPE = {"d_model": 128, "n_heads": 4, "d_mlp": 512}


def transformer_instance(key: jax.Array, p: int):
    """(train pairs, test pairs, initial params) of a transformer run: inputs [a, b, =] with '=' = token p."""
    k_split, k_init = jax.random.split(key)
    train_set, test_set = modular.split(k_split, p, T_FRAC)
    params = rt.init_relu_transformer(k_init, p + 1, 3, dtype=jnp.float32, **T_SHAPE)
    return train_set, test_set, params


def transformer_run(p: int, epochs: int, progress, key, run_id):
    """Full-batch AdamW (lr 1e-3, wd 1, betas (0.9, 0.98), 10-step warm-up) on the cross-entropy of
    the last position, float32 weights and a float64 log-softmax; the trace holds a parameter snapshot
    every T_LOG_EVERY epochs."""
    train_set, _, p0 = transformer_instance(key, p)
    opt = make_optimizer(OptimizerConfig(name="adamw", b1=T_BETAS[0], b2=T_BETAS[1], eps=EPS, weight_decay=T_WD,
                                         schedule="warmup_cosine", warmup=T_WARMUP, final_lr_frac=1.0),
                         T_LR, epochs)
    loss = lambda q, s: rt.cross_entropy(rt.last_logits(q, s.a, s.b, p), s.c)
    return train(key, p0, loss, lambda k: train_set, opt, steps=epochs, log_every=T_LOG_EVERY,
                 log_fn=lambda q: q, run_id=run_id, progress=progress)


def sweep_transformer(cfg, keys: jax.Array, progress):
    """Every transformer run (one per key) in one vmapped sweep: (final params, trace with snapshots)."""
    run = functools.partial(transformer_run, int(cfg.transformer_p), int(cfg.transformer_epochs), progress)
    return sweep(run, keys)
