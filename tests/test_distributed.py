"""A sweep sharded across two processes (jax.distributed, localhost coordinator, CPU collectives)
gives the numbers of the same sweep in one process (theory/engine/sweep.py: `_put`, `_gather`).

Each process has 2 host CPU devices, so the 8 runs are sharded over 4 devices of 2 processes;
the reference is one process with 2 devices. Runs are independent, so the numbers must agree to
the bit.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).parent / "scripts" / "sweep_worker.py"
pytestmark = pytest.mark.process


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    return env


def test_two_process_sweep_equals_one_process(tmp_path):
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(tmp_path / f"p{i}.npz"), "2", str(i), str(port)],
                              env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert "process 1/2: 4 devices, 2 local" in outs[1]
    single = subprocess.run([sys.executable, str(WORKER), str(tmp_path / "one.npz"), "1", "0", "0"],
                            env=_env(), capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    two, one = np.load(tmp_path / "p0.npz"), np.load(tmp_path / "one.npz")
    assert int(two["devices"]) == 4 and int(one["devices"]) == 2
    np.testing.assert_array_equal(two["w"], one["w"])
    np.testing.assert_array_equal(two["loss"], one["loss"])
    assert np.all(np.isfinite(one["loss"])) and one["w"].shape == (8, 4)
