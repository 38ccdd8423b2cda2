"""Symbolic checks (sympy) of the algebra behind `composition`'s Part 1 (theory/predictions/composition.py).

Each `prove_*()` asserts an identity and returns None; pytest runs them from tests/test_composition.py.
(The product prod (1 - eps_i) of Part 3 is proved in proofs/error_compounding.py.)
"""
from __future__ import annotations

import sympy as sp


def prove_gradient_at_zero(N: int = 2, M: int = 3, d: int = 2) -> None:
    """At W = 0, -dL/dW = sum_x p(x) (u_f(x) - u_bar) e_x^T for L = sum_x p(x) CE(U W e_x, f(x)).

    Fully symbolic embeddings e_x, u_y, law p and a fixed map f, at small sizes: each entry of the
    gradient of the cross-entropy, evaluated at W = 0, against the closed form. The general step:
    d/dW [log sum_y exp(u_y^T W e) - u_f^T W e] = sum_y softmax_y u_y e^T - u_f e^T, and at W = 0
    softmax_y = 1/M, so the sum is u_bar e^T."""
    W = sp.Matrix(d, d, lambda i, j: sp.Symbol(f"w{i}{j}"))
    E = [sp.Matrix([sp.Symbol(f"e{x}_{i}") for i in range(d)]) for x in range(N)]
    U = [sp.Matrix([sp.Symbol(f"u{y}_{i}") for i in range(d)]) for y in range(M)]
    p = sp.symbols(f"p0:{N}", positive=True)
    f = [(x + 1) % M for x in range(N)]
    L = 0
    for x in range(N):
        logits = [(U[y].T * W * E[x])[0, 0] for y in range(M)]
        L += p[x] * (sp.log(sum(sp.exp(s) for s in logits)) - logits[f[x]])
    zero = {w: 0 for w in W}
    u_bar = sum(U, sp.zeros(d, 1)) / M
    closed = sum((p[x] * (U[f[x]] - u_bar) * E[x].T for x in range(N)), sp.zeros(d, d))
    for i in range(d):
        for j in range(d):
            assert sp.simplify(-sp.diff(L, W[i, j]).subs(zero) - closed[i, j]) == 0


def prove_score_margin() -> None:
    """After the step (uniform p, f a bijection, scaled by N), E s_f(x)(x) = 1 - 1/M and
    E s_k(x) = -1/M for k != f(x): the margin of the means is exactly 1.

    s_k(x) = sum_x' u_k.(u_f(x') - u_bar) e_x'.e_x with independent N(0, I/d) vectors: E e_x'.e_x =
    [x' = x], E u_k.u_j = [k = j], and u_bar = (1/M) sum_j u_j, so E u_k.(u_j - u_bar) = [k = j] - 1/M;
    only x' = x survives the expectation over e (e independent of u)."""
    M = sp.Symbol("M", positive=True)
    inner = lambda k, j: (1 if k == j else 0) - 1 / M        # E u_k.(u_j - u_bar)
    correct, wrong = inner(0, 0) * 1, inner(1, 0) * 1         # x' = x term, E |e_x|^2 = 1
    assert sp.simplify(correct - (1 - 1 / M)) == 0
    assert sp.simplify(wrong + 1 / M) == 0
    assert sp.simplify(correct - wrong - 1) == 0
