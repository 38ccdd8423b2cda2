"""Run a claim end to end and write its result file and figure atomically; build the claims table."""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Sequence

from theory import claims, config as config_lib
from theory.errors import SandboxError
from theory.precision import precision
from theory.results import (Check, git_revision, package_versions, read_result, verdict,
                            write_json_atomic)

REPO = Path(__file__).resolve().parent.parent
PRESETS = ("quick", "full")


def output_paths(name: str, out: Path | None) -> tuple[Path, Path, Path]:
    """(results json, figure png, figure svg) under `out` (default: the repository)."""
    root = Path(out) if out is not None else REPO
    return (root / "results" / f"{name}.json", root / "figures" / f"{name}.png",
            root / "figures" / f"{name}.svg")


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
    """Train, measure, compare; write results/<name>.json and figures/<name>.{png,svg}.

    Nothing is written unless every step succeeds: the figure and JSON are rendered to temporary
    files and renamed into place at the end.
    """
    if seeds is not None and seeds <= 0:
        raise SandboxError(f"--seeds must be positive, got {seeds}")
    if seed < 0:
        raise SandboxError(f"--seed must be non-negative, got {seed}")
    module, cfg = build_config(name, preset, overrides)
    json_path, png_path, svg_path = output_paths(name, out)
    ensure_writable([json_path, png_path])
    n_seeds = seeds if seeds is not None else getattr(cfg, "seeds", 1)

    start = time.perf_counter()
    with precision(module.PRECISION):
        checks, data = module.measure(cfg, seed=seed, seeds=n_seeds,
                                      progress=name if progress else None)
    wall = time.perf_counter() - start
    checks = list(checks)
    if not all(isinstance(c, Check) for c in checks):
        raise TypeError(f"{name}.measure must return Check objects")
    result = {
        "schema": 1, "claim": name, "statement": claims.get(name).statement,
        "paper": claims.get(name).paper, "preset": preset, "precision": module.PRECISION,
        "seed": seed, "seeds": n_seeds, "verdict": verdict(checks),
        "checks": [c.to_json() for c in checks], "config": config_lib.describe(cfg),
        "overrides": list(overrides), "versions": package_versions(), "git": git_revision(),
        "wall_seconds": round(wall, 2),
        "figure": os.path.relpath(png_path, json_path.parent.parent), "data": data,
    }
    # round-trip through JSON so the figure is drawn from exactly what the file will hold
    result = json.loads(json.dumps(_to_json(result)))
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


def _to_json(result: dict) -> dict:
    from theory.results import _jsonable
    return _jsonable(result)


def _render(module, result: dict, targets: list[Path]) -> list[Path]:
    from theory.plotting import render_atomic
    return render_atomic(module.plot(result), targets)


def replot(name: str, out: Path | None = None) -> Path:
    """Redraw figures/<name>.png from results/<name>.json without training."""
    json_path, png_path, svg_path = output_paths(name, out)
    result = read_result(json_path)
    temps = _render(claims.load(name), result, [png_path, svg_path])
    for tmp, final in zip(temps, [png_path, svg_path]):
        os.replace(tmp, final)
    return png_path


# --- the claims table ----------------------------------------------------------------------
def _fmt(x) -> str:
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, float)):
        x = float(x)
        if x == 0:
            return "0"
        if abs(x) >= 1e4 or abs(x) < 1e-3:
            return f"{x:.2e}"
        return f"{x:.4g}"
    if isinstance(x, list):
        return "[" + ", ".join(_fmt(v) for v in x[:6]) + (", …" if len(x) > 6 else "") + "]"
    return str(x)


def report(out: Path | None = None, names: Sequence[str] | None = None) -> str:
    """The claims table (Markdown) built from the result files alone.

    One summary row per claim, then one row per check. A missing result file is a SandboxError.
    """
    rows = ["| claim | paper | verdict | checks passed | preset | seeds | wall (s) | figure |",
            "|---|---|---|---|---|---|---|---|"]
    total = 0.0
    detail = ["| claim | check | predicted | measured | metric | error | tolerance | pass | why this tolerance |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name in names or claims.names():
        json_path, png_path, _ = output_paths(name, out)
        r = read_result(json_path)
        n_pass = sum(c["passed"] for c in r["checks"])
        total += float(r["wall_seconds"])
        rows.append(f"| `{name}` | {r.get('paper', '')} | **{r['verdict']}** | {n_pass}/{len(r['checks'])}"
                    f" | {r['preset']} | {r['seeds']} | {r['wall_seconds']:.0f} | [{name}.png]({r['figure']}) |")
        for c in r["checks"]:
            detail.append(f"| `{name}` | {c['name']} | {_fmt(c['predicted'])} | {_fmt(c['measured'])} | "
                          f"{c['metric']} | {_fmt(c['error'])} | {_fmt(c['tolerance'])} | "
                          f"{'yes' if c['passed'] else '**no**'} | {c['why']} |")
    presets = sorted({read_result(output_paths(n, out)[0])["preset"] for n in names or claims.names()})
    summary = (f"\nTotal measured wall time of these runs: {total / 60:.1f} min "
               f"(preset: {', '.join(presets)}; the figures in `figures/` come from the same runs).\n")
    return "\n".join(rows) + "\n" + summary + "\n" + "\n".join(detail) + "\n"


README_START = "<!-- claims-table:start (generated by `sandbox report --readme`; do not edit) -->"
README_END = "<!-- claims-table:end -->"


def update_readme(table: str, readme: Path = REPO / "README.md") -> None:
    """Replace the generated block between the README markers with `table`."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise SandboxError(f"{readme} has no claims-table markers")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    new = head + README_START + "\n" + table + README_END + tail
    fd, tmp = tempfile.mkstemp(prefix=".README.", dir=readme.parent)
    with os.fdopen(fd, "w") as f:
        f.write(new)
    os.replace(tmp, readme)


def readme_table(readme: Path = REPO / "README.md") -> str:
    """The generated block currently in the README (for the staleness test)."""
    text = readme.read_text()
    return text.split(README_START, 1)[1].split(README_END, 1)[0].lstrip("\n")
