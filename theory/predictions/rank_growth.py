"""Predictions for `rank_growth`: Saxe mode times and the greedy incremental-learning procedure.

Nothing here trains the model being measured. The inputs are the config and, for the Saxe stage
times, the initial mode strengths u0 read off the drawn init (a property of the start, not of
training); Algorithm 1 runs on the loss of the diagonal toys' fixed training set.

1. Saxe, McClelland & Ganguli (ICLR 2014), 2-layer linear network y = W2 W1 x, whitened inputs,
   loss 1/2 ||W2 W1 - M||_F^2, M = U diag(s) V^T. For a balanced aligned mode of strength
   u_i = U_i^T W2 W1 V_i, gradient flow with step eta gives (note the factor 2 of the 1/2-MSE)

       du/dt = 2 eta u (s - u)   =>   u(t) = s e^{2 eta s t} / (e^{2 eta s t} - 1 + s/u0),

   so u reaches s/2 at  t_i = ln(s_i/u0_i - 1) / (2 eta s_i)  (proved in proofs/rank_growth.py).
   From a random init the growing part of mode i is (W2^T U_i + W1 V_i)/2, so the exact initial
   strength is u0_i = ||W2(0)^T U_i + W1(0) V_i||^2 / 4 (mean alpha^2 h / 2 for N(0, alpha^2)
   entries). Discrete GD multiplies the growing part by (1 + eta s) per step, so 2 eta s becomes
   2 ln(1 + eta s). Rescaled time eta t / ln(1/alpha) -> 1/s_i as alpha -> 0. On the plateau
   after k modes the loss is 1/2 sum_{j>k} s_j^2.

2. Boix-Adsera, Littwin, Abbe, Bengio & Susskind (NeurIPS 2023), Algorithm 1 (incremental
   learning in diagonal networks, the same picture as Pesme & Flammarion 2023 for diagonal linear
   networks). Parameters theta = u * v in R^p trained by gradient flow from u = alpha, v = 0.
   With g = -dL/dtheta and the rescaled time tau = t / ln(1/alpha) (t = eta * steps for GD), a
   dormant coordinate has |theta_i| ~ alpha^{2(1 - |S_i|)} with S_i(tau) = int_0^tau g_i; it
   activates when |S_i| reaches 1. At saddle theta^k (gradient g^k) the next stage starts at

       T_{k+1} = T_k + min_{dormant i} (1 - sign(g_i^k) S_i) / |g_i^k|,

   the winner enters with sign(g_i^k), and theta^{k+1} is the limit of the flow restricted to the
   active coordinates. In the alpha -> 0 limit active coordinates are balanced (|u| = |v|, since
   u^2 - v^2 = alpha^2 is conserved), so the restricted flow is d theta/dt = 2 |theta| g(theta),
   integrated here in log-magnitude form. An active coordinate that returns to 0 goes dormant.
   The implementation below is this repository's own (no official code exists).
"""
from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theory.errors import SandboxError


# --- Saxe 2-layer linear network ---------------------------------------------------------------
def saxe_u0(W1: jax.Array, W2: jax.Array, U: jax.Array, V: jax.Array, r: int) -> jax.Array:
    """Exact initial strength of the growing part of modes 1..r: ||W2^T U_i + W1 V_i||^2 / 4."""
    G = W2.T @ U[:, :r] + W1 @ V[:, :r]                            # (h, r)
    return jnp.sum(G * G, axis=0) / 4.0                            # (r,)


def saxe_u0_orthogonalized(W1: jax.Array, W2: jax.Array, U: jax.Array, V: jax.Array, r: int) -> jax.Array:
    """Refined initial strength: the growing vector g_i = (W2^T U_i + W1 V_i)/2 with its components
    along g_1..g_{i-1} removed (Gram-Schmidt), u0_i = ||g_i^perp||^2.

    Derivation (mine, not in Saxe et al.): once mode j is learned, W2^T W2 ~ s_j g_j g_j^T/|g_j|^2 in
    hidden space, so the part of mode i's vectors along g_j decays (rate lr s_j) instead of growing;
    only the orthogonal part carries mode i to s_i/2. For modes learned in order 1..i-1 the
    effective initial strength is therefore the squared norm of g_i orthogonal to g_1..g_{i-1}.
    """
    G = (W2.T @ U[:, :r] + W1 @ V[:, :r]) / 2.0                      # (h, r) growing vectors
    Q, R = jnp.linalg.qr(G)                                          # G = Q R, R upper triangular
    return jnp.diagonal(R) ** 2                                      # (r,) |g_i^perp|^2


def saxe_mode_rate(s, lr, discrete: bool = True) -> np.ndarray:
    """Log-growth per GD step of the strength of a dormant mode: 2 ln(1 + lr s) (flow: 2 lr s)."""
    s = np.asarray(s, dtype=np.float64)
    return 2.0 * np.log1p(lr * s) if discrete else 2.0 * lr * s


def saxe_halfway_time(s, u0, lr, discrete: bool = True) -> np.ndarray:
    """GD steps for mode i to reach s_i / 2: ln(s/u0 - 1) / (2 ln(1 + lr s)) (flow: 2 lr s).

    Host-side numpy (float64 whatever JAX's precision), so a judge re-run outside the claim's
    precision scope gives the same numbers."""
    s, u0 = np.asarray(s, dtype=np.float64), np.asarray(u0, dtype=np.float64)
    return np.log(s / u0 - 1.0) / saxe_mode_rate(s, lr, discrete)


def saxe_logistic(t, s, u0, lr):
    """Gradient-flow mode strength u(t) = s e^{2 lr s t} / (e^{2 lr s t} - 1 + s/u0)."""
    e = jnp.exp(2.0 * lr * s * t)
    return s * e / (e - 1.0 + s / u0)


def saxe_rescaled_limit(s, lr: float | None = None) -> np.ndarray:
    """alpha -> 0 limit of the rescaled stage time lr * t_i / ln(1/alpha).

    u0 ~ alpha^2, so t_i ~ 2 ln(1/alpha) / (2 rate): flow 1/s_i; GD lr / ln(1 + lr s_i)."""
    return 1.0 / growth_rate(np.asarray(s, dtype=np.float64), lr)


def saxe_plateau_losses(s) -> np.ndarray:
    """Loss on the plateau after k = 0..r modes: 1/2 sum_{j>k} s_j^2 (s sorted descending)."""
    s2 = np.sort(np.asarray(s, dtype=np.float64))[::-1] ** 2
    tails = np.concatenate([np.cumsum(s2[::-1])[::-1], [0.0]])
    return 0.5 * tails


def saxe_aligned_recursion(a0, s, lr, steps: int) -> jax.Array:
    """Exact GD of an aligned balanced init W1 = diag(a) V^T, W2 = U diag(a) (hidden units = modes):
    a <- a + lr a (s - a^2) per step, mode strength u = a^2. Returns u after each step (steps, r)."""
    def step(a, _):
        a = a + lr * a * (s - a * a)
        return a, a * a
    return jax.lax.scan(step, a0, None, length=steps)[1]


def lr_stability_limit_saxe(s_max: float) -> float:
    """GD on 1/2 (ab - s)^2 is stable at the minimum a = b = sqrt(s) iff lr * 2 s < 2: lr < 1/s_max."""
    return 1.0 / s_max


# --- greedy incremental-learning procedure (Algorithm 1) -----------------------------------------
class GreedyStages(NamedTuple):
    coord: list       # index of the coordinate that activates at each stage
    sign: list        # its sign
    times: list       # T_k, rescaled activation time of stage k (k = 1..K)
    thetas: list      # theta^k, the saddle after stage k (theta^0 = 0 first)
    losses: list      # L(theta^k), k = 0..K
    residual: float   # max |theta_i g_i| over active coordinates at the saddles (flow convergence)


@functools.partial(jax.jit, static_argnums=(0,))
def _restricted_flow(grad_fn: Callable, theta0: jax.Array, active: jax.Array, h: float,
                     max_iter: int, tol: float) -> tuple[jax.Array, jax.Array]:
    """Integrate d theta/dt = 2 |theta| g(theta) on active coordinates (log-magnitude Euler steps)
    until max |theta_i g_i| < tol or max_iter; dormant coordinates stay at 0."""
    def cond(c):
        theta, i, res = c
        return (i < max_iter) & (res > tol)

    def body(c):
        theta, i, _ = c
        g = grad_fn(theta)
        step = jnp.clip(2.0 * h * jnp.sign(theta) * g, -0.2, 0.2)
        theta = jnp.where(active, theta * jnp.exp(step), 0.0)
        res = jnp.max(jnp.where(active, jnp.abs(theta * g), 0.0))
        return theta, i + 1, res

    theta, _, res = jax.lax.while_loop(cond, body, (theta0, 0, jnp.inf))
    return theta, res


def growth_rate(x, lr: float | None):
    """Log-growth per unit of (lr * steps) of a dormant mode pushed by gradient x > -1/lr.

    Gradient flow: x. GD with step lr multiplies the mode by (1 + lr x) per step: ln(1 + lr x) / lr.
    """
    x = np.asarray(x, dtype=np.float64)
    if lr is None:
        return x
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(1.0 + lr * x > 0, np.log1p(lr * x) / lr, -np.inf)


def greedy_incremental(loss_fn: Callable[[jax.Array], jax.Array], p: int, *, lr: float | None = None,
                       max_stages: int | None = None, push: float = 1e-4, h: float = 1e-2,
                       max_iter: int = 200_000, tol: float = 1e-10, zero_tol: float = 1e-7,
                       t_max: float = 1e3) -> GreedyStages:
    """Algorithm 1 for a diagonal network whose loss is `loss_fn(theta)`, theta in R^p (products).

    Returns the activation order, signs, rescaled stage times, saddles and saddle losses. Must be
    called under float64. With u = alpha, v = 0 the modes m^{+-} = (u +- v)/sqrt(2) start at
    alpha/sqrt(2) and theta = ((m^+)^2 - (m^-)^2)/2. S^{+-}_i count their log-growth in units of
    ln(1/alpha); coordinate i activates (sign +-) when S^{+-}_i reaches 1. Under gradient flow
    S^{+-} = +-S_i, the accumulated gradient of the docstring above. `lr` switches on the
    discrete-GD rates ln(1 + lr g)/lr (see `growth_rate`); `lr=None` is the flow limit.
    """
    grad_fn = jax.grad(lambda th: -loss_fn(th))   # g = -dL/dtheta
    theta = jnp.zeros((p,))
    S = np.zeros((2, p))                           # rows: S^+, S^-
    active = np.zeros(p, dtype=bool)
    T = 0.0
    out = GreedyStages([], [], [], [np.zeros(p)], [float(loss_fn(theta))], 0.0)
    residual = 0.0
    for _ in range(max_stages or 2 * p):
        g = np.asarray(grad_fn(theta))
        if lr is not None and np.any(~active & (lr * np.abs(g) >= 1)):
            raise SandboxError(f"lr={lr:g} is beyond the stability limit of the dormant dynamics: "
                               f"lr * max|dL/dtheta| = {lr * np.abs(g[~active]).max():.3g} >= 1")
        rate = np.stack([growth_rate(g, lr), growth_rate(-g, lr)])       # (2, p)
        with np.errstate(divide="ignore", invalid="ignore"):
            wait = np.where((rate > 1e-12) & ~active[None, :], (1.0 - S) / rate, np.inf)   # (2, p)
        side, i = np.unravel_index(int(np.argmin(wait)), wait.shape)
        if not np.isfinite(wait[side, i]) or T + wait[side, i] > t_max:
            break
        dT = float(wait[side, i])
        S = np.where(active[None, :], S, S + rate * dT)
        T += dT
        sgn = 1.0 if side == 0 else -1.0
        S[:, i] = (sgn, -sgn)
        active[i] = True
        start = jnp.asarray(np.where(np.arange(p) == i, sgn * push, np.asarray(theta)))
        theta, res = _restricted_flow(grad_fn, start, jnp.asarray(active), h, max_iter, tol)
        residual = max(residual, float(res))
        gone = active & (np.abs(np.asarray(theta)) < zero_tol)
        if gone.any():                       # an active coordinate returned to 0: dormant again,
            active = active & ~gone          # its S^{+-} stay at +-1 (the sign it had while active)
            theta = jnp.where(jnp.asarray(gone), 0.0, theta)
        out.coord.append(int(i))
        out.sign.append(sgn)
        out.times.append(T)
        out.thetas.append(np.asarray(theta))
        out.losses.append(float(loss_fn(theta)))
    return out._replace(residual=residual)
