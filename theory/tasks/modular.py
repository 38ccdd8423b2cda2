"""Modular addition a + b mod p on every pair, and the train/test split drawn from a key.

The data set is all p^2 ordered pairs (a, b), a, b in 0..p-1, with label c = (a + b) mod p, in the
order pair index i = a p + b. A split puts round(frac p^2) pairs, chosen uniformly without
replacement by a permutation of the indices drawn from the key, in the training set and the rest
in the test set (Power et al. 2022; the authors' scripts shuffle with a fixed Python seed; here the
split belongs to the run's key).

Example (p = 3): a = [0 0 0 1 1 1 2 2 2], b = [0 1 2 0 1 2 0 1 2], c = [0 1 2 1 2 0 2 0 1].
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Pairs(NamedTuple):
    a: jax.Array    # (n,) int32 first operand
    b: jax.Array    # (n,) int32 second operand
    c: jax.Array    # (n,) int32 label (a + b) mod p


def all_pairs(p: int) -> Pairs:
    """Every pair (a, b) in 0..p-1 squared, index a p + b, with c = (a + b) mod p."""
    i = jnp.arange(p * p, dtype=jnp.int32)
    a, b = i // p, i % p
    return Pairs(a, b, (a + b) % p)


def n_train(p: int, frac: float) -> int:
    """Training pairs of a split at fraction `frac`: round(frac p^2), at least 1, at most p^2 - 1."""
    return min(max(int(round(frac * p * p)), 1), p * p - 1)


def split(key: jax.Array, p: int, frac: float) -> tuple[Pairs, Pairs]:
    """(train, test): a uniformly random n_train(p, frac) of the p^2 pairs, and the rest."""
    perm = jax.random.permutation(key, p * p)                     # (p^2,)
    n = n_train(p, frac)
    pairs = all_pairs(p)
    take = lambda idx: Pairs(*(x[idx] for x in pairs))
    return take(perm[:n]), take(perm[n:])
