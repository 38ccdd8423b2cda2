"""Teacher/target generators for the rank-growth claim, each a pure function of a JAX key.

* `saxe_teacher`: a target map M = U diag(s) V^T with Haar-random orthonormal U, V.
  Example: s = (4, 2) in d = 3 gives M of rank 2 with singular values exactly (4, 2, 0).
* `equicorrelated_regression`: X rows ~ N(0, (1 - rho) I + rho 1 1^T), y = X w*.
  Example: p = 3, rho = 0.5 gives population covariance [[1, .5, .5], [.5, 1, .5], [.5, .5, 1]].
* `diag_attention_teacher`: X ~ N(0, 1)^(N, T, d) and F* = softmax(X diag(a*) X^T) X diag(b*).
  Example: a* = 0, b* = 1 gives F*_n = the mean token of X_n repeated on every row.
* `lowrank_attention_teacher`: a full head whose W_KQ* = W_K W_Q^T and W_PV* = W_O W_V^T have given
  singular values (ranks len(s_kq), len(s_pv)), inputs X ~ N(0, 1/d), for the check on a
  non-diagonal head. Example: s_kq = (2,), s_pv = (1,) gives rank-1 W_KQ* = 2 u u'^T and
  W_PV* = w w'^T with unit vectors u, u', w, w'.

Attention teachers follow the matrix convention of `theory.models` (tokens are rows, s_ij =
x_j^T W_KQ x_i, f_i = sum_j a_ij W_PV x_j).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from theory.models.factored import AttentionHead, attention_head_forward, diag_attention_from_products


def random_orthogonal(key: jax.Array, n: int) -> jax.Array:
    """A Haar-random orthogonal (n, n) matrix (QR of a Gaussian with the sign of diag(R) fixed)."""
    Q, R = jnp.linalg.qr(jax.random.normal(key, (n, n)))
    return Q * jnp.sign(jnp.diagonal(R))[None, :]                  # (n, n)


class SaxeTeacher(NamedTuple):
    M: jax.Array  # (d_out, d_in) = U[:, :r] diag(s) V[:, :r]^T
    U: jax.Array  # (d_out, d_out) left singular vectors (first r used)
    V: jax.Array  # (d_in, d_in)   right singular vectors
    s: jax.Array  # (r,) singular values, as given


def saxe_teacher(key: jax.Array, d_in: int, d_out: int, s: jax.Array) -> SaxeTeacher:
    """M = U diag(s) V^T with random orthonormal U, V; len(s) <= min(d_in, d_out)."""
    ku, kv = jax.random.split(key)
    U = random_orthogonal(ku, d_out)                               # (d_out, d_out)
    V = random_orthogonal(kv, d_in)                                # (d_in, d_in)
    r = s.shape[0]
    M = (U[:, :r] * s[None, :]) @ V[:, :r].T                       # (d_out, d_in)
    return SaxeTeacher(M, U, V, s)


class RegressionData(NamedTuple):
    X: jax.Array       # (N, p)
    y: jax.Array       # (N,)
    w_star: jax.Array  # (p,)


def equicorrelated_regression(key: jax.Array, N: int, rho: float, w_star: jax.Array) -> RegressionData:
    """X rows ~ N(0, (1-rho) I + rho 1 1^T) (shared factor construction), y = X w* (no noise)."""
    p = w_star.shape[0]
    kz, kc = jax.random.split(key)
    Z = jax.random.normal(kz, (N, p))                              # (N, p) independent part
    c = jax.random.normal(kc, (N, 1))                              # (N, 1) shared factor
    X = jnp.sqrt(1.0 - rho) * Z + jnp.sqrt(rho) * c               # (N, p)
    return RegressionData(X, X @ w_star, w_star)


class AttentionData(NamedTuple):
    X: jax.Array       # (N, T, d) input sequences, tokens as rows
    F_star: jax.Array  # (N, T, d) teacher outputs


def diag_attention_teacher(key: jax.Array, N: int, T: int, a_star: jax.Array,
                           b_star: jax.Array) -> AttentionData:
    """X ~ N(0, 1), F* = softmax_rows(X diag(a*) X^T) X diag(b*) per sequence."""
    d = a_star.shape[0]
    X = jax.random.normal(key, (N, T, d))                          # (N, T, d)
    F = jax.vmap(lambda x: diag_attention_from_products(a_star, b_star, x))(X)   # (N, T, d)
    return AttentionData(X, F)


class LowRankTeacher(NamedTuple):
    head: AttentionHead  # teacher factors (d, r): W_KQ* = W_K W_Q^T, W_PV* = W_O W_V^T
    data: AttentionData


def lowrank_attention_teacher(key: jax.Array, N: int, T: int, d: int, s_kq: jax.Array,
                              s_pv: jax.Array) -> LowRankTeacher:
    """Teacher head with W_KQ* = U_K diag(s_kq) U_Q^T and W_PV* = U_O diag(s_pv) U_V^T.

    U_K, U_Q (and U_O, U_V) are the first columns of independent Haar-random orthogonal matrices,
    so rank W_KQ* = len(s_kq) and rank W_PV* = len(s_pv); the factors are padded with zero columns
    to a common width. Inputs X ~ N(0, 1/d) per entry, so that the scores are O(1).
    """
    k_kq, k_pv, k_x = jax.random.split(key, 3)
    r = max(s_kq.shape[0], s_pv.shape[0])

    def factors(k, s):
        """(U diag(sqrt s), U' diag(sqrt s)), zero-padded to (d, r): their product U diag(s) U'^T."""
        k_left, k_right = jax.random.split(k)
        U = random_orthogonal(k_left, d)[:, :s.shape[0]]                # (d, r_s)
        U2 = random_orthogonal(k_right, d)[:, :s.shape[0]]              # (d, r_s)
        pad = jnp.zeros((d, r - s.shape[0]))                            # (d, r - r_s)
        return (jnp.concatenate([U * jnp.sqrt(s)[None, :], pad], axis=1),
                jnp.concatenate([U2 * jnp.sqrt(s)[None, :], pad], axis=1))

    W_K, W_Q = factors(k_kq, s_kq)                                      # W_K W_Q^T = W_KQ*
    W_O, W_V = factors(k_pv, s_pv)                                      # W_O W_V^T = W_PV*
    head = AttentionHead(W_K, W_Q, W_V, W_O)
    X = jax.random.normal(k_x, (N, T, d)) / jnp.sqrt(d)                 # (N, T, d)
    F = jax.vmap(lambda x: attention_head_forward(head, x))(X)          # (N, T, d)
    return LowRankTeacher(head, AttentionData(X, F))
