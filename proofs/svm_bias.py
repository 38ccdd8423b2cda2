"""Symbolic checks behind `svm_bias` (Tarzanagh, Li, Thrampoulidis & Oymak 2023).

Each `prove_*()` asserts an identity and returns True; tests/test_svm_bias.py runs them.
"""
from __future__ import annotations

import numpy as np
import sympy as sp


def prove_pairwise_softmax_gradient(T_values=(2, 3, 4, 5)) -> bool:
    """d/dl_t sum_tau s_tau h_tau = s_t (h_t - sum_tau s_tau h_tau) = s_t sum_tau s_tau (h_t - h_tau).

    Derivation: ds_tau/dl_t = s_tau (delta_{tau t} - s_t), so df/dl_t = s_t h_t - s_t f (the
    autodiff form). Since sum_tau s_tau = 1, h_t = sum_tau s_tau h_t, hence
    h_t - f = sum_tau s_tau (h_t - h_tau) (the pairwise form, no cancellation: the tau = t term
    is exactly zero). Checked symbolically for each T in T_values, and for general T with
    sympy's Sum under the constraint sum s = 1.
    """
    for T in T_values:
        l = sp.symbols(f"l0:{T}", real=True)
        h = sp.symbols(f"h0:{T}", real=True)
        Zs = sum(sp.exp(x) for x in l)
        s = [sp.exp(x) / Zs for x in l]
        f = sum(si * hi for si, hi in zip(s, h))
        for t in range(T):
            autodiff = sp.diff(f, l[t])
            textbook = s[t] * (h[t] - f)
            pairwise = s[t] * sum(s[u] * (h[t] - h[u]) for u in range(T))
            assert sp.simplify(autodiff - textbook) == 0
            assert sp.simplify(autodiff - pairwise) == 0
    # general T: sum_tau s_tau (h_t - h_tau) - (h_t - sum_tau s_tau h_tau) = h_t (sum s - 1) = 0
    T, t, tau = sp.symbols("T t tau", integer=True, positive=True)
    s, hh = sp.IndexedBase("s"), sp.IndexedBase("h")
    diff = (sp.Sum(s[tau] * (hh[t] - hh[tau]), (tau, 1, T)).doit()
            - (hh[t] - sp.Sum(s[tau] * hh[tau], (tau, 1, T))))
    diff = sp.expand(sp.expand(diff).doit())
    S1 = sp.Sum(s[tau], (tau, 1, T))
    reduced = sp.simplify(sp.simplify(diff).subs(S1, 1))
    assert reduced == 0, reduced
    return True


def prove_nuclear_variational(n_random: int = 20) -> bool:
    """min { (||K||_F^2 + ||Q||_F^2)/2 : K Q^T = W } = ||W||_*  (needs inner width m >= rank W).

    Lower bound: for orthogonal U, V, tr(U^T K Q^T V) = tr(K'Q'^T) with K' = U^T K, Q' = V^T Q of
    the same norms, and (||K'||^2 + ||Q'||^2)/2 - tr(K' Q'^T) = ||K' - Q'||^2/2 >= 0 (symbolic
    identity below, 2 x 2 case with all 8 entries free). Taking the SVD W = U S V^T gives
    tr(U^T W V) = ||W||_*, so every factorisation costs >= ||W||_*.
    Attained: K = U S^{1/2}, Q = V S^{1/2} gives K Q^T = W and cost tr S = ||W||_* (symbolic for
    W = diag(a, b), numeric for random W). Random other factorisations K R, Q R^{-T} cost more.
    """
    K = sp.Matrix(2, 2, sp.symbols("k0:4", real=True))
    Q = sp.Matrix(2, 2, sp.symbols("q0:4", real=True))

    def fro2(M):
        return sum(x ** 2 for x in M)
    identity = (fro2(K) + fro2(Q)) / 2 - (K * Q.T).trace() - fro2(K - Q) / 2
    assert sp.expand(identity) == 0
    a, b = sp.symbols("a b", positive=True)
    Kd = sp.diag(sp.sqrt(a), sp.sqrt(b))
    W = Kd * Kd.T
    assert W == sp.diag(a, b) and sp.simplify((fro2(Kd) + fro2(Kd)) / 2 - (a + b)) == 0

    import jax

    from theory.engine.keys import Keys

    def normal(key, shape):   # JAX keys only; cast to float64 numpy for the identity check
        return np.asarray(jax.random.normal(key, shape), dtype=np.float64)

    for j, key in enumerate(Keys(0).sub("prove_nuclear_variational").runs(n_random)):
        k_left, k_right, k_mix = jax.random.split(key, 3)
        d, r = 4, 1 + j % 4
        Wn = normal(k_left, (d, r)) @ normal(k_right, (r, d))
        U, S, Vt = np.linalg.svd(Wn)
        Kn, Qn = U * np.sqrt(S), Vt.T * np.sqrt(S)
        nuc = S.sum()
        assert np.allclose(Kn @ Qn.T, Wn, atol=1e-12)
        assert abs(0.5 * (np.sum(Kn ** 2) + np.sum(Qn ** 2)) - nuc) < 1e-10 * max(nuc, 1)
        R = normal(k_mix, (d, d)) + 3 * np.eye(d)
        K2, Q2 = Kn @ R, Qn @ np.linalg.inv(R).T
        assert np.allclose(K2 @ Q2.T, Wn, atol=1e-9)
        assert 0.5 * (np.sum(K2 ** 2) + np.sum(Q2 ** 2)) >= nuc - 1e-9
    return True


def prove_svm_kkt_exact() -> bool:
    """The Frobenius Att-SVM solver returns the exact KKT point on a rational instance.

    KKT for min ||W||_F^2/2 s.t. <A_k, W> >= 1: W = sum_k lam_k A_k, lam >= 0, <A_k, W> >= 1,
    lam_k (<A_k, W> - 1) = 0. On the active set S this is G_SS mu = 1 with G = (<A_k, A_l>).
    A hand instance (n = 2, T = 3, d = 2, rational tokens) is solved exactly in sympy by trying
    every active set and keeping the one satisfying all KKT conditions; the numeric solver in
    theory/predictions/svm_bias.py must match it to 1e-12.
    """
    import itertools

    from theory.predictions.svm_bias import features, solve_frobenius

    X = [[[1, 0], [0, 1], [-1, -1]], [[2, 1], [0, -1], [1, 1]]]
    Z = [[1, 0], [1, 1]]
    alpha = [0, 0]
    Xr = sp.Array(X)
    A = []
    for i in range(2):
        for t in range(3):
            if t == alpha[i]:
                continue
            dlt = sp.Matrix([Xr[i, alpha[i], c] - Xr[i, t, c] for c in range(2)])
            A.append(dlt * sp.Matrix(Z[i]).T)
    G = sp.Matrix(len(A), len(A), lambda k, l: sum((A[k].multiply_elementwise(A[l]))))
    best = None
    for r in range(1, len(A) + 1):
        for S in itertools.combinations(range(len(A)), r):
            GS = G.extract(list(S), list(S))
            if GS.det() == 0:
                continue
            mu = GS.LUsolve(sp.ones(r, 1))
            if any(m <= 0 for m in mu):
                continue
            W = sum((mu[j] * A[k] for j, k in enumerate(S)), sp.zeros(2, 2))
            if all(sum(A[k].multiply_elementwise(W)) >= 1 for k in range(len(A))):
                obj = sum(x ** 2 for x in W)
                if best is None or obj < best[0]:
                    best = (obj, W)
    assert best is not None
    W_exact = np.array(best[1].evalf(30).tolist(), dtype=float)
    sol = solve_frobenius(np.array(X, float), np.array(Z, float), np.array(alpha))
    assert sol.feasible
    assert np.max(np.abs(sol.W - W_exact)) < 1e-12, (sol.W, W_exact)
    M = features(np.array(X, float), np.array(Z, float), np.array(alpha))
    assert np.max(np.abs(sol.W.reshape(-1) - M.T @ sol.lam.reshape(-1))) < 1e-12
    return True


def prove_frobenius_rank_bound() -> bool:
    """Stationarity W = sum_it lam_it (x_ia - x_it) z_i^T = sum_i u_i z_i^T, so rank W <= min(n, d).

    Symbolic: with n = 2 generic vectors u_i, z_i in R^3, every 3 x 3 minor of sum_i u_i z_i^T
    vanishes identically (rank <= 2 < d = 3).
    """
    u = [sp.Matrix(sp.symbols(f"u{i}_0:3", real=True)) for i in range(2)]
    z = [sp.Matrix(sp.symbols(f"z{i}_0:3", real=True)) for i in range(2)]
    W = u[0] * z[0].T + u[1] * z[1].T
    assert sp.expand(W.det()) == 0
    return True


ALL = (prove_pairwise_softmax_gradient, prove_nuclear_variational, prove_svm_kkt_exact,
       prove_frobenius_rank_bound)

if __name__ == "__main__":
    for p in ALL:
        print(p.__name__, p())
