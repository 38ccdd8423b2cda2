"""The RPE row: the training protocol of Ruoss et al. (2023), ours against what their public code does.

Protocol: reverse_string, a 5-layer encoder (d_model 64, 8 heads, d_ff 256), batch 128, training
lengths n ~ U{1..40}, randomized sin/cos positions (a sorted random subset of {0..2047}, one per
batch, as their `noisy_fixed_positional_encodings` draws it), Adam lr 1e-3 with global-norm
clipping 1, 1000 steps. Both sides train the same model (theory/models/transformer.py through
experiments/length_generalization/runs.py), on the same lengths and the same batches, from the
same initialisation:

    ours       one jitted program: `engine.train` over the whole run, each step computed at its
               length bucket (theory/engine/buckets.py, the claim's `train_buckets`), one compile
    baseline   what google-deepmind/randomized_positional_encodings (experiments/training.py) does:
               a Python loop; per step the length is drawn, a batch of exactly that length is
               sampled by a jitted sampler and one jitted update (value_and_grad + optimiser) is
               called, so each new length compiles both again (their `sample_batch` and
               `_update_parameters` are jitted on shapes); the loss is read back (`float`) every step.

The step lengths, data keys and initial parameters are computed once from the same streams, so
the two runs see identical batches (a bucketed batch equals the exact-length batch on its real
slots, theory/engine/buckets.py); their losses agree step by step up to float rounding, which the
row reports (`first_losses_max_abs_diff`).

Also measured on this model: compute per step of pad-to-max (every step at length 40) against the
buckets, over the same steps (ms per step, compile excluded, and FLOPs from XLA's cost analysis).
"""
from __future__ import annotations

import dataclasses
import functools
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.length_generalization import runs
from experiments.length_generalization.config import Config
from theory.bench import machine
from theory.bench.claims import useful_flops
from theory.engine import buckets
from theory.engine.keys import Keys


def protocol(quick: bool) -> Config:
    """The protocol as a length_generalization config (quick: a smoke run of the same code)."""
    if quick:
        return Config(task="reverse_string", train_max_len=4, n_layers=1, n_heads=8, d_model=64, d_ff=256,
                      batch=16, per="batch", steps=20, log_every=10)
    return Config(task="reverse_string", train_max_len=40, n_layers=5, n_heads=8, d_model=64, d_ff=256,
                  batch=128, per="batch", steps=1000, log_every=100)


def _spec(cfg: Config) -> runs.RunSpec:
    return runs.spec_for(cfg, cfg.task, "sin_cos", cfg.steps, (cfg.train_max_len,))


def ours(cfg: Config, keys: Keys) -> dict:
    """One jitted run with buckets: wall time (compile included), compile time, programs, losses."""
    spec, lengths = _spec(cfg), keys.sub("lengths").key
    run = jax.jit(lambda k: runs.train_run(k, True, False, 1.0, spec=spec, schedule=lengths)[1].loss)
    t = machine.Timed(run, keys.sub("run").key)
    return {"seconds": t.seconds, "compile_seconds": t.compile_seconds, "programs": t.programs,
            "steps_per_second": cfg.steps / max(t.seconds - t.compile_seconds, 1e-9),
            "log_losses": np.asarray(t.out).tolist(), "buckets": list(spec.buckets)}


def baseline(cfg: Config, keys: Keys) -> dict:
    """The public code's loop (module docstring): a compile per length met, a host sync per step.
    Its set-up (initial parameters, the step lengths and data keys) is one jitted program."""
    spec, schedule = _spec(cfg), keys.sub("lengths").key
    t0 = time.perf_counter()
    p0, s0 = machine.COUNTER.snapshot()

    @jax.jit
    def setup(key):
        tr = runs.training(key, True, False, 1.0, spec=spec, schedule=schedule)
        step_keys = jax.vmap(lambda i: jax.random.fold_in(tr.schedule, i))(jnp.arange(cfg.steps))   # (S, 2)
        lengths, data_keys = jax.vmap(tr.sample_batch)(step_keys)                                 # (S,), (S, 2)
        return tr.params, tr.optimizer.init(tr.params), lengths, data_keys

    params, opt_state, lengths, data_keys = setup(keys.sub("run").key)
    lengths = np.asarray(lengths)
    opt = runs.optimizer(spec)
    sample = jax.jit(functools.partial(runs.make_batch, spec=spec, randomized=True, causal=False),
                     static_argnums=2)
    loss = functools.partial(runs.mean_loss, spec=spec, causal=False, gain=1.0)

    @jax.jit
    def update(params, opt_state, batch):
        value, grads = jax.value_and_grad(loss)(params, batch)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    losses = []
    for i in range(cfg.steps):
        n = int(lengths[i])
        batch = sample(jnp.int32(n), data_keys[i], n)                  # exactly length n
        params, opt_state, value = update(params, opt_state, batch)
        losses.append(float(value))                                    # the per-step host sync
    seconds = time.perf_counter() - t0
    p1, s1 = machine.COUNTER.snapshot()
    comp = s1 - s0
    return {"seconds": seconds, "compile_seconds": comp, "programs": p1 - p0,
            "lengths_met": int(len(set(lengths.tolist()))),
            "steps_per_second": cfg.steps / max(seconds - comp, 1e-9), "losses": losses}


def pad_vs_buckets(cfg: Config, keys: Keys, steps: int) -> dict:
    """ms per step (compile excluded) and FLOPs per step of pad-to-max vs buckets, same steps."""
    out = {}
    for name, k in (("pad_to_max", 1), ("buckets", cfg.train_buckets)):
        c = dataclasses.replace(cfg, train_buckets=k, steps=steps, log_every=steps)
        spec, schedule = _spec(c), keys.sub("lengths").key
        run = jax.jit(lambda key, spec=spec, schedule=schedule: runs.train_run(key, True, False, 1.0, spec=spec,
                                                                               schedule=schedule)[1].loss)
        first = machine.Timed(run, keys.sub("run").key)
        warm = machine.Timed(run, keys.sub("run").key)
        tr = runs.training(keys.sub("run").key, True, False, 1.0, spec=spec, schedule=schedule)
        flops = useful_flops({"params": tr.params, "optimizer": tr.optimizer, "sample_batch": tr.sample_batch,
                              "key": tr.schedule, "grad_fn": tr.grad_fn})
        out[name] = {"buckets": list(spec.buckets), "ms_per_step": 1e3 * warm.seconds / steps,
                     "compile_seconds": first.compile_seconds, "flops_per_step": flops["step"],
                     "useful_flops_per_step": flops["useful"]}
    out["steps"] = steps
    out["compute_ratio"] = out["pad_to_max"]["ms_per_step"] / out["buckets"]["ms_per_step"]
    out["expected_cost_linear"] = buckets.expected_cost(tuple(out["buckets"]["buckets"]), 1, cfg.train_max_len)
    out["expected_cost_quadratic"] = buckets.expected_cost(tuple(out["buckets"]["buckets"]), 1,
                                                           cfg.train_max_len, lambda L: L * L)
    return out


def row(quick: bool) -> dict:
    """The RPE row: ours vs the baseline (ratio of total wall times, compile included), the loss
    agreement of the two, and pad-to-max vs buckets on the same model."""
    cfg = protocol(quick)
    keys = Keys(0).sub("bench", "rpe")
    o = ours(cfg, keys)
    b = baseline(cfg, keys)
    per_log = np.asarray(b["losses"]).reshape(-1, cfg.log_every).mean(axis=1)       # the engine's log means
    return {"protocol": {k: getattr(cfg, k) for k in ("task", "train_max_len", "n_layers", "d_model", "n_heads",
                                                     "d_ff", "batch", "per", "steps", "lr", "clip", "max_pos")},
            "ours": o, "baseline": {k: v for k, v in b.items() if k != "losses"},
            "ratio": b["seconds"] / o["seconds"],
            "first_losses_max_abs_diff": float(abs(per_log[0] - o["log_losses"][0])),
            "log_losses_max_abs_diff": float(np.max(np.abs(per_log - np.asarray(o["log_losses"])))),
            "pad_vs_buckets": pad_vs_buckets(cfg, keys, 20 if quick else 200)}


def cache_row(tmp: Path) -> dict:
    """Cold vs warm start of the persistent compilation cache (theory/engine/cache.py): a child
    process running the quick protocol's `ours` with a fresh, empty cache folder, then again with
    the same folder (its programs are loaded, not compiled)."""
    argv = [sys.executable, "-m", "theory.bench.rpe", "--child"]
    env = {"SANDBOX_COMPILE_CACHE": str(tmp / "compile-cache"), "SANDBOX_NO_COMPILE_CACHE": ""}
    return {"what": "quick RPE protocol in a child process", "cold": machine.run_child(argv, env),
            "warm": machine.run_child(argv, env)}


if __name__ == "__main__" and sys.argv[1:] == ["--child"]:
    from theory.engine.cache import enable_persistent_cache
    enable_persistent_cache()
    print(ours(protocol(True), Keys(0).sub("bench", "rpe"))["seconds"])
