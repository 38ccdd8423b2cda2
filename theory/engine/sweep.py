"""Sweeps: many independent runs as one vmapped, device-sharded computation.

    keys = Keys(seed).sub("lr_sweep").runs(n)        # run i gets fold_in(stream, i) (engine/keys.py)
    out  = sweep(run_fn, keys, lr=lrs)               # leaves (n, ...)

`run_fn(key, **values)` is one run; `values` are value hyperparameters (learning rate, init scale,
noise), one entry per run, traced, never shape-changing. Shape hyperparameters (width, depth,
length) belong in an outer Python loop, one compilation each.

The run axis is sharded over every available device with a 1-axis `NamedSharding` mesh ("runs");
the runs are independent, so XLA needs no collectives and the same code scales from one CPU to
many devices or hosts (`jax.distributed`). At most n devices are used for n runs; the axis is
padded to a multiple of the device count and the padding dropped from the output.
"""
from __future__ import annotations

import functools
import itertools
from typing import Any, Callable, Hashable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

PyTree = Any


def grid(**axes) -> dict[str, np.ndarray]:
    """Cartesian product of value axes, flattened: grid(lr=[1, 2], seed=[0, 1]) -> 4 runs each."""
    names = list(axes)
    combos = list(itertools.product(*(list(np.atleast_1d(axes[n])) for n in names)))
    return {n: np.asarray([c[i] for c in combos]) for i, n in enumerate(names)}


def _mesh(n_devices: int | None = None) -> jax.sharding.Mesh:
    devices = jax.devices()[: n_devices or len(jax.devices())]
    return jax.sharding.Mesh(np.asarray(devices), ("runs",))


def _spec(run_fn: Callable) -> Hashable:
    """A hashable identity of a run function by content: a functools.partial is keyed on its
    function and its (hashable) bound arguments, so a partial rebuilt with the same arguments in
    another call hits the same compiled sweep. Unhashable bound arguments give the partial itself
    (no reuse across calls, still correct)."""
    if isinstance(run_fn, functools.partial):
        try:
            spec = (_spec(run_fn.func), run_fn.args, tuple(sorted(run_fn.keywords.items())))
            hash(spec)
            return spec
        except TypeError:
            return run_fn
    return run_fn


_COMPILED: dict = {}
_MAX_CACHED = 64


def _compiled(run_fn: Callable, names: tuple[str, ...]) -> Callable:
    """The jitted, vmapped sweep of `run_fn`, one per (content of run_fn, value names)."""
    key = (_spec(run_fn), names)
    if key not in _COMPILED:
        if len(_COMPILED) >= _MAX_CACHED:          # bounded: drop the oldest entry
            _COMPILED.pop(next(iter(_COMPILED)))

        def batched(keys, run_ids, *vals):
            def one(k, i, *v):
                return run_fn(k, run_id=i, **dict(zip(names, v)))
            return jax.vmap(one)(keys, run_ids, *vals)
        _COMPILED[key] = jax.jit(batched)
    return _COMPILED[key]


def sweep(run_fn: Callable[..., PyTree], keys: jax.Array, *, shard: bool = True,
          n_devices: int | None = None, **values) -> PyTree:
    """vmap `run_fn(key, run_id=i, **values_i)` over runs, sharded over the devices.

    `run_fn` must accept a keyword `run_id` (a traced int, used for progress output). The jitted
    sweep is cached on the content of `run_fn` (a module-level function, or a functools.partial
    over hashable configs), so the same sweep built again compiles nothing (tests/test_engine.py).
    """
    n = keys.shape[0]
    vals = {k: jnp.broadcast_to(jnp.asarray(v), (n,) + jnp.shape(v)[1:]) if jnp.ndim(v) else
            jnp.full((n,), v) for k, v in values.items()}
    run_ids = jnp.arange(n)
    # never more devices than runs: padding 1 run to 8 devices would train 8 copies (7 wasted)
    mesh = _mesh(min(n_devices or len(jax.devices()), n)) if shard else None
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
