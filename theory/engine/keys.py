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

Every `Keys` derived from one root shares a log of the paths whose `.key` or `.runs()` was
taken; the harness stores it in the result (`streams`), which is what the collision test reads.
"""
from __future__ import annotations

import hashlib

import jax
import jax.numpy as jnp
import numpy as np

from theory.errors import SandboxError

MAX_SEED = 2 ** 31


def name_hash(component: str | int) -> int:
    """Stable 31-bit hash of one path component (strings and ints hash differently)."""
    if isinstance(component, bool) or not isinstance(component, (str, int, np.integer)):
        raise TypeError(f"a key path component is a str or an int, got {component!r}")
    text = f"s:{component}" if isinstance(component, str) else f"i:{int(component)}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFF_FFFF


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

    def streams(self) -> list[str]:
        """The sorted stream names drawn so far from this root (or any node of its tree)."""
        return sorted(self._log)

    def __repr__(self) -> str:
        return f"Keys(seed={self.seed}, path={self.name!r})"
