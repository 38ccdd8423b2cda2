"""One row per claim: the training step of its quick preset, timed as the claim trains it.

The step is not rebuilt here: `capture(claim)` runs the claim's parts (its quick `Config`, seed 0)
until the first `theory.engine.train.train` call and keeps that call's arguments (run 0 of its
sweep: parameters, loss, batch sampler, optimiser, gradient) and the sweep's run function and
values. Only the engine entry points are intercepted; the model, the data and the optimiser are
the claim's own. Then, for S steps of that step:

    fused      engine.train (the run as one jitted loop) vs a naive loop: a Python loop over the
               jitted step with the host sync a per-step `float(loss)` log implies (steady state,
               compile excluded; the compile of each is reported beside)
    seeds      K runs of the claim's own run function (its sweep's, S training steps, its evaluation
               included) as one vmapped sweep vs K sweeps of one run, compile included
    compiles   programs XLA prepared for each (JAX monitoring events, machine.CompileCounter)
    flops      useful FLOPs of one step (XLA cost analysis of the lowered step; a bucketed step,
               theory/engine/buckets.py, counts its gradient at the exact length n, averaged over
               n ~ U{1..N}, not at the bucket), achieved FLOP/s of the fused run, and its fraction
               of this machine's float32 matmul throughput
    memory     the compiled memory analysis of the fused run (argument + output + temporaries);
               the full bench adds the peak RSS of the claim's whole quick preset (claims_memory)
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import pkgutil
import sys
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

import experiments
from theory.bench import machine
from theory.engine import sweep as sweep_mod
from theory.engine import train as train_mod
from theory.engine.keys import Keys
from theory.engine.precision import precision as precision_scope


def claim_names() -> list[str]:
    """The claims: the packages and modules of `experiments/` (the registry's experiment modules)."""
    return sorted(m.name for m in pkgutil.iter_modules(experiments.__path__))


class _Captured(Exception):
    def __init__(self, args: dict):
        super().__init__("captured")
        self.call = args


@dataclasses.dataclass
class Capture:
    claim: str
    part: str
    precision: str
    train: dict                      # the first train call of run 0: key, params, loss_fn, sample_batch, ...
    run_fn: Callable | None          # the run function of the sweep that made the call (None: no sweep)
    values: dict                     # that sweep's values of run 0, each (1, ...)
    shared: dict = dataclasses.field(default_factory=dict)   # that sweep's unbatched inputs (sweep(shared=))


_REAL_TRAIN, _REAL_SWEEP = train_mod.train, sweep_mod.sweep


@contextlib.contextmanager
def _replaced(train=None, sweep=None):
    """Rebind engine.train.train / engine.sweep.sweep, in the engine and in every loaded experiments
    module that imported them by name, for the duration of the block."""
    swaps = []
    for mod in [train_mod, sweep_mod] + [m for n, m in list(sys.modules.items()) if n.startswith("experiments.")]:
        for name, val in list(vars(mod).items()):
            new = train if val is _REAL_TRAIN else sweep if val is _REAL_SWEEP else None
            if new is not None:
                swaps.append((mod, name, val))
                setattr(mod, name, new)
    try:
        yield
    finally:
        for mod, name, val in swaps:
            setattr(mod, name, val)


def _is_traced(tree) -> bool:
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(tree))


@contextlib.contextmanager
def _env(**values: str):
    """Set environment variables for the duration of the block."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def capture(claim: str, cfg: Any = None) -> Capture:
    """The arguments of the claim's first training call (its quick preset, or `cfg`; seed 0), see
    the module docstring."""
    mod = importlib.import_module(f"experiments.{claim}")
    cfg = mod.Config.quick() if cfg is None else cfg
    box: dict = {}

    def probe_train(key, params, loss_fn, sample_batch, optimizer, **kw):
        if _is_traced(params):                     # inside someone's jit: not capturable, pass on
            return _REAL_TRAIN(key, params, loss_fn, sample_batch, optimizer, **kw)
        raise _Captured(dict(key=key, params=params, loss_fn=loss_fn, sample_batch=sample_batch,
                             optimizer=optimizer, **kw))

    def probe_sweep(run_fn, keys, **kw):
        values = {k: v for k, v in kw.items() if k not in ("shard", "n_devices", "batch_size", "shared")}
        shared = dict(kw.get("shared") or {})
        n = keys.shape[0]
        vals = {k: jnp.broadcast_to(jnp.asarray(v), (n,) + jnp.shape(v)[1:]) if jnp.ndim(v) else
                jnp.full((n,), v) for k, v in values.items()}
        box["run_fn"], box["values"], box["shared"] = run_fn, {k: v[:1] for k, v in vals.items()}, shared
        with jax.disable_jit():                    # run 0 eagerly up to its train call
            run_fn(keys[0], run_id=0, **{k: v[0] for k, v in vals.items()}, **shared)
        box.clear()                                # this sweep never trained: run it for real
        return _REAL_SWEEP(run_fn, keys, **kw)

    for part in mod.PARTS:
        if not part.enabled(cfg):
            continue
        keys = Keys(0).sub(part.name)
        prec = part.precision or mod.PRECISION
        # sweeps in turn (engine.sweep.at_once): the probes share `box`, and run 0 of the first sweep is the one kept
        with precision_scope(prec), _replaced(train=probe_train, sweep=probe_sweep), _env(SANDBOX_THREADS="1"):
            try:
                if part.draw is not None:
                    part.measure(cfg, keys, None, part.draw(cfg, keys))
                else:
                    part.measure(cfg, keys, None)
            except _Captured as c:
                return Capture(claim, part.name, prec, c.call, box.get("run_fn"), box.get("values", {}),
                               box.get("shared", {}))
    raise RuntimeError(f"{claim}: no part of the quick preset calls engine.train")


# --- the step and its two loops --------------------------------------------------------------------
def _value_and_grad(t: dict):
    return t.get("grad_fn") or jax.value_and_grad(t["loss_fn"])


def step_fn(t: dict) -> Callable:
    """One optimiser step of the captured run: (params, opt_state, k) -> (params, opt_state, loss)."""
    vg, opt, sample, key = _value_and_grad(t), t["optimizer"], t["sample_batch"], t["key"]

    def step(params, opt_state, k):
        loss, grads = vg(params, sample(jax.random.fold_in(key, k)))
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss
    return step


def fused_run(t: dict, steps: int) -> Callable:
    """The captured run as the engine trains it, `steps` steps (one log point), jitted."""
    return jax.jit(lambda params: train_mod.train(
        t["key"], params, t["loss_fn"], t["sample_batch"], t["optimizer"], steps=steps, log_every=steps,
        grad_fn=t.get("grad_fn"), blowup=t.get("blowup", 1e6)))


def naive_loop(t: dict, steps: int) -> Callable[[], Any]:
    """A Python loop over the jitted step, reading the loss back every step (float(loss))."""
    step = jax.jit(step_fn(t))

    def loop():
        params, state = t["params"], t["optimizer"].init(t["params"])
        log = []
        for k in range(steps):
            params, state, loss = step(params, state, k)
            log.append(float(loss))
        return params
    return loop


def useful_flops(t: dict) -> dict:
    """FLOPs of one step from XLA's cost analysis of the lowered programs: `step` (as executed; a
    bucketed step at its bucket L(n)), `useful` (a bucketed step's gradient at the exact length n),
    both averaged over n ~ U{1..N} for a bucketed step (cost fitted exactly by a + b L + c L^2 at
    three lengths: dots are linear or quadratic in L), and `pad` (at N, the pad-to-max step)."""
    params, state = t["params"], t["optimizer"].init(t["params"])
    vg = _value_and_grad(t)
    if not hasattr(vg, "loss_at"):
        c = _cost(jax.jit(step_fn(t)).lower(params, state, 0))
        return {"step": c, "useful": c, "pad": c}
    loss_at, buckets = vg.loss_at, vg.buckets
    n, data = jax.eval_shape(t["sample_batch"], t["key"])

    def grad_cost(L):
        f = jax.jit(lambda p, m, d: jax.value_and_grad(loss_at)(p, m, d, L))
        return _cost(f.lower(params, jax.ShapeDtypeStruct(n.shape, n.dtype), data))
    def update(p, s, g):
        u, s = t["optimizer"].update(g, s, p)
        return optax.apply_updates(p, u), s
    upd = _cost(jax.jit(update).lower(params, state, params))
    N = buckets[-1]
    Ls = sorted({max(1, N // 4), max(1, N // 2), N})
    coef = np.polyfit(Ls, [grad_cost(L) for L in Ls], len(Ls) - 1)
    cost = lambda L: float(np.polyval(coef, L))              # noqa: E731
    lengths = range(1, N + 1)
    bucket = lambda m: next(b for b in buckets if b >= m)    # noqa: E731
    return {"step": upd + float(np.mean([cost(bucket(m)) for m in lengths])),
            "useful": upd + float(np.mean([cost(m) for m in lengths])), "pad": upd + cost(N)}


def _cost(lowered) -> float:
    c = lowered.cost_analysis()
    c = c[0] if isinstance(c, list) else c
    return float(c.get("flops", float("nan")))


# --- K seeds: one vmapped sweep vs K sweeps of one run ---------------------------------------------
def run_with_steps(cap: Capture, steps: int) -> Callable:
    """The claim's run function with its train call shortened to `steps` steps (the claim's log
    interval kept when it divides them, else one log point)."""
    log_every = cap.train["log_every"]
    log_every = log_every if steps % log_every == 0 else steps

    def short_train(*a, **kw):
        kw.update(steps=steps, log_every=log_every)
        return _REAL_TRAIN(*a, **kw)

    def run(key, run_id=0, **values):
        with _replaced(train=short_train):
            return cap.run_fn(key, run_id=run_id, **values)
    return run


def seeds_row(cap: Capture, steps: int, K: int) -> dict:
    """K runs as one sweep (vmapped) vs K sweeps of one run; wall time with compile, programs."""
    run = run_with_steps(cap, steps)
    keys = Keys(0).sub("bench", cap.claim, "seeds").runs(K)
    vals = {k: jnp.repeat(v, K, axis=0) for k, v in cap.values.items()}
    vmapped = machine.Timed(lambda: sweep_mod.sweep(run, keys, shared=cap.shared, **vals))
    p0, s0 = machine.COUNTER.snapshot()
    t0 = time.perf_counter()
    for i in range(K):
        jax.block_until_ready(sweep_mod.sweep(run, keys[i:i + 1], shared=cap.shared,
                                              **{k: v[i:i + 1] for k, v in vals.items()}))
    seq_s = time.perf_counter() - t0
    p1, s1 = machine.COUNTER.snapshot()
    return {"K": K, "steps": steps, "vmapped_seconds": vmapped.seconds, "vmapped_programs": vmapped.programs,
            "vmapped_compile_seconds": vmapped.compile_seconds, "sequential_seconds": seq_s,
            "sequential_programs": p1 - p0, "sequential_compile_seconds": s1 - s0,
            "ratio": seq_s / vmapped.seconds}


# --- the row ----------------------------------------------------------------------------------------
def row(claim: str, steps: int, K: int, peak_flops: float) -> dict:
    """Every measurement of one claim's training step (see the module docstring); K = 0 leaves the
    seeds row out (the quick bench: it compiles the claim's whole run twice)."""
    cap = capture(claim)
    t = cap.train
    out: dict = {"claim": claim, "part": cap.part, "precision": cap.precision, "steps": steps,
                 "params": int(sum(np.size(x) for x in jax.tree_util.tree_leaves(t["params"]))),
                 "bucketed": hasattr(_value_and_grad(t), "loss_at")}
    with precision_scope(cap.precision):
        fused = fused_run(t, steps)
        first = machine.Timed(fused, t["params"])
        fused_s = machine.best_of(lambda: fused(t["params"]), repeats=2)
        loop = naive_loop(t, steps)
        naive_first = machine.Timed(loop)
        naive_s = machine.best_of(loop, repeats=1)
        mem = fused.lower(t["params"]).compile().memory_analysis()
        flops = useful_flops(t)
        out.update(
            fused_steps_per_second=steps / fused_s, naive_steps_per_second=steps / naive_s,
            fused_vs_naive=naive_s / fused_s,
            fused_first_call_seconds=first.seconds, fused_programs=first.programs,
            fused_compile_seconds=first.compile_seconds,
            naive_first_call_seconds=naive_first.seconds, naive_programs=naive_first.programs,
            naive_compile_seconds=naive_first.compile_seconds,
            flops_per_step=flops["step"], useful_flops_per_step=flops["useful"],
            pad_to_max_flops_per_step=flops["pad"],
            achieved_flops_per_second=flops["useful"] * steps / fused_s,
            fraction_of_matmul_peak=flops["useful"] * steps / fused_s / peak_flops,
            compiled_memory_bytes=int(mem.argument_size_in_bytes + mem.output_size_in_bytes
                                      + mem.temp_size_in_bytes))
        if cap.run_fn is not None and K > 0:
            out["seeds"] = seeds_row(cap, steps, K)
    return out


def claims_memory(names: list[str], cache_root) -> dict:
    """Each claim's whole quick preset in a child process (`sandbox run NAME`, results to a scratch
    folder): wall time and peak RSS with a fresh, empty compilation cache (cold), then again with the
    same cache (warm: the programs of the first run are loaded, not compiled)."""
    out = {}
    for name in names:
        cache = cache_root / name
        argv = [sys.executable, "-m", "theory.cli", "run", name, "--out", str(cache_root / "out")]
        env = {"SANDBOX_COMPILE_CACHE": str(cache), "SANDBOX_NO_COMPILE_CACHE": ""}
        cold = machine.run_child(argv, env)
        warm = machine.run_child(argv, env)
        out[name] = {"cold": cold, "warm": warm}
    return out


# the explore row: a README example's grid (rank_growth's init scale), small enough for the bench
EXPLORE_ARGS = ("rank_growth", "--part", "saxe_linear_net",
                "--grid", "time_alphas=(1e-2,),(1e-3,),(1e-4,),(1e-6,),(1e-9,)", "--seeds", "3")
EXPLORE_ARGS_QUICK = ("rank_growth", "--part", "saxe_linear_net", "--grid", "time_alphas=(1e-2,),(1e-3,)")


def explore_jobs(root, quick: bool = False, jobs: int = 2) -> dict:
    """`sandbox explore` of one grid in one process and with `--jobs` workers (theory/harness/explore.py),
    each a child command: first with an empty compilation cache of its own (cold: every program
    compiled, by each worker for its pairs), then again with that cache (warm, as a second explore
    on the same machine). Wall times and whether all four maps hold the same numbers."""
    args = list(EXPLORE_ARGS_QUICK if quick else EXPLORE_ARGS)
    out: dict = {"args": args, "jobs": jobs}
    maps = []
    for start in ("cold", "warm"):
        out[start] = {}
        for key, extra in (("one_process", []), ("workers", ["--jobs", str(jobs)])):
            folder = root / f"explore-{key}-{start}"
            env = {"SANDBOX_COMPILE_CACHE": str(root / f"explore-cache-{key}"), "SANDBOX_NO_COMPILE_CACHE": ""}
            run = machine.run_child([sys.executable, "-m", "theory.cli", "explore", *args, *extra,
                                     "--out", str(folder)], env)
            if run["exit_code"] != 0:
                raise RuntimeError(f"explore {key} ({start}) exited {run['exit_code']}: "
                                   + " / ".join(run["output_tail"]))
            [path] = (folder / "results" / "explore").glob("*.json")
            result = json.loads(path.read_text())
            maps.append([[[(c["name"], c["measured"], c["passed"]) for c in r["checks"]] + [r["status"]]
                          for r in row["runs"]] for row in result["points"]])
            out[start][key] = {"seconds": run["seconds"], "peak_rss_bytes": run["peak_rss_bytes"],
                               "runs": sum(len(row["runs"]) for row in result["points"])}
        out[start]["ratio"] = out[start]["one_process"]["seconds"] / out[start]["workers"]["seconds"]
    out["same_numbers"] = all(m == maps[0] for m in maps)
    return out
