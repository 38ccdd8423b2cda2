"""Part `even_pairs`: sin/cos against randomized sin/cos, trained on lengths 1..N, tested beyond.

Two encoder variants of one sweep (paired seeds, experiments/length_generalization/runs.py):
sin/cos at positions 0..T-1 and sin/cos at sorted random positions from {0..L-1}, `steps` Adam
steps each. The label of even_pairs is [x_1 == x_n] (theory/tasks/algorithmic.py), so chance is
1/2 at every length.

    predict   chance (1/2) and the training range; the thresholds below are `expected` (reference
              runs), not derived
    measure   accuracy (variant, seed, length) at cfg.lengths and the loss traces
    judge     (task even_pairs only; seed means) sin/cos >= 0.99 in distribution and within 0.06 of
              chance at every length >= 60; randomized >= 0.85 at length 60 and >= 0.65 at length
              200 exactly (the length the bound was set for); randomized - sin/cos >= 0.2 at every
              length in 60..200. Beyond 200 (300, 500 in the full preset) the randomized accuracy
              keeps decaying; it is reported (`decay`), never judged: no bound has been derived there
"""
from __future__ import annotations

import numpy as np

from experiments.length_generalization import runs
from theory.engine.keys import Keys
from theory.harness.results import Check, at_least, close
from theory.tasks import algorithmic

VARIANTS = runs.VARIANTS[:2]               # sin_cos, randomized_sin_cos
BEYOND = 60                                # lengths >= BEYOND are "beyond the training range"
IN_DIST_MIN = 0.99
CHANCE_BAND = 0.06
RANDOMIZED_AT_60_MIN = 0.85
FAR = 200                                  # the length RANDOMIZED_FAR_MIN was set for
RANDOMIZED_FAR_MIN = 0.65
GAP_MIN = 0.2
REFERENCE = "the full preset, experiments/length_generalization/config.py"
"""The reference runs (3 seeds, lengths to 500) the expected thresholds were set against."""


def decay(lengths, acc) -> dict:
    """The seed-mean accuracies at the test lengths beyond FAR: observed decay, reported and never judged."""
    E, acc = np.asarray(lengths), np.asarray(acc, float).mean(axis=1)              # (E,), (2, E)
    far = E > FAR
    return {"lengths": E[far].tolist(), "sin_cos": acc[0, far].tolist(), "randomized_sin_cos": acc[1, far].tolist()}


def predict(cfg) -> dict:
    return {"chance": algorithmic.get(cfg.task).chance, "train_max_len": cfg.train_max_len,
            "lengths": cfg.lengths}


def measure(cfg, keys: Keys, progress: str | None) -> dict:
    run_keys = keys.sub(cfg.task, "sin_cos").runs(cfg.seeds)                        # (S, 2)
    schedule = keys.sub(cfg.task, "sin_cos", "lengths").key                         # step lengths, shared
    acc, loss = runs.train_and_eval(cfg, cfg.task, "sin_cos", VARIANTS, run_keys, cfg.steps,
                                    cfg.lengths, schedule, progress)                # (2, S, E), (2, S, n_logs)
    return {"lengths": cfg.lengths, "variants": [v.name for v in VARIANTS], "acc": acc,
            "loss": loss, "steps": cfg.steps, "decay": decay(cfg.lengths, acc)}


def judge(cfg, P: dict, M: dict) -> list[Check]:
    if cfg.task != "even_pairs":
        return []
    E = np.asarray(M["lengths"])
    sc, rnd = np.asarray(M["acc"], float).mean(axis=1)                              # (E,) each
    n_test = cfg.eval_batch * np.asarray(M["acc"]).shape[1]
    se = 0.5 / np.sqrt(n_test)                                                      # s.e. at chance
    ind, beyond = E <= P["train_max_len"], E >= BEYOND
    checks = [at_least(
        "sincos_in_distribution_min",
        f"sin/cos is at least {IN_DIST_MIN} accurate at every test length within 1..{P['train_max_len']}.",
        "expected", IN_DIST_MIN, float(sc[ind].min()),
        f"threshold from the reference runs ({REFERENCE}); seed mean")]
    for n in E[beyond]:
        checks.append(close(
            f"sincos_at_{n}", f"sin/cos is at chance at length {n}, beyond the training range.",
            "expected", P["chance"], float(sc[E == n][0]), CHANCE_BAND,
            f"band from the reference runs ({REFERENCE}); "
            f"{CHANCE_BAND} = {CHANCE_BAND / se:.1f} s.e. of {n_test} test sequences at chance",
            rel=False))
    if BEYOND in E:
        checks.append(at_least(
            f"randomized_at_{BEYOND}", f"Randomized sin/cos is at least {RANDOMIZED_AT_60_MIN} accurate at "
            f"length {BEYOND}.", "expected", RANDOMIZED_AT_60_MIN, float(rnd[E == BEYOND][0]),
            f"threshold from reference runs (0.89-0.93 at length 60; {REFERENCE})"))
    if FAR in E:
        checks.append(at_least(
            f"randomized_at_{FAR}", f"Randomized sin/cos is at least {RANDOMIZED_FAR_MIN} accurate at length {FAR}.",
            "expected", RANDOMIZED_FAR_MIN, float(rnd[E == FAR][0]),
            f"threshold from reference runs at length {FAR} (0.70-0.74, and 0.700-0.777 over the 3 seeds of "
            f"{REFERENCE}), applied at exactly {FAR}; beyond it the accuracy keeps decaying and is reported, "
            "not judged"))
    window = beyond & (E <= FAR)
    if window.any():
        checks.append(at_least(
            f"gap_{BEYOND}_to_{FAR}_min", f"Randomized sin/cos beats sin/cos by at least {GAP_MIN} at every "
            f"test length in {BEYOND}..{FAR}.", "expected", GAP_MIN, float((rnd - sc)[window].min()),
            f"threshold from reference runs ({REFERENCE}); min over the lengths {BEYOND}..{FAR} of the "
            "seed-mean gap (beyond it the gap shrinks with the decay and is reported, not judged)"))
    return checks
