"""Claim configs: frozen dataclasses with `quick()`/`full()` presets and typed `--set` overrides."""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Sequence

from theory.errors import SandboxError


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


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
        parts = [p for p in text.strip("()[] ").split(",") if p.strip()]
        elem = args[0] if args else str
        return tuple(_parse(name, p.strip(), elem) for p in parts)
    try:
        if typ is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if typ is int:
            return int(text)
        if typ is float:
            return float(text)
        if typ is str:
            return text
    except ValueError:
        pass
    else:
        raise SandboxError(f"--set {name}: unsupported field type {typ}")
    raise SandboxError(f"--set {name}={text}: expected a value of type {getattr(typ, '__name__', typ)}")


def apply_overrides(cfg: Any, assignments: Sequence[str]) -> Any:
    """Return `cfg` with `FIELD=VALUE` assignments applied, each parsed to the field's type.

    An unknown field, a missing '=', or a value of the wrong type raises SandboxError naming
    the field and listing the valid ones.
    """
    types_ = _field_types(type(cfg))
    changes: dict[str, Any] = {}
    for item in assignments:
        if "=" not in item:
            raise SandboxError(f"--set expects FIELD=VALUE, got {item!r}")
        name, text = item.split("=", 1)
        name = name.strip()
        if name not in types_:
            raise SandboxError(f"--set {name}: unknown field of {type(cfg).__name__}; valid fields: "
                               + ", ".join(sorted(types_)))
        changes[name] = _parse(name, text.strip(), types_[name])
    return dataclasses.replace(cfg, **changes)


def require_positive(cfg: Any, *names: str) -> None:
    """Raise SandboxError if any named field is not > 0."""
    for n in names:
        v = getattr(cfg, n)
        values = v if isinstance(v, tuple) else (v,)
        if any(x is None or x <= 0 for x in values):
            raise SandboxError(f"{n} must be positive, got {v!r}")


def describe(cfg: Any) -> dict:
    """The config as a plain dict for the result file."""
    return dataclasses.asdict(cfg)


def from_dict(cls: type, values: dict) -> Any:
    """Rebuild a config from a result file's `config` (JSON lists back to tuples)."""
    types_ = _field_types(cls)
    unknown = set(values) - set(types_)
    if unknown:
        raise SandboxError(f"{cls.__name__} has no fields {sorted(unknown)}")
    fixed = {k: tuple(v) if isinstance(v, list) and typing.get_origin(types_[k]) is tuple else v
             for k, v in values.items()}
    return cls(**fixed)
