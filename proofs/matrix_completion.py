"""Proofs behind `arithmetic`'s completion part (theory/predictions/matrix_completion.py): exhaustive
checks over every mask of small tables, and the threshold formula's limit in sympy.

Each `prove_*()` asserts and returns None; tests/test_matrix_completion.py runs them (proofs/arithmetic.py
may import them).
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import sympy as sp

from theory.predictions import matrix_completion as mc


def _masks(r: int, c: int):
    """Every r x c 0/1 mask, as a tuple of revealed (i, j)."""
    cells = [(i, j) for i in range(r) for j in range(c)]
    for bits in range(1 << len(cells)):
        yield tuple(cell for k, cell in enumerate(cells) if bits >> k & 1)


def connected(r: int, c: int, revealed) -> bool:
    """Is the row-column graph of the revealed cells connected (all r + c vertices)?"""
    parent = list(range(r + c))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x
    for i, j in revealed:
        parent[find(i)] = find(r + j)
    return len({find(x) for x in range(r + c)}) == 1


def determined(r: int, c: int, revealed) -> bool:
    """Do the revealed values of an additive table a_i + b_j fix every entry? The linear map
    (a, b) -> (a_i + b_j)_{revealed} must have the kernel of the full map, whose rank is r + c - 1
    (the shift a + t, b - t): the revealed design matrix has rank r + c - 1 (exact integer rank)."""
    if not revealed:
        return False
    rows = [[int(k == i) for k in range(r)] + [int(k == j) for k in range(c)] for i, j in revealed]
    return sp.Matrix(rows).rank() == r + c - 1


def rule_closure(r: int, c: int, revealed, adjacent: bool) -> bool:
    """Does the 2x2 rule (a block with three known cells gets its fourth) fill the table? Over every
    2x2 block (rows i < i', columns j < j'), or only adjacent ones (i' = i + 1, j' = j + 1)."""
    known = set(revealed)
    blocks = [((i, j), (i, j2), (i2, j), (i2, j2))
              for i, i2 in itertools.combinations(range(r), 2) for j, j2 in itertools.combinations(range(c), 2)
              if not adjacent or (i2 == i + 1 and j2 == j + 1)]
    changed = True
    while changed:
        changed = False
        for b in blocks:
            if sum(x in known for x in b) == 3:
                known.update(b)
                changed = True
    return len(known) == r * c


def prove_identifiability_criterion(shapes=((1, 3), (2, 2), (2, 3), (3, 3))) -> None:
    """For every mask of every table shape: the additive table is determined <=> the graph is connected
    <=> the 2x2 rule over all blocks fills it; the adjacent-window rule filling it implies connected, and
    some connected masks defeat the adjacent rule (at 3 x 3)."""
    for r, c in shapes:
        for m in _masks(r, c):
            conn = connected(r, c, m)
            assert determined(r, c, m) == conn, (r, c, m)
            assert rule_closure(r, c, m, adjacent=False) == conn, (r, c, m)
            assert not rule_closure(r, c, m, adjacent=True) or conn, (r, c, m)
    strict = [m for m in _masks(3, 3) if connected(3, 3, m) and not rule_closure(3, 3, m, adjacent=True)]
    assert strict, "the adjacent rule should be strictly weaker at 3 x 3"


def prove_threshold_limit() -> None:
    """At N = n (ln n + c) the expected number of empty rows plus columns, 2 n (1 - 1/n)^N (with
    replacement; without replacement it is smaller), tends to 2 e^(-c); exp(-2 e^(-c)) = 1/2 at
    c = ln(2 / ln 2), so N_50 = n (ln n + ln(2 / ln 2))."""
    n, c = sp.symbols("n c", positive=True)
    log_mean = sp.log(2 * n) + n * (sp.log(n) + c) * sp.log(1 - 1 / n)
    assert sp.simplify(sp.limit(log_mean, n, sp.oo) - (sp.log(2) - c)) == 0
    c50 = sp.log(2 / sp.log(2))
    assert sp.simplify(sp.exp(-2 * sp.exp(-c50)) - sp.Rational(1, 2)) == 0
    assert abs(mc.asymptotic_n50(100) - float(100 * (sp.log(100) + c50))) < 1e-9


def _exact_by_enumeration(n: int, N: int) -> tuple[float, float]:
    """(P(no empty line), P(connected)) over every N-subset of the n x n cells."""
    cells = [(i, j) for i in range(n) for j in range(n)]
    total = no_empty = conn = 0
    for S in itertools.combinations(cells, N):
        total += 1
        rows, cols = {i for i, _ in S}, {j for _, j in S}
        no_empty += len(rows) == n and len(cols) == n
        conn += connected(n, n, S)
    return no_empty / total, conn / total


def prove_finite_n_bounds(sizes=(2, 3, 4)) -> None:
    """P0 equals the enumerated P(no empty row or column), and P0 - B <= P(connected) <= P0, for every N
    of every n in `sizes` (every subset of the n^2 cells; 4 x 4 is 2^16 subsets)."""
    for n in sizes:
        for N in range(1, n * n + 1):
            p0, pc = _exact_by_enumeration(n, N)
            lower, upper = mc.identifiable_bounds(n, N)
            assert math.isclose(upper, p0, abs_tol=1e-12), (n, N, upper, p0)
            assert lower - 1e-12 <= pc <= upper + 1e-12, (n, N, lower, pc, upper)


def prove_p0_rectangular(shapes=((2, 3), (3, 2), (1, 4), (3, 4))) -> None:
    """P0(a, b, m) equals the enumerated fraction of m-subsets with no empty row or column (a != b too)."""
    for a, b in shapes:
        cells = [(i, j) for i in range(a) for j in range(b)]
        for m in range(a * b + 1):
            subsets = list(itertools.combinations(cells, m))
            good = sum(len({i for i, _ in S}) == a and len({j for _, j in S}) == b for S in subsets)
            assert math.isclose(mc.p_no_empty_line(a, b, m), good / len(subsets), abs_tol=1e-12), (a, b, m)
    assert np.isfinite(mc.p_no_empty_line(100, 100, 550))
