"""The 1-layer attention + decoder of scan-and-snap (Tian et al. 2023), in the Y/Z parameterisation.

Tokens are one-hot in R^M (embedding U = I), so the paper's reparameterisation
    Y = U W_V^T U^T      (M, M) decoder,      Z = U W_Q W_K^T U^T / sqrt(d)   (M, M) attention
makes Y and Z the free parameters (the paper's code `Model2`: K1.weight = Y^T, K2.weight = Z).

Forward pass for contextual tokens x_1..x_T and query m (no positional encoding, the query does
not attend to itself, no residual, l2-normalised attention output):
    b_t   = softmax_t(Z[m, x_t])                    attention of the query on context token t
    u     = X^T b = sum_t b_t e_{x_t}               (M,)
    f     = u / ||u||_2                             (M,)
    logits = Y^T f                                  (M,)   (logit_j = sum_l f_l Y[l, j])
    loss  = -log softmax(logits)[n]
Because there are no positions, u depends on the sequence only through the counts N_l:
    u_l = N_l e^{z_ml} / sum_l' N_l' e^{z_ml'}
and the population (T -> infinity) model replaces N_l / T by P(l|n):  u -> c_n,
    c_{n,l} = P(l|n) e^{z_ml} / sum_l' P(l'|n) e^{z_ml'},   f_n = c_n / ||c_n||.

In the repository's convention (theory/models/__init__.py: s_ij = z_j^T W_KQ z_i, output W_PV u)
with one-hot tokens, Z[m, l] = e_l^T W_KQ e_m, i.e. Z = W_KQ^T, and Y = W_PV^T (the decoder acts
on the l2-normalised u). Models take arrays: the class table of `theory.tasks.next_token` is passed
as its fields (P, query, label), a batch as (counts, query, label).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class Params(NamedTuple):
    Y: jax.Array  # (M, M) decoder: logits = Y^T f, row l = context token, column j = output token
    Z: jax.Array  # (M, M) attention: Z[m, l] = z_ml, score of query m on context token l


class Acts(NamedTuple):
    b: jax.Array       # (T,) or (M,) attention weights (per position, or per token type)
    f: jax.Array       # (M,) normalised attention output
    logits: jax.Array  # (M,)


def zeros(M: int) -> Params:
    """Y(0) = Z(0) = 0, the theory's initialisation."""
    return Params(jnp.zeros((M, M)), jnp.zeros((M, M)))


def init_uniform(key: jax.Array, M: int) -> Params:
    """U(-1/sqrt(M), 1/sqrt(M)) entries: PyTorch's nn.Linear default, the paper's Fig. 6 init."""
    kY, kZ = jax.random.split(key)
    a = 1.0 / jnp.sqrt(jnp.asarray(M, dtype=jnp.result_type(float)))
    return Params(jax.random.uniform(kY, (M, M), minval=-a, maxval=a),
                  jax.random.uniform(kZ, (M, M), minval=-a, maxval=a))


def forward_tokens(params: Params, context: jax.Array, query: jax.Array) -> tuple[jax.Array, Acts]:
    """The attention layer on an explicit token sequence context (T,) with query id `query`."""
    M = params.Z.shape[0]
    X = jax.nn.one_hot(context, M, dtype=params.Z.dtype)   # (T, M) one-hot tokens as rows
    s = params.Z[query][context]                           # (T,)  s_t = z_{m, x_t}
    b = jax.nn.softmax(s)                                  # (T,)
    u = X.T @ b                                            # (M,)  X^T b
    f = u / jnp.linalg.norm(u)                             # (M,)
    logits = params.Y.T @ f                                # (M,)
    return logits, Acts(b, f, logits)


def attention_weights(z: jax.Array, weights: jax.Array) -> jax.Array:
    """c_l = w_l e^{z_l} / sum_l' w_l' e^{z_l'} for token weights w (counts or P(.|n)); (M,)."""
    zs = z - jax.lax.stop_gradient(jnp.max(jnp.where(weights > 0, z, -jnp.inf)))   # shift cancels
    e = weights * jnp.exp(jnp.where(weights > 0, zs, 0.0))                           # (M,)
    return e / jnp.sum(e)


def forward_counts(params: Params, counts: jax.Array, query: jax.Array) -> tuple[jax.Array, Acts]:
    """Same model from the token counts (M,) (or P(.|n) for the population model)."""
    c = attention_weights(params.Z[query], counts)   # (M,) = X^T b grouped by token
    f = c / jnp.linalg.norm(c)                       # (M,)
    logits = params.Y.T @ f                          # (M,)
    return logits, Acts(c, f, logits)


def cross_entropy(logits: jax.Array, label: jax.Array) -> jax.Array:
    return -jax.nn.log_softmax(logits)[label]


def population_loss(params: Params, P: jax.Array, query: jax.Array, label: jax.Array) -> jax.Array:
    """T -> infinity loss: mean over the K (uniform) classes of the cross-entropy of f_n.

    P (K, M) rows P(.|n), query (K,) m = psi(n), label (K,) the next token n of each class."""
    def one(p, q, n):
        logits, _ = forward_counts(params, p, q)
        return cross_entropy(logits, n)
    return jnp.mean(jax.vmap(one)(P, query, label))


def sampled_loss(params: Params, counts: jax.Array, query: jax.Array, label: jax.Array) -> jax.Array:
    """Mean cross-entropy over a batch of B sampled sequences given by their token counts.

    counts (B, M), query (B,), label (B,) the next token of each sequence."""
    def one(c, q, n):
        logits, _ = forward_counts(params, c, q)
        return cross_entropy(logits, n)
    return jnp.mean(jax.vmap(one)(counts, query, label))


def group_sgd(eta_Y, eta_Z, momentum: float = 0.0) -> optax.GradientTransformation:
    """SGD with separate learning rates for Y and Z (traced scalars allowed), optional momentum.

    Momentum follows PyTorch (the paper's code): v <- mu v + g, theta <- theta - eta v.
    With momentum 0 and the population loss this is the theory's full-batch GD.
    """
    lrs = Params(Y=eta_Y, Z=eta_Z)

    def update(updates, state, params=None):
        del params
        return jax.tree_util.tree_map(lambda g, lr: -lr * g, updates, lrs), state

    scale = optax.GradientTransformation(lambda p: optax.EmptyState(), update)
    return optax.chain(optax.trace(decay=momentum), scale) if momentum > 0 else scale


def distinct_entropy(Z: jax.Array, P: jax.Array, query: jax.Array, distinct: jax.Array) -> jax.Array:
    """Entropy (nats) of c_n restricted to class n's distinct tokens, renormalised; (K,).

    P (K, M) rows P(.|n), query (K,), distinct (K, M) bool masks of each class's distinct tokens.
    At Z = 0 with weights linspace(0.1, 1, 10) this is 2.1513 (the paper's Fig. 6 starting value);
    uniform attention over 10 tokens gives ln 10 = 2.3026.
    """
    def one(p, q, mask):
        w = jnp.where(mask, p, 0.0)                         # (M,)
        c = attention_weights(Z[q], w)                      # (M,) zero off the distinct tokens
        return -jnp.sum(jnp.where(mask, c * jnp.log(jnp.where(mask, c, 1.0)), 0.0))
    return jax.vmap(one)(P, query, distinct)
