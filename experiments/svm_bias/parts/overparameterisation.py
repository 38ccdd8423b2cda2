"""Part `overparameterisation`: the fraction of normalized-GD runs that select the global opt rises with d.

GD converges to a locally-optimal selection, not necessarily opt_i = argmax_t gamma_it. With more
dimensions (d large against n and T) more runs reach the global opt: about 0.3 at d = 4 and >= 0.9
at d = 32 for n = 6, T = 8 (reference runs of this experiment; Tarzanagh et al. 2023 report the rise).

Every d is trained in one compile: tokens, queries and head are zero-padded to d_max = max(sweep_ds)
and the init lives on the top-left d x d block (experiments/svm_bias/common.py init_params), which
leaves the dynamics those of the unpadded run (tests/test_svm_bias.py).
"""
from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from theory.engine.keys import Keys
from theory.harness.results import at_least, close, holds
from theory.tasks.token_selection import Instance

from .. import common
from ..config import Config


def predict(cfg: Config) -> dict:
    """Sampling allowance of a fraction over cfg.sweep_instances runs: 2 binomial s.d. at p = 1/2."""
    return {"sweep_ds": list(cfg.sweep_ds), "binomial_2sd": 1.0 / math.sqrt(cfg.sweep_instances)}


def _padded(batch: Instance, d_max: int) -> Instance:
    """Zero-pad the token dimension of a batched instance to d_max."""
    pad = d_max - batch.X.shape[-1]
    return Instance(np.pad(np.asarray(batch.X), [(0, 0), (0, 0), (0, 0), (0, pad)]), np.asarray(batch.Y),
                    np.pad(np.asarray(batch.Z), [(0, 0), (0, 0), (0, pad)]),
                    np.pad(np.asarray(batch.v), [(0, 0), (0, pad)]))


def measure(cfg: Config, keys: Keys, progress: str | None) -> dict:
    """Normalized GD on cfg.sweep_instances fresh instances per d; the tokens each run selects."""
    d_max, groups, padded, init_keys = max(cfg.sweep_ds), [], [], []
    for d in cfg.sweep_ds:
        batch = common.draw_instances(keys.sub("instances", d), cfg.sweep_instances, cfg.n, cfg.T, d)
        groups.append(common.host_instances(batch))
        padded.append(_padded(batch, d_max))
        init_keys.append(keys.sub("init_W", d).runs(cfg.sweep_instances))
    stacked = Instance(*(np.concatenate(f) for f in zip(*padded)))                  # (D * I, ...)
    d_true = np.repeat(np.asarray(cfg.sweep_ds), cfg.sweep_instances)                # (D * I,)
    W, _ = common.train(cfg, stacked, jnp.concatenate(init_keys), steps=cfg.sweep_steps,
                        log_every=cfg.sweep_steps, d_true=d_true, log_weights=False, label="d-sweep",
                        progress=progress)
    W = W.reshape(len(cfg.sweep_ds), cfg.sweep_instances, d_max, d_max)
    sel = [[common.selected(Wr[:d, :d], inst) for Wr, inst in zip(W[j], groups[j])]
           for j, d in enumerate(cfg.sweep_ds)]
    return {"sweep_ds": list(cfg.sweep_ds),
            "selected": sel,                                                         # (D, I, n)
            "opt": [[common.opt_tokens(inst) for inst in g] for g in groups]}        # (D, I, n)


def global_fractions(M: dict) -> np.ndarray:
    """Per d, the fraction of runs whose selection is the global opt in every sequence; (D,)."""
    sel, opt = np.asarray(M["selected"]), np.asarray(M["opt"])                      # (D, I, n)
    return np.all(sel == opt, axis=-1).mean(axis=-1)


def judge(cfg: Config, P: dict, M: dict) -> list:
    frac, margin, ds = global_fractions(M), P["binomial_2sd"], P["sweep_ds"]
    return [
        close(f"global_fraction_d{ds[0]}", f"About 0.3 of the runs at d = {ds[0]} select the global opt.",
              "expected", 0.3, float(frac[0]), margin,
              f"reference runs of this experiment (about 0.3 at d = 4, n = 6, T = 8); margin "
              f"1/sqrt({cfg.sweep_instances}) = 2 binomial s.d. at p = 1/2", rel=False),
        at_least(f"global_fraction_d{ds[-1]}", f"At least 0.9 of the runs at d = {ds[-1]} select the "
                 "global opt, up to the sampling margin.", "expected", 0.9 - margin, float(frac[-1]),
                 f"reference runs of this experiment (>= 0.9 at d >= 32), minus 2 binomial s.d. "
                 f"({margin:.3f})"),
        holds("global_fraction_rises_with_d", "The fraction selecting the global opt rises with d.",
              "expected", f"non-decreasing in d up to {margin:.3f}, and frac(d={ds[-1]}) - "
              f"frac(d={ds[0]}) > {margin:.3f}", [round(float(f), 4) for f in frac],
              bool(np.all(np.diff(frac) >= -margin) and frac[-1] - frac[0] > margin),
              "Tarzanagh et al. 2023: over-parameterisation helps GD find the globally optimal tokens; "
              "the size of the rise is from reference runs of this experiment"),
    ]
