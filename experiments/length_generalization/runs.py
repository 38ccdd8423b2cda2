"""Train and evaluate transformer variants on one algorithmic task: one vmapped sweep per call.

One run (`run`), from its key k -> (k_init, k_data, k_eval):

    train   `steps` Adam steps (global-norm clip). Step t draws one length n ~ U{1..N} (one per
            sequence when mix_lengths) and B samples of that length, laid out by algorithmic.layout
            (the encoder reads answer j at slot n + j, the causal decoder at n - 1 + j), with
            positions p = positional.positions(pe, k_p, n + m, T, batch=B, randomized=r).
            loss = mean over the batch of  sum_j y_mask_j * CE(logits[read_j], y_j).
            The batch is built at the smallest training-length bucket L >= n (theory/engine/buckets.py),
            T = seq_len(task, L), masked beyond n exactly as padding to N would be: the same loss
            and gradient as pad-to-max (tests/test_buckets.py), at a fraction of its compute, and
            the whole run is still ONE compiled program (one lax.switch branch per bucket).
    eval    each test length n at a static length S >= n (`eval_shapes`: the training range at
            N, longer lengths within 2x), masked beyond n as in training, `eval_batch` fresh
            sequences, each with its own positions (randomized runs draw new subsets at test time
            too); accuracy(n) = mean over sequences of the masked fraction of answer slots whose
            argmax class is right. A handful of shapes instead of one per length: the evaluation
            program compiles one body per shape.

The step lengths come from the sweep's `schedule` stream, shared by all its runs: step t's length
is drawn from fold_in(schedule, t), and run r's data for the step from its own k_data and that
step key (buckets.run_step_key). A bucket switch whose index differed across vmapped runs would
execute every bucket (theory/engine/buckets.py, "vmap"); the shared lengths keep it one branch.
`schedule` is an unbatched input of the sweep (`sweep(..., shared=...)`), not a constant of the
program: another base seed runs the same compiled program.

The runs are vmapped in sweeps of `sweep_chunk` runs (the same compiled program; the same numbers
as one vmap to float rounding), the sweeps run at once on host threads (`engine.sweep.at_once`:
as many as the usable cores, $SANDBOX_THREADS=1 runs them in turn, with the same numbers). On the
2-core CPU this was developed on, the training steps of two vmapped runs of the quick model took
1.5x as long as the same two runs in sequence (59 vs 39 ms per pair of steps, 4 buckets, measured
in one process), while two runs on two threads use both cores (ARCHITECTURE.md, "Using both
cores"), so the default is 1; 0 vmaps every run at once and shards them over the devices (a GPU or
several hosts).

A variant is (randomized, causal, gain): traced values, so the variants of one encoding family
share one compiled sweep. Seeds are paired: variant v of seed s uses run key s of the caller's
stream for every v (the same init and the same training data).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from theory.engine import buckets as length_buckets
from theory.engine.keys import data_key
from theory.engine.sweep import at_once, default_devices, sweep
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
    buckets: tuple[int, ...]          # training-length buckets, ending at train_max_len; (N,) = pad to N


def sequences(task: algorithmic.Task, key: jax.Array, n, N: int, causal, B: int):
    """B samples of length n (a scalar or (B,)) padded to N, and their layouts (leaves (B, ...))."""
    n_b = jnp.broadcast_to(jnp.asarray(n, jnp.int32), (B,))                       # (B,)
    s = jax.vmap(lambda k, m: task.sample(k, m, N))(jax.random.split(key, B), n_b)
    lay = jax.vmap(lambda si: algorithmic.layout(task, si, N, causal))(s)
    return s, lay


def per_sequence(params, mcfg, s, lay, pos, causal, gain):
    """(loss, accuracy) per sequence (B,): CE summed over answer slots, masked per-slot accuracy."""
    def one(si, li, pi):
        out, _ = transformer.forward(params, li.tokens, pi, li.pad_mask, mcfg, causal, gain, read=li.read)  # (M, C)
        logp = jax.nn.log_softmax(out, axis=-1)                        # (M, C)
        # -logp[y] as a one-hot product (exact; its gradient is no scatter)
        nll = -jnp.sum(logp * jax.nn.one_hot(si.y, out.shape[-1], dtype=logp.dtype), axis=-1)   # (M,)
        w = si.y_mask.astype(out.dtype)                                # (M,)
        hit = (jnp.argmax(out, axis=-1) == si.y).astype(out.dtype)     # (M,)
        return jnp.sum(nll * w), jnp.sum(hit * w) / jnp.sum(w)
    return jax.vmap(one)(s, lay, pos)


def make_batch(n, key, L: int, *, spec: RunSpec, randomized, causal):
    """The step's B sequences of real length n (traced) built at the static length L >= n:
    (samples, layouts, positions (B, T_L)), T_L = seq_len(task, L)."""
    task, B = algorithmic.get(spec.task), spec.batch
    k_s, k_p = jax.random.split(data_key(key))           # the key's own threefry numbers, drawn fused
    s, lay = sequences(task, k_s, n, L, causal, B)
    pos = positional.positions(spec.model.pe, k_p, lay.n_tokens, algorithmic.seq_len(task, L), batch=B,
                               randomized=randomized)                              # (B, T_L)
    return s, lay, pos


def mean_loss(params, batch, *, spec: RunSpec, causal, gain):
    """The training loss of a batch: mean over sequences of the summed answer-slot cross-entropy."""
    s, lay, pos = batch
    loss, _ = per_sequence(params, spec.model, s, lay, pos, causal, gain)         # (B,)
    return jnp.mean(loss)


def batch_loss(params, n, key, L: int, *, spec: RunSpec, randomized, causal, gain):
    """Mean loss of the step's sequences of real length n, built at the static length L >= n."""
    batch = make_batch(n, key, L, spec=spec, randomized=randomized, causal=causal)
    return mean_loss(params, batch, spec=spec, causal=causal, gain=gain)


class Training(NamedTuple):
    """What `train` is called with for one run (and what the bench times)."""
    schedule: jax.Array              # (2,) the sweep's shared step key: step t uses fold_in(schedule, t)
    params: transformer.TransformerParams
    loss_fn: Callable
    sample_batch: Callable           # step key -> (length n, this run's data key)
    optimizer: optax.GradientTransformation
    grad_fn: Callable                # bucketed value_and_grad (theory/engine/buckets.py)


def training(key, randomized, causal, gain, *, spec: RunSpec, schedule) -> Training:
    """The training problem of one run from its key (k_init, k_data, k_eval = split(key, 3)) and
    the sweep's shared step-length key `schedule` (2,): a traced input, the same in every run."""
    N, B = spec.train_max_len, spec.batch
    k_init, k_data, _ = jax.random.split(key, 3)

    def sample_batch(k_step):                                   # k_step = fold_in(schedule, t)
        n = jax.random.randint(k_step, (B,) if spec.mix_lengths else (), 1, N + 1)   # lengths of this step
        return n, length_buckets.run_step_key(k_data, k_step)  # this run's data for the step

    loss_at = functools.partial(batch_loss, spec=spec, randomized=randomized, causal=causal, gain=gain)
    return Training(schedule, transformer.init(k_init, spec.model), length_buckets.loss(loss_at, spec.buckets),
                    sample_batch, optimizer(spec), length_buckets.value_and_grad(loss_at, spec.buckets))


def optimizer(spec: RunSpec) -> optax.GradientTransformation:
    """Adam with global-norm clipping (Ruoss et al. 2023's recipe) at the spec's learning rate."""
    return make_optimizer(OptimizerConfig("adam", clip=spec.clip), spec.lr, spec.steps)


def train_run(key, randomized, causal, gain, *, spec: RunSpec, schedule, run_id=0, progress=None):
    """Train one model from `key` and the shared step-length key (the training half of `run`):
    (params, trace)."""
    t = training(key, randomized, causal, gain, spec=spec, schedule=schedule)
    return train(t.schedule, t.params, t.loss_fn, t.sample_batch, t.optimizer, grad_fn=t.grad_fn,
                 steps=spec.steps, log_every=spec.log_every, progress=progress, run_id=run_id)


def eval_shapes(lengths, N: int) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """The test lengths grouped by the static length S they are evaluated at: every length <= N at
    N (the training range), and beyond N, from the longest down, a shape m holds the lengths in
    (m/2, m] (at most twice the tokens of the exact length). ((S, lengths), ...), shortest S first.

        eval_shapes((5, 10, 20, 40, 60, 80, 100, 150, 200), 40)
        -> ((40, (5, 10, 20, 40)), (100, (60, 80, 100)), (200, (150, 200)))"""
    inside = tuple(sorted(n for n in set(lengths) if n <= N))
    groups, rest = [], sorted((n for n in set(lengths) if n > N), reverse=True)
    while rest:
        m = rest[0]
        groups.append((m, tuple(sorted(n for n in rest if 2 * n > m))))
        rest = [n for n in rest if 2 * n <= m]
    return ((N, inside),) * bool(inside) + tuple(reversed(groups))


def evaluate(params, k_eval, randomized, causal, gain, *, spec: RunSpec) -> jax.Array:
    """Accuracy at every test length (E,) (module docstring, "eval"): length n at its static shape S
    (`eval_shapes`), the lengths of one shape in one `lax.map` (one compiled body per shape); the
    sequences of length n equal the exact-length ones on their real slots (the samplers are
    prefix-consistent, theory/engine/buckets.py) and the slots beyond n are masked, so the numbers
    are those of an exact-length evaluation up to float rounding."""
    task, mcfg = algorithmic.get(spec.task), spec.model

    def eval_length(n, S: int):
        T_S = algorithmic.seq_len(task, S)

        def eval_one(k1):
            k_s, k_p = jax.random.split(data_key(k1))
            s, lay = sequences(task, k_s, n, S, causal, 1)
            pos = positional.positions(mcfg.pe, k_p, lay.n_tokens[0], T_S, randomized=randomized)  # (T_S,)
            _, acc = per_sequence(params, mcfg, s, lay, pos[None, :], causal, gain)   # (1,)
            return acc[0]
        keys = jax.random.split(jax.random.fold_in(k_eval, n), spec.eval_batch)       # (eval_batch, 2)
        return jnp.mean(jax.lax.map(eval_one, keys, batch_size=spec.eval_chunk))

    acc = {}
    for S, ns in eval_shapes(spec.eval_lengths, spec.train_max_len):
        a = jax.lax.map(lambda n, S=S: eval_length(n, S), jnp.asarray(ns, jnp.int32))  # (len(ns),)
        acc.update({n: a[i] for i, n in enumerate(ns)})
    return jnp.stack([acc[n] for n in spec.eval_lengths])                              # (E,)


def run(key, randomized, causal, gain, *, spec: RunSpec, schedule, run_id=0, progress=None):
    """Train one model from `key` and the shared step-length key `schedule`; (accuracy per eval
    length (E,), loss trace, first bad step)."""
    _, _, k_eval = jax.random.split(key, 3)
    params, trace = train_run(key, randomized, causal, gain, spec=spec, schedule=schedule, run_id=run_id,
                              progress=progress)
    acc = evaluate(params, k_eval, randomized, causal, gain, spec=spec)                # (E,)
    return acc, trace.loss, trace.first_bad_step


def spec_for(cfg, task: str, kind: str, steps: int, eval_lengths,
             eval_batch: int | None = None, batch: int | None = None) -> RunSpec:
    """The RunSpec of one sweep of `cfg`: model, training budget and buckets (the shared length
    stream is an input of the program, not part of its spec: another seed compiles nothing)."""
    return RunSpec(task=task, model=cfg.model(algorithmic.get(task), kind),
                   train_max_len=cfg.train_max_len, steps=steps, batch=batch or cfg.batch, lr=cfg.lr,
                   clip=cfg.clip, eval_lengths=tuple(eval_lengths),
                   eval_batch=eval_batch or cfg.eval_batch, eval_chunk=cfg.eval_chunk,
                   log_every=cfg.log_every, mix_lengths=cfg.mix_lengths, buckets=cfg.buckets)


def train_and_eval(cfg, task: str, kind: str, variants, run_keys: jax.Array, steps: int,
                   eval_lengths, schedule_key: jax.Array, progress: str | None = None,
                   eval_batch: int | None = None, batch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sweep variants x seeds (run_keys (S, 2), paired over variants) of encoding family `kind`;
    the step lengths of every run come from `schedule_key` (see the module docstring).

    Returns acc (V, S, E) and the loss traces (V, S, steps / log_every)."""
    V, S = len(variants), run_keys.shape[0]
    keys = jnp.tile(run_keys, (V, 1))                                              # (V*S, 2)
    rand = np.repeat([v.randomized for v in variants], S)                          # (V*S,)
    causal = np.repeat([v.causal for v in variants], S)                            # (V*S,)
    gain = np.repeat([v.gain for v in variants], S).astype(np.float32)             # (V*S,)
    spec = spec_for(cfg, task, kind, steps, eval_lengths, eval_batch, batch)
    shared = {"schedule": jnp.asarray(schedule_key)}                               # (2,) unbatched
    fn = functools.partial(run, spec=spec, progress=progress)
    if cfg.sweep_chunk:                # sweeps of `sweep_chunk` runs (the same compiled program), on threads
        c = cfg.sweep_chunk
        outs = at_once([functools.partial(sweep, functools.partial(run, spec=spec, progress=progress if i == 0
                                                                     else None), keys[i:i + c],
                                          shard=False, shared=shared, randomized=rand[i:i + c],
                                          causal=causal[i:i + c], gain=gain[i:i + c])
                        for i in range(0, V * S, c)])
        acc, loss, bad = (np.concatenate([np.asarray(o[j]) for o in outs]) for j in range(3))
    else:                              # all runs vmapped, sharded over the most devices that divide them
        n_dev = max(d for d in range(1, default_devices() + 1) if (V * S) % d == 0)
        acc, loss, bad = sweep(fn, keys, n_devices=n_dev, shared=shared, randomized=rand, causal=causal, gain=gain)
    raise_if_diverged(Trace(None, loss, None, bad), f"length_generalization/{task}/{kind}",
                      {"variant": np.repeat([v.name for v in variants], S), "lr": cfg.lr})
    return np.asarray(acc).reshape(V, S, -1), np.asarray(loss).reshape(V, S, -1)
