"""Symbolic checks (sympy) of the algebra behind `modular_arithmetic`'s predictions.

Each `prove_*()` asserts an identity and returns None; pytest runs them from
tests/test_modular_arithmetic.py.
"""
from __future__ import annotations

import sympy as sp

al, be, ga = sp.symbols("alpha beta gamma", real=True)


def _noise(a, b, g):
    """The eight random-phase terms of (cos a + cos b)^2 cos g (theory/predictions/modular_arithmetic.py)."""
    return (sp.cos(g) + (sp.cos(2 * a - g) + sp.cos(2 * a + g) + sp.cos(2 * b - g) + sp.cos(2 * b + g)) / 4
            + (sp.cos(a + b + g) + sp.cos(a - b - g) + sp.cos(a - b + g)) / 2)


def prove_product_to_sum() -> None:
    """(cos alpha + cos beta)^2 cos gamma = 1/2 cos(alpha + beta - gamma) + noise, the noise being
    cos gamma + 1/4 [cos(2a -+ gamma) + cos(2b -+ gamma)] + 1/2 [cos(a+b+gamma) + cos(a-b-+gamma)]."""
    lhs = (sp.cos(al) + sp.cos(be)) ** 2 * sp.cos(ga)
    rhs = sp.cos(al + be - ga) / 2 + _noise(al, be, ga)
    assert sp.simplify(sp.expand_trig(sp.expand(lhs - rhs))) == 0


def prove_balanced_sum(p_values=(5, 7)) -> None:
    """sum_{sigma=1}^{(p-1)/2} cos(2 pi sigma m / p) = -1/2 for m != 0 mod p, so K copies of the
    frequency cycle (N = K (p-1)/2) give the coherent values N/2 at m = 0 and -K/2 = -N/(2(p-1)) else.

    General step: z = e^{i theta}, theta = 2 pi m / p, is a p-th root of unity != 1, so
    sum_{sigma=0}^{p-1} z^sigma = (z^p - 1)/(z - 1) = 0, i.e. sum_{sigma=1}^{p-1} cos(sigma theta) = -1;
    and cos((p - sigma) theta) = cos(2 pi m - sigma theta) = cos(sigma theta) pairs the two halves.
    Also checked exactly (minimal polynomials) at every offset of a few primes."""
    z, n, s_, th = sp.symbols("z n sigma theta")
    mi = sp.Symbol("m", integer=True)
    assert sp.simplify(sp.summation(z ** s_, (s_, 0, n - 1)) * (z - 1) - (z ** n - 1)) == 0
    assert sp.simplify(sp.cos(2 * sp.pi * mi - s_ * th) - sp.cos(s_ * th)) == 0
    x = sp.Symbol("x")
    for p in p_values:
        for m in range(1, p):
            total = sum(sp.cos(2 * sp.pi * k * m / p) for k in range(1, (p - 1) // 2 + 1))
            assert sp.minimal_polynomial(total + sp.Rational(1, 2), x) == x
        K, N = sp.symbols("K N", positive=True)
        right, wrong = K * sp.Rational(p - 1, 2) / 2, K * (-sp.Rational(1, 2)) / 2
        assert sp.simplify(right.subs(K, 2 * N / (p - 1)) - N / 2) == 0
        assert sp.simplify(wrong.subs(K, 2 * N / (p - 1)) + N / (2 * (p - 1))) == 0


def _phase_mean(expr, phases):
    """E over independent uniform phases of an expression in cos/sin of linear phase combinations:
    in the exponential form every term is c e^{i (k . phi + rest)}, whose mean is c e^{i rest} if
    k = 0 and 0 otherwise."""
    total = 0
    for term in sp.Add.make_args(sp.expand(sp.expand(expr.rewrite(sp.exp)), power_exp=True)):
        exps = [f.args[0] for f in sp.Mul.make_args(term) if isinstance(f, sp.exp)]
        exps += [f.base.args[0] * f.exp for f in sp.Mul.make_args(term)
                 if isinstance(f, sp.Pow) and isinstance(f.base, sp.exp)]
        arg = sp.expand(sum(exps))
        if all(arg.coeff(ph) == 0 for ph in phases):
            total += term
    return sp.simplify(total)


def prove_noise_variance() -> None:
    """Per-neuron noise over uniform independent phases phi1, phi2 (phi3 = phi1 + phi2): mean 0 and
    E[noise^2] = 1 + cos(2 omega sigma m)/16 with m = a + b - q (theory/predictions/modular_arithmetic.py)."""
    x, y, z, p1, p2 = sp.symbols("x y z phi1 phi2", real=True)   # x = w s a, y = w s b, z = w s q
    noise = _noise(x + p1, y + p2, z + p1 + p2)
    assert _phase_mean(noise, (p1, p2)) == 0
    var = _phase_mean(noise ** 2, (p1, p2))
    target = 1 + sp.cos(2 * (x + y - z)) / 16
    assert sp.simplify(sp.expand((var - target).rewrite(sp.exp))) == 0


def prove_restricted_projection_idempotent(p: int = 5, keys=(1, 2)) -> None:
    """The restricted-loss projection Pi (Nanda et al. 2023, Sec. 5.1: project the logits, as a
    function of (a, b), on span{cos(w_k (a+b)), sin(w_k (a+b))} over the key frequencies k) is an
    orthogonal projection: Pi^2 = Pi and Pi^T = Pi. Shown exactly for the p^2 x 2K basis matrix B
    with Pi = B (B^T B)^{-1} B^T. With the paper's bias correction (progress-measures-paper, helpers.py
    `test_logits`: add back the pairs' mean of the removed part) the restricted logits are
    R L = Pi L + (1/p^2) 1 1^T (I - Pi) L; since Pi 1 = 0 (the directions have mean 0 over the pairs),
    R L = Pi L + mean_pairs(L), and R is idempotent too (R^2 = R), shown on the same matrices."""
    rows = []
    for a in range(p):
        for b in range(p):
            row = []
            for k in keys:
                w = 2 * sp.pi * k / p
                row += [sp.cos(w * (a + b)), sp.sin(w * (a + b))]
            rows.append(row)
    B = sp.Matrix(rows)
    G = sp.simplify(B.T * B)
    assert G == sp.diag(*([sp.Rational(p * p, 2)] * (2 * len(keys))))     # the directions are orthogonal
    Pi = B * G.inv() * B.T
    assert sp.simplify(Pi * Pi - Pi) == sp.zeros(p * p, p * p)
    assert sp.simplify(Pi.T - Pi) == sp.zeros(p * p, p * p)
    one = sp.ones(p * p, 1)
    assert sp.simplify(Pi * one) == sp.zeros(p * p, 1)                    # the key directions have mean 0
    mean = one * one.T / (p * p)
    R = Pi + mean * (sp.eye(p * p) - Pi)
    assert sp.simplify(R - (Pi + mean)) == sp.zeros(p * p, p * p)        # R L = Pi L + mean_pairs(L)
    assert sp.simplify(R * R - R) == sp.zeros(p * p, p * p)
