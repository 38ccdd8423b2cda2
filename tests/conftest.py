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
# the pytest workers already keep the cores busy: a claim's independent sweeps run in turn
# (engine.sweep.at_once; its threaded path is tested with threads given explicitly)
os.environ.setdefault("SANDBOX_THREADS", "1")

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
# Under pytest-xdist (`-n`, pyproject.toml) the tests run in worker processes while the controller
# writes the files: a worker attaches the rows a test recorded to its report (`user_properties`,
# which xdist sends to the controller), and the controller (or the single process without xdist)
# reads them back in pytest_runtest_logreport. Only the controller writes results/.
_ROWS_KEY = "sandbox_reliability_rows"
_RAN: set[str] = set()                     # node ids of the tests that ran (their setup was reported)
_MODULE_SECONDS: dict[str, float] = {}     # test module -> summed duration of its tests' phases (this session)


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the reliability rows the test recorded (in this process) to its report."""
    outcome = yield
    report = outcome.get_result()
    import reliability
    rows = reliability.ROWS.get(item.nodeid)
    if rows and report.when in ("call", "setup"):
        report.user_properties.append((_ROWS_KEY, list(rows)))


def pytest_runtest_logreport(report):
    """Remember how each test ended (its call phase, or a failed setup), the rows it recorded, and
    that it ran (a setup report: the tier-time count, which under xdist cannot read session.items)."""
    import reliability
    if report.when == "setup":
        _RAN.add(report.nodeid)
    module = report.nodeid.split("::")[0]
    _MODULE_SECONDS[module] = _MODULE_SECONDS.get(module, 0.0) + report.duration
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        reliability.OUTCOMES[report.nodeid] = report.outcome
    for key, rows in report.user_properties:
        if key == _ROWS_KEY:
            reliability.ROWS[report.nodeid] = [dict(r) for r in rows]



def pytest_sessionfinish(session, exitstatus):
    """Write results/reliability.json when tests that record rows ran (sorted, deterministic), and
    the tier's wall time; in the controller (or the one process) only."""
    if _is_worker(session.config):
        return
    import reliability
    reliability.write()
    _record_tier_time(session, exitstatus)


# --- measured tier runtimes (results/test_times.json, rendered into the README by `sandbox report`) ---
_TIERS = {"not slow": "default (`pytest`)",
          "not claim and not slow and not process": "unit (`pytest -m \"not claim and not slow and not process\"`)"}


def pytest_sessionstart(session):
    import time

    from theory.engine.cache import cache_dir
    session.config._sandbox_start = time.perf_counter()
    folder = cache_dir()                 # the persistent compilation cache as the session found it
    session.config._sandbox_cache = ("off" if folder is None else
                                     "warm" if folder.is_dir() and any(folder.iterdir()) else "cold")


def _workers(config) -> int:
    """Worker processes of this session (1 without xdist)."""
    n = getattr(config.option, "numprocesses", None)
    return max(int(n or 1), 1) if getattr(config.option, "dist", "no") != "no" else 1


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
    if tier is None or not whole or not _RAN or exitstatus != 0:
        return
    path = Path(config.rootpath) / "results" / "test_times.json"
    try:
        times = json.loads(path.read_text())
    except (OSError, ValueError):
        times = {}
    times[tier] = {"tests": len(_RAN), "seconds": round(time.perf_counter() - config._sandbox_start),
                   "cpus": os.cpu_count(), "workers": _workers(config), "date": time.strftime("%Y-%m-%d"),
                   "compile_cache": getattr(config, "_sandbox_cache", "unknown"),
                   "modules": {m: round(t, 1) for m, t in sorted(_MODULE_SECONDS.items())}}
    path.write_text(json.dumps(times, indent=1, sort_keys=True) + "\n")


def pytest_collection_modifyitems(config, items):
    """Under xdist, hand out the longest test modules first (longest-processing-time-first: the
    session ends when its last module does). Durations come from the last whole-tier run recorded
    in results/test_times.json (the same file in every worker, so every worker collects the same
    order, as xdist requires); modules without a record go first, tests keep their order within a
    module. Without xdist the order is pytest's."""
    if not _is_worker(config):
        return
    import json
    from pathlib import Path
    try:
        times = json.loads((Path(config.rootpath) / "results" / "test_times.json").read_text())
    except (OSError, ValueError):
        return
    seconds: dict[str, float] = {}
    for tier in times.values():
        for module, t in (tier.get("modules") or {}).items() if isinstance(tier, dict) else ():
            seconds[module] = max(seconds.get(module, 0.0), float(t))
    if not seconds:
        return
    module = lambda item: item.nodeid.split("::")[0]
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        first.setdefault(module(item), i)
    order = sorted(range(len(items)), key=lambda i: (-seconds.get(module(items[i]), float("inf")),
                                                      first[module(items[i])], i))
    items[:] = [items[i] for i in order]
