"""The test harness itself under pytest-xdist (pyproject.toml runs the tiers with `-n`): the
reliability rows a worker records reach the controller's results/reliability.json, a failed test's
rows are written as failed, and the tier time counts every test (tests/conftest.py).

Each case runs pytest in a subprocess on a scratch copy of tests/conftest.py and
tests/reliability.py beside a small test file, so the repository's results/ are never touched."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

SAMPLE = '''
import reliability


def test_records_one():
    reliability.record("harness", "row from test one", "kept")


def test_records_two():
    reliability.record("harness", "row from test two", "kept")


def test_records_then_fails():
    reliability.record("harness", "row from a failing test", "kept")
    assert {fail}


def test_plain():
    pass
'''

INI = '''[pytest]
markers =
    claim: x
    slow: x
    process: x
addopts = -m "not slow" -p no:cacheprovider
'''


def _run(tmp_path: Path, workers: int, fail: bool) -> tuple[subprocess.CompletedProcess, Path]:
    root = tmp_path / f"n{workers}"
    (root / "tests").mkdir(parents=True)
    for name in ("conftest.py", "reliability.py"):
        shutil.copy(TESTS / name, root / "tests" / name)
    (root / "tests" / "test_sample.py").write_text(SAMPLE.format(fail="False" if fail else "True"))
    (root / "pytest.ini").write_text(INI)
    env = {**os.environ, "SANDBOX_NO_COMPILE_CACHE": "1", "PYTHONPATH": str(root / "tests")}
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-n", str(workers), "--dist", "loadfile", "tests"]
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    return done, root


@pytest.mark.process
@pytest.mark.parametrize("workers", [0, 2])
def test_rows_and_tier_time_reach_the_controller(tmp_path, workers):
    done, root = _run(tmp_path, workers, fail=False)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads((root / "results" / "reliability.json").read_text())["rows"]
    by_tried = {r["tried"]: r for r in rows}
    assert set(by_tried) == {"row from test one", "row from test two", "row from a failing test"}
    assert all(r["outcome"] == "kept" for r in rows)
    assert by_tried["row from test one"]["test"] == "tests/test_sample.py::test_records_one"
    times = json.loads((root / "results" / "test_times.json").read_text())
    [tier] = times.values()
    assert tier["tests"] == 4 and tier["workers"] == max(workers, 1)
    assert set(tier["modules"]) == {"tests/test_sample.py"}


@pytest.mark.process
def test_a_failed_tests_rows_are_written_failed_and_no_tier_time(tmp_path):
    done, root = _run(tmp_path, 2, fail=True)
    assert done.returncode == 1, done.stdout + done.stderr
    rows = {r["tried"]: r for r in json.loads((root / "results" / "reliability.json").read_text())["rows"]}
    assert rows["row from a failing test"]["outcome"].startswith("FAILED (failed)")
    assert rows["row from test one"]["outcome"] == "kept"
    assert not (root / "results" / "test_times.json").exists()      # a failing tier records no time
