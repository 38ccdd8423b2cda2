"""Test-wide JAX settings: 8 host CPU devices, strict dtype promotion, rank promotion raises.

The device count must be set before JAX initialises its backend, so it sits above `import jax`.
x64 is NOT switched on globally: claims and tests that need float64 enter
`theory.engine.precision.precision("float64")`, which scopes the switch (tested in test_engine.py).
"""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
