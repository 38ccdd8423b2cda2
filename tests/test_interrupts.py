"""Segmented training, checkpoints and resume (theory/engine/sweep.py, checkpoint.py, interrupt.py).

The engine-level tests drive the sweep directly: segment boundaries must not change a single bit,
a sweep stopped between segments and rerun in the same checkpoint session must end with exactly
the numbers of an uninterrupted sweep, and a checkpoint of other inputs must be ignored. The
process-level tests (real SIGINT / SIGTERM / SIGKILL sent to `sandbox run`) are at the end.
"""
from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reliability import record

from theory.engine import checkpoint, files, interrupt
from theory.engine import sweep as sweep_lib
from theory.engine import train as engine
from theory.engine.keys import Keys
from theory.engine.sweep import sweep
from theory.errors import SandboxError


def _run(key, *, lr, run_id=0, steps=240, width=4):
    """A small noisy least-squares run with Adam: enough state (moments, trace) to lose."""
    k_init, k_data = jax.random.split(key)
    A = jnp.linspace(0.5, 2.0, width)                                    # (width,)

    def loss_fn(w, b):
        return 0.5 * jnp.sum((A * w - b) ** 2)

    def sample(k):
        return 1.0 + 0.1 * jax.random.normal(k, (width,))                # (width,)

    opt = engine.make_optimizer(engine.OptimizerConfig("adam"), lr, steps)
    w0 = jax.random.normal(k_init, (width,))
    w, tr = engine.train(k_data, w0, loss_fn, sample, opt, steps=steps, log_every=8,
                         log_fn=lambda w: jnp.sum(w), run_id=run_id)
    return w, tr.loss, tr.logged, jnp.mean(w)                           # post-processing after train


KEYS = Keys(0).sub("test_interrupts").runs(3)
LRS = jnp.array([0.01, 0.03, 0.1])


def _equal(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y))
               for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def test_segment_boundaries_do_not_change_a_bit(monkeypatch):
    reference = sweep(_run, KEYS, shard=False, lr=LRS)
    monkeypatch.setattr(sweep_lib, "SEGMENT_SECONDS", 0.0)      # every segment one step long
    assert _equal(sweep(_run, KEYS, shard=False, lr=LRS), reference)


def test_segmented_sweep_matches_direct_training():
    out = sweep(_run, KEYS, shard=False, lr=LRS)
    for i in range(3):
        direct = jax.jit(functools.partial(_run, lr=LRS[i]))(KEYS[i])
        for a, b in zip(jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves(direct)):
            np.testing.assert_allclose(np.asarray(a)[i], b, rtol=1e-6, atol=1e-7)


def _stop_after(n_checks: int):
    """An interrupt.check that raises on its n-th call, as a signal between segments would."""
    calls = {"n": 0}

    def check(where):
        calls["n"] += 1
        if calls["n"] >= n_checks:
            raise interrupt.Interrupted(signal.SIGINT, where)
    return check


def test_resume_after_interrupt_equals_uninterrupted(tmp_path, monkeypatch):
    reference = sweep(_run, KEYS, shard=False, lr=LRS)
    monkeypatch.setattr(sweep_lib, "SEGMENT_SECONDS", 0.0)
    monkeypatch.setenv("SANDBOX_CHECKPOINT_SECONDS", "0")
    folder, meta = tmp_path / "ck", {"claim": "test", "seed": 0}
    with checkpoint.session(folder, meta) as ck, ck.part("p"):
        monkeypatch.setattr(sweep_lib.interrupt, "check", _stop_after(40))
        with pytest.raises(interrupt.Interrupted, match="step 39/240"):
            sweep(_run, KEYS, shard=False, lr=LRS)
    slot = next((folder / "sweeps").glob("p.0.npz"))
    with np.load(slot) as z:
        assert int(z["step"]) == 39
    monkeypatch.setattr(sweep_lib.interrupt, "check", lambda where: None)
    with checkpoint.session(folder, meta) as ck, ck.part("p"):
        assert ck.resumed
        resumed = sweep(_run, KEYS, shard=False, lr=LRS)
    assert _equal(resumed, reference)


def test_checkpoint_of_other_inputs_or_meta_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("SANDBOX_CHECKPOINT_SECONDS", "0")
    folder = tmp_path / "ck"
    with checkpoint.session(folder, {"seed": 0}) as ck, ck.part("p"):
        sweep(_run, KEYS, shard=False, lr=LRS)
    other_lr = sweep(_run, KEYS, shard=False, lr=2 * LRS)
    with checkpoint.session(folder, {"seed": 0}) as ck, ck.part("p"):
        assert _equal(sweep(_run, KEYS, shard=False, lr=2 * LRS), other_lr)     # digest differs
    with checkpoint.session(folder, {"seed": 1}) as ck:
        assert not ck.resumed and not (folder / "sweeps").exists()              # meta differs: wiped


def _two_trains(key, *, lr, run_id=0):
    w, _, _, _ = _run(key, lr=lr, steps=16)
    v, _, _, _ = _run(jax.random.fold_in(key, 1), lr=lr, steps=16)
    return w + v


def test_run_function_with_two_train_calls_is_one_program():
    progs = sweep_lib._programs(_two_trains, ("lr",), None)
    out = sweep(_two_trains, KEYS, shard=False, lr=LRS)
    assert not next(iter(progs.meta.values()))[0]
    direct = jax.vmap(lambda k, lr: _two_trains(k, lr=lr))(KEYS, LRS)
    np.testing.assert_allclose(out, direct, rtol=1e-6)


@pytest.mark.parametrize("shard", [False, True])
def test_lax_map_chunks_equal_the_unchunked_sweep(shard):
    keys = Keys(1).sub("test_interrupts").runs(5)
    lrs = jnp.linspace(0.01, 0.1, 5)
    whole = sweep(_run, keys, shard=shard, lr=lrs)
    chunked = sweep(_run, keys, shard=shard, batch_size=2, lr=lrs)
    for a, b in zip(jax.tree_util.tree_leaves(whole), jax.tree_util.tree_leaves(chunked)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_chunks_of_any_size_keep_zero_size_outputs(batch_size):
    """Chunking by `batch_size` (dividing the runs or not, larger than their number) keeps every
    output, zero-size leaves included (jax.lax.map's own batch_size divides by zero on those)."""
    keys = Keys(2).sub("test_interrupts").runs(5)
    lrs = jnp.linspace(0.01, 0.1, 5)

    def run(key, *, lr, run_id=0):
        return {"loss": _run(key, lr=lr, run_id=run_id), "none": jnp.zeros((0, 3))}

    whole = sweep(run, keys, shard=False, lr=lrs)
    chunked = sweep(run, keys, shard=False, batch_size=batch_size, lr=lrs)
    assert chunked["none"].shape == whole["none"].shape == (5, 0, 3)
    for a, b in zip(jax.tree_util.tree_leaves(whole["loss"]), jax.tree_util.tree_leaves(chunked["loss"])):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_stale_temporary_files_of_dead_writers_are_removed(tmp_path):
    dead = tmp_path / f"{files.TEMP_PREFIX}999999999-x.part"
    mine = tmp_path / f"{files.TEMP_PREFIX}{os.getpid()}-y.part"
    dead.write_bytes(b"")
    mine.write_bytes(b"")
    assert files.remove_stale_temps(tmp_path) == [dead]
    assert mine.exists() and not dead.exists()


def test_atomic_write_follows_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        files.atomic_write(tmp_path / "f.json", b"{}")
    finally:
        os.umask(old)
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == 0o640


# --- real signals to a real `sandbox run` (tests/scripts/run_slow_claim.py) -----------------------
SCRIPT = Path(__file__).parent / "scripts" / "run_slow_claim.py"
LATENCY = 10.0   # s from signal to exit: one segment (~2 s target, up to 2x while adapting) + saving


def _sandbox(out: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(SCRIPT), "run", "slow", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "SANDBOX_CHECKPOINT_SECONDS": "0", **(env or {})})


def _wait_for_slot(out: Path, part: str, proc: subprocess.Popen, beyond: int = 0, timeout: float = 240) -> int:
    """Block until the checkpoint of `part`'s first sweep holds a step > `beyond`; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        for slot in out.glob(f".checkpoints/*/sweeps/{part}.0.npz"):
            try:
                with np.load(slot) as z:
                    step = int(z["step"])
            except (OSError, ValueError, KeyError, EOFError):
                continue          # being replaced right now
            if step > beyond:
                return step
        time.sleep(0.2)
    raise AssertionError(f"no checkpoint of {part} after {timeout} s")


def _comparable(out: Path) -> dict:
    r = json.loads((out / "results" / "slow.json").read_text())
    return {k: r[k] for k in ("checks", "data", "streams", "verdict", "config", "seed")}


def _leftovers(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob(".tmp-*"))


@pytest.mark.process
def test_sigint_sigterm_sigkill_then_resume_equal_an_uninterrupted_run(tmp_path):
    reference = _sandbox(tmp_path / "ref")
    _, err = reference.communicate(timeout=600)
    assert reference.returncode == 0, err
    out = tmp_path / "run"
    saved = 0                            # the step in the checkpoint when the last process ended
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGKILL, -9)):
        proc = _sandbox(out)
        _wait_for_slot(out, "long", proc, beyond=saved)       # this process has trained and saved
        sent = time.monotonic()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        latency = time.monotonic() - sent
        assert proc.returncode == code, err
        if sig != signal.SIGKILL:
            lines = [ln for ln in err.splitlines() if ln.startswith("sandbox:")]
            assert len(lines) == 1 and f"interrupted ({sig.name})" in lines[0]
            assert "resume with: sandbox run slow" in lines[0]
            assert "Traceback" not in err and latency < LATENCY, (latency, err)
            record("interrupts", f"{sig.name} to `sandbox run` mid-training",
                   f"exit {code} within {LATENCY:g} s, one line naming the step reached and the resume command, "
                   "no traceback, checkpoint kept, no result written")
        else:
            record("interrupts", "SIGKILL to `sandbox run` mid-training",
                   "killed; the last checkpoint survives and the next run resumes from it")
        assert not (out / "results" / "slow.json").exists()
        with np.load(next(out.glob(".checkpoints/*/sweeps/long.0.npz"))) as z:
            assert int(z["step"]) > saved
            saved = int(z["step"])
    final = _sandbox(out)
    _, err = final.communicate(timeout=600)
    assert final.returncode == 0 and "resuming from" in err, err
    assert _comparable(out) == _comparable(tmp_path / "ref")
    assert not (out / ".checkpoints").exists() and _leftovers(out) == []
    record("interrupts", "rerun after SIGINT, SIGTERM and SIGKILL (3 resumes)",
           "result equal to an uninterrupted run's (every check, measurement and stream); "
           "checkpoints removed; no temporary file left")


def test_a_second_run_of_the_same_checkpoint_is_refused_while_the_first_lives(tmp_path):
    folder = tmp_path / ".checkpoints" / "x-quick-abc-s0"
    lock = folder.with_name(folder.name + ".lock")
    lock.parent.mkdir(parents=True)
    lock.write_text(str(os.getppid()))                       # a live process holds it
    with pytest.raises(SandboxError, match="another run of the same claim, config and seed"):
        with checkpoint.session(folder, {"seed": 0}):
            pass
    lock.write_text("999999999")                             # its holder is gone: taken over
    with checkpoint.session(folder, {"seed": 0}) as ck:
        assert lock.read_text() == str(os.getpid()) and not ck.resumed
    assert not lock.exists()
    record("concurrent writers", "a second run of the same claim, config and seed while the first runs",
           "refused in one line naming the running pid; a dead run's lock is taken over")


_WRITER = """
import json, sys
from pathlib import Path
from theory.engine.files import atomic_write
path, tag = Path(sys.argv[1]), sys.argv[2]
for i in range(300):
    atomic_write(path, json.dumps({"writer": tag, "i": i, "pad": "x" * 20000}).encode())
"""


@pytest.mark.process
def test_concurrent_writers_never_expose_a_partial_file(tmp_path):
    target = tmp_path / "result.json"
    target.write_text(json.dumps({"writer": "none"}))
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(target), tag]) for tag in "ab"]
    seen = set()
    while any(w.poll() is None for w in writers):
        seen.add(json.loads(target.read_text())["writer"])          # raises on a torn read
    assert [w.returncode for w in writers] == [0, 0]
    assert json.loads(target.read_text())["i"] == 299 and seen <= {"none", "a", "b"}
    assert _leftovers(tmp_path) == []
    record("concurrent writers", "two processes rewriting one file 300 times each while it is read",
           "every read is a complete file of one writer; no temporary file left")


# --- sweeps at once on host threads (engine.sweep.at_once) -----------------------------------------
def _chunks():
    """Three one-run sweeps of _run, as a claim's chunked run axis calls them."""
    return [functools.partial(sweep, _run, KEYS[i:i + 1], shard=False, lr=LRS[i:i + 1]) for i in range(3)]


def test_sweeps_at_once_equal_sweeps_in_turn():
    in_turn = [c() for c in _chunks()]
    assert _equal(sweep_lib.at_once(_chunks(), threads=2), in_turn)
    assert _equal(sweep_lib.at_once(_chunks(), threads=1), in_turn)


def test_sweeps_at_once_keep_the_precision_scope():
    from theory.engine.precision import precision
    with precision("float64"):
        out = sweep_lib.at_once([lambda: jnp.asarray(1.0).dtype] * 2, threads=2)
    assert out == [jnp.float64, jnp.float64]


def test_sweeps_at_once_raise_the_first_error_in_call_order():
    def boom(msg):
        raise ValueError(msg)
    with pytest.raises(ValueError, match="first"):
        sweep_lib.at_once([lambda: 1, lambda: boom("first"), lambda: boom("second")], threads=3)


def test_threads_from_the_environment(monkeypatch):
    monkeypatch.setenv("SANDBOX_THREADS", "3")
    assert sweep_lib.threads_available() == 3
    monkeypatch.setenv("SANDBOX_THREADS", "two")
    with pytest.raises(SandboxError, match="SANDBOX_THREADS"):
        sweep_lib.threads_available()


def test_interrupted_sweeps_at_once_resume_to_the_uninterrupted_numbers(tmp_path, monkeypatch):
    """A signal while three sweeps run on two threads: each running one saves its slot (named by
    group, call and sweep, not by finishing order); the rerun resumes them and ends with the numbers
    of sweeps run in turn without interruption."""
    reference = [c() for c in _chunks()]
    monkeypatch.setattr(sweep_lib, "SEGMENT_SECONDS", 0.0)
    monkeypatch.setenv("SANDBOX_CHECKPOINT_SECONDS", "0")
    folder, meta = tmp_path / "ck", {"claim": "test", "seed": 0}
    stop = _stop_after(30)
    lock = __import__("threading").Lock()

    def check(where):
        with lock:
            stop(where)
    with checkpoint.session(folder, meta) as ck, ck.part("p"):
        monkeypatch.setattr(sweep_lib.interrupt, "check", check)
        with pytest.raises(interrupt.Interrupted):
            sweep_lib.at_once(_chunks(), threads=2)
    saved = sorted(p.name for p in (folder / "sweeps").glob("*.npz"))
    assert saved and set(saved) <= {"p.0.0.0.npz", "p.0.1.0.npz", "p.0.2.0.npz"}
    steps = []
    for name in saved:
        with np.load(folder / "sweeps" / name) as z:
            steps.append(int(z["step"]))
    assert max(steps) > 0                                       # the rerun starts past step 0
    monkeypatch.setattr(sweep_lib.interrupt, "check", lambda where: None)
    with checkpoint.session(folder, meta) as ck, ck.part("p"):
        assert ck.resumed
        resumed = sweep_lib.at_once(_chunks(), threads=2)
    assert _equal(resumed, reference)
    record("resume", "a signal while three sweeps train on two threads (engine.sweep.at_once), then a rerun",
           "each running sweep saved its slot; the rerun resumed them and gave the numbers of sweeps run in turn")
