"""One softmax-attention layer with a fixed head: the model of Tarzanagh et al. (2023).

    f(X, z) = v^T X^T softmax(X W z)          X: (T, d) tokens as rows, z: (d,) query

Token t gets the logit x_t^T W z (the sandbox convention s_ij = z_j^T W_KQ z_i with key x_t and
query z, so W plays W_KQ). In the (K, Q) parameterisation W = K Q^T with K, Q in R^{d x m}. The
head v is fixed (not trained). Loss: L(W) = (1/n) sum_i log(1 + exp(-Y_i f(X_i, z_i))).

The softmax gradient, pairwise form
-----------------------------------
With s = softmax(l) and readout f = sum_t s_t h_t (h_t = v^T x_t), autodiff computes
    df/dl_t = s_t (h_t - sum_tau s_tau h_tau),
which for the selected token t* subtracts two numbers that agree to 1 - s_t* < 1e-16 once the
logit gap passes ~36 (float64): the result is rounding noise of size ~1e-16 instead of the true
~exp(-gap), and normalized GD amplifies that noise into the update direction. The identical
expression written pairwise,
    df/dl_t = s_t sum_tau s_tau (h_t - h_tau),
has an exact zero for tau = t and only positive products s_t s_tau elsewhere: no cancellation, full
relative accuracy at any gap (proved equal in `proofs/svm_bias.py`). `pairwise_readout` uses it
as a custom VJP; `naive_readout` is autodiff's form, kept as the negative control.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from theory.tasks.token_selection import Instance


class WParams(NamedTuple):
    W: jax.Array  # (d, d) logit of token x for query z is x^T W z


class KQParams(NamedTuple):
    K: jax.Array  # (d, m) keys:    W = K Q^T
    Q: jax.Array  # (d, m) queries


def combined_W(params: WParams | KQParams) -> jax.Array:
    """The attention matrix W (= K Q^T in the factored form), shape (d, d)."""
    if isinstance(params, KQParams):
        return params.K @ params.Q.T                                    # (d, d)
    return params.W


@jax.custom_vjp
def pairwise_readout(logits: jax.Array, h: jax.Array) -> jax.Array:
    """f = sum_t softmax(logits)_t h_t with the cancellation-free pairwise backward pass."""
    return jnp.dot(jax.nn.softmax(logits), h)


def _pairwise_fwd(logits, h):
    s = jax.nn.softmax(logits)                                          # (T,)
    return jnp.dot(s, h), (s, h)


def _pairwise_bwd(res, ct):
    s, h = res
    D = h[:, None] - h[None, :]                                         # (T, T) h_t - h_tau
    g_logits = s * (D @ s)                                              # (T,) s_t sum s_tau (h_t - h_tau)
    return ct * g_logits, ct * s


pairwise_readout.defvjp(_pairwise_fwd, _pairwise_bwd)


def naive_readout(logits: jax.Array, h: jax.Array) -> jax.Array:
    """f = sum_t softmax(logits)_t h_t differentiated by autodiff (cancels at large gaps)."""
    return jnp.dot(jax.nn.softmax(logits), h)


READOUTS: dict[str, Callable] = {"pairwise": pairwise_readout, "naive": naive_readout}


def logits(W: jax.Array, inst: Instance) -> jax.Array:
    """l_it = x_it^T W z_i, shape (n, T)."""
    Wz = inst.Z @ W.T                                                   # (n, d) rows W z_i
    return jnp.einsum("ntd,nd->nt", inst.X, Wz)                         # (n, T)


def forward(W: jax.Array, inst: Instance, readout: str = "pairwise") -> jax.Array:
    """f_i = v^T X_i^T softmax(X_i W z_i), shape (n,)."""
    h = inst.X @ inst.v                                                 # (n, T) h_it = v^T x_it
    return jax.vmap(READOUTS[readout])(logits(W, inst), h)              # (n,)


def loss(params: WParams | KQParams, inst: Instance, readout: str = "pairwise") -> jax.Array:
    """L = mean_i log(1 + exp(-Y_i f_i))."""
    f = forward(combined_W(params), inst, readout)                      # (n,)
    return jnp.mean(jnp.logaddexp(0.0, -inst.Y * f))


def min_gap(W: jax.Array, inst: Instance) -> jax.Array:
    """min_i (largest logit - second largest logit) of sequence i."""
    top2 = jax.lax.top_k(logits(W, inst), 2)[0]                         # (n, 2)
    return jnp.min(top2[:, 0] - top2[:, 1])


def make_grad_fn(inst: Instance, readout: str = "pairwise", gap_stop: float = jnp.inf):
    """`grad_fn(params, batch) -> (loss, grads)` for `theory.engine.train.train` on a fixed instance.

    Once the smallest logit gap exceeds `gap_stop` the gradient is set to zero, which freezes the
    run under normalized GD (exp(-gap) approaches the float64 underflow ~1e-308 near gap 700).
    """
    vg = jax.value_and_grad(lambda p: loss(p, inst, readout))

    def grad_fn(params, batch):
        del batch
        value, grads = vg(params)
        frozen = min_gap(combined_W(params), inst) > gap_stop
        grads = jax.tree_util.tree_map(lambda g: jnp.where(frozen, jnp.zeros_like(g), g), grads)
        return value, grads

    return grad_fn
