"""The notebook API: `theory.run` and `theory.explore`, the same runs as `sandbox run` / `sandbox explore`.

    import theory
    r = theory.run("scan_snap", preset="quick", seed=0, eta_Y=0.5)   # keyword = --set FIELD=VALUE
    r.verdict, r.checks[0]["slack"]; r.figure(); r.save()           # save: the CLI's output rules
    e = theory.explore("rank_growth", grid={"time_alphas": [(1e-4,), (1e-6,)]}, seeds=2)
    print(e.table()); e.figure(); e.save()

Keyword overrides go through the `--set` parser (theory/harness/config.py) as text, so a notebook
value is validated and refused exactly as on the command line (SandboxError, one line), and a run
with overrides is a custom run (results/custom/<claim>-<hash>.json when saved). Nothing is written
until `.save(out)` (default: the repository's results/ and figures/); checkpoints go under
`out`/.checkpoints/ as for the CLI, so an interrupted notebook call resumes when repeated.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from theory.engine import checkpoint
from theory.harness import explore as explore_lib
from theory.harness import runner


class Result:
    """One claim run: `.checks` (list of check dicts), `.data` ({part: {predicted, measured}}),
    `.verdict`, `.raw` (the whole result dict, as its file would hold it), `.figure()`, `.save(out)`."""

    def __init__(self, prep: runner.Prepared, raw: dict):
        self._prep, self.raw = prep, raw

    checks = property(lambda self: self.raw["checks"])
    data = property(lambda self: self.raw["data"])
    verdict = property(lambda self: self.raw["verdict"])

    def figure(self):
        """The claim's figure (a matplotlib Figure), drawn from the result alone."""
        return self._prep.module.plot(self.raw)

    def save(self, out: str | Path | None = None) -> Path:
        """Write the result JSON and figure where `sandbox run` would; returns the JSON path."""
        return runner.save(self._prep, self.raw, None if out is None else Path(out))

    def __repr__(self) -> str:
        ok = sum(c["passed"] for c in self.checks)
        return f"<Result {self.raw['claim']} {self.raw['preset']}: {self.verdict} ({ok}/{len(self.checks)} checks)>"


class ExploreResult:
    """A claim over a grid: `.checks` (per point and seed), `.data` (the whole explore dict),
    `.verdict` ("pass" when every check held at every point and seed, else "fail": a map
    usually shows where it fails), `.table()` (the boundary table), `.figure()`, `.save(out)`."""

    def __init__(self, plan: explore_lib.Plan | None, raw: dict):
        self._plan, self.raw = plan, raw

    data = property(lambda self: self.raw)

    @property
    def checks(self) -> list[dict]:
        return [dict(c, point=row["point"], seed=run["seed"]) for row in self.raw["points"]
                for run in row["runs"] for c in run["checks"]]

    @property
    def verdict(self) -> str:
        ok = all(run["status"] == "ok" for row in self.raw["points"] for run in row["runs"])
        return "pass" if ok and all(c["passed"] for c in self.checks) else "fail"

    def table(self) -> str:
        return explore_lib.boundary_table(self.raw)

    def figure(self):
        from theory.harness.explore_plot import plot
        return plot(self.raw)

    def save(self, out: str | Path | None = None) -> Path:
        if self._plan is None:
            raise ValueError("an explore result read from a file is saved already")
        paths = self._plan.paths(None if out is None else Path(out))
        created = runner.ensure_writable(list(paths))
        try:
            explore_lib.write(self.raw, paths)
        except BaseException:
            runner.remove_created(created)
            raise
        return paths[0]

    def __repr__(self) -> str:
        return (f"<ExploreResult {self.raw['claim']} over {' x '.join(self.raw['fields'])}: "
                f"{len(self.raw['points'])} points x {self.raw['seeds']} seed(s)>")


def overrides_text(overrides: dict[str, Any]) -> list[str]:
    """Keyword overrides as `--set` assignments (strings are passed through as the CLI would get them)."""
    return [f"{k}={v if isinstance(v, str) else explore_lib.value_text(v)}" for k, v in overrides.items()]


def run(name: str, preset: str = "quick", seed: int = 0, seeds: int | None = None, *,
        out: str | Path | None = None, progress: bool = False, **overrides: Any) -> Result:
    """Run claim `name` (as `sandbox run`), returning the result without writing it."""
    out = None if out is None else Path(out)
    prep = runner.prepare(name, preset, seed=seed, seeds=seeds, overrides=overrides_text(overrides))
    raw, folder = runner.execute(prep, out, progress)
    checkpoint.Session.discard(folder)
    return Result(prep, raw)


def explore(name: str, grid: dict[str, list] | None = None, seeds: int = 1, *, preset: str = "quick",
            part: str | None = None, out: str | Path | None = None, progress: bool = False,
            jobs: int = 1) -> ExploreResult:
    """Run claim `name` over `grid` ({field: [values]}, one or two fields; None: the claim's main
    knob) at base seeds 0..seeds-1 (as `sandbox explore`), returning the map without writing it;
    jobs > 1 runs the (point, seed) pairs in that many worker processes (`sandbox explore --jobs`)."""
    from theory.harness.jobs import check_jobs
    check_jobs(jobs)
    out = None if out is None else Path(out)
    plan = explore_lib.plan(name, preset=preset, seeds=seeds, part=part, grid_values=grid)
    raw = explore_lib.run(plan, out, progress) if jobs == 1 else explore_lib.run_jobs(plan, out, jobs)
    explore_lib.clear_checkpoint(plan, out)
    return ExploreResult(plan, raw)


def load_explore(path: str | Path) -> ExploreResult:
    """An explore result from its file (to redraw or re-tabulate without training)."""
    return ExploreResult(None, explore_lib.read(Path(path)))
