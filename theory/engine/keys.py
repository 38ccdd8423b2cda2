"""Named PRNG streams: every random draw of a run is addressed by a path of names, never an offset.

    keys = Keys(seed)                              # the root of one run
    k = keys.sub("depth", 2, "shared").key         # the stream "depth/2/shared"
    run_keys = keys.sub("one_layer").runs(3)       # (3, 2): run i is fold_in(stream, i)

A path component (a string or an int) is folded into the key as a stable 31-bit hash of its text,
`sha256("s:" + name)` for strings and `sha256("i:" + str(n))` for ints, so "2" and 2 differ and
the same path gives the same key on every machine and Python version (no `hash()` salt).
Two different paths collide only if two 31-bit hashes collide at some step, which
`tests/test_keys.py` rules out for every stream name the claims record in their results.

The root is `jax.random.PRNGKey(seed)` (threefry2x32): seeds must lie in [0, 2^31) so that
distinct seeds give distinct roots (JAX folds larger seeds modulo 2^32 in float32 mode).

Every `Keys` derived from one root shares a log of the paths whose `.key`, `.runs()`, `.data_key`
or `.data_runs()` was taken; the harness stores it in the result (`streams`), which is what the
collision test reads.

Data keys: the same streams, drawn faster (or by another generator) for synthetic data.

    k_eval = keys.sub("eval").data_key               # typed key: the stream "eval", fused threefry
    run_keys = keys.sub("train").runs(3)             # inside a jitted run: k_init, k = split(run_key)
    prompts = sample(data_key(k), ...)               # k's draws, bit for bit, ~3x faster on a CPU

`data_key(k, impl)` re-types a threefry key k (raw (2,) uint32 or typed) for drawing data:

  "threefry_fused" (default)  THE SAME NUMBERS as k: the same threefry2x32 hash and counter layout
                              as JAX's default (partitionable) threefry keys, split and fold_in
                              delegated to them; only the hash is written out round by round
                              (`threefry2x32`) and materialised once, so XLA fuses the 20 rounds
                              into one loop, where JAX's CPU lowering runs them as a rolled loop
                              of passes over memory.
  "rbg", "unsafe_rbg"         JAX's RngBitGenerator keys seeded from k (4 words drawn from k's
                              child "rbg"): ANOTHER generator, draws unrelated to k's.

Measured in one process, interleaved, on this repository's 2-core CPU (shared), one draw of 2048
prompts by `theory.tasks.linear_regression.sample_batch`, relative to a threefry key: uniform vO
prompts threefry_fused 3.0x faster, rbg 1.1x, unsafe_rbg 1.2x; Gaussian ZFB prompts 2.3x, 1.2x,
1.2x (XLA:CPU expands RngBitGenerator into 64-bit Philox arithmetic; on GPUs rbg is the usual
fast choice). With them (and flat draws in sample_batch) gd_equivalence's training steps run
2.7x-4.4x faster than with a threefry key and (B, N+1, d)-shaped draws, on the same numbers.

`Keys.data_key` / `Keys.data_runs(n)` are `data_key` of `.key` / of each of `.runs(n)`, logged under
the stream's own name.

What is stable. Threefry keys (`.key`, `.runs`, and "threefry_fused" data keys, which draw the same
bits): the same numbers for the same seed and path on every machine and backend, as long as JAX
keeps its threefry2x32 hash and partitionable counter layout (`jax_threefry_partitionable`, the
default since JAX 0.5; tests/test_keys.py compares the fused draws with JAX's own). How bits
become floats (uniform, normal) is JAX's and may change between versions. "rbg" / "unsafe_rbg"
draws depend on the backend and the XLA version: use them only for synthetic data whose exact
numbers do not matter, never for initialisation or a problem drawn from the seed.
"""
from __future__ import annotations

import hashlib
import math

import jax
import jax.extend.random as jex_random
import jax.numpy as jnp
import numpy as np

from theory.errors import SandboxError

MAX_SEED = 2 ** 31
DATA_IMPLS = ("threefry_fused", "rbg", "unsafe_rbg")
DEFAULT_DATA_IMPL = "threefry_fused"
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))      # Threefry-2x32 (Salmon et al. 2011)
_PARITY = 0x1BD11BDA                                 # key-schedule constant


def name_hash(component: str | int) -> int:
    """Stable 31-bit hash of one path component (strings and ints hash differently)."""
    if isinstance(component, bool) or not isinstance(component, (str, int, np.integer)):
        raise TypeError(f"a key path component is a str or an int, got {component!r}")
    text = f"s:{component}" if isinstance(component, str) else f"i:{int(component)}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFF_FFFF


def threefry2x32(k0: jax.Array, k1: jax.Array, x0: jax.Array, x1: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32 with 20 rounds (Salmon, Moraes, Dror & Shaw 2011, "Parallel random numbers: as
    easy as 1, 2, 3"): the counter pair (x0, x1) (uint32 arrays) hashed under the key (k0, k1).

    Key schedule ks = (k0, k1, k0 ^ k1 ^ 0x1BD11BDA); x += (ks0, ks1); then 5 groups of 4 rounds
    (x0 += x1; x1 = rotl(x1, r) ^ x0, rotations R[g mod 2]), group g followed by the injection
    x0 += ks[(g+1) mod 3], x1 += ks[(g+2) mod 3] + g + 1. Written out as array operations, so XLA
    fuses the whole hash into one elementwise loop."""
    ks = (k0, k1, k0 ^ k1 ^ np.uint32(_PARITY))
    x0, x1 = x0 + ks[0], x1 + ks[1]
    for g in range(5):
        for r in _ROTATIONS[g % 2]:
            x0 = x0 + x1
            x1 = ((x1 << np.uint32(r)) | (x1 >> np.uint32(32 - r))) ^ x0
        x0 = x0 + ks[(g + 1) % 3]
        x1 = x1 + ks[(g + 2) % 3] + np.uint32(g + 1)
    return x0, x1


def _fused_random_bits(key: jax.Array, bit_width: int, shape: tuple[int, ...]) -> jax.Array:
    """JAX's partitionable threefry bits for a (2,) key: entry i (flat index) hashes the counter
    (i // 2^32, i mod 2^32); 32-bit words are x0 ^ x1, 64-bit words x0 << 32 | x1, narrower words
    the low bits of x0 ^ x1."""
    size = math.prod(shape)
    if size >= 2 ** 32:
        raise ValueError(f"threefry_fused draws fewer than 2^32 values at once, got {size}")
    half = -(-size // 2)

    def chunk(c):
        lo = c * np.uint32(half) + jax.lax.iota(np.uint32, half)                   # (half,)
        x0, x1 = threefry2x32(key[0], key[1], jnp.zeros_like(lo), lo)
        if bit_width == 64:
            return jax.lax.shift_left(x0.astype(np.uint64), np.uint64(32)) | x1.astype(np.uint64)
        return (x0 ^ x1).astype(np.dtype(f"uint{bit_width}"))

    # two chunks in a loop: the loop materialises the draw once (fused into its consumers instead,
    # the ~100-operation hash would be recomputed for each use, e.g. each of a weight vector's N + 1)
    bits = jax.lax.map(chunk, jnp.arange(2, dtype=np.uint32)).reshape(-1)[:size]
    return bits.reshape(shape)


def _threefry(data: jax.Array) -> jax.Array:
    return jax.random.wrap_key_data(data, impl="threefry2x32")


THREEFRY_FUSED = jex_random.define_prng_impl(
    key_shape=(2,),
    seed=lambda seed: jax.random.key_data(jax.random.key(seed, impl="threefry2x32")),
    split=lambda key, shape: jax.random.key_data(jax.random.split(_threefry(key), shape)),
    random_bits=_fused_random_bits,
    fold_in=lambda key, data: jax.random.key_data(jax.random.fold_in(_threefry(key), data)),
    name="threefry_fused", tag="fryf")


def data_key(key: jax.Array, impl: str = DEFAULT_DATA_IMPL) -> jax.Array:
    """A threefry key (raw (2,) uint32 or typed) as a typed key for drawing synthetic data (module
    docstring): "threefry_fused" draws k's own numbers; "rbg" / "unsafe_rbg" another generator
    seeded from k's child "rbg". Traceable: use it inside a jitted run on its run key."""
    if impl not in DATA_IMPLS:
        raise SandboxError(f"unknown data-key implementation {impl!r}; choose from {DATA_IMPLS}")
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    if impl == "threefry_fused":
        return jax.random.wrap_key_data(key, impl=THREEFRY_FUSED)
    seed = jax.random.fold_in(key, np.uint32(name_hash("rbg")))                    # (2,) uint32
    return jax.random.wrap_key_data(jax.random.bits(seed, (4,), jnp.uint32), impl=impl)


class Keys:
    """A node of the named key tree of one seed."""

    def __init__(self, seed: int, path: tuple[str | int, ...] = (), _log: set | None = None):
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < MAX_SEED:
            raise SandboxError(f"seed must be an integer in [0, 2^31), got {seed!r}")
        self.seed = int(seed)
        self.path = tuple(path)
        self._log = set() if _log is None else _log

    def sub(self, *names: str | int) -> "Keys":
        """The child stream at `self.path + names`."""
        for n in names:
            name_hash(n)                      # type check now, not at first use
        return Keys(self.seed, self.path + names, self._log)

    @property
    def name(self) -> str:
        return "/".join(str(p) for p in self.path)

    @property
    def key(self) -> jax.Array:
        """The key of this stream: fold_in(... fold_in(PRNGKey(seed), h(p0)) ..., h(pk))."""
        self._log.add(self.name)
        k = jax.random.PRNGKey(self.seed)
        for p in self.path:
            k = jax.random.fold_in(k, np.uint32(name_hash(p)))
        return k

    def runs(self, n: int) -> jax.Array:
        """Keys of n independent runs of this stream, (n, 2): run i is fold_in(key, i).

        Run i's key does not depend on n, so adding seeds never changes the earlier ones."""
        if n <= 0:
            raise SandboxError(f"number of runs must be positive, got {n}")
        k = self.key
        return jax.vmap(lambda i: jax.random.fold_in(k, i))(jnp.arange(n, dtype=jnp.uint32))

    @property
    def data_key(self) -> jax.Array:
        """`data_key(self.key)`: this stream for drawing synthetic data (the same numbers, faster)."""
        return data_key(self.key)

    def data_runs(self, n: int, impl: str = DEFAULT_DATA_IMPL) -> jax.Array:
        """(n,) typed data keys: run i is `data_key(self.runs(n)[i], impl)`."""
        return jax.vmap(lambda k: data_key(k, impl))(self.runs(n))

    def streams(self) -> list[str]:
        """The sorted stream names drawn so far from this root (or any node of its tree)."""
        return sorted(self._log)

    def __repr__(self) -> str:
        return f"Keys(seed={self.seed}, path={self.name!r})"
