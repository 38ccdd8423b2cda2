"""Predictions for in-context linear regression by linear self-attention (no training here).

Papers: von Oswald et al., ICML 2023 (vO: one LSA layer = one GD step, Proposition 1; deeper
stacks = GD++); Zhang, Frei & Bartlett, JMLR 2024 (ZFB: the trained layer's global minimum is
preconditioned GD with Gamma^{-1}); Ahn, Cheng, Daneshmand & Sra, NeurIPS 2023 (the same
one-layer optimum). The algebra behind every closed form is checked symbolically in
proofs/gd_equivalence.py.

Conventions: w ~ N(0, I_d); tokens (x, y); inner loss L(W) = (1/2N) sum_i (W x_i - y_i)^2 with W0 = 0;
"eta" multiplies the MEAN gradient; the outer loss is 1/2 E (y_hat - y_q)^2 unless a docstring says MSE.

Constructions (exact; tested in float64):
* construct_gd(etas):   W_KQ = [[I, 0], [0, 0]],  W_PV = [[0, 0], [0, -eta_k]]  per layer.
  Layer k moves every y-slot by -eta_k x^T (1/N) sum_j x_j r_j, i.e. context residuals r_j = y_j - W_k x_j
  and the query's slot -W_k x_q follow K steps of GD on L; prediction -(query y-slot) = W_K x_q.
* construct_gdpp(etas, gammas): W_PV = [[-gamma_k I, 0], [0, -eta_k]] also moves the inputs,
  x <- (I - gamma_k S) x with S = (1/N) sum_j x_j x_j^T (vO's GD++ curvature correction).

Closed forms (from the config alone):
* one_step_loss / optimal_one_step: L(eta) and its minimiser (eta*, L*) for isotropic inputs (vO);
* zfb_gamma / zfb_preconditioner / zfb_risk / zfb_risk_fixed_norm: Gamma, Gamma^{-1}, the test
  risk R(M) of the trained-at-N optimum on prompts of length M, and the same layer with its
  normalisation frozen at 1/N (ZFB).
Monte-Carlo references (float64, random prompts, no transformer is trained):
* reference_steps: K-step GD / GD++ step sizes fitted by L-BFGS on a fixed sample of prompts;
  refined_reference_steps: the same with random restarts, then refitted on doubled fresh samples.
Evaluation helper: predict_prompts (the single-example model vmapped over a batch of prompts).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from theory.models.lsa import LSAParams, lsa_predict
from theory.tasks.linear_regression import Prompt, RegressionTask, sample_batch, tokens


# --- constructions ------------------------------------------------------------------------
def construct_gdpp(etas, gammas, d: int) -> LSAParams:
    """LSA weights (one layer per entry of etas) implementing GD++ with steps (eta_k, gamma_k)."""
    etas, gammas = jnp.atleast_1d(jnp.asarray(etas)), jnp.atleast_1d(jnp.asarray(gammas))
    D = d + 1
    kq = jnp.zeros((D, D)).at[:d, :d].set(jnp.eye(d))                      # (D, D)
    W_KQ = jnp.broadcast_to(kq, (etas.shape[0], D, D))                      # (K, D, D)
    W_PV = jnp.zeros((etas.shape[0], D, D))
    W_PV = W_PV.at[:, d, d].set(-etas)
    W_PV = W_PV.at[:, :d, :d].set(-gammas[:, None, None] * jnp.eye(d)[None, :, :])
    return LSAParams(W_KQ, W_PV)


def construct_gd(etas, d: int) -> LSAParams:
    """LSA weights implementing len(etas) steps of plain GD from W0 = 0 (vO's Proposition 1)."""
    etas = jnp.atleast_1d(jnp.asarray(etas))
    return construct_gdpp(etas, jnp.zeros_like(etas), d)


# --- the algorithms the constructions claim to implement ---------------------------------------
def gd_steps(X, y, x_q, etas):
    """K steps of GD on L(W) = (1/2N) sum (W x_i - y_i)^2 from W = 0; return W_K x_q."""
    N = X.shape[0]
    W = jnp.zeros(X.shape[1])                                  # (d,)
    for eta in jnp.atleast_1d(etas):
        grad = (X @ W - y) @ X / N                             # (d,)
        W = W - eta * grad
    return x_q @ W


def gd_plus_plus(X, y, x_q, etas, gammas):
    """GD++ (vO 2023): per step, residuals r <- r - eta x^T (1/N) sum_j x_j r_j on every token
    (context residuals start at y, the query's at 0) and inputs x <- (I - gamma S) x with S the
    context second-moment matrix, both from the pre-step values. Returns the prediction -r_q."""
    N = X.shape[0]
    Xa = jnp.concatenate([X, x_q[None]], axis=0)               # (N+1, d) context then query
    r = jnp.concatenate([y, jnp.zeros((1,), y.dtype)])         # (N+1,)
    for eta, gamma in zip(jnp.atleast_1d(etas), jnp.atleast_1d(gammas)):
        C, rc = Xa[:N], r[:N]
        g = C.T @ rc / N                                       # (d,) = -grad at the current W
        S = C.T @ C / N                                        # (d, d)
        r = r - eta * Xa @ g
        Xa = Xa - gamma * Xa @ S.T
    return -r[N]


# --- one step, isotropic inputs (vO) ---------------------------------------------------------
def one_step_loss(task: RegressionTask, n_ctx: int, eta: float) -> float:
    """1/2 E (y_hat - y_q)^2 of one GD step with step eta, inputs i.i.d. per coordinate.

    With S = (1/N) sum x_i x_i^T, E S = s2 I, E S^2 = s2^2 (N + d + kappa - 2)/N I
    (kappa = E x^4 / s2^2: 9/5 uniform, 3 Gaussian), label-noise variance nu^2:
        L(eta) = 1/2 s2 d [1 - 2 eta s2 + eta^2 s2^2 (N + d + kappa - 2)/N] + 1/2 nu^2 (1 + eta^2 s2^2 d / N)
    """
    _require_isotropic(task)
    s2, d, N, k, nu2 = float(task.covariance_diag[0]), task.d, n_ctx, task.kurtosis, task.noise ** 2
    return (0.5 * s2 * d * (1 - 2 * eta * s2 + eta ** 2 * s2 ** 2 * (N + d + k - 2) / N)
            + 0.5 * nu2 * (1 + eta ** 2 * s2 ** 2 * d / N))


def optimal_one_step(task: RegressionTask, n_ctx: int) -> tuple[float, float]:
    """(eta*, L*) minimising `one_step_loss`: eta* = N s2 d / (s2^2 [d (N + d + kappa - 2) + nu2 d / s2]).

    Noiseless: eta* = N / (s2 (N + d + kappa - 2)),  L* = 1/2 s2 d (d + kappa - 2)/(N + d + kappa - 2).
    vO's setting (d = N = 10, x ~ U(-1/2, 1/2), s2 = 1/12): eta* = 6.061, L* = 0.2062.
    """
    _require_isotropic(task)
    s2, d, N, k, nu2 = float(task.covariance_diag[0]), task.d, n_ctx, task.kurtosis, task.noise ** 2
    a = s2 * d * s2 ** 2 * (N + d + k - 2) / N + nu2 * s2 ** 2 * d / N   # coefficient of eta^2 (x2)
    eta = s2 * d * s2 / a
    return eta, one_step_loss(task, n_ctx, eta)


def _require_isotropic(task: RegressionTask) -> None:
    diag = np.asarray(task.covariance_diag)
    if not np.allclose(diag, diag[0]):
        raise ValueError("the one-step closed form needs isotropic inputs; use zfb_* for Lambda != c I")


# --- ZFB: Gaussian inputs with covariance Lambda --------------------------------------------------
def zfb_gamma(task: RegressionTask, n_ctx: int) -> np.ndarray:
    """Gamma = (1 + 1/N) Lambda + tr(Lambda)/N I; the trained layer's preconditioner is Gamma^{-1}."""
    lam = np.diag(np.asarray(task.covariance_diag, dtype=np.float64))
    return (1 + 1 / n_ctx) * lam + np.trace(lam) / n_ctx * np.eye(task.d)


def zfb_preconditioner(task: RegressionTask, n_ctx: int) -> np.ndarray:
    """Gamma^{-1}: the global optimum of one LSA layer, y_hat = x_q^T Gamma^{-1} (1/M) sum y_i x_i."""
    return np.linalg.inv(zfb_gamma(task, n_ctx))


def linear_risk(task: RegressionTask, A: np.ndarray, M: int, scale: float = 1.0) -> float:
    """MSE (no 1/2) of y_hat = scale * x_q^T A (1/M) sum_{i<=M} y_i x_i on Gaussian N(0, Lambda) inputs.

    With B = A^T Lambda A and E[S B S] = (1 + 1/M) Lambda B Lambda + tr(B Lambda) Lambda / M:
        R = (1 + 1/M) tr(Lambda B Lambda) + tr(B Lambda) tr(Lambda)/M - 2 tr(Lambda A Lambda) + tr(Lambda)
            + nu^2 (1 + tr(B Lambda)/M),       A -> scale * A.
    `scale = M/N` gives a layer whose normalisation is frozen at 1/N (vO's P = eta/N).
    """
    if task.input_dist != "gaussian":
        raise ValueError("linear_risk assumes Gaussian inputs")
    lam = np.diag(np.asarray(task.covariance_diag, dtype=np.float64))
    A = scale * np.asarray(A, dtype=np.float64)
    B = A.T @ lam @ A
    tr = np.trace
    return float((1 + 1 / M) * tr(lam @ B @ lam) + tr(B @ lam) * tr(lam) / M - 2 * tr(lam @ A @ lam)
                 + tr(lam) + task.noise ** 2 * (1 + tr(B @ lam) / M))


def zfb_risk(task: RegressionTask, n_ctx: int, M: int) -> float:
    """R(M): test MSE of the trained-at-N optimum Gamma^{-1} on prompts of length M (ZFB)."""
    return linear_risk(task, zfb_preconditioner(task, n_ctx), M)


def zfb_risk_fixed_norm(task: RegressionTask, n_ctx: int, M: int) -> float:
    """The same predictor with the normalisation frozen at 1/N: blows up like (M/N)^2 for M >> N."""
    return linear_risk(task, zfb_preconditioner(task, n_ctx), M, scale=M / n_ctx)


# --- multi-step references: step sizes optimised on a fixed Monte-Carlo sample --------------------
@functools.partial(jax.jit, static_argnames=("kind",))
def _mc_loss(theta, X, y, x_q, y_q, kind: str):
    K = theta.shape[0] // 2
    etas, gammas = theta[:K], theta[K:]
    if kind == "gd":
        gammas = jnp.zeros_like(gammas)
    pred = jax.vmap(lambda a, b, c: gd_plus_plus(a, b, c, etas, gammas))(X, y, x_q)
    return 0.5 * jnp.mean((pred - y_q) ** 2)


def _expand(v, K: int, n_free: int):
    """(etas, gammas) of all K steps, (2K,), from n_free free values of each (1: shared, K: per step)."""
    return jnp.concatenate([jnp.repeat(v[:n_free], K // n_free), jnp.repeat(v[n_free:], K // n_free)])


@functools.partial(jax.jit, static_argnames=("kind", "K", "n_free"))
def _mc_value_and_grad(v, X, y, x_q, y_q, kind: str, K: int, n_free: int):
    """The MC loss of the free step sizes v and its gradient, one compiled program per shape."""
    return jax.value_and_grad(lambda u: _mc_loss(_expand(u, K, n_free), X, y, x_q, y_q, kind))(v)


def reference_steps(task: RegressionTask, n_ctx: int, K: int, kind: str, shared: bool,
                    key: jax.Array, n_tasks: int = 4096, starts=None) -> tuple[np.ndarray, np.ndarray, float]:
    """Optimise K-step GD or GD++ step sizes on a fixed MC sample (L-BFGS, exact JAX gradients).

    kind: "gd" (gamma = 0) or "gdpp"; shared: one (eta, gamma) for every step (the recurrent,
    weight-tied model) or one per step. `starts`: initial free values (n_starts, 2 n_free), the
    best final loss wins; default one start at (eta*/2, gamma = 0). Returns (etas, gammas,
    training-sample loss). Call under float64 (theory.engine.precision). Evaluate the returned
    steps on a separate sample.
    """
    if kind not in ("gd", "gdpp"):
        raise ValueError(kind)
    p = sample_batch(key, task, n_ctx, n_tasks)
    n_free = 1 if shared else K

    def f(v):
        val, g = _mc_value_and_grad(jnp.asarray(v), p.X, p.y, p.x_q, p.y_q, kind, K, n_free)
        return float(val), np.asarray(g, dtype=np.float64)

    starts = default_start(task, n_ctx, n_free)[None] if starts is None else np.asarray(starts, np.float64)
    best = min((scipy.optimize.minimize(f, v0, jac=True, method="L-BFGS-B",
                                        options={"gtol": 1e-10, "ftol": 1e-14, "maxiter": 2000})
                for v0 in starts), key=lambda r: r.fun if np.isfinite(r.fun) else np.inf)
    theta = np.asarray(_expand(jnp.asarray(best.x), K, n_free))
    gammas = theta[K:] if kind == "gdpp" else np.zeros(K)
    return theta[:K], gammas, float(best.fun)


def default_start(task: RegressionTask, n_ctx: int, n_free: int) -> np.ndarray:
    """(eta0/2 for every free eta, 0 for every free gamma), eta0 = eta* (isotropic) or 1/mean(Lambda)."""
    iso = np.allclose(task.covariance_diag, task.covariance_diag[0])
    eta0 = optimal_one_step(task, n_ctx)[0] if iso else 1.0 / float(np.mean(task.covariance_diag))
    return np.concatenate([np.full(n_free, 0.5 * eta0), np.zeros(n_free)])


def refined_reference_steps(task: RegressionTask, n_ctx: int, K: int, kind: str, shared: bool,
                            key: jax.Array, n_tasks: int, restarts: int, rounds: int) -> list[dict]:
    """`reference_steps` refined until it stops moving: one entry per round r = 0..rounds-1.

    Round 0 fits on n_tasks prompts from the default start and, per-step references only (shared
    ones have one eta and one gamma), `restarts` random ones (etas ~ U(0, 8 eta0), gammas ~ U(0, 8):
    the per-step GD++ loss has several local minima, e.g. 0.091, 0.097, 0.103 at K = 2); round
    r >= 1 refits on a fresh sample of n_tasks 2^r prompts from the previous round's optimum.
    Each entry: {"etas", "gammas", "train_loss", "n_tasks"}. The caller evaluates every round's
    steps on the same held-out prompts; their change between the last two rounds is the
    reference's own error (sample size and optimiser together)."""
    n_free = 1 if shared else K
    v0 = default_start(task, n_ctx, n_free)
    eta0 = 2 * float(v0[0])
    u = np.asarray(jax.random.uniform(jax.random.fold_in(key, 0), (0 if shared else restarts, 2 * n_free)),
                   np.float64)
    starts = np.concatenate([v0[None], 8.0 * u * np.r_[np.full(n_free, eta0), np.ones(n_free)]])
    out = []
    for r in range(rounds):
        n = n_tasks * 2 ** r
        etas, gammas, loss = reference_steps(task, n_ctx, K, kind, shared, jax.random.fold_in(key, r + 1), n,
                                             starts if r == 0 else _free(out[-1], K, n_free)[None])
        out.append({"etas": etas, "gammas": gammas, "train_loss": loss, "n_tasks": n})
    return out


def _free(entry: dict, K: int, n_free: int) -> np.ndarray:
    """The free values (etas then gammas, n_free each) of a round's steps (inverse of `_expand`)."""
    idx = np.arange(0, K, K // n_free)
    return np.concatenate([np.asarray(entry["etas"])[idx], np.asarray(entry["gammas"])[idx]])


# --- evaluating LSA weights on a batch of prompts -------------------------------------------------
def predict_prompts(params: LSAParams, prompts: Prompt, n_ctx: int, depth: int | None = None,
                    n_norm: int | None = None) -> jax.Array:
    """LSA predictions y_hat on a batch of prompts, (B,): the model (`theory.models.lsa.lsa_predict`,
    one token matrix Z of shape (T, D)) vmapped over the prompts' token matrices."""
    Z = jax.vmap(tokens)(prompts)                                                   # (B, T, D)
    return jax.vmap(lambda z: lsa_predict(params, z, n_ctx, depth=depth, n_norm=n_norm))(Z)   # (B,)
