"""Host-side numpy on the logged traces of `rank_growth`: what `measure` reads off a run, and the
comparisons the judges share. No JAX training here."""
from __future__ import annotations

import math

import numpy as np

from theory.metrics import first_crossing

CURVE_POINTS = 400   # points kept per curve in the result file


# --- JSON values and names -------------------------------------------------------------------------
def floats(x) -> np.ndarray:
    """A JSON value (nested lists, "inf"/"nan" strings) as a float64 array."""
    return np.asarray(x, dtype=np.float64)


def alpha_tag(alpha: float) -> str:
    """A snake_case-safe spelling of an init scale for check names: 1e-06 -> "1em6", 2.5e-3 -> "2p5em3"."""
    mantissa, exponent = f"{alpha:.6e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".").replace(".", "p")
    e = int(exponent)
    return f"{mantissa}e{'m' if e < 0 else ''}{abs(e)}"


def thin_factor(n_steps: int) -> int:
    return max(1, n_steps // CURVE_POINTS)


def log_grid(n_steps: int, points: int = CURVE_POINTS) -> np.ndarray:
    """Sorted distinct indices 0..n_steps-1, spaced evenly in log(index + 1), first and last included:
    a trajectory kept at ~`points` entries with its early steps as densely as its late ones."""
    return np.unique(np.rint(np.geomspace(1, n_steps, points)).astype(int) - 1)


def thin(x, axis: int = 0) -> np.ndarray:
    """Every k-th entry along the step axis (k = thin_factor), so curves stay ~CURVE_POINTS long."""
    x = np.asarray(x)
    return np.take(x, np.arange(0, x.shape[axis], thin_factor(x.shape[axis])), axis=axis)


# --- measurements ------------------------------------------------------------------------------------
def crossing_step(x: np.ndarray, level: float) -> float:
    """First (linearly interpolated) GD step at which the per-step series x reaches `level`.

    x[k] is the value after k + 1 steps, so the step is first_crossing's index + 1 (inf: never)."""
    return first_crossing(x, level, "up") + 1.0


def activation_steps(theta: np.ndarray, thr: float) -> np.ndarray:
    """(p,) first step (1-based) at which |theta_i| > thr; inf if never. theta (steps, p)."""
    out = np.full(theta.shape[1], math.inf)
    for i in range(theta.shape[1]):
        hit = np.nonzero(np.abs(theta[:, i]) > thr)[0]
        if hit.size:
            out[i] = hit[0] + 1
    return out


def change_events(values) -> list[list]:
    """[[k, values[k]], ...] at k = 0 and at every index where the value changes (a piecewise-constant
    series in a few entries). values: a sequence of ints or of tuples."""
    out = []
    for k, v in enumerate(values):
        if not out or out[-1][1] != v:
            out.append([k, v])
    return out


def active_set_changes(theta: np.ndarray, thr: float) -> list[list[int]]:
    """The active set {i : |theta_i| > thr} (sorted) each time it changes, in order. theta (steps, p)."""
    sets, prev = [], ()
    for row in np.abs(theta) > thr:
        cur = tuple(np.nonzero(row)[0].tolist())
        if cur != prev:
            sets.append(list(cur))
            prev = cur
    return sets


def plateau_levels(loss: np.ndarray, act_steps: np.ndarray) -> np.ndarray:
    """Loss on each plateau: between consecutive activation steps (and before the first / after the
    last), the loss at the step where |loss[k+1] - loss[k]| is smallest. loss (steps,)."""
    bounds = np.concatenate([[0], np.asarray(act_steps, dtype=int), [len(loss)]])
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        last = int(hi) == len(loss)
        lo, hi = int(lo), (len(loss) if last else max(int(hi) - 1, int(lo) + 1))
        seg = loss[lo:hi]
        if seg.size < 2:
            out.append(float(seg[0]) if seg.size else math.nan)
            continue
        k = int(np.argmin(np.abs(np.diff(seg))))
        out.append(float(seg[k]))
    return np.asarray(out)


# --- comparisons ---------------------------------------------------------------------------------------
def staircase(count) -> tuple[int, list[int]]:
    """(largest jump between consecutive entries, the distinct levels in order of appearance)."""
    count = np.asarray(count)
    jumps = np.diff(count)
    levels = [int(count[0])] + [int(c) for c, j in zip(count[1:], jumps) if j != 0]
    return int(jumps.max(initial=0)), levels


def _value_at(events: list, k: int):
    """The value of a piecewise-constant series (given by change_events) at index k."""
    value = events[0][1]
    for start, v in events:
        if start > k:
            break
        value = v
    return value


def climbs_every_level(levels: list[int], r: int) -> bool:
    """Do the distinct levels of a count (in order of appearance) climb 1, 2, .., r, or 0, 1, .., r:
    monotone, starting at most at 1, no level skipped, ending at r? [1, 2, 3] and [0, 1, 2, 3] yes;
    [2, 1, 2, 3] (a drop), [2, 3] (starts above 1), [1, 3] (skips 2), [1, 2] (stops short) no."""
    return bool(levels) and levels[0] in (0, 1) and levels == list(range(levels[0], r + 1))


def binomial_lower_quantile(n: int, p: float, q: float) -> int:
    """The q-quantile of Binomial(n, p): the smallest k with P(X <= k) >= q. A count below it has
    probability P(X <= k - 1) < q at rate p; at p = 1 it is n (every trial must succeed)."""
    cdf = 0.0
    for k in range(n + 1):
        cdf += math.comb(n, k) * p ** k * (1 - p) ** (n - k)
        if cdf >= q:
            return k
    return n


def rank_staircase(count_events: list, mode_events: list, r: int) -> tuple[bool, list[int]]:
    """Does the count of learned singular values rise 0, 1, .., r in unit steps, with the learned
    modes always the top ones (mode i learned iff i < count)? Returns (ok, levels).

    count_events / mode_events: change_events of the per-step count and of the learned-mode set;
    both series are constant between their change points, so checking at every change point checks
    every step. The network starts empty (count 0 before the first step)."""
    values = [0] + [c for _, c in count_events]
    jump, levels = staircase(values)
    prefix = all(
        sorted(_value_at(mode_events, k)) == list(range(_value_at(count_events, k)))
        for k in sorted({k for k, _ in count_events} | {k for k, _ in mode_events}))
    return bool(jump <= 1 and levels == list(range(r + 1)) and prefix), levels


def grows_by_one(sets: list[list[int]]) -> bool:
    """Does each change of the active set add exactly one coordinate (and remove none)?"""
    prev = frozenset()
    ok = True
    for s in sets:
        cur = frozenset(s)
        ok &= prev < cur and len(cur - prev) == 1
        prev = cur
    return bool(ok)


def order_agrees(times_pred, tau_meas, coords_pred, coords_meas, rel: float) -> tuple[bool, list]:
    """Does the measured activation order match the predicted one for every pair of stages whose
    predicted times differ by more than the finite-alpha resolution (T_l > T_k (1 + rel))?

    Also requires the same set of coordinates to activate. Returns (ok, unresolved pairs (k, l)).
    """
    ok = set(coords_meas) == set(coords_pred)
    ties = []
    for k in range(len(times_pred)):
        for l in range(k + 1, len(times_pred)):
            if times_pred[l] > times_pred[k] * (1 + rel):
                ok &= bool(tau_meas[k] < tau_meas[l])
            else:
                ties.append((k, l))
    return bool(ok), ties
