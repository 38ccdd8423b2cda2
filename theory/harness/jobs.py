"""Claims run side by side: `sandbox reproduce --jobs N` starts each claim as its own child process
(and `sandbox explore --jobs N` its workers the same way, theory/harness/explore.py).

A claim's training step is mostly one core's work on a CPU (small matrices; XLA's CPU fusions run
on one thread), so on a 2-core machine two claims at once finish sooner than one after the other.
Each child is `python -m theory.cli run NAME [--full] [--out DIR]`: the same code path as
`sandbox run`, its own precision scope and compile cache entries, its own result and figure
files. Nothing is shared between children, so a claim's numbers do not depend on `--jobs` (the
same compiled programs on the same inputs); only its `wall_seconds` grows when cores are shared.

Order: longest first (LPT, by each claim's last recorded `wall_seconds`; claims without one
first, as they may be long), each next claim to the first free slot. Every child's output lines
are printed as they come, prefixed by its claim name.

Signals: children run in their own sessions, so a terminal's Ctrl-C (or a SIGTERM) reaches this
process, which passes it on to every running child exactly once. Children stop at their next
segment boundary and keep their checkpoints; once they have left (within
`theory.engine.interrupt.GRACE_SECONDS`), this raises `Interrupted` and the same command resumes
(finished claims are up to date and skipped). A SIGKILL of this process (nothing can be passed on)
leaves the running children to finish on their own: they are not in its process group.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

from theory.engine import interrupt
from theory.errors import SandboxError


def check_jobs(jobs: int) -> int:
    """Refuse a job count below 1 (SandboxError: one line, exit 2)."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise SandboxError(f"--jobs must be a positive integer, got {jobs!r}")
    return jobs


def longest_first(names: Sequence[str], seconds: dict[str, float | None]) -> list[str]:
    """`names` by decreasing last wall time; unknown times (None or missing) first, in given order."""
    known = [n for n in names if seconds.get(n) is not None]
    return [n for n in names if seconds.get(n) is None] + sorted(known, key=lambda n: -seconds[n])


def run_argv(name: str, preset: str, out: Path | None) -> list[str]:
    """The child's command line: `sandbox run` of one claim at `preset`."""
    argv = [sys.executable, "-m", "theory.cli", "run", name] + (["--full"] if preset == "full" else [])
    return argv + (["--out", str(out)] if out is not None else [])


def _pump(name: str, stream, lock: threading.Lock) -> None:
    for line in iter(stream.readline, ""):
        with lock:
            print(f"[{name}] {line.rstrip()}", flush=True)
    stream.close()


def run_all(names: Sequence[str], jobs: int, argv_of: Callable[[str], list[str]],
            poll_seconds: float = 0.2, env: dict[str, str] | None = None) -> dict[str, int]:
    """Run `argv_of(name)` for every name, at most `jobs` at once, in the given order, with this
    process's environment plus `env`; return {name: exit code} in that order. Honours a signal
    (module docstring)."""
    check_jobs(jobs)
    pending, running, codes = list(names), {}, {}
    lock = threading.Lock()
    env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    try:
        while pending or running:
            if interrupt.requested() is not None:
                _stop(running, interrupt.requested())
                interrupt.check(f"claims {', '.join(running) or 'none'} running, "
                                f"{', '.join(pending) or 'none'} not started")
            while pending and len(running) < jobs:
                name = pending.pop(0)
                # its own session: a terminal's Ctrl-C reaches this process only, which passes it
                # on once (a second signal would make the child leave without its last segment)
                p = subprocess.Popen(argv_of(name), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env, start_new_session=True)
                t = threading.Thread(target=_pump, args=(name, p.stdout, lock), daemon=True)
                t.start()
                running[name] = (p, t)
            for name, (p, t) in list(running.items()):
                if p.poll() is not None:
                    t.join()
                    codes[name] = p.returncode
                    del running[name]
            time.sleep(poll_seconds)
    finally:
        for p, _ in running.values():          # an exception here: leave no orphan behind
            if p.poll() is None:
                p.kill()
    return {n: codes[n] for n in names}


def _stop(running: dict, signum: int) -> None:
    """Pass the signal on and wait for the children to reach their segment boundary and leave."""
    for p, _ in running.values():
        if p.poll() is None:
            p.send_signal(signum if signum in (signal.SIGINT, signal.SIGTERM) else signal.SIGINT)
    deadline = time.monotonic() + 0.9 * interrupt.GRACE_SECONDS
    for p, t in running.values():
        try:
            p.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            p.kill()
        t.join(timeout=1.0)
