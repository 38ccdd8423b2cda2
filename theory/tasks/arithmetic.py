"""Character-level multi-digit addition a + b = c in six formats, each with its position ids.

Tokens: the digits 0..9 are ids 0..9, PLUS = 10, EQ = 11, PAD = 12, and hint h is HINT + h
(h = 0..n_hints-1). Operands (HanseulJo/position-coupling src/data/addition.py): the lengths la,
lb ~ U{lo..hi} independently; given its length l a number is uniform over the l-digit numbers
(0..9 for l = 1, leading digit 1..9 otherwise). With n = max(la, lb) the answer always has n + 1
digits, zero-padded (the repository's padded labels): a count fixed by the operands, so no end
token is needed, and exact match means every one of the n + 1 answer digits is right.

Formats, for 57 + 468 = 525 (n = 3; ids at test time):

    plain      5 7 + 4 6 8 = 0 5 2 5                    ids 0..T-1 (absolute)
    reversed   5 7 + 4 6 8 = 5 2 5 0                    answer least significant digit first (Lee et al. 2024)
    padded     0 5 7 + 4 6 8 = 5 2 5 0                  operands zero-padded to n, answer reversed
    hints      h2 0 h1 5 h0 7 + h2 4 h1 6 h0 8 = h0 5 h1 2 h2 5 h3 0
                                                        every digit after the hint of its significance
                                                        (Zhou et al. 2023's index hints), ids 0..T-1
    coupled    the padded tokens, ids 2 3 4 5 2 3 4 5 4 3 2 1: one id per significance, + and = the
               end id (Cho et al. 2024; positional.coupled_ids, start 1)
    abacus     7 5 + 8 6 4 = 5 2 5 0                    every number reversed (mcleish7/arithmetic's
               reverse_all), ids 1 2 0 1 2 3 0 1 2 3 4 (positional.abacus_ids, offset 0)

In training the shifts are random: the coupled start id ~ U{1..max_pos - n - 1} per sequence (the
repository's randint(1, max_position - max_len)), the hint offset o ~ U{0..n_hints - hi - 1} per
sequence (hint of significance i = h_(o+i)), and one Abacus offset k ~ U{0..max_offset} per batch
(abacus.py draws one k per forward call); at test they are 1, 0 and 0.

Layout for a causal decoder: the sequence is padded with PAD to T = seq_len(fmt, N) (3N + 3, or
6N + 4 with hints) for operands of up to N digits, one compiled shape for every length; answer
token k (k-th in sequence order, k = 0..n) is predicted at slot read_k = slot_k - 1 (the token
before it: = or the previous answer digit, its hint with hints), y_k is its digit, and y_mask
marks k <= n; the loss and exact match read only those slots.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from theory.errors import SandboxError
from theory.models import positional

FORMATS = ("plain", "reversed", "padded", "hints", "coupled", "abacus")
PLUS, EQ, PAD, HINT = 10, 11, 12, 13
N_CLASSES = 10                       # the answer digits
SEP, HINT_SIG, PAD_SIG = -1, -3, -2  # `sig` of + and =, of hint tokens, of padding


class Example(NamedTuple):
    tokens: jax.Array    # (T,) int32 token ids, PAD beyond the example
    pos: jax.Array       # (T,) int32 the format's position ids (0 in the padding of coupled/abacus)
    pad_mask: jax.Array  # (T,) bool real tokens
    read: jax.Array      # (M,) int32 slot that predicts answer token k (M = N + 1)
    y: jax.Array         # (M,) int32 answer digit k in sequence order (0 where masked)
    y_mask: jax.Array    # (M,) bool k <= n
    sig: jax.Array       # (T,) int32 digit significance; SEP, HINT_SIG, PAD_SIG for other tokens


def seq_len(fmt: str, N: int) -> int:
    """Tokens of the longest example with operands of up to N digits."""
    check_format(fmt)
    return 6 * N + 4 if fmt == "hints" else 3 * N + 3


def vocab(n_hints: int) -> int:
    """Input vocabulary: digits, +, =, PAD and n_hints hint tokens (every format shares it)."""
    return HINT + n_hints


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise SandboxError(f"unknown addition format {fmt!r}; choose from {FORMATS}")


def numbers(key: jax.Array, shape: tuple[int, ...], lo, hi, N: int) -> tuple[jax.Array, jax.Array]:
    """(digits shape + (N,), least significant first, zeros beyond the length; lengths shape): each
    length l ~ U{lo..hi}, then the number is uniform over the l-digit numbers."""
    k_len, k_dig, k_top = jax.random.split(key, 3)
    length = jax.random.randint(k_len, shape, lo, hi + 1)[..., None]       # shape + (1,)
    i = jnp.arange(N).reshape((1,) * len(shape) + (N,))                     # (1.., N)
    d = jax.random.randint(k_dig, shape + (N,), 0, 10)                      # shape + (N,)
    top = jax.random.randint(k_top, shape + (1,), 1, 10)                    # leading digit when l > 1
    d = jnp.where((i == length - 1) & (length > 1), top, d)
    return jnp.where(i < length, d, 0).astype(jnp.int32), length[..., 0].astype(jnp.int32)


def sum_digits(A: jax.Array, B: jax.Array) -> jax.Array:
    """The digits of a + b (N + 1,), least significant first: c_i = a_i + b_i + carry_i - 10 carry_(i+1),
    carry_(i+1) = [a_i + b_i + carry_i >= 10], carry_0 = 0, c_N = carry_N."""
    def step(carry, ab):
        s = ab[0] + ab[1] + carry                                           # ()
        out = (s >= 10).astype(jnp.int32)
        return out, s - 10 * out
    carry, c = jax.lax.scan(step, jnp.zeros((), jnp.int32), (A, B))         # (), (N,)
    return jnp.concatenate([c, carry[None]]).astype(jnp.int32)              # (N+1,)


def _entries(fmt: str, A, B, C, la, lb, hint_offset):
    """Every token of the example as parallel arrays (slot, token, sig, valid, answer index k):
    the operand digits i = 0..N-1 of a and b, the answer digits j = 0..N, + and =, and hints."""
    N = A.shape[0]
    n = jnp.maximum(la, lb)
    i, j = jnp.arange(N), jnp.arange(N + 1)                                 # (N,), (N+1,)
    one = jnp.ones((1,), jnp.int32)
    if fmt in ("plain", "reversed", "abacus"):                              # operands unpadded
        if fmt == "abacus":
            slot_a, slot_b = i, la + 1 + i                                  # reversed numbers
        else:
            slot_a, slot_b = la - 1 - i, la + lb - i                        # most significant first
        valid_a, valid_b, plus, eq = i < la, i < lb, la, la + lb + 1
        slot_c = eq + 1 + (n - j if fmt == "plain" else j)
        k_c = n - j if fmt == "plain" else j                                # answer index in sequence order
    elif fmt in ("padded", "coupled"):
        slot_a, slot_b, valid_a, valid_b, plus, eq = n - 1 - i, 2 * n - i, i < n, i < n, n, 2 * n + 1
        slot_c, k_c = eq + 1 + j, j
    else:                                                                   # hints: h_i before digit i
        slot_a, slot_b = 2 * (n - 1 - i) + 1, 2 * n + 1 + 2 * (n - 1 - i) + 1
        valid_a, valid_b, plus, eq = i < n, i < n, 2 * n, 4 * n + 1
        slot_c, k_c = 4 * n + 3 + 2 * j, j
    valid_c = j <= n
    slots = [slot_a, slot_b, plus * one, eq * one, slot_c]
    tokens = [A, B, PLUS * one, EQ * one, C]
    sigs = [i, i, SEP * one, SEP * one, j]
    valid = [valid_a, valid_b, one > 0, one > 0, valid_c]
    ks = [-one + 0 * i, -one + 0 * i, -one, -one, k_c]
    if fmt == "hints":                                                      # the hint before every digit
        for s, sg, v in ((slot_a, i, valid_a), (slot_b, i, valid_b), (slot_c, j, valid_c)):
            slots.append(s - 1)
            tokens.append(HINT + hint_offset + sg)
            sigs.append(HINT_SIG + 0 * sg)
            valid.append(v)
            ks.append(-1 + 0 * sg)
    cat = lambda xs: jnp.concatenate([jnp.broadcast_to(x, jnp.shape(x)).astype(jnp.int32) for x in xs])  # noqa: E731
    return cat(slots), cat(tokens), cat(sigs), jnp.concatenate(valid), cat(ks)


def layout(fmt: str, A: jax.Array, B: jax.Array, la, lb, shift=0) -> Example:
    """The example a + b in format `fmt` (static), padded to T = seq_len(fmt, N), N = A.shape[0].

    `shift` is the coupled start id (coupled; >= 1), the hint offset (hints) or the Abacus offset
    (abacus); the other formats ignore it."""
    check_format(fmt)
    N = A.shape[0]
    T, M = seq_len(fmt, N), N + 1
    C = sum_digits(A, B)                                                    # (N+1,)
    n = jnp.maximum(la, lb)
    slot, tok, sig, valid, k = _entries(fmt, A, B, C, la, lb, shift)
    # scatter by one-hot products: one nonzero term per slot, so the float32 products are exact
    # integers (|values| < 2^24); cheaper to compile and run than scatters
    at = (jnp.where(valid, slot, T)[:, None] == jnp.arange(T)[None, :]).astype(jnp.float32)   # (K, T)
    ans = (jnp.where(valid & (k >= 0), k, M)[:, None] == jnp.arange(M)[None, :]).astype(jnp.float32)  # (K, M)
    put = lambda v, onehot: jnp.round(v.astype(jnp.float32) @ onehot).astype(jnp.int32)   # noqa: E731
    pad_mask = jnp.sum(at, axis=0) > 0                                      # (T,)
    tokens = jnp.where(pad_mask, put(tok, at), PAD)                         # (T,)
    sig_t = jnp.where(pad_mask, put(sig, at), PAD_SIG)                      # (T,)
    read = put(slot - 1, ans)                                               # (M,)
    y = put(tok, ans)                                                       # (M,)
    y_mask = jnp.arange(M) <= n                                             # (M,)
    if fmt == "coupled":
        pos = positional.coupled_ids(sig_t, n, shift)
    elif fmt == "abacus":
        pos = positional.abacus_ids(jnp.where(sig_t >= 0, sig_t + 1, 0), shift)
    else:
        pos = jnp.arange(T, dtype=jnp.int32)
    return Example(tokens, pos, pad_mask, read, y, y_mask, sig_t)


def draw_shift(key: jax.Array, fmt: str, n: jax.Array, *, hi: int, max_pos: int, n_hints: int,
               max_offset: int) -> jax.Array:
    """The training shifts (n.shape) of sequences with operand length n: the coupled start ids
    U{1..max_pos - n - 1}, the hint offsets U{0..n_hints - hi - 1} or Abacus offsets U{0..max_offset}."""
    if fmt == "coupled":
        return jax.random.randint(key, n.shape, 1, max_pos - n)
    if fmt == "hints":
        return jax.random.randint(key, n.shape, 0, n_hints - hi)
    if fmt == "abacus":
        return jax.random.randint(key, n.shape, 0, max_offset + 1)
    return jnp.zeros(n.shape, jnp.int32)


def batch(key: jax.Array, fmt: str, size: int, lo, hi: int, N: int, *, train: bool, max_pos: int,
          n_hints: int, max_offset: int) -> Example:
    """`size` examples (leaves (size, ...)) with operand lengths in lo..hi (lo may be traced), padded
    for N digits. In training the shifts are drawn: coupled starts and hint offsets per sequence,
    one Abacus offset for the whole batch; at test they are 1 (coupled) and 0."""
    check_format(fmt)
    k_num, k_shift = jax.random.split(key)
    AB, L = numbers(k_num, (size, 2), lo, hi, N)                           # (size, 2, N), (size, 2)
    n = jnp.max(L, axis=1)                                                  # (size,)
    if not train:
        shift = jnp.full((size,), 1 if fmt == "coupled" else 0, jnp.int32)
    elif fmt == "abacus":                                                   # one offset per batch
        shift = jnp.broadcast_to(draw_shift(k_shift, fmt, n[:1], hi=hi, max_pos=max_pos, n_hints=n_hints,
                                            max_offset=max_offset), (size,))
    else:
        shift = draw_shift(k_shift, fmt, n, hi=hi, max_pos=max_pos, n_hints=n_hints, max_offset=max_offset)
    return jax.vmap(lambda ab, l, s: layout(fmt, ab[0], ab[1], l[0], l[1], s))(AB, L, shift)
