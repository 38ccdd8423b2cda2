"""`sandbox bench`: speed ratios measured in one run on this machine (never asserted in tests).

Measured, for the one-layer LSA training step of `gd_equivalence` (d = N = 10, batch 1024):
  1. the engine (one jitted lax.scan) against a naive loop (Python loop over a jitted step, with the
     host sync a per-step `float(loss)` log implies);
  2. N vmapped seeds against N sequential engine runs;
  3. a sweep sharded over all host devices against the same sweep on one device;
  4. achieved FLOP/s of the training step against a large float32 matmul on this machine.
"""
from __future__ import annotations

import os
import sys
import time

if "jax" not in sys.modules:   # the sharding row needs several host devices, set before JAX starts
    os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import functools  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

from theory.engine import train as engine  # noqa: E402
from theory.engine.keys import Keys  # noqa: E402
from theory.engine.sweep import sweep  # noqa: E402
from theory.models import lsa  # noqa: E402
from theory.tasks.linear_regression import RegressionTask, sample_batch, tokens  # noqa: E402

TASK = RegressionTask(d=10)
BATCH = 1024


def _loss(params, batch):
    Z = jax.vmap(tokens)(batch)                                                  # (B, N + 1, d + 1)
    y_hat = jax.vmap(lambda z: lsa.lsa_predict(params, z, 10))(Z)               # (B,)
    return 0.5 * jnp.mean((y_hat - batch.y_q) ** 2)


def _sample(key):
    return sample_batch(key, TASK, 10, BATCH)


def _run(key, *, lr, run_id=0, steps=200):
    k_init, k_data = jax.random.split(key)
    p0 = lsa.init_lsa(k_init, 1, 11, 0.02)
    opt = engine.make_optimizer(engine.OptimizerConfig("adam"), lr, steps)
    return engine.train(k_data, p0, _loss, _sample, opt, steps=steps, log_every=steps // 4, run_id=run_id)


def _timed(fn, repeats: int = 3) -> float:
    jax.block_until_ready(fn())          # compile and warm up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t)
    return best


@functools.partial(jax.jit, static_argnames="steps")
def _naive_step(params, state, key, k, steps):
    opt = engine.make_optimizer(engine.OptimizerConfig("adam"), 1e-2, steps)
    loss, g = jax.value_and_grad(_loss)(params, _sample(jax.random.fold_in(key, k)))
    upd, state = opt.update(g, state, params)
    return optax.apply_updates(params, upd), state, loss


def naive_loop(key, steps: int):
    """The reference: a Python loop over a jitted step, logging float(loss) every step."""
    k_init, k_data = jax.random.split(key)
    params = lsa.init_lsa(k_init, 1, 11, 0.02)
    state = engine.make_optimizer(engine.OptimizerConfig("adam"), 1e-2, steps).init(params)
    log = []
    for k in range(steps):
        params, state, loss = _naive_step(params, state, k_data, k, steps)
        log.append(float(loss))
    return params


def step_flops() -> float:
    """FLOPs of one training step, from XLA's cost analysis of the jitted value-and-grad."""
    keys = Keys(0).sub("bench", "flops")
    p = lsa.init_lsa(keys.sub("init").key, 1, 11, 0.02)
    b = _sample(keys.sub("data").key)
    cost = jax.jit(jax.value_and_grad(_loss)).lower(p, b).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost.get("flops", float("nan")))


def main(quick: bool = False) -> None:
    steps = 100 if quick else 400
    n_seeds = 4 if quick else 8
    keys = Keys(0).sub("bench")
    key = keys.sub("run").key
    rows = []

    t_naive = _timed(lambda: naive_loop(key, steps), repeats=1)
    engine_run = jax.jit(functools.partial(_run, steps=steps))
    t_engine = _timed(lambda: engine_run(key, lr=1e-2))
    rows.append(("engine (one jitted scan) vs naive Python loop", f"{steps / t_engine:,.0f} steps/s",
                 f"{steps / t_naive:,.0f} steps/s", t_naive / t_engine))

    run = functools.partial(_run, steps=steps)
    run_keys = keys.sub("seeds").runs(n_seeds)
    t_vmap = _timed(lambda: sweep(run, run_keys, shard=False, lr=jnp.full((n_seeds,), 1e-2)))
    t_seq = _timed(lambda: [engine_run(run_keys[i], lr=1e-2) for i in range(n_seeds)], repeats=1)
    rows.append((f"{n_seeds} vmapped seeds vs {n_seeds} sequential runs", f"{t_vmap:.2f} s", f"{t_seq:.2f} s",
                 t_seq / t_vmap))

    n_dev = jax.device_count()
    t_shard = _timed(lambda: sweep(run, run_keys, shard=True, lr=jnp.full((n_seeds,), 1e-2)))
    rows.append((f"sweep sharded over {n_dev} host devices vs 1 device", f"{t_shard:.2f} s", f"{t_vmap:.2f} s",
                 t_vmap / t_shard))

    n = 2048
    a = jax.random.normal(keys.sub("matmul").key, (n, n))
    t_mm = _timed(lambda: a @ a)
    peak = 2 * n ** 3 / t_mm
    achieved = step_flops() * steps / t_engine
    rows.append(("training step FLOP/s vs large matmul FLOP/s", f"{achieved / 1e9:.2f} GFLOP/s",
                 f"{peak / 1e9:.1f} GFLOP/s", achieved / peak))

    print(f"sandbox bench ({'quick' if quick else 'default'}): one-layer LSA, batch {BATCH}, {steps} steps; "
          f"{os.cpu_count()} CPU cores, {n_dev} JAX devices")
    w = max(len(r[0]) for r in rows)
    print(f"{'measurement'.ljust(w)}  {'ours':>18}  {'reference':>18}  ratio")
    for name, ours, ref, ratio in rows:
        print(f"{name.ljust(w)}  {ours:>18}  {ref:>18}  {ratio:6.2f}x")
