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

from theory.engine.cache import enable_persistent_cache  # noqa: E402
from theory.engine.precision import precision  # noqa: E402

enable_persistent_cache()          # theory/engine/cache.py: a second test session compiles little
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def f64():
    """Run the test body in float64 (scoped x64)."""
    with precision("float64"):
        yield
