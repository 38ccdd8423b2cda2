"""In-context linear regression prompts.

A task draws a weight vector w ~ N(0, I_d), N context inputs x_i and a query x_q from the input
distribution, and labels y_i = w^T x_i + noise. The prompt is the token matrix

    Z = [[x_1, y_1], ..., [x_N, y_N], [x_q, 0]]     shape (N+1, d+1), tokens as rows

Worked example (d = 2, N = 2): w = (1, -2), x_1 = (0.5, 0.1), x_2 = (-0.2, 0.3), x_q = (0.4, 0.4)
gives y_1 = 0.3, y_2 = -0.8, Z = [[0.5, 0.1, 0.3], [-0.2, 0.3, -0.8], [0.4, 0.4, 0]] and the
target y_q = w^T x_q = -0.4.

Input distributions: "uniform" x ~ U(-r/2, r/2)^d (vO's `input_range` r; r = 1 gives variance
1/12 and fourth moment 9/5 sigma^4), or "gaussian" x ~ N(0, Lambda) with Lambda = diag(lam).
"""
from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from theory.errors import SandboxError


@dataclasses.dataclass(frozen=True)
class RegressionTask:
    d: int                                  # input dimension
    input_dist: str = "uniform"             # "uniform" | "gaussian"
    input_range: float = 1.0                # uniform: x ~ U(-r/2, r/2)
    lam: tuple[float, ...] | None = None    # gaussian: diag of the input covariance (None = I)
    noise: float = 0.0                      # label noise std

    def validate(self) -> None:
        if self.d <= 0:
            raise SandboxError(f"d must be positive, got {self.d}")
        if self.input_dist not in ("uniform", "gaussian"):
            raise SandboxError(f"input_dist must be 'uniform' or 'gaussian', got {self.input_dist!r}")
        if self.lam is not None and (len(self.lam) != self.d or min(self.lam) <= 0):
            raise SandboxError(f"lam must have d={self.d} positive entries, got {self.lam}")
        if self.input_range <= 0 or self.noise < 0:
            raise SandboxError("input_range must be positive and noise non-negative")

    @property
    def covariance_diag(self) -> jax.Array:
        """diag(Lambda): the input covariance is diagonal for both distributions."""
        if self.input_dist == "uniform":
            return jnp.full((self.d,), self.input_range ** 2 / 12.0)
        return jnp.ones(self.d) if self.lam is None else jnp.asarray(self.lam)

    @property
    def kurtosis(self) -> float:
        """E x_k^4 / (E x_k^2)^2 per coordinate: 9/5 uniform, 3 Gaussian."""
        return 1.8 if self.input_dist == "uniform" else 3.0


class Prompt(NamedTuple):
    X: jax.Array    # (N, d) context inputs
    y: jax.Array    # (N,)   context labels
    x_q: jax.Array  # (d,)   query input
    y_q: jax.Array  # ()     query target w^T x_q (+ noise)
    w: jax.Array    # (d,)   the task's weight vector


def _inputs(key: jax.Array, task: RegressionTask, n: int) -> jax.Array:
    if task.input_dist == "uniform":
        r = task.input_range
        return jax.random.uniform(key, (n, task.d), minval=-r / 2, maxval=r / 2)   # (n, d)
    return jax.random.normal(key, (n, task.d)) * jnp.sqrt(task.covariance_diag)[None, :]   # (n, d)


def sample_prompt(key: jax.Array, task: RegressionTask, n_ctx: int) -> Prompt:
    """One prompt with n_ctx context pairs (a pure function of `key`)."""
    kw, kx, kn = jax.random.split(key, 3)
    w = jax.random.normal(kw, (task.d,))                   # (d,)
    X_all = _inputs(kx, task, n_ctx + 1)                   # (N+1, d)
    y_all = X_all @ w + task.noise * jax.random.normal(kn, (n_ctx + 1,))   # (N+1,)
    return Prompt(X_all[:n_ctx], y_all[:n_ctx], X_all[n_ctx], y_all[n_ctx], w)


def tokens(p: Prompt) -> jax.Array:
    """The token matrix Z = [[X, y], [x_q, 0]], shape (N+1, d+1)."""
    ctx = jnp.concatenate([p.X, p.y[:, None]], axis=1)                 # (N, d+1)
    query = jnp.concatenate([p.x_q, jnp.zeros((1,), p.x_q.dtype)])     # (d+1,)
    return jnp.concatenate([ctx, query[None]], axis=0)                 # (N+1, d+1)


def sample_batch(key: jax.Array, task: RegressionTask, n_ctx: int, batch: int) -> Prompt:
    """`batch` independent prompts (leaves with a leading batch axis), drawn in bulk.

    Same distribution as vmapping `sample_prompt`, but three bulk draws instead of `batch`
    key splits (the per-example splits cost as much as the model on a CPU). Each bulk draw is
    one flat vector reshaped to (B, ...): JAX's threefry numbers a draw's entries by their flat
    index, so this gives the same numbers bit for bit as drawing the (B, N+1, d) array directly,
    without the multi-dimensional counter arithmetic that makes that draw ~2.5x slower on a CPU.
    """
    kw, kx, kn = jax.random.split(key, 3)
    T, d = n_ctx + 1, task.d
    w = _flat_normal(kw, (batch, d))                                            # (B, d)
    if task.input_dist == "uniform":
        r = task.input_range
        X_all = jax.random.uniform(kx, (batch * T * d,), minval=-r / 2, maxval=r / 2).reshape(batch, T, d)
    else:
        X_all = _flat_normal(kx, (batch, T, d)) * jnp.sqrt(task.covariance_diag)[None, None, :]
    y_all = jnp.einsum("bnd,bd->bn", X_all, w)                                  # (B, N+1)
    y_all = y_all + task.noise * _flat_normal(kn, (batch, T))
    return Prompt(X_all[:, :n_ctx], y_all[:, :n_ctx], X_all[:, n_ctx], y_all[:, n_ctx], w)


def _flat_normal(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """jax.random.normal(key, shape), drawn as one flat vector (the same numbers, faster)."""
    return jax.random.normal(key, (math.prod(shape),)).reshape(shape)
