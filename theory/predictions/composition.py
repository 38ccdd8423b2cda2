"""Predictions for `composition`: the one-step associative memory and the induction head's chance
levels (Bietti, Cabannes, Bouchacourt, Jegou & Bottou 2023, arXiv 2306.00802). Nothing here trains.

Part 1, the gradient at W = 0 (theory/models/associative_memory.py; proofs/composition.py). With
logit_y(x) = u_y^T W e_x and L = sum_x p(x) CE(logit(x), f(x)), dL/dW = sum_x p(x) sum_y
(softmax_y(x) - [y = f(x)]) u_y e_x^T; at W = 0 every softmax is 1/M, so

    G = -dL/dW|_0 = sum_x p(x) (u_f(x) - u_bar) e_x^T,    u_bar = (1/M) sum_y u_y      (closed_form_step)

Recall after the step (uniform p = 1/N, f a random bijection onto M = N outputs, e_x, u_y ~ N(0, I/d)).
Scale G by N (argmax is scale-free): the score of output k for input x is
s_k(x) = sum_x' a_k(x') b(x', x), a_k(x') = u_k.(u_f(x') - u_bar), b(x', x) = e_x'.e_x. Exactly,
E s_f(x)(x) = 1 - 1/M and E s_k(x) = -1/M (k != f(x)): the margin of the means is 1. To leading order
in 1/d, with |u|^2, |e|^2 of variance 2/d and inner products of distinct vectors of variance 1/d:

    correct class  Var s = 4/d (|u_f(x)|^2 |e_x|^2)  + (N - 1)/d^2 (the other N - 1 pairs)
    wrong class    Var s = 1/d (u_k.u_f(x) |e_x|^2) + 1/d (|u_k|^2 e_x'.e_x, x' = f^-1(k)) + (N - 2)/d^2

Independent-Gaussian model: the correct score ~ N(1, s_c^2), the M - 1 wrong scores iid N(0, s_w^2):

    acc(d) = E_Z[ Phi((1 + s_c Z) / s_w)^(M - 1) ],  Z ~ N(0, 1)                  (gaussian_accuracy)

(Gauss-Hermite quadrature). The wrong scores are in fact positively correlated (they share e_x and
the b(x', x)), which the model ignores. The research note's version has s_w^2 = 1/d + (N - 1)/d^2,
without the x' = f^-1(k) term; Monte Carlo (tests/test_composition.py) confirms the 2/d.
Gaussian maximum: the largest of M - 1 wrong scores is ~ s_w sqrt(2 ln M); with s_w ~ sqrt(N)/d
(the (N - 2)/d^2 term dominates at d ~ sqrt(N ln N)) the margin 1 beats it half the time at

    d_50 ~ sqrt(2 N ln M)                                                            (d50_formula)

Part 2, chance levels of the probes at a random initialisation (what "formed" is measured against):
wo1 picks one of V tokens (1/V), wk1 one of the k triggers (1/k), wk0 one of T - 1 positions
(1/(T - 1)); the trigger's successor is uniform over the V tokens, independent of the bigram, so a
bigram-only predictor is right on a target with probability 1/V (on average over sequences).
"""
from __future__ import annotations

import functools
import math

import numpy as np
from scipy.special import ndtr

GH_NODES = 200          # probabilists' Gauss-Hermite nodes (the integrand is smooth and bounded)


def closed_form_step(E: np.ndarray, U: np.ndarray, f: np.ndarray, p: np.ndarray) -> np.ndarray:
    """-dL/dW at W = 0: sum_x p(x) (u_f(x) - u_bar) e_x^T, (d, d)."""
    return (U[f] - U.mean(axis=0, keepdims=True)).T @ (p[:, None] * E)       # (d, N) (N, d)


def d50_formula(N: int, M: int) -> float:
    """sqrt(2 N ln M): the d at which one step from W = 0 recalls half of N pairs over M outputs."""
    return math.sqrt(2 * N * math.log(M))


def score_variances(N: int, d: float, note: bool = False) -> tuple[float, float]:
    """(s_c^2, s_w^2) of the correct and the wrong scores (margin 1); note=True: the research
    note's wrong-class variance 1/d + (N - 1)/d^2."""
    correct = 4 / d + (N - 1) / d ** 2
    wrong = 1 / d + (N - 1) / d ** 2 if note else 2 / d + (N - 2) / d ** 2
    return correct, wrong


@functools.lru_cache(maxsize=None)
def _hermite(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.hermite_e.hermegauss(nodes)


def gaussian_accuracy(N: int, M: int, d: float, note: bool = False) -> float:
    """E_Z[Phi((1 + s_c Z) / s_w)^(M - 1)]: the independent-Gaussian recall accuracy at dimension d."""
    z, w = _hermite(GH_NODES)
    sc2, sw2 = score_variances(N, d, note)
    return float(np.sum(w * ndtr((1 + math.sqrt(sc2) * z) / math.sqrt(sw2)) ** (M - 1)) / math.sqrt(2 * math.pi))


def gaussian_d50(N: int, M: int, note: bool = False) -> float:
    """The d at which gaussian_accuracy crosses 1/2 (bisection in log d; accuracy rises with d)."""
    lo, hi = math.log(2.0), math.log(64.0 * d50_formula(N, M))
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if gaussian_accuracy(N, M, math.exp(mid), note) < 0.5 else (lo, mid)
    return math.exp(0.5 * (lo + hi))


def crossing_log(xs, ys, level: float = 0.5) -> float:
    """The first x where ys rises through `level`, linear in log x between grid points; +inf if it
    never does and xs[0] if ys[0] is already >= level."""
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if ys[0] >= level:
        return float(xs[0])
    for i in range(1, len(xs)):
        if ys[i] >= level:
            t = (level - ys[i - 1]) / (ys[i] - ys[i - 1])
            return float(math.exp(math.log(xs[i - 1]) + t * (math.log(xs[i]) - math.log(xs[i - 1]))))
    return math.inf


def probe_chance(vocab: int, n_triggers: int, seq_len: int) -> dict:
    """Chance accuracy of the three memory probes and of a bigram-only predictor on the targets."""
    return {"wo1": 1 / vocab, "wk1": 1 / n_triggers, "wk0": 1 / (seq_len - 1), "bigram_on_targets": 1 / vocab}
