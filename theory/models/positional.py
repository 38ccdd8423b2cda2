"""Positional encodings: none, sin/cos, learned, relative (Transformer-XL), RoPE, ALiBi, randomized.

Every encoding is a function of integer POSITIONS p (T,), so the randomized variant (Ruoss et al.
2023) is the same encoding evaluated at different positions:

    deterministic   p = (0, 1, ..., T-1)
    randomized      p = sorted uniform n-subset of {0, ..., L-1}   (L = `max_len`, default 2048)

and everything else (tables, rotations, biases) is shared. `positions(pe, key, n, T)` is the one
place position ids are made (per sequence or shared by a batch); other generators belong beside
it, e.g. the position-id generators of multi-digit addition, which give the digits of one
significance one id (`coupled_ids`, Cho et al. 2024; `abacus_ids`, McLeish et al. 2024). The three
ways an encoding enters a transformer (the hook `theory.models.transformer` calls):

    additive embedding   x_i <- x_i + PE(p_i)                    none | sin_cos | learned
    rotation of q, k     q_i <- R(p_i) q_i,  k_j <- R(p_j) k_j    rope      (score depends on p_i - p_j)
    score bias           s_ij <- s_ij + b_ij(q_i, p_i - p_j)     relative | alibi

sin/cos (Vaswani et al. 2017):  PE(p)_{2k} = sin(p w_k), PE(p)_{2k+1} = cos(p w_k),
                                w_k = max_time^{-2k/D}, max_time = 1e4.
Transformer-XL relative (Dai et al. 2019), per head:
        s_ij = q_i.k_j + (q_i + v).W_R r(p_i - p_j) + u.k_j,   r = the sin/cos vector of the offset.
    r(p_i - p_j) is never materialised as a (T, T, D) tensor: by sin(a-b) = sin a cos b - cos a sin b
    and cos(a-b) = cos a cos b + sin a sin b the term is a (T, D) x (T, D) product (exact identity,
    proofs/length_generalization.py). Offsets of both signs are computed from the positions
    themselves, with no offset table, so randomized positions up to L never index past a table.
RoPE (Su et al. 2021): pairs (2k, 2k+1) of q and k rotated by angle p w_k, w_k = max_time^{-2k/d_head}.
ALiBi (Press et al. 2022): b_ij = -m_h |p_i - p_j|, m_h = 2^{-8h/H}; for a non-causal encoder the
    left side gets +m_h/2 so that left and right neighbours differ (the paper's non-causal variant).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from theory.errors import SandboxError

KINDS = ("none", "sin_cos", "learned", "relative", "rope", "alibi")
PER = ("sequence", "batch")


@dataclasses.dataclass(frozen=True)
class PEConfig:
    kind: str = "sin_cos"        # one of KINDS
    randomized: bool = False     # positions = sorted random subset of {0..max_len-1} (train and test)
    max_len: int = 2048          # L: the range positions are drawn from (and the learned table size)
    per: str = "sequence"        # randomized positions drawn per "sequence" or once per "batch"
    max_time: float = 1e4        # sin/cos and RoPE base wavelength

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise SandboxError(f"unknown positional encoding {self.kind!r}; choose from {KINDS}")
        if self.per not in PER:
            raise SandboxError(f"per must be one of {PER}, got {self.per!r}")
        if self.max_len <= 0 or self.max_time <= 0:
            raise SandboxError(f"max_len and max_time must be positive, got {self.max_len}, {self.max_time}")
        if self.randomized and self.kind == "none":
            raise SandboxError("a randomized variant of 'none' does not exist (no positions are used)")

    @property
    def name(self) -> str:
        return ("randomized_" if self.randomized else "") + self.kind


# --- positions ----------------------------------------------------------------------------------
def sample_positions(key: jax.Array, n: jax.Array | int, T: int, L: int) -> jax.Array:
    """Sorted uniform n-subset of {0..L-1} in slots 0..n-1; slots n..T-1 get L, L+1, ... (padding).

    A uniform T-subset in uniformly random order is the top-T of L i.i.d. uniforms; by
    exchangeability its first n entries are a uniform n-subset, which is then sorted. n may be
    traced (one compiled shape for every length). E[p_k] = (k+1)(L+1)/(n+1) - 1 (k = 0..n-1).
    """
    if T > L:
        raise SandboxError(f"sequence length {T} exceeds the position range max_len={L}")
    _, idx = jax.lax.top_k(jax.random.uniform(key, (L,)), T)      # (T,) distinct, random order
    slot = jnp.arange(T)                                          # (T,)
    idx = jnp.where(slot < n, idx, L + slot)                      # (T,) padding sorts last
    return jnp.sort(idx).astype(jnp.int32)                        # (T,)


def positions(pe: PEConfig, key: jax.Array, n: jax.Array | int, T: int, batch: int | None = None,
              randomized: jax.Array | bool | None = None) -> jax.Array:
    """Position ids of sequences of n real tokens padded to T: THE randomized-position dispatch.

        deterministic   p = (0, 1, ..., T-1)
        randomized      p = sample_positions(key, n, T, pe.max_len): a sorted uniform n-subset of
                        {0..L-1}, then L, L+1, ... in the padding slots

    batch None: one sequence, (T,). batch B: (B, T); randomized positions are drawn per sequence
    (pe.per = "sequence": sequence b uses split(key, B)[b] and its own n[b]) or once for the whole
    batch (pe.per = "batch": one subset for length n[0], shared by every row).
    `randomized` (default pe.randomized) may be a traced bool, so that a deterministic and a
    randomized variant of one encoding run in one compiled sweep; both are then computed and one
    is selected per run.
    """
    randomized = pe.randomized if randomized is None else randomized
    static = isinstance(randomized, (bool, np.bool_))
    det = jnp.arange(T, dtype=jnp.int32)                          # (T,)
    if batch is not None:
        det = jnp.broadcast_to(det[None, :], (batch, T))          # (B, T)
    if static and not randomized:
        return det
    if batch is None:
        rnd = sample_positions(key, n, T, pe.max_len)             # (T,)
    elif pe.per == "batch":
        n0 = jnp.reshape(jnp.asarray(n, jnp.int32), (-1,))[0]     # () the step's one length
        rnd = jnp.broadcast_to(sample_positions(key, n0, T, pe.max_len)[None, :], (batch, T))
    else:
        n_b = jnp.broadcast_to(jnp.asarray(n, jnp.int32), (batch,))   # (B,)
        rnd = jax.vmap(lambda k, m: sample_positions(k, m, T, pe.max_len))(
            jax.random.split(key, batch), n_b)                    # (B, T)
    return rnd if static else jnp.where(randomized, rnd, det)


# --- position ids by digit significance (addition) -------------------------------------------------
def coupled_ids(sig: jax.Array, n: jax.Array | int, start: jax.Array | int) -> jax.Array:
    """Position coupling (Cho et al. 2024; HanseulJo/position-coupling src/data/addition.py): ids (T,).

    sig (T,) is each token's digit significance i (the digit of 10^i) in either operand or the
    answer, -1 for the separators + and =, and -2 for padding; n is the operand length after
    zero-padding and start the first id (U{1..max_pos - n - 1} in training, 1 at test). With
    end = start + n + 1:

        digit of significance i  ->  end - 1 - i        (start + n .. start: one id per significance)
        + and =                  ->  end
        padding                  ->  0

    e.g. 0 5 7 + 4 6 8 = 5 2 5 0 (057 + 468 = 0525, answer reversed; n = 3, start = 1, end = 5):
          2 3 4 5 2 3 4 5 4 3 2 1.
    """
    end = jnp.asarray(start, jnp.int32) + jnp.asarray(n, jnp.int32) + 1       # ()
    sig = jnp.asarray(sig, jnp.int32)                                         # (T,)
    return jnp.where(sig >= 0, end - 1 - sig, jnp.where(sig == -1, end, 0)).astype(jnp.int32)


def abacus_ids(index: jax.Array, offset: jax.Array | int) -> jax.Array:
    """Abacus positions (McLeish et al. 2024; mcleish7/arithmetic abacus.py): ids (T,).

    index (T,) is each digit's 1-based place within its run of digits (numbers written least
    significant digit first, so index = significance + 1) and 0 for every other token; one offset
    k ~ U{0..max_k} per batch in training (0 at test) is added to the digits' ids:

        digit at place j  ->  j + k;    other tokens  ->  0

    e.g. 7 5 + 8 6 4 = 5 2 5 (57 + 468 = 525 reversed), k = 0: 1 2 0 1 2 3 0 1 2 3.
    """
    index = jnp.asarray(index, jnp.int32)                                     # (T,)
    return jnp.where(index > 0, index + jnp.asarray(offset, jnp.int32), 0).astype(jnp.int32)


# --- additive embeddings ------------------------------------------------------------------------
def frequencies(D: int, max_time: float) -> jax.Array:
    """w_k = max_time^{-2k/D}, k = 0..D/2-1."""
    return max_time ** (-2.0 * jnp.arange(D // 2, dtype=jnp.float32) / D)   # (D/2,)


def sin_cos(p: jax.Array, D: int, max_time: float = 1e4) -> jax.Array:
    """PE(p)_{2k} = sin(p w_k), PE(p)_{2k+1} = cos(p w_k); p (T,) -> (T, D)."""
    if D % 2:
        raise SandboxError(f"sin/cos encodings need an even dimension, got {D}")
    angle = p.astype(jnp.float32)[:, None] * frequencies(D, max_time)[None, :]   # (T, D/2)
    return jnp.stack([jnp.sin(angle), jnp.cos(angle)], axis=-1).reshape(p.shape[0], D)  # (T, D)


def additive(pe: PEConfig, table: jax.Array, p: jax.Array, D: int) -> jax.Array:
    """The additive embedding PE(p) (T, D): sin/cos, a learned table row, or zeros."""
    if pe.kind == "sin_cos":
        return sin_cos(p, D, pe.max_time)
    if pe.kind == "learned":
        return jnp.take(table, p, axis=0, mode="clip")            # (T, D) padding slots clip
    return jnp.zeros((p.shape[0], D))


# --- rotations (RoPE) ---------------------------------------------------------------------------
def rope(x: jax.Array, p: jax.Array, max_time: float = 1e4) -> jax.Array:
    """Rotate pairs (2k, 2k+1) of x (H, T, d) by angle p_t w_k: <R(a)q, R(b)k> depends on b - a."""
    H, T, d = x.shape
    angle = p.astype(jnp.float32)[:, None] * frequencies(d, max_time)[None, :]   # (T, d/2)
    c, s = jnp.cos(angle)[None], jnp.sin(angle)[None]             # (1, T, d/2)
    x0, x1 = x[..., 0::2], x[..., 1::2]                           # (H, T, d/2)
    return jnp.stack([x0 * c - x1 * s, x0 * s + x1 * c], axis=-1).reshape(H, T, d)


# --- score biases -------------------------------------------------------------------------------
def alibi_slopes(H: int) -> jax.Array:
    """m_h = 2^{-8h/H}, h = 1..H."""
    return 2.0 ** (-8.0 * jnp.arange(1, H + 1, dtype=jnp.float32) / H)   # (H,)


def alibi_bias(p: jax.Array, H: int, causal: jax.Array | bool) -> jax.Array:
    """b_hij = -m_h |p_i - p_j| (+ m_h/2 for j < i when non-causal); (H, T, T)."""
    dist = jnp.abs(p[:, None] - p[None, :]).astype(jnp.float32)   # (T, T)
    left = (p[None, :] < p[:, None]).astype(jnp.float32)          # (T, T) j left of i
    not_causal = jnp.logical_not(jnp.asarray(causal)).astype(jnp.float32)
    m = alibi_slopes(H)[:, None, None]                            # (H, 1, 1)
    return -m * (dist[None] - 0.5 * not_causal * left[None])      # (H, T, T)


def relative_bias(q: jax.Array, k: jax.Array, p: jax.Array, W_R: jax.Array, u: jax.Array,
                  v: jax.Array, max_time: float = 1e4) -> jax.Array:
    """Transformer-XL terms (q_i + v).W_R r(p_i - p_j) + u.k_j, (H, T, T), without (T, T, D) tensors.

    q, k: (H, T, d); W_R: (H, D_r, d) maps the D_r-dim sin/cos offset vector r to a head; u, v: (H, d).
    With a_i = W_R (q_i + v) in R^{D_r} and angles theta_ik = p_i w_k:
        a_i . r(p_i - p_j) = sum_k c_jk (a_i,2k s_ik + a_i,2k+1 c_ik) + s_jk (a_i,2k+1 s_ik - a_i,2k c_ik).
    """
    D_r = W_R.shape[1]
    a = jnp.einsum("htd,hrd->htr", q + v[:, None, :], W_R)         # (H, T, D_r)
    angle = p.astype(jnp.float32)[:, None] * frequencies(D_r, max_time)[None, :]  # (T, D_r/2)
    c, s = jnp.cos(angle), jnp.sin(angle)                         # (T, D_r/2)
    a0, a1 = a[..., 0::2], a[..., 1::2]                           # (H, T, D_r/2)
    A = jnp.concatenate([a0 * s[None] + a1 * c[None], a1 * s[None] - a0 * c[None]], -1)  # (H, T, D_r)
    B = jnp.concatenate([c, s], axis=-1)                          # (T, D_r)
    position_term = jnp.einsum("hir,jr->hij", A, B)               # (H, T, T)
    content_term = jnp.einsum("hd,hjd->hj", u, k)[:, None, :]      # (H, 1, T)
    return position_term + content_term


def relative_bias_naive(q, k, p, W_R, u, v, max_time: float = 1e4):
    """Reference: materialise r(p_i - p_j) (T, T, D_r) and contract directly (tests only)."""
    D_r = W_R.shape[1]
    r = jax.vmap(lambda pi: sin_cos(pi - p, D_r, max_time))(p)     # (T, T, D_r)
    Wr = jnp.einsum("ijr,hrd->hijd", r, W_R)                       # (H, T, T, d)
    return (jnp.einsum("hid,hijd->hij", q + v[:, None, :], Wr)
            + jnp.einsum("hd,hjd->hj", u, k)[:, None, :])
