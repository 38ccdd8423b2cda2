"""Attention models as pure single-example functions over named parameters.

Convention: `theory.models` (tokens are rows; s_ij = z_j^T W_KQ z_i; dz_i = sum_j a_ij W_PV z_j).
Keys and values come from the N context tokens C = Z[:N] only; the query token(s) after them
receive updates but are never attended to (the papers' query mask).

Linear self-attention (LSA), von Oswald et al. 2023 / Zhang, Frei & Bartlett 2024:
    Z <- Z + (1/n) (Z W_KQ^T C^T) C W_PV^T,     n = number of context tokens (or a fixed n_norm)
For in-context regression a token is (x, y) in R^{d+1}, the query is (x_q, 0), and the model's
prediction is  y_hat = -Z[-1, -1]  (minus the query's y-slot, as in vO and Ahn et al.).
Optional residual clamp (vO's deep-stack stabiliser, transformers_learn_icl_by_gd/src/transformer.py
in google-research/self-organising-systems): after each layer every entry of Z is clipped to
[-clamp, clamp]. A clamp that is active is no longer a pure LSA; `Acts.peak` records, per layer,
the largest |entry| before the clamp, so its activity can be measured (active iff peak > clamp).

Softmax attention with H heads (negative control):
    dz_i = sum_h sum_j softmax_j(z_j^T W_KQ[h] z_i) W_PV[h] z_j
`lsa_predict` and `softmax_attention_predict` compute y_hat from the query row alone (what
training and evaluation need); `lsa_forward` and `softmax_attention_forward` every row.
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
    peak: jax.Array | None = None   # (L,): max |entry| of Z after each layer, before any clamp


def lsa_layer(W_KQ: jax.Array, W_PV: jax.Array, Z: jax.Array, n_ctx: int,
              n_norm: int | None = None) -> jax.Array:
    """One LSA layer: Z + (1/n) (Z W_KQ^T C^T) C W_PV^T with C = Z[:n_ctx]; n = n_norm or n_ctx."""
    C = Z[:n_ctx]                                   # (N, D) keys and values: context tokens only
    scores = Z @ W_KQ.T @ C.T                       # (T, N)  s_ij = c_j^T W_KQ z_i
    return Z + scores @ C @ W_PV.T / (n_norm or n_ctx)   # (T, D)


def lsa_forward(params: LSAParams, Z: jax.Array, n_ctx: int, *, depth: int | None = None,
                n_norm: int | None = None, clamp: float | None = None) -> tuple[jax.Array, Acts]:
    """Apply the LSA stack to one prompt Z (T, D); return (y_hat, Acts).

    `params` hold L layers; `depth` > L reuses them cyclically (depth = K with L = 1 is the
    weight-shared, recurrent model). y_hat = -Z_final[-1, -1]. With `clamp`, the residual stream
    is clipped to [-clamp, clamp] after every layer (vO's deep-stack recipe); Acts.peak holds the
    largest |entry| after each layer before the clip (the clamp acted at layer l iff peak[l] > clamp).
    """
    L = params.W_KQ.shape[0]
    depth = depth or L
    residuals, peaks = [Z], []
    for k in range(depth):
        Z = lsa_layer(params.W_KQ[k % L], params.W_PV[k % L], Z, n_ctx, n_norm)   # (T, D)
        peaks.append(jnp.max(jnp.abs(Z)))
        if clamp is not None:
            Z = jnp.clip(Z, -clamp, clamp)
        residuals.append(Z)
    return -Z[-1, -1], Acts(jnp.stack(residuals), jnp.stack(peaks))


def lsa_predict(params: LSAParams, Z: jax.Array, n_ctx: int, *, depth: int | None = None,
                n_norm: int | None = None) -> jax.Array:
    """y_hat of `lsa_forward` from the query row alone, by products with the context's moments.

    Given the context, layer l = 1..depth (weights W_KQ[l], W_PV[l] = the params' entry (l - 1) mod L)
    is a linear map of every token (a column vector z):

        z <- G_l z,   G_l = I + (1/n) W_PV[l] U_{l-1} W_KQ[l],   U_l = C_l^T C_l   (D, D)

    with C_l the context rows after l layers (C_0 = Z[:n_ctx]); the context moves by the same map,
    so U_l = G_l U_{l-1} G_l^T. The prediction needs only products of U_l with vectors, which
    unroll into products with the context C itself (U_l is never formed):

        U_0 x = C^T (C x),     U_l x = u + (1/n) W_PV[l] U_{l-1} (W_KQ[l] u),
        u = U_{l-1} (x + (1/n) W_KQ[l]^T U_{l-1} (W_PV[l]^T x)).

    Exact (algebraically `lsa_forward` without a clamp, which this form cannot express; checked
    against it and a naive loop in tests/test_gd_equivalence.py). One layer is 2 N D + D^2
    multiplications per prompt (only the query row of the last layer is computed, which keeps long
    test prompts, M = 1000, cheap); depth K costs O(3^K N D) instead of K full layers on the (T, D)
    token matrix, ~4x faster forward and backward at K = 2 on a CPU (batched tiny matrix products
    are what XLA runs slowly).
    """
    L = params.W_KQ.shape[0]
    depth = depth or L
    C, n = Z[:n_ctx], n_norm or n_ctx                   # (N, D) keys and values: context tokens only

    def moment(x: jax.Array, l: int) -> jax.Array:
        """U_l x, (D,): the context's (unnormalised) second moment after l layers times x."""
        if l == 0:
            return C.T @ (C @ x)                                                  # (D,)
        W_KQ, W_PV = params.W_KQ[(l - 1) % L], params.W_PV[(l - 1) % L]
        u = moment(x + W_KQ.T @ moment(W_PV.T @ x, l - 1) / n, l - 1)            # U_{l-1} G_l^T x
        return u + W_PV @ moment(W_KQ @ u, l - 1) / n                            # G_l u

    z = Z[-1]                                                                     # (D,) the query token
    for l in range(1, depth):
        W_KQ, W_PV = params.W_KQ[(l - 1) % L], params.W_PV[(l - 1) % L]
        z = z + W_PV @ moment(W_KQ @ z, l - 1) / n                               # G_l z
    W_KQ, W_PV = params.W_KQ[(depth - 1) % L], params.W_PV[(depth - 1) % L]
    update = W_PV @ moment(W_KQ @ z, depth - 1) / n                              # (D,) the last layer's
    return -(z[-1] + update[-1])


def softmax_attention_forward(params: SoftmaxParams, Z: jax.Array, n_ctx: int
                              ) -> tuple[jax.Array, jax.Array]:
    """One multi-head softmax attention layer with a residual; return (y_hat, pattern (H, T, N))."""
    C = Z[:n_ctx]                                                  # (N, D)
    scores = jnp.einsum("td,hed,ne->htn", Z, params.W_KQ, C)       # (H, T, N) c_n^T W_KQ[h] z_t
    pattern = jax.nn.softmax(scores, axis=-1)                      # (H, T, N)
    update = jnp.einsum("htn,ne,hde->td", pattern, C, params.W_PV)  # (T, D)
    Z = Z + update
    return -Z[-1, -1], pattern


def softmax_attention_predict(params: SoftmaxParams, Z: jax.Array, n_ctx: int) -> jax.Array:
    """y_hat of `softmax_attention_forward` from the query row alone (the other rows' updates are
    never read): the same scores, softmax and update for t = T - 1 only, T times cheaper."""
    C, z_q = Z[:n_ctx], Z[-1]                                      # (N, D), (D,)
    scores = jnp.einsum("d,hed,ne->hn", z_q, params.W_KQ, C)       # (H, N) c_n^T W_KQ[h] z_q
    pattern = jax.nn.softmax(scores, axis=-1)                      # (H, N)
    update = jnp.einsum("hn,ne,hde->d", pattern, C, params.W_PV)   # (D,)
    return -(z_q[-1] + update[-1])


def init_lsa(key: jax.Array, n_layers: int, D: int, scale: float) -> LSAParams:
    """i.i.d. N(0, scale^2) entries (a near-zero start, as in vO's VarianceScaling(0.002))."""
    k1, k2 = jax.random.split(key)
    shape = (n_layers, D, D)
    return LSAParams(scale * jax.random.normal(k1, shape), scale * jax.random.normal(k2, shape))


def init_softmax(key: jax.Array, n_heads: int, D: int, scale: float) -> SoftmaxParams:
    k1, k2 = jax.random.split(key)
    shape = (n_heads, D, D)
    return SoftmaxParams(scale * jax.random.normal(k1, shape), scale * jax.random.normal(k2, shape))
