"""Run a claim end to end (predict, measure, judge every part) and write its result file and figure atomically.

Presets and where their outputs go (under the repository, or `--out DIR`):

    quick    results/<claim>.json                 figures/<claim>.png|svg
    full     results/full/<claim>.json            figures/full/<claim>.png|svg
    custom   results/custom/<claim>-<hash>.json   figures/custom/<claim>-<hash>.png|svg

A run is `custom` when it has any `--set`, a `--seeds` other than the preset's, or a seed other
than 0: it is never written over (or mistaken for) a preset's result. <hash> is the first 12 hex
digits of sha256 of the canonical JSON of {claim, base preset, seed, full config}, so the same
custom run always lands in the same file. The result records `base_preset`, `changed` (field ->
[preset value, run value]) and `skipped` (the base preset's checks this run did not produce;
the rule is in `skipped_checks` and theory/harness/results.py).

Nothing is written unless every step succeeds: the JSON and both figures are staged as temporary
files (mode from the umask) and renamed into place together; on any failure (bad input found
late, a diverged part, Ctrl-C) the temporary files and the output folders this run created are
removed again.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from theory.engine import checkpoint, interrupt
from theory.engine.cache import release_compiled
from theory.engine.files import remove_stale_temps
from theory.engine.keys import Keys
from theory.engine.precision import precision
from theory.errors import SandboxError
from theory.harness import config as config_lib
from theory.harness import registry as claims
from theory.harness.parts import enabled_parts, run_parts
from theory.harness.results import (
    SCHEMA_VERSION,
    as_json,
    canonical_json,
    git_revision,
    json_text,
    package_versions,
    read_result,
    stage_text,
    verdict,
)

REPO = Path(__file__).resolve().parents[2]
PRESETS = ("quick", "full")
CUSTOM = "custom"
TAG_HEX = 12


def _root(out: Path | None) -> Path:
    return Path(out) if out is not None else REPO


def output_paths(name: str, out: Path | None = None, preset: str = "quick",
                 tag: str | None = None) -> tuple[Path, Path, Path]:
    """(results json, figure png, figure svg) under `out` (default: the repository).

    The quick preset (what `sandbox reproduce` and the tests run) writes results/<name>.json and
    figures/<name>.png|svg; any other preset writes results/<preset>/ and figures/<preset>/, so a
    full-preset run never overwrites the quick results and both can be committed side by side.
    A custom run (preset "custom") is named <name>-<tag> inside results/custom/ and figures/custom/."""
    root = _root(out)
    sub = () if preset == "quick" else (preset,)
    stem = name if tag is None else f"{name}-{tag}"
    return (root.joinpath("results", *sub, f"{stem}.json"), root.joinpath("figures", *sub, f"{stem}.png"),
            root.joinpath("figures", *sub, f"{stem}.svg"))


def custom_tag(name: str, base_preset: str, seed: int, cfg: Any) -> str:
    """The <hash> of a custom run: 12 hex digits of sha256 of canonical JSON (claim, base preset, seed, config)."""
    text = canonical_json({"claim": name, "base_preset": base_preset, "seed": seed,
                           "config": config_lib.describe(cfg)})
    return hashlib.sha256(text.encode()).hexdigest()[:TAG_HEX]


def checkpoint_folder(name: str, preset: str, seed: int, cfg: Any, out: Path | None) -> tuple[Path, dict]:
    """The checkpoint session of one run (theory/engine/checkpoint.py) and what it belongs to:
    `<root>/.checkpoints/<claim>-<preset>-<config fingerprint>-s<seed>/`, valid only for the same
    claim, preset, config, seed and code (a fingerprint of every .py file the run imports)."""
    fp = config_lib.fingerprint(cfg)[:TAG_HEX]
    meta = {"claim": name, "preset": preset, "seed": seed, "config": fp,
            "code": checkpoint.code_fingerprint(REPO)}
    return _root(out) / ".checkpoints" / f"{name}-{preset}-{fp}-s{seed}", meta


def ensure_writable(paths: Sequence[Path]) -> list[Path]:
    """Fail early (before any training) if an output folder cannot be created or written.

    Returns the folders this call created (outermost first), for `remove_created` on failure."""
    created: list[Path] = []
    try:
        for folder in sorted({Path(p).parent for p in paths}):
            missing = [f for f in [folder, *folder.parents] if not f.exists()][::-1]
            for f in missing:
                f.mkdir()
                created.append(f)
            probe = stage_text(folder / ".probe", "")
            probe.unlink()
    except OSError as e:
        remove_created(created)
        raise SandboxError(f"cannot write to {folder}: {e.strerror or e}") from None
    return created


def remove_created(folders: Sequence[Path]) -> None:
    """Remove the folders a failed run created, innermost first, where they are (still) empty."""
    for f in reversed(list(folders)):
        try:
            f.rmdir()
        except OSError:
            pass          # not empty (another writer) or already gone: leave it


def build_config(name: str, preset: str, overrides: Sequence[str] = (), seeds: int | None = None):
    """The claim's config at `preset` with `--set` overrides (and `--seeds`) applied and validated."""
    module, _, cfg = _configs(name, preset, overrides, seeds)
    return module, cfg


def _configs(name: str, preset: str, overrides: Sequence[str], seeds: int | None):
    """(module, base preset config, run config): every bad input refused before any work."""
    if preset not in PRESETS:
        raise SandboxError(f"unknown preset {preset!r}; choose from {PRESETS}")
    module = claims.load(name)
    base = getattr(module.Config, preset)()
    changes = config_lib.parse_assignments(base, overrides)
    if seeds is not None:
        if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds <= 0:
            raise SandboxError(f"--seeds must be positive, got {seeds}")
        if not hasattr(base, "seeds"):
            raise SandboxError(f"{name} has no seeds field; --seeds does not apply")
        if "seeds" in changes:
            raise SandboxError("--seeds and --set seeds=... both given; use one of them")
        changes["seeds"] = seeds
    cfg = dataclasses.replace(base, **changes)
    config_lib.validate(cfg)
    return module, base, cfg


def skipped_checks(name: str, module, base_preset: str, base_cfg: Any, cfg: Any, checks) -> list[dict]:
    """The checks of the base preset that this run did not produce.

    A part enabled for the base config but not for the run's is skipped whole; within a part that
    runs in both, a check of the committed base-preset result (read only if its config is today's
    base config) that the run lacks is skipped. Without such a result, a skipped part is one entry
    with name None (all of its checks)."""
    base_parts, run_parts_ = enabled_parts(module.PARTS, base_cfg), set(enabled_parts(module.PARTS, cfg))
    reference = _base_result(name, base_preset, base_cfg)
    produced = {c.name for c in checks}
    out = []
    for part in base_parts:
        known = [c["name"] for c in reference["checks"] if c["part"] == part] if reference else None
        if part not in run_parts_:
            reason = f"part {part} is disabled by this config"
            out += ([{"name": n, "part": part, "reason": reason} for n in known] if known
                    else [{"name": None, "part": part, "reason": reason}])
        elif known:
            out += [{"name": n, "part": part, "reason": f"not produced by this config (the {base_preset} "
                     "preset produces it)"} for n in known if n not in produced]
    return out


def _base_result(name: str, base_preset: str, base_cfg: Any) -> dict | None:
    """The repository's committed result of the base preset, if it exists and matches today's preset config."""
    try:
        r = read_result(output_paths(name, None, base_preset)[0], claim=name)
    except SandboxError:
        return None
    return r if r["config"] == as_json(config_lib.describe(base_cfg)) else None


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A validated run: the claim's module, its base preset config and the run config, and where it goes."""
    name: str
    preset: str                 # the base preset
    seed: int
    overrides: tuple[str, ...]
    module: Any
    base_cfg: Any
    cfg: Any
    custom: bool

    @property
    def run_preset(self) -> str:
        return CUSTOM if self.custom else self.preset

    @property
    def tag(self) -> str | None:
        return custom_tag(self.name, self.preset, self.seed, self.cfg) if self.custom else None

    def paths(self, out: Path | None) -> tuple[Path, Path, Path]:
        return output_paths(self.name, out, self.run_preset, self.tag)


def prepare(name: str, preset: str = "quick", *, seed: int = 0, seeds: int | None = None,
            overrides: Sequence[str] = ()) -> Prepared:
    """Validate a run (claim, preset, seed, --seeds, --set): every bad input refused before any work."""
    claims.get(name)
    Keys(seed)                              # validates the seed
    module, base_cfg, cfg = _configs(name, preset, overrides, seeds)
    custom = bool(overrides) or seed != 0 or (seeds is not None and seeds != getattr(base_cfg, "seeds", None))
    return Prepared(name, preset, seed, tuple(overrides), module, base_cfg, cfg, custom)


def execute(prep: Prepared, out: Path | None = None, progress: bool = False) -> tuple[dict, Path]:
    """Predict, measure and judge every part of a prepared run (checkpointed under `out`'s
    .checkpoints/); return (the result, not written, and its checkpoint folder: the caller clears
    it once the result is safe). An interrupted run keeps its checkpoint; any other failure drops it."""
    name, module, cfg = prep.name, prep.module, prep.cfg
    spec = claims.get(name)
    keys = Keys(prep.seed)
    png_path = prep.paths(out)[1]
    folder, meta = checkpoint_folder(name, prep.run_preset, prep.seed, cfg, out)
    try:
        git = git_revision()          # the code that runs is the code at the start (edits may follow)
        start = time.perf_counter()
        with checkpoint.session(folder, meta) as ck, precision(module.PRECISION):
            if ck.resumed and progress:
                done = ck.finished_parts()
                print(f"[{name}] resuming from {folder}" + (f" (finished parts: {', '.join(done)})" if done else ""),
                      file=sys.stderr, flush=True)
            part_seconds: dict = {}
            checks, data = run_parts(module.PARTS, cfg, keys, progress=name if progress else None,
                                     seconds=part_seconds)
            resumed = ck.resumed
        wall = time.perf_counter() - start
        skipped = skipped_checks(name, module, prep.preset, prep.base_cfg, cfg, checks) if prep.custom else []
        result = {
            "schema": SCHEMA_VERSION, "claim": name, "statement": spec.statement,
            "paper": spec.paper, "preset": prep.run_preset, "precision": module.PRECISION,
            "seed": prep.seed, "seeds": getattr(cfg, "seeds", 1), "verdict": verdict(checks, skipped),
            "checks": [c.to_json() for c in checks], "config": config_lib.describe(cfg),
            "overrides": list(prep.overrides), "base_preset": prep.preset,
            "changed": config_lib.changes(prep.base_cfg, cfg), "skipped": skipped,
            "versions": package_versions(), "git": git,
            "wall_seconds": round(wall, 2), "part_seconds": part_seconds, "resumed": resumed,
            "code": meta["code"], "streams": keys.streams(),
            "figure": os.path.relpath(png_path, _root(out)), "data": data,
        }
        # round-trip through JSON so the figure is drawn from exactly what the file will hold
        return as_json(result), folder
    except BaseException as e:
        if not isinstance(e, interrupt.Interrupted):      # only an interrupted run is resumed
            checkpoint.Session.discard(folder)
        raise
    finally:
        release_compiled()            # theory/engine/cache.py: a process running many claims stays mappable


def save(prep: Prepared, result: dict, out: Path | None = None) -> Path:
    """Write a computed result and its figure under `out` by the preset / custom naming rules."""
    json_path, png_path, svg_path = prep.paths(out)
    created = ensure_writable([json_path, png_path, svg_path])
    try:
        _write_outputs(prep.module, result, json_path, png_path, svg_path)
    except BaseException:
        remove_created(created)
        raise
    return json_path


def run_claim(name: str, preset: str = "quick", *, seed: int = 0, seeds: int | None = None,
              overrides: Sequence[str] = (), out: Path | None = None,
              progress: bool = False) -> dict:
    """Predict, measure and judge every part of claim `name`; write its result file and figure.

    `seeds` (the CLI's --seeds) sets the config's `seeds` field. Any override, a `seeds` other than
    the preset's or a seed other than 0 makes the run preset "custom" (see the module docstring).
    Nothing is written unless every step succeeds; the output folders are checked writable before
    any training.
    """
    prep = prepare(name, preset, seed=seed, seeds=seeds, overrides=overrides)
    json_path, png_path, svg_path = prep.paths(out)
    created = ensure_writable([json_path, png_path, svg_path])
    for folder_ in {json_path.parent, png_path.parent}:
        remove_stale_temps(folder_)         # what a killed run (SIGKILL) left behind
    folder = None
    try:
        result, folder = execute(prep, out, progress)
        _write_outputs(prep.module, result, json_path, png_path, svg_path)
    except BaseException as e:
        if folder is not None and not isinstance(e, interrupt.Interrupted):
            checkpoint.Session.discard(folder)
        remove_created(created)
        raise
    checkpoint.Session.discard(folder)
    return result


def _write_outputs(module, result: dict, json_path: Path, png_path: Path, svg_path: Path,
                   write_json: bool = True) -> None:
    """Stage the figure (and JSON) as temporary files, then rename them all into place."""
    from theory.harness.plotting import render_atomic
    temps: list[Path] = []
    try:
        temps += render_atomic(module.plot(result), [png_path, svg_path])
        if write_json:
            temps.append(stage_text(json_path, json_text(result)))
        finals = [png_path, svg_path] + ([json_path] if write_json else [])
        for tmp, final in zip(temps, finals):
            os.replace(tmp, final)
    finally:
        for t in temps:
            t.unlink(missing_ok=True)       # nothing left once renamed; everything on failure


def replot(name: str, out: Path | None = None, preset: str = "quick") -> Path:
    """Redraw the figure of results(/<preset>)/<name>.json without training."""
    claims.get(name)                        # an unknown claim is "unknown claim", not "no results file"
    json_path, png_path, svg_path = output_paths(name, out, preset)
    result = read_result(json_path, claim=name)
    _write_outputs(claims.load(name), result, json_path, png_path, svg_path, write_json=False)
    return png_path


def up_to_date(name: str, preset: str = "quick", out: Path | None = None) -> dict | None:
    """The result of claim `name` at `preset` (seed 0) if it was produced by the code as it is now
    (the same code fingerprint, theory/engine/checkpoint.py) from the preset's current config;
    else None (missing, unreadable, older code or another config): what `reproduce` reruns."""
    try:
        result = read_result(output_paths(name, out, preset)[0], claim=name)
        _, cfg = build_config(name, preset)
    except SandboxError:
        return None
    same = (result.get("code") == checkpoint.code_fingerprint(REPO) and result.get("seed") == 0
            and result["config"] == as_json(config_lib.describe(cfg)))
    return result if same else None


def available(out: Path | None = None, preset: str = "quick") -> list[str]:
    """The registered claims that have a result file at `preset`."""
    return [n for n in claims.names() if output_paths(n, out, preset)[0].is_file()]


def custom_results(out: Path | None = None) -> list[Path]:
    """The custom-run result files under `out` (sorted by name)."""
    folder = _root(out) / "results" / CUSTOM
    return sorted(folder.glob("*.json")) if folder.is_dir() else []
