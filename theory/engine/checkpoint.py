"""Checkpoints: a claim run's progress on disk, so that an interrupted run resumes where it stopped.

    with checkpoint.session(folder, meta) as ck:   # the runner: one folder per (claim, config, seed)
        with ck.part("one_layer"):                 # run_parts: one scope per part
            sweep(...)                             # the sweep driver saves and resumes its slots

Layout of a session folder (under the output root, `.checkpoints/<claim>-<config hash>-s<seed>/`):

    meta.json               what the checkpoint belongs to: claim, config fingerprint, seed and a
                            fingerprint of the code (every .py under theory/, experiments/, proofs/)
    parts/<part>.json       a finished part: {"predicted": P, "measured": M}
    sweeps/<part>.<i>.npz   the i-th sweep of a part: the leaves of its `TrainState` (params,
                            optimiser state, divergence record, trace so far), the step reached, and
                            a digest of the sweep's inputs (run keys and value hyperparameters)

A resumed run skips the finished parts, restores each sweep from its slot and continues at the
step reached; because a step's batch is drawn from fold_in(key, k) and the state holds everything
else, the numbers equal an uninterrupted run's (tests/test_interrupts.py). A checkpoint whose
code, config, seed or inputs differ is discarded, never mixed in.

Format: plain `.npz` and `.json`, each written to a temporary file and renamed into place (atomic
on POSIX). The state's structure is not stored: the code rebuilds it (the sweep's init program
gives a template of the same tree), so loading unpickles nothing and needs no extra dependency
(orbax would add asynchronous multi-host machinery this single-process format does not need).
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import jax
import numpy as np

from theory.engine.files import alive, atomic_write, remove_stale_temps
from theory.errors import SandboxError

PyTree = Any

_CURRENT: contextvars.ContextVar["Session | None"] = contextvars.ContextVar("checkpoint", default=None)
# (group number, call index, [sweeps so far]) in a thread of a group of sweeps run at once
_THREAD_SLOT: contextvars.ContextVar[tuple | None] = contextvars.ContextVar("checkpoint_thread", default=None)


@contextlib.contextmanager
def threads_of(base: int | None, index: int) -> Iterator[None]:
    """Name the slots of the sweeps of call `index` of group `base` (in that call's thread)."""
    token = _THREAD_SLOT.set(None if base is None else (base, index, [0]))
    try:
        yield
    finally:
        _THREAD_SLOT.reset(token)


def current() -> "Session | None":
    """The session in force (None: nothing is saved; training still runs in segments)."""
    return _CURRENT.get()


# --- fingerprints -------------------------------------------------------------------------------
def code_fingerprint(root: Path, paths=("theory", "experiments", "proofs")) -> str:
    """sha256 of every .py file under `paths` of `root` (names and contents), 16 hex digits."""
    h = hashlib.sha256()
    for sub in paths:
        for f in sorted((root / sub).rglob("*.py")):
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def digest(*arrays: Any) -> str:
    """sha256 of the shapes, dtypes and bytes of host copies of `arrays` (pytrees allowed)."""
    h = hashlib.sha256()
    for leaf in jax.tree_util.tree_leaves(arrays):
        a = np.asarray(jax.device_get(leaf))
        if a.dtype.kind == "V":                      # typed PRNG keys
            a = np.asarray(jax.random.key_data(leaf))
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


# --- sessions -----------------------------------------------------------------------------------
class Slot:
    """The checkpoint of one sweep: its state after `step` steps."""

    def __init__(self, path: Path, inputs: str):
        self.path, self.inputs = path, inputs

    def load(self, template: PyTree) -> tuple[list[np.ndarray], int] | None:
        """(leaves, step) if the slot holds a state of `template`'s structure for these inputs."""
        if not self.path.is_file():
            return None
        try:
            with np.load(self.path, allow_pickle=False) as z:
                if str(z["inputs"]) != self.inputs:
                    return None
                leaves = [z[f"leaf{i}"] for i in range(int(z["n_leaves"]))]
                step = int(z["step"])
        except (OSError, KeyError, ValueError):
            return None
        ref = jax.tree_util.tree_leaves(template)
        if len(ref) != len(leaves) or any(np.shape(a) != np.shape(b) for a, b in zip(ref, leaves)):
            return None
        return leaves, step

    def save(self, state: PyTree, step: int) -> None:
        leaves = jax.tree_util.tree_leaves(jax.device_get(state))
        arrays = {f"leaf{i}": np.asarray(x) for i, x in enumerate(leaves)}
        import io
        buf = io.BytesIO()
        np.savez(buf, inputs=np.asarray(self.inputs), step=np.asarray(step), n_leaves=np.asarray(len(leaves)),
                 **arrays)
        atomic_write(self.path, buf.getvalue())


class Session:
    """The checkpoint folder of one claim run (see the module docstring)."""

    def __init__(self, folder: Path, meta: dict):
        self.folder, self.meta = Path(folder), dict(meta)
        self.resumed = False
        self._part, self._count = "", 0
        self._lock()
        old = self._read_meta()
        if old is not None and old != self.meta:
            shutil.rmtree(self.folder, ignore_errors=True)       # other code, config or seed
        elif old is not None:
            self.resumed = True
        remove_stale_temps(self.folder)
        atomic_write(self.folder / "meta.json", json.dumps(self.meta, sort_keys=True).encode())

    def _lock(self) -> None:
        """Take `<folder>.lock` (O_EXCL, holding our pid): two runs of the same claim, config and
        seed would otherwise write one checkpoint. A lock whose process is gone is taken over."""
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        lock = self.folder.with_name(self.folder.name + ".lock")
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    pid = int(lock.read_text().strip() or 0)
                except (OSError, ValueError):
                    pid = 0
                if pid and pid != os.getpid() and alive(pid):
                    raise SandboxError(f"another run of the same claim, config and seed is in progress "
                                       f"(pid {pid}, {lock}); wait for it or stop it") from None
                lock.unlink(missing_ok=True)           # a dead run's lock
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            self.lock = lock
            return
        raise SandboxError(f"cannot take the checkpoint lock {lock}")

    def release(self) -> None:
        lock = getattr(self, "lock", None)
        if lock is not None:
            lock.unlink(missing_ok=True)
            self.lock = None
            with contextlib.suppress(OSError):
                lock.parent.rmdir()                   # .checkpoints/ itself, when now empty

    def _read_meta(self) -> dict | None:
        try:
            return json.loads((self.folder / "meta.json").read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            return None

    @contextlib.contextmanager
    def part(self, name: str) -> Iterator[None]:
        """Sweeps inside are numbered within part `name` (0, 1, ... in call order)."""
        outer = (self._part, self._count)
        self._part, self._count = name, 0
        try:
            yield
        finally:
            self._part, self._count = outer

    def next_slot(self, inputs: str) -> Slot:
        """The slot of the next sweep: `<part>.<k>.npz` in call order; inside `threads_of` (sweeps
        run at once on host threads) `<part>.<k>.<i>.<j>.npz`, k the group's reserved number, i the
        call's index in the group and j the sweep's number within that call: the same names in
        every run, whatever order the threads reach them in."""
        t = _THREAD_SLOT.get()
        if t is not None:
            base, i, counter = t
            counter[0] += 1
            return Slot(self.folder / "sweeps" / f"{self._part or 'run'}.{base}.{i}.{counter[0] - 1}.npz", inputs)
        self._count += 1
        return Slot(self.folder / "sweeps" / f"{self._part or 'run'}.{self._count - 1}.npz", inputs)

    def reserve(self) -> int:
        """One sweep number for a group of sweeps run at once (`threads_of`)."""
        self._count += 1
        return self._count - 1

    def load_part(self, name: str) -> dict | None:
        try:
            return json.loads((self.folder / "parts" / f"{name}.json").read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            return None

    def save_part(self, name: str, data: dict) -> None:
        atomic_write(self.folder / "parts" / f"{name}.json", json.dumps(data).encode())

    def finished_parts(self) -> list[str]:
        return sorted(p.stem for p in (self.folder / "parts").glob("*.json"))

    def clear(self) -> None:
        """Remove the folder (the run finished and its result is written)."""
        self.discard(self.folder)

    @staticmethod
    def discard(folder: Path) -> None:
        """Remove a session folder and `.checkpoints/` itself when that leaves it empty (a finished
        run, or one that failed for a reason a rerun would meet again: bad input, divergence, a bug)."""
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            Path(folder).parent.rmdir()


@contextlib.contextmanager
def session(folder: Path, meta: dict) -> Iterator[Session]:
    """Make a session current for the duration."""
    s = Session(folder, meta)
    token = _CURRENT.set(s)
    try:
        yield s
    finally:
        _CURRENT.reset(token)
        s.release()
