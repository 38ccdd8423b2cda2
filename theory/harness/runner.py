"""Run a claim end to end (predict, measure, judge every part) and write its result file and figure atomically."""
from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path
from typing import Sequence

from theory.engine.keys import Keys
from theory.engine.precision import precision
from theory.errors import SandboxError
from theory.harness import config as config_lib
from theory.harness import registry as claims
from theory.harness.parts import run_parts
from theory.harness.results import (
    SCHEMA_VERSION,
    as_json,
    git_revision,
    package_versions,
    read_result,
    verdict,
    write_json_atomic,
)

REPO = Path(__file__).resolve().parents[2]
PRESETS = ("quick", "full")


def _root(out: Path | None) -> Path:
    return Path(out) if out is not None else REPO


def output_paths(name: str, out: Path | None = None, preset: str = "quick") -> tuple[Path, Path, Path]:
    """(results json, figure png, figure svg) under `out` (default: the repository).

    The quick preset (what `sandbox reproduce` and the tests run) writes results/<name>.json and
    figures/<name>.png|svg; any other preset writes results/<preset>/ and figures/<preset>/, so a
    full-preset run never overwrites the quick results and both can be committed side by side."""
    root = _root(out)
    sub = () if preset == "quick" else (preset,)
    return (root.joinpath("results", *sub, f"{name}.json"), root.joinpath("figures", *sub, f"{name}.png"),
            root.joinpath("figures", *sub, f"{name}.svg"))


def ensure_writable(paths: Sequence[Path]) -> None:
    """Fail early (before any training) if an output folder cannot be created or written."""
    for folder in {p.parent for p in paths}:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".probe.", dir=folder)
            os.close(fd)
            os.unlink(tmp)
        except OSError as e:
            raise SandboxError(f"cannot write to {folder}: {e.strerror or e}") from None


def build_config(name: str, preset: str, overrides: Sequence[str] = ()):
    """The claim's config at `preset` with `--set` overrides applied and validated."""
    if preset not in PRESETS:
        raise SandboxError(f"unknown preset {preset!r}; choose from {PRESETS}")
    module = claims.load(name)
    cfg = getattr(module.Config, preset)()
    cfg = config_lib.apply_overrides(cfg, overrides)
    cfg.validate()
    return module, cfg


def run_claim(name: str, preset: str = "quick", *, seed: int = 0, seeds: int | None = None,
              overrides: Sequence[str] = (), out: Path | None = None,
              progress: bool = False) -> dict:
    """Predict, measure and judge every part of claim `name`; write its result file and figure.

    `seeds` (the CLI's --seeds) sets the config's `seeds` field. Nothing is written unless every
    step succeeds: the figure and JSON are rendered to temporary files and renamed into place.
    """
    if seeds is not None and seeds <= 0:
        raise SandboxError(f"--seeds must be positive, got {seeds}")
    keys = Keys(seed)                       # validates the seed before any work
    module, cfg = build_config(name, preset, overrides)
    if seeds is not None:
        if not hasattr(cfg, "seeds"):
            raise SandboxError(f"{name} has no seeds field; --seeds does not apply")
        cfg = dataclasses.replace(cfg, seeds=seeds)
        cfg.validate()
    json_path, png_path, svg_path = output_paths(name, out, preset)
    ensure_writable([json_path, png_path])

    git = git_revision()          # the code that runs is the code at the start (edits may follow)
    start = time.perf_counter()
    with precision(module.PRECISION):
        checks, data = run_parts(module.PARTS, cfg, keys, progress=name if progress else None)
    wall = time.perf_counter() - start
    spec = claims.get(name)
    result = {
        "schema": SCHEMA_VERSION, "claim": name, "statement": spec.statement,
        "paper": spec.paper, "preset": preset, "precision": module.PRECISION,
        "seed": seed, "seeds": getattr(cfg, "seeds", 1), "verdict": verdict(checks),
        "checks": [c.to_json() for c in checks], "config": config_lib.describe(cfg),
        "overrides": list(overrides), "versions": package_versions(), "git": git,
        "wall_seconds": round(wall, 2), "streams": keys.streams(),
        "figure": os.path.relpath(png_path, _root(out)), "data": data,
    }
    # round-trip through JSON so the figure is drawn from exactly what the file will hold
    result = as_json(result)
    temps = _render(module, result, [png_path, svg_path])
    try:
        write_json_atomic(json_path, result)
    except BaseException:
        for t in temps:
            t.unlink(missing_ok=True)
        raise
    for tmp, final in zip(temps, [png_path, svg_path]):
        os.replace(tmp, final)
    return result


def _render(module, result: dict, targets: list[Path]) -> list[Path]:
    from theory.harness.plotting import render_atomic
    return render_atomic(module.plot(result), targets)


def replot(name: str, out: Path | None = None, preset: str = "quick") -> Path:
    """Redraw the figure of results(/<preset>)/<name>.json without training."""
    json_path, png_path, svg_path = output_paths(name, out, preset)
    result = read_result(json_path)
    temps = _render(claims.load(name), result, [png_path, svg_path])
    for tmp, final in zip(temps, [png_path, svg_path]):
        os.replace(tmp, final)
    return png_path


def available(out: Path | None = None, preset: str = "quick") -> list[str]:
    """The registered claims that have a result file at `preset`."""
    return [n for n in claims.names() if output_paths(n, out, preset)[0].is_file()]
