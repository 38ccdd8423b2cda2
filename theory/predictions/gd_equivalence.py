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
Multi-step references (float64, no transformer is trained):
* gdpp_residual / spectral_loss: the K-step GD / GD++ loss reduced to the spectrum of S, exact in the
  task w and the query x_q; spectra + gauss_rule: a fixed sample of spectra and its Gauss rule (exact
  for the sample's mean of b_K^2), so the step-size objective is deterministic;
* reference: its Newton minimum (restarts, continuation from depth K-1), judged on a second sample.
Evaluation helper: predict_prompts (the single-example model vmapped over a batch of prompts).
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from theory.models.lsa import LSAParams, lsa_predict
from theory.tasks.linear_regression import Prompt, RegressionTask, sample_prompt, tokens


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


# --- multi-step references: the loss exact in (w, x_q), on a fixed sample of spectra ----------------
def gdpp_residual(lam, etas, gammas):
    """b_K(lambda): the factor GD++ leaves of the task on an eigen-direction of S with eigenvalue lambda.

    With S = (1/N) X^T X and noiseless labels y = X w, every GD++ step keeps the inputs at X A_k and
    the context residuals at X B_k w, A_k, B_k polynomials in S (so they commute with it):
        S_k = A_k^2 S,   B_{k+1} = B_k (I - eta_k S_k),   A_{k+1} = A_k (I - gamma_k S_k),   A_0 = B_0 = I,
    and the prediction is x_q^T (I - B_K) w. Per eigenvalue: a <- a (1 - gamma a^2 lam),
    b <- b (1 - eta a^2 lam), from the pre-step a. Plain GD (gamma = 0): b = prod_k (1 - eta_k lam).
    b_K has degree (3^K - 1)/2 in lam. The last gamma never acts (nothing reads the inputs after it)."""
    a, b = jnp.ones_like(lam), jnp.ones_like(lam)
    for eta, gamma in zip(etas, gammas):
        s = a * a * lam                                        # eigenvalue of S_k
        b, a = b * (1 - eta * s), a * (1 - gamma * s)
    return b


@functools.partial(jax.jit, static_argnames=("task", "n_ctx", "chunk"))
def _spectra_chunk(key: jax.Array, task: RegressionTask, n_ctx: int, chunk: int) -> jax.Array:
    X = jax.vmap(lambda k: sample_prompt(k, task, n_ctx).X)(jax.random.split(key, chunk))   # (chunk, N, d)
    return jnp.linalg.eigvalsh(jnp.einsum("bni,bnj->bij", X, X) / n_ctx)                    # (chunk, d)


def spectra(task: RegressionTask, n_ctx: int, key: jax.Array, n: int, chunk: int = 2 ** 14) -> jax.Array:
    """Eigenvalues (n, d) of S = (1/N) X^T X for n independent contexts X (N, d) of `task` (float64
    under theory.engine.precision; chunks of `chunk` contexts, a pure function of `key`)."""
    chunk = min(chunk, n)
    parts = [_spectra_chunk(jax.random.fold_in(key, i), task, n_ctx, chunk) for i in range(-(-n // chunk))]
    return jnp.concatenate(parts)[:n]


@functools.partial(jax.jit, static_argnames=("m",))
def _lanczos(lam, m: int):
    """Recurrence coefficients (alpha, beta) of the orthonormal polynomials of the uniform measure on lam."""
    def step(carry, _):
        q_prev, q, beta = carry
        v = lam * q - beta * q_prev
        alpha = q @ v
        v = v - alpha * q
        beta_next = jnp.linalg.norm(v)
        return (q, v / beta_next, beta_next), (alpha, beta_next)
    q0 = jnp.full(lam.shape, 1 / jnp.sqrt(lam.size))
    _, (alpha, beta) = jax.lax.scan(step, (jnp.zeros_like(lam), q0, jnp.zeros(())), None, length=m)
    return alpha, beta


class GaussRule(NamedTuple):
    nodes: np.ndarray     # (m,)
    weights: np.ndarray   # (m,) summing to 1


def gauss_rule(lam, m: int) -> GaussRule:
    """The m-node Gauss rule of the empirical measure of the values lam (any shape): sum_j w_j p(x_j)
    equals mean_i p(lam_i) for every polynomial p of degree <= 2m - 1 (Golub-Welsch: the nodes and
    weights are the eigenvalues and squared first components of the Lanczos tridiagonal matrix)."""
    alpha, beta = (np.asarray(v, np.float64) for v in _lanczos(jnp.ravel(jnp.asarray(lam)), m))
    T = np.diag(alpha) + np.diag(beta[:-1], 1) + np.diag(beta[:-1], -1)       # (m, m)
    nodes, U = np.linalg.eigh(T)
    return GaussRule(nodes, U[0] ** 2)


def rule_size(K: int) -> int:
    """Nodes that make the Gauss rule exact for b_K^2 (degree 3^K - 1): (3^K + 1) // 2."""
    return (3 ** K + 1) // 2


def spectral_loss(etas, gammas, lam, weights, s2: float, d: int):
    """1/2 E (y_hat - y_q)^2 of K-step GD / GD++ given the spectra, exact in w ~ N(0, I) and x_q:
    with E x_q x_q^T = s2 I independent of the context, the loss is 1/2 s2 E tr B_K(S)^2
    = 1/2 s2 d E_lambda b_K(lambda)^2, the expectation over the eigenvalues' measure (`weights` on the
    points `lam`: a Gauss rule, or 1/size on a raw sample)."""
    return 0.5 * s2 * d * jnp.sum(weights * gdpp_residual(lam, etas, gammas) ** 2)


def _steps(v, K: int, kind: str, shared: bool):
    """(etas, gammas) of all K steps from the free values v: gd shared (eta); gd per step (eta_1..K);
    gdpp shared (eta, gamma); gdpp per step (eta_1..K, gamma_1..K-1: the last gamma never acts)."""
    if shared:
        etas = jnp.repeat(v[:1], K)
        return etas, (jnp.repeat(v[1:2], K) if kind == "gdpp" else jnp.zeros(K))
    gammas = jnp.concatenate([v[K:], jnp.zeros(1)]) if kind == "gdpp" else jnp.zeros(K)
    return v[:K], gammas


def n_free(K: int, kind: str, shared: bool) -> int:
    return (1 if shared else K) + (0 if kind == "gd" else (1 if shared else K - 1))


@functools.partial(jax.jit, static_argnames=("K", "kind", "shared"))
def _objective(v, nodes, weights, s2, d, K: int, kind: str, shared: bool):
    """(loss, gradient, Hessian) of the free step sizes v on a Gauss rule."""
    def f(u):
        return spectral_loss(*_steps(u, K, kind, shared), nodes, weights, s2, d)
    return f(v), jax.grad(f)(v), jax.hessian(f)(v)


def newton_minimum(v0, rule: GaussRule, task: RegressionTask, K: int, kind: str, shared: bool) -> dict:
    """A local minimum of `spectral_loss` on a Gauss rule from v0, by Newton's method with a trust
    region (scipy trust-exact, exact JAX Hessian, float64). Returns {"v", "loss", "decrement",
    "min_curvature", "converged"}: decrement = g^T H^-1 g / loss (the Newton decrement, relative: the
    predicted loss reduction of one more Newton step), min_curvature = the smallest Hessian eigenvalue.
    Converged iff decrement <= 1e-12 and min_curvature > 0 (a strict local minimum)."""
    s2, d = float(task.covariance_diag[0]), task.d
    nodes, weights = jnp.asarray(rule.nodes), jnp.asarray(rule.weights)

    def parts(u):
        val, g, H = _objective(jnp.asarray(u), nodes, weights, s2, d, K, kind, shared)
        return float(val), np.asarray(g, np.float64), np.asarray(H, np.float64)

    with np.errstate(over="ignore", invalid="ignore"):      # a random start far out may overflow: it then fails
        res = scipy.optimize.minimize(lambda u: parts(u)[:2], np.asarray(v0, np.float64), jac=True,
                                      hess=lambda u: parts(u)[2], method="trust-exact",
                                      options={"gtol": 1e-14, "maxiter": 500})
        val, g, H = parts(res.x)
        if not (np.isfinite(val) and np.all(np.isfinite(H))):
            return {"v": res.x, "loss": val, "decrement": np.inf, "min_curvature": np.nan, "converged": False}
        curv = np.linalg.eigvalsh(H)
        dec = float(g @ np.linalg.solve(H, g) / val) if curv[0] > 0 else np.inf
    return {"v": res.x, "loss": val, "decrement": dec, "min_curvature": float(curv[0]),
            "converged": bool(np.isfinite(val) and curv[0] > 0 and dec <= 1e-12)}


def default_start(task: RegressionTask, n_ctx: int, K: int, kind: str, shared: bool) -> np.ndarray:
    """eta* (the one-step optimum) for every free eta, 0 for every free gamma."""
    eta0 = optimal_one_step(task, n_ctx)[0]
    n_eta = 1 if shared else K
    return np.concatenate([np.full(n_eta, eta0), np.zeros(n_free(K, kind, shared) - n_eta)])


def extend(v, K: int, kind: str) -> list[np.ndarray]:
    """Per-step starts at depth K from the depth K-1 optimum v: the new step appended or prepended with
    eta = 0 (the same loss as v: a zero step does nothing), the freed last gamma of v at 0."""
    v = np.asarray(v, np.float64)
    etas, gammas = v[:K - 1], v[K - 1:]
    if kind == "gd":
        return [np.r_[etas, 0.0], np.r_[0.0, etas]]
    return [np.r_[etas, 0.0, gammas, 0.0], np.r_[0.0, etas, 0.0, gammas]]


def per_matrix_loss(etas, gammas, lam, s2: float, d: int) -> jax.Array:
    """1/2 s2 sum_i b_K(lambda_i)^2 per context (n,) on raw spectra lam (n, d): mean = the sample's loss."""
    return 0.5 * s2 * jnp.sum(gdpp_residual(lam, etas, gammas) ** 2, axis=1)


def reference(task: RegressionTask, n_ctx: int, K: int, kind: str, shared: bool, fit: tuple, val: tuple,
              key: jax.Array, restarts: int, previous: np.ndarray | None = None) -> dict:
    """K-step GD or GD++ step sizes minimising the loss on a fixed sample of spectra; its settlement.

    fit, val: (raw spectra (n, d), GaussRule of them) of two independent samples. The loss is exact
    in w and x_q (`spectral_loss`), and the Gauss rule evaluates it on the fit sample exactly (to
    rounding) at any step sizes, so the minimisation is deterministic: Newton's method from the
    default start, from the depth K-1 optimum `previous` extended by one step (`extend`), and, per
    step only, from `restarts` random starts (etas ~ U(0, 8 eta*), gammas ~ U(0, 8)). Of the local
    minima (several at K >= 2 per step) the one with the lowest loss on the validation sample wins.

    Returns {"etas", "gammas", "free", "fit_loss", "val_loss", "val_se", "gap", "gap_se",
    "decrement", "min_curvature", "converged", "minima"}: gap = val_loss / fit_loss - 1 (the
    in-sample optimism; O(1/n) for a regular optimum) with its standard error gap_se (both samples'
    per-context s.e., independent); minima = the distinct local minima's (fit, validation) losses.
    Call under float64."""
    if not (task.noise == 0 and np.allclose(task.covariance_diag, task.covariance_diag[0])):
        raise ValueError("the spectral loss assumes isotropic inputs and noiseless labels")
    s2, d, p = float(task.covariance_diag[0]), task.d, n_free(K, kind, shared)
    eta0 = optimal_one_step(task, n_ctx)[0]
    starts = [default_start(task, n_ctx, K, kind, shared)]
    if previous is not None and not shared:
        starts += extend(previous, K, kind)
    if not shared and restarts:
        u = np.asarray(jax.random.uniform(key, (restarts, p)), np.float64)          # (restarts, p)
        starts += list(8.0 * u * np.r_[np.full(K, eta0), np.ones(p - K)])
    found = [newton_minimum(v0, fit[1], task, K, kind, shared) for v0 in starts]
    found = [f for f in found if f["converged"]]
    if not found:
        raise RuntimeError(f"no start converged to a local minimum (K={K}, {kind}, shared={shared})")
    val_loss = [float(spectral_loss(*_steps(jnp.asarray(f["v"]), K, kind, shared), jnp.asarray(val[1].nodes),
                                    jnp.asarray(val[1].weights), s2, d)) for f in found]
    best = int(np.argmin(val_loss))
    etas, gammas = (np.asarray(a, np.float64) for a in _steps(jnp.asarray(found[best]["v"]), K, kind, shared))
    per = [np.asarray(per_matrix_loss(etas, gammas, lam, s2, d)) for lam in (fit[0], val[0])]   # (n,) each
    means, ses = [float(np.mean(x)) for x in per], [float(np.std(x) / np.sqrt(x.size)) for x in per]
    minima = sorted({(round(f["loss"], 7), round(v, 7)) for f, v in zip(found, val_loss)})
    return {"etas": etas.tolist(), "gammas": gammas.tolist(), "free": found[best]["v"].tolist(),
            "fit_loss": found[best]["loss"], "val_loss": val_loss[best], "val_se": ses[1],
            "gap": val_loss[best] / found[best]["loss"] - 1,
            "gap_se": float(np.hypot(*ses) / means[0]),
            "decrement": found[best]["decrement"], "min_curvature": found[best]["min_curvature"],
            "converged": found[best]["converged"], "minima": [list(m) for m in minima], "n_starts": len(starts)}


# --- evaluating LSA weights on a batch of prompts -------------------------------------------------
def predict_prompts(params: LSAParams, prompts: Prompt, n_ctx: int, depth: int | None = None,
                    n_norm: int | None = None) -> jax.Array:
    """LSA predictions y_hat on a batch of prompts, (B,): the model (`theory.models.lsa.lsa_predict`,
    one token matrix Z of shape (T, D)) vmapped over the prompts' token matrices."""
    Z = jax.vmap(tokens)(prompts)                                                   # (B, T, D)
    return jax.vmap(lambda z: lsa_predict(params, z, n_ctx, depth=depth, n_norm=n_norm))(Z)   # (B,)
