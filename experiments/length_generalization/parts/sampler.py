"""Part `sampler`: the training position sampler against the order-statistic moments.

The randomized encoding places the n real tokens at i_(1) < ... < i_(n), a sorted uniform
n-subset of {0..L-1} (theory/models/positional.py: sample_positions). Its k-th entry has

    E[i_(k)]   = k (L+1) / (n+1) - 1
    Var[i_(k)] = k (n-k+1) (L+1) (L-n) / ((n+1)^2 (n+2))

(proofs/length_generalization.py: prove_order_statistic_mean, prove_order_statistic_variance).

    predict   the two formulas at k = 1..n, and as exact rationals on a small grid of (k, n, L)
    measure   `sampler_draws` calls of the sampler (one padding slot, as in training): sample mean,
              variance and 4th central moment of every i_(k); exact rational sums over the pmf
              P(i_(k) + 1 = j) = C(j-1, k-1) C(L-j, n-k) / C(L, n) on the grid
    judge     max_k |z| of the means (3 s.e.) and of the variances (4 s.e.: a max over n
              correlated statistics, s.e. of a sample variance sqrt((m4 - s^4) / draws));
              closed forms == pmf sums exactly
"""
from __future__ import annotations

from fractions import Fraction

import jax
import numpy as np

from theory.engine.keys import Keys
from theory.harness.results import Check, at_most, close
from theory.models import positional
from theory.predictions import length_generalization as pred

EXACT_GRID = tuple((k, n, L) for L in (7, 12) for n in (1, 3, 5) for k in range(1, n + 1))
"""(k, n, L) at which the closed forms are compared with the pmf sums as rationals."""

MEAN_Z_MAX = 3.0
VAR_Z_MAX = 4.0
WHY = "proofs/length_generalization.py (prove_order_statistic_mean, prove_order_statistic_variance)"


def sampler_moments(key: jax.Array, n: int, L: int, draws: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample mean, variance (ddof 1) and 4th central moment of i_(k), k = 1..n, each (n,), over
    `draws` calls of the training sampler (one padding slot, as in training)."""
    T = n + 1
    p = jax.jit(jax.vmap(lambda k: positional.sample_positions(k, n, T, L)))(
        jax.random.split(key, draws))[:, :n]                                       # (draws, n)
    p = np.asarray(p, dtype=np.float64)
    m4 = np.mean((p - p.mean(axis=0)) ** 4, axis=0)                                # (n,)
    return p.mean(axis=0), p.var(axis=0, ddof=1), m4


def _rational_pairs(moments) -> list[list[str]]:
    """[(mean, var)] of Fractions -> [["p/q", "p/q"]]: exact and JSON-safe."""
    return [[str(m), str(v)] for m, v in moments]


def predict(cfg) -> dict:
    n, L = cfg.sampler_n, cfg.max_pos
    k = np.arange(1, n + 1)
    return {"k": k, "n": n, "L": L, "draws": cfg.sampler_draws,
            "mean": pred.order_stat_mean(k, n, L), "var": pred.order_stat_var(k, n, L),
            "exact_grid": EXACT_GRID,
            "exact": _rational_pairs(pred.order_stat_moments_closed_form(*g) for g in EXACT_GRID)}


def measure(cfg, keys: Keys, progress: str | None) -> dict:
    mean, var, m4 = sampler_moments(keys.key, cfg.sampler_n, cfg.max_pos, cfg.sampler_draws)
    return {"mean": mean, "var": var, "m4": m4,
            "exact": _rational_pairs(pred.order_stat_moments_exact(*g) for g in EXACT_GRID)}


def z_scores(P: dict, M: dict) -> tuple[np.ndarray, np.ndarray]:
    """(z of each sample mean, z of each sample variance) against the formulas, each (n,)."""
    draws = float(P["draws"])
    mean_p, var_p = np.asarray(P["mean"], float), np.asarray(P["var"], float)
    mean_m, var_m, m4 = (np.asarray(M[x], float) for x in ("mean", "var", "m4"))
    z_mean = (mean_m - mean_p) / np.sqrt(var_p / draws)
    z_var = (var_m - var_p) / np.sqrt((m4 - var_m ** 2) / draws)
    return z_mean, z_var


def judge(cfg, P: dict, M: dict) -> list[Check]:
    z_mean, z_var = z_scores(P, M)
    n, draws = P["n"], P["draws"]
    err = max(abs(float(Fraction(m) - Fraction(p)))
              for pm, mm in zip(P["exact"], M["exact"]) for p, m in zip(pm, mm))
    return [
        at_most("sampler_mean_max_abs_z",
                f"The sample mean of every sorted random position i_(k), k = 1..{n}, lies within "
                f"{MEAN_Z_MAX:g} standard errors of k(L+1)/(n+1) - 1.",
                "predicted", MEAN_Z_MAX, float(np.max(np.abs(z_mean))),
                f"{WHY}; s.e. = sqrt(Var[i_(k)] / {draws}) over {draws} draws"),
        at_most("sampler_var_max_abs_z",
                f"The sample variance of every i_(k) lies within {VAR_Z_MAX:g} standard errors of "
                "k(n-k+1)(L+1)(L-n)/((n+1)^2(n+2)).",
                "predicted", VAR_Z_MAX, float(np.max(np.abs(z_var))),
                f"{WHY}; s.e. of a sample variance sqrt((m4 - s^4)/draws), {VAR_Z_MAX:g} s.e. as it "
                f"is a max over {n} correlated statistics"),
        close("sampler_formula_exact",
              "The closed-form mean and variance of i_(k) equal exact rational sums over its pmf.",
              "exact", 0.0, err, 0.0,
              f"{WHY}; L = 7, 12, n = 1, 3, 5, every k: an identity of rationals, so the error is 0",
              rel=False),
    ]
