"""Claim configs: frozen dataclasses with `quick()`/`full()` presets, typed `--set` overrides, validation.

    apply_overrides(cfg, ["d=6", "lam=(1,2)"])   parse each value by the field's type (strict: a
                                                 malformed tuple, NaN, inf, a duplicated field, a
                                                 tolerance field are refused)
    check_fields(cfg)                            the checks every claim shares, before its validate():
                                                 floats finite, ints inside int32 (JAX sees them),
                                                 tuples non-empty unless the class lists the field in
                                                 MAY_BE_EMPTY, text non-empty
    validate(cfg)                                check_fields, then the claim's own cfg.validate()
    require_memory(cfg, terms)                   refuse a config whose largest allocation (a rough
                                                 per-claim estimate) exceeds this machine's memory
    fingerprint(cfg)                             sha256 hex of the canonical JSON of the config

Tolerances and judge thresholds belong to the claim, not to the command line: a Config lists them
in a class-level tuple `TOLERANCES` (or marks a field with `metadata={"tolerance": True}`), and
`--set` refuses them. Every refusal is one SandboxError line naming the field.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
import types
import typing
from typing import Any, Sequence

from theory.errors import SandboxError
from theory.harness.results import canonical_json

INT32_MAX = 2 ** 31 - 1            # JAX's default integer: a larger Python int overflows when traced
GIB = 2 ** 30
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_NONFINITE = re.compile(r"[+-]?(nan|inf|infinity)", re.IGNORECASE)


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def tolerance_fields(cls: type) -> tuple[str, ...]:
    """The fields of a Config that are tolerances or judge thresholds (not settable by --set)."""
    marked = tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("tolerance"))
    return tuple(dict.fromkeys(tuple(getattr(cls, "TOLERANCES", ())) + marked))


def _type_name(typ: Any) -> str:
    return getattr(typ, "__name__", str(typ))


def _scalar(name: str, text: str, typ: Any) -> Any:
    """One scalar of type bool, int, float or str from its --set text."""
    if typ is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
    elif typ is int:
        if _INT.fullmatch(text):
            value = int(text)
            if abs(value) > INT32_MAX:
                raise SandboxError(f"--set {name}={text}: {name} must lie within +-{INT32_MAX} (int32)")
            return value
    elif typ is float:
        if _NONFINITE.fullmatch(text):
            raise SandboxError(f"--set {name}={text}: {name} must be a finite number")
        if _FLOAT.fullmatch(text):
            value = float(text)
            if not math.isfinite(value):
                raise SandboxError(f"--set {name}={text}: {name} must be a finite number (overflows float)")
            return value
    elif typ is str:
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            text = text[1:-1]
        if text:
            return text
        raise SandboxError(f"--set {name}: {name} must not be empty")
    else:
        raise SandboxError(f"--set {name}: unsupported field type {typ}")
    raise SandboxError(f"--set {name}={text}: expected a value of type {_type_name(typ)}")


def _tuple_items(name: str, text: str) -> list[str]:
    """The element texts of a tuple: `a,b`, `(a,b)`, `[a,b]`, `(a,)`; `()`, `[]` or `` is empty.

    Refused: unbalanced or nested brackets, an empty element (`a,,b`, `,a`)."""
    body = text.strip()
    if body[:1] in "([" and body:
        close = ")" if body[0] == "(" else "]"
        if not body.endswith(close):
            raise SandboxError(f"--set {name}={text}: unbalanced brackets")
        body = body[1:-1]
    if any(ch in body for ch in "()[]"):
        raise SandboxError(f"--set {name}={text}: brackets must enclose the whole tuple (no nesting)")
    if not body.strip():
        return []
    items = [p.strip() for p in body.split(",")]
    if len(items) > 1 and items[-1] == "":
        items = items[:-1]                              # one trailing comma: Python's (a,)
    if any(p == "" for p in items):
        raise SandboxError(f"--set {name}={text}: empty element in the tuple")
    return items


def _parse(name: str, text: str, typ: Any) -> Any:
    """Parse `text` as `typ` (bool, int, float, str, tuples of those, Optional of those)."""
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null") and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _parse(name, text, inner[0])
    if origin is tuple:
        items = _tuple_items(name, text)
        if not args or (len(args) == 2 and args[1] is Ellipsis):
            elem = args[0] if args else str
            return tuple(_scalar(name, p, elem) for p in items)
        if len(items) != len(args):
            raise SandboxError(f"--set {name}={text}: expected {len(args)} values, got {len(items)}")
        return tuple(_scalar(name, p, t) for p, t in zip(items, args))
    return _scalar(name, text, typ)


def parse_assignments(cfg: Any, assignments: Sequence[str]) -> dict[str, Any]:
    """{field: parsed value} of `FIELD=VALUE` assignments, refusing unknown, duplicated and tolerance fields."""
    cls = type(cfg)
    types_ = _field_types(cls)
    tolerances = tolerance_fields(cls)
    changes: dict[str, Any] = {}
    for item in assignments:
        if "=" not in item:
            raise SandboxError(f"--set expects FIELD=VALUE, got {item!r}")
        name, text = item.split("=", 1)
        name = name.strip()
        if name not in types_:
            raise SandboxError(f"--set {name}: unknown field of {cls.__name__}; valid fields: "
                               + ", ".join(sorted(types_)))
        if name in changes:
            raise SandboxError(f"--set {name} given twice; set each field once")
        if name in tolerances:
            raise SandboxError(f"--set {name}: {name} is a tolerance of the claim's judge, not settable "
                               "from the command line (tolerances belong to the claim)")
        changes[name] = _parse(name, text.strip(), types_[name])
    return changes


def apply_overrides(cfg: Any, assignments: Sequence[str]) -> Any:
    """Return `cfg` with `FIELD=VALUE` assignments applied, each parsed to the field's type.

    An unknown, duplicated or tolerance field, a missing '=', or a value of the wrong type raises
    SandboxError naming the field (an unknown one lists the valid ones).
    """
    return dataclasses.replace(cfg, **parse_assignments(cfg, assignments))


# --- validation -------------------------------------------------------------------------------
def _scalar_problem(v: Any) -> str | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return None if abs(v) <= INT32_MAX else f"must lie within +-{INT32_MAX} (int32), got {v}"
    if isinstance(v, float):
        return None if math.isfinite(v) else f"must be finite, got {v}"
    if isinstance(v, str):
        return None if v else "must not be empty"
    return None


def check_fields(cfg: Any) -> None:
    """The checks every claim shares: finite floats, int32 ints, non-empty tuples and text.

    A tuple may be empty only if the class lists the field in `MAY_BE_EMPTY` (an empty value that
    leaves a part out, e.g. no extra depths)."""
    may_be_empty = set(getattr(type(cfg), "MAY_BE_EMPTY", ()))
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if isinstance(v, tuple):
            if not v and f.name not in may_be_empty:
                raise SandboxError(f"{f.name} must hold at least one value, got ()")
            problems = [p for x in v if (p := _scalar_problem(x))]
        else:
            problems = [p] if (p := _scalar_problem(v)) else []
        if problems:
            raise SandboxError(f"{f.name} {problems[0]}")


def validate(cfg: Any) -> None:
    """`check_fields`, then the claim's own `validate()`."""
    check_fields(cfg)
    cfg.validate()


def require_positive(cfg: Any, *names: str) -> None:
    """Raise SandboxError if any named field is not > 0 (finite)."""
    for n in names:
        v = getattr(cfg, n)
        values = v if isinstance(v, tuple) else (v,)
        if any(x is None or isinstance(x, bool) or not x > 0 or not math.isfinite(x) for x in values):
            raise SandboxError(f"{n} must be positive, got {v!r}")


def require_length(cfg: Any, name: str, at_least: int = 1, at_most: int | None = None,
                   why: str = "") -> None:
    """Raise SandboxError unless tuple field `name` has between at_least and at_most values."""
    n = len(getattr(cfg, name))
    if n < at_least or (at_most is not None and n > at_most):
        want = (f"{at_least}" if at_most == at_least else
                f"at least {at_least}" if at_most is None else f"{at_least} to {at_most}")
        raise SandboxError(f"{name} needs {want} values, got {n}{f' ({why})' if why else ''}")


def require_increasing(cfg: Any, name: str, strict: bool = True) -> None:
    """Raise SandboxError unless tuple field `name` is (strictly) increasing."""
    v = getattr(cfg, name)
    ok = all(a < b if strict else a <= b for a, b in zip(v, v[1:]))
    if not ok:
        raise SandboxError(f"{name} must be {'strictly ' if strict else ''}increasing, got {v}")


def physical_memory() -> int:
    """Bytes of physical memory on this machine (os.sysconf); 0 where the platform does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def require_memory(cfg: Any, terms: Sequence[tuple[Sequence[str], float, str]]) -> None:
    """Refuse `cfg` when its largest estimated allocation exceeds this machine's physical memory.

    `terms` are (fields, bytes, formula): a rough, documented estimate of one allocation of the
    claim and the config fields that drive it. The message names the driving fields that differ
    from the class defaults (all of them when none does):
    "d = 100000000 needs ~3.7e+04 GiB (batch x (n_context+1) x (d+1) x 4 B x 8); this machine has 23.5 GiB".
    """
    total = physical_memory()
    if not total or not terms:
        return
    fields, need, formula = max(terms, key=lambda t: t[1])
    if need <= total:
        return
    defaults = {f.name: f.default for f in dataclasses.fields(cfg)}
    moved = [f for f in fields if getattr(cfg, f) != defaults.get(f)] or list(fields)
    named = ", ".join(f"{f} = {getattr(cfg, f)}" for f in moved)
    verb = "needs" if len(moved) == 1 else "need"
    raise SandboxError(f"{named} {verb} ~{need / GIB:.3g} GiB ({formula}); this machine has "
                       f"{total / GIB:.3g} GiB")


# --- identity, description ----------------------------------------------------------------------
def describe(cfg: Any) -> dict:
    """The config as a plain dict for the result file."""
    return dataclasses.asdict(cfg)


def fingerprint(cfg: Any) -> str:
    """sha256 hex digest of the canonical JSON of the config (sorted keys, tuples as lists)."""
    return hashlib.sha256(canonical_json(describe(cfg)).encode()).hexdigest()


def changes(base: Any, cfg: Any) -> dict[str, list]:
    """{field: [base value, cfg value]} for every field where `cfg` differs from `base` (JSON values)."""
    a, b = describe(base), describe(cfg)
    return {k: [_plain(a[k]), _plain(b[k])] for k in a if a[k] != b[k]}


def _plain(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def from_dict(cls: type, values: dict) -> Any:
    """Rebuild a config from a result file's `config` (JSON lists back to tuples)."""
    types_ = _field_types(cls)
    unknown = set(values) - set(types_)
    if unknown:
        raise SandboxError(f"{cls.__name__} has no fields {sorted(unknown)}")
    fixed = {k: tuple(v) if isinstance(v, list) and typing.get_origin(types_[k]) is tuple else v
             for k, v in values.items()}
    return cls(**fixed)


@dataclasses.dataclass(frozen=True)
class Knob:
    """A config field worth exploring (`sandbox explore`, theory/harness/explore.py): its default
    grid, what theory expects along it, the paper's own setting (marked on the figure; None marks
    the preset's value), the part it matters to (None: the whole claim) and, for a tuple-valued field,
which entry the figure's axis shows ("first" / "last"). A claim lists its knobs
    as `KNOBS` in its experiment module, the main knob first."""
    field: str
    values: tuple
    note: str = ""
    paper: Any = None
    part: str | None = None
    axis: str | None = None      # tuple-valued field: plot against its "first" or "last" entry

