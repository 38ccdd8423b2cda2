"""Error compounding along a chain of steps: the independence model (Dziri et al. 2023, "Faith and Fate").

A computation of m steps succeeds when every step does. If step i fails with probability eps_i,
independently of the other steps, the chain succeeds with probability

    A_hat = prod_{i=1}^m (1 - eps_i)                            (proofs/error_compounding.py)

so ln A_hat = sum_i ln(1 - eps_i) is linear in m when eps_i is constant. This is a modelling
hypothesis (the paper argues that errors compound; the product form is ours), so a prediction
made from it is conditional on the step errors eps_i it is given.

Standard error. With eps_i estimated as the error rate of step i over n chains (a binomial
proportion, var = eps_i (1 - eps_i) / n) and the estimates independent (as they are under the
hypothesis), the delta method gives

    se(A_hat)^2 = sum_i eps_i (1 - eps_i) / n * prod_{j != i} (1 - eps_j)^2,

(dA_hat / d eps_i = -prod_{j != i} (1 - eps_j)), which stays finite when some eps_i = 1.

Two-sided tolerance of a comparison with a measured success rate A of n chains:

    |A - A_hat| <= z sqrt(A (1 - A) / n) + z se(A_hat).
"""
from __future__ import annotations

import numpy as np


def chain_success(eps) -> float:
    """A_hat = prod_i (1 - eps_i): the success probability of a chain with independent step failures."""
    return float(np.prod(1.0 - np.asarray(eps, float)))


def chain_success_se(eps, n: int) -> float:
    """Delta-method standard error of A_hat when each eps_i is a proportion over n chains."""
    e = np.asarray(eps, float)                                     # (m,)
    keep = 1.0 - e                                                 # (m,)
    others = np.array([np.prod(np.delete(keep, i)) for i in range(e.size)])   # (m,) prod_{j != i}
    return float(np.sqrt(np.sum(e * (1.0 - e) / n * others ** 2)))


def tolerance(A: float, eps, n: int, z: float = 3.0) -> float:
    """z sqrt(A (1 - A) / n) + z se(A_hat): the band of |A - A_hat| (module docstring)."""
    return float(z * np.sqrt(max(A * (1.0 - A), 0.0) / n) + z * chain_success_se(eps, n))


def log_linear_r2(k, A) -> float:
    """R^2 of the least-squares line through (k, ln A_k); 1 when ln A is constant (a line too)."""
    k, y = np.asarray(k, float), np.log(np.asarray(A, float))
    slope, intercept = np.polyfit(k, y, 1)
    ss_res = float(np.sum((y - (slope * k + intercept)) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float(ss_res <= 1e-24)


def log_curvature(k, A) -> float:
    """The quadratic coefficient of a least-squares parabola through (k, ln A_k): > 0 convex (the
    chains fail less than a constant rate predicts: errors cluster), < 0 concave (collapse)."""
    return float(np.polyfit(np.asarray(k, float), np.log(np.asarray(A, float)), 2)[0])
