"""The `sandbox` CLI: listing, bad input (exit 2, one line, nothing written), report, README table."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from theory.cli import main
from theory.harness import registry as claims
from theory.harness import report, runner

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


def test_readme_and_report_match_committed_results():
    """README's summary blocks and REPORT.md are generated from results/ and must not be stale."""
    text = (REPO / "README.md").read_text()
    for preset in runner.PRESETS:
        assert report.readme_block(text, preset) == report.summary(None, preset), \
            f"README {preset} summary is stale: run `sandbox report`"
    assert (REPO / "REPORT.md").read_text() == report.full_report(None), "REPORT.md is stale: run `sandbox report`"


# --- reproduce / report / plot / interrupt, wired end to end through a tiny fake claim -------------
def _fake_module(interrupt: bool = False):
    import dataclasses
    import types

    import jax.numpy as jnp

    from theory.harness.parts import Part
    from theory.harness.plotting import figure
    from theory.harness.results import close

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

    def predict(cfg):
        return {"x": cfg.x}

    def measure(cfg, keys, progress):
        if interrupt:
            raise KeyboardInterrupt
        _ = keys.sub("noise").key
        return {"x": float(jnp.sqrt(jnp.asarray(cfg.x)) ** 2)}

    def judge(cfg, P, M):
        return [close("sqrt_squared", "sqrt(x)^2 equals x", "exact", P["x"], M["x"], 1e-6, "float rounding")]

    def plot(result):
        fig, ax = figure(1, 1)
        ax[0, 0].plot([result["data"]["square"]["measured"]["x"]])
        return fig

    mod.PRECISION, mod.Config, mod.plot = "float64", Config, plot
    mod.PARTS = (Part("square", predict, measure, judge),)
    return mod


@pytest.fixture
def fake_registry(monkeypatch):
    def install(interrupt=False):
        monkeypatch.setitem(sys.modules, "fake_claim", _fake_module(interrupt))
        spec = claims.ClaimSpec("fake", "x = sqrt(x)^2", "nobody", "fake_claim")
        monkeypatch.setattr(claims, "CLAIMS", {"fake": spec})
    return install


def test_reproduce_report_and_plot(tmp_path, capsys, fake_registry):
    fake_registry()
    assert main(["reproduce", "--full", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    r = json.loads((tmp_path / "results" / "full" / "fake.json").read_text())
    assert r["preset"] == "full" and r["config"]["x"] == 3.0 and r["verdict"] == "pass" and r["precision"] == "float64"
    assert r["figure"] == "figures/full/fake.png" and r["streams"] == ["square/noise"]
    assert r["checks"][0]["part"] == "square" and r["data"]["square"]["predicted"] == {"x": 3.0}
    assert "[`fake`](REPORT.md#fake-full)" in out and "reproduced 1 claims" in out
    assert "REPORT.md not written" in out             # no quick results under this --out yet
    png = tmp_path / "figures" / "full" / "fake.png"
    png.unlink()
    assert main(["plot", "--full", "--out", str(tmp_path)]) == 0 and png.is_file()
    # the quick preset has its own files: nothing at quick yet, and a quick run leaves full untouched
    assert main(["report", "--out", str(tmp_path)]) == 2
    assert "no results file" in capsys.readouterr().err
    assert main(["run", "fake", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "results" / "fake.json").read_text())["config"]["x"] == 2.0
    assert json.loads((tmp_path / "results" / "full" / "fake.json").read_text())["config"]["x"] == 3.0
    assert main(["report", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "REPORT.md").read_text()
    assert "## quick preset" in text and "## full preset" in text and "sqrt(x)^2 equals x" in text
    assert "![fake](figures/fake.png)" in text and "![fake](figures/full/fake.png)" in text


def test_report_markdown_hook_and_readme_blocks(tmp_path, capsys, fake_registry):
    """A claim module's report_markdown(result) goes into REPORT.md; README blocks per preset."""
    fake_registry()
    sys.modules["fake_claim"].report_markdown = lambda r: f"| x |\n|---|\n| {r['data']['square']['measured']['x']} |"
    assert main(["run", "fake", "--out", str(tmp_path)]) == 0
    readme = tmp_path / "README.md"
    q0, q1 = report.markers("quick")
    f0, f1 = report.markers("full")
    readme.write_text(f"a\n{q0}\nold\n{q1}\nb\n{f0}\nold\n{f1}\nc\n")
    assert main(["report", "--out", str(tmp_path)]) == 0
    text = readme.read_text()
    assert report.readme_block(text, "quick") == report.summary(tmp_path, "quick")
    assert "No full-preset results yet" in report.readme_block(text, "full")
    assert text.startswith("a\n") and text.endswith("c\n")
    assert "| x |\n|---|\n| 2.0" in (tmp_path / "REPORT.md").read_text()


def test_interrupt_writes_nothing(tmp_path, capsys, fake_registry):
    fake_registry(interrupt=True)
    assert main(["run", "fake", "--out", str(tmp_path)]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert not any(p.suffix in (".json", ".png", ".svg", ".tmp") for p in _files(tmp_path))
