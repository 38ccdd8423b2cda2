"""Symbolic checks (sympy) of the algebra behind `rank_growth`'s predictions.

Each `prove_*()` asserts an identity and returns None; pytest runs them from tests/test_rank_growth.py.
"""
from __future__ import annotations

import sympy as sp

t, eta, s, u0, alpha = sp.symbols("t eta s u_0 alpha", positive=True)


def prove_balanced_mode_ode() -> None:
    """A balanced aligned mode a = b of L = 1/2 (a b - s)^2 under gradient flow with rate eta,
    a' = -eta dL/da = eta b (s - a b), b' = eta a (s - a b), has strength u = a b obeying
        u' = a' b + a b' = eta (a^2 + b^2)(s - u) = 2 eta u (s - u)   (a = b).
    The factor 2 is what the often-quoted 1/(s lr) log(s/alpha^2) misses for the 1/2-MSE."""
    a, b = sp.symbols("a b", positive=True)
    L = (a * b - s) ** 2 / 2
    da, db = -eta * sp.diff(L, a), -eta * sp.diff(L, b)
    du = sp.expand(da * b + a * db)
    assert sp.simplify(du.subs(b, a) - 2 * eta * (a * a) * (s - a * a)) == 0


def prove_saxe_logistic_solves_ode() -> None:
    """u(t) = s e^{2 eta s t} / (e^{2 eta s t} - 1 + s/u0) solves u' = 2 eta u (s - u), u(0) = u0.
    (Separate variables: du / (u (s - u)) = 2 eta dt, i.e. ln(u/(s - u)) = 2 eta s t + const.)"""
    e = sp.exp(2 * eta * s * t)
    u = s * e / (e - 1 + s / u0)
    assert sp.simplify(sp.diff(u, t) - 2 * eta * u * (s - u)) == 0
    assert sp.simplify(u.subs(t, 0) - u0) == 0


def prove_saxe_halfway_time() -> None:
    """The logistic reaches s/2 at t_half = ln(s/u0 - 1) / (2 eta s): at t_half, e^{2 eta s t} = s/u0 - 1,
    so u = s (s/u0 - 1) / (2 (s/u0 - 1)) = s/2. As u0 ~ alpha^2 -> 0, eta t_half / ln(1/alpha) -> 1/s."""
    e = sp.exp(2 * eta * s * t)
    u = s * e / (e - 1 + s / u0)
    t_half = sp.log(s / u0 - 1) / (2 * eta * s)
    assert sp.simplify(u.subs(t, t_half) - s / 2) == 0
    limit = sp.limit(eta * t_half.subs(u0, alpha ** 2) / sp.log(1 / alpha), alpha, 0, "+")
    assert sp.simplify(limit - 1 / s) == 0


def prove_conserved_imbalance() -> None:
    """Diagonal dynamics u' = g v, v' = g u (g = -dL/dw at w = u v) conserve u^2 - v^2:
    d/dt (u^2 - v^2) = 2 u g v - 2 v g u = 0. Hence u = alpha, v = 0 keeps u^2 - v^2 = alpha^2, and
    active coordinates (|w| = O(1)) are balanced up to O(alpha^2) as alpha -> 0."""
    g, u, v = sp.symbols("g u v", real=True)
    assert sp.simplify(2 * u * (g * v) - 2 * v * (g * u)) == 0
    # and the modes m+- = (u +- v)/sqrt(2) evolve as m+-' = +- g m+-, with w = (m+^2 - m-^2)/2
    mp, mm = (u + v) / sp.sqrt(2), (u - v) / sp.sqrt(2)
    assert sp.simplify((g * v + g * u) / sp.sqrt(2) - g * mp) == 0
    assert sp.simplify((g * v - g * u) / sp.sqrt(2) + g * mm) == 0
    assert sp.simplify((mp ** 2 - mm ** 2) / 2 - u * v) == 0


def prove_discrete_gd_mode_growth() -> None:
    """One GD step u <- u + lr g v, v <- v + lr g u multiplies m+- by (1 +- lr g) exactly, so the
    discrete-GD growth rate per unit of lr*steps is ln(1 + lr g)/lr instead of g; the Saxe mode
    likewise grows by (1 + lr s)^2 per step near 0, giving t_half = ln(s/u0 - 1)/(2 ln(1 + lr s))."""
    g, u, v, lr = sp.symbols("g u v lr", real=True)
    u1, v1 = u + lr * g * v, v + lr * g * u
    assert sp.simplify((u1 + v1) - (1 + lr * g) * (u + v)) == 0
    assert sp.simplify((u1 - v1) - (1 - lr * g) * (u - v)) == 0
    # Saxe: a <- a + lr a (s - a^2); near a = 0 the strength u = a^2 grows by (1 + lr s)^2
    a = sp.symbols("a", positive=True)
    a1 = a + lr * a * (s - a ** 2)
    assert sp.simplify(sp.limit(a1 ** 2 / a ** 2, a, 0) - (1 + lr * s) ** 2) == 0


def prove_dormant_scale() -> None:
    """From u = alpha, v = 0 with accumulated gradient int g dt = S ln(1/alpha) (S > 0), the dormant
    coordinate is w = (m+^2 - m-^2)/2 = (alpha^2/4)(alpha^{-2S} - alpha^{2S}) ~ alpha^{2(1-S)}/4:
    it becomes O(1) exactly when S reaches 1, the activation rule of Algorithm 1."""
    S = sp.symbols("S", positive=True)
    mp = alpha / sp.sqrt(2) * sp.exp(S * sp.log(1 / alpha))
    mm = alpha / sp.sqrt(2) * sp.exp(-S * sp.log(1 / alpha))
    w = (mp ** 2 - mm ** 2) / 2
    target = alpha ** 2 / 4 * (alpha ** (-2 * S) - alpha ** (2 * S))
    assert sp.simplify(sp.expand_power_base(sp.powsimp(w - target, force=True), force=True)) == 0
    assert sp.simplify(w.subs(S, 1) - (1 - alpha ** 4) / 4) == 0


ALL = [prove_balanced_mode_ode, prove_saxe_logistic_solves_ode, prove_saxe_halfway_time,
       prove_conserved_imbalance, prove_discrete_gd_mode_growth, prove_dormant_scale]

if __name__ == "__main__":
    for f in ALL:
        f()
        print(f"{f.__name__}: ok")
