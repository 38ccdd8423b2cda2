"""Symbolic proofs behind `length_generalization` (theory/predictions/length_generalization.py,
theory/models/positional.py).

Each prove_*() asserts an identity with sympy and returns True; pytest runs them.
"""
from __future__ import annotations

import sympy as sp

j, k, n, L = sp.symbols("j k n L", positive=True, integer=True)


def _binom_sum_identity(L_: int, n_: int, k_: int, shift: int) -> bool:
    """sum_{j=1}^{L} C(j+shift, k+shift) C(L-j, n-k) == C(L+1+shift, n+1+shift), concrete values."""
    lhs = sum(sp.binomial(jj + shift, k_ + shift) * sp.binomial(L_ - jj, n_ - k_) for jj in range(1, L_ + 1))
    return sp.simplify(lhs - sp.binomial(L_ + 1 + shift, n_ + 1 + shift)) == 0


def prove_order_statistic_mean() -> bool:
    """E[i_(k)] = k(L+1)/(n+1) - 1 for the k-th smallest of a uniform n-subset of {0..L-1}.

    With X = i_(k) + 1 in {1..L}:  P(X = j) = C(j-1, k-1) C(L-j, n-k) / C(L, n)  (k-1 smaller and
    n-k larger elements). (a) j C(j-1, k-1) = k C(j, k). (b) sum_j C(j, k) C(L-j, n-k) = C(L+1, n+1)
    (choose n+1 of {0..L} and condition on the (k+1)-th smallest, j). So
    E[X] = k C(L+1, n+1) / C(L, n) = k (L+1)/(n+1).  (a), the final ratio symbolically; (b) exactly
    on a grid of (L, n, k).
    """
    assert sp.simplify(sp.combsimp(j * sp.binomial(j - 1, k - 1) - k * sp.binomial(j, k))) == 0
    assert all(_binom_sum_identity(LL, nn, kk, 0)
               for LL in range(1, 13) for nn in range(1, LL + 1) for kk in range(1, nn + 1))
    ratio = sp.combsimp(k * sp.binomial(L + 1, n + 1) / sp.binomial(L, n))
    assert sp.simplify(ratio - k * (L + 1) / (n + 1)) == 0
    return True


def prove_order_statistic_variance() -> bool:
    """Var[i_(k)] = k (n-k+1) (L+1) (L-n) / ((n+1)^2 (n+2)).

    (a) j (j+1) C(j-1, k-1) = k (k+1) C(j+1, k+1); (b) sum_j C(j+1, k+1) C(L-j, n-k) = C(L+2, n+2),
    so E[X(X+1)] = k(k+1) C(L+2, n+2)/C(L, n) = k(k+1)(L+1)(L+2)/((n+1)(n+2)), and
    Var X = E[X(X+1)] - E[X] - E[X]^2 simplifies to the formula (a shift does not change variance).
    """
    lhs = j * (j + 1) * sp.binomial(j - 1, k - 1) - k * (k + 1) * sp.binomial(j + 1, k + 1)
    assert sp.simplify(sp.combsimp(lhs)) == 0
    assert all(_binom_sum_identity(LL, nn, kk, 1)
               for LL in range(1, 11) for nn in range(1, LL + 1) for kk in range(1, nn + 1))
    EX = k * (L + 1) / (n + 1)
    EXX1 = sp.combsimp(k * (k + 1) * sp.binomial(L + 2, n + 2) / sp.binomial(L, n))
    var = EXX1 - EX - EX ** 2
    target = k * (n - k + 1) * (L + 1) * (L - n) / ((n + 1) ** 2 * (n + 2))
    assert sp.simplify(var - target) == 0
    return True


def prove_even_pairs_multiset_probability() -> bool:
    """Among binary strings of length n with k ones, P(x_1 != x_n) = 2k(n-k)/(n(n-1)).

    Fix (x_1, x_n) = (1, 0) or (0, 1): the middle n-2 symbols hold k-1 ones, C(n-2, k-1) ways each,
    out of C(n, k) strings. This is all a permutation-invariant (non-causal NoPE) model can know about
    the even_pairs label, hence the Bayes bound in theory/predictions/length_generalization.py.
    """
    p = sp.combsimp(2 * sp.binomial(n - 2, k - 1) / sp.binomial(n, k))
    assert sp.simplify(p - 2 * k * (n - k) / (n * (n - 1))) == 0
    return True


def prove_relative_offset_factorisation() -> bool:
    """a0 sin(w(p_i - p_j)) + a1 cos(w(p_i - p_j)) = c_j (a0 s_i + a1 c_i) + s_j (a1 s_i - a0 c_i).

    s_i = sin(w p_i), c_i = cos(w p_i): the Transformer-XL position term a_i . r(p_i - p_j) is a
    product of a (T, D) and a (T, D) matrix (positional.relative_bias), for offsets of either sign.
    """
    a0, a1, w, pi, pj = sp.symbols("a0 a1 w p_i p_j", real=True)
    si, ci, sj, cj = sp.sin(w * pi), sp.cos(w * pi), sp.sin(w * pj), sp.cos(w * pj)
    lhs = a0 * sp.sin(w * (pi - pj)) + a1 * sp.cos(w * (pi - pj))
    rhs = cj * (a0 * si + a1 * ci) + sj * (a1 * si - a0 * ci)
    assert sp.simplify(sp.expand_trig(lhs - rhs)) == 0
    return True


def prove_rope_relative() -> bool:
    """<R(a w) q, R(b w) k> = <q, R((b - a) w) k>: RoPE scores depend on positions only through b - a."""
    a, b, w = sp.symbols("a b w", real=True)
    q = sp.Matrix(sp.symbols("q0 q1", real=True))
    kv = sp.Matrix(sp.symbols("k0 k1", real=True))

    def R(t):
        return sp.Matrix([[sp.cos(t), -sp.sin(t)], [sp.sin(t), sp.cos(t)]])

    lhs = (R(a * w) * q).dot(R(b * w) * kv)
    rhs = q.dot(R((b - a) * w) * kv)
    assert sp.simplify(sp.expand_trig(lhs - rhs)) == 0
    return True


ALL = (prove_order_statistic_mean, prove_order_statistic_variance,
       prove_even_pairs_multiset_probability, prove_relative_offset_factorisation, prove_rope_relative)

if __name__ == "__main__":
    for f in ALL:
        print(f.__name__, f())
