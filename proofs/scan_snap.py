"""Symbolic checks of the algebra behind `scan_snap` (Tian et al. 2023). Each prove_*() asserts.

1. Decoder gap recursion (Lemma 5). Logits a on the correct token and b on the M-1 others, one
   visit with rate eta adds eta (e_n - alpha): the gap a - b grows by eta M / (e^{a-b} + M - 1),
   so with a - b = M h:  h <- h + eta / ((M-1) + e^{Mh}).
2. Continuous decoder solution (Lemma 6). F(h, s) = e^{Mh} + (M-1) M h - M eta s - 1 = 0 defines
   h(s) with h(0) = 0, and implicit differentiation gives dh/ds = -F_s/F_h = eta/((M-1) + e^{Mh}),
   the ODE of Lemma 5.
3. Snap point. At the root x* of e^x = (M-1) x the loss log(1 + (M-1) e^{-x}) equals log(1 + 1/x*),
   and Lemma 6 gives s* eta = (e^{x*} + (M-1) x* - 1)/M visits, t0 = K s*.
4. Ordering invariant (Theorem 3). If dz_l/dt = kappa(t) f_l^2 with f_l = c_l/||c||,
   c_l = P_l e^{z_l}/N(t), then f_l^2 = P_l^2 e^{2 z_l} rho(t) with rho common to all l, so
   d/dt (e^{-2 z_l(0)} - e^{-2 z_l})/P_l^2 = 2 kappa rho, the same for every distinct token l.
5. Eq. 129's constant. int_0^Gamma dG / (C0 + 4 G) = 1/4 ln(1 + 4 Gamma / C0) (B(0) = 0); the
   paper's 1/4 ln(C0 + 4 Gamma) differs by the constant 1/4 ln C0.
"""
from __future__ import annotations

import sympy as sp


def prove_decoder_gap_recursion() -> None:
    """Lemma 5: one CE gradient step on symmetric logits moves the gap by eta M/(e^gap + M - 1)."""
    a, b, eta = sp.symbols("a b eta", real=True)
    M = sp.Symbol("M", positive=True)
    Z = sp.exp(a) + (M - 1) * sp.exp(b)
    alpha_n, alpha_o = sp.exp(a) / Z, sp.exp(b) / Z          # softmax: correct, each wrong token
    new_gap = (a + eta * (1 - alpha_n)) - (b + eta * (0 - alpha_o))
    h = sp.Symbol("h", real=True)
    delta = (new_gap - (a - b)).subs(a, b + M * h)
    assert sp.simplify(delta - eta * M / (sp.exp(M * h) + M - 1)) == 0
    # and the loss at gap Mh
    loss = -sp.log(alpha_n).subs(a, b + M * h)
    assert sp.simplify(sp.expand_log(loss - sp.log(1 + (M - 1) * sp.exp(-M * h)), force=True)) == 0


def prove_continuous_decoder_solves_ode() -> None:
    """Lemma 6's implicit solution satisfies dh/ds = eta / ((M-1) + e^{Mh}) with h(0) = 0."""
    h, s, eta = sp.symbols("h s eta", positive=True)
    M = sp.Symbol("M", positive=True)
    F = sp.exp(M * h) + (M - 1) * M * h - M * eta * s - 1
    dh_ds = -sp.diff(F, s) / sp.diff(F, h)
    assert sp.simplify(dh_ds - eta / ((M - 1) + sp.exp(M * h))) == 0
    assert F.subs({h: 0, s: 0}) == 0


def prove_snap_point() -> None:
    """At e^{x*} = (M-1) x*: loss = log(1 + 1/x*), and t0 eta_Y = K (e^{x*} + (M-1) x* - 1)/M."""
    x, M, K, eta = sp.symbols("x M K eta", positive=True)
    loss = sp.log(1 + (M - 1) * sp.exp(-x))
    assert sp.simplify(loss.subs(sp.exp(-x), 1 / ((M - 1) * x)) - sp.log(1 + 1 / x)) == 0
    s = sp.Symbol("s", positive=True)
    s_star = sp.solve(sp.Eq(sp.exp(x) + (M - 1) * x, M * eta * s + 1), s)[0]
    assert sp.simplify(K * s_star * eta - K * (sp.exp(x) + (M - 1) * x - 1) / M) == 0
    # numeric anchor: M = 33, K = 2 (the default task, theory/tasks/next_token.py) gives 19.697
    x33 = sp.nsolve(sp.exp(x) - 32 * x, x, 5)
    t0 = (2 * (sp.exp(x33) + 32 * x33 - 1) / 33)
    assert abs(float(t0) - 19.697) < 1e-3


def prove_ordering_invariant() -> None:
    """dz_l/dt proportional to f_l^2 makes I_l = (e^{-2z_l(0)} - e^{-2z_l(t)})/P_l^2 token-independent."""
    t = sp.Symbol("t", real=True)
    P1, P2 = sp.symbols("P1 P2", positive=True)
    kappa, N, norm2 = (sp.Function(n)(t) for n in ("kappa", "N", "norm2"))
    z1, z2 = sp.Function("z1")(t), sp.Function("z2")(t)
    c1, c2 = P1 * sp.exp(z1) / N, P2 * sp.exp(z2) / N              # attention c_l
    f1sq, f2sq = c1 ** 2 / norm2, c2 ** 2 / norm2                   # f_l^2 = c_l^2 / ||c||^2
    dz = {sp.Derivative(z1, t): kappa * f1sq, sp.Derivative(z2, t): kappa * f2sq}
    z10, z20 = sp.symbols("z10 z20", real=True)
    I1 = (sp.exp(-2 * z10) - sp.exp(-2 * z1)) / P1 ** 2
    I2 = (sp.exp(-2 * z20) - sp.exp(-2 * z2)) / P2 ** 2
    dI1, dI2 = sp.diff(I1, t).subs(dz), sp.diff(I2, t).subs(dz)
    assert sp.simplify(dI1 - dI2) == 0
    assert sp.simplify(dI1 - 2 * kappa / (N ** 2 * norm2)) == 0


def prove_eq129_constant() -> None:
    """int_0^Gamma dG/(C0 + 4G) = 1/4 ln(1 + 4 Gamma/C0); the paper's form is off by ln(C0)/4."""
    G, Gamma, C0 = sp.symbols("G Gamma C0", positive=True)
    B = sp.integrate(1 / (C0 + 4 * G), (G, 0, Gamma))
    assert sp.simplify(sp.expand_log(B - sp.log(1 + 4 * Gamma / C0) / 4, force=True)) == 0
    paper = sp.log(C0 + 4 * Gamma) / 4
    assert sp.simplify(sp.expand_log(paper - B - sp.log(C0) / 4, force=True)) == 0
    assert B.subs(Gamma, 0) == 0


ALL = [prove_decoder_gap_recursion, prove_continuous_decoder_solves_ode, prove_snap_point,
       prove_ordering_invariant, prove_eq129_constant]

if __name__ == "__main__":
    for f in ALL:
        f()
        print(f"{f.__name__}: ok")
