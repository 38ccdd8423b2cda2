"""Attention models as pure single-example functions over named parameters.

Convention: `theory.models` (tokens are rows; s_ij = z_j^T W_KQ z_i; dz_i = sum_j a_ij W_PV z_j).
Keys and values come from the N context tokens C = Z[:N] only; the query token(s) after them
receive updates but are never attended to (the papers' query mask).

Linear self-attention (LSA), von Oswald et al. 2023 / Zhang, Frei & Bartlett 2024:
    Z <- Z + (1/n) (Z W_KQ^T C^T) C W_PV^T,     n = number of context tokens (or a fixed n_norm)
For in-context regression a token is (x, y) in R^{d+1}, the query is (x_q, 0), and the model's
prediction is  y_hat = -Z[-1, -1]  (minus the query's y-slot, as in vO and Ahn et al.).

Softmax attention with H heads (negative control):
    dz_i = sum_h sum_j softmax_j(z_j^T W_KQ[h] z_i) W_PV[h] z_j
Batch with jax.vmap.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class LSAParams(NamedTuple):
    W_KQ: jax.Array  # (L, D, D): score s_ij = z_j^T W_KQ[l] z_i
    W_PV: jax.Array  # (L, D, D): update dz_i = W_PV[l] sum_j s_ij z_j / n


class SoftmaxParams(NamedTuple):
    W_KQ: jax.Array  # (H, D, D) per head
    W_PV: jax.Array  # (H, D, D) per head


class Acts(NamedTuple):
    residuals: jax.Array  # (L+1, T, D): the token matrix before each layer and after the last


def lsa_layer(W_KQ: jax.Array, W_PV: jax.Array, Z: jax.Array, n_ctx: int,
              n_norm: int | None = None) -> jax.Array:
    """One LSA layer: Z + (1/n) (Z W_KQ^T C^T) C W_PV^T with C = Z[:n_ctx]; n = n_norm or n_ctx."""
    C = Z[:n_ctx]                                   # (N, D) keys and values: context tokens only
    scores = Z @ W_KQ.T @ C.T                       # (T, N)  s_ij = c_j^T W_KQ z_i
    return Z + scores @ C @ W_PV.T / (n_norm or n_ctx)   # (T, D)


def lsa_forward(params: LSAParams, Z: jax.Array, n_ctx: int, *, depth: int | None = None,
                n_norm: int | None = None) -> tuple[jax.Array, Acts]:
    """Apply the LSA stack to one prompt Z (T, D); return (y_hat, Acts).

    `params` hold L layers; `depth` > L reuses them cyclically (depth = K with L = 1 is the
    weight-shared, recurrent model). y_hat = -Z_final[-1, -1].
    """
    L = params.W_KQ.shape[0]
    depth = depth or L
    residuals = [Z]
    for k in range(depth):
        Z = lsa_layer(params.W_KQ[k % L], params.W_PV[k % L], Z, n_ctx, n_norm)   # (T, D)
        residuals.append(Z)
    return -Z[-1, -1], Acts(jnp.stack(residuals))


def lsa_predict(params: LSAParams, Z: jax.Array, n_ctx: int, *, depth: int | None = None,
                n_norm: int | None = None) -> jax.Array:
    """y_hat of `lsa_forward`, computing the last layer for the query row only.

    Exact (the other rows' last-layer outputs are never read) and T times cheaper in the last
    layer, which is what makes long test prompts (M = 1000) affordable.
    """
    L = params.W_KQ.shape[0]
    depth = depth or L
    for k in range(depth - 1):
        Z = lsa_layer(params.W_KQ[k % L], params.W_PV[k % L], Z, n_ctx, n_norm)   # (T, D)
    W_KQ, W_PV = params.W_KQ[(depth - 1) % L], params.W_PV[(depth - 1) % L]
    C, z_q = Z[:n_ctx], Z[-1]                       # (N, D), (D,)
    scores = C @ (W_KQ @ z_q)                       # (N,)  c_j^T W_KQ z_q
    update = W_PV @ (C.T @ scores) / (n_norm or n_ctx)   # (D,)
    return -(z_q[-1] + update[-1])


def softmax_attention_forward(params: SoftmaxParams, Z: jax.Array, n_ctx: int
                              ) -> tuple[jax.Array, jax.Array]:
    """One multi-head softmax attention layer with a residual; return (y_hat, pattern (H, T, N))."""
    C = Z[:n_ctx]                                                  # (N, D)
    scores = jnp.einsum("td,hed,ne->htn", Z, params.W_KQ, C)       # (H, T, N) c_n^T W_KQ[h] z_t
    pattern = jax.nn.softmax(scores, axis=-1)                      # (H, T, N)
    update = jnp.einsum("htn,ne,hde->td", pattern, C, params.W_PV)  # (T, D)
    Z = Z + update
    return -Z[-1, -1], pattern


def init_lsa(key: jax.Array, n_layers: int, D: int, scale: float) -> LSAParams:
    """i.i.d. N(0, scale^2) entries (a near-zero start, as in vO's VarianceScaling(0.002))."""
    k1, k2 = jax.random.split(key)
    shape = (n_layers, D, D)
    return LSAParams(scale * jax.random.normal(k1, shape), scale * jax.random.normal(k2, shape))


def init_softmax(key: jax.Array, n_heads: int, D: int, scale: float) -> SoftmaxParams:
    k1, k2 = jax.random.split(key)
    shape = (n_heads, D, D)
    return SoftmaxParams(scale * jax.random.normal(k1, shape), scale * jax.random.normal(k2, shape))
