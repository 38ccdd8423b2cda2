"""Named PRNG streams: stable, distinct across names and seeds, never offsets of each other."""
from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theory.engine.keys import MAX_SEED, Keys, name_hash
from theory.errors import SandboxError

REPO = Path(__file__).resolve().parents[1]
N_SEEDS = 300
N_RUNS = 8


def _recorded_streams() -> list[str]:
    """Every stream name any committed result recorded (what the claims actually draw from)."""
    names = set()
    for path in sorted((REPO / "results").rglob("*.json")):
        r = json.loads(path.read_text())
        if isinstance(r, dict) and "streams" in r:
            names.update(r["streams"])
    return sorted(names)


def _path_of(name: str) -> tuple:
    """Invert Keys.name for the streams the claims use: numeric components were ints."""
    return tuple(int(p) if p.lstrip("-").isdigit() else p for p in name.split("/")) if name else ()


def _keys_for_all_seeds(path: tuple, seeds: jax.Array) -> np.ndarray:
    """Keys(s).sub(*path).key for every seed s, vectorised (checked against Keys below)."""
    hashes = [np.uint32(name_hash(p)) for p in path]

    def one(s):
        k = jax.random.PRNGKey(s)
        for h in hashes:
            k = jax.random.fold_in(k, h)
        return k
    return np.asarray(jax.vmap(one)(seeds))


def _runs_of(k: jax.Array) -> jax.Array:
    """Keys.runs(N_RUNS) of one stream key, (N_RUNS, 2)."""
    return jax.vmap(lambda i: jax.random.fold_in(k, i))(jnp.arange(N_RUNS, dtype=jnp.uint32))


def test_keys_are_stable_and_named():
    k = Keys(0).sub("depth", 2, "shared")
    assert k.name == "depth/2/shared"
    np.testing.assert_array_equal(k.key, Keys(0).sub("depth").sub(2).sub("shared").key)
    assert name_hash("2") != name_hash(2)
    # a pinned value: the derivation must not change silently across versions (results would move)
    digest = hashlib.sha256(b"s:train").digest()
    assert name_hash("train") == int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def test_runs_do_not_depend_on_count_and_differ():
    a, b = Keys(5).sub("x").runs(3), Keys(5).sub("x").runs(6)
    np.testing.assert_array_equal(a, b[:3])
    assert len({tuple(r) for r in np.asarray(b)}) == 6


@pytest.mark.parametrize("seed", [-1, MAX_SEED, 2 ** 32, 1.5, True, "0"])
def test_bad_seeds_are_refused(seed):
    with pytest.raises(SandboxError, match="seed"):
        Keys(seed)


def test_streams_are_logged_once_per_tree():
    root = Keys(1)
    _ = root.sub("a").key
    _ = root.sub("b", 3).runs(2)
    _ = root.sub("a").key
    assert root.streams() == ["a", "b/3"]


def test_every_claim_records_its_streams():
    for path in sorted((REPO / "results").glob("*.json")):
        r = json.loads(path.read_text())
        assert r.get("streams"), f"{path.name} records no key streams"


def test_no_two_seeds_or_streams_share_a_key():
    """For seeds 0..299, every stream the claims use and runs 0..7 of each: all keys distinct."""
    names = _recorded_streams()
    assert names, "no committed result records its streams"
    seeds = jnp.arange(N_SEEDS, dtype=jnp.uint32)
    seen: dict[tuple, str] = {}
    for name in names:
        path = _path_of(name)
        base = _keys_for_all_seeds(path, seeds)                       # (N_SEEDS, 2)
        np.testing.assert_array_equal(base[7], np.asarray(Keys(7).sub(*path).key))
        runs = np.asarray(jax.vmap(_runs_of)(jnp.asarray(base)))            # (N_SEEDS, N_RUNS, 2)
        np.testing.assert_array_equal(runs[7], np.asarray(Keys(7).sub(*path).runs(N_RUNS)))
        for s, i in itertools.product(range(N_SEEDS), range(-1, N_RUNS)):
            k = tuple(base[s]) if i < 0 else tuple(runs[s, i])
            where = f"seed {s} {name}" + ("" if i < 0 else f" run {i}")
            assert k not in seen, f"{where} shares its key with {seen[k]}"
            seen[k] = where
