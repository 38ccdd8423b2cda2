"""The result contract (schema v2): checks, verdicts and the atomic JSON file every claim writes.

A result file `results[/<preset>]/<claim>.json` holds at least

    schema, claim, preset, seed, seeds, verdict ("pass" | "fail"),
    checks: [{name, label, kind, op, predicted, bound, measured, metric, error, tolerance, slack,
              passed, why, part}],
    config, versions, git, wall_seconds, figure, streams, data

A check compares one measured number with theory, in one of three forms (`op`):

    "=="     |measured - predicted| (metric "abs") or |measured - predicted| / |predicted|
             (metric "rel") is the `error`; passes when error <= tolerance; slack = tolerance - error
    "<=", ">=" measured against a numeric `bound`; slack = bound - measured (resp. measured - bound)
    "holds"  a qualitative statement (an ordering, a sign pattern) given as `predicted` text;
             slack 1 when it holds, -1 when not (prefer a numeric bound where there is one)

`slack >= 0` iff the check passed; the report prints slack, never a signed "error".
`kind` says what kind of evidence the check is:

    exact      an identity that holds to rounding (a construction, a closed form)
    predicted  theory computed from the config alone, compared within a stated tolerance
    expected   a threshold read from reference runs or the paper's figures, not derived
    sanity     true by construction (a solver's own structure guarantees it): a bug detector,
               not evidence for the claim

`why` cites a paper (author year, section, equation, figure) or a file of this repository.
Other tools (the report, the README table, CI) read these keys: keep them stable, and bump
SCHEMA_VERSION when they change.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Sequence

from theory.errors import SandboxError

SCHEMA_VERSION = 2
REQUIRED_KEYS = ("schema", "claim", "preset", "seed", "seeds", "verdict", "checks", "config",
                 "versions", "git", "wall_seconds", "figure")
KINDS = ("exact", "predicted", "expected", "sanity")
OPS = ("==", "<=", ">=", "holds")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# a `why` must be readable by anyone holding the repository: no tracker numbers or private notes
_PRIVATE = re.compile("|".join([r"issue\s*#", r"research [A-Z]\d", r"\bP-[A-Z]\d", "pit" "fall"]), re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Check:
    """One comparison of a measurement with theory (see the module docstring for the fields)."""
    name: str
    label: str
    kind: str
    op: str
    predicted: Any
    bound: float | None
    measured: Any
    metric: str
    error: float | None
    tolerance: float | None
    slack: float
    passed: bool
    why: str
    part: str = ""

    def __post_init__(self):
        if not _NAME.match(self.name):
            raise ValueError(f"check name {self.name!r} is not a snake_case id")
        if self.kind not in KINDS:
            raise ValueError(f"check {self.name}: kind {self.kind!r} not in {KINDS}")
        if self.op not in OPS:
            raise ValueError(f"check {self.name}: op {self.op!r} not in {OPS}")
        if not self.label or not self.why:
            raise ValueError(f"check {self.name}: label and why are required")
        if _PRIVATE.search(self.why) or _PRIVATE.search(self.label):
            raise ValueError(f"check {self.name}: cite a paper or a repository file, not {self.why!r}")

    def to_json(self) -> dict:
        return {k: _jsonable(v) for k, v in dataclasses.asdict(self).items()}


def _finite_or_inf(x: float) -> float:
    x = float(x)
    return x if math.isfinite(x) else math.inf


def _slack(x: float) -> float:
    """A slack that is -inf when the measurement was not finite (a NaN never passes)."""
    x = float(x)
    return x if math.isfinite(x) else -math.inf


def rel_error(predicted: float, measured: float) -> float:
    """|measured - predicted| / |predicted| (|measured| when predicted is 0)."""
    p, m = float(predicted), float(measured)
    return _finite_or_inf(abs(m - p) / abs(p)) if p != 0 else _finite_or_inf(abs(m))


def close(name: str, label: str, kind: str, predicted: float, measured: float, tol: float, why: str,
          *, rel: bool = True) -> Check:
    """|m - p| / |p| <= tol (rel=True) or |m - p| <= tol (rel=False)."""
    if rel:
        err, metric = rel_error(predicted, measured), "rel"
    else:
        err, metric = _finite_or_inf(abs(float(measured) - float(predicted))), "abs"
    slack = _slack(float(tol) - err)
    return Check(name, label, kind, "==", float(predicted), None, float(measured), metric, err,
                 float(tol), slack, slack >= 0, why)


def at_most(name: str, label: str, kind: str, bound: float, measured: float, why: str) -> Check:
    """measured <= bound."""
    slack = _slack(float(bound) - float(measured))
    return Check(name, label, kind, "<=", None, float(bound), float(measured), "bound", None, None,
                 slack, slack >= 0, why)


def at_least(name: str, label: str, kind: str, bound: float, measured: float, why: str) -> Check:
    """measured >= bound."""
    slack = _slack(float(measured) - float(bound))
    return Check(name, label, kind, ">=", None, float(bound), float(measured), "bound", None, None,
                 slack, slack >= 0, why)


def holds(name: str, label: str, kind: str, statement: str, measured: Any, ok: bool, why: str) -> Check:
    """A qualitative statement (`statement`, e.g. "cos(TF, GD++) > cos(TF, GD)") that holds or not."""
    return Check(name, label, kind, "holds", statement, None, measured, "holds", None, None,
                 1.0 if ok else -1.0, bool(ok), why)


def in_part(checks: Sequence[Check], part: str) -> list[Check]:
    """The checks with their `part` field set."""
    return [dataclasses.replace(c, part=part) for c in checks]


def verdict(checks: Sequence[Check]) -> str:
    """"pass" when every check passed and at least one of them is evidence (not `sanity`)."""
    evidence = [c for c in checks if c.kind != "sanity"]
    return "pass" if evidence and all(c.passed for c in checks) else "fail"


def verdict_of(checks: Sequence[dict]) -> str:
    """`verdict` over checks read from a result file."""
    evidence = [c for c in checks if c["kind"] != "sanity"]
    return "pass" if evidence and all(c["passed"] for c in checks) else "fail"


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


CODE_PATHS = ("theory", "experiments", "proofs", "pyproject.toml")   # what a result depends on


def git_revision(repo: Path | None = None) -> dict:
    """The commit and whether the code (CODE_PATHS) had uncommitted changes, tracked or not (None
    outside git). Results, figures and the README are outputs, so a run that rewrites them (or a
    `reproduce` whose earlier claims already did) does not mark the next result dirty."""
    cwd = str(repo or Path(__file__).resolve().parents[2])
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=10)
        if rev.returncode != 0:
            return {"commit": None, "dirty": None}
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *CODE_PATHS], cwd=cwd,
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


def as_json(x: Any) -> Any:
    """`x` as the JSON file will hold it (arrays to lists, non-finite floats to strings)."""
    return json.loads(json.dumps(_jsonable(x), allow_nan=False))


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
        payload = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise SandboxError(f"results file {path} is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise SandboxError(f"results file {path} is not valid JSON ({e})") from None
    if not isinstance(payload, dict):
        raise SandboxError(f"results file {path} does not hold a JSON object")
    if payload.get("schema") != SCHEMA_VERSION:
        raise SandboxError(f"results file {path} has schema {payload.get('schema')!r}, this sandbox reads "
                           f"{SCHEMA_VERSION}: run the claim again")
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise SandboxError(f"results file {path} lacks keys {missing}")
    return payload
