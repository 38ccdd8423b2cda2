"""JAX's persistent compilation cache, on by default for the CLI and the tests.

A compiled XLA program is stored on disk keyed by its HLO, the JAX/jaxlib versions, the backend
and the compile options, so a second `sandbox run`, `reproduce` or test session reuses the
programs of the first instead of compiling them again (JAX guarantees a cache hit is the same
executable). Every program is cached, however small or fast to compile (the inner test loop is
dominated by many small compilations).

    SANDBOX_COMPILE_CACHE=DIR     where (default: $XDG_CACHE_HOME or ~/.cache, then theory-sandbox/jax)
    SANDBOX_NO_COMPILE_CACHE=1    switch it off
"""
from __future__ import annotations

import os
from pathlib import Path

import jax


def cache_dir() -> Path | None:
    """The cache folder in force from the environment, or None when switched off."""
    if os.environ.get("SANDBOX_NO_COMPILE_CACHE", "").strip() not in ("", "0"):
        return None
    if os.environ.get("SANDBOX_COMPILE_CACHE"):
        return Path(os.environ["SANDBOX_COMPILE_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "theory-sandbox" / "jax"


def enable_persistent_cache() -> Path | None:
    """Point JAX's persistent compilation cache at `cache_dir()` (no-op when switched off or
    when the folder cannot be created: compiling again is always correct)."""
    path = cache_dir()
    if path is None:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return path


def release_compiled() -> None:
    """Drop every compiled program this process holds (`jax.clear_caches()`, then a GC pass).

    On CPU each live XLA executable keeps its JIT code in a few memory maps (measured: ~3 for a
    tiny op, ~17 for a scanned training step). Linux caps maps per process at `vm.max_map_count`
    (65530 by default) and XLA's compiler segfaults once a new program cannot be mapped, so a
    process that runs many claims (`sandbox reproduce`, `sandbox explore`, a whole test session)
    releases its programs after each run. A later run that needs one again loads it from the
    persistent cache above instead of compiling it."""
    import gc
    jax.clear_caches()
    gc.collect()
