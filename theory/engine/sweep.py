"""Sweeps: many independent runs as one vmapped, device-sharded computation.

    keys = run_keys(seed, n)                         # run i gets fold_in(PRNGKey(seed), i)
    out  = sweep(run_fn, keys, lr=lrs)               # leaves (n, ...)

`run_fn(key, **values)` is one run; `values` are value hyperparameters (learning rate, init scale,
noise), one entry per run, traced, never shape-changing. Shape hyperparameters (width, depth,
length) belong in an outer Python loop, one compilation each.

The run axis is sharded over every available device with a 1-axis `NamedSharding` mesh ("runs");
the runs are independent, so XLA needs no collectives and the same code scales from one CPU to
many devices or hosts (`jax.distributed`). The axis is padded to a multiple of the device count
and the padding dropped from the output.
"""
from __future__ import annotations

import functools
import itertools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

PyTree = Any


def run_keys(seed: int, n: int, start: int = 0) -> jax.Array:
    """Keys for runs start..start+n-1: run i gets fold_in(PRNGKey(seed), i), independent of n."""
    base = jax.random.PRNGKey(seed)
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(start, start + n))


def grid(**axes) -> dict[str, np.ndarray]:
    """Cartesian product of value axes, flattened: grid(lr=[1, 2], seed=[0, 1]) -> 4 runs each."""
    names = list(axes)
    combos = list(itertools.product(*(list(np.atleast_1d(axes[n])) for n in names)))
    return {n: np.asarray([c[i] for c in combos]) for i, n in enumerate(names)}


def _mesh(n_devices: int | None = None) -> jax.sharding.Mesh:
    devices = jax.devices()[: n_devices or len(jax.devices())]
    return jax.sharding.Mesh(np.asarray(devices), ("runs",))


@functools.lru_cache(maxsize=32)   # bounded: partials are new objects per call, don't pin them all
def _compiled(run_fn: Callable, names: tuple[str, ...]) -> Callable:
    def batched(keys, run_ids, *vals):
        def one(k, i, *v):
            return run_fn(k, run_id=i, **dict(zip(names, v)))
        return jax.vmap(one)(keys, run_ids, *vals)
    return jax.jit(batched)


def sweep(run_fn: Callable[..., PyTree], keys: jax.Array, *, shard: bool = True,
          n_devices: int | None = None, **values) -> PyTree:
    """vmap `run_fn(key, run_id=i, **values_i)` over runs, sharded over the devices.

    `run_fn` must accept a keyword `run_id` (a traced int, used for progress output) and be
    hashable (a module-level function or a functools.partial over hashable configs), since the
    jitted sweep is cached per function.
    """
    n = keys.shape[0]
    vals = {k: jnp.broadcast_to(jnp.asarray(v), (n,) + jnp.shape(v)[1:]) if jnp.ndim(v) else
            jnp.full((n,), v) for k, v in values.items()}
    run_ids = jnp.arange(n)
    mesh = _mesh(n_devices) if shard else None
    n_dev = mesh.devices.size if mesh is not None else 1
    pad = (-n) % n_dev
    args = [keys, run_ids, *vals.values()]
    if pad:
        args = [jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)]) for a in args]
    if mesh is not None and n_dev > 1:
        sharding = NamedSharding(mesh, PartitionSpec("runs"))
        args = [jax.device_put(a, sharding) for a in args]
    out = _compiled(run_fn, tuple(vals))(*args)
    return jax.tree_util.tree_map(lambda x: x[:n], out) if pad else out
