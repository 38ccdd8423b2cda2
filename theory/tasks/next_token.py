"""Next-token prediction with distinct and common context tokens (Tian et al. 2023, Sec. 3.2).

A sequence class is a next token n with its query (last) token m = psi(n) and a conditional
distribution P(l|n) over contextual tokens. A sequence of class n is

    x_1 ... x_T   i.i.d. from P(.|n)      (contextual tokens; order irrelevant, no positions)
    m = psi(n)                            (the query, last input token)
    n                                     (the label, the next token)

Classes are uniform. A token l is *distinct* if exactly one class uses it (|Omega(l)| = 1) and
*common* if several do. As in the paper's code (`Dataset2`), every class uses all `n_common`
common tokens with weight `common_weight` and its own `n_distinct` distinct tokens with weights
linspace(distinct_min, distinct_max, n_distinct), then normalises. Query and next tokens get ids
of their own, so the output softmax has

    M = n_common + K n_distinct + n_queries + K,     K = n_queries * next_per_query classes.

Token ids: common [0, n_common); class k's distinct block n_common + k n_distinct + [0, n_distinct);
queries next; then the next tokens. Class k has query id  n_common + K n_distinct + k // next_per_query.

Worked example (n_queries=1, next_per_query=2, n_common=1, n_distinct=2, weights (1, 2)):
K = 2, M = 1 + 4 + 1 + 2 = 8. Class 0: P = (1, 1, 2, 0, 0, 0, 0, 0)/4 over ids 0..7, query 5,
next token 6; class 1: P = (1, 0, 0, 1, 2, 0, 0, 0)/4, query 5, next token 7. Token 0 is common,
tokens 1..4 distinct. A class-1 sequence with T = 3 might be x = (4, 0, 4), query 5, label 7.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theory.errors import SandboxError


@dataclasses.dataclass(frozen=True)
class NextTokenTask:
    n_queries: int = 1            # distinct query (last) tokens m
    next_per_query: int = 2       # |psi^{-1}(m)|: next tokens sharing one query (>= 2 to be interesting)
    n_common: int = 10            # common tokens, used by every class
    n_distinct: int = 10          # distinct tokens per class (next token)
    common_weight: float = 1.0    # unnormalised weight of each common token (0: orthogonal classes,
                                  # common ids stay in the vocabulary but never occur)
    distinct_min: float = 0.1     # unnormalised weights of the distinct tokens: linspace(min, max)
    distinct_max: float = 1.0

    def validate(self) -> None:
        for name in ("n_queries", "next_per_query", "n_distinct"):
            if getattr(self, name) <= 0:
                raise SandboxError(f"{name} must be positive, got {getattr(self, name)}")
        if self.n_common < 0:
            raise SandboxError(f"n_common must be non-negative, got {self.n_common}")
        if self.common_weight < 0 or self.distinct_min <= 0 or self.distinct_max < self.distinct_min:
            raise SandboxError("weights must be positive (common_weight >= 0) with distinct_min <= "
                               "distinct_max, got "
                               f"{self.common_weight}, {self.distinct_min}, {self.distinct_max}")

    @property
    def K(self) -> int:
        """Number of classes (next tokens)."""
        return self.n_queries * self.next_per_query

    @property
    def M(self) -> int:
        """Vocabulary = output-softmax size; counts the query and next-token ids."""
        return self.n_common + self.K * self.n_distinct + self.n_queries + self.K


class Classes(NamedTuple):
    P: jax.Array         # (K, M) P(l|n): row n is the context distribution of class n
    query: jax.Array     # (K,) int, m = psi(n)
    next: jax.Array      # (K,) int, the label n (its token id)
    distinct: jax.Array  # (K, M) bool, the distinct tokens of class n
    common: jax.Array    # (M,) bool, the common tokens


def distinct_ids(task: NextTokenTask) -> np.ndarray:
    """(K, n_distinct) token ids of each class's distinct tokens, in increasing P order."""
    start = task.n_common + task.n_distinct * np.arange(task.K)
    return start[:, None] + np.arange(task.n_distinct)[None, :]


def classes(task: NextTokenTask) -> Classes:
    """The class table: P(l|n), psi, labels and token types (in the current default float dtype)."""
    task.validate()
    K, M = task.K, task.M
    P = np.zeros((K, M))
    P[:, : task.n_common] = task.common_weight
    ids = distinct_ids(task)                                                   # (K, n_distinct)
    P[np.arange(K)[:, None], ids] = np.linspace(task.distinct_min, task.distinct_max, task.n_distinct)
    P = P / P.sum(axis=1, keepdims=True)                                       # (K, M)
    q0 = task.n_common + K * task.n_distinct
    query = q0 + np.arange(K) // task.next_per_query                           # (K,)
    nxt = q0 + task.n_queries + np.arange(K)                                   # (K,)
    distinct = np.zeros((K, M), dtype=bool)
    distinct[np.arange(K)[:, None], ids] = True
    common = np.zeros(M, dtype=bool)
    common[: task.n_common] = task.common_weight > 0
    fdt = jnp.result_type(float)
    return Classes(jnp.asarray(P, dtype=fdt), jnp.asarray(query), jnp.asarray(nxt),
                   jnp.asarray(distinct), jnp.asarray(common))


class Sequence(NamedTuple):
    context: jax.Array  # (T,) int, i.i.d. contextual tokens x_1..x_T
    query: jax.Array    # () int, m = psi(n)
    next: jax.Array     # () int, the label n
    label: jax.Array    # () int, the class index in [0, K)


def sample_sequence(key: jax.Array, cls: Classes, T: int) -> Sequence:
    """One sequence: a uniform class, T i.i.d. tokens from P(.|n), its query and next token."""
    kc, kx = jax.random.split(key)
    k = jax.random.randint(kc, (), 0, cls.P.shape[0])
    x = jax.random.choice(kx, cls.P.shape[1], (T,), replace=True, p=cls.P[k])   # (T,)
    return Sequence(x, cls.query[k], cls.next[k], k)


class Counts(NamedTuple):
    counts: jax.Array   # (M,) how often each token occurs among the T contextual tokens
    query: jax.Array    # () int
    next: jax.Array     # () int
    label: jax.Array    # () int class index


def sample_counts(key: jax.Array, cls: Classes, T: int) -> Counts:
    """The token counts of `sample_sequence(key, ...)` (the same draw, histogrammed).

    Without positional encoding the model sees a sequence only through its counts, so training
    on counts is training on the sequences. (Counts ~ Multinomial(T, P(.|n)); sampling the T
    tokens by inverse CDF and scatter-adding is cheaper than jax.random.multinomial here.)
    """
    return counts_of(sample_sequence(key, cls, T), cls.P.shape[1])


def counts_of(seq: Sequence, M: int) -> Counts:
    """Histogram of a sequence's contextual tokens."""
    counts = jnp.zeros(M, dtype=jnp.result_type(float)).at[seq.context].add(1.0)   # (M,)
    return Counts(counts, seq.query, seq.next, seq.label)
