"""What the bench measures with: machine facts, the float32 matmul throughput, a compile counter,
timers, and child processes with their own peak memory (`os.wait4` rusage).

Compile accounting reads JAX's monitoring events (as tests/test_engine.py does): a program XLA had
to prepare is one backend compile or one persistent-cache hit; the compile *time* of a call is the
sum of its tracing, lowering and backend-compile durations.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp

COMPILED = "/jax/core/compile/backend_compile_duration"
CACHE_HIT = "/jax/compilation_cache/cache_hits"
COMPILE_PHASES = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  COMPILED)


class CompileCounter:
    """Programs prepared (backend compiles + persistent-cache hits) and seconds spent preparing them."""

    def __init__(self):
        self.programs, self.seconds = 0, 0.0
        jax.monitoring.register_event_duration_secs_listener(self._on_duration)
        jax.monitoring.register_event_listener(self._on_event)

    def _on_duration(self, event, duration, **kwargs):
        self.programs += event == COMPILED
        if event in COMPILE_PHASES:
            self.seconds += duration

    def _on_event(self, event, **kwargs):
        self.programs += event == CACHE_HIT

    def snapshot(self) -> tuple[int, float]:
        return self.programs, self.seconds


COUNTER = CompileCounter()


class Timed:
    """Wall time, programs compiled and compile seconds of one block (the result blocked on)."""

    def __init__(self, fn: Callable, *args):
        p0, s0 = COUNTER.snapshot()
        t0 = time.perf_counter()
        self.out = jax.block_until_ready(fn(*args))
        self.seconds = time.perf_counter() - t0
        p1, s1 = COUNTER.snapshot()
        self.programs, self.compile_seconds = p1 - p0, s1 - s0


def best_of(fn: Callable, repeats: int = 3) -> float:
    """Fastest of `repeats` timed calls after one warm-up call (compile excluded)."""
    jax.block_until_ready(fn())
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t)
    return best


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def facts() -> dict:
    """The machine and software the numbers were measured on."""
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cpu_model": cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "jax": jax.__version__,
            "jaxlib": getattr(jax.lib, "__version__", None) or _jaxlib_version(),
            "devices": [str(d) for d in jax.devices()],
            "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def _jaxlib_version() -> str | None:
    try:
        import jaxlib
        return jaxlib.__version__
    except Exception:            # noqa: BLE001 (a missing attribute only hides one fact)
        return None


def matmul_flops_per_second(n: int = 2048, repeats: int = 5) -> float:
    """float32 throughput of an n x n matmul on this machine: 2 n^3 / (fastest time)."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    return 2.0 * n ** 3 / best_of(lambda: f(a), repeats)


# A small launcher between the bench and the measured command: a child's ru_maxrss starts from the
# memory of the process that forked it (Linux keeps the pre-exec high-water mark), so the command
# is started by this fresh, small interpreter and the launcher reports the command's own rusage.
_LAUNCHER = ("import json, os, subprocess, sys\n"
             "p = subprocess.Popen(sys.argv[1:])\n"
             "_, status, ru = os.wait4(p.pid, 0)\n"
             "print('\\n' + json.dumps({'exit_code': os.waitstatus_to_exitcode(status), 'maxrss': ru.ru_maxrss}))\n")


def run_child(argv: list[str], env: dict | None = None) -> dict:
    """Run a command to completion: its wall time, exit code, peak resident memory (ru_maxrss of the
    command and the processes it waited for, from os.wait4 in a small launcher) and the last lines
    of its output."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, *argv], env={**os.environ, **(env or {})},
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - t0
    lines = done.stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1])
    except (IndexError, ValueError):
        report = {"exit_code": done.returncode, "maxrss": 0}
    rss = report["maxrss"] if sys.platform == "darwin" else report["maxrss"] * 1024          # bytes
    return {"seconds": seconds, "exit_code": report["exit_code"], "peak_rss_bytes": rss,
            "output_tail": [x for x in lines[:-1] if x.strip()][-3:]}
