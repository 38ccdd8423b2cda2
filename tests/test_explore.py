"""`sandbox explore` and the notebook API (theory/harness/explore.py, explore_plot.py, api.py).

Most tests use a seconds-sized toy claim (tests/scripts/explore_toy.py: GD on a quadratic, whose
`converged` check fails where lr x steps is too small or lr a >= 2); one claim-tier test maps a
real claim's part.
"""
from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import pytest

import theory
from theory.cli import main
from theory.engine import interrupt
from theory.errors import SandboxError
from theory.harness import api, explore, registry
from theory.harness.registry import ClaimSpec

SCRIPTS = Path(__file__).parent / "scripts"


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    spec = ClaimSpec("explore_toy", "GD on a quadratic contracts iff 0 < lr a < 2.", "a test", "explore_toy")
    monkeypatch.setitem(registry.CLAIMS, "explore_toy", spec)
    return "explore_toy"


def _written(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_one_field_end_to_end(toy, tmp_path, capsys):
    rc = main(["explore", toy, "--grid", "lr=0.05,0.5,1.9,2.5", "--seeds", "2", "--out", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    [path] = (tmp_path / "results" / "explore").glob("explore_toy-*.json")
    result = explore.read(path)
    assert [r["point"] for r in result["points"]] == [{"lr": v} for v in (0.05, 0.5, 1.9, 2.5)]
    assert all(len(r["runs"]) == 2 and {x["seed"] for x in r["runs"]} == {0, 1} for r in result["points"])
    conv = [explore.pass_fraction(r, "converged") for r in result["points"]]
    assert conv == [0.0, 1.0, 0.0, 0.0]            # 0.95^20, 0.5^20, 0.9^20, 1.5^20 against 0.05
    assert explore.never_failed(result) == ["closed_form"]
    assert explore.boundaries(result)["converged"]["lr"] == [{"at": {}, "first_fail": 0.05}]
    assert "converged" in out and "never failed on this grid: closed_form" in out
    png = tmp_path / "figures" / "explore" / f"{path.stem}.png"
    assert png.stat().st_size > 10_000 and png.with_suffix(".svg").is_file()
    assert result["marks"]["lr"] == {"value": 0.5, "source": "quick"}
    assert not (tmp_path / ".checkpoints").exists()            # cleared once the file is written
    assert not (tmp_path / "results" / "explore_toy.json").exists()   # never a preset result


def test_two_fields_verdict_map_and_boundaries(toy, tmp_path):
    e = theory.explore(toy, grid={"lr": [0.05, 0.5], "steps": [2, 20, 80]}, seeds=1)
    assert e.verdict == "fail" and len(e.checks) == 2 * 3 * 2
    b = explore.boundaries(e.raw)["converged"]
    # along steps: at lr 0.05 every steps value fails (0.95^80 = 0.017 passes: first fail at 2);
    # at lr 0.5 two steps fail (0.25), 20 passes
    assert b["steps"] == [{"at": {"lr": 0.05}, "first_fail": 2}, {"at": {"lr": 0.5}, "first_fail": 2}]
    assert b["lr"] == [{"at": {"steps": 2}, "first_fail": 0.05}, {"at": {"steps": 20}, "first_fail": 0.05},
                       {"at": {"steps": 80}, "first_fail": None}]
    path = e.save(tmp_path)
    assert path.parent == tmp_path / "results" / "explore"
    assert (tmp_path / "figures" / "explore" / f"{path.stem}.png").stat().st_size > 10_000
    assert "first failing steps" in e.table()


def test_divergence_is_named_not_a_failed_check(toy, tmp_path):
    e = theory.explore(toy, grid={"lr": [0.5, 1000.0], "steps": [20]})
    diverged = e.raw["points"][1]["runs"][0]
    assert diverged["status"] == "diverged" and "gd" in diverged["message"] and diverged["checks"] == []
    assert e.raw["points"][0]["runs"][0]["status"] == "ok"
    assert "diverged: lr=1000.0, steps=20 seed 0" in e.table()


def test_every_point_releases_its_programs_even_when_it_diverges(toy, monkeypatch):
    """theory/engine/cache.py `release_compiled` after each (point, seed): a long grid must not
    accumulate compiled programs (memory maps) in one process."""
    released = []
    monkeypatch.setattr(explore, "release_compiled", lambda: released.append(1))
    theory.explore(toy, grid={"lr": [0.5, 1000.0], "steps": [20]}, seeds=2)
    assert len(released) == 2 * 2


def test_same_seed_same_numbers(toy):
    a = theory.explore(toy, grid={"lr": [0.3, 0.7]}, seeds=2)
    b = theory.explore(toy, grid={"lr": [0.3, 0.7]}, seeds=2)
    strip = [[{k: v for k, v in x.items() if k != "wall_seconds"} for x in r["runs"]] for r in a.raw["points"]]
    assert strip == [[{k: v for k, v in x.items() if k != "wall_seconds"} for x in r["runs"]]
                     for r in b.raw["points"]]
    m = [[c["measured"] for c in x["checks"]] for x in a.raw["points"][0]["runs"]]
    assert m[0] != m[1]                                   # seeds 0 and 1 draw other w_0


def test_interrupted_explore_resumes_without_redoing_points(toy, tmp_path, monkeypatch):
    plan = explore.plan(toy, ["lr=0.3,0.5,0.7"], seeds=1)
    calls = []
    real = explore.run_point

    def flaky(p, cfg, seed, label):
        if len(calls) == 2:
            raise interrupt.Interrupted(signal.SIGINT, "a test")
        calls.append(cfg.lr)
        return real(p, cfg, seed, label)
    monkeypatch.setattr(explore, "run_point", flaky)
    with pytest.raises(interrupt.Interrupted):
        explore.run(plan, tmp_path)
    assert calls == [0.3, 0.5]
    monkeypatch.setattr(explore, "run_point",
                        lambda p, cfg, seed, label: calls.append(cfg.lr) or real(p, cfg, seed, label))
    result = explore.run(plan, tmp_path)
    assert calls == [0.3, 0.5, 0.7] and result["resumed"]
    fresh = theory.explore(toy, grid={"lr": [0.3, 0.5, 0.7]})
    assert [[c["measured"] for c in r["runs"][0]["checks"]] for r in result["points"]] == \
        [[c["measured"] for c in r["runs"][0]["checks"]] for r in fresh.raw["points"]]


def test_from_file_redraws_without_training(toy, tmp_path, monkeypatch, capsys):
    assert main(["explore", toy, "--grid", "lr=0.5,2.5", "--out", str(tmp_path)]) == 0
    [path] = (tmp_path / "results" / "explore").glob("*.json")
    png = tmp_path / "figures" / "explore" / f"{path.stem}.png"
    png.unlink()
    monkeypatch.setattr(explore, "run_point", lambda *a: pytest.fail("trained"))
    capsys.readouterr()
    assert main(["explore", "--from", str(path)]) == 0
    assert png.is_file() and "first failing lr" in capsys.readouterr().out
    assert api.load_explore(path).verdict == "fail"


def test_default_grid_is_the_main_knob_and_list_shows_knobs(toy, capsys):
    plan = explore.plan(toy)
    assert plan.grid == {"lr": [0.05, 0.5, 1.0, 1.9, 2.5]}
    assert main(["explore", toy, "--list"]) == 0
    out = capsys.readouterr().out
    assert "lr (main knob" in out and "contracts iff" in out and "steps" in out


@pytest.mark.parametrize("args, message", [
    (["--grid", "eta=0.1,0.2"], "unknown field"),
    (["--grid", "lr=0.1,-1"], "grid point lr=-1.0"),          # the config's own validation, before training
    (["--grid", "lr="], "empty value"),
    (["--grid", "lr=0.1,0.1"], "repeated"),
    (["--grid", "lr"], "FIELD=V1,V2"),
    (["--grid", "lr=0.1", "--grid", "lr=0.2"], "twice"),
    (["--grid", "lr=0.1", "--grid", "steps=2", "--grid", "seeds=1"], "one or two fields"),
    (["--grid", "lr=nan"], "finite"),
    (["--grid", "steps=1.5"], "int"),
    (["--grid", "lr=0.1", "--part", "nope"], "no such part"),
    (["--grid", "lr=0.1", "--seeds", "0"], "--seeds"),
    (["--grid", "lr=(0.1"], "unbalanced"),
])
def test_bad_grids_exit_2_and_write_nothing(toy, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.setattr(explore, "run_point", lambda *a: pytest.fail("trained"))
    assert main(["explore", toy, *args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert _written(tmp_path) == []


def test_explore_needs_a_claim_and_from_needs_an_explore_file(tmp_path, capsys):
    assert main(["explore"]) == 2
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"schema": 2}))
    assert main(["explore", "--from", str(bad)]) == 2
    assert "not an explore result" in capsys.readouterr().err


def test_notebook_session(toy, tmp_path):
    """The README's notebook session, line for line (a toy claim in place of a real one)."""
    r = theory.run(toy, preset="quick", seed=0, lr=0.5)
    assert r.verdict == "pass" and {c["name"] for c in r.checks} == {"closed_form", "converged"}
    assert set(r.data) == {"gd"} and r.figure() is not None
    path = r.save(tmp_path)
    assert path.parent == tmp_path / "results" / "custom"        # an override: a custom run
    assert json.loads(path.read_text())["changed"] == {}          # lr=0.5 is the preset's value
    assert r.raw["overrides"] == ["lr=0.5"]
    with pytest.raises(SandboxError, match="unknown field"):
        theory.run(toy, eta=1.0)
    e = theory.explore(toy, grid={"lr": [0.5, 2.5]}, seeds=2)
    assert e.verdict == "fail" and "converged" in e.table() and e.figure() is not None


def test_every_declared_knob_is_a_valid_grid():
    """Each claim's KNOBS name real fields whose default values pass the config's validation."""
    for name in registry.names():
        module = registry.load(name)
        for k in explore.knobs(module):
            p = explore.plan(name, [f"{k.field}=" + ",".join(explore.value_text(v) for v in k.values)],
                             part=k.part)
            assert len(p.cfgs) == len(k.values), (name, k.field)


@pytest.mark.claim
def test_readme_notebook_session_runs_as_written(tmp_path, monkeypatch):
    """The README's notebook block (between the notebook markers), executed as it stands: a real
    claim's run and a real part over a grid, nothing written to the repository."""
    text = (Path(__file__).parents[1] / "README.md").read_text()
    block = text.split("<!-- notebook:start -->", 1)[1].split("<!-- notebook:end -->", 1)[0]
    code = block.split("```python", 1)[1].split("```", 1)[0]
    assert len([line for line in code.strip().splitlines() if line.strip()]) == 5
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README.md (notebook block)", "exec"), scope)
    assert isinstance(scope["r"], api.Result) and scope["r"].raw["preset"] == "custom"
    e = scope["e"]
    assert isinstance(e, api.ExploreResult) and {c["part"] for c in e.checks} == {"saxe_linear_net"}
    assert scope["fig"] is not None


# --- --jobs N: the pairs on worker processes (theory/harness/explore.py, "Both cores") --------------
_WORKER = """
import sys
sys.path.insert(0, {scripts!r})
from theory.harness import registry
registry.CLAIMS["explore_toy"] = registry.ClaimSpec("explore_toy", "toy", "a test", "explore_toy")
from theory.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _toy_workers(monkeypatch, code: str | None = None):
    """Workers that know the toy claim (a child script registering it), or that run `code`."""
    real = explore.worker_argv
    code = code or _WORKER.format(scripts=str(SCRIPTS))
    monkeypatch.setattr(explore, "worker_argv", lambda p, out: [sys.executable, "-c", code] + real(p, out)[3:])


def _measured(result: dict) -> list:
    return [[[c["measured"] for c in r["checks"]] + [r["status"]] for r in row["runs"]] for row in result["points"]]


@pytest.mark.process
def test_jobs_spread_the_pairs_over_workers_with_the_same_numbers(toy, tmp_path, monkeypatch, capsys):
    _toy_workers(monkeypatch)
    grid = ["--grid", "lr=0.3,0.5,0.7,2.5,1000.0", "--seeds", "2"]
    folder = tmp_path / "par" / ".checkpoints" / f"explore-{toy}-{explore.plan(toy, [grid[1]], seeds=2).tag}"
    assert main(["explore", toy, *grid, "--jobs", "2", "--out", str(tmp_path / "par")]) == 0
    out = capsys.readouterr()
    assert "10 (point, seed) runs on 2 worker processes" in out.out
    assert "[worker 1/2]" in out.out + out.err
    assert (out.out + out.err).count("== explore_toy [") == 10          # every pair ran once, in some worker
    assert main(["explore", toy, *grid, "--out", str(tmp_path / "seq")]) == 0
    [par], [seq] = ([json.loads(p.read_text()) for p in (tmp_path / d / "results" / "explore").glob("*.json")]
                    for d in ("par", "seq"))
    assert _measured(par) == _measured(seq) and par["jobs"] == 2 and seq["jobs"] == 1
    assert par["points"][-1]["runs"][0]["status"] == "diverged"         # a divergence is still named
    assert not folder.exists()                                          # removed once the file is written


def test_a_worker_runs_only_the_pairs_nobody_took(toy, tmp_path):
    plan = explore.plan(toy, ["lr=0.3,0.5"], seeds=1)
    with pytest.raises(SandboxError, match="was not prepared"):
        explore.run(plan, tmp_path, worker=True)                        # no folder from `prepare`
    folder = explore.prepare(plan, tmp_path)
    (folder / "p0-s0.taken").touch()                                    # another worker holds point 0
    assert explore.run(plan, tmp_path, worker=True) is None
    assert sorted(p.name for p in folder.glob("p*-s*.json")) == ["p1-s0.json"]
    result = explore.run(plan, tmp_path)                                # the rest computed here, read back
    assert result["resumed"] and _measured(result) == _measured(theory.explore(toy, grid={"lr": [0.3, 0.5]}).raw)


def test_a_failing_worker_fails_the_command_and_writes_nothing(toy, tmp_path, monkeypatch, capsys):
    _toy_workers(monkeypatch, code="import sys; sys.exit(3)")
    assert main(["explore", toy, "--grid", "lr=0.3,0.5", "--jobs", "2", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "explore workers that did not finish: worker 1/2 (exit 3), worker 2/2 (exit 3)" in err[0]
    assert not (tmp_path / "results").exists() and not (tmp_path / "figures").exists()


@pytest.mark.parametrize("bad", ["0", "-2"])
def test_bad_job_counts_are_refused(toy, tmp_path, capsys, bad):
    assert main(["explore", toy, "--grid", "lr=0.3", "--jobs", bad, "--out", str(tmp_path)]) == 2
    assert "--jobs must be a positive integer" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SandboxError, match="--jobs"):
        theory.explore(toy, grid={"lr": [0.3]}, jobs=int(bad))
