"""Minimal factored models for the rank-growth claim: pure functions over NamedTuple params.

Every model here is a product parameterisation, which is what makes small-initialisation training
incremental (Saxe et al. 2014; Boix-Adsera et al. 2023):

* `LinearNet`    y = W2 W1 x (2-layer linear network). With whitened inputs, E[x x^T] = I, and
                 targets y = M x, the population loss is  L = 1/2 ||W2 W1 - M||_F^2.
* `DiagLinear`   diagonal linear regression, w = u * v (elementwise);  L = 1/(2N) ||X w - y||^2.
* `DiagAttention` one attention head with diagonal weights, the toy model of Boix-Adsera et al.:
                 a = w_K * w_Q (so W_KQ = W_K W_Q^T = diag(a)), b = w_V * w_O (W_PV = W_O W_V^T = diag(b)),
                 F(X) = softmax_rows(X diag(a) X^T) X diag(b).
* `AttentionHead` the same head with full matrices W_K, W_Q, W_V, W_O (d, m).

Attention follows the matrix convention of `theory.models` (its __init__): tokens are the rows of
X (T, d); the score of query token i on key token j is s_ij = x_j^T W_KQ x_i with W_KQ = W_K W_Q^T,
so the score matrix is S = X W_KQ^T X^T = X W_Q W_K^T X^T (softmax over keys j, along rows). The
value written into token i is f_i = sum_j A_ij W_PV x_j with W_PV = W_O W_V^T, i.e. in rows
F = A X W_PV^T = A X W_V W_O^T. For diagonal weights W_KQ and W_PV are diagonal, so the
orientation does not matter there; for the full head it does (tests/test_rank_growth.py checks
both against naive loops).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


# --- 2-layer linear network ------------------------------------------------------------------
class LinearNet(NamedTuple):
    W1: jax.Array  # (h, d_in)  first layer
    W2: jax.Array  # (d_out, h) second layer


def linear_net_product(p: LinearNet) -> jax.Array:
    """The end-to-end map W = W2 W1, shape (d_out, d_in)."""
    return p.W2 @ p.W1                                            # (d_out, d_in)


def linear_net_loss(p: LinearNet, M: jax.Array) -> jax.Array:
    """Population 1/2-MSE with whitened inputs: 1/2 ||W2 W1 - M||_F^2."""
    R = linear_net_product(p) - M                                 # (d_out, d_in)
    return 0.5 * jnp.sum(R * R)


def init_linear_net(key: jax.Array, d_in: int, h: int, d_out: int, alpha) -> LinearNet:
    """i.i.d. N(0, alpha^2) entries in both layers (alpha may be a traced scalar)."""
    k1, k2 = jax.random.split(key)
    return LinearNet(alpha * jax.random.normal(k1, (h, d_in)),
                     alpha * jax.random.normal(k2, (d_out, h)))


# --- diagonal linear regression --------------------------------------------------------------
class DiagLinear(NamedTuple):
    u: jax.Array  # (p,)
    v: jax.Array  # (p,)   regression weights w = u * v


def diag_linear_loss(p: DiagLinear, X: jax.Array, y: jax.Array) -> jax.Array:
    """1/(2N) ||X (u*v) - y||^2 with X (N, p), y (N,)."""
    r = X @ (p.u * p.v) - y                                       # (N,)
    return 0.5 * jnp.mean(r * r)


# --- attention heads -------------------------------------------------------------------------
class DiagAttention(NamedTuple):
    w_K: jax.Array  # (d,)
    w_Q: jax.Array  # (d,)   a = w_K * w_Q: W_KQ = diag(a)
    w_V: jax.Array  # (d,)
    w_O: jax.Array  # (d,)   b = w_V * w_O: W_PV = W_O W_V^T = diag(b)


def diag_products(p: DiagAttention) -> tuple[jax.Array, jax.Array]:
    """(a, b) = (w_K * w_Q, w_V * w_O), the coordinates of the greedy procedure."""
    return p.w_K * p.w_Q, p.w_V * p.w_O


def diag_attention_from_products(a: jax.Array, b: jax.Array, X: jax.Array) -> jax.Array:
    """F = softmax_rows(X diag(a) X^T) X diag(b) for one sequence X (T, d); returns (T, d)."""
    S = (X * a[None, :]) @ X.T                                    # (T, T) s_ij = x_i^T diag(a) x_j
    A = jax.nn.softmax(S, axis=-1)                                # (T, T) softmax over keys j
    return A @ (X * b[None, :])                                   # (T, d)


def diag_attention_forward(p: DiagAttention, X: jax.Array) -> jax.Array:
    """The diagonal head on one sequence X (T, d)."""
    a, b = diag_products(p)
    return diag_attention_from_products(a, b, X)


def attention_products_loss(a: jax.Array, b: jax.Array, X: jax.Array, F_star: jax.Array) -> jax.Array:
    """1/(2N) sum_n ||F(X_n) - F*_n||_F^2 as a function of the products (a, b); X (N, T, d)."""
    F = jax.vmap(lambda x: diag_attention_from_products(a, b, x))(X)   # (N, T, d)
    R = F - F_star
    return 0.5 * jnp.sum(R * R) / X.shape[0]


def diag_attention_loss(p: DiagAttention, X: jax.Array, F_star: jax.Array) -> jax.Array:
    a, b = diag_products(p)
    return attention_products_loss(a, b, X, F_star)


class AttentionHead(NamedTuple):
    W_K: jax.Array  # (d, m)
    W_Q: jax.Array  # (d, m)  W_KQ = W_K W_Q^T: s_ij = x_j^T W_KQ x_i
    W_V: jax.Array  # (d, m)
    W_O: jax.Array  # (d, m)  W_PV = W_O W_V^T: f_i = sum_j a_ij W_PV x_j


def head_products(p: AttentionHead) -> tuple[jax.Array, jax.Array]:
    """(W_KQ, W_PV) = (W_K W_Q^T, W_O W_V^T), each (d, d): the matrices whose rank grows."""
    return p.W_K @ p.W_Q.T, p.W_O @ p.W_V.T


def attention_head_forward(p: AttentionHead, X: jax.Array) -> jax.Array:
    """F = softmax_rows(X W_KQ^T X^T) X W_PV^T for one sequence X (T, d); returns (T, d)."""
    W_KQ, W_PV = head_products(p)
    S = X @ W_KQ.T @ X.T                                          # (T, T) s_ij = x_j^T W_KQ x_i
    A = jax.nn.softmax(S, axis=-1)                                # (T, T) softmax over keys j
    return A @ X @ W_PV.T                                         # (T, d) f_i = sum_j a_ij W_PV x_j


def attention_head_loss(p: AttentionHead, X: jax.Array, F_star: jax.Array) -> jax.Array:
    """1/(2N) sum_n ||F(X_n) - F*_n||_F^2; X (N, T, d)."""
    F = jax.vmap(lambda x: attention_head_forward(p, x))(X)       # (N, T, d)
    R = F - F_star
    return 0.5 * jnp.sum(R * R) / X.shape[0]


def init_attention_head(key: jax.Array, d: int, m: int, alpha) -> AttentionHead:
    """i.i.d. N(0, alpha^2) entries in all four matrices."""
    ks = jax.random.split(key, 4)
    return AttentionHead(*(alpha * jax.random.normal(k, (d, m)) for k in ks))


# --- spectra of perturbations ----------------------------------------------------------------
def stable_rank(W: jax.Array) -> jax.Array:
    """||W||_F^2 / ||W||_2^2 (0 for W = 0)."""
    s = jnp.linalg.svd(W, compute_uv=False)
    return jnp.where(s[0] > 0, jnp.sum(s * s) / jnp.where(s[0] > 0, s[0] * s[0], 1.0), 0.0)
