"""A linear associative memory (Bietti et al. 2023, arXiv 2306.00802, Sec. 3): one matrix W stores
input -> output pairs as a sum of outer products.

    e_x   input embeddings, the rows of E (N, d);   u_y   output embeddings, the rows of U (M, d)
    logit_y(x) = u_y^T W e_x                  all inputs at once: S = E W^T U^T      (N, M)
    L(W) = sum_x p(x) CE(logit(x), f(x))      cross-entropy of the target f(x) under input law p
    recall(x) = argmax_y logit_y(x)

At W = 0 every softmax is uniform (1/M), so the gradient is exactly
    -dL/dW = sum_x p(x) (u_f(x) - u_bar) e_x^T ,     u_bar = (1/M) sum_y u_y
(theory/predictions/composition.py; proofs/composition.py proves it symbolically): one step from
W = 0 writes the pairs into W. Worked example: N = M = 2, E = U = I_2, f = identity, p uniform:
-dL/dW = 1/2 [[1/2, -1/2], [-1/2, 1/2]], and the recall of both inputs is correct.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def scores(W: jax.Array, E: jax.Array, U: jax.Array) -> jax.Array:
    """logit_y(x) = u_y^T W e_x for every input x (rows) and output y (columns), (N, M)."""
    return E @ W.T @ U.T                                                     # (N, d) (d, d) (d, M)


def loss(W: jax.Array, E: jax.Array, U: jax.Array, f: jax.Array, p: jax.Array) -> jax.Array:
    """sum_x p(x) CE(logit(x), f(x)) with f (N,) target ids and p (N,) input probabilities."""
    logp = jax.nn.log_softmax(scores(W, E, U), axis=-1)                      # (N, M)
    return -jnp.sum(p * jnp.take_along_axis(logp, f[:, None], axis=-1)[:, 0])


def recall(W: jax.Array, E: jax.Array, U: jax.Array) -> jax.Array:
    """argmax_y u_y^T W e_x for every input x, (N,)."""
    return jnp.argmax(scores(W, E, U), axis=-1)
