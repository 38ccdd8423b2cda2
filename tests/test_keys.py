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

from theory.engine.keys import MAX_SEED, Keys, data_key, name_hash, threefry2x32
from theory.engine.precision import precision
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
    claim_results = [path for path in sorted((REPO / "results").glob("*.json"))
                     if "claim" in json.loads(path.read_text())]      # not e.g. results/reliability.json
    assert claim_results, "no committed claim result"
    for path in claim_results:
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


# --- data keys: synthetic data streams drawn faster (threefry_fused) or by rbg -------------------------
RBG_IMPLS = ("rbg", "unsafe_rbg")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(1,), (1001,), (7, 11, 13)])
def test_fused_data_key_draws_the_threefry_numbers(dtype, shape):
    """threefry_fused is the threefry stream itself: the same bits, uniforms, normals, splits and
    fold_ins as the threefry key, eagerly and under jit (only the hash's lowering differs)."""
    with precision(dtype):
        k = Keys(4).sub("train").key
        fk = Keys(4).sub("train").data_key
        for draw in (lambda key: jax.random.bits(key, shape), lambda key: jax.random.uniform(key, shape),
                     lambda key: jax.random.normal(key, shape), lambda key: jax.random.randint(key, shape, 0, 33),
                     lambda key: jax.random.uniform(jax.random.split(jax.random.fold_in(key, 9), 3)[1], shape)):
            np.testing.assert_array_equal(draw(fk), draw(k))
            np.testing.assert_array_equal(jax.jit(draw)(fk), jax.jit(draw)(k))


def test_threefry2x32_known_answer():
    """The Random123 known-answer vectors of Threefry-2x32-20 (and JAX's own hash on random input)."""
    import jax.extend.random as jex_random
    u32 = lambda v: jnp.asarray(v, jnp.uint32)          # noqa: E731
    for key, ctr, out in (((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
                          ((0xFFFFFFFF,) * 2, (0xFFFFFFFF,) * 2, (0x1CB996FC, 0xBB002BE7)),
                          ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0))):
        got = threefry2x32(u32(key[0]), u32(key[1]), u32(ctr[0]), u32(ctr[1]))
        assert tuple(int(g) for g in got) == out
    x = jax.random.bits(jax.random.PRNGKey(0), (2, 100), jnp.uint32)
    k = jax.random.PRNGKey(5)
    got = jnp.stack(threefry2x32(k[0], k[1], x[0], x[1]))
    np.testing.assert_array_equal(got.reshape(-1), jex_random.threefry_2x32(k, x.reshape(-1)))


@pytest.mark.parametrize("impl", ("threefry_fused",) + RBG_IMPLS)
def test_data_keys_repeat_per_seed_and_differ_across_seeds(impl):
    """Same seed and path -> the same numbers (inside and outside jit); another seed -> others."""
    def draw(seed):                      # 32-bit words: a chance repeat among 1000 has probability 2e-7
        return np.asarray(jax.random.bits(Keys(seed).sub("eval").data_runs(2, impl)[1], (1000,), jnp.uint32))
    a, b = draw(0), draw(0)
    np.testing.assert_array_equal(a, b)
    traced = jax.jit(lambda k: jax.random.uniform(data_key(k, impl), (1000,)))(Keys(0).sub("x").key)
    np.testing.assert_array_equal(traced, jax.random.uniform(data_key(Keys(0).sub("x").key, impl), (1000,)))
    for other in (draw(1), draw(2)):
        assert not np.any(a == other), "two seeds' data streams share draws"


def test_data_keys_are_logged_under_their_stream():
    root = Keys(3)
    _ = root.sub("eval").data_key
    _ = root.sub("fit").data_runs(2, "rbg")
    assert root.streams() == ["eval", "fit"]          # what the collision test above covers
    np.testing.assert_array_equal(jax.random.key_data(root.sub("fit").data_runs(3)), root.sub("fit").runs(3))


@pytest.mark.parametrize("impl", RBG_IMPLS)
def test_rbg_stream_shares_no_draws_with_its_threefry_stream(impl):
    """An rbg data stream never repeats the draws of the threefry stream it came from: no equal
    32-bit words at any position or at any offset up to 64 (a shifted copy); by chance, 2^16 x 129
    comparisons give a repeat with probability 0.2%. (Uniforms carry only 23 random bits, so they
    are compared as words.)"""
    k = Keys(0).sub("train").key
    n = 1 << 16
    a = np.asarray(jax.random.bits(k, (n,), jnp.uint32))
    b = np.asarray(jax.random.bits(data_key(k, impl), (n,), jnp.uint32))
    for shift in range(-64, 65):
        x, y = (a[shift:], b[:n - shift]) if shift >= 0 else (a[:n + shift], b[-shift:])
        assert not np.any(x == y), f"{impl}: equal draws at offset {shift}"


def test_unknown_data_impl_is_refused():
    with pytest.raises(SandboxError, match="data-key implementation"):
        data_key(Keys(0).key, "mersenne")
