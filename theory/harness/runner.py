"""Run a claim end to end and write its result file and figure atomically; build the claims table."""
from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path
from typing import Sequence

from theory.harness import registry as claims, config as config_lib
from theory.errors import SandboxError
from theory.engine.keys import Keys
from theory.engine.precision import precision
from theory.harness.parts import run_parts
from theory.harness.results import (SCHEMA_VERSION, as_json, git_revision, package_versions,
                                    read_result, verdict, write_json_atomic)

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


def report(out: Path | None = None, names: Sequence[str] | None = None, preset: str = "quick") -> str:
    """The claims table (Markdown) built from the result files alone.

    One summary row per claim, then one row per check, then any claim-specific tables (an experiment
    module's optional `report_markdown(result) -> str`, e.g. a task table). At the quick preset every
    registered claim must have a result (a missing file is a SandboxError); at another preset the
    claims that have one are reported, and none at all is a SandboxError.
    """
    if names is None:
        names = claims.names() if preset == "quick" else available(out, preset)
        if not names:
            raise SandboxError(f"no results files at preset {preset!r} under "
                               f"{output_paths('<claim>', out, preset)[0].parent}: run "
                               f"`sandbox run <claim> --{preset}` first")
    results = {name: read_result(output_paths(name, out, preset)[0]) for name in names}
    rows = ["| claim | paper | verdict | checks passed | preset | seeds | wall (s) | figure |",
            "|---|---|---|---|---|---|---|---|"]
    detail = ["| claim | check | predicted | measured | metric | error | tolerance | pass | why this tolerance |",
              "|---|---|---|---|---|---|---|---|---|"]
    extras = []
    for name, r in results.items():
        n_pass = sum(c["passed"] for c in r["checks"])
        rows.append(f"| `{name}` | {r.get('paper', '')} | **{r['verdict']}** | {n_pass}/{len(r['checks'])}"
                    f" | {r['preset']} | {r['seeds']} | {r['wall_seconds']:.0f} | "
                    f"[{Path(r['figure']).name}]({r['figure']}) |")
        for c in r["checks"]:
            detail.append(f"| `{name}` | {c['name']} | {_fmt(c['predicted'])} | {_fmt(c['measured'])} | "
                          f"{c['metric']} | {_fmt(c['error'])} | {_fmt(c['tolerance'])} | "
                          f"{'yes' if c['passed'] else '**no**'} | {c['why']} |")
        extra = getattr(claims.load(name), "report_markdown", None)
        if extra is not None and (md := extra(r)):
            extras.append(f"\n**`{name}`** ({r['preset']} preset)\n\n{md.rstrip()}\n")
    total = sum(float(r["wall_seconds"]) for r in results.values())
    presets = sorted({r["preset"] for r in results.values()})
    folder = "figures/" if preset == "quick" else f"figures/{preset}/"
    summary = (f"\nTotal measured wall time of these runs: {total / 60:.1f} min "
               f"(preset: {', '.join(presets)}; the figures in `{folder}` come from the same runs).\n")
    return "\n".join(rows) + "\n" + summary + "\n" + "\n".join(detail) + "\n" + "".join(extras)


def _markers(preset: str) -> tuple[str, str]:
    """The README comment lines that delimit the generated table of `preset`."""
    tag, flag = ("claims-table", "") if preset == "quick" else (f"{preset}-table", f" --{preset}")
    return (f"<!-- {tag}:start (generated by `sandbox report{flag} --readme`; do not edit) -->",
            f"<!-- {tag}:end -->")


def update_readme(table: str, readme: Path = REPO / "README.md", preset: str = "quick") -> None:
    """Replace the generated block between the README markers of `preset` with `table`."""
    start, end = _markers(preset)
    text = readme.read_text()
    if start not in text or end not in text:
        raise SandboxError(f"{readme} has no {preset}-preset table markers ({start})")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    new = head + start + "\n" + table + end + tail
    fd, tmp = tempfile.mkstemp(prefix=".README.", dir=readme.parent)
    with os.fdopen(fd, "w") as f:
        f.write(new)
    os.replace(tmp, readme)


def readme_table(readme: Path = REPO / "README.md", preset: str = "quick") -> str:
    """The generated block of `preset` currently in the README (for the staleness test)."""
    start, end = _markers(preset)
    text = readme.read_text()
    return text.split(start, 1)[1].split(end, 1)[0].lstrip("\n")
