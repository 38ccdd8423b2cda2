"""Nanda et al. 2023's progress measures of the one-layer transformer (Sec. 4-5; progress-measures-paper,
transformers.py and helpers.py), as pure JAX functions of one parameter snapshot (jit / lax.map them).

Fourier basis over the residues x = 0..p-1 (p odd, w_k = 2 pi k / p): the orthonormal rows
B_0 = 1/sqrt(p), B_{2k-1} = cos(w_k x)/sqrt(p/2), B_{2k} = sin(w_k x)/sqrt(p/2), k = 1..(p-1)/2.
L (p^2, p) are the last position's logits of every pair (a, b) (index a p + b) on the p answer
classes (the '=' class dropped, as the paper's metrics do); h (p^2, F) the MLP's post-ReLU
activations there.

    neuron frequency   per neuron, centred over the pairs and taken to the 2-D basis, H = B h B^T;
                       the fraction of sum H^2 in the 3 x 3 block {0, 2k-1, 2k}^2 (the constant, linear
                       and quadratic terms of frequency k), best over k = 1..p//2 - 1 (their
                       range(1, p//2)); the key frequencies are every neuron's best one, no threshold
                       (`calculate_key_freqs`); dead neurons (no variance) are left out
    key directions     C_k(a, b) = (sqrt 2 / p) cos(w_k (a+b)), S_k likewise with sin: unit vectors of
                       R^(p^2) (their `get_component_cos_xpy` / `sin_xpy`); with the key set K,
                       Pi L = sum_(k in K) C_k C_k^T L + S_k S_k^T L
    restricted loss    cross-entropy of Pi L + mean_pairs(L - Pi L) on all p^2 pairs (`calculate_trig_loss`,
                       bias_correction=True, mode='all'); Pi L has mean 0 over the pairs, so this is
                       Pi L + mean_pairs(L)
    excluded loss      cross-entropy of L - Pi L on the training pairs, every key frequency removed at
                       once (the paper's Sec. 5.1 version; the code's `calculate_excluded_loss` removes
                       one frequency at a time)
    embedding spectrum ||B_{2k-1} W_E||^2 + ||B_{2k} W_E||^2 per frequency k, and ||B_0 W_E||^2, over the
                       p number tokens (the '=' row left out)
    logit variance     the row-centred logits L - mean_c L on the directions cos(w_k (a + b - c)) of the key
                       frequencies (their `calculate_coefficients`): sum of squared coefficients over
                       ||L - mean_c L||^2 (the paper's "fraction of logit variance explained", Sec. 4.2)
All in float64 (the snapshot's float32 logits and activations are cast first).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from theory.models import relu_transformer as rt
from theory.tasks import modular


def fourier_basis(p: int) -> jax.Array:
    """(p, p) orthonormal rows: constant, then cos and sin of each frequency k = 1..(p-1)/2."""
    x = jnp.arange(p, dtype=jnp.float64)
    rows = [jnp.ones(p, dtype=jnp.float64) / math.sqrt(p)]
    for k in range(1, p // 2 + 1):
        w = 2 * math.pi * k / p
        rows += [jnp.cos(w * x) / math.sqrt(p / 2), jnp.sin(w * x) / math.sqrt(p / 2)]
    return jnp.stack(rows)                                               # (p, p)


def sum_directions(p: int) -> tuple[jax.Array, jax.Array]:
    """(C, S), each (p//2, p^2): the unit directions (sqrt 2 / p) cos / sin(w_k (a+b)), k = 1..p//2."""
    pairs = modular.all_pairs(p)
    s = (pairs.a + pairs.b).astype(jnp.float64)                          # (p^2,)
    k = jnp.arange(1, p // 2 + 1, dtype=jnp.float64)[:, None]            # (K, 1)
    angle = 2 * math.pi * k * s[None] / p                                # (K, p^2)
    return math.sqrt(2) / p * jnp.cos(angle), math.sqrt(2) / p * jnp.sin(angle)


def all_pair_outputs(params: rt.ReluTransformer, p: int) -> tuple[jax.Array, jax.Array]:
    """(logits (p^2, p + 1), post-ReLU activations (p^2, F)) at the '=' position, float64."""
    pairs = modular.all_pairs(p)
    z, h = rt.last_row(params, pairs.a, pairs.b, p)
    return (z @ params.W_U).astype(jnp.float64), h.astype(jnp.float64)


def neuron_frequencies(h: jax.Array, p: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(best frequency (F,) in 1..p//2 - 1, its fraction of the neuron's centred 2-D Fourier power (F,),
    live (F,) bool: the neuron varies over the pairs) from activations h (p^2, F)."""
    B = fourier_basis(p)
    hc = h - jnp.mean(h, axis=0, keepdims=True)                          # (p^2, F) centred
    H = jnp.einsum("fx,gy,xyn->fgn", B, B, hc.reshape(p, p, -1))         # (p, p, F)
    H2 = H ** 2
    total = jnp.sum(H2, axis=(0, 1))                                     # (F,)
    ks = jnp.arange(1, p // 2)                                           # range(1, p//2)
    idx = jnp.stack([jnp.zeros_like(ks), 2 * ks - 1, 2 * ks], axis=-1)   # (K, 3)
    rows, cols = (jnp.broadcast_to(i, (ks.shape[0], 3, 3)) for i in (idx[:, :, None], idx[:, None, :]))
    block = H2[rows, cols]                                               # (K, 3, 3, F)
    live = total > 1e-20
    frac = jnp.sum(block, axis=(1, 2)) / jnp.where(live, total, 1.0)[None]   # (K, F)
    best = jnp.argmax(frac, axis=0)                                      # (F,)
    return ks[best], jnp.max(frac, axis=0), live


def frequency_counts(best: jax.Array, live: jax.Array, p: int) -> jax.Array:
    """Live neurons per frequency, (p//2 + 1,) int (index k = frequency; 0 and p//2 stay empty)."""
    return jnp.zeros(p // 2 + 1, dtype=jnp.int32).at[best].add(live.astype(jnp.int32))


def embedding_spectrum(W_E: jax.Array, p: int) -> jax.Array:
    """(p//2 + 1,): ||B_0 W_E||^2 at index 0, then ||cos_k||^2 + ||sin_k||^2 of the number tokens' rows."""
    F = fourier_basis(p) @ W_E[:p].astype(jnp.float64)                    # (p, D)
    n2 = jnp.sum(F ** 2, axis=-1)                                        # (p,)
    return jnp.concatenate([n2[:1], n2[1::2] + n2[2::2]])


def key_projection(L: jax.Array, key_mask: jax.Array, p: int) -> jax.Array:
    """Pi L: the logits L (p^2, p) projected on the cos / sin(w_k (a+b)) directions of the key
    frequencies (key_mask (p//2 + 1,) bool, index k = frequency)."""
    C, S = sum_directions(p)                                             # (K, p^2) each
    m = key_mask[1:].astype(jnp.float64)[:, None]                        # (K, 1)
    return (m * C).T @ (C @ L) + (m * S).T @ (S @ L)                     # (p^2, p)


def cross_entropy(L: jax.Array, c: jax.Array, weight: jax.Array | None = None) -> jax.Array:
    """Mean (or `weight`-weighted mean) of -log softmax(L)[c] over rows."""
    nll = -jnp.take_along_axis(jax.nn.log_softmax(L, axis=-1), c[:, None], axis=-1)[:, 0]
    if weight is None:
        return jnp.mean(nll)
    return jnp.sum(weight * nll) / jnp.sum(weight)


def logit_variance_explained(L: jax.Array, key_mask: jax.Array, p: int) -> jax.Array:
    """Fraction of ||L - mean_c L||^2 on the directions cos(w_k (a + b - c)), k in the key set."""
    Lc = L - jnp.mean(L, axis=-1, keepdims=True)                         # (p^2, p) row-centred
    pairs = modular.all_pairs(p)
    s = (pairs.a + pairs.b).astype(jnp.float64)                          # (p^2,)
    c = jnp.arange(p, dtype=jnp.float64)                                 # (p,)
    k = jnp.arange(1, p // 2 + 1, dtype=jnp.float64)                     # (K,)
    w = 2 * math.pi * k / p
    # cos(w (s - c)) = cos(w s) cos(w c) + sin(w s) sin(w c); each direction has squared norm p^3 / 2
    ws, wc = w[:, None] * s[None], w[:, None] * c[None]                  # (K, p^2), (K, p)
    coef = (jnp.einsum("ks,sc,kc->k", jnp.cos(ws), Lc, jnp.cos(wc))
            + jnp.einsum("ks,sc,kc->k", jnp.sin(ws), Lc, jnp.sin(wc)))
    coef = coef / math.sqrt(p ** 3 / 2)                                  # (K,)
    return jnp.sum(key_mask[1:].astype(jnp.float64) * coef ** 2) / jnp.sum(Lc ** 2)


def measures(params: rt.ReluTransformer, key_mask: jax.Array, is_train: jax.Array, p: int) -> dict:
    """Every progress measure of one snapshot, given the key set (key_mask (p//2 + 1,) bool) and the
    training pairs (is_train (p^2,) bool, pair index a p + b)."""
    logits, h = all_pair_outputs(params, p)                              # (p^2, p + 1), (p^2, F)
    c = modular.all_pairs(p).c
    train, test = is_train.astype(jnp.float64), 1.0 - is_train.astype(jnp.float64)
    correct = (jnp.argmax(logits, axis=-1).astype(c.dtype) == c).astype(jnp.float64)
    L = logits[:, :p]                                                    # (p^2, p) the answer classes
    PL = key_projection(L, key_mask, p)
    best, _, live = neuron_frequencies(h, p)
    return {
        "train_loss": cross_entropy(logits, c, train), "test_loss": cross_entropy(logits, c, test),
        "train_acc": jnp.sum(correct * train) / jnp.sum(train), "test_acc": jnp.sum(correct * test) / jnp.sum(test),
        "restricted_loss": cross_entropy(PL + jnp.mean(L, axis=0, keepdims=True), c),
        "excluded_loss": cross_entropy(L - PL, c, train),
        "logit_variance": logit_variance_explained(L, key_mask, p),
        "embedding_spectrum": embedding_spectrum(params.W_E, p),
        "neuron_counts": frequency_counts(best, live, p),
        "weight_norm2": sum(jnp.sum(x.astype(jnp.float64) ** 2) for x in params),
    }


def key_frequencies(params: rt.ReluTransformer, p: int) -> tuple[jax.Array, jax.Array]:
    """(key mask (p//2 + 1,) bool, neurons per frequency (p//2 + 1,)) of one snapshot, from its MLP neurons."""
    _, h = all_pair_outputs(params, p)
    best, _, live = neuron_frequencies(h, p)
    counts = frequency_counts(best, live, p)
    return counts > 0, counts
