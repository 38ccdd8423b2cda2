"""The one-layer ReLU transformer of Nanda et al. 2023 ("Progress measures for grokking via mechanistic
interpretability", Sec. 3; progress-measures-paper, transformers.py): no LayerNorm, learned positions,
untied embedding and unembedding, causal attention, ReLU MLP with biases.

Single example, tokens t (T,) with rows x_i = W_E[t_i] + W_pos[i]   (T, D)  (theory/models/__init__.py:
tokens are rows, q_i = W_Q^T x_i):

    q_hi = x_i W_Q[h],  k_hj = x_j W_K[h],  v_hj = x_j W_V[h]              (H, T, d)
    A_hij = softmax_{j <= i}(q_hi . k_hj / sqrt(d))                        causal
    y_i = x_i + sum_h sum_j A_hij v_hj W_O[h]                              (T, D)  attention output
    z_i = y_i + relu(y_i W_in + b_in) W_out + b_out                        (T, D)  the MLP
    logits_i = z_i W_U                                                     (T, V)

With one layer and the loss on the last position only (the '=' token, Nanda et al.'s input
[a, b, =]), only row 2 needs a query, the MLP and the unembedding; rows 0 and 1 contribute their keys
and values only, and each depends on one token and its position. `last_logits` uses this: per step it
builds the tables over the vocabulary

    S_0[t] = (W_E[t] + W_pos[0]) W_K q_2 / sqrt(d)   (V, H)     O_0[t] = (W_E[t] + W_pos[0]) W_V W_O   (V, H, D)
    S_1[t], O_1[t] likewise at position 1;          s_2, O_2 of the constant '=' row

so a batch of pairs (a, b) costs H softmaxes over 3 scores, a weighted sum of three (H, D) rows, the
MLP and the unembedding of one row: equal to `forward(...)[2]` (tests/test_modular_arithmetic.py).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp


class ReluTransformer(NamedTuple):
    """The parameters, with the paper's names (stored in the sandbox's row convention)."""
    W_E: jax.Array     # (V, D) token embedding (row t is token t)
    W_pos: jax.Array   # (T, D) learned positions
    W_Q: jax.Array     # (H, D, d)
    W_K: jax.Array     # (H, D, d)
    W_V: jax.Array     # (H, D, d)
    W_O: jax.Array     # (H, d, D) head h writes z_h W_O[h] into the residual stream
    W_in: jax.Array    # (D, F)
    b_in: jax.Array    # (F,)
    W_out: jax.Array   # (F, D)
    b_out: jax.Array   # (D,)
    W_U: jax.Array     # (D, V) unembedding (untied)


def init_relu_transformer(key: jax.Array, vocab: int, n_ctx: int, d_model: int, n_heads: int, d_mlp: int,
                          dtype=jnp.float32) -> ReluTransformer:
    """Nanda et al.'s init (transformers.py): every weight N(0, 1)/sqrt(d_model) except W_U ~
    N(0, 1)/sqrt(vocab); the MLP biases are zero."""
    D, H, F = d_model, n_heads, d_mlp
    d = D // H
    ks = jax.random.split(key, 9)
    g = lambda k, shape, scale: (jax.random.normal(k, shape, dtype) / math.sqrt(scale)).astype(dtype)
    return ReluTransformer(
        W_E=g(ks[0], (vocab, D), D), W_pos=g(ks[1], (n_ctx, D), D),
        W_Q=g(ks[2], (H, D, d), D), W_K=g(ks[3], (H, D, d), D), W_V=g(ks[4], (H, D, d), D),
        W_O=g(ks[5], (H, d, D), D), W_in=g(ks[6], (D, F), D), b_in=jnp.zeros((F,), dtype),
        W_out=g(ks[7], (F, D), D), b_out=jnp.zeros((D,), dtype), W_U=g(ks[8], (D, vocab), vocab))


def _mlp(params: ReluTransformer, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(z, h): the residual after the MLP and the post-ReLU activations, for rows y (B, D)."""
    h = jax.nn.relu(y @ params.W_in + params.b_in[None])           # (B, F)
    return y + h @ params.W_out + params.b_out[None], h


def forward(params: ReluTransformer, tokens: jax.Array) -> jax.Array:
    """Logits at every position of one sequence, tokens (T,) int: (T, V) (the plain causal forward)."""
    T = tokens.shape[0]
    d = params.W_Q.shape[-1]
    x = params.W_E[tokens] + params.W_pos[:T]                      # (T, D)
    q = jnp.einsum("td,hde->hte", x, params.W_Q)                   # (H, T, d)
    k = jnp.einsum("td,hde->hte", x, params.W_K)                   # (H, T, d)
    v = jnp.einsum("td,hde->hte", x, params.W_V)                   # (H, T, d)
    s = jnp.einsum("hie,hje->hij", q, k) / math.sqrt(d)            # (H, T, T)
    causal = jnp.tril(jnp.ones((T, T), dtype=bool))
    A = jax.nn.softmax(jnp.where(causal[None], s, -jnp.inf), axis=-1)    # (H, T, T)
    y = x + jnp.einsum("hij,hje,hef->if", A, v, params.W_O)       # (T, D)
    z, _ = _mlp(params, y)
    return z @ params.W_U                                          # (T, V)


def last_row(params: ReluTransformer, a: jax.Array, b: jax.Array, eq: int) -> tuple[jax.Array, jax.Array]:
    """(z, h) of the last row of [a, b, eq] for a batch of pairs (a, b), each (B,) int: the residual
    after the MLP (B, D) and the MLP's post-ReLU activations (B, F), from the per-token tables."""
    d = params.W_Q.shape[-1]
    x0 = params.W_E + params.W_pos[0][None]                        # (V, D) every token at position 0
    x1 = params.W_E + params.W_pos[1][None]                        # (V, D) at position 1
    x2 = params.W_E[eq] + params.W_pos[2]                          # (D,) the '=' row
    q2 = jnp.einsum("d,hde->he", x2, params.W_Q)                   # (H, d) the only query
    score = lambda x: jnp.einsum("...d,hde,he->...h", x, params.W_K, q2) / math.sqrt(d)
    out = lambda x: jnp.einsum("...d,hde,hef->...hf", x, params.W_V, params.W_O)
    S0, S1, s2 = score(x0), score(x1), score(x2)                   # (V, H), (V, H), (H,)
    O0, O1, O2 = out(x0), out(x1), out(x2)                         # (V, H, D), (V, H, D), (H, D)
    s = jnp.stack([S0[a], S1[b], jnp.broadcast_to(s2[None], S0[a].shape)], axis=-1)   # (B, H, 3)
    A = jax.nn.softmax(s, axis=-1)                                 # (B, H, 3)
    y = (x2[None] + jnp.einsum("bh,bhf->bf", A[..., 0], O0[a]) + jnp.einsum("bh,bhf->bf", A[..., 1], O1[b])
         + jnp.einsum("bh,hf->bf", A[..., 2], O2))                # (B, D)
    return _mlp(params, y)


def last_logits(params: ReluTransformer, a: jax.Array, b: jax.Array, eq: int) -> jax.Array:
    """Logits of the last position of [a, b, eq] for a batch of pairs, (B, V); equals forward(...)[2]."""
    z, _ = last_row(params, a, b, eq)
    return z @ params.W_U                                          # (B, V)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean -log softmax(logits)[label], with the log-softmax in float64 (the original notebook's
    `cross_entropy_high_precision`; the published helpers.py casts to float32, which rounds
    log-probabilities to multiples of ~1.2e-7 and gives loss spikes). Needs x64 enabled."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float64), axis=-1)            # (B, V) float64
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1))
