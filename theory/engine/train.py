"""The one training engine: a whole run is one jitted `lax.scan`.

    params, trace = train(key, params0, loss_fn, sample_batch, optimizer, steps=..., log_every=...)

* `loss_fn(params, batch) -> scalar` and `sample_batch(key) -> batch` are pure; step k draws its
  batch from `fold_in(key, k)`, so a run's data do not depend on how it is batched into a sweep.
* The steps run as a nested scan: an outer scan over `steps // log_every` log points, an inner scan
  over `log_every` steps. At each log point the trace records the mean training loss of the chunk
  and `log_fn(params)` (any pytree: weight snapshots, eval metrics).
* No per-step host syncs. Divergence, a non-finite loss or a loss above `blowup` times the loss at
  step 0 (Adam at a huge learning rate explodes to ~1e10 and wanders back without ever producing a
  NaN), is recorded as `first_bad_step` inside the scan; `raise_if_diverged` reports it on the host
  after the run, naming run, step and hyperparameters.
* Optional progress lines on stderr (one host callback per log point, printed for run 0 only).
* Everything is traceable in the value hyperparameters (`lr` may be a traced scalar), so seeds and
  learning rates go through `jax.vmap` (see `theory.engine.sweep`).
"""
from __future__ import annotations

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


def train(key: jax.Array, params: PyTree, loss_fn: Callable[[PyTree, Any], jax.Array],
          sample_batch: Callable[[jax.Array], Any], optimizer: optax.GradientTransformation,
          *, steps: int, log_every: int, log_fn: Callable[[PyTree], PyTree] | None = None,
          grad_fn: Callable[[PyTree, Any], tuple[jax.Array, PyTree]] | None = None,
          progress: str | None = None, run_id: jax.Array | int = 0,
          blowup: float = 1e6) -> tuple[PyTree, Trace]:
    """Run `steps` optimiser steps from `params`; return final params and the logged trace.

    `grad_fn(params, batch) -> (loss, grads)` replaces `value_and_grad(loss_fn)` when a claim
    needs a hand-written gradient (e.g. the cancellation-free softmax gradient).
    """
    if steps <= 0 or log_every <= 0:
        raise SandboxError(f"steps and log_every must be positive, got {steps} and {log_every}")
    if steps % log_every:
        raise SandboxError(f"steps ({steps}) must be a multiple of log_every ({log_every})")
    n_logs = steps // log_every
    value_and_grad = grad_fn or jax.value_and_grad(loss_fn)
    log_fn = log_fn or (lambda p: ())

    def one_step(carry, k):
        params, opt_state, bad, loss0 = carry
        loss, grads = value_and_grad(params, sample_batch(jax.random.fold_in(key, k)))
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        loss0 = jnp.where(k == 0, jnp.abs(loss), loss0)
        diverged = ~jnp.isfinite(loss) | (jnp.abs(loss) > blowup * loss0)
        bad = jnp.where((bad < 0) & diverged, k.astype(bad.dtype), bad)
        return (params, opt_state, bad, loss0), loss

    def one_chunk(carry, c):
        carry, losses = jax.lax.scan(one_step, carry, c * log_every + jnp.arange(log_every))
        end = (c + 1) * log_every
        mean_loss = jnp.mean(losses)
        if progress is not None:
            show = ((c + 1) % max(n_logs // 10, 1) == 0) & (run_id == 0)
            jax.debug.callback(_print_progress, progress, show, end, steps, mean_loss)
        return carry, (end, mean_loss, log_fn(carry[0]))

    loss_dtype = jax.eval_shape(value_and_grad, params, jax.eval_shape(sample_batch, key))[0].dtype
    carry0 = (params, optimizer.init(params), jnp.asarray(-1, dtype=jnp.int32),
              jnp.asarray(jnp.inf, dtype=loss_dtype))
    (params, _, bad, _), (step, loss, logged) = jax.lax.scan(one_chunk, carry0, jnp.arange(n_logs))
    return params, Trace(step, loss, logged, bad)


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
