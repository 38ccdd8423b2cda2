"""Symbolic proofs behind the independence model of error compounding
(theory/predictions/error_compounding.py; experiments/composition/parts/compounding.py).

Each prove_*() asserts an identity with sympy and returns True; pytest runs them.
"""
from __future__ import annotations

import itertools

import sympy as sp

M_MAX = 5                       # chains of 1..M_MAX steps, every failure pattern enumerated


def _eps(m: int) -> tuple[sp.Symbol, ...]:
    return sp.symbols(f"epsilon1:{m + 1}", positive=True)


def prove_chain_success_probability() -> bool:
    """A chain of m steps whose steps fail independently with probabilities eps_i succeeds (every
    step right) with probability exactly prod_i (1 - eps_i).

    The outcome is a failure pattern f in {0, 1}^m with P(f) = prod_i eps_i^f_i (1 - eps_i)^(1 - f_i)
    (independence). The probabilities sum to 1 (a distribution), and the success event is the one
    pattern f = 0, of probability prod (1 - eps_i); equivalently the expectation of the product of
    the step-success indicators is the product of their expectations. For m = 1..M_MAX, every
    pattern enumerated."""
    for m in range(1, M_MAX + 1):
        e = _eps(m)
        prob = {f: sp.Mul(*(ei if fi else 1 - ei for ei, fi in zip(e, f)))
                for f in itertools.product((0, 1), repeat=m)}
        assert sp.expand(sum(prob.values()) - 1) == 0
        success = sum(p for f, p in prob.items() if not any(f))
        target = sp.Mul(*(1 - ei for ei in e))
        assert sp.expand(success - target) == 0
        expect_product = sum(p * sp.Mul(*(1 - fi for fi in f)) for f, p in prob.items())
        assert sp.expand(expect_product - target) == 0
    return True


def prove_greedy_prefix_success() -> bool:
    """Free-running greedy decoding is right on every output iff each output is right given the
    true prefix (teacher forcing): by induction, while outputs 1..i-1 are right the model's prefix
    is the true prefix, so output i is the teacher-forced output i.

    Checked as a statement about functions: for every deterministic step rule g(i, prefix) on
    binary outputs (m = 1..3, every rule of its finite domain enumerated), the free-running
    sequence equals the true sequence iff g(i, true prefix) = true_i for every i."""
    for m in range(1, 4):
        prefixes = [p for i in range(m) for p in itertools.product((0, 1), repeat=i)]
        true = (1,) * m
        for outs in itertools.product((0, 1), repeat=len(prefixes)):
            g = dict(zip(prefixes, outs))
            free: tuple[int, ...] = ()
            for _ in range(m):
                free += (g[free],)
            teacher_forced_right = all(g[true[:i]] == true[i] for i in range(m))
            assert (free == true) == teacher_forced_right
    return True


def prove_delta_method_se() -> bool:
    """dA/d eps_i = -prod_{j != i} (1 - eps_j) for A = prod (1 - eps_j), so with independent
    proportion estimates of variance eps_i (1 - eps_i) / n the delta-method variance of A_hat is
    sum_i eps_i (1 - eps_i) / n prod_{j != i} (1 - eps_j)^2, and for eps_i < 1 it equals
    A^2 sum_i eps_i / (n (1 - eps_i)). m = 1..M_MAX."""
    n = sp.symbols("n", positive=True)
    for m in range(1, M_MAX + 1):
        e = _eps(m)
        A = sp.Mul(*(1 - ei for ei in e))
        others = [sp.Mul(*(1 - ej for j, ej in enumerate(e) if j != i)) for i in range(m)]
        assert all(sp.expand(sp.diff(A, ei) + o) == 0 for ei, o in zip(e, others))
        var = sum(sp.diff(A, ei) ** 2 * ei * (1 - ei) / n for ei in e)
        assert sp.expand(var - sum(ei * (1 - ei) / n * o ** 2 for ei, o in zip(e, others))) == 0
        assert sp.simplify(var - A ** 2 * sum(ei / (n * (1 - ei)) for ei in e)) == 0
    return True


def prove_log_linear_in_steps() -> bool:
    """With a constant step error eps, ln A_k = ln prod_{i=1}^k (1 - eps) = k ln(1 - eps): linear in k
    with slope ln(1 - eps) and zero curvature (the judge's R^2 and curvature description)."""
    eps, k = sp.symbols("epsilon k", positive=True)
    lnA = sp.expand_log(sp.log((1 - eps) ** k), force=True)
    assert sp.simplify(lnA - k * sp.log(1 - eps)) == 0
    assert sp.diff(lnA, k, 2) == 0
    return True
