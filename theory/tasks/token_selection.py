"""Token selection with one attention layer (Tarzanagh, Li, Thrampoulidis & Oymak 2023).

An instance is n labelled sequences (X_i, Y_i, z_i) and one fixed head v:

    X_i in R^{T x d}   tokens x_it as ROWS, each a Gaussian vector normalised to unit norm
    z_i in R^d         the query (cross-attention), a Gaussian vector normalised to unit norm
    Y_i in {-1, +1}    uniform labels
    v   in R^d         the fixed prediction head, Gaussian normalised to unit norm

Token t of sequence i has score gamma_it = Y_i v^T x_it; the globally optimal token is
opt_i = argmax_t gamma_it (unique almost surely). The same generator as the authors' notebooks
(`umich-sota/TF-as-SVM`, `cross_attn=True`).

Worked example (n = 1, T = 2, d = 2): v = (1, 0), Y_1 = -1, z_1 = (0, 1),
x_11 = (1, 0), x_12 = (0.6, 0.8). Scores gamma_1 = -1 * (1, 0.6) = (-1, -0.6), so opt_1 = 1 (the
second token, 0-based): the label is negative, so the token with the SMALLER v-projection is the
one attention should select.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from theory.errors import SandboxError


class Instance(NamedTuple):
    X: jax.Array  # (n, T, d) tokens x_it as rows, unit norm
    Y: jax.Array  # (n,)      labels +-1
    Z: jax.Array  # (n, d)    queries z_i, unit norm
    v: jax.Array  # (d,)      fixed head, unit norm


def _unit(x: jax.Array) -> jax.Array:
    return x / jnp.linalg.norm(x, axis=-1, keepdims=True)


def validate_sizes(n: int, T: int, d: int) -> None:
    """Raise SandboxError unless n >= 1, T >= 2 (something to select from) and d >= 1."""
    if n < 1 or T < 2 or d < 1:
        raise SandboxError(f"token selection needs n >= 1, T >= 2, d >= 1; got n={n}, T={T}, d={d}")


def sample_instance(key: jax.Array, n: int, T: int, d: int) -> Instance:
    """Draw one instance (pure function of `key`); see the module docstring for the law."""
    kx, ky, kz, kv = jax.random.split(key, 4)
    dtype = jnp.result_type(float)
    X = _unit(jax.random.normal(kx, (n, T, d), dtype))                  # (n, T, d)
    Y = jnp.where(jax.random.bernoulli(ky, 0.5, (n,)), 1.0, -1.0).astype(dtype)  # (n,)
    Z = _unit(jax.random.normal(kz, (n, d), dtype))                     # (n, d)
    v = _unit(jax.random.normal(kv, (d,), dtype))                       # (d,)
    return Instance(X, Y, Z, v)


def token_scores(inst: Instance) -> jax.Array:
    """gamma_it = Y_i v^T x_it, shape (n, T)."""
    return inst.Y[:, None] * (inst.X @ inst.v)                         # (n, T)


def optimal_tokens(inst: Instance) -> jax.Array:
    """opt_i = argmax_t gamma_it, shape (n,)."""
    return jnp.argmax(token_scores(inst), axis=-1)
