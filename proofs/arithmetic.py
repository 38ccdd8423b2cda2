"""Symbolic checks (sympy) of the algebra behind `arithmetic`'s construction (theory/models/adder.py).

Each `prove_*()` asserts an identity and returns None; pytest runs them from tests/test_arithmetic.py.
Notation: a_i, b_i, c_i the digits of significance i of a, b and a + b; k_i the carry into digit i
(k_0 = 0).
"""
from __future__ import annotations

import sympy as sp


def _digits_step(a, b, k):
    """(c, k_next) of one column: c = (a + b + k) mod 10, k_next = [a + b + k >= 10]."""
    s = a + b + k
    return s % 10, int(s >= 10)


def prove_carry_recursion() -> None:
    """What the attention pattern reads is enough for the next digit.

    The head `prev` at the query of c_i reads a_(i-1), b_(i-1) and c_(i-1) (PREV - 2 VAL =
    a_(i-1) + b_(i-1) - c_(i-1)); the head `cur` reads a_i + b_i. With the column identity
    a + b + k = c + 10 k' (k' the carry out):

        x = a_(i-1) + b_(i-1) - c_(i-1) = 10 k_i - k_(i-1)  in {-1, 0, 9, 10},   k_i = [x >= 1],
        s' = a_i + b_i + x / 10 = (a_i + b_i + k_i) - k_(i-1) / 10,

    so s' is within 1/10 of the column sum a_i + b_i + k_i, whose residue mod 10 is c_i. Proved
    symbolically from the column identity and exhaustively over the 200 columns (a, b, k)."""
    a, b, c, k, kn, u = sp.symbols("a b c k k_next u", integer=True)
    column = sp.Eq(a + b + k, c + 10 * kn)
    x = sp.solve(column, c)[0]                                         # c = a + b + k - 10 k'
    assert sp.expand((a + b - x) - (10 * kn - k)) == 0                 # x = 10 k' - k
    s_prime = u + (a + b - x) / 10
    assert sp.expand(s_prime - (u + kn) + k / sp.Integer(10)) == 0     # s' = u + k' - k/10
    seen = set()
    for ai in range(10):
        for bi in range(10):
            for ki in (0, 1):
                ci, ko = _digits_step(ai, bi, ki)
                xi = ai + bi - ci
                assert xi == 10 * ko - ki and xi in (-1, 0, 9, 10)
                assert ko == int(xi >= 1)
                seen.add(xi)
    assert seen == {-1, 0, 9, 10}


def prove_digits_sum() -> None:
    """The digits of the recursion spell a + b: with c_i = a_i + b_i + k_i - 10 k_(i+1) (k_0 = 0) and
    the top digit c_n = k_n, sum_i c_i 10^i = sum_i (a_i + b_i) 10^i (telescoping), for n = 1..6."""
    for n in range(1, 7):
        A = sp.symbols(f"a0:{n}")
        B = sp.symbols(f"b0:{n}")
        K = (sp.Integer(0),) + sp.symbols(f"k1:{n + 1}")
        digits = [A[i] + B[i] + K[i] - 10 * K[i + 1] for i in range(n)] + [K[n]]
        lhs = sum(d * 10 ** i for i, d in enumerate(digits))
        rhs = sum((A[i] + B[i]) * 10 ** i for i in range(n))
        assert sp.expand(lhs - rhs) == 0


def _hat(z):
    relu = lambda t: sp.Max(t, 0)                                      # noqa: E731
    return relu(2 * z + 1) - 2 * relu(2 * z) + relu(2 * z - 1)


def prove_hat_readout() -> None:
    """The MLP's readout: hat(z) = relu(2z + 1) - 2 relu(2z) + relu(2z - 1) is 1 - 2|z| on
    |z| <= 1/2 and 0 beyond, so with |s' - s| <= 1/10 (prove_carry_recursion) the logit of
    digit s mod 10, sum over m in {s mod 10, s mod 10 + 10} of hat(s' - m), is >= 4/5 and every
    other digit's logit is 0 (each other centre m is >= 9/10 away from s')."""
    z = sp.Symbol("z", real=True)
    h = _hat(z)
    for lo, hi, expr in ((-sp.Rational(1, 2), 0, 1 + 2 * z), (0, sp.Rational(1, 2), 1 - 2 * z)):
        piece = sp.piecewise_fold(h.rewrite(sp.Piecewise))
        t = sp.Symbol("t", positive=True)
        mid = lo + (hi - lo) * t / (1 + t)                            # every point of (lo, hi)
        assert sp.simplify(piece.subs(z, mid) - expr.subs(z, mid)) == 0
    for far in (sp.Rational(1, 2), sp.Rational(9, 10), 1, 3):
        t = sp.Symbol("t", nonnegative=True)
        assert sp.simplify(h.subs(z, far + t)) == 0 and sp.simplify(h.subs(z, -far - t)) == 0
    assert _hat(sp.Rational(1, 10)) == sp.Rational(4, 5) and _hat(-sp.Rational(1, 10)) == sp.Rational(4, 5)


# the identifiability criterion and the threshold's limit (Part 2) are proved beside their formulas
from proofs.matrix_completion import (  # noqa: E402,F401
    prove_finite_n_bounds,
    prove_identifiability_criterion,
    prove_threshold_limit,
)
