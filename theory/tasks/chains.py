"""A chained modular sum with a scratchpad, and its computation graph (Dziri et al. 2023).

A chain of length k is a start digit a and input digits x_1..x_k; the scratchpad holds the partial
sums and then the answer:

    s_0 = a,   s_i = (s_{i-1} + x_i) mod 10   (i = 1..k),   y = s_k

so the computation graph has exactly k addition steps (and one copy, the answer). The model's
token sequence interleaves each input with the partial sum it produces,

    [a, x_1, S(s_1), x_2, S(s_2), .., x_k, S(s_k), EQ, S(y), PAD ...]      (T,) = (2K + 3,)

(digits 0..9 are inputs, S(d) = 10 + d a scratchpad digit, EQ = 20, PAD = 21): a causal decoder
predicts output j (j = 1..k: s_j; j = k + 1: y) at its read slot, the slot before it,

    read_j = 2j - 1 (the slot of x_j)  for j <= k,      read_{k+1} = 2k + 1 (the slot of EQ),

and output j is written at read_j + 1. Every step reads the same two neighbours (its input x_j
and the previous partial sum, one and two slots back) whatever k is, so a longer chain is more
steps of the same local computation and not a longer-range lookup (with all inputs first, step j
would read x_j k + 1 slots back, a distance that grows with k: a positional failure, not
compounding). One compiled shape serves every k <= K: pad to K and mask.

Example (K = 3, k = 2, a = 7, x = (5, 9, .)): s = (2, 1), y = 1;
    tokens = [7, 5, 12, 9, 11, 20, 11, 21, 21],  read = (1, 3, 5, 7),  out_mask = (1, 1, 1, 0).

The computation graph (as nouhadziri/faith-and-fate multiplication/graph_error_analysis.py
measures one): input nodes a, x_1..x_k; s_i has parents (s_{i-1}, x_i) (s_0 = a), operation add
mod 10; y has parent s_k, operation copy. size = |V| = 2k + 2; depth = the longest simple path from
an input node to any node, counted in nodes (a, s_1, .., s_k, y: k + 2); average parallelism =
|V| / depth. Error types of a predicted chain (the same file's compute_node_type): inputs are
correct; a node is `correct` if its parents are all correct and its value is right, `restored`
(their type3) if some parent is not correct but its value is right, `propagated` (type2) if it
is wrong but equals its operation applied to the predicted parents, else `local` (type1).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

BASE = 10                      # digits 0..9, sums mod 10
SUM = BASE                     # scratchpad digit d is token SUM + d
EQ = 2 * BASE                  # the answer marker
PAD = 2 * BASE + 1
VOCAB = 2 * BASE + 2
TYPES = ("correct", "local", "propagated", "restored")   # faith-and-fate: correct, type1, type2, type3


class Chain(NamedTuple):
    a: jax.Array       # () int32 start digit s_0
    x: jax.Array       # (K,) int32 input digits; slots >= k are drawn and ignored (prefix-consistent)
    s: jax.Array       # (K,) int32 partial sums s_1..s_K of the whole draw
    k: jax.Array       # () int32 chain length


class Layout(NamedTuple):
    tokens: jax.Array    # (T,) int32, T = 2K + 3
    pad_mask: jax.Array  # (T,) bool real tokens
    read: jax.Array      # (K + 1,) int32 the slot predicting output j (j = 1..K+1)
    out: jax.Array       # (K + 1,) int32 output j's digit (s_1..s_k, y, then 0)
    out_mask: jax.Array  # (K + 1,) bool outputs 1..k+1 count


def seq_len(K: int) -> int:
    return 2 * K + 3


def sample(key: jax.Array, k, K: int) -> Chain:
    """A chain of length k <= K (k may be traced): a, x_1..x_K uniform digits, s = partial sums.

    Prefix-consistent: the first k inputs of a draw do not depend on k or K >= k."""
    draws = jax.random.randint(key, (K + 1,), 0, BASE, dtype=jnp.int32)   # (K+1,) a, x_1..x_K
    s = (draws[0] + jnp.cumsum(draws[1:])) % BASE                          # (K,)
    return Chain(draws[0], draws[1:], s.astype(jnp.int32), jnp.asarray(k, jnp.int32))


def read_slots(k, K: int) -> jax.Array:
    """read_j = 2j - 1 for j <= k, 2k + 1 for j = k + 1 (and 2j - 1 beyond, never used); (K + 1,)."""
    j = jnp.arange(1, K + 2, dtype=jnp.int32)                             # (K+1,)
    return jnp.where(j == k + 1, 2 * k + 1, 2 * j - 1).astype(jnp.int32)


def layout(c: Chain, outputs: jax.Array | None = None) -> Layout:
    """The token sequence of chain c; `outputs` (K + 1,) replaces the scratchpad and answer digits
    written at read_j + 1 (free-running decoding writes the model's own), default the true ones."""
    K = c.x.shape[0]
    T, k = seq_len(K), c.k
    j = jnp.arange(1, K + 2)                                               # (K+1,)
    s_pad = jnp.concatenate([c.s, jnp.zeros((1,), jnp.int32)])            # (K+1,)
    true_out = jnp.where(j <= k, s_pad, jnp.where(j == k + 1, c.s[jnp.maximum(k - 1, 0)], 0))  # (K+1,)
    out = true_out if outputs is None else outputs.astype(jnp.int32)
    read = read_slots(k, K)                                                # (K+1,)
    t = jnp.arange(T)                                                      # (T,)
    tokens = jnp.full((T,), PAD, jnp.int32)
    tokens = tokens.at[0].set(c.a)
    tokens = jnp.where((t % 2 == 1) & (t < 2 * k), c.x[jnp.clip((t - 1) // 2, 0, K - 1)], tokens)
    tokens = jnp.where((t % 2 == 0) & (t >= 2) & (t <= 2 * k), SUM + out[jnp.clip(t // 2 - 1, 0, K)], tokens)
    tokens = jnp.where(t == 2 * k + 1, EQ, tokens)
    tokens = jnp.where(t == 2 * k + 2, SUM + out[jnp.clip(k, 0, K)], tokens)
    return Layout(tokens.astype(jnp.int32), t < 2 * k + 3, read, true_out, j <= k + 1)


# --- the computation graph ----------------------------------------------------------------------
class Graph(NamedTuple):
    nodes: tuple[str, ...]                         # topological order
    inputs: tuple[str, ...]
    parents: dict[str, tuple[str, ...]]
    operation: dict[str, str]                      # "add" (mod 10) | "copy"


def graph(k: int) -> Graph:
    """The computation graph of a chain of length k (module docstring)."""
    inputs = ("a",) + tuple(f"x{i}" for i in range(1, k + 1))
    parents = {f"s{i}": ("a" if i == 1 else f"s{i - 1}", f"x{i}") for i in range(1, k + 1)}
    parents["y"] = (f"s{k}",)
    operation = {n: "add" for n in parents} | {"y": "copy"}
    return Graph(inputs + tuple(f"s{i}" for i in range(1, k + 1)) + ("y",), inputs, parents, operation)


def depth(g: Graph) -> int:
    """The longest path from an input node to any node, counted in nodes (1 for an input alone):
    in a DAG listed in topological order, depth(v) = 1 + max over parents (inputs: 1)."""
    d: dict[str, int] = {}
    for v in g.nodes:
        d[v] = 1 if v in g.inputs else 1 + max(d[p] for p in g.parents[v])
    return max(d.values())


def metrics(k: int) -> dict:
    """size |V|, depth (nodes) and average parallelism |V| / depth of the chain of length k."""
    g = graph(k)
    size, dep = len(g.nodes), depth(g)
    return {"size": size, "depth": dep, "parallelism": size / dep}


def classify(a: np.ndarray, x: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """Error type of every output node of n predicted chains of length k (module docstring).

    a (n,), x (n, >= k) the inputs; pred (n, k + 1) the predicted s_1..s_k, y. Returns (n, k + 1)
    indices into TYPES, in the order of graph(k)'s output nodes."""
    a, x, pred = np.asarray(a), np.asarray(x)[:, :k], np.asarray(pred)[:, :k + 1]
    true = (a[:, None] + np.cumsum(x, axis=1)) % BASE                      # (n, k)
    true = np.concatenate([true, true[:, -1:]], axis=1)                    # (n, k+1) s_1..s_k, y
    labels = np.zeros(pred.shape, int)
    parent_ok, parent_val = np.ones(len(a), bool), a                       # s_0 = a: an input
    for j in range(k + 1):
        right = pred[:, j] == true[:, j]
        applied = (parent_val + x[:, j]) % BASE if j < k else parent_val   # the operation on the given parents
        labels[:, j] = np.where(parent_ok & right, 0, np.where(right, 3, np.where(pred[:, j] == applied, 2, 1)))
        parent_ok, parent_val = labels[:, j] == 0, pred[:, j]
    return labels
