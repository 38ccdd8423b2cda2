"""The result contract (schema v2): checks, verdicts and the atomic JSON file every claim writes.

A result file `results[/<preset>]/<claim>.json` (a custom run: `results/custom/<claim>-<hash>.json`)
holds

    schema, claim, statement, paper, preset, precision, seed, seeds,
    verdict ("pass" | "fail" | "partial"),
    checks: [{name, label, kind, op, predicted, bound, measured, metric, error, tolerance, slack,
              passed, why, part}],
    config, overrides, versions, git, wall_seconds, streams, figure, data,
    base_preset, changed, skipped, part_seconds        (optional when reading, always written)

`preset` is "quick", "full" or "custom". A run with any `--set`, a `--seeds` other than the
preset's or a seed other than 0 is "custom": `base_preset` names the preset it started from and
`changed` maps each config field that differs from that preset to [preset value, run value].
`skipped` lists the checks the base preset produces that this run did not, each
{"name": check name or null, "part": part, "reason": why}. The rule (theory/harness/runner.py,
`skipped_checks`): a part enabled in the base preset's config but not in the run's is skipped
whole; of a part that ran in both, every check of the committed base-preset result
(`results[/<base>]/<claim>.json` of the repository) that the run did not produce is skipped (e.g.
fewer test lengths). Without a readable committed base result, a skipped part is listed with name
null (all its checks). Files written before these keys existed read as base_preset = preset,
changed = {}, skipped = [].

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

The verdict (`verdict`): "fail" when a check failed or no check is evidence; otherwise "partial"
when any check was skipped (a custom run that dropped checks never reads as a plain pass; the CLI
exits 1 for it) and "pass" when nothing was skipped. Check names are unique within a result.

`why` cites a paper (author year, section, equation, figure) or a file of this repository.
Other tools (the report, the README table, CI) read these keys: keep them stable, and bump
SCHEMA_VERSION when they change. `read_result` refuses, as one SandboxError line naming the file,
every file that is not a well-formed result: unreadable bytes, non-UTF-8 text, invalid or truncated
JSON (bare NaN/Infinity included), another schema, missing keys, fields of the wrong type, repeated
check names, or a verdict its checks contradict.
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

from theory.engine.files import file_mode, temp_prefix
from theory.errors import SandboxError

SCHEMA_VERSION = 2
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


VERDICTS = ("pass", "fail", "partial")


def _verdict(kinds: Sequence[str], passed: Sequence[bool], n_skipped: int) -> str:
    if not any(k != "sanity" for k in kinds) or not all(passed):
        return "fail"
    return "partial" if n_skipped else "pass"


def verdict(checks: Sequence[Check], skipped: Sequence = ()) -> str:
    """"fail" when a check failed or none is evidence (not `sanity`); else "partial" when checks were
    skipped, "pass" when none was."""
    return _verdict([c.kind for c in checks], [c.passed for c in checks], len(skipped))


def verdict_of(checks: Sequence[dict], skipped: Sequence = ()) -> str:
    """`verdict` over checks (and skipped entries) read from a result file."""
    return _verdict([c["kind"] for c in checks], [c["passed"] for c in checks], len(skipped))


def require_unique_names(names: Sequence[str]) -> None:
    """Raise ValueError if a check name repeats (a claim bug: tests and reports key on names)."""
    repeated = sorted({n for n in names if list(names).count(n) > 1})
    if repeated:
        raise ValueError(f"check names repeat within one result: {repeated}")


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


def canonical_json(x: Any) -> str:
    """`x` as compact JSON with sorted keys: the same text for the same values on every machine."""
    return json.dumps(_jsonable(x), sort_keys=True, separators=(",", ":"), allow_nan=False)


def stage_text(path: Path, text: str) -> Path:
    """Write `text` to a new temporary file beside `path` (mode from the umask); return its path.

    The caller renames it over `path` with `os.replace` once every output is staged. The folder
    must exist; on any exception (or Ctrl-C) the temporary file is removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, file_mode())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file in the same folder, then rename it over `path`."""
    tmp = stage_text(path, text)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def json_text(payload: Any) -> str:
    """The text of a result file: indented JSON, non-finite floats as strings, a final newline."""
    return json.dumps(_jsonable(payload), indent=1, allow_nan=False) + "\n"


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write JSON to a temporary file in the same folder, then rename over `path`."""
    path = Path(path)
    text = json_text(payload)                   # a value JSON cannot hold fails before any file exists
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)


# --- reading ----------------------------------------------------------------------------------
PRESET_NAMES = ("quick", "full", "custom")
CHECK_FIELDS = ("name", "label", "kind", "op", "predicted", "bound", "measured", "metric", "error",
                "tolerance", "slack", "passed", "why", "part")
_NONFINITE = ("inf", "-inf", "nan")   # how `as_json` stores non-finite floats


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x, nonfinite: bool = False) -> bool:
    return (isinstance(x, (int, float)) and not isinstance(x, bool)) or (nonfinite and x in _NONFINITE)


def _short(x) -> str:
    text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_problem(i: int, c) -> str | None:
    """What is wrong with check number i of a result file (None: nothing)."""
    if not isinstance(c, dict):
        return f"checks[{i}] is not an object"
    missing = [k for k in CHECK_FIELDS if k not in c]
    if missing:
        return f"checks[{i}] lacks keys {missing}"
    name = c["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        return f"checks[{i}].name {_short(name)} is not a snake_case id"
    for key in ("label", "why", "metric", "part"):
        if not isinstance(c[key], str):
            return f"check {name}: {key} is not text"
    if c["kind"] not in KINDS:
        return f"check {name}: kind {_short(c['kind'])} not in {KINDS}"
    if c["op"] not in OPS:
        return f"check {name}: op {_short(c['op'])} not in {OPS}"
    if not isinstance(c["passed"], bool):
        return f"check {name}: passed is not true/false"
    if not _is_number(c["slack"], nonfinite=True):
        return f"check {name}: slack {_short(c['slack'])} is not a number"
    for key in ("bound", "error", "tolerance"):
        if c[key] is not None and not _is_number(c[key], nonfinite=True):
            return f"check {name}: {key} {_short(c[key])} is not a number"
    slack = float(c["slack"])
    if (slack >= 0) != c["passed"]:
        return f"check {name}: passed={c['passed']} contradicts slack {c['slack']}"
    return None


def _skipped_problem(i: int, s) -> str | None:
    if not isinstance(s, dict) or set(s) != {"name", "part", "reason"}:
        return f"skipped[{i}] is not an object with keys name, part, reason"
    if not (s["name"] is None or (isinstance(s["name"], str) and _NAME.match(s["name"]))):
        return f"skipped[{i}].name {_short(s['name'])} is not a check name or null"
    if not isinstance(s["part"], str) or not isinstance(s["reason"], str):
        return f"skipped[{i}]: part and reason must be text"
    return None


# key -> (test, what it must be); the optional keys are checked when present
_FIELDS = {
    "claim": (lambda v: isinstance(v, str) and bool(_NAME.match(v)), "a snake_case claim name"),
    "statement": (lambda v: isinstance(v, str), "text"),
    "paper": (lambda v: isinstance(v, str), "text"),
    "preset": (lambda v: v in PRESET_NAMES, f"one of {PRESET_NAMES}"),
    "precision": (lambda v: v in ("float32", "float64"), "float32 or float64"),
    "seed": (lambda v: _is_int(v) and 0 <= v < 2 ** 31, "an integer in [0, 2^31)"),
    "seeds": (lambda v: _is_int(v) and v >= 1, "a positive integer"),
    "verdict": (lambda v: v in VERDICTS, f"one of {VERDICTS}"),
    "checks": (lambda v: isinstance(v, list), "a list"),
    "config": (lambda v: isinstance(v, dict), "an object"),
    "overrides": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of text"),
    "versions": (lambda v: isinstance(v, dict), "an object"),
    "git": (lambda v: isinstance(v, dict), "an object"),
    "wall_seconds": (lambda v: _is_number(v) and v >= 0, "a non-negative number"),
    "streams": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of text"),
    "figure": (lambda v: isinstance(v, str) and bool(v), "a path"),
    "data": (lambda v: isinstance(v, dict), "an object"),
    "base_preset": (lambda v: v in ("quick", "full"), "quick or full"),
    "changed": (lambda v: isinstance(v, dict) and all(isinstance(x, list) and len(x) == 2 for x in v.values()),
                "an object of [preset value, run value] pairs"),
    "skipped": (lambda v: isinstance(v, list), "a list"),
    "part_seconds": (lambda v: isinstance(v, dict) and all(_is_number(x) and x >= 0 for x in v.values()),
                     "an object of non-negative seconds per part"),
}
OPTIONAL_KEYS = ("base_preset", "changed", "skipped", "part_seconds")
REQUIRED_KEYS = ("schema",) + tuple(k for k in _FIELDS if k not in OPTIONAL_KEYS)


def _reject_constant(name: str):
    raise ValueError(f"bare {name} is not JSON (this sandbox writes non-finite numbers as strings)")


def result_problem(payload: Any) -> str | None:
    """What makes `payload` not a well-formed result (None: nothing)."""
    if not isinstance(payload, dict):
        return "does not hold a JSON object"
    if type(payload.get("schema")) is not int or payload["schema"] != SCHEMA_VERSION:
        return (f"has schema {_short(payload.get('schema'))}, this sandbox reads {SCHEMA_VERSION}: "
                "run the claim again")
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        return f"lacks keys {missing}"
    for key, (ok, what) in _FIELDS.items():
        if key in payload and not ok(payload[key]):
            return f"field {key} is {_short(payload[key])}, expected {what}"
    for i, c in enumerate(payload["checks"]):
        if (problem := _check_problem(i, c)) is not None:
            return problem
    for i, s in enumerate(payload.get("skipped", [])):
        if (problem := _skipped_problem(i, s)) is not None:
            return problem
    try:
        require_unique_names([c["name"] for c in payload["checks"]])
    except ValueError as e:
        return str(e)
    expected = verdict_of(payload["checks"], payload.get("skipped", []))
    if payload["verdict"] != expected:
        return f"verdict {payload['verdict']!r} contradicts its checks ({expected})"
    return None


def read_result(path: Path, claim: str | None = None) -> dict:
    """Read and validate a result file (of `claim`, when given); every defect is one SandboxError line.

    Files written before `base_preset`, `changed` and `skipped` existed get their defaults."""
    path = Path(path)
    if not path.is_file():
        raise SandboxError(f"no results file at {path}: run `sandbox run <claim>` first")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise SandboxError(f"results file {path} cannot be read: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SandboxError(f"results file {path} is not UTF-8 text") from None
    try:
        payload = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise SandboxError(f"results file {path} is not valid JSON ({e})") from None
    except (ValueError, RecursionError) as e:
        raise SandboxError(f"results file {path} is not valid JSON ({type(e).__name__}: "
                           f"{str(e).splitlines()[0] if str(e) else 'nested too deeply'})") from None
    problem = result_problem(payload)
    if problem is None and claim is not None and payload["claim"] != claim:
        problem = f"holds claim {payload['claim']!r}, not {claim!r}"
    if problem is not None:
        raise SandboxError(f"results file {path}: {problem}".replace("\n", " "))
    payload.setdefault("base_preset", payload["preset"] if payload["preset"] != "custom" else "quick")
    payload.setdefault("changed", {})
    payload.setdefault("skipped", [])
    return payload
