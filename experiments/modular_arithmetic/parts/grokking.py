"""Part `grokking` (float32 training): the quadratic MLP memorises, then generalises much later.

p = mlp_p, N = mlp_width, training fraction train_frac[0], weight decay weight_decay[0] (0),
epochs[0] full-batch AdamW epochs (experiments/modular_arithmetic/runs.py); `seeds` runs in one
vmapped sweep, each with its own split and init from its run key. Accuracies are logged every 5
epochs. With t_train the first logged epoch at train accuracy 1 and t_test the first at test
accuracy >= 0.99:

    memorisation  test accuracy at t_train <= CHANCE_BOUND (chance is 1/p)
    generalisation  final test accuracy >= GROK_ACC
    delay         t_test / t_train >= DELAY_MIN

The reference values (d-doshi/Grokking's setup, one seed of a numpy re-implementation): train 1.0 by
epoch 50 with test 0.012, test 0.95 at 250 and 1.0 at 300, so the delay ratio is >= 6.
The float32 loss is shown to be safe: the final training MSE recomputed in float64 from the same
weights agrees within F32_REL (a sanity check: MSE has no exponentials or cancellations).
"""
from __future__ import annotations

import math

import numpy as np

from experiments.modular_arithmetic import runs
from theory.engine.keys import Keys
from theory.engine.train import raise_if_diverged
from theory.harness.parts import Part
from theory.harness.results import Check, at_least, at_most

CHANCE_BOUND = 0.05     # "near chance" (1/97 ~ 0.010); reference 0.012 at epoch 50
GROK_ACC = 0.99
DELAY_MIN = 4.0
F32_REL = 1e-3          # float32 sums of ~3e5 squared terms: relative rounding ~1e-6, far below
DOSHI = "d-doshi/Grokking, Training_scripts/phase_diagrams_wd.py (p = 97, N = 500, AdamW lr 1e-2, MSE)"


def first_epoch(acc, level: float, epochs) -> float:
    """First logged epoch with acc >= level (+inf if never)."""
    hit = np.nonzero(np.asarray(acc, dtype=float) >= level)[0]
    return float(epochs[hit[0]]) if hit.size else math.inf


def mse64(params, s) -> float:
    """The training MSE recomputed in float64 numpy from the (float32) weights."""
    U, V, W = (np.asarray(x, dtype=np.float64) for x in params)
    a, b, c = (np.asarray(x) for x in s)
    f = (U.T[a] + V.T[b]) ** 2 @ W.T
    return float(np.mean((f - np.eye(W.shape[0])[c]) ** 2))


def f32_gap(cfg, keys, frac, params, loss32) -> float:
    """Max over runs of |loss32 - loss64| / loss64 on each run's own training split."""
    train_sets, _, _ = runs.instances(keys, cfg.mlp_p, cfg.mlp_width, float(frac))
    gaps = []
    for i in range(keys.shape[0]):
        l64 = mse64(tuple(np.asarray(x)[i] for x in params), tuple(np.asarray(x)[i] for x in train_sets))
        gaps.append(abs(float(np.asarray(loss32)[i]) - l64) / l64)
    return float(max(gaps))


def predict(cfg) -> dict:
    return {"chance": 1.0 / cfg.mlp_p}


def measure(cfg, keys: Keys, progress) -> dict:
    run_keys = keys.sub("runs").runs(cfg.seeds)
    params, tr, loss32 = runs.sweep_mlp(cfg, cfg.train_frac[0], cfg.epochs[0], run_keys,
                                        [cfg.weight_decay[0]] * cfg.seeds, progress)
    raise_if_diverged(tr, "modular_arithmetic/grokking")
    train_acc, test_acc = (np.asarray(x) for x in tr.logged)                   # (S, logs)
    return {"epochs": np.asarray(tr.step[0]), "train_acc": train_acc, "test_acc": test_acc,
            "train_loss": np.asarray(tr.loss), "f32_rel_gap": f32_gap(cfg, run_keys, cfg.train_frac[0], params,
                                                                     loss32)}


def events(M: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t_train, test accuracy at t_train, t_test) per run."""
    ep = np.asarray(M["epochs"], dtype=float)
    t_train = np.array([first_epoch(r, 1.0, ep) for r in M["train_acc"]])
    t_test = np.array([first_epoch(r, GROK_ACC, ep) for r in M["test_acc"]])
    test_at = np.array([float(np.asarray(te, float)[np.searchsorted(ep, t)]) if math.isfinite(t) else 1.0
                        for te, t in zip(M["test_acc"], t_train)])
    return t_train, test_at, t_test


def judge(cfg, P: dict, M: dict) -> list[Check]:
    t_train, test_at, t_test = events(M)
    final = np.asarray(M["test_acc"], dtype=float)[:, -1]
    ratio = np.where(np.isfinite(t_train) & np.isfinite(t_test), t_test / t_train, 0.0)
    S, wd, frac = cfg.seeds, cfg.weight_decay[0], cfg.train_frac[0]
    return [
        at_most("grokking_memorises_first",
                f"Max over {S} runs of the test accuracy at the first epoch of train accuracy 1 "
                f"(fraction {frac:g}, wd {wd:g}; chance {P['chance']:.3f}; never reaching train 1 counts as 1).",
                "expected", CHANCE_BOUND, float(test_at.max()),
                f"{DOSHI}: train accuracy 1.0 by epoch 50 with test 0.012 (Gromov 2023, Fig. 1; Power et al. "
                "2022, Fig. 1)"),
        at_least("grokking_generalises",
                 f"Min over {S} runs of the test accuracy after {cfg.epochs[0]} epochs.",
                 "expected", GROK_ACC, float(final.min()),
                 f"{DOSHI}: test accuracy 0.95 at epoch 250 and 1.0 at 300 in the reference run"),
        at_least("grokking_delay_ratio",
                 f"Min over {S} runs of t(test >= {GROK_ACC}) / t(train = 1) (0 if either never happens).",
                 "expected", DELAY_MIN, float(ratio.min()),
                 f"{DOSHI}: 300 / <= 50 in the reference run; Power et al. 2022, Fig. 1 (the delay)"),
        at_most("grokking_float32_loss_safe",
                "Max over runs of |MSE in float32 - MSE recomputed in float64| / MSE on the final weights.",
                "sanity", F32_REL, M["f32_rel_gap"],
                "theory/models/quadratic_mlp.py (mse_loss): a mean of squares, no exponentials; float32 "
                "rounding of the sum is ~1e-6 relative"),
    ]


PART = Part("grokking", predict, measure, judge)
