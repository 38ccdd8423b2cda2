"""Host-side measurements shared by claims (numpy in, Python floats out; no JAX training here).

    first_crossing(x, level, "up")   first (interpolated) index where a series reaches a level
    mean_se(x)                       sample mean and its standard error
    cosine(A, B)                     Frobenius cosine <A, B> / (||A|| ||B||)
    cosine_trajectory(Ws, ref)       cosine of each snapshot W(k) with a fixed reference
    numerical_rank(W, rel_tol)       number of singular values above rel_tol * sigma_max
    relative_spread(v)               max v / min v - 1 (0 when all entries are equal)
"""
from __future__ import annotations

import math

import numpy as np


def first_crossing(x, level: float, direction: str = "up") -> float:
    """First fractional index t at which the series x[0], x[1], ... crosses `level`.

    direction "up": first x[k] >= level; "down": first x[k] <= level. Between the last index on
    the near side (k - 1) and k, t is interpolated linearly: t = k - 1 + (level - x[k-1]) /
    (x[k] - x[k-1]). Returns 0.0 when x[0] is already across, and inf when x never crosses.
    Callers map indices to steps (e.g. x[k] = value after k + 1 steps -> step = t + 1).
    """
    x = np.asarray(x, dtype=np.float64)
    if direction not in ("up", "down"):
        raise ValueError(f"direction is 'up' or 'down', got {direction!r}")
    across = np.nonzero(x >= level if direction == "up" else x <= level)[0]
    if across.size == 0:
        return math.inf
    k = int(across[0])
    if k == 0:
        return 0.0
    return (k - 1) + float((level - x[k - 1]) / (x[k] - x[k - 1]))


def mean_se(x) -> tuple[float, float]:
    """(mean, standard error of the mean) of a sample, in float64."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size))


def cosine(A, B) -> float:
    """<A, B>_F / (||A||_F ||B||_F)."""
    A, B = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    return float(np.sum(A * B) / (np.linalg.norm(A) * np.linalg.norm(B)))


def cosine_trajectory(Ws, ref) -> np.ndarray:
    """cos(W(k), ref) for snapshots Ws (K, ...) against one reference of shape Ws[0].shape."""
    Ws, ref = np.asarray(Ws, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    flat = Ws.reshape(Ws.shape[0], -1)
    return flat @ ref.reshape(-1) / (np.linalg.norm(flat, axis=1) * np.linalg.norm(ref))


def numerical_rank(W, rel_tol: float) -> int:
    """Number of singular values above rel_tol * sigma_max (0 for the zero matrix)."""
    s = np.linalg.svd(np.asarray(W, dtype=np.float64), compute_uv=False)
    return int(np.sum(s > rel_tol * s[0])) if s[0] > 0 else 0


def relative_spread(v) -> float:
    """max v / min v - 1 for positive entries (0 when all are equal)."""
    v = np.asarray(v, dtype=np.float64)
    return float(v.max() / v.min() - 1.0)
