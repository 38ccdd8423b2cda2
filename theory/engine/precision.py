"""Scoped floating-point precision.

JAX's x64 switch is process-global; `jax.enable_x64(flag)` is a context manager that sets it for the
enclosed block only (jit caches key on it, so float32 and float64 traces never mix). Each claim
declares `PRECISION = "float32" | "float64"` and the runner enters `precision(...)` around it, so one
`sandbox reproduce` process runs float32 and float64 claims in turn without leaking the setting.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import jax

PRECISIONS = ("float32", "float64")


@contextlib.contextmanager
def precision(name: str) -> Iterator[None]:
    """Run the block in float32 or float64 (`jax.enable_x64` scoped to the block)."""
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}; expected one of {PRECISIONS}")
    with jax.enable_x64(name == "float64"):
        yield


def current() -> str:
    """The precision in force: 'float64' when x64 is enabled, else 'float32'."""
    return "float64" if jax.config.jax_enable_x64 else "float32"
