"""The `sandbox` CLI: listing, bad input (exit 2, one line, nothing written), report, README table."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from theory.harness import registry as claims, runner
from theory.cli import main

REPO = Path(__file__).resolve().parent.parent


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_list_names_every_claim(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in claims.names():
        assert name in out
    assert "paper:" in out


def test_unknown_claim_lists_known_ones(tmp_path, capsys):
    assert main(["run", "gd_equivalance", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown claim 'gd_equivalance'" in err and "gd_equivalence" in err
    assert _files(tmp_path) == []


@pytest.mark.parametrize("args, message", [
    (["--set", "depthz=3"], "unknown field of Config; valid fields:"),
    (["--set", "d=six"], "d=six: expected a value of type int"),
    (["--set", "d=0"], "d must be positive"),
    (["--set", "n_context=-5"], "n_context must be positive"),
    (["--seeds", "0"], "--seeds must be positive"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, capsys, args, message):
    assert main(["run", "gd_equivalence", "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sandbox: error:") and message in err and "\n" not in err
    assert _files(tmp_path) == []


def test_unwritable_output_directory(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["run", "gd_equivalence", "--out", str(blocker)]) == 2
    assert "cannot write to" in capsys.readouterr().err
    assert blocker.read_text() == "not a directory"


def test_diverging_run_names_step_and_lr_and_writes_nothing(tmp_path, capsys):
    code = main(["run", "gd_equivalence", "--out", str(tmp_path), "--set", "lr=1e3",
                 "--set", "steps=100", "--set", "log_every=50"])
    err = capsys.readouterr().err
    assert code == 2
    assert "diverged" in err and "at step" in err and "lr=1000" in err
    assert not any(p.suffix in (".json", ".png", ".svg") for p in _files(tmp_path))


def test_report_without_results_is_a_clear_error(tmp_path, capsys):
    assert main(["report", "--out", str(tmp_path)]) == 2
    assert "no results file" in capsys.readouterr().err


def test_console_script_entry_point_exit_code(tmp_path):
    """The installed `sandbox` command (not just main()) exits 2 on bad input."""
    proc = subprocess.run([sys.executable, "-m", "theory.cli", "run", "nope", "--out", str(tmp_path)],
                          capture_output=True, text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert proc.returncode == 2 and "unknown claim 'nope'" in proc.stderr


def test_readme_table_matches_committed_results():
    """The README's claims tables are generated from results/ (and results/full/) and must not be stale."""
    assert runner.readme_table() == runner.report(), \
        "README claims table is stale: run `sandbox report --readme`"
    if runner.available(preset="full"):
        assert runner.readme_table(preset="full") == runner.report(preset="full"), \
            "README full-preset table is stale: run `sandbox report --full --readme`"


@pytest.mark.parametrize("preset", runner.PRESETS)
def test_committed_results_follow_the_contract(preset):
    names = claims.names() if preset == "quick" else runner.available(preset=preset)
    for name in names:
        json_path, png_path, _ = runner.output_paths(name, preset=preset)
        r = json.loads(json_path.read_text())
        assert r["preset"] == preset and (REPO / r["figure"]) == png_path
        for key in runner.read_result.__globals__["REQUIRED_KEYS"]:
            assert key in r, (name, key)
        assert r["claim"] == name and r["verdict"] in ("pass", "fail")
        assert r["verdict"] == ("pass" if all(c["passed"] for c in r["checks"]) else "fail")
        for c in r["checks"]:
            assert set(c) >= {"name", "predicted", "measured", "metric", "error", "tolerance", "passed", "why"}
        assert png_path.is_file()


# --- reproduce / report / plot / interrupt, wired end to end through a tiny fake claim -------------
def _fake_module(interrupt: bool = False):
    import dataclasses
    import types

    import jax.numpy as jnp

    from theory.harness.plotting import figure
    from theory.harness.results import check_rel

    mod = types.ModuleType("fake_claim")

    @dataclasses.dataclass(frozen=True)
    class Config:
        x: float = 2.0
        seeds: int = 1

        @classmethod
        def quick(cls):
            return cls()

        @classmethod
        def full(cls):
            return cls(x=3.0)

        def validate(self):
            pass

    def measure(cfg, seed, seeds, progress):
        if interrupt:
            raise KeyboardInterrupt
        measured = float(jnp.sqrt(jnp.asarray(cfg.x)) ** 2)
        return [check_rel("sqrt squared", cfg.x, measured, 1e-6, "float32 rounding")], {"x": [cfg.x]}

    def plot(result):
        fig, ax = figure(1, 1)
        ax[0, 0].plot(result["data"]["x"])
        return fig

    mod.PRECISION, mod.Config, mod.measure, mod.plot = "float64", Config, measure, plot
    return mod


@pytest.fixture
def fake_registry(monkeypatch):
    def install(interrupt=False):
        monkeypatch.setitem(sys.modules, "fake_claim", _fake_module(interrupt))
        monkeypatch.setattr(claims, "CLAIMS", {"fake": claims.ClaimSpec("fake", "x = sqrt(x)^2", "nobody", "fake_claim")})
    return install


def test_reproduce_report_and_plot(tmp_path, capsys, fake_registry):
    fake_registry()
    assert main(["reproduce", "--full", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    r = json.loads((tmp_path / "results" / "full" / "fake.json").read_text())
    assert r["preset"] == "full" and r["config"]["x"] == 3.0 and r["verdict"] == "pass" and r["precision"] == "float64"
    assert r["figure"] == "figures/full/fake.png"
    assert "| `fake` |" in out and "reproduced 1 claims" in out
    png = tmp_path / "figures" / "full" / "fake.png"
    png.unlink()
    assert main(["plot", "--full", "--out", str(tmp_path)]) == 0 and png.is_file()
    assert main(["report", "--full", "--out", str(tmp_path)]) == 0
    assert "sqrt squared" in capsys.readouterr().out
    # the quick preset has its own files: nothing at quick yet, and a quick run leaves full untouched
    assert main(["report", "--out", str(tmp_path)]) == 2
    assert "no results file" in capsys.readouterr().err
    assert main(["run", "fake", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "results" / "fake.json").read_text())["config"]["x"] == 2.0
    assert json.loads((tmp_path / "results" / "full" / "fake.json").read_text())["config"]["x"] == 3.0


def test_report_markdown_hook_and_readme_blocks(tmp_path, capsys, fake_registry):
    """A claim module's report_markdown(result) is appended to the report; README blocks per preset."""
    fake_registry()
    sys.modules["fake_claim"].report_markdown = lambda r: f"| x |\n|---|\n| {r['data']['x'][0]} |"
    assert main(["run", "fake", "--full", "--out", str(tmp_path)]) == 0
    table = runner.report(tmp_path, preset="full")
    assert table.endswith("| x |\n|---|\n| 3.0 |\n") and "**`fake`** (full preset)" in table
    readme = tmp_path / "README.md"
    quick_start, quick_end = runner._markers("quick")
    full_start, full_end = runner._markers("full")
    readme.write_text(f"a\n{quick_start}\nold\n{quick_end}\nb\n{full_start}\nold\n{full_end}\nc\n")
    runner.update_readme(table, readme, preset="full")
    assert runner.readme_table(readme, preset="full") == table
    assert runner.readme_table(readme, preset="quick") == "old\n"
    assert main(["report", "--full", "--out", str(tmp_path / "empty")]) == 2
    assert "no results files at preset 'full'" in capsys.readouterr().err


def test_interrupt_writes_nothing(tmp_path, capsys, fake_registry):
    fake_registry(interrupt=True)
    assert main(["run", "fake", "--out", str(tmp_path)]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert not any(p.suffix in (".json", ".png", ".svg", ".tmp") for p in _files(tmp_path))
