"""The `sandbox` CLI: listing, bad input (exit 2, one line, nothing written), report, README table."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from reliability import record

from theory.cli import main
from theory.errors import SandboxError
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


@pytest.mark.claim          # trains a (diverging) run: claim tier, not the unit loop
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
    block = report.reliability_block(text)
    if block is not None:                         # the README carries the reliability markers
        assert block == report.reliability(None), "README reliability table is stale: run `sandbox report`"


# --- reproduce / report / plot / interrupt, wired end to end through a tiny fake claim -------------
def _fake_module(interrupt: bool = False, value: float | None = None, boom: bool = False,
                 duplicate: bool = False, plot_fails: bool = False, unbounded: tuple = ()):
    """A two-part claim: `square` (x = sqrt(x)^2) and `lengths` (one check per entry of `lengths`,
    enabled by `extra`). `value` replaces the measurement of x (e.g. nan), `boom` makes measure
    raise a RuntimeError (a bug), `duplicate` makes the second part repeat a check name."""
    import dataclasses
    import types

    import jax.numpy as jnp

    from theory.harness.parts import Part
    from theory.harness.plotting import figure
    from theory.harness.results import at_least, close

    mod = types.ModuleType("fake_claim")

    @dataclasses.dataclass(frozen=True)
    class Config:
        TOLERANCES = ("tol",)
        x: float = 2.0
        extra: bool = True
        lengths: tuple[int, ...] = (1, 2)
        tol: float = 1e-6
        seeds: int = 1

        @classmethod
        def quick(cls):
            return cls()

        @classmethod
        def full(cls):
            return cls(x=3.0)

        def validate(self):
            if self.x <= 0:
                raise SandboxError(f"x must be positive, got {self.x}")

    def predict(cfg):
        return {"x": cfg.x}

    def measure(cfg, keys, progress):
        if interrupt:
            raise KeyboardInterrupt
        if boom:
            raise RuntimeError("an unexpected bug\nwith a second line")
        _ = keys.sub("noise").key
        return {"x": float(jnp.sqrt(jnp.asarray(cfg.x)) ** 2) if value is None else value}

    def judge(cfg, P, M):
        return [close("sqrt_squared", "sqrt(x)^2 equals x", "exact", P["x"], float(M["x"]), cfg.tol,
                      "float rounding")]

    def judge_lengths(cfg, P, M):
        if duplicate:
            return [close("sqrt_squared", "again", "exact", 1.0, 1.0, 0.0, "float rounding")]
        return [at_least(f"length_{n}_positive", f"length {n} is positive", "exact", 1, n, "arithmetic")
                for n in M["n"]]

    def plot(result):
        if plot_fails:
            raise RuntimeError("the figure failed")
        fig, ax = figure(1, 1)
        ax[0, 0].plot([float(result["data"]["square"]["measured"]["x"])])
        return fig

    mod.PRECISION, mod.Config, mod.plot = "float64", Config, plot
    mod.PARTS = (Part("square", predict, measure, judge, unbounded=unbounded),
                 Part("lengths", lambda cfg: {}, lambda cfg, keys, progress: {"n": list(cfg.lengths)},
                      judge_lengths, enabled=lambda cfg: cfg.extra))
    return mod


@pytest.fixture
def fake_registry(monkeypatch):
    def install(**kw):
        monkeypatch.setitem(sys.modules, "fake_claim", _fake_module(**kw))
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


# --- exit codes -----------------------------------------------------------------------------------
def _err_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_run_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    for code, words in ((0, "passed"), (1, "check failed"), (2, "bad input"), (3, "internal error"),
                        (130, "interrupted")):
        assert any(line.strip().startswith(str(code)) and words in line for line in out.splitlines()), code
    record("exit codes", "sandbox run --help", "the epilog lists exit codes 0, 1, 2, 3 and 130")


def test_internal_error_is_one_line_exit_3_and_debug_shows_the_traceback(tmp_path, capsys, fake_registry):
    fake_registry(boom=True)
    assert main(["run", "fake", "--out", str(tmp_path)]) == 3
    lines = _err_lines(capsys)
    assert lines == ["sandbox: internal error: RuntimeError: an unexpected bug with a second line "
                     "(rerun with --debug for the traceback)"]
    assert _files(tmp_path) == [] and not (tmp_path / "results").exists()
    assert main(["--debug", "run", "fake", "--out", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "RuntimeError" in err
    assert main(["run", "fake", "--debug", "--out", str(tmp_path)]) == 3       # after the subcommand too
    assert "Traceback" in capsys.readouterr().err
    record("exit codes", "a claim whose measurement raises an unexpected exception (a bug)",
           f"exit 3, {len(lines)} line naming the exception, nothing written; --debug prints the traceback")


def test_argparse_errors_are_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "gd_equivalence", "--seed", "abc"])
    lines = _err_lines(capsys)
    assert e.value.code == 2 and len(lines) == 1 and "invalid int value: 'abc'" in lines[0]


# --- bad input: one line, exit 2, nothing written ---------------------------------------------------
@pytest.mark.parametrize("claim, args, message", [
    ("scan_snap", ["--set", "snap_eta_Y="], "snap_eta_Y must hold at least one value"),
    ("scan_snap", ["--set", "snap_eta_Y=1"], "snap_eta_Y needs at least 2 values"),
    ("scan_snap", ["--set", "snap_eta_Y=(0.5,1"], "unbalanced brackets"),
    ("scan_snap", ["--set", "snap_eta_Y=0.5,,2"], "empty element"),
    ("gd_equivalence", ["--seed", "99999999999999999999"], "seed must be an integer in [0, 2^31)"),
    ("gd_equivalence", ["--seed", "4294967296"], "seed must be an integer in [0, 2^31)"),
    ("gd_equivalence", ["--set", "steps=1000000000000"], "steps must lie within"),
    ("gd_equivalence", ["--set", "d=100000000"], "d = 100000000 needs ~"),
    ("svm_bias", ["--set", "d=100000000"], "d = 100000000 needs ~"),
    ("gd_equivalence", ["--set", "lr=nan"], "lr must be a finite number"),
    ("gd_equivalence", ["--set", "lr=inf"], "lr must be a finite number"),
    ("rank_growth", ["--set", "top_tol=inf"], "top_tol is a tolerance"),
    ("rank_growth", ["--set", "top_tol=0.5"], "top_tol is a tolerance"),
    ("gd_equivalence", ["--set", "d=5", "--set", "d=6"], "--set d given twice"),
    ("gd_equivalence", ["--seeds", "2", "--set", "seeds=3"], "--seeds and --set seeds"),
])
def test_issue_bad_inputs_are_refused(tmp_path, capsys, claim, args, message):
    out = tmp_path / "out"
    assert main(["run", claim, "--out", str(out), *args]) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("sandbox: error:") and message in lines[0], lines
    assert not out.exists()
    record("bad input", f"sandbox run {claim} {' '.join(args)}",
           f"exit 2, {len(lines)} line ({message!r}), nothing written")


def test_memory_message_names_the_machine(tmp_path, capsys):
    from theory.harness.config import GIB, physical_memory
    assert main(["run", "svm_bias", "--out", str(tmp_path), "--set", "d=100000000"]) == 2
    line = _err_lines(capsys)[0]
    assert f"this machine has {physical_memory() / GIB:.3g} GiB" in line


# --- overrides are never the preset ---------------------------------------------------------------
def test_overrides_go_to_custom_with_changed_fields(tmp_path, capsys, fake_registry):
    fake_registry()
    assert main(["run", "fake", "--out", str(tmp_path)]) == 0
    quick = (tmp_path / "results" / "fake.json").read_bytes()
    capsys.readouterr()
    assert main(["run", "fake", "--out", str(tmp_path), "--set", "x=5"]) == 0
    out = capsys.readouterr().out
    customs = sorted((tmp_path / "results" / "custom").glob("fake-*.json"))
    assert len(customs) == 1 and (tmp_path / "results" / "fake.json").read_bytes() == quick
    r = json.loads(customs[0].read_text())
    assert r["preset"] == "custom" and r["base_preset"] == "quick" and r["changed"] == {"x": [2.0, 5.0]}
    assert r["skipped"] == [] and r["verdict"] == "pass" and r["figure"] == f"figures/custom/{customs[0].stem}.png"
    assert (tmp_path / "figures" / "custom" / f"{customs[0].stem}.svg").is_file()
    assert len(customs[0].stem.split("-", 1)[1]) == runner.TAG_HEX
    assert "custom from quick" in out and "changed: x: 2 -> 5" in out
    # the same command lands in the same file; another seed or --seeds is custom too, --seeds = preset's is not
    assert main(["run", "fake", "--out", str(tmp_path), "--set", "x=5"]) == 0
    assert main(["run", "fake", "--out", str(tmp_path), "--seed", "1"]) == 0
    assert main(["run", "fake", "--out", str(tmp_path), "--seeds", "2"]) == 0
    capsys.readouterr()
    assert main(["run", "fake", "--out", str(tmp_path), "--seeds", "1"]) == 0    # the preset's own --seeds
    assert "sanity 0/0; quick," in capsys.readouterr().out
    assert len(list((tmp_path / "results" / "custom").glob("fake-*.json"))) == 3
    record("custom runs", "sandbox run NAME --set x=5 (and --seed 1, --seeds 2) beside an existing quick result",
           "written to results/custom/<claim>-<hash>.json with base_preset and changed; the quick result "
           "is untouched; --seeds equal to the preset's stays quick")


def test_a_disabled_part_is_skipped_and_never_a_plain_pass(tmp_path, capsys, fake_registry):
    fake_registry()
    assert main(["run", "fake", "--out", str(tmp_path), "--set", "extra=false"]) == 1
    out = capsys.readouterr().out
    r = json.loads(next((tmp_path / "results" / "custom").glob("fake-*.json")).read_text())
    assert r["verdict"] == "partial" and [c["name"] for c in r["checks"]] == ["sqrt_squared"]
    assert r["skipped"] == [{"name": None, "part": "lengths", "reason": "part lengths is disabled by this config"}]
    assert "fake: PARTIAL (evidence 1/1, sanity 0/0, 1 skipped" in out and "all of part lengths" in out
    record("custom runs", "a --set that disables a part (sampled=false, depths=, nope=false)",
           f"verdict {r['verdict']}, exit 1, the part's checks listed as skipped")


def test_fewer_values_skip_the_committed_checks_by_name(tmp_path, capsys, fake_registry, monkeypatch):
    """With a committed base result (here in a fake repository) the skipped checks are named one by one."""
    fake_registry()
    repo = tmp_path / "repo"
    monkeypatch.setattr(runner, "REPO", repo)
    assert main(["run", "fake", "--out", str(repo)]) == 0                       # the "committed" quick result
    assert main(["run", "fake", "--out", str(tmp_path / "o"), "--set", "lengths=(1,)"]) == 1
    r = json.loads(next((tmp_path / "o" / "results" / "custom").glob("fake-*.json")).read_text())
    assert [s["name"] for s in r["skipped"]] == ["length_2_positive"] and r["verdict"] == "partial"
    assert main(["run", "fake", "--out", str(tmp_path / "o"), "--set", "extra=0"]) == 1
    names = {s["name"] for p in (tmp_path / "o" / "results" / "custom").glob("fake-*.json")
             for s in json.loads(p.read_text())["skipped"]}
    assert {"length_1_positive", "length_2_positive"} <= names
    text = report.claim_section(read_result_of(r), None)
    assert "Custom run from the quick preset: changed lengths: (1, 2) -> (1,)" in text and "length_2_positive" in text
    record("custom runs", "a --set with fewer values (lengths=(1,), shorter eval_lengths)",
           "each check of the committed base result the run lacks is listed as skipped by name")


def test_report_section_shows_the_time_of_each_part(tmp_path, fake_registry):
    fake_registry()
    assert main(["run", "fake", "--out", str(tmp_path)]) == 0
    r = json.loads((tmp_path / "results" / "fake.json").read_text())
    assert "Time per part:" not in report.claim_section({**r, "part_seconds": None}, None)
    text = report.claim_section({**r, "part_seconds": {"first": 12.4, "second": 0.6}}, None)
    assert "Time per part: first 12 s, second 1 s." in text


def test_timings_table_names_the_pytest_workers(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "test_times.json").write_text(json.dumps({
        "default (`pytest`)": {"tests": 9, "seconds": 120, "cpus": 2, "workers": 2, "date": "2026-12-02"},
        "unit": {"tests": 3, "seconds": 60, "cpus": 2, "date": "2026-12-01"}}))
    lines = report.timings(tmp_path).splitlines()
    assert "| default (`pytest`) | 9 | 2.0 min | 2 (2 pytest workers) | 2026-12-02 |" in lines
    assert "| unit | 3 | 1.0 min | 2 | 2026-12-01 |" in lines          # a record without workers: one process


def read_result_of(r: dict) -> dict:
    return {**r}


def test_tolerances_are_not_settable(tmp_path, capsys, fake_registry):
    fake_registry()
    assert main(["run", "fake", "--out", str(tmp_path), "--set", "tol=1"]) == 2
    assert "tol is a tolerance" in capsys.readouterr().err and not tmp_path.joinpath("results").exists()


# --- divergence and non-finite measurements -----------------------------------------------------------
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_measurement_is_a_divergence(tmp_path, capsys, fake_registry, value):
    fake_registry(value=value)
    out = tmp_path / "new"
    assert main(["run", "fake", "--out", str(out)]) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and "part square diverged: measured.x =" in lines[0]
    assert not out.exists(), "a failed run leaves no folders behind"
    record("divergence", f"a part measuring {value} outside the training loop",
           f"exit 2, {len(lines)} line naming the part and key, no result, no figure, no folder")


def test_declared_unbounded_allows_plus_inf_only(tmp_path, capsys, fake_registry):
    fake_registry(value=float("inf"), unbounded=("x",))
    assert main(["run", "fake", "--out", str(tmp_path)]) == 1          # the check fails; nothing diverged
    r = json.loads((tmp_path / "results" / "fake.json").read_text())
    assert r["data"]["square"]["measured"]["x"] == "inf" and not r["checks"][0]["passed"]
    fake_registry(value=float("nan"), unbounded=("x",))
    assert main(["run", "fake", "--out", str(tmp_path / "b")]) == 2


@pytest.mark.claim
@pytest.mark.filterwarnings("ignore::RuntimeWarning")     # numpy's 0/0 and scipy's constant-input warnings
def test_scan_snap_divergence_writes_nothing(tmp_path, capsys):
    """The issue's case: a huge invariant_eta_Y makes the scan part's spread 0/0 (the CLI shows the
    warnings and then the one error line; pytest would turn the warnings into errors)."""
    out = tmp_path / "out"
    code = main(["run", "scan_snap", "--out", str(out), "--set", "invariant_eta_Y=1e9", "--set", "sampled=false",
                 "--set", "scan_steps=200", "--set", "invariant_step=100", "--set", "order_step=200",
                 "--set", "snap_steps=100"])
    lines = [ln for ln in _err_lines(capsys) if ln.startswith("sandbox:")]
    assert code == 2 and len(lines) == 1 and "part scan diverged" in lines[0] and "nan" in lines[0]
    assert not out.exists()
    record("divergence", "sandbox run scan_snap --set invariant_eta_Y=1e9 (tiny sizes)",
           f"exit {code}, one line naming part scan and the NaN key, no result, no figure")


# --- outputs ---------------------------------------------------------------------------------------
def test_outputs_follow_the_umask(tmp_path, fake_registry):
    fake_registry()
    old = os.umask(0o027)
    try:
        assert main(["run", "fake", "--out", str(tmp_path)]) == 0
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in _files(tmp_path)}
    assert modes == {"fake.json": 0o640, "fake.png": 0o640, "fake.svg": 0o640}, modes
    record("outputs", "sandbox run under umask 027", "result and figures are mode 0640 (0o666 & ~umask)")


def test_failed_figure_leaves_no_temp_file_and_no_folder(tmp_path, capsys, fake_registry):
    fake_registry(plot_fails=True)
    out = tmp_path / "new"
    assert main(["run", "fake", "--out", str(out)]) == 3
    assert not out.exists()
    fake_registry()
    assert main(["run", "fake", "--out", str(out)]) == 0
    fake_registry(plot_fails=True)
    assert main(["plot", "fake", "--out", str(out)]) == 3
    assert sorted(p.name for p in _files(out)) == ["fake.json", "fake.png", "fake.svg"]
    record("outputs", "a figure that raises while a run or a redraw writes it",
           "exit 3; no temporary file, no half-written figure, no folder left behind")


def test_redrawn_figures_are_byte_identical(tmp_path, fake_registry):
    fake_registry()
    assert main(["run", "fake", "--out", str(tmp_path)]) == 0
    figs = [tmp_path / "figures" / "fake.png", tmp_path / "figures" / "fake.svg"]
    first = [p.read_bytes() for p in figs]
    assert main(["plot", "fake", "--out", str(tmp_path)]) == 0
    assert [p.read_bytes() for p in figs] == first
    assert b"<dc:date>" not in first[1] and b"matplotlib" not in first[0]


def test_a_real_claims_figure_redraws_byte_identical(tmp_path):
    import shutil
    (tmp_path / "results").mkdir()
    shutil.copy(REPO / "results" / "scan_snap.json", tmp_path / "results" / "scan_snap.json")
    png = runner.replot("scan_snap", tmp_path)
    svg = png.with_suffix(".svg")
    first = (png.read_bytes(), svg.read_bytes())
    runner.replot("scan_snap", tmp_path)
    assert (png.read_bytes(), svg.read_bytes()) == first
    record("outputs", "sandbox plot scan_snap twice", "identical PNG and SVG bytes (fixed hash salt, no dates)")


def test_plot_unknown_claim(capsys):
    assert main(["plot", "nosuch"]) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and "unknown claim 'nosuch'" in lines[0]
    record("bad input", "sandbox plot nosuch", "exit 2, one line: unknown claim, listing the known ones")


def test_a_repeated_check_name_is_refused(tmp_path, capsys, fake_registry):
    fake_registry(duplicate=True)
    assert main(["run", "fake", "--out", str(tmp_path)]) == 3
    assert "check names repeat within one result: ['sqrt_squared']" in capsys.readouterr().err
    assert _files(tmp_path) == []


# --- report: the README of the root it reads ---------------------------------------------------------
def test_report_writes_only_its_own_roots_readme(tmp_path, capsys, fake_registry):
    fake_registry()
    checkout_readme = (REPO / "README.md").read_bytes()
    assert main(["run", "fake", "--out", str(tmp_path)]) == 0
    q0, q1 = report.markers("quick")
    f0, f1 = report.markers("full")
    r0, r1 = report.RELIABILITY
    (tmp_path / "README.md").write_text(f"{q0}\nold\n{q1}\n{f0}\nold\n{f1}\n{r0}\nold\n{r1}\n")
    assert main(["report", "--out", str(tmp_path), "--readme", str(REPO / "README.md")]) == 2
    assert "refusing to write another directory's numbers" in capsys.readouterr().err
    assert main(["report", "--out", str(tmp_path), "--readme", str(tmp_path / "README.md")]) == 0
    text = (tmp_path / "README.md").read_text()
    assert "[`fake`](REPORT.md#fake-quick)" in text and "No reliability table yet" in text
    assert (REPO / "README.md").read_bytes() == checkout_readme
    record("report", "sandbox report --out DIR --readme <the checkout's README.md>",
           "exit 2, refused; with DIR/README.md it writes DIR's numbers there and the checkout's README is unchanged")


def test_report_renders_the_reliability_table(tmp_path, capsys, fake_registry):
    fake_registry()
    assert main(["run", "fake", "--out", str(tmp_path)]) == 0
    rows = [{"area": "b", "tried": "x | y", "outcome": "ok", "test": "t"}]
    (tmp_path / "results" / "reliability.json").write_text(json.dumps({"rows": rows}))
    r0, r1 = report.RELIABILITY
    q0, q1 = report.markers("quick")
    f0, f1 = report.markers("full")
    (tmp_path / "README.md").write_text(f"{q0}\n{q1}\n{f0}\n{f1}\nA\n{r0}\nold\n{r1}\nZ\n")
    assert main(["report", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "README.md").read_text()
    assert "| area | what was tried | what happened |" in text and "| b | x \\| y | ok |" in text
    assert report.reliability_block(text) == report.reliability(tmp_path) and text.endswith(f"{r1}\nZ\n")


def test_report_custom_section(tmp_path, capsys, fake_registry):
    fake_registry()
    assert main(["run", "fake", "--out", str(tmp_path)]) == 0
    assert main(["run", "fake", "--out", str(tmp_path), "--set", "extra=false"]) == 1
    assert main(["report", "--out", str(tmp_path), "--custom"]) == 0
    text = (tmp_path / "REPORT.md").read_text()
    assert "## custom runs" in text and "changed extra: true -> false" in text and "all of part lengths" in text
    assert main(["report", "--out", str(tmp_path)]) == 0
    assert "## custom runs" not in (tmp_path / "REPORT.md").read_text()


def test_reproduce_skips_up_to_date_claims_unless_forced(tmp_path, capsys, fake_registry, monkeypatch):
    fake_registry()
    assert main(["reproduce", "--out", str(tmp_path)]) == 0
    first = json.loads((tmp_path / "results" / "fake.json").read_text())
    assert first["code"] and first["resumed"] is False
    capsys.readouterr()
    assert main(["reproduce", "--out", str(tmp_path)]) == 0
    assert "up to date with the code and preset, not rerun" in capsys.readouterr().out
    assert json.loads((tmp_path / "results" / "fake.json").read_text()) == first       # untouched
    assert main(["reproduce", "--force", "--out", str(tmp_path)]) == 0
    assert "up to date" not in capsys.readouterr().out
    from theory.harness import runner
    monkeypatch.setattr(runner.checkpoint, "code_fingerprint", lambda root: "other code")
    assert runner.up_to_date("fake", "quick", tmp_path) is None                        # code changed: rerun
    record("resume", "`sandbox reproduce` twice, then with --force, then after a code change",
           "second run skips the up-to-date claim (result untouched); --force and changed code rerun it")


# --- reproduce --jobs: claims in child processes (theory/harness/jobs.py) ---------------------------
_CHILD = """
import sys
sys.path.insert(0, {tests!r})
import test_cli
from theory.harness import registry as claims
sys.modules["fake_claim"] = test_cli._fake_module(value={value!r})
claims.CLAIMS = {{n: claims.ClaimSpec(n, "x = sqrt(x)^2", "nobody", "fake_claim") for n in ("fake_a", "fake_b")}}
from theory.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _two_fakes(monkeypatch, tmp_path, value=None):
    """Claims fake_a and fake_b (the fake module) here and in every child `sandbox run`."""
    from theory.harness import jobs
    monkeypatch.setitem(sys.modules, "fake_claim", _fake_module(value=value))
    monkeypatch.setattr(claims, "CLAIMS", {n: claims.ClaimSpec(n, "x = sqrt(x)^2", "nobody", "fake_claim")
                                           for n in ("fake_a", "fake_b")})
    code = _CHILD.format(tests=str(Path(__file__).parent), value=value).replace("nan", "float('nan')")
    monkeypatch.setattr(jobs, "run_argv", lambda name, preset, out: [sys.executable, "-c", code, "run", name]
                        + (["--full"] if preset == "full" else []) + ["--out", str(out)])


@pytest.mark.process       # child `sandbox run`s, each importing JAX
def test_reproduce_with_jobs_runs_children_and_equals_one_process(tmp_path, capsys, monkeypatch):
    _two_fakes(monkeypatch, tmp_path)
    assert main(["reproduce", "--jobs", "2", "--out", str(tmp_path / "par")]) == 0
    out = capsys.readouterr().out
    assert "2 at a time, each in its own process" in out and "[fake_a]" in out and "[fake_b]" in out
    assert "reproduced 2 claims" in out and "failed: none" in out
    assert main(["reproduce", "--out", str(tmp_path / "seq")]) == 0
    for n in ("fake_a", "fake_b"):
        a, b = (json.loads((tmp_path / d / "results" / f"{n}.json").read_text()) for d in ("par", "seq"))
        assert a["checks"] == b["checks"] and a["data"] == b["data"] and a["code"] == b["code"]
    times = json.loads((tmp_path / "par" / "results" / "reproduce_times.json").read_text())["quick"]["2"]
    assert set(times["claims"]) == {"fake_a", "fake_b"} and times["seconds"] > 0
    table = report.timings(tmp_path / "par")          # a claim that shared the cores has no row of its own
    assert "`sandbox run fake_a`" not in table
    assert "| `sandbox reproduce --jobs 2` (every claim, quick; 2 claims" in table
    table = report.timings(tmp_path / "seq")
    assert "| `sandbox reproduce` (every claim, quick; one claim at a time) |" in table
    assert "| `sandbox run fake_a` (quick) |" in table
    assert "shared the cores, 2 claims at a time, in one `sandbox reproduce --jobs 2`" in report.summary(
        tmp_path / "par", "quick")
    assert "Total measured wall time of these quick-preset runs" in report.summary(tmp_path / "seq", "quick")
    assert main(["reproduce", "--jobs", "2", "--out", str(tmp_path / "par")]) == 0     # up to date: no child
    assert "each in its own process" not in capsys.readouterr().out
    again = json.loads((tmp_path / "par" / "results" / "reproduce_times.json").read_text())["quick"]["2"]
    assert again == times                  # nothing ran: not a whole reproduce, the record is kept


@pytest.mark.process       # child `sandbox run`s, each importing JAX
def test_reproduce_with_jobs_reports_failed_and_broken_children(tmp_path, capsys, monkeypatch):
    _two_fakes(monkeypatch, tmp_path, value=5.0)             # a wrong measurement: both claims fail
    assert main(["reproduce", "--jobs", "2", "--out", str(tmp_path)]) == 1
    assert "failed: fake_a, fake_b" in capsys.readouterr().out
    _two_fakes(monkeypatch, tmp_path, value=float("nan"))    # a non-finite measurement: exit 2 in the child
    assert main(["reproduce", "--jobs", "2", "--force", "--out", str(tmp_path / "nan")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "claims that did not finish: fake_a (exit 2), fake_b (exit 2)" in err[0]


@pytest.mark.parametrize("bad", ["0", "-1", "x", "1.5"])
def test_reproduce_refuses_bad_job_counts(bad, tmp_path, capsys):
    try:
        code = main(["reproduce", "--jobs", bad, "--out", str(tmp_path)])
    except SystemExit as e:              # argparse refuses a non-integer
        code = e.code
    assert code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1 and not any(tmp_path.iterdir())


def test_longest_first_and_run_all_order():
    from theory.harness import jobs
    assert jobs.longest_first(["a", "b", "c", "d"], {"a": 5.0, "b": None, "c": 50.0}) == ["b", "d", "c", "a"]
    argv = {n: [sys.executable, "-c", f"print('line of {n}'); raise SystemExit({c})"] for n, c in
            (("p", 0), ("q", 1), ("r", 3))}
    assert jobs.run_all(["p", "q", "r"], 2, argv.__getitem__) == {"p": 0, "q": 1, "r": 3}


def test_run_all_passes_a_signal_on_and_raises_interrupted():
    import signal
    import threading

    from theory.engine import interrupt
    from theory.harness import jobs
    child = ("import signal, sys, time\n"
             "signal.signal(signal.SIGINT, lambda *a: sys.exit(130))\nprint('ready', flush=True)\ntime.sleep(60)")
    t0 = __import__("time").monotonic()
    with interrupt.interruptible():
        threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
        with pytest.raises(interrupt.Interrupted) as e:
            jobs.run_all(["a", "b", "c"], 2, lambda n: [sys.executable, "-c", child])
    assert "not started" in str(e.value) and "c" in str(e.value) and e.value.exit_code == 130
    assert __import__("time").monotonic() - t0 < 9
