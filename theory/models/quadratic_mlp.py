"""The quadratic MLP of Gromov 2023 ("Grokking modular arithmetic"): one hidden layer, x^2, no biases.

    f(a, b) = W2 (W1 [e_a; e_b])^2          W1 (N, 2p), W2 (p, N), e_a one-hot of length p

With one-hot inputs the first layer is a column lookup: W1 [e_a; e_b] = U[:, a] + V[:, b], writing
W1 = [U | V] (the a-block U and the b-block V, each (N, p)), so the forward pass never builds the
one-hot vectors. Output q is the score of class q (the predicted residue is argmax_q f(a, b)_q).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class QuadraticMLP(NamedTuple):
    U: jax.Array    # (N, p) first-layer weights on the one-hot of a (the a-block of W1)
    V: jax.Array    # (N, p) first-layer weights on the one-hot of b (the b-block of W1)
    W: jax.Array    # (p, N) second layer W2: row q reads the hidden units into class q


def init_quadratic_mlp(key: jax.Array, p: int, N: int, std: float) -> QuadraticMLP:
    """Every weight i.i.d. N(0, std^2) (d-doshi/Grokking, utils/models.py `fcn`: std 0.5 / (2N)^(1/3))."""
    k_u, k_v, k_w = jax.random.split(key, 3)
    return QuadraticMLP(std * jax.random.normal(k_u, (N, p)), std * jax.random.normal(k_v, (N, p)),
                        std * jax.random.normal(k_w, (p, N)))


def hidden(params: QuadraticMLP, a: jax.Array, b: jax.Array) -> jax.Array:
    """Pre-activations W1 [e_a; e_b] = U[:, a] + V[:, b] for a batch of pairs, (B, N)."""
    return params.U.T[a] + params.V.T[b]                          # (B, N)


def forward(params: QuadraticMLP, a: jax.Array, b: jax.Array) -> jax.Array:
    """Scores f(a, b) = W2 h^2 for a batch of pairs (a, b), each (B,) int: (B, p)."""
    return hidden(params, a, b) ** 2 @ params.W.T                 # (B, p)


def mse_loss(params: QuadraticMLP, a: jax.Array, b: jax.Array, c: jax.Array) -> jax.Array:
    """Mean over batch x classes of (f(a, b)_q - [q = c])^2 (torch's nn.MSELoss on one-hot targets)."""
    f = forward(params, a, b)                                     # (B, p)
    return jnp.mean((f - jax.nn.one_hot(c, f.shape[-1], dtype=f.dtype)) ** 2)


def accuracy(params: QuadraticMLP, a: jax.Array, b: jax.Array, c: jax.Array) -> jax.Array:
    """Fraction of pairs whose largest score is the class c."""
    return jnp.mean(jnp.argmax(forward(params, a, b), axis=-1) == c)
