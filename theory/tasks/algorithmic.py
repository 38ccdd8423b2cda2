"""Algorithmic sequence tasks of the Chomsky-hierarchy benchmark (Deletang et al. 2023, Ruoss et al. 2023).

Each task is a pure function `sample(key, n, N) -> Sample` of a PRNG key and a length n <= N (n may
be traced): the input x (N,) holds n symbols and zeros after them; the answer y (M,) with
M = out_len(N) holds the target classes and y_mask marks the slots that count (loss and accuracy).
One compiled shape serves every length 1..N: pad to the maximum and mask.

`layout` turns a sample into the model's token sequence (T,) = (N + M,):

    [x_1 .. x_n, EMPTY x m, PAD ...]      m = out_len(n) answer slots, EMPTY = n_symbols, PAD = n_symbols+1

An encoder (non-causal) reads answer j from slot n + j; a causal decoder reads it one slot earlier,
n - 1 + j (the usual next-token convention: the last input token predicts the first answer).

Tasks (level, input symbols -> classes, answer length):
    even_pairs          regular  2 -> 2  1      parity_check       regular  2 -> 2  1
    modular_arithmetic  regular  8 -> 5  1      cycle_navigation   regular  3 -> 5  1
    reverse_string      DCF      2 -> 2  n      stack_manipulation DCF      5 -> 3  n+1
    duplicate_string    CS       2 -> 2  2n     missing_duplicate  CS       4 -> 2  1
    bucket_sort         CS       5 -> 5  n      binary_addition    CS       3 -> 3  n+1
"""
from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from theory.errors import SandboxError


class Sample(NamedTuple):
    x: jax.Array       # (N,) int32 input symbols; slots >= n are 0 and ignored
    n: jax.Array       # () int32 input length actually used (modular_arithmetic makes it odd)
    y: jax.Array       # (M,) int32 answer classes; slots outside y_mask are 0
    y_mask: jax.Array  # (M,) bool answer slots that count


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    level: str                                  # regular | DCF | CS
    n_symbols: int                              # input alphabet 0..n_symbols-1
    n_classes: int                              # output alphabet
    out: str                                    # answer length: "1" | "n" | "2n" | "n+1"
    sampler: Callable[..., Sample]              # (key, n, N) -> Sample
    chance: float                               # accuracy of the best constant guess (uniform labels)

    def out_len(self, n):
        """Answer length for input length n (python int or traced)."""
        return {"1": n * 0 + 1, "n": n, "2n": 2 * n, "n+1": n + 1}[self.out]

    def sample(self, key: jax.Array, n, N: int) -> Sample:
        return self.sampler(key, jnp.asarray(n, jnp.int32), N)

    @property
    def vocab(self) -> int:
        """Model input vocabulary: symbols, EMPTY answer slot, PAD."""
        return self.n_symbols + 2


def _bits(key, N, n, high=2):
    """(N,) uniform symbols in {0..high-1} in slots < n, zeros after."""
    x = jax.random.randint(key, (N,), 0, high)
    return jnp.where(jnp.arange(N) < n, x, 0).astype(jnp.int32)


def _one(y) -> tuple[jax.Array, jax.Array]:
    return jnp.reshape(y, (1,)).astype(jnp.int32), jnp.ones((1,), bool)


def even_pairs(key, n, N) -> Sample:
    """Binary string; class 1 iff the number of 'ab' plus 'ba' pairs is even, i.e. x_1 == x_n.

    Example: a a b b a = 0 0 1 1 0 has pairs ab, ba (2, even) -> 1; first == last -> 1.
             a b b = 0 1 1 has one pair ab -> 0.
    """
    x = _bits(key, N, n)
    return Sample(x, n, *_one(x[0] == x[n - 1]))


def parity_check(key, n, N) -> Sample:
    """Binary string; class = number of b's (1s) mod 2.   Example: a b b a b = 0 1 1 0 1 -> 3 -> 1."""
    x = _bits(key, N, n)
    return Sample(x, n, *_one(jnp.sum(x) % 2))


def cycle_navigation(key, n, N) -> Sample:
    """Moves 0 = stay, 1 = +1, 2 = -1 on a 5-cycle from 0; class = final state.

    Example: 1 1 2 0 1 -> +1 +1 -1 +0 +1 = 2 -> 2;   2 2 -> -2 = 3 (mod 5) -> 3.
    """
    x = _bits(key, N, n, high=3)
    step = jnp.where(x == 1, 1, jnp.where(x == 2, -1, 0))           # slots >= n hold 0 = stay
    return Sample(x, n, *_one(jnp.sum(step) % 5))


PLUS, MINUS, TIMES = 5, 6, 7


def modular_arithmetic(key, n, N) -> Sample:
    """Expression n_1 op n_2 op ... (numbers 0..4, ops 5 '+', 6 '-', 7 '*', '*' binds first) mod 5.

    Even n is reduced to n - 1 (expressions have odd length). Example: 1 + 2 * 3 = 7 = 2 (mod 5):
    x = 1 5 2 7 3 -> 2;   1 - 1 - 1 = 4 (mod 5): x = 1 6 1 6 1 -> 4.
    """
    n = n - (1 - n % 2)
    k1, k2 = jax.random.split(key)
    nums = jax.random.randint(k1, (N,), 0, 5)
    ops = jax.random.randint(k2, (N,), PLUS, TIMES + 1)
    t = jnp.arange(N)
    x = jnp.where(t % 2 == 0, nums, ops)
    x = jnp.where(t < n, x, 0).astype(jnp.int32)

    def step(carry, i):       # i: index of an operator; x[i+1] its right operand
        total, term = carry
        op, num = x[i], x[i + 1]
        live = i + 1 < n
        new_total = jnp.where(op == TIMES, total, total + term)
        new_term = jnp.where(op == TIMES, term * num, jnp.where(op == PLUS, num, -num))
        return (jnp.where(live, new_total, total) % 5, jnp.where(live, new_term, term) % 5), None

    (total, term), _ = jax.lax.scan(step, (jnp.int32(0), x[0]), jnp.arange(1, N - 1, 2))
    return Sample(x, n, *_one((total + term) % 5))


def reverse_string(key, n, N) -> Sample:
    """Binary string -> the string reversed.   Example: 0 0 1 0 1 1 -> 1 1 0 1 0 0."""
    x = _bits(key, N, n)
    t = jnp.arange(N)
    y = jnp.where(t < n, x[jnp.clip(n - 1 - t, 0, N - 1)], 0)
    return Sample(x, n, y.astype(jnp.int32), t < n)


def duplicate_string(key, n, N) -> Sample:
    """Binary string w -> w w.   Example: 0 1 1 -> 0 1 1 0 1 1."""
    x = _bits(key, N, n)
    t = jnp.arange(2 * N)
    y = jnp.where(t < 2 * n, x[t % jnp.maximum(n, 1)], 0)
    return Sample(x, n, y.astype(jnp.int32), t < 2 * n)


def missing_duplicate(key, n, N) -> Sample:
    """w w (|w| = n // 2) with one symbol replaced by 2, plus a 3 if n is odd; class = that symbol.

    Example: 0 1 1 0 0 2 1 0 -> w = 0110, the hidden symbol is 1 -> 1;  1 0 1 1 2 1 3 -> 0.
    n = 1 (no room for w w): the input is the single symbol 1 and the class is 1.
    """
    k1, k2 = jax.random.split(key)
    half = n // 2
    w = jax.random.randint(k1, (N,), 0, 2)
    t = jnp.arange(N)
    ww = w[t % jnp.maximum(half, 1)]                                 # (N,)
    hole = jax.random.randint(k2, (), 0, jnp.maximum(2 * half, 1))
    y = ww[hole]
    x = jnp.where(t == hole, 2, ww)
    x = jnp.where(t < 2 * half, x, jnp.where(t < n, 3, 0))
    x = jnp.where(n == 1, jnp.where(t == 0, 1, 0), x)
    return Sample(x.astype(jnp.int32), n, *_one(jnp.where(n == 1, 1, y)))


def bucket_sort(key, n, N) -> Sample:
    """Symbols 0..4 -> the same symbols sorted.   Example: 3 0 4 0 1 -> 0 0 1 3 4."""
    x = _bits(key, N, n, high=5)
    t = jnp.arange(N)
    y = jnp.sort(jnp.where(t < n, x, 5))
    return Sample(x, n, jnp.where(t < n, y, 0).astype(jnp.int32), t < n)


POP, PUSH0, PUSH1, END = 2, 3, 4, 2


def stack_manipulation(key, n, N) -> Sample:
    """A stack (bottom to top, s ~ U{1..n-1} bits) then n - s actions 2 = POP, 3 = PUSH 0, 4 = PUSH 1.

    The answer is the final stack top to bottom, then the end symbol 2 (answer length n + 1; slots
    after the end symbol are 0 and do not count). POP on an empty stack does nothing.
    Example: 0 1 1 0 4 2 2 -> stack 0110, push 1: 01101, pop, pop: 011 -> 1 1 0 2 (then 0 0 0 0).
             1 1 0 2 2 2 -> the stack empties -> 2 (then zeros).
    """
    k1, k2, k3 = jax.random.split(key, 3)
    s = jax.random.randint(k1, (), 1, jnp.maximum(n, 2))           # stack length; n = 1: s = 1
    t = jnp.arange(N)
    bits = jax.random.randint(k2, (N,), 0, 2)
    acts = jax.random.randint(k3, (N,), POP, PUSH1 + 1)
    x = jnp.where(t < s, bits, jnp.where(t < n, acts, 0)).astype(jnp.int32)

    def step(carry, i):
        stack, h = carry
        sym = x[i]
        live = i < n
        push = live & ((i < s) | (sym == PUSH0) | (sym == PUSH1))
        val = jnp.where(i < s, sym, sym - PUSH0)
        pop = live & (i >= s) & (sym == POP) & (h > 0)
        stack = jnp.where(push, stack.at[h].set(val), stack)
        h = h + push.astype(jnp.int32) - pop.astype(jnp.int32)
        return (stack, h), None

    (stack, h), _ = jax.lax.scan(step, (jnp.zeros(N + 1, jnp.int32), jnp.int32(0)), jnp.arange(N))
    u = jnp.arange(N + 1)
    y = jnp.where(u < h, stack[jnp.clip(h - 1 - u, 0, N)], jnp.where(u == h, END, 0))
    return Sample(x, n, y.astype(jnp.int32), u <= h)


def binary_addition(key, n, N) -> Sample:
    """Two little-endian binary numbers a, 2 ('+'), b (|a| + |b| = n - 1) -> a + b little-endian.

    The sum is written without trailing (most-significant) zeros, then the end symbol 2; answer
    length n + 1. For n <= 2 the input is one number a (no '+') and the answer is a.
    Example: 0 0 1 2 0 1 1 0 1 = 4 + 22 -> 26 = 0 1 0 1 1 2;   1 1 2 1 = 3 + 1 -> 4 = 0 0 1 2.
    """
    k1, k2 = jax.random.split(key)
    t = jnp.arange(N)
    two = n >= 3
    n_a = jnp.where(two, jax.random.randint(k1, (), 1, jnp.maximum(n - 1, 2)), n)   # |a|
    n_b = jnp.where(two, n - 1 - n_a, 0)
    bits = jax.random.randint(k2, (N,), 0, 2)
    x = jnp.where(t < n_a, bits, jnp.where((t == n_a) & two, 2, jnp.where(t < n, bits, 0)))
    x = x.astype(jnp.int32)
    a = jnp.where(t < n_a, x, 0)                                      # (N,) a's bits, LSB first
    b = jnp.where(t < n_b, x[jnp.clip(n_a + 1 + t, 0, N - 1)], 0)     # (N,) b's bits

    def add(carry, ab):
        s = ab[0] + ab[1] + carry
        return s // 2, s % 2

    carry, digits = jax.lax.scan(add, jnp.int32(0), jnp.stack([a, b], axis=1))
    digits = jnp.concatenate([digits, carry[None]])                  # (N+1,)
    u = jnp.arange(N + 1)
    top = jnp.max(jnp.where(digits == 1, u, -1))                      # index of the highest 1
    y = jnp.where(u <= top, digits, jnp.where(u == top + 1, END, 0))
    return Sample(x, n, y.astype(jnp.int32), u <= top + 1)


TASKS: dict[str, Task] = {t.name: t for t in [
    Task("even_pairs", "regular", 2, 2, "1", even_pairs, 0.5),
    Task("parity_check", "regular", 2, 2, "1", parity_check, 0.5),
    Task("modular_arithmetic", "regular", 8, 5, "1", modular_arithmetic, 0.2),
    Task("cycle_navigation", "regular", 3, 5, "1", cycle_navigation, 0.2),
    Task("reverse_string", "DCF", 2, 2, "n", reverse_string, 0.5),
    Task("stack_manipulation", "DCF", 5, 3, "n+1", stack_manipulation, 1 / 3),
    Task("duplicate_string", "CS", 2, 2, "2n", duplicate_string, 0.5),
    Task("missing_duplicate_string", "CS", 4, 2, "1", missing_duplicate, 0.5),
    Task("bucket_sort", "CS", 5, 5, "n", bucket_sort, 0.2),
    Task("binary_addition", "CS", 3, 3, "n+1", binary_addition, 1 / 3),
]}


def get(name: str) -> Task:
    if name not in TASKS:
        raise SandboxError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    return TASKS[name]


class Layout(NamedTuple):
    tokens: jax.Array    # (T,) int32 input symbols, EMPTY answer slots, PAD
    pad_mask: jax.Array  # (T,) bool real tokens (inputs and answer slots)
    read: jax.Array      # (M,) int32 slot whose logits predict answer j
    n_tokens: jax.Array  # () int32 number of real tokens n + m


def seq_len(task: Task, N: int) -> int:
    """T = N + out_len(N): the padded sequence length for inputs up to N."""
    return N + int(task.out_len(N))


def layout(task: Task, s: Sample, N: int, causal: jax.Array | bool = False) -> Layout:
    """[x_1..x_n, EMPTY x m, PAD ...]; the encoder reads answer j at n + j, the decoder at n - 1 + j."""
    T, M = seq_len(task, N), int(task.out_len(N))
    m = task.out_len(s.n)
    t = jnp.arange(T)
    x_full = jnp.concatenate([s.x, jnp.zeros(T - N, jnp.int32)])    # (T,)
    tokens = jnp.where(t < s.n, x_full, jnp.where(t < s.n + m, task.n_symbols, task.n_symbols + 1))
    read = s.n + jnp.arange(M) - jnp.asarray(causal).astype(jnp.int32)   # (M,)
    return Layout(tokens.astype(jnp.int32), t < s.n + m, jnp.clip(read, 0, T - 1), s.n + m)
