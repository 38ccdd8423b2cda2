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

import contextvars
import functools
import itertools
import os
import sys
import threading
import time
from typing import Any, Callable, Hashable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from theory.engine import checkpoint, interrupt
from theory.engine import train as engine
from theory.engine.precision import current as current_precision
from theory.engine.precision import precision
from theory.errors import SandboxError

PyTree = Any


def grid(**axes) -> dict[str, np.ndarray]:
    """Cartesian product of value axes, flattened: grid(lr=[1, 2], seed=[0, 1]) -> 4 runs each."""
    names = list(axes)
    combos = list(itertools.product(*(list(np.atleast_1d(axes[n])) for n in names)))
    return {n: np.asarray([c[i] for c in combos]) for i, n in enumerate(names)}


def _mesh(n_devices: int | None = None) -> jax.sharding.Mesh:
    devices = jax.devices()[: n_devices or len(jax.devices())]
    return jax.sharding.Mesh(np.asarray(devices), ("runs",))


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask), at least 1."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_devices() -> int:
    """How many devices a sweep shards over unless told: all of them, except that in a single CPU
    process no more than the cores it may use (host "devices" forced by XLA_FLAGS beyond the core
    count only add padding and scheduling: gd_equivalence's bench row measures ~0.8x on 8 host
    devices over 2 cores)."""
    n = len(jax.devices())
    if jax.process_count() == 1 and jax.default_backend() == "cpu":
        n = min(n, usable_cores())
    return n


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
_COMPILED_LOCK = threading.Lock()      # sweeps may be built from several threads (`at_once`)
_MAX_CACHED = 64
SEGMENT_SECONDS = 2.0      # target wall time of one training segment (Ctrl-C latency, progress)


def checkpoint_seconds() -> float:
    """Seconds between checkpoints of a training sweep ($SANDBOX_CHECKPOINT_SECONDS, default 30)."""
    try:
        return max(float(os.environ.get("SANDBOX_CHECKPOINT_SECONDS", "30")), 0.0)
    except ValueError:
        return 30.0


def _map_runs(fn: Callable, args: tuple, batch_size: int | None):
    """fn over the leading (run) axis of `args`: one vmap, or `lax.map` in chunks of `batch_size`
    runs (vmapped within a chunk, sequential across chunks) when memory is short."""
    if batch_size is None:
        return jax.vmap(fn)(*args)
    # chunked by hand, not lax.map(batch_size=): that divides by zero on zero-size output leaves
    n = jax.tree.leaves(args)[0].shape[0]
    q, r = divmod(n, batch_size)
    head = jax.tree.map(lambda x: x[:q * batch_size].reshape(q, batch_size, *x.shape[1:]), args)
    out = jax.lax.map(lambda a: jax.vmap(fn)(*a), head)            # leaves (q, batch_size, ...)
    out = jax.tree.map(lambda x: x.reshape(q * batch_size, *x.shape[2:]), out)
    if r == 0:
        return out
    tail = jax.vmap(fn)(*jax.tree.map(lambda x: x[q * batch_size:], args))  # leaves (r, ...)
    return jax.tree.map(lambda a, b: jnp.concatenate([a, b]), out, tail)


class _Programs:
    """The jitted programs of one sweep spec: `oneshot` (the whole run at once) and the segment
    programs `init` (state at step 0), `advance` (steps [start, stop)) and `finish` (the run
    function's output from the final state). See theory/engine/train.py (`Segment`)."""

    def __init__(self, run_fn: Callable, names: tuple[str, ...], batch_size: int | None,
                 shared_names: tuple[str, ...] = ()):
        self.meta: dict = {}      # abstract input signature -> (segmentable, steps, progress label)
        self._lock = threading.Lock()  # `describe` records what one trace saw in self._seen
        n_vals = len(names)

        def kwargs(v, sh):        # per-run values (vmapped) and shared values (one for every run)
            return {**dict(zip(names, v)), **dict(zip(shared_names, sh))}

        def call(mode, k, i, state, start, stop, v, sh):
            seg = engine.Segment(mode, state, start, stop)
            with engine.segment(seg):
                try:
                    out = run_fn(k, run_id=i, **kwargs(v, sh))
                except engine.SegmentDone:
                    out = None
            return seg, out

        def oneshot(keys, run_ids, *rest):
            vals, sh = rest[:n_vals], rest[n_vals:]
            return _map_runs(lambda k, i, *v: run_fn(k, run_id=i, **kwargs(v, sh)),
                             (keys, run_ids, *vals), batch_size)

        def init(keys, run_ids, *rest):
            vals, sh = rest[:n_vals], rest[n_vals:]

            def one(k, i, *v):
                seg, _ = call("init", k, i, None, None, None, v, sh)
                self._seen = (seg.calls, seg.steps, seg.progress)
                return seg.out
            return _map_runs(one, (keys, run_ids, *vals), batch_size)

        def advance(state, start, stop, keys, run_ids, *rest):
            vals, sh = rest[:n_vals], rest[n_vals:]

            def one(st, k, i, *v):
                return call("advance", k, i, st, start, stop, v, sh)[0].out
            return _map_runs(one, (state, keys, run_ids, *vals), batch_size)

        def finish(state, keys, run_ids, *rest):
            vals, sh = rest[:n_vals], rest[n_vals:]

            def one(st, k, i, *v):
                return call("finish", k, i, st, None, None, v, sh)[1]
            return _map_runs(one, (state, keys, run_ids, *vals), batch_size)

        self.oneshot, self.init, self.finish = jax.jit(oneshot), jax.jit(init), jax.jit(finish)
        self.advance = jax.jit(advance, donate_argnums=0)

    def describe(self, args: list) -> tuple[bool, int | None, str | None]:
        """(segmentable, steps, progress) of the run function for inputs shaped like `args`:
        segmentable when it calls `train` exactly once (traced abstractly, nothing is compiled)."""
        sig = tuple((a.shape, str(a.dtype)) for a in args) + (jax.config.jax_enable_x64,)
        with self._lock:
            if sig not in self.meta:
                self._seen = (0, None, None)
                jax.eval_shape(self.init, *args)
                calls, steps, progress = self._seen
                self.meta[sig] = (calls == 1, steps, progress)
            return self.meta[sig]


def _programs(run_fn: Callable, names: tuple[str, ...], batch_size: int | None,
              shared_names: tuple[str, ...] = ()) -> _Programs:
    """The sweep programs of `run_fn`, one set per (content of run_fn, value names, batch size,
    shared names)."""
    key = (_spec(run_fn), names, batch_size, shared_names)
    with _COMPILED_LOCK:
        if key not in _COMPILED:
            if len(_COMPILED) >= _MAX_CACHED:          # bounded: drop the oldest entry
                _COMPILED.pop(next(iter(_COMPILED)))
            _COMPILED[key] = _Programs(run_fn, names, batch_size, shared_names)
        return _COMPILED[key]


def sweep(run_fn: Callable[..., PyTree], keys: jax.Array, *, shard: bool = True,
          n_devices: int | None = None, batch_size: int | None = None, shared: dict | None = None,
          **values) -> PyTree:
    """vmap `run_fn(key, run_id=i, **values_i, **shared)` over runs, sharded over the devices.

    `values` are per run (a scalar is broadcast to every run; each is vmapped), `shared` are arrays
    given unbatched to every run: traced inputs of the one program (a new value compiles nothing),
    where vmapped values would not do, e.g. the index of a `lax.switch` that must stay one branch
    for every run (experiments/length_generalization/runs.py, the shared step lengths).

    `run_fn` must accept a keyword `run_id` (a traced int, used for progress output). The jitted
    programs are cached on the content of `run_fn` (a module-level function, or a functools.partial
    over hashable configs), so the same sweep built again compiles nothing (tests/test_engine.py).

    A run function that calls `theory.engine.train.train` once is run in training segments of
    about `SEGMENT_SECONDS` each (the same compiled step loop; see `_train_in_segments`): Ctrl-C is
    honoured between segments and, inside a checkpoint session (`theory.engine.checkpoint`), the
    state is saved every `checkpoint_seconds()` and restored by a rerun. Any other run function is
    one program.

    `batch_size` runs the sweep in sequential chunks of that many vmapped runs (`lax.map`), for
    sweeps whose runs do not fit in memory at once; the numbers equal the unchunked sweep's.
    In a multi-process job (`jax.distributed.initialize()` before the first JAX call) the run axis
    is sharded over the devices of every process and each process gets the whole output.
    """
    n = keys.shape[0]
    if batch_size is not None and batch_size <= 0:
        raise SandboxError(f"batch_size must be positive, got {batch_size}")
    vals = {k: jnp.broadcast_to(jnp.asarray(v), (n,) + jnp.shape(v)[1:]) if jnp.ndim(v) else
            jnp.full((n,), v) for k, v in values.items()}
    run_ids = jnp.arange(n)
    # never more devices than runs: padding 1 run to 8 devices would train 8 copies (7 wasted)
    mesh = _mesh(min(n_devices or default_devices(), n)) if shard else None
    n_dev = mesh.devices.size if mesh is not None else 1
    pad = (-n) % n_dev
    args = [keys, run_ids, *vals.values()]
    if pad:
        args = [jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)]) for a in args]
    sharding = NamedSharding(mesh, PartitionSpec("runs")) if mesh is not None and n_dev > 1 else None
    if sharding is not None:
        args = [_put(a, sharding) for a in args]
    shared = shared or {}
    common = [jnp.asarray(v) for v in shared.values()]
    if sharding is not None:
        common = [_put(a, NamedSharding(mesh, PartitionSpec())) for a in common]   # replicated
    args = args + common
    progs = _programs(run_fn, tuple(vals), batch_size, tuple(shared))
    segmentable, steps, label = progs.describe(args)
    if segmentable:
        out = _train_in_segments(progs, args, steps, label, sharding)
    else:
        out = progs.oneshot(*args)
    out = _gather(out)
    return jax.tree_util.tree_map(lambda x: x[:n], out) if pad else out


def threads_available() -> int:
    """Host threads `at_once` uses unless told: $SANDBOX_THREADS if set (1 runs the calls in turn),
    else the cores this process may use in a single-process CPU run, else 1 (an accelerator, or a
    multi-process job, already has its parallelism)."""
    env = os.environ.get("SANDBOX_THREADS", "").strip()
    if env:
        try:
            return max(int(env), 1)
        except ValueError:
            raise SandboxError(f"SANDBOX_THREADS must be a positive integer, got {env!r}") from None
    if jax.process_count() == 1 and jax.default_backend() == "cpu":
        return usable_cores()
    return 1


def at_once(calls: Sequence[Callable[[], PyTree]], threads: int | None = None) -> list[PyTree]:
    """[call() for call in calls], up to `threads` of them at the same time on host threads.

    For independent sweeps of one claim (e.g. the chunks of a run axis): on a CPU a small model's
    step keeps about one core busy (ARCHITECTURE.md, "Using both cores"), and a second program
    running at the same time uses another. Each call runs the same compiled programs on the same
    inputs as in turn, so the outputs are the same numbers. Each thread runs in a copy of the
    caller's context (its checkpoint session) and precision scope (`jax.enable_x64` is per
    thread); inside a checkpoint session the group reserves one sweep number and call i's sweeps
    get slots named by (number, i, j), so a rerun finds them whatever order the threads ran in.
    A signal is honoured by every thread at its next segment boundary (each saves its state);
    the first exception in call order is raised once every thread has stopped."""
    n = threads_available() if threads is None else threads
    if n <= 1 or len(calls) <= 1:
        return [call() for call in calls]
    session = checkpoint.current()
    base = session.reserve() if session is not None else None
    prec = current_precision()
    outs: list = [None] * len(calls)
    errors: list = [None] * len(calls)
    pending = list(range(len(calls)))
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if not pending or any(e is not None for e in errors):
                    return
                i = pending.pop(0)
            try:
                with precision(prec), checkpoint.threads_of(base, i):
                    outs[i] = calls[i]()
            except BaseException as e:          # noqa: BLE001 (re-raised in the caller's thread)
                errors[i] = e

    threads_ = [threading.Thread(target=contextvars.copy_context().run, args=(worker,), daemon=True)
                for _ in range(min(n, len(calls)))]
    for t in threads_:
        t.start()
    for t in threads_:
        while t.is_alive():                     # short joins: the main thread keeps taking signals
            t.join(timeout=0.2)
    for e in errors:
        if e is not None:
            raise e
    return outs


def _put(a, sharding: NamedSharding):
    """Place a host-replicated array on `sharding`; across processes, each process supplies its
    own devices' shards (every process holds the same full input)."""
    if jax.process_count() == 1:
        return jax.device_put(a, sharding)
    host = np.asarray(a)
    return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])


def _gather(out: PyTree) -> PyTree:
    """The whole output on this process (a no-op in a single process)."""
    if jax.process_count() == 1:
        return out
    from jax.experimental import multihost_utils
    return multihost_utils.process_allgather(out, tiled=True)


def _train_in_segments(progs: _Programs, args: list, steps: int, label: str | None,
                       sharding: NamedSharding | None) -> PyTree:
    """Run the sweep's training loop in segments [k, k + s) with s adapted so that a segment takes
    about SEGMENT_SECONDS, then its output. Between segments: honour an interrupt (saving the
    state first), save a checkpoint when due, print progress. Resumes from the session's slot."""
    session = checkpoint.current() if jax.process_count() == 1 else None
    state = progs.init(*args)
    slot = session.next_slot(checkpoint.digest(args)) if session is not None else None
    k = 0
    if slot is not None and (restored := slot.load(state)) is not None:
        leaves, k = restored
        treedef = jax.tree_util.tree_structure(state)
        state = jax.tree_util.tree_unflatten(treedef, [
            _put(x, sharding) if sharding is not None else jnp.asarray(x, dtype=ref.dtype)
            for x, ref in zip(leaves, jax.tree_util.tree_leaves(state))])
    where = f"{label or 'training'}"
    span, last_save, next_print = 1, time.monotonic(), steps // 10
    while k < steps:
        interrupt.check(f"{where} step {k}/{steps}" + (" (checkpoint saved)" if slot else ""))
        stop = min(k + span, steps)
        t0 = time.perf_counter()
        state = progs.advance(state, jnp.asarray(k, jnp.int32), jnp.asarray(stop, jnp.int32), *args)
        jax.block_until_ready(state)
        elapsed = time.perf_counter() - t0
        k = stop
        if elapsed < SEGMENT_SECONDS / 2:
            span *= 2
        elif elapsed > 2 * SEGMENT_SECONDS and span > 1:
            span //= 2
        if slot is not None and (interrupt.requested() is not None or k == steps
                                 or time.monotonic() - last_save >= checkpoint_seconds()):
            slot.save(state, k)
            last_save = time.monotonic()
        if label is not None and (k >= next_print or k == steps):
            _print_progress(label, k, steps, state)
            next_print = k + max(steps // 10, 1)
    return progs.finish(state, *args)


def _print_progress(label: str, k: int, steps: int, state) -> None:
    """One stderr line: the last logged mean training loss of run 0."""
    trace_loss = np.asarray(jax.device_get(state.trace_loss))[0]     # (n_logs,) of run 0
    n_logged = int(k * trace_loss.shape[0] // steps)
    text = f" loss {trace_loss[n_logged - 1]:.6g}" if n_logged > 0 else ""
    print(f"[{label}] step {k}/{steps}{text}", file=sys.stderr, flush=True)
