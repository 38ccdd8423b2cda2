"""Smoke tests of `sandbox bench`'s pieces at tiny sizes (theory/bench). No timing is asserted:
only that each piece runs, counts what it claims to count, and that the RPE baseline trains on
the same batches as the engine (the same losses)."""
from __future__ import annotations

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.length_generalization.config import Config
from theory import bench
from theory.bench import claims, machine, rpe
from theory.engine.keys import Keys


def test_timed_counts_a_fresh_compile_and_none_on_reuse():
    f = jax.jit(lambda x: jnp.sin(x) * 3.0 + 0.123456)
    first = machine.Timed(f, jnp.arange(7.0))
    again = machine.Timed(f, jnp.arange(7.0))
    assert first.programs >= 1 and first.compile_seconds > 0
    assert again.programs == 0
    assert machine.matmul_flops_per_second(n=64, repeats=1) > 0


def test_run_child_reports_its_own_peak_memory():
    small = machine.run_child([sys.executable, "-c", "print('ok')"])
    big = machine.run_child([sys.executable, "-c", "b = bytearray(300 * 2 ** 20); print(len(b))"])
    assert small["exit_code"] == 0 and small["output_tail"] == ["ok"]
    assert big["peak_rss_bytes"] > small["peak_rss_bytes"] + 200 * 2 ** 20


def test_claim_names_are_the_experiments():
    assert "length_generalization" in claims.claim_names() and "gd_equivalence" in claims.claim_names()


TINY = Config(d_model=16, n_heads=2, n_layers=1, d_ff=16, batch=4, train_max_len=8, train_buckets=2,
              max_pos=64, steps=4, log_every=2, nope_steps=2, eval_lengths=(4, 8), nope_lengths=(4,),
              eval_batch=8, eval_chunk=8, sampler_n=4, sampler_draws=100)


@pytest.fixture(scope="module")
def lg_capture():
    return claims.capture("length_generalization", TINY)


def test_capture_finds_the_claims_first_training_call(lg_capture):
    cap = lg_capture
    assert cap.part == "even_pairs" and cap.run_fn is not None
    assert set(cap.values) == {"randomized", "causal", "gain"}
    t = cap.train
    assert t["steps"] == TINY.steps and not claims._is_traced(t["params"])
    assert hasattr(t["grad_fn"], "loss_at")                     # the claim trains with length buckets


@pytest.mark.claim          # trains: claim tier, not the unit loop
def test_fused_and_naive_loops_train_the_same_steps(lg_capture):
    t = lg_capture.train
    params, trace = claims.fused_run(t, 2)(t["params"])
    naive = claims.naive_loop(t, 2)()
    for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(naive)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)


@pytest.mark.claim          # trains: claim tier, not the unit loop
def test_seeds_row_runs_the_claims_own_run_function(lg_capture):
    r = claims.seeds_row(lg_capture, 2, 2)
    assert r["K"] == 2 and r["vmapped_programs"] >= 1 and r["vmapped_seconds"] > 0 and r["sequential_seconds"] > 0


def test_useful_flops_of_a_bucketed_step(lg_capture):
    f = claims.useful_flops(lg_capture.train)
    assert 0 < f["useful"] < f["step"] < f["pad"]


@pytest.mark.claim          # trains: claim tier, not the unit loop
def test_rpe_baseline_sees_the_engines_batches():
    """The public-code loop and the engine run the same lengths, batches and init: equal losses."""
    cfg = Config(task="reverse_string", train_max_len=2, n_layers=1, n_heads=2, d_model=8, d_ff=8,
                 batch=4, per="batch", steps=4, log_every=2, train_buckets=2)
    keys = Keys(0).sub("test", "rpe")
    o, b = rpe.ours(cfg, keys), rpe.baseline(cfg, keys)
    per_log = np.asarray(b["losses"]).reshape(-1, cfg.log_every).mean(axis=1)
    np.testing.assert_allclose(per_log, o["log_losses"], rtol=1e-4)
    assert b["programs"] >= b["lengths_met"] >= 1 and o["programs"] >= 1


def test_table_and_json_of_a_result(tmp_path):
    claim = {"part": "p", "steps": 2, "fused_steps_per_second": 10.0, "naive_steps_per_second": 5.0,
             "fused_vs_naive": 2.0, "fused_programs": 1, "naive_programs": 3, "achieved_flops_per_second": 1e9,
             "fraction_of_matmul_peak": 0.01, "compiled_memory_bytes": 2 ** 20,
             "seeds": {"K": 2, "vmapped_seconds": 1.0, "sequential_seconds": 1.5, "ratio": 1.5}}
    result = {"quick": True, "machine": {"date": "d", "cpu_model": "cpu", "cores": 2, "jax": "x"},
              "matmul_flops_per_second": 1e11, "bench_seconds": 3.0, "claims": {"c": claim, "bad": {"error": "E"}},
              "cache": {"what": "w", "cold": {"seconds": 2.0}, "warm": {"seconds": 1.0}}, "x": float("nan")}
    text = bench.render(result)
    assert "c (p, 2 steps): engine vs naive loop" in text and "2.00x" in text and "error" in text
    path = bench.write(result, tmp_path / "bench.json")
    assert json.loads(path.read_text())["x"] == "nan"


def _claim_row(part: str, date: str, peak: float) -> dict:
    return {"part": part, "steps": 2, "fused_steps_per_second": 10.0, "naive_steps_per_second": 5.0,
            "fused_vs_naive": 2.0, "fused_programs": 1, "naive_programs": 3, "achieved_flops_per_second": 1e9,
            "fraction_of_matmul_peak": 1e9 / peak, "compiled_memory_bytes": 2 ** 20,
            "measured": {"date": date, "load_average_at_start": [0.0, 0.0, 0.0], "matmul_flops_per_second": peak}}


def test_claim_rows_merge_into_the_bench_file(tmp_path):
    """`sandbox bench NAME`: the new claim rows replace theirs, every other row stays, and the table
    reads each row's FLOP fraction against the matmul throughput of the run that measured it."""
    day1, day2 = "2026-01-01T00:00:00+00:00", "2026-02-02T00:00:00+00:00"
    q = lambda s: {"cold": {"seconds": s, "peak_rss_bytes": 2 ** 30}, "warm": {"seconds": s / 2}}   # noqa: E731
    machine = {"cpu_model": "cpu", "cores": 2, "jax": "x"}
    old = {"schema": bench.SCHEMA, "quick": False, "machine": {"date": day1, **machine},
           "matmul_flops_per_second": 1e11, "bench_seconds": 100.0, "rpe": None,
           "claims": {"a": _claim_row("pa", day1, 1e11), "b": _claim_row("pb", day1, 1e11)},
           "quick_presets": {"a": q(10.0), "b": q(20.0)}}
    path = bench.write(old, tmp_path / "bench.json")
    new = {"schema": bench.SCHEMA, "quick": False, "machine": {"date": day2, **machine},
           "matmul_flops_per_second": 4e11, "bench_seconds": 5.0, "claims": {"b": _claim_row("pb2", day2, 4e11)},
           "quick_presets": {"b": q(30.0)}}
    m = bench.merged(new, path)
    assert m["claims"]["a"] == old["claims"]["a"] and m["claims"]["b"]["part"] == "pb2"
    assert m["quick_presets"] == {"a": q(10.0), "b": q(30.0)}
    assert m["bench_seconds"] == 100.0 and m["updates"] == [{"claims": ["b"], "date": day2, "seconds": 5.0}]
    text = bench.render(m)
    assert "a (pa, 2 steps): engine vs naive loop" in text
    assert "b (pb2, 2 steps, measured 2026-02-02): engine vs naive loop" in text
    assert "400.0 G" in text and "100.0 G" in text                        # each row's own throughput
    assert "rows of b measured 2026-02-02" in text
    assert bench.merged(new, tmp_path / "missing.json") == new          # no file: the new rows alone


@pytest.mark.parametrize("names", [["nosuch"], ["svm_bias", "svm_bias"]])
def test_bench_refuses_unknown_or_repeated_claims(names, capsys, monkeypatch):
    from theory import cli
    monkeypatch.delenv("SANDBOX_NO_COMPILE_CACHE", raising=False)
    assert cli.main(["bench", *names]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bench: claims must be distinct names" in err[0]
    import os
    assert "SANDBOX_NO_COMPILE_CACHE" not in os.environ                  # refused before anything changed


def test_capture_runs_the_claims_sweeps_in_turn(monkeypatch):
    """Outside the tests a claim's sweeps may run on threads (engine.sweep.at_once); the capture
    runs them in turn, so it always keeps run 0 of the first sweep, and restores the environment."""
    import os
    monkeypatch.setenv("SANDBOX_THREADS", "2")
    cap = claims.capture("length_generalization", TINY)
    assert cap.part == "even_pairs" and not bool(np.asarray(cap.values["randomized"])[0])
    assert os.environ["SANDBOX_THREADS"] == "2"



def _explore_row(one: float, two: float, same: bool = True) -> dict:
    times = lambda a, b: {"one_process": {"seconds": a, "runs": 15}, "workers": {"seconds": b, "runs": 15},  # noqa: E731
                          "ratio": a / b}
    return {"args": ["rank_growth"], "jobs": 2, "same_numbers": same, "cold": times(one, two),
            "warm": times(one / 2, two / 4)}


def test_explore_row_renders_and_merges_alone(tmp_path):
    """`sandbox bench explore`: the explore row replaces the file's, the claim rows stay; the table
    names the ratio and says whether the two maps hold the same numbers."""
    day1, day2 = "2026-01-01T00:00:00+00:00", "2026-02-02T00:00:00+00:00"
    machine = {"cpu_model": "cpu", "cores": 2, "jax": "x"}
    old = {"schema": bench.SCHEMA, "quick": False, "machine": {"date": day1, **machine},
           "matmul_flops_per_second": 1e11, "bench_seconds": 100.0,
           "claims": {"a": _claim_row("pa", day1, 1e11)}, "explore": _explore_row(60.0, 40.0)}
    path = bench.write(old, tmp_path / "bench.json")
    new = {"schema": bench.SCHEMA, "quick": False, "machine": {"date": day2, **machine},
           "matmul_flops_per_second": 4e11, "bench_seconds": 5.0, "claims": {}, "quick_presets": {},
           "explore": _explore_row(50.0, 25.0, same=False)}
    m = bench.merged(new, path)
    assert m["claims"]["a"] == old["claims"]["a"] and m["explore"]["cold"]["ratio"] == 2.0
    assert m["updates"] == [{"claims": ["explore"], "date": day2, "seconds": 5.0}]
    text = bench.render(m)
    assert "explore rank_growth (15 runs, cold compile cache): --jobs 2 vs one process" in text and "2.00x" in text
    assert "explore rank_growth (15 runs, warm compile cache)" in text and "4.00x" in text
    assert any("same numbers" in line and line.split()[-1] == "NO" for line in text.splitlines())
    assert any("same numbers" in line and line.split()[-1] == "yes" for line in bench.render(old).splitlines())


@pytest.mark.process
def test_explore_row_runs_both_commands(tmp_path):
    """The row's child explores (quick grid, 2 points; cold, then warm): all finish, the same numbers."""
    row = claims.explore_jobs(tmp_path, quick=True)
    assert row["same_numbers"] and row["warm"]["one_process"]["runs"] == row["warm"]["workers"]["runs"] == 2
    assert row["cold"]["ratio"] > 0 and row["warm"]["ratio"] > 0
