"""The two-layer attention-only transformer of Bietti et al. 2023 (arXiv 2306.00802, Sec. 4.2;
albietz/transformer-birth, ihead_basic_model.py): one head per layer, no MLP, no layer norm, frozen
random embeddings, and W_Q = I, so each trained matrix is one associative memory.

Single sequence of tokens x (T,):

    z_0 = w_E(x_t) + p_t                                      (T, d)  token and position embeddings, N(0, 1)
    layer l = 1, 2 (z = z_(l-1)):
        s_ij = z_i . (W_K^l z_j) / sqrt(d)                    query z_i (W_Q = I), key W_K^l z_j, j <= i
        z_l,i = z_i + W_O^l W_V^l sum_j softmax_j(s_ij) z_j
    logits_t = W_U z_2,t                                      (T, V)

Convention (theory/models/__init__.py): s_ij = z_j^T W_KQ z_i with W_KQ = (W_K)^T, and the OV circuit
is W_PV = W_O W_V; the names W_K, W_V, W_O are the paper's (its W_K z is the repository's
nn.Linear wk(z)). Trained (the repository's freezing scheme): W_K^1, W_K^2, W_O^2; frozen: w_E, p,
W_V^1, W_O^1, W_V^2, W_U. Init: embeddings N(0, 1); every matrix U(-1/sqrt(fan_in), 1/sqrt(fan_in))
(PyTorch's nn.Linear default, what the repository uses).

Memory probes (ihead_basic_main.py `test_wk0`, `test_wk1`, `test_wo1`):
    wk0  previous-token memory: for t = 1..T-1, argmax_j p_t . (W_K^1 p_j) over j = 0..T-2 is t - 1
         (unmasked: the keys j > t, which the causal head never sees, compete too); two diagnostics
         beside it: wk0_64, the same over the first 64 positions (the repository's wk0_64_acc), and
         wk0_causal, the argmax over the keys the query can attend to (j <= t)
    wk1  trigger association: for each trigger a, argmax_b w_E(a) . (W_K^2 W_O^1 W_V^1 w_E(b)) over the
         triggers b is a
    wo1  output memory: for each token v, argmax_u (W_U W_O^2 W_V^2 w_E(v))_u is v
each the fraction of rows whose argmax is right.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp


class Trained(NamedTuple):
    W_K1: jax.Array       # (d, d) layer-1 key: the previous-token memory p_(t-1) -> p_t
    W_K2: jax.Array       # (d, d) layer-2 key: the trigger memory W_O^1 W_V^1 w_E(a) -> w_E(a)
    W_O2: jax.Array       # (d, d) layer-2 output: the output memory W_V^2 w_E(v) -> W_U[v]


class Frozen(NamedTuple):
    w_E: jax.Array        # (V, d) token embeddings
    p: jax.Array          # (T, d) absolute position embeddings
    W_V1: jax.Array       # (d, d)
    W_O1: jax.Array       # (d, d)
    W_V2: jax.Array       # (d, d)
    W_U: jax.Array        # (V, d) output (unembedding) matrix


def _linear(key: jax.Array, rows: int, cols: int) -> jax.Array:
    bound = 1.0 / math.sqrt(cols)
    return jax.random.uniform(key, (rows, cols), minval=-bound, maxval=bound)


def init(key: jax.Array, vocab: int, seq_len: int, d: int) -> tuple[Trained, Frozen]:
    """The trained and the frozen weights at initialisation."""
    k = jax.random.split(key, 9)
    trained = Trained(_linear(k[0], d, d), _linear(k[1], d, d), _linear(k[2], d, d))
    frozen = Frozen(jax.random.normal(k[3], (vocab, d)), jax.random.normal(k[4], (seq_len, d)),
                    _linear(k[5], d, d), _linear(k[6], d, d), _linear(k[7], d, d), _linear(k[8], vocab, d))
    return trained, frozen


def attention(z: jax.Array, W_K: jax.Array, W_OV: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One causal head with W_Q = I: (z + A z W_OV^T, A), A (T, T) the attention weights."""
    T, d = z.shape
    s = z @ (z @ W_K.T).T / math.sqrt(d)                                     # (T, T) s_ij = z_i . W_K z_j
    s = jnp.where(jnp.tril(jnp.ones((T, T), bool)), s, -jnp.inf)
    A = jax.nn.softmax(s, axis=-1)                                           # (T, T)
    return z + (A @ z) @ W_OV.T, A                                           # (T, d)


def forward(trained: Trained, frozen: Frozen, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(logits (T, V), layer-1 attention (T, T), layer-2 attention (T, T)) of one sequence x (T,)."""
    z0 = frozen.w_E[x] + frozen.p[: x.shape[0]]                              # (T, d)
    z1, A1 = attention(z0, trained.W_K1, frozen.W_O1 @ frozen.W_V1)
    z2, A2 = attention(z1, trained.W_K2, trained.W_O2 @ frozen.W_V2)
    return z2 @ frozen.W_U.T, A1, A2                                         # (T, V)


def _nll_sum(trained: Trained, frozen: Frozen, x: jax.Array, y: jax.Array, outs: jax.Array) -> jax.Array:
    """Sum of -log p(y_t) over the positions with outs >= 2 of sequences x, y, outs (b, T)."""
    logits = jax.vmap(lambda s: forward(trained, frozen, s)[0])(x)           # (b, T, V)
    logp = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(logp, y[..., None], axis=-1)[..., 0]          # (b, T)
    return jnp.sum(jnp.where(outs >= 2, nll, jnp.zeros_like(nll)))


def head_loss(trained: Trained, frozen: Frozen, x: jax.Array, y: jax.Array, outs: jax.Array,
              chunk: int | None = None) -> jax.Array:
    """Cross-entropy of y over the positions with outs >= 2 of a batch (x, y, outs (B, T)), averaged
    over those positions (the repository's loss_head_only). `chunk` evaluates the batch in
    sequential pieces of that many sequences (lax.map; the same loss, less memory traffic)."""
    count = jnp.maximum(jnp.sum(outs >= 2), 1)
    if chunk is None or chunk >= x.shape[0]:
        total = _nll_sum(trained, frozen, x, y, outs)
    else:
        pieces = [a.reshape((-1, chunk) + a.shape[1:]) for a in (x, y, outs)]     # (B / chunk, chunk, T)
        total = jnp.sum(jax.lax.map(lambda p: _nll_sum(trained, frozen, *p), pieces))
    return total / count.astype(total.dtype)


def _fraction(hit: jax.Array) -> jax.Array:
    return jnp.mean(hit.astype(jnp.result_type(float)))


def previous_token_scores(trained: Trained, frozen: Frozen) -> jax.Array:
    """s0[t-1, j] = p_t . (W_K^1 p_j) for queries t = 1..T-1 and keys j = 0..T-2 (T-1, T-1)."""
    p = frozen.p
    return p[1:] @ (p[:-1] @ trained.W_K1.T).T                               # (T-1, T-1)


def previous_token_hits(trained: Trained, frozen: Frozen) -> jax.Array:
    """Row t-1 is True where the unmasked argmax_j p_t . W_K^1 p_j is t - 1 (T-1,): the wk0 probe
    position by position (row r stores the memory p_(r+1) -> p_r)."""
    return _hits(previous_token_scores(trained, frozen))


def _hits(s0: jax.Array) -> jax.Array:
    """Rows of s0 (queries t = row + 1) whose argmax key is t - 1 (rows,)."""
    return jnp.argmax(s0, axis=1) == jnp.arange(s0.shape[0])


def probes(trained: Trained, frozen: Frozen, triggers: jax.Array) -> dict:
    """The three memory probes and the two wk0 diagnostics (module docstring): {"wk0", "wk1", "wo1",
    "wk0_64", "wk0_causal"} accuracies."""
    s0 = previous_token_scores(trained, frozen)                              # (T-1, T-1)
    rows = jnp.arange(s0.shape[0])
    wk0 = _fraction(_hits(s0))
    wk0_64 = _fraction(_hits(s0[:63, :63]))                                  # queries 1..63, keys 0..62
    seen = rows[None, :] <= rows[:, None] + 1                                # key j <= query t = row + 1
    wk0_causal = _fraction(_hits(jnp.where(seen, s0, -jnp.inf)))
    e = frozen.w_E[triggers]                                                 # (k, d)
    keys = e @ (trained.W_K2 @ frozen.W_O1 @ frozen.W_V1).T                  # (k, d)
    wk1 = _fraction(jnp.argmax(e @ keys.T, axis=1) == jnp.arange(triggers.shape[0]))
    out = frozen.w_E @ (frozen.W_U @ trained.W_O2 @ frozen.W_V2).T           # (V, V)
    wo1 = _fraction(jnp.argmax(out, axis=1) == jnp.arange(frozen.w_E.shape[0]))
    return {"wk0": wk0, "wk1": wk1, "wo1": wo1, "wk0_64": wk0_64, "wk0_causal": wk0_causal}
