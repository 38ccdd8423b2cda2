"""`sandbox explore`: run a claim over a grid of config values and map where each check holds.

    sandbox explore NAME --grid FIELD=V1,V2,... [--grid FIELD2=...] [--seeds K] [--part PART]

A grid has one or two fields; each value is parsed and refused exactly like `--set FIELD=VALUE`
(theory/harness/config.py: types, finite numbers, tolerance fields not settable), and every grid
point's config is validated before anything trains. Each grid point runs at base seeds 0..K-1
(the `Keys(seed)` of `sandbox run --seed`), so "seeds passing" counts independent replicates of the
whole measurement; a claim's own `seeds` field (runs vmapped inside a part) is a knob like any other.
`--part` runs one part only; its stream is the same `Keys(seed).sub(part)` as in a full run, so its
numbers equal that part's numbers in `sandbox run`.

Outputs (never the preset results):

    results/explore/<claim>-<hash>.json     per grid point and seed: status, every check's kind,
                                            predicted / bound, measured, slack and pass
    figures/explore/<claim>-<hash>.png|svg  one field: each check's slack against the field, the pass
                                            region shaded, seeds as points; two fields: verdict maps
                                            (fraction of seeds passing each check and all checks)

<hash> is 12 hex digits of sha256 of the canonical JSON of {claim, preset, grid, seeds, part}. The
preset's own value of each field (or the paper's setting a claim declares in its `KNOBS`) is marked.

A grid point whose training diverges is recorded as `diverged` with the message (never as a failed
check) and the map goes on; a point whose config a part refuses late is `refused`. Each finished
(point, seed) is saved under `.checkpoints/explore-<claim>-<hash>/`, so an interrupted explore
resumes where it stopped (the same command), and the folder is removed once the file is written.

Compiles. Grid points are separate runs of the claim: points that differ in a value the claim
passes to its sweep as a traced value reuse the compiled program; points that change a shape (or a
value a claim bakes into its program) compile again, from the persistent compile cache when it has
them (theory/engine/cache.py). The file records each point's wall time.

Both cores (`--jobs N`). On a CPU, vmapping grid points or seeds into one program does not pay
(`sandbox bench`: K vmapped seeds run at 0.6-1.0x of K sequential runs, the step is one core's
work), while two processes on two cores do. With `--jobs N` the command starts N worker processes,
each the same explore with `--worker` and $SANDBOX_THREADS = cores / N: a worker takes the next
(point, seed) that is neither finished nor taken (a `p<i>-s<seed>.taken` file created exclusively
in the checkpoint folder), runs it exactly as a one-process explore would (the same
`Keys(seed).sub(part)` streams, so the same numbers) and saves it there. Once every worker has
left, this process reads the finished pairs back (computing any a worker did not finish), and
writes the file and the figure; `jobs` and the whole command's wall time are recorded. Signals
reach the workers through `theory.harness.jobs.run_all` (each stops at its next segment boundary);
the same command resumes, its stale `.taken` marks cleared first.

Knobs. An experiment module may declare `KNOBS = (Knob(field, values, ...), ...)`: the fields that
are meaningful to explore with a default grid; the first is the main knob that `sandbox explore NAME`
maps without `--grid` (`sandbox explore --list NAME` shows them).
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from theory.engine import checkpoint, interrupt
from theory.engine.cache import release_compiled
from theory.engine.keys import Keys
from theory.engine.precision import precision
from theory.errors import DivergenceError, SandboxError
from theory.harness import config as config_lib
from theory.harness import registry as claims
from theory.harness.config import Knob
from theory.harness.parts import run_parts
from theory.harness.results import (
    as_json,
    canonical_json,
    git_revision,
    json_text,
    package_versions,
    stage_text,
)

SCHEMA = "explore-1"
MAX_FIELDS = 2
MAX_POINTS = 400


def knobs(module) -> tuple[Knob, ...]:
    return tuple(getattr(module, "KNOBS", ()))


# --- grids ----------------------------------------------------------------------------------------
def split_values(text: str) -> list[str]:
    """The values of `V1,V2,...` split at commas outside brackets: `(1,2),(3,4)` is two tuples."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth < 0:
                raise SandboxError(f"--grid value {text!r}: unbalanced brackets")
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if depth:
        raise SandboxError(f"--grid value {text!r}: unbalanced brackets")
    out.append(cur.strip())
    if any(v == "" for v in out):
        raise SandboxError(f"--grid value {text!r}: an empty value (write V1,V2,...)")
    return out


def value_text(value: Any) -> str:
    """The `--set` text of a Python value (bools, numbers, strings, None and flat tuples of those)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (tuple, list)):
        items = [value_text(v) for v in value]
        return "(" + ",".join(items) + ("," if len(items) == 1 else "") + ")"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def parse_grid(base_cfg: Any, specs: Sequence[str]) -> dict[str, list]:
    """{field: [values]} of `FIELD=V1,V2,...` specs, each value parsed as `--set FIELD=V` would be."""
    if not specs:
        raise SandboxError("an empty grid: give --grid FIELD=V1,V2,...")
    grid: dict[str, list] = {}
    for spec in specs:
        if "=" not in spec:
            raise SandboxError(f"--grid expects FIELD=V1,V2,..., got {spec!r}")
        name, text = (s.strip() for s in spec.split("=", 1))
        if name in grid:
            raise SandboxError(f"--grid {name} given twice; list all its values once")
        values = [config_lib.parse_assignments(base_cfg, [f"{name}={v}"])[name] for v in split_values(text)]
        if len({canonical_json(as_json(v)) for v in values}) != len(values):
            raise SandboxError(f"--grid {name}: a value is repeated")
        grid[name] = values
    return _checked(grid)


def grid_from_values(base_cfg: Any, values: dict[str, Sequence]) -> dict[str, list]:
    """The grid of a notebook call, {field: [python values]}, through the same parser as the CLI."""
    if not values:
        raise SandboxError("an empty grid: give at least one field with values")
    specs = []
    for name, vals in values.items():
        if not isinstance(vals, (list, tuple)):
            raise SandboxError(f"grid field {name}: give a list of values, got {vals!r}")
        if not vals:
            raise SandboxError(f"grid field {name}: no values")
        specs.append(f"{name}=" + ",".join(value_text(v) for v in vals))
    return parse_grid(base_cfg, specs)


def _checked(grid: dict[str, list]) -> dict[str, list]:
    if len(grid) > MAX_FIELDS:
        raise SandboxError(f"explore maps one or two fields, got {len(grid)} ({', '.join(grid)})")
    n = math.prod(len(v) for v in grid.values())
    if n > MAX_POINTS:
        raise SandboxError(f"the grid has {n} points; at most {MAX_POINTS} (split it into several explores)")
    return grid


def points(grid: dict[str, list]) -> list[dict[str, Any]]:
    """The grid's points in row-major order (the first field varies slowest)."""
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]


def point_label(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={value_text(v)}" for k, v in point.items())


def configs(module, base_cfg: Any, grid: dict[str, list]) -> list[Any]:
    """Every grid point's config, validated before any training (a refused point is one line)."""
    out = []
    for point in points(grid):
        cfg = dataclasses.replace(base_cfg, **point)
        try:
            config_lib.validate(cfg)
        except SandboxError as e:
            raise SandboxError(f"grid point {point_label(point)}: {e}") from None
        out.append(cfg)
    return out


# --- running --------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Plan:
    """A validated explore: what runs, and where its outputs go."""
    name: str
    preset: str
    grid: dict[str, list]
    seeds: int
    part: str | None
    module: Any
    base_cfg: Any
    cfgs: list

    @property
    def tag(self) -> str:
        text = canonical_json({"claim": self.name, "preset": self.preset, "grid": as_json(self.grid),
                               "seeds": self.seeds, "part": self.part})
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def paths(self, out: Path | None) -> tuple[Path, Path, Path]:
        from theory.harness.runner import output_paths
        return output_paths(self.name, out, "explore", self.tag)

    def parts(self):
        return [p for p in self.module.PARTS if self.part is None or p.name == self.part]


def plan(name: str, grid_specs: Sequence[str] | None = None, *, preset: str = "quick", seeds: int = 1,
         part: str | None = None, grid_values: dict[str, Sequence] | None = None) -> Plan:
    """Parse and validate an explore (every bad input refused here, before any work)."""
    from theory.harness.runner import PRESETS
    if preset not in PRESETS:
        raise SandboxError(f"unknown preset {preset!r}; choose from {PRESETS}")
    module = claims.load(name)
    base = getattr(module.Config, preset)()
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= 64:
        raise SandboxError(f"--seeds must be an integer in 1..64 (replicates per grid point), got {seeds}")
    if part is not None and part not in [p.name for p in module.PARTS]:
        raise SandboxError(f"--part {part}: {name} has no such part; its parts: "
                           + ", ".join(p.name for p in module.PARTS))
    if grid_values is not None:
        grid = grid_from_values(base, grid_values)
    elif grid_specs:
        grid = parse_grid(base, grid_specs)
    else:
        ks = knobs(module)
        if not ks:
            raise SandboxError(f"{name} declares no knobs; give --grid FIELD=V1,V2,...")
        grid = parse_grid(base, [f"{ks[0].field}=" + ",".join(value_text(v) for v in ks[0].values)])
        part = part if part is not None else ks[0].part
    cfgs = configs(module, base, grid)
    p = Plan(name, preset, grid, seeds, part, module, base, cfgs)
    if not any(q.enabled(c) for c in cfgs for q in p.parts()):
        raise SandboxError(f"no part of {name} runs on this grid" + (f" (--part {part} is disabled)" if part else ""))
    return p


def _check_row(c) -> dict:
    j = c.to_json()
    return {k: j[k] for k in ("name", "part", "kind", "op", "predicted", "bound", "measured", "slack", "passed")}


def run_point(p: Plan, cfg: Any, seed: int, label: str | None) -> dict:
    """One (grid point, seed): the checks of the selected parts, or the divergence that stopped it."""
    start = time.perf_counter()
    try:
        with precision(p.module.PRECISION):
            checks, _ = run_parts(p.parts(), cfg, Keys(seed), progress=label)
        status, message, rows = "ok", "", [_check_row(c) for c in checks]
    except DivergenceError as e:
        status, message, rows = "diverged", " ".join(str(e).split()), []
    except SandboxError as e:           # a part refused this config once running (e.g. a solver bound)
        status, message, rows = "refused", " ".join(str(e).split()), []
    finally:
        release_compiled()              # theory/engine/cache.py: a long grid stays within the process's maps
    return as_json({"seed": seed, "status": status, "message": message, "checks": rows,
                    "wall_seconds": round(time.perf_counter() - start, 2)})


def _folder(p: Plan, out: Path | None) -> Path:
    from theory.harness.runner import _root
    return _root(out) / ".checkpoints" / f"explore-{p.name}-{p.tag}"


def _meta(p: Plan) -> dict:
    from theory.harness.runner import REPO
    return {"claim": p.name, "tag": p.tag, "code": checkpoint.code_fingerprint(REPO)}


def prepare(p: Plan, out: Path | None, meta: dict | None = None) -> Path:
    """The checkpoint folder of this explore (`meta`: `_meta(p)` if already computed), emptied if
    another code version wrote it."""
    folder, meta = _folder(p, out), meta or _meta(p)
    folder.mkdir(parents=True, exist_ok=True)
    meta_path = folder / "meta.json"
    if meta_path.is_file() and json.loads(meta_path.read_text()) != meta:
        shutil.rmtree(folder)                      # another code version: never mixed in
        folder.mkdir(parents=True)
    meta_path.write_text(json.dumps(meta))
    return folder


def _take(folder: Path, i: int, seed: int) -> bool:
    """Claim (point i, seed) for this worker: True if no other worker has (an exclusive create)."""
    import os
    try:
        os.close(os.open(folder / f"p{i}-s{seed}.taken", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        return False
    return True


def run(p: Plan, out: Path | None = None, progress: bool = False, worker: bool = False) -> dict | None:
    """Run every (grid point, seed) not already finished, and return the explore result (not written).

    worker=True (`sandbox explore --worker`, started by `run_jobs`): run only the pairs this process
    takes (module docstring), save them, and return None; the folder must be the one `prepare` made."""
    meta = _meta(p)                                # hashes the code once
    if worker:
        folder = _folder(p, out)
        meta_path = folder / "meta.json"
        if not meta_path.is_file() or json.loads(meta_path.read_text()) != meta:
            raise SandboxError(f"explore worker: {folder} was not prepared for this code and grid")
    else:
        folder = prepare(p, out, meta)
    code = meta["code"]
    start = time.perf_counter()
    rows = []
    resumed = False
    for i, (point, cfg) in enumerate(zip(points(p.grid), p.cfgs)):
        runs = []
        for seed in range(p.seeds):
            done = folder / f"p{i}-s{seed}.json"
            if done.is_file():
                if not worker:
                    runs.append(json.loads(done.read_text()))
                    resumed = True
                continue
            if worker and not _take(folder, i, seed):
                continue
            interrupt.check(f"grid point {i + 1}/{len(p.cfgs)}")
            label = f"{p.name} [{i + 1}/{len(p.cfgs)} {point_label(point)} seed {seed}]" if progress else None
            if progress:
                print(f"== {label}", file=sys.stderr, flush=True)
            row = run_point(p, cfg, seed, label)
            tmp = stage_text(done, json.dumps(row))
            tmp.replace(done)
            runs.append(row)
        rows.append({"point": as_json(point), "runs": runs})
    if worker:
        return None
    return as_json({
        "schema": SCHEMA, "claim": p.name, "preset": p.preset, "part": p.part, "seeds": p.seeds,
        "grid": as_json(p.grid), "fields": list(p.grid), "marks": marks(p), "axes": axes(p), "base_config":
        config_lib.describe(p.base_cfg), "points": rows, "versions": package_versions(), "git": git_revision(),
        "code": code, "resumed": resumed, "jobs": 1, "wall_seconds": round(time.perf_counter() - start, 2),
    })


def worker_argv(p: Plan, out: Path | None) -> list[str]:
    """A worker's command line: this explore with `--worker` (theory/cli.py)."""
    argv = [sys.executable, "-m", "theory.cli", "explore", p.name]
    for field, values in p.grid.items():
        argv += ["--grid", f"{field}=" + ",".join(value_text(v) for v in values)]
    argv += ["--seeds", str(p.seeds)] + (["--part", p.part] if p.part else [])
    argv += ["--full"] if p.preset == "full" else []
    return argv + (["--out", str(out)] if out is not None else []) + ["--worker"]


def run_jobs(p: Plan, out: Path | None, jobs: int) -> dict:
    """`run` with the pairs spread over `jobs` worker processes (module docstring, "Both cores");
    the same numbers as `run`. A worker that exits with an error fails the command (one line)."""
    from theory.engine.sweep import usable_cores
    from theory.harness import jobs as jobs_lib
    jobs_lib.check_jobs(jobs)
    start = time.perf_counter()
    folder = prepare(p, out)
    for stale in folder.glob("*.taken"):           # marks of an interrupted run: nobody holds them now
        stale.unlink()
    before = len(list(folder.glob("p*-s*.json")))
    n = min(jobs, len(p.cfgs) * p.seeds - before)
    if n > 1:
        print(f"== {p.name}: {len(p.cfgs) * p.seeds - before} (point, seed) runs on {n} worker processes",
              flush=True)
        names = [f"worker {k + 1}/{n}" for k in range(n)]
        env = {"SANDBOX_THREADS": str(max(usable_cores() // n, 1))}
        codes = jobs_lib.run_all(names, n, lambda _: worker_argv(p, out), env=env)
        bad = {k: c for k, c in codes.items() if c != 0}
        if bad:
            raise SandboxError("explore workers that did not finish: "
                               + ", ".join(f"{k} (exit {c})" for k, c in bad.items()) + "; their lines above say why")
    result = run(p, out, progress=True)            # the workers' pairs read back, any left computed here
    result.update(resumed=before > 0, jobs=max(n, 1), wall_seconds=round(time.perf_counter() - start, 2))
    return result


def marks(p: Plan) -> dict[str, Any]:
    """Per field, the setting to mark: the paper's (from the claim's KNOBS) or the preset's value."""
    declared = {k.field: k for k in knobs(p.module)}
    out = {}
    for f in p.grid:
        k = declared.get(f)
        out[f] = {"value": as_json(k.paper if k is not None and k.paper is not None else getattr(p.base_cfg, f)),
                  "source": "paper" if k is not None and k.paper is not None else p.preset}
    return out


def axes(p: Plan) -> dict[str, str | None]:
    """Per field, which entry of a tuple value the figure's axis shows (from the claim's KNOBS)."""
    declared = {k.field: k.axis for k in knobs(p.module)}
    return {f: declared.get(f) for f in p.grid}


def clear_checkpoint(p: Plan, out: Path | None) -> None:
    checkpoint.Session.discard(_folder(p, out))


# --- reading a result -----------------------------------------------------------------------------
def check_names(result: dict) -> list[str]:
    """Every check name that occurs on the grid, in first-seen order."""
    seen: dict[str, None] = {}
    for row in result["points"]:
        for run_ in row["runs"]:
            for c in run_["checks"]:
                seen.setdefault(c["name"], None)
    return list(seen)


def pass_fraction(row: dict, check: str | None) -> float | None:
    """Fraction of the point's seeds that passed `check` (None: all checks); None when no seed
    produced it. A diverged or refused seed counts as not passing."""
    n, ok = 0, 0
    for run_ in row["runs"]:
        if run_["status"] != "ok":
            n += 1
            continue
        got = [c for c in run_["checks"] if check is None or c["name"] == check]
        if not got:
            continue
        n += 1
        ok += all(c["passed"] for c in got)
    return ok / n if n else None


def boundaries(result: dict) -> dict[str, dict[str, list]]:
    """{check: {field: [entries]}}: along each field, with the other field held at each of its
    values, the first value (in grid order) where some seed fails the check; None if none does.
    An entry is {"at": {other field: value} or {}, "first_fail": value or None}."""
    fields = result["fields"]
    grid = result["grid"]
    rows = {canonical_json(r["point"]): r for r in result["points"]}
    out: dict[str, dict[str, list]] = {}
    for check in check_names(result) + [None]:
        key = check or "all checks"
        out[key] = {}
        for f in fields:
            others = [g for g in fields if g != f]
            entries = []
            for fixed in itertools.product(*(grid[g] for g in others)):
                at = dict(zip(others, fixed))
                first = None
                for v in grid[f]:
                    point = {g: (v if g == f else at[g]) for g in fields}
                    frac = pass_fraction(rows[canonical_json(point)], check)
                    if frac is not None and frac < 1:
                        first = v
                        break
                entries.append({"at": at, "first_fail": first})
            out[key][f] = entries
    return out


def never_failed(result: dict) -> list[str]:
    """The checks that no seed failed anywhere on the grid (and that ran somewhere)."""
    out = []
    for check in check_names(result):
        fracs = [pass_fraction(r, check) for r in result["points"]]
        if all(f is None or f == 1 for f in fracs) and any(f is not None for f in fracs):
            out.append(check)
    return out


def boundary_table(result: dict) -> str:
    """The printed summary: per check, the first failing value along each field; the checks that never failed."""
    lines = [f"{result['claim']} explored over {' x '.join(result['fields'])} "
             f"({len(result['points'])} points x {result['seeds']} seed(s))"]
    diverged = [(r["point"], x["seed"], x["status"]) for r in result["points"] for x in r["runs"]
                if x["status"] != "ok"]
    for point, seed, status in diverged:
        lines.append(f"  {status}: {point_label(point)} seed {seed}")
    bounds = boundaries(result)
    rows = [("check", "failing points", *[f"first failing {f}" for f in result["fields"]])]
    for check, per_field in bounds.items():
        fracs = [pass_fraction(r, None if check == "all checks" else check) for r in result["points"]]
        ran = [f for f in fracs if f is not None]
        cells = [f"{sum(f < 1 for f in ran)}/{len(ran)}"]
        for f in result["fields"]:
            parts = []
            for e in per_field[f]:
                v = "none" if e["first_fail"] is None else value_text(e["first_fail"])
                parts.append(v + (f" (at {point_label(e['at'])})" if e["at"] else ""))
            cells.append("; ".join(parts))
        rows.append((check, *cells))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    nf = never_failed(result)
    lines.append("never failed on this grid: " + (", ".join(nf) if nf else "none"))
    return "\n".join(lines)


def read(path: Path) -> dict:
    """An explore result file, refused as one line if it is not one."""
    try:
        result = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise SandboxError(f"cannot read explore result {path}: {e}") from None
    if not isinstance(result, dict) or result.get("schema") != SCHEMA:
        raise SandboxError(f"{path} is not an explore result (schema {SCHEMA})")
    for key in ("claim", "grid", "fields", "points", "seeds", "marks"):
        if key not in result:
            raise SandboxError(f"{path}: explore result without {key!r}")
    claims.get(result["claim"])
    return result


def write(result: dict, paths: tuple[Path, Path, Path]) -> None:
    """Stage the figure and the JSON, then rename them into place together."""
    import os

    from theory.harness.explore_plot import plot
    from theory.harness.plotting import render_atomic
    json_path, png_path, svg_path = paths
    temps: list[Path] = []
    try:
        temps += render_atomic(plot(result), [png_path, svg_path])
        temps.append(stage_text(json_path, json_text(result)))
        for tmp, final in zip(temps, [png_path, svg_path, json_path]):
            os.replace(tmp, final)
    finally:
        for t in temps:
            t.unlink(missing_ok=True)


def redraw(path: Path) -> Path:
    """Redraw the figure of an explore result file without training (`sandbox explore --from FILE`)."""
    import os

    from theory.harness.explore_plot import plot
    from theory.harness.plotting import render_atomic
    result = read(path)
    path = Path(path)
    root = path.parent.parent.parent if path.parent.name == "explore" else path.parent
    png = root / "figures" / "explore" / f"{path.stem}.png"
    svg = png.with_suffix(".svg")
    png.parent.mkdir(parents=True, exist_ok=True)
    temps = render_atomic(plot(result), [png, svg])
    for tmp, final in zip(temps, [png, svg]):
        os.replace(tmp, final)
    return png
