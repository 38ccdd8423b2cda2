"""The one training engine: a run is one loop of optimiser steps inside a jitted program.

    params, trace = train(key, params0, loss_fn, sample_batch, optimizer, steps=..., log_every=...)

* `loss_fn(params, batch) -> scalar` and `sample_batch(key) -> batch` are pure; step k draws its
  batch from `fold_in(key, k)`, so a run's data do not depend on how it is batched into a sweep
  or split into segments.
* The state of a run after k steps is a `TrainState` (params, optimiser state, divergence record,
  trace buffers): one `lax.fori_loop` body maps it to the state after k + 1 steps. At each log
  point (every `log_every` steps) the trace records the mean training loss of the chunk and
  `log_fn(params)` (any pytree: weight snapshots, eval metrics).
* Inside a sweep the driver (`theory.engine.sweep`) runs the same body over segments of steps,
  [0, k1), [k1, k2), ...: the host regains control between segments (Ctrl-C, checkpoints,
  progress) while every step stays inside compiled code. The segment bounds are traced, so every
  segment runs the same compiled program.
* No per-step host syncs. Divergence, a non-finite loss or a loss above `blowup` times the loss at
  step 0 (Adam at a huge learning rate explodes to ~1e10 and wanders back without ever producing a
  NaN), is recorded as `first_bad_step` inside the loop; `raise_if_diverged` reports it on the host
  after the run, naming run, step and hyperparameters.
* Everything is traceable in the value hyperparameters (`lr` may be a traced scalar), so seeds and
  learning rates go through `jax.vmap` (see `theory.engine.sweep`).
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import sys
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from theory.errors import DivergenceError, SandboxError

PyTree = Any


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    name: str = "adam"           # adam | adamw | sgd | gd | normalized_gd
    b1: float = 0.9              # Adam first-moment decay (sgd: momentum, 0 = none)
    b2: float = 0.999            # Adam second-moment decay
    eps: float = 1e-8            # Adam epsilon
    weight_decay: float = 0.0    # decoupled weight decay (adamw)
    clip: float = 0.0            # clip_by_global_norm threshold; 0 = no clipping
    schedule: str = "constant"   # constant | cosine | warmup_cosine
    warmup: int = 0              # warm-up steps for warmup_cosine
    final_lr_frac: float = 0.0   # cosine schedules decay to lr * final_lr_frac


OPTIMIZERS = ("adam", "adamw", "sgd", "gd", "normalized_gd")
SCHEDULES = ("constant", "cosine", "warmup_cosine")


def normalize_by_global_norm(eps: float = 0.0) -> optax.GradientTransformation:
    """g -> g / ||g||_F (global norm over the pytree), the update of normalized GD.

    The gradient is first rescaled by its largest entry so the norm cannot underflow
    when every entry is tiny (entries below ~1e-154 square to zero in float64).
    """

    def update(grads, state, params=None):
        del params
        leaves = jax.tree_util.tree_leaves(grads)
        scale = jnp.max(jnp.stack([jnp.max(jnp.abs(g)) for g in leaves]))
        safe = jnp.where(scale > 0, scale, 1.0)
        scaled = jax.tree_util.tree_map(lambda g: g / safe, grads)
        norm = optax.tree.norm(scaled)
        denom = jnp.where(norm > 0, norm, 1.0) + eps
        return jax.tree_util.tree_map(lambda g: g / denom, scaled), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def make_schedule(cfg: OptimizerConfig, lr, steps: int):
    """Learning-rate schedule; `lr` may be a traced scalar (vmapped sweeps)."""
    if cfg.schedule == "constant":
        return lambda count: lr * jnp.ones_like(count, dtype=jnp.result_type(float))
    if cfg.schedule in ("cosine", "warmup_cosine"):
        warm = cfg.warmup if cfg.schedule == "warmup_cosine" else 0

        def sched(count):
            c = count.astype(jnp.result_type(float))
            frac = jnp.clip((c - warm) / max(steps - warm, 1), 0.0, 1.0)
            cos = cfg.final_lr_frac + (1 - cfg.final_lr_frac) * 0.5 * (1 + jnp.cos(jnp.pi * frac))
            ramp = jnp.minimum(1.0, (c + 1) / warm) if warm > 0 else 1.0
            return lr * ramp * cos

        return sched
    raise SandboxError(f"unknown schedule {cfg.schedule!r}; choose from {SCHEDULES}")


def make_optimizer(cfg: OptimizerConfig, lr, steps: int) -> optax.GradientTransformation:
    """Build the optax transformation named by `cfg` with (possibly traced) learning rate `lr`."""
    if cfg.name not in OPTIMIZERS:
        raise SandboxError(f"unknown optimizer {cfg.name!r}; choose from {OPTIMIZERS}")
    sched = make_schedule(cfg, lr, steps)
    parts = [optax.clip_by_global_norm(cfg.clip)] if cfg.clip > 0 else []
    if cfg.name == "adam":
        parts.append(optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2, eps=cfg.eps))
    elif cfg.name == "adamw":
        parts.append(optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2, eps=cfg.eps))
        parts.append(optax.add_decayed_weights(cfg.weight_decay))
    elif cfg.name == "sgd" and cfg.b1 > 0:
        parts.append(optax.trace(decay=cfg.b1))
    elif cfg.name == "normalized_gd":
        parts.append(normalize_by_global_norm())
    parts.append(optax.scale_by_schedule(lambda count: -sched(count)))
    return _standard_promotion(optax.chain(*parts))


def _standard_promotion(tx: optax.GradientTransformation) -> optax.GradientTransformation:
    """Trace optax's internals under JAX's standard dtype promotion.

    The tests run with strict promotion so that our own code never mixes dtypes silently; optax's
    Adam bias correction (b ** count with an int32 count) needs the standard rules. The relaxation is
    scoped to the optimiser's own trace.
    """
    def init(params):
        with jax.numpy_dtype_promotion("standard"):
            return tx.init(params)

    def update(updates, state, params=None):
        with jax.numpy_dtype_promotion("standard"):
            return tx.update(updates, state, params)

    return optax.GradientTransformation(init, update)


class Trace(NamedTuple):
    step: jax.Array            # (n_logs,) step index at the end of each logged chunk
    loss: jax.Array            # (n_logs,) mean training loss over the chunk
    logged: PyTree             # log_fn(params) at each log point, leaves (n_logs, ...)
    first_bad_step: jax.Array  # () first step with a non-finite loss, -1 if none


class TrainState(NamedTuple):
    """Everything a run needs to continue from step k: what a checkpoint stores.

    The trace buffers are filled at log points (index k // log_every); steps not yet taken leave
    zeros, so a state is a fixed-shape pytree whatever k is (one compiled program for every k)."""
    params: PyTree             # the model parameters after k steps
    opt_state: PyTree          # the optimiser state after k steps
    first_bad_step: jax.Array  # () int32, -1 if no step so far diverged
    loss0: jax.Array           # () |loss| at step 0 (the divergence reference), inf before step 0
    loss_sum: jax.Array        # () sum of the losses of the current, unfinished log chunk
    trace_loss: jax.Array      # (n_logs,) mean loss of each finished chunk
    trace_logged: PyTree       # log_fn(params) at each finished chunk, leaves (n_logs, ...)


class Segment:
    """What the sweep driver (theory/engine/sweep.py) asks of the one `train` call of a run function
    while it traces it: `init` (return the state at step 0), `advance` (steps [start, stop) from
    `state`) or `finish` (the final params and trace from `state`). `train` records what it learns
    of the run (number of train calls, steps, progress label) on the object."""

    def __init__(self, mode: str, state: TrainState | None = None, start=None, stop=None):
        self.mode, self.state, self.start, self.stop = mode, state, start, stop
        self.calls, self.steps, self.progress, self.out = 0, None, None, None


class SegmentDone(Exception):
    """Raised by `train` in `advance` mode once it has recorded the advanced state: the rest of
    the run function is not needed (the driver catches it)."""


_SEGMENT: contextvars.ContextVar[Segment | None] = contextvars.ContextVar("train_segment", default=None)


@contextlib.contextmanager
def segment(seg: Segment):
    """Trace a run function with its `train` call in segment mode `seg` (the sweep driver only)."""
    token = _SEGMENT.set(seg)
    try:
        yield seg
    finally:
        _SEGMENT.reset(token)


def train(key: jax.Array, params: PyTree, loss_fn: Callable[[PyTree, Any], jax.Array],
          sample_batch: Callable[[jax.Array], Any], optimizer: optax.GradientTransformation,
          *, steps: int, log_every: int, log_fn: Callable[[PyTree], PyTree] | None = None,
          grad_fn: Callable[[PyTree, Any], tuple[jax.Array, PyTree]] | None = None,
          progress: str | None = None, run_id: jax.Array | int = 0,
          blowup: float = 1e6) -> tuple[PyTree, Trace]:
    """Run `steps` optimiser steps from `params`; return final params and the logged trace.

    Step k (0-based) draws its batch from `fold_in(key, k)` and updates
        params_{k+1} = params_k + optimizer.update(grad L(params_k; batch_k)).
    At every log point (k + 1 a multiple of `log_every`) the trace records the mean training loss
    of the chunk and `log_fn(params_{k+1})`.

    `grad_fn(params, batch) -> (loss, grads)` replaces `value_and_grad(loss_fn)` when a claim
    needs a hand-written gradient (e.g. the cancellation-free softmax gradient).

    Called directly (or inside any jit), the run is one `lax.fori_loop` over its steps. Inside a
    sweep (`theory.engine.sweep.sweep`) the driver traces it in segments instead: the same loop
    body over steps [start, stop) from a `TrainState`, so the host regains control every few
    seconds (interrupts, checkpoints) and a resumed run computes exactly the numbers of an
    uninterrupted one.
    """
    if steps <= 0 or log_every <= 0:
        raise SandboxError(f"steps and log_every must be positive, got {steps} and {log_every}")
    if steps % log_every:
        raise SandboxError(f"steps ({steps}) must be a multiple of log_every ({log_every})")
    n_logs = steps // log_every
    value_and_grad = grad_fn or jax.value_and_grad(loss_fn)
    log_fn = log_fn or (lambda p: ())
    seg = _SEGMENT.get()
    show_progress = progress is not None and seg is None   # in a sweep the driver prints progress

    def body(k, state: TrainState) -> TrainState:
        loss, grads = value_and_grad(state.params, sample_batch(jax.random.fold_in(key, k)))
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        loss0 = jnp.where(k == 0, jnp.abs(loss), state.loss0)
        diverged = ~jnp.isfinite(loss) | (jnp.abs(loss) > blowup * loss0)
        bad = jnp.where((state.first_bad_step < 0) & diverged, k.astype(jnp.int32), state.first_bad_step)
        state = TrainState(params, opt_state, bad, loss0, state.loss_sum + loss, state.trace_loss,
                           state.trace_logged)
        return jax.lax.cond((k + 1) % log_every == 0, log_point, lambda s, k: s, state, k)

    def log_point(state: TrainState, k) -> TrainState:
        i = k // log_every
        mean_loss = state.loss_sum / log_every
        if show_progress:
            show = ((i + 1) % max(n_logs // 10, 1) == 0) & (run_id == 0)
            jax.debug.callback(_print_progress, progress, show, k + 1, steps, mean_loss)
        logged = jax.tree_util.tree_map(lambda buf, x: buf.at[i].set(x), state.trace_logged,
                                        log_fn(state.params))
        return state._replace(loss_sum=jnp.zeros_like(state.loss_sum),
                              trace_loss=state.trace_loss.at[i].set(mean_loss), trace_logged=logged)

    def init() -> TrainState:
        loss_dtype = jax.eval_shape(value_and_grad, params, jax.eval_shape(sample_batch, key))[0].dtype
        logged = jax.tree_util.tree_map(lambda s: jnp.zeros((n_logs,) + s.shape, s.dtype),
                                        jax.eval_shape(log_fn, params))
        return TrainState(params, optimizer.init(params), jnp.asarray(-1, dtype=jnp.int32),
                          jnp.asarray(jnp.inf, dtype=loss_dtype), jnp.zeros((), loss_dtype),
                          jnp.zeros((n_logs,), loss_dtype), logged)

    def finish(state: TrainState) -> tuple[PyTree, Trace]:
        step = jnp.arange(1, n_logs + 1, dtype=jnp.int32) * log_every
        return state.params, Trace(step, state.trace_loss, state.trace_logged, state.first_bad_step)

    if seg is None:
        return finish(jax.lax.fori_loop(0, steps, body, init()))
    seg.calls += 1
    seg.steps, seg.progress = steps, progress
    if seg.mode == "init" or seg.calls > 1:        # a second train call: the driver falls back
        seg.out = init()
        return finish(seg.out)
    if seg.mode == "advance":
        seg.out = jax.lax.fori_loop(seg.start, seg.stop, body, seg.state)
        raise SegmentDone
    return finish(seg.state)


def _print_progress(label, show, step, steps, loss) -> None:
    if bool(np.asarray(show)):
        print(f"[{label}] step {int(np.asarray(step))}/{steps} loss {float(np.asarray(loss)):.6g}",
              file=sys.stderr, flush=True)


def raise_if_diverged(trace: Trace, name: str, hparams: dict | None = None) -> None:
    """Raise DivergenceError if any run in `trace` (possibly batched) hit a non-finite loss."""
    bad = np.atleast_1d(np.asarray(trace.first_bad_step))
    if np.all(bad < 0):
        return
    i = int(np.argmax(bad >= 0))
    hp = {}
    for k, v in (hparams or {}).items():
        arr = np.atleast_1d(np.asarray(v))
        hp[k] = arr.item() if arr.size == 1 else arr.reshape(-1)[i % arr.size].item()
    hp_text = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in hp.items())
    raise DivergenceError(f"{name}: training diverged (loss non-finite or above 1e6 x its initial value) "
                          f"at step {int(bad.reshape(-1)[i])}"
                          f" in run {i}" + (f" with {hp_text}" if hp_text else "")
                          + "; lower the learning rate or the init scale")
