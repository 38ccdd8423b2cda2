"""Test-wide JAX settings: 8 host CPU devices, strict dtype promotion, rank promotion raises.

The device count must be set before JAX initialises its backend, so it sits above `import jax`.
x64 is NOT switched on globally: claims and tests that need float64 enter
`theory.engine.precision.precision("float64")` (or take the `f64` fixture below), which scopes
the switch (tested in test_engine.py).

Tiers (markers in pyproject.toml): unmarked tests are the fast unit tier; `claim` runs a quick
preset end to end; `slow` runs a full preset (deselected by default).
"""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402
import pytest  # noqa: E402

from theory.engine.cache import enable_persistent_cache, release_compiled  # noqa: E402
from theory.engine.precision import precision  # noqa: E402

enable_persistent_cache()          # theory/engine/cache.py: a second test session compiles little
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """After each test module, drop the programs it compiled (theory/engine/cache.py
    `release_compiled`: a session holding every program passes vm.max_map_count and XLA's compiler
    segfaults)."""
    yield
    release_compiled()


@pytest.fixture
def f64():
    """Run the test body in float64 (scoped x64)."""
    with precision("float64"):
        yield


# --- the reliability table (tests/reliability.py) -------------------------------------------------
def pytest_runtest_logreport(report):
    """Remember how each test that recorded reliability rows ended (its call phase, or a failed setup)."""
    import reliability
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        reliability.OUTCOMES[report.nodeid] = report.outcome


def pytest_sessionfinish(session, exitstatus):
    """Write results/reliability.json when tests that record rows ran (sorted, deterministic)."""
    import reliability
    reliability.write()
    _record_tier_time(session, exitstatus)


# --- measured tier runtimes (results/test_times.json, rendered into the README by `sandbox report`) ---
_TIERS = {"not slow": "default (`pytest`)",
          "not claim and not slow and not process": "unit (`pytest -m \"not claim and not slow and not process\"`)"}


def pytest_sessionstart(session):
    import time
    session.config._sandbox_start = time.perf_counter()


def _record_tier_time(session, exitstatus):
    """Record the wall time of a whole tier (every test of the selection, no -k, no paths given)."""
    import json
    import time
    from pathlib import Path
    config = session.config
    tier = _TIERS.get(" ".join(config.getoption("markexpr", "").split()))
    default_paths = ([], ["tests"], [str(Path(config.rootpath) / "tests")])
    narrowed = any(config.getoption(o, None) for o in ("keyword", "ignore", "ignore_glob", "deselect", "lf"))
    whole = not narrowed and config.args in default_paths
    if tier is None or not whole or not session.items or exitstatus != 0:
        return
    path = Path(config.rootpath) / "results" / "test_times.json"
    try:
        times = json.loads(path.read_text())
    except (OSError, ValueError):
        times = {}
    times[tier] = {"tests": len(session.items), "seconds": round(time.perf_counter() - config._sandbox_start),
                   "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}
    path.write_text(json.dumps(times, indent=1, sort_keys=True) + "\n")
