"""Symbolic proofs behind the `gd_equivalence` predictions (sympy). Each prove_* asserts its identity.

1. prove_construction_one_step / prove_construction_two_steps: with W_KQ = [[I, 0], [0, 0]] and
   W_PV = [[0, 0], [0, -eta]], the LSA layer Z + (1/N) Z W_KQ^T C^T C W_PV^T moves every token's y-slot
   to y - W_1 x, where W_1 = W_0 - eta grad L(W_0) (one GD step on L(W) = (1/2N) sum (W x_i - y_i)^2),
   and two stacked layers give two GD steps (symbolic tokens, d = 2, N = 2).
2. prove_uniform_fourth_moment / prove_second_moment_of_S / prove_eta_star: for x ~ U(-a, a),
   E x^4 = 9/5 sigma^4; E[S^2] = sigma^4 (N + d + kappa - 2)/N I; hence the one-step loss
   L(eta) = 1/2 sigma^2 d [1 - 2 eta sigma^2 + eta^2 sigma^4 (N+d+kappa-2)/N] is minimised at
   eta* = N / (sigma^2 (N + d + kappa - 2)) with L* = 1/2 sigma^2 d (d + kappa - 2)/(N + d + kappa - 2).
3. prove_gaussian_SBS / prove_zfb_stationarity: for Gaussian x ~ N(0, Lambda),
   E[S B S] = (1 + 1/N) Lambda B Lambda + tr(B Lambda) Lambda / N, and the risk
   R(A) = tr E[S A^T Lambda A S] - 2 tr(Lambda A Lambda) + tr(Lambda) is stationary at
   A = Gamma^{-1}, Gamma = (1 + 1/N) Lambda + tr(Lambda)/N I (ZFB's global minimum).
"""
from __future__ import annotations

import itertools

import sympy as sp


# --- helpers ------------------------------------------------------------------------------------
def _lsa_layer(Z: sp.Matrix, W_KQ: sp.Matrix, W_PV: sp.Matrix, N: int) -> sp.Matrix:
    """Z + (1/N) (Z W_KQ^T C^T) C W_PV^T with C the first N rows (tokens are rows)."""
    C = Z[:N, :]
    return Z + (Z * W_KQ.T * C.T) * C * W_PV.T / N


def _symbolic_prompt(d: int, N: int):
    X = sp.Matrix(N, d, lambda i, k: sp.Symbol(f"x{i}{k}"))
    y = sp.Matrix(N, 1, lambda i, _: sp.Symbol(f"y{i}"))
    xq = sp.Matrix(1, d, lambda _, k: sp.Symbol(f"q{k}"))
    Z = sp.Matrix.vstack(sp.Matrix.hstack(X, y), sp.Matrix.hstack(xq, sp.zeros(1, 1)))
    return X, y, xq, Z


def _gd_construction(d: int, eta) -> tuple[sp.Matrix, sp.Matrix]:
    W_KQ = sp.zeros(d + 1, d + 1)
    W_KQ[:d, :d] = sp.eye(d)
    W_PV = sp.zeros(d + 1, d + 1)
    W_PV[d, d] = -eta
    return W_KQ, W_PV


def _gd_step(W: sp.Matrix, X: sp.Matrix, y: sp.Matrix, eta, N: int) -> sp.Matrix:
    """W (1 x d) <- W - eta * (1/N) sum_i (W x_i - y_i) x_i^T."""
    grad = (X * W.T - y).T * X / N
    return W - eta * grad


# --- 1. construction ----------------------------------------------------------------------------
def prove_construction_one_step(d: int = 2, N: int = 2) -> None:
    eta = sp.Symbol("eta", positive=True)
    X, y, xq, Z = _symbolic_prompt(d, N)
    Z1 = _lsa_layer(Z, *_gd_construction(d, eta), N)
    W1 = _gd_step(sp.zeros(1, d), X, y, eta, N)
    for i in range(N):      # context tokens: y-slot becomes the residual y_i - W1 x_i, x unchanged
        assert sp.expand(Z1[i, d] - (y[i] - (W1 * X[i, :].T)[0])) == 0
        assert all(sp.expand(Z1[i, k] - X[i, k]) == 0 for k in range(d))
    assert sp.expand(-Z1[N, d] - (W1 * xq.T)[0]) == 0      # prediction = W1 x_q


def prove_construction_two_steps(d: int = 2, N: int = 2) -> None:
    e1, e2 = sp.symbols("eta1 eta2", positive=True)
    X, y, xq, Z = _symbolic_prompt(d, N)
    Z2 = _lsa_layer(_lsa_layer(Z, *_gd_construction(d, e1), N), *_gd_construction(d, e2), N)
    W2 = _gd_step(_gd_step(sp.zeros(1, d), X, y, e1, N), X, y, e2, N)
    assert sp.expand(-Z2[N, d] - (W2 * xq.T)[0]) == 0


# --- 2. uniform inputs: fourth moment, E[S^2], eta* ---------------------------------------------
def prove_uniform_fourth_moment() -> None:
    a, x = sp.symbols("a x", positive=True)
    m2 = sp.integrate(x ** 2 / (2 * a), (x, -a, a))
    m4 = sp.integrate(x ** 4 / (2 * a), (x, -a, a))
    assert sp.simplify(m4 / m2 ** 2 - sp.Rational(9, 5)) == 0


def _expect_independent_symmetric(expr, variables, s2, kappa):
    """E[expr] for independent symmetric variables with E v^2 = s2, E v^4 = kappa s2^2 (degree <= 4)."""
    poly = sp.Poly(sp.expand(expr), *variables)
    moment = {0: 1, 2: s2, 4: kappa * s2 ** 2}
    total = 0
    for powers, coeff in poly.terms():
        if any(p % 2 for p in powers) or any(p > 4 for p in powers):
            continue
        term = coeff
        for p in powers:
            term *= moment[p]
        total += term
    return sp.expand(total)


def prove_second_moment_of_S(d: int = 2, N: int = 3) -> None:
    s2, kappa = sp.symbols("sigma2 kappa", positive=True)
    X = sp.Matrix(N, d, lambda i, k: sp.Symbol(f"x{i}{k}"))
    S = X.T * X / N
    S2 = S * S
    for (r, c) in itertools.product(range(d), repeat=2):
        e = _expect_independent_symmetric(S2[r, c], list(X), s2, kappa)
        target = s2 ** 2 * (N + d + kappa - 2) / N if r == c else 0
        assert sp.simplify(e - target) == 0


def prove_eta_star() -> None:
    eta, s2, d, N, kappa = sp.symbols("eta sigma2 d N kappa", positive=True)
    c = (N + d + kappa - 2) / N
    L = sp.Rational(1, 2) * s2 * d * (1 - 2 * eta * s2 + eta ** 2 * s2 ** 2 * c)
    eta_star = sp.solve(sp.diff(L, eta), eta)
    assert len(eta_star) == 1
    assert sp.simplify(eta_star[0] - N / (s2 * (N + d + kappa - 2))) == 0
    L_star = L.subs(eta, eta_star[0])
    assert sp.simplify(L_star - sp.Rational(1, 2) * s2 * d * (d + kappa - 2) / (N + d + kappa - 2)) == 0
    # vO's setting: d = N = 10, x ~ U(-1/2, 1/2): sigma^2 = 1/12, kappa = 9/5
    vals = {s2: sp.Rational(1, 12), d: 10, N: 10, kappa: sp.Rational(9, 5)}
    assert abs(float(eta_star[0].subs(vals)) - 6.0606) < 1e-4
    assert abs(float(L_star.subs(vals)) - 0.20623) < 1e-5


# --- 3. Gaussian inputs: E[S B S] and ZFB stationarity ------------------------------------------
def prove_gaussian_SBS(N: int = 2) -> None:
    """E[S B S] for d = 2, diagonal Lambda, symmetric B, via Isserlis (E x^4 = 3 l^2)."""
    l1, l2 = sp.symbols("l1 l2", positive=True)
    b11, b12, b22 = sp.symbols("b11 b12 b22")
    lam = sp.diag(l1, l2)
    B = sp.Matrix([[b11, b12], [b12, b22]])
    X = sp.Matrix(N, 2, lambda i, k: sp.Symbol(f"x{i}{k}"))
    S = X.T * X / N
    M = S * B * S
    target = (1 + sp.Rational(1, N)) * lam * B * lam + (B * lam).trace() * lam / N
    var = {X[i, k]: (l1 if k == 0 else l2) for i in range(N) for k in range(2)}
    for r, c in itertools.product(range(2), repeat=2):
        poly = sp.Poly(sp.expand(M[r, c]), *list(X))
        e = 0
        for powers, coeff in poly.terms():
            if any(p % 2 for p in powers):
                continue
            term = coeff
            for v, p in zip(list(X), powers):
                term *= {0: 1, 2: var[v], 4: 3 * var[v] ** 2}[p]
            e += term
        assert sp.simplify(e - target[r, c]) == 0


def prove_zfb_stationarity() -> None:
    """dR/dA = 0 at A = Gamma^{-1} for symbolic N and diagonal Lambda (d = 2)."""
    N = sp.Symbol("N", positive=True)
    l1, l2 = sp.symbols("l1 l2", positive=True)
    lam = sp.diag(l1, l2)
    A = sp.Matrix(2, 2, sp.symbols("a11 a12 a21 a22"))
    B = A.T * lam * A
    ESBS = (1 + 1 / N) * lam * B * lam + (B * lam).trace() * lam / N
    R = ESBS.trace() - 2 * (lam * A * lam).trace() + lam.trace()
    gamma = (1 + 1 / N) * lam + lam.trace() / N * sp.eye(2)
    opt = dict(zip(A, gamma.inv()))
    for a in A:
        assert sp.simplify(sp.diff(R, a).subs(opt)) == 0


ALL = [prove_construction_one_step, prove_construction_two_steps, prove_uniform_fourth_moment,
       prove_second_moment_of_S, prove_eta_star, prove_gaussian_SBS, prove_zfb_stationarity]

if __name__ == "__main__":
    for f in ALL:
        f()
        print(f"{f.__name__}: ok")
