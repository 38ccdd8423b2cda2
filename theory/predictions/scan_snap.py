"""Predictions of scan and snap (Tian, Wang, Chen & Du, NeurIPS 2023, arXiv 2305.16380), from the
config alone: nothing here trains or reads trained parameters.

Time units: the theory's step t is one batch-size-1 SGD step on a uniformly drawn class, so a
class is visited s = t/K times. One full-batch GD step on the mean loss over K classes with
learning rate eta_Y moves each class's logits by eta_Y/K, i.e. it is one theory step in
expectation; GD step t therefore corresponds to s = t/K visits.

Decoder (Lemmas 5-6). With Z fixed and orthonormal f_n, the logits of class n are g_n = Y^T f_n,
symmetric in the M-1 wrong tokens; the logit gap is M h and one visit with rate eta does
    h <- h + eta / ((M-1) + e^{M h})                                  (Lemma 5, exact)
whose continuous version integrates to
    e^{M h} + (M-1) M h = M eta s + 1                                 (Lemma 6)
and the loss is  -log(e^{Mh} / (M-1 + e^{Mh})) = log(1 + (M-1) e^{-Mh}).

Snap time. Lemma 8 splits the decoder dynamics at x* = M h, the larger root of e^x = (M-1) x
(where the two terms of Lemma 6 are equal); the loss there is log(1 + 1/x*). Lemma 6 gives
    t0 eta_Y = K (e^{x*} + (M-1) x* - 1) / M        (19.7 for M = 33, K = 2)
independent of eta_Y: the snap time scales as 1/eta_Y (Theorem 4(a)). Lemma 5's recursion is the
forward-Euler discretisation of Lemma 6's ODE in the time eta s, first order in the step, so the
discrete crossing is t0 eta_Y = 19.697 + c1 eta_Y + O(eta_Y^2) (c1 = -0.89 for M = 33, K = 2:
19.25, 18.81, 17.89 at eta_Y = 0.5, 1, 2): Lemma 6's constant is the eta_Y -> 0 limit.

Scan (Theorem 2): dz_ml/dt = eta_Z f_nl^2 xi_n > 0 on a distinct token l of class n,
dz_ml/dt = -eta_Z sum_n (1 - f_nl^2) xi_n < 0 on a (single) common token.

Ordering (Theorem 3): since dz_l/dt is proportional to f_l^2 = P_l^2 e^{2 z_l} * (common factor),
    I_l(t) = (e^{-2 z_l(0)} - e^{-2 z_l(t)}) / P(l|n)^2
is the same for every distinct token l of class n (proofs/scan_snap.py), so z_l is ordered as P(l|n).
Derived for eta_Y >> eta_Z (Assumption 1c) and T -> infinity.

Snap / learning-rate ordering (Theorem 4, heuristic): with Gamma = eta_Z int gamma,
    Gamma(t) = (eta_Z/eta_Y) K (M-1)^2 h(t/K)^2 / 2,     B(t) = 1/4 ln(1 + 4 Gamma / C0)
(the paper's Eq. 129 writes 1/4 ln(C0 + 4 Gamma), dropping the constant that makes B(0) = 0).
At fixed eta_Z and a fixed step, a larger eta_Y gives a smaller Gamma hence a smaller B: denser
attention, smaller z_max (Theorem 4(c)).
"""
from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

from theory.errors import SandboxError


def snap_root(M: int) -> float:
    """x*: the larger root of e^x = (M-1) x (exists for M - 1 > e)."""
    if M - 1 <= math.e:
        raise SandboxError(f"e^x = (M-1)x has no root for M = {M}; need M >= 4")
    g = lambda x: x - math.log(M - 1) - math.log(x)   # same roots, well-scaled
    return brentq(g, 1.0, 10.0 * math.log(M) + 10.0, xtol=1e-15, rtol=4 * np.finfo(float).eps)


def snap_loss(M: int) -> float:
    """Loss at the snap point: log(1 + (M-1) e^{-x*}) = log(1 + 1/x*)."""
    return math.log1p(1.0 / snap_root(M))


def snap_time_times_eta(M: int, K: int) -> float:
    """t0 * eta_Y = K (e^{x*} + (M-1) x* - 1) / M, in GD steps (one step = one theory step)."""
    x = snap_root(M)
    return K * (math.exp(x) + (M - 1) * x - 1.0) / M


def decoder_h_discrete(M: int, eta: float, steps: int) -> np.ndarray:
    """h after 0..steps updates of Lemma 5's recursion h <- h + eta/((M-1) + e^{Mh}); (steps+1,).

    For full-batch GD over K orthogonal classes pass eta = eta_Y / K (each class gets eta_Y/K).
    """
    h = np.zeros(steps + 1)
    for t in range(steps):
        h[t + 1] = h[t] + eta / ((M - 1) + math.exp(M * h[t]))
    return h


def decoder_loss(M: int, h: np.ndarray) -> np.ndarray:
    """Cross-entropy at logit gap Mh: log(1 + (M-1) e^{-Mh})."""
    return np.log1p((M - 1) * np.exp(-M * np.asarray(h)))


def decoder_h_continuous(M: int, eta: float, s: np.ndarray) -> np.ndarray:
    """Solve e^{Mh} + (M-1) M h = M eta s + 1 for h (Lemma 6), elementwise in s >= 0."""
    s = np.atleast_1d(np.asarray(s, dtype=float))
    out = np.zeros_like(s)
    for i, si in enumerate(s):
        rhs = M * eta * si + 1.0
        if rhs <= 1.0:
            continue
        F = lambda x, rhs=rhs: math.exp(x) + (M - 1) * x - rhs   # x = M h, increasing
        out[i] = brentq(F, 0.0, math.log(rhs) + 1.0, xtol=1e-14) / M
    return out


def snap_gamma(M: int, K: int, eta_Y: float, eta_Z: float, t: float) -> float:
    """Theorem 4's Gamma(t) = (eta_Z/eta_Y) K (M-1)^2 h(t/K)^2 / 2 with the Lemma 6 h."""
    h = decoder_h_continuous(M, eta_Y, np.asarray([t / K]))[0]
    return (eta_Z / eta_Y) * K * (M - 1) ** 2 * h ** 2 / 2.0


def snap_B(M: int, K: int, eta_Y: float, eta_Z: float, t: float, C0: float = 1.0) -> float:
    """B(t) = 1/4 ln(1 + 4 Gamma(t)/C0) (Eq. 129 with its dropped constant restored)."""
    return 0.25 * math.log1p(4.0 * snap_gamma(M, K, eta_Y, eta_Z, t) / C0)


def predicted_zmax_order(M: int, K: int, eta_Ys, eta_Z: float, t: float) -> list[float]:
    """B(t) for each eta_Y: Theorem 4(c) predicts it (and z_max) strictly decreasing in eta_Y."""
    return [snap_B(M, K, float(e), eta_Z, t) for e in eta_Ys]


def uniform_entropy(n_distinct: int) -> float:
    """ln n: entropy of uniform attention over a class's distinct tokens."""
    return math.log(n_distinct)


def initial_entropy(n_distinct: int, lo: float, hi: float) -> float:
    """Entropy of c_n restricted to the distinct tokens at Z = 0: that of linspace(lo, hi) normalised."""
    p = np.linspace(lo, hi, n_distinct)
    p = p / p.sum()
    return float(-(p * np.log(p)).sum())


# The paper's Fig. 6 (Syn-Medium, 1 query / K = 2, 10 seeds, 100 SGD iterations, momentum 0.9,
# random init): mean entropy of c_n over distinct tokens, keyed by (eta_Z, eta_Y/eta_Z).
# These numbers were decoded from the authors' released data (the luckmatters repository,
# ssl/real-dataset/scan_snap/figure_6_data.pkl), not read from the paper's text; the pickle is
# binary and is not re-read here. A check against them is `expected`, not `predicted`.
PAPER_FIG6_ENTROPY = {
    (0.5, 1): 1.971, (0.5, 2): 2.007, (0.5, 5): 2.066, (0.5, 10): 2.092,
    (1.0, 1): 1.871, (1.0, 2): 1.937, (1.0, 5): 2.022, (1.0, 10): 2.053,
}


def paper_fig6_entropy(eta_Z: float, ratio: float) -> float | None:
    """The Fig. 6 reference mean at (eta_Z, eta_Y/eta_Z), or None where the data has no cell."""
    return PAPER_FIG6_ENTROPY.get((float(eta_Z), int(ratio))) if float(ratio).is_integer() else None
