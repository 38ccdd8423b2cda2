"""Predictions for `arithmetic`, part `completion`: when do N revealed sums determine the table of a + b?

Lee et al. 2024 ("Teaching Arithmetic to Small Transformers", ICLR 2024, abstract) read 2-digit addition as
low-rank matrix completion: the n x n table M_ij = i + j (n = 100, i, j = 0..n-1) has rank 2, and a
training set is a uniform N-subset of its cells (without replacement). Nothing here trains.

Identifiability. An additive table a_i + b_j is determined by the revealed cells iff the bipartite
graph G with the n rows and the n columns as vertices and one edge per revealed cell is connected
(proofs/matrix_completion.py proves it exhaustively for small n): along a path row i - col j - row i'
- col j' the differences a_i - a_i' and b_j - b_j' are fixed, so a connected G fixes every a_i + b_j;
a disconnected G leaves a free shift a + t, b - t on one component, which moves the unrevealed cells
between components. The same criterion says when the 2x2 rule M_i'j' = M_ij' + M_i'j - M_ij over ANY
2x2 block completes the table. ("Determined" is within the additive tables a_i + b_j, the structure
of the task; within all rank-2 matrices more cells are needed.)

Asymptotic threshold (Erdos-Renyi-type, random bipartite graphs). At N = n (ln n + c) the number of
empty rows plus empty columns is asymptotically Poisson with mean 2 e^(-c), and the graph is connected
iff there is none, so

    P(identifiable) ~ exp(-2 e^(-c)),       N_50 = n (ln n + ln(2 / ln 2))   (~566 at n = 100).

Finite n: two bounds that sandwich P(connected).

    upper  P0(n, n, N) = P(no empty row and no empty column)            (inclusion-exclusion, exact)
           P0(a, b, m) = sum_{s,t} (-1)^(s+t) C(a,s) C(b,t) C((a-s)(b-t), m) / C(ab, m)
    lower  P0 - B, where B bounds P(no empty line and disconnected): such a graph has a component
           (I, J) with |I| = i >= 1, |J| = j >= 1, i + j <= n (its smallest one), no revealed cell in
           the cut I x J^c + I^c x J, k >= i + j - 1 of its cells in the block I x J, the block
           without an empty line and the complementary block (n-i) x (n-j) without one either. By
           the union bound over (I, J), with H(k) = C(ij, k) C((n-i)(n-j), N-k) / C(n^2, N) the
           probability that the cut is empty and the block holds k cells,

               B = sum_{i,j} C(n,i) C(n,j) sum_k H(k) P0(i, j, k) P0(n-i, n-j, N-k)

           (given the split, each block's cells are uniform within it). Components with i + j <= SMALL
           enter with these factors; for i + j > SMALL the factors are dropped (each <= 1) and the sum
           over k is the probability that the cut is empty, C(ij + (n-i)(n-j), N) / C(n^2, N): still
           an upper bound, and negligible where 0.1 < P < 0.9.

So P0 - B <= P(identifiable) <= P0 (checked against every subset at n <= 4 in proofs/
matrix_completion.py), and B is the error bound of the finite-n prediction. It is dominated by an
isolated revealed cell (a row and a column that see only each other: i = j = 1) and, where
0.1 < P0 < 0.9, is at most 0.0084 at n = 100 and 0.034 at n = 20 (tests/test_matrix_completion.py).
P0 crosses 1/2 at N = 549.7 at n = 100 (P0 - B at 550.6), below the asymptotic 566.5: the finite-n
band is what a simulation is checked against, the asymptotic formula is reported beside it.

Numerics: the inclusion-exclusion terms are computed in logs (a cached table of ln k!) and summed
in float64; terms whose total is below 1e-15 are dropped (`_terms`), so P0 carries an absolute error
of about 1e-13 where 0.01 < P0 < 0.99.

Lee et al.'s notebook (lee-ny/teaching_arithmetic, matrix_completion/iterative_mc_method.ipynb,
`iterative_2_by_2_solver`) fills only ADJACENT 2x2 windows (rows i, i+1 x columns j, j+1) that have
three known cells, until a pass fills nothing, and succeeds iff every cell is known. Its closure does
not depend on the scan order (filling is monotone), so experiments/arithmetic/parts/completion.py
(`adjacent_complete`) computes it with parallel sweeps. It needs far more cells (50% near 1400 at
n = 100): it is an algorithm's threshold, not the identifiability threshold, and is reported beside it.
"""
from __future__ import annotations

import math

import numpy as np

SMALL = 8            # components with i + j <= SMALL enter the gap bound with their exact P0 factors


_LOG_FACTORIAL = np.zeros(1)            # ln k! for k = 0..len-1, grown on demand


def log_factorial(k: np.ndarray) -> np.ndarray:
    """ln k! for non-negative integer arrays k (a cached table of cumulative logs)."""
    global _LOG_FACTORIAL
    top = int(np.max(k, initial=0))
    if top >= _LOG_FACTORIAL.size:
        _LOG_FACTORIAL = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, 2 * top + 2, dtype=np.float64)))])
    return _LOG_FACTORIAL[k]


def log_comb(n, k) -> np.ndarray:
    """ln C(n, k) elementwise for integers (float64), -inf where k < 0 or k > n."""
    n, k = np.broadcast_arrays(np.asarray(n, dtype=np.int64), np.asarray(k, dtype=np.int64))
    ok = (k >= 0) & (k <= n)
    kk, nn = np.where(ok, k, 0), np.where(ok, n, 0)
    return np.where(ok, log_factorial(nn) - log_factorial(kk) - log_factorial(nn - kk), -np.inf)


def p_no_empty_lines(a: int, b: int, m) -> np.ndarray:
    """P0(a, b, m) for each m of the array `m`: m cells uniform without replacement in an a x b grid leave
    no row and no column empty (inclusion-exclusion over the s empty rows and t empty columns; float64,
    each term exp(log C(a,s) + log C(b,t) + log C((a-s)(b-t), m) - log C(ab, m)))."""
    m = np.atleast_1d(np.asarray(m, dtype=np.int64))                     # (K,)
    if a == 0 or b == 0:
        return np.where((a == 0) & (b == 0) & (m == 0), 1.0, 0.0)
    mm = np.clip(m, 0, a * b)                                            # (K,) in range (others -> 0 below)
    s = np.arange(_terms(a, b, int(mm.min())))[:, None, None]            # (S, 1, 1)
    t = np.arange(_terms(b, a, int(mm.min())))[None, :, None]            # (1, T, 1)
    log_t = (log_comb(a, s) + log_comb(b, t) + log_comb((a - s) * (b - t), mm[None, None, :])
             - log_comb(a * b, mm)[None, None, :])                        # (a+1, b+1, K)
    sign = np.where((s + t) % 2 == 0, 1.0, -1.0)                         # (a+1, b+1, 1)
    p = np.sum(sign * np.exp(log_t), axis=(0, 1))                        # (K,)
    p = np.where((m < max(a, b)) | (m > a * b), 0.0, p)
    return np.clip(p, 0.0, 1.0)


def _terms(a: int, b: int, m: int, tail: float = 1e-15) -> int:
    """How many s = 0, 1, ... of the inclusion-exclusion to keep: C(X, m) / C(Y, m) <= (X / Y)^m bounds
    the (s, t) term by R_s C_t, R_s = C(a, s) (1 - s/a)^m, C_t = C(b, t) (1 - t/b)^m, so dropping
    s >= S changes the sum by at most (sum_{s >= S} R_s) (sum_t C_t) < `tail` (m the smallest m)."""
    if m == 0:
        return a + 1

    def bound_logs(a, m):
        k = np.arange(a + 1)
        with np.errstate(divide="ignore"):
            return log_comb(a, k) + m * np.log1p(-k / a)
    R, Cs = np.exp(bound_logs(a, m)), np.exp(bound_logs(b, m))
    tails = np.cumsum(R[::-1])[::-1] * Cs.sum()                          # tails[S] = sum_{s >= S} R_s x sum C
    small = np.nonzero(tails < tail)[0]
    return int(small[0]) if small.size else a + 1


def p_no_empty_line(a: int, b: int, m: int) -> float:
    """P0(a, b, m) at one m (`p_no_empty_lines`)."""
    return float(p_no_empty_lines(a, b, [m])[0])


def gap_bound(n: int, N: int, small: int = SMALL) -> float:
    """B(n, N) >= P(no empty row or column, but the revealed graph disconnected) (module docstring)."""
    if N < n or N >= n * n:
        return 0.0
    total_log = log_comb(n * n, N)
    B = 0.0
    for i in range(1, small):                                  # exact part: i + j <= small
        for j in range(1, small + 1 - i):
            if i + j > n:
                continue
            rest = (n - i) * (n - j)
            ks = np.arange(i + j - 1, min(i * j, N) + 1)                   # (K,) cells in the block
            logH = log_comb(i * j, ks) + log_comb(rest, N - ks) - total_log   # (K,)
            inner = p_no_empty_lines(i, j, ks) * p_no_empty_lines(n - i, n - j, N - ks)   # (K,)
            B += float(np.sum(np.exp(float(log_comb(n, i) + log_comb(n, j)) + logH) * inner))
    i = np.arange(1, n)[:, None]                                # crude part: i + j > small, i + j <= n
    j = np.arange(1, n)[None, :]
    inside = i * j + (n - i) * (n - j)                          # cells off the cut
    log_cut = log_comb(n, i) + log_comb(n, j) + log_comb(inside, N) - total_log   # (n-1, n-1)
    keep = (i + j > small) & (i + j <= n)
    B += float(np.sum(np.exp(np.where(keep, log_cut, -np.inf))))
    return min(B, 1.0)


def identifiable_bounds(n: int, N: int) -> tuple[float, float]:
    """(P0 - B, P0): the finite-n lower and upper bounds on P(identifiable) at N revealed cells."""
    upper = p_no_empty_line(n, n, N)
    return max(upper - gap_bound(n, N), 0.0), upper


def asymptotic_p(n: int, N) -> np.ndarray:
    """exp(-2 e^(-c)) with c = N / n - ln n (the Poisson limit of the empty rows and columns)."""
    c = np.asarray(N, dtype=np.float64) / n - math.log(n)
    return np.exp(-2.0 * np.exp(-c))


def asymptotic_n50(n: int) -> float:
    """N_50 = n (ln n + ln(2 / ln 2)): exp(-2 e^(-c)) = 1/2 at c = ln(2 / ln 2)."""
    return n * (math.log(n) + math.log(2.0 / math.log(2.0)))


def crossing(Ns, P, level: float = 0.5) -> float:
    """The N at which the curve P(N) first reaches `level`, linearly interpolated between grid points
    (+inf if it never does; the first grid point if it starts there)."""
    Ns, P = np.asarray(Ns, dtype=np.float64), np.asarray(P, dtype=np.float64)
    hit = np.nonzero(P >= level)[0]
    if hit.size == 0:
        return math.inf
    k = int(hit[0])
    if k == 0:
        return float(Ns[0])
    x0, x1, y0, y1 = Ns[k - 1], Ns[k], P[k - 1], P[k]
    return float(x0 + (level - y0) * (x1 - x0) / (y1 - y0))


def curve_grid(n: int, points: int = 13, lo: float = 0.02, hi: float = 0.995) -> np.ndarray:
    """`points` integer N spread over the asymptotic curve's range [lo, hi] (where 0 < P < 1 matters)."""
    c_lo, c_hi = -math.log(-math.log(lo) / 2), -math.log(-math.log(hi) / 2)
    N = np.round(n * (math.log(n) + np.linspace(c_lo, c_hi, points))).astype(int)
    return np.unique(np.clip(N, 1, n * n - 1))


def predict_curve(n: int, Ns) -> dict:
    """Finite-n bounds, the gap bound and the asymptotic curve at each N of `Ns`."""
    lower, upper = zip(*(identifiable_bounds(n, int(N)) for N in Ns))
    return {"N": [int(N) for N in Ns], "lower": list(lower), "upper": list(upper),
            "asymptotic": asymptotic_p(n, Ns).tolist(),
            "n50_upper": crossing(Ns, upper), "n50_lower": crossing(Ns, lower), "n50_asymptotic": asymptotic_n50(n)}
