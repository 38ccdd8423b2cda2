"""The result contract: checks, verdicts and the atomic JSON file every claim writes.

A result file `results/<claim>.json` holds at least

    claim, preset, seed, seeds, verdict ("pass" | "fail"),
    checks: [{name, predicted, measured, metric, error, tolerance, passed, why}],
    config, versions, git, wall_seconds, figure

Other tools (the report, the README table, CI) read these keys: keep them stable.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Sequence

from theory.errors import SandboxError

SCHEMA_VERSION = 1
REQUIRED_KEYS = ("claim", "preset", "seed", "seeds", "verdict", "checks", "config",
                 "versions", "git", "wall_seconds", "figure")


@dataclasses.dataclass(frozen=True)
class Check:
    """One comparison of a prediction with a measurement.

    `error` is `metric` applied to (predicted, measured); the check passes when
    `error <= tolerance` (or, for `metric="at_least"/"at_most"`, when the bound holds).
    `why` is the one-line reason for the tolerance.
    """
    name: str
    predicted: Any
    measured: Any
    metric: str
    error: float
    tolerance: float
    passed: bool
    why: str

    def to_json(self) -> dict:
        return {k: _jsonable(v) for k, v in dataclasses.asdict(self).items()}


def _finite_or_inf(x: float) -> float:
    x = float(x)
    return x if math.isfinite(x) else math.inf


def rel_error(predicted: float, measured: float) -> float:
    """|measured - predicted| / |predicted|."""
    p, m = float(predicted), float(measured)
    return _finite_or_inf(abs(m - p) / abs(p)) if p != 0 else _finite_or_inf(abs(m))


def check_rel(name: str, predicted: float, measured: float, tol: float, why: str) -> Check:
    """Relative error |m - p| / |p| <= tol."""
    err = rel_error(predicted, measured)
    return Check(name, float(predicted), float(measured), "relative error", err, tol, err <= tol, why)


def check_abs(name: str, predicted: float, measured: float, tol: float, why: str) -> Check:
    """Absolute error |m - p| <= tol."""
    err = _finite_or_inf(abs(float(measured) - float(predicted)))
    return Check(name, float(predicted), float(measured), "absolute error", err, tol, err <= tol, why)


def check_at_least(name: str, bound: float, measured: float, why: str) -> Check:
    """measured >= bound (error = bound - measured, passes when <= 0)."""
    m = float(measured)
    err = _finite_or_inf(float(bound) - m) if math.isfinite(m) else math.inf
    return Check(name, f">= {bound:g}", m, "lower bound", err, 0.0, err <= 0.0, why)


def check_at_most(name: str, bound: float, measured: float, why: str) -> Check:
    """measured <= bound (error = measured - bound, passes when <= 0)."""
    m = float(measured)
    err = _finite_or_inf(m - float(bound)) if math.isfinite(m) else math.inf
    return Check(name, f"<= {bound:g}", m, "upper bound", err, 0.0, err <= 0.0, why)


def check_true(name: str, predicted: str, measured: Any, ok: bool, why: str) -> Check:
    """A qualitative check (an ordering, a sign pattern): error 0 when it holds, 1 when not."""
    return Check(name, predicted, measured, "holds", 0.0 if ok else 1.0, 0.0, bool(ok), why)


def verdict(checks: Sequence[Check]) -> str:
    return "pass" if checks and all(c.passed for c in checks) else "fail"


# --- provenance --------------------------------------------------------------------------
def package_versions() -> dict:
    import importlib.metadata as md
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("jax", "jaxlib", "optax", "numpy", "scipy", "sympy", "matplotlib"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def git_revision(repo: Path | None = None) -> dict:
    """The commit and whether the work tree had uncommitted changes (None outside git)."""
    cwd = str(repo or Path(__file__).resolve().parent.parent)
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=10)
        if rev.returncode != 0:
            return {"commit": None, "dirty": None}
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10)
        return {"commit": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


# --- atomic JSON -------------------------------------------------------------------------
def _jsonable(x: Any) -> Any:
    """Convert numpy/jax scalars and arrays, tuples and dataclasses into JSON values."""
    import numpy as np
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(x).items()}
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "__array__") and not isinstance(x, (str, bytes)):
        arr = np.asarray(x)
        return _jsonable(arr.item()) if arr.ndim == 0 else [_jsonable(v) for v in arr.tolist()]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else ("nan" if math.isnan(x) else ("inf" if x > 0 else "-inf"))
    return x


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write JSON to a temporary file in the same folder, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(_jsonable(payload), f, indent=1, allow_nan=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_result(path: Path) -> dict:
    """Read and validate a result file; a missing or malformed file is a SandboxError."""
    path = Path(path)
    if not path.is_file():
        raise SandboxError(f"no results file at {path}: run `sandbox run <claim>` first")
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise SandboxError(f"results file {path} is not valid JSON ({e})") from None
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise SandboxError(f"results file {path} lacks keys {missing}")
    return payload
