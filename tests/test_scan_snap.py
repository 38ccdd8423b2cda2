"""Tests of the scan_snap claim: task, model, predictions, proofs, quick preset, bad input."""
from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from claim_asserts import assert_checks_pass

from experiments import scan_snap as exp
from proofs.scan_snap import (prove_continuous_decoder_solves_ode, prove_decoder_gap_recursion,
                              prove_eq129_constant, prove_ordering_invariant, prove_snap_point)
from theory.models import yz_attention as sm
from theory.errors import SandboxError
from theory.engine.precision import precision
from theory.predictions import scan_snap as pred
from theory.harness.runner import run_claim
from theory.engine.sweep import run_keys, sweep
from theory.tasks.next_token import (NextTokenTask, classes, counts_of, sample_counts,
                                     sample_sequence)


@pytest.fixture
def x64():
    with precision("float64"):
        yield


# --- task ----------------------------------------------------------------------------------
def test_worked_example(x64):
    task = NextTokenTask(n_queries=1, next_per_query=2, n_common=1, n_distinct=2,
                         distinct_min=1.0, distinct_max=2.0)
    cls = classes(task)
    assert (task.K, task.M) == (2, 8)
    np.testing.assert_allclose(cls.P[0], [0.25, 0.25, 0.5, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(cls.P[1], [0.25, 0, 0, 0.25, 0.5, 0, 0, 0])
    assert cls.query.tolist() == [5, 5] and cls.next.tolist() == [6, 7]
    assert cls.common.tolist() == [True] + [False] * 7
    assert np.asarray(cls.distinct).sum(axis=1).tolist() == [2, 2]


def test_default_task_matches_paper_code(x64):
    """Dataset2 defaults: M = 33 (queries and next tokens count), P(common) = 0.0645."""
    task = NextTokenTask()
    cls = classes(task)
    P = np.asarray(cls.P)
    assert task.M == 33
    np.testing.assert_allclose(P[0, :10], 1 / 15.5)
    np.testing.assert_allclose(P[0, cls.distinct[0]], np.linspace(0.1, 1, 10) / 15.5)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-15)
    ortho = classes(dataclasses.replace(task, common_weight=0.0))
    assert ortho.P.shape == (2, 33) and float(ortho.P[0] @ ortho.P[1]) == 0.0


def test_sequences_and_counts(x64):
    cls = classes(NextTokenTask())
    key = jax.random.PRNGKey(3)
    seq = sample_sequence(key, cls, 64)
    assert seq.context.shape == (64,)
    assert bool(jnp.all(cls.P[seq.label][seq.context] > 0))          # only tokens of its class
    assert int(seq.next) == int(cls.next[seq.label]) and int(seq.query) == int(cls.query[seq.label])
    c = sample_counts(key, cls, 64)
    np.testing.assert_array_equal(c.counts, counts_of(seq, 33).counts)
    assert float(c.counts.sum()) == 64.0
    # mean counts per class approach T P(.|n) (5 standard errors)
    keys = jax.random.split(jax.random.PRNGKey(4), 4000)
    b = jax.vmap(lambda k: sample_counts(k, cls, 32))(keys)
    for n in range(2):
        sel = np.asarray(b.label) == n
        mean = np.asarray(b.counts)[sel].mean(0)
        se = np.sqrt(32 * np.asarray(cls.P[n]) * (1 - np.asarray(cls.P[n])) / sel.sum()) + 1e-12
        assert np.all(np.abs(mean - 32 * np.asarray(cls.P[n])) < 5 * se)
    assert 0.45 < float(np.mean(np.asarray(b.label))) < 0.55


def test_task_bad_input():
    with pytest.raises(SandboxError):
        classes(NextTokenTask(n_distinct=0))
    with pytest.raises(SandboxError):
        classes(NextTokenTask(distinct_min=-1.0))


# --- model ---------------------------------------------------------------------------------
def _naive_forward(Y, Z, context, query):
    """Reference: explicit loop over positions, the paper's formulas."""
    M = Z.shape[0]
    s = np.array([Z[query, x] for x in context])
    b = np.exp(s - s.max())
    b /= b.sum()
    u = np.zeros(M)
    for t, x in enumerate(context):
        u[x] += b[t]
    f = u / np.sqrt((u ** 2).sum())
    return np.array([sum(f[l] * Y[l, j] for l in range(M)) for j in range(M)])


def test_forward_matches_naive_loop_and_counts(x64):
    cls = classes(NextTokenTask())
    params = sm.init_uniform(jax.random.PRNGKey(0), 33)
    params = params._replace(Z=3.0 * params.Z)
    seq = sample_sequence(jax.random.PRNGKey(1), cls, 40)
    logits, acts = sm.forward_tokens(params, seq.context, seq.query)
    ref = _naive_forward(np.asarray(params.Y), np.asarray(params.Z), np.asarray(seq.context),
                         int(seq.query))
    np.testing.assert_allclose(logits, ref, rtol=0, atol=1e-13)
    logits_c, _ = sm.forward_counts(params, counts_of(seq, 33).counts, seq.query)
    np.testing.assert_allclose(logits_c, logits, rtol=0, atol=1e-13)
    assert acts.b.shape == (40,) and abs(float(jnp.linalg.norm(acts.f)) - 1) < 1e-14


def test_population_gradient_is_lemma1(x64):
    """dL/dY = -(1/K) sum_n f_n (e_n - alpha_n)^T  (Lemma 1 in the T -> inf limit)."""
    cls = classes(NextTokenTask())
    params = sm.init_uniform(jax.random.PRNGKey(5), 33)
    gY = jax.grad(sm.population_loss)(params, cls).Y
    ref = np.zeros((33, 33))
    for n in range(2):
        logits, acts = sm.forward_counts(params, cls.P[n], cls.query[n])
        alpha = np.asarray(jax.nn.softmax(logits))
        e = np.eye(33)[int(cls.next[n])]
        ref -= np.outer(np.asarray(acts.f), e - alpha) / 2
    np.testing.assert_allclose(gY, ref, rtol=0, atol=1e-14)


def test_group_sgd_momentum_matches_torch_rule(x64):
    params = sm.Params(jnp.ones((2, 2)), jnp.ones((2, 2)))
    grads = [sm.Params(jnp.full((2, 2), g), jnp.full((2, 2), -g)) for g in (1.0, 2.0, 0.5)]
    opt = sm.group_sgd(0.1, 0.01, momentum=0.9)
    state = opt.init(params)
    vY = vZ = 0.0
    Y = Z = 1.0
    for g in grads:
        upd, state = opt.update(g, state, params)
        params = jax.tree_util.tree_map(lambda p, u: p + u, params, upd)
        vY, vZ = 0.9 * vY + float(g.Y[0, 0]), 0.9 * vZ + float(g.Z[0, 0])
        Y, Z = Y - 0.1 * vY, Z - 0.01 * vZ
    np.testing.assert_allclose([params.Y[0, 0], params.Z[0, 0]], [Y, Z], rtol=1e-14)


def test_distinct_entropy_initial_value(x64):
    cls = classes(NextTokenTask())
    H = sm.distinct_entropy(jnp.zeros((33, 33)), cls)
    np.testing.assert_allclose(H, 2.151281720651836, rtol=1e-12)      # the paper's Fig. 6 start
    assert abs(pred.initial_entropy(10, 0.1, 1.0) - 2.151281720651836) < 1e-12


# --- predictions and metrics ---------------------------------------------------------------
def test_snap_predictions():
    x = pred.snap_root(33)
    assert abs(math.exp(x) - 32 * x) < 1e-9 and abs(x - 5.0938) < 1e-4
    assert abs(pred.snap_loss(33) - 0.1792) < 1e-4
    assert abs(pred.snap_time_times_eta(33, 2) - 19.697) < 1e-3          # research notes A.6
    h = pred.decoder_h_continuous(33, 0.7, np.array([0.0, 3.0, 40.0]))
    np.testing.assert_allclose(np.exp(33 * h) + 32 * 33 * h, 33 * 0.7 * np.array([0, 3, 40]) + 1,
                               rtol=1e-12)
    # small steps: Lemma 5's recursion approaches Lemma 6
    hd = pred.decoder_h_discrete(33, 0.01, 4000)
    hc = pred.decoder_h_continuous(33, 0.01, np.array([4000.0]))
    assert abs(hd[-1] - hc[0]) / hc[0] < 1e-3
    B = pred.predicted_zmax_order(33, 2, [0.5, 1, 2, 4], 0.05, 10_000)
    assert np.all(np.diff(B) < 0)
    with pytest.raises(SandboxError):
        pred.snap_root(3)


def test_invariant_metric():
    """spread = 0 for z on the invariant, about 9 for dz ~ P, about 99 for uniform dz (notes A.6)."""
    P = np.linspace(0.1, 1, 10) / 15.5
    z_top = 0.3
    z_inv = -0.5 * np.log1p(-(P / P[-1]) ** 2 * -np.expm1(-2 * z_top))
    assert abs(exp.spread(z_inv, P)) < 1e-12
    assert 8 < exp.spread(1e-4 * P / P[-1], P) < 10
    assert 95 < exp.spread(np.full(10, 1e-4), P) < 100
    loss = np.array([1.0, 0.5, 0.2, 0.1])
    assert exp.crossing_time(loss, 0.15) == pytest.approx(2.5)
    assert math.isnan(exp.crossing_time(loss, 0.01))


# --- proofs --------------------------------------------------------------------------------
@pytest.mark.parametrize("prove", [prove_decoder_gap_recursion, prove_continuous_decoder_solves_ode,
                                   prove_snap_point, prove_ordering_invariant, prove_eq129_constant])
def test_proofs(prove):
    prove()


# --- the claim -----------------------------------------------------------------------------
CHECKS = ["decoder_loss_equals_lemma5", "snap_time_t0_eta_Y_0.5", "snap_time_t0_eta_Y_1",
          "snap_time_t0_eta_Y_2", "snap_time_constant_orthogonal", "snap_time_constant_common",
          "scan_signs_every_step", "invariant_spread_at_ratio_0.01",
          "invariant_spread_monotone_in_ratio", "ordering_spearman_z_vs_P",
          "zmax_decreases_with_eta_Y", "sampled_T1024_invariant_spread_vs_population",
          "sampled_T128_rarest_token_breaks_invariant", "fig6_entropy_vs_paper",
          "fig6_entropy_increases_with_eta_Y_over_eta_Z"]


def test_quick_preset(tmp_path):
    r = run_claim("scan_snap", "quick", seed=0, out=tmp_path)
    checks = assert_checks_pass(r, CHECKS)
    assert checks["decoder_loss_equals_lemma5"]["measured"] < 1e-12
    assert abs(checks["snap_time_t0_eta_Y_1"]["measured"] - 19.7) < 2.0
    assert checks["invariant_spread_at_ratio_0.01"]["measured"] < 0.05
    assert (tmp_path / "results" / "scan_snap.json").is_file()
    assert (tmp_path / "figures" / "scan_snap.png").is_file()
    assert r["precision"] == "float64" and not jax.config.jax_enable_x64   # x64 scoped to the run


def _tiny(**kw) -> exp.Config:
    return dataclasses.replace(
        exp.Config(), snap_steps=60, scan_steps=200, invariant_step=100, order_step=200,
        finite_T=(16, 64), finite_T_steps=40, finite_T_seeds=1, fig6_steps=5, seeds=2, batch=8, **kw)


def test_determinism_and_seed_dependence(x64):
    """Same seed, same numbers; another seed, other sampled data (one compilation, reused)."""
    run = functools.partial(exp._sampled_run, task=NextTokenTask(), T=16, batch=8, steps=5,
                            momentum=0.9, random_init=True)
    a = sweep(run, run_keys(0, 2), shard=False, eta_Y=1.0, eta_Z=0.5)
    b = sweep(run, run_keys(0, 2), shard=False, eta_Y=1.0, eta_Z=0.5)
    c = sweep(run, run_keys(1, 2), shard=False, eta_Y=1.0, eta_Z=0.5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[0][0], a[0][1])                      # runs within a sweep differ


def test_invariant_check_can_fail(x64):
    """At eta_Z = eta_Y the invariant is far off: the check must report it."""
    checks, _ = exp.measure(_tiny(invariant_ratios=(2.0, 1.0), sampled=False), 0, 1, None)
    c = {x.name: x for x in checks}["invariant_spread_at_ratio_1"]
    assert not c.passed and c.measured > 0.05


@pytest.mark.parametrize("override", ["snap_steps=0", "n_common=0", "next_per_query=1",
                                      "invariant_step=20000", "fig6_momentum=1.5",
                                      "snap_eta_Y=(1,-1)", "seeds=0", "n_distinct=1"])
def test_bad_input_raises_before_training(tmp_path, monkeypatch, override):
    def boom(*a, **k):
        raise AssertionError("training started")
    monkeypatch.setattr(exp, "train", boom)
    with pytest.raises(SandboxError):
        run_claim("scan_snap", "quick", out=tmp_path, overrides=[override])
    assert not (tmp_path / "results" / "scan_snap.json").exists()


@pytest.mark.slow
def test_full_preset(tmp_path):
    r = run_claim("scan_snap", "full", seed=0, out=tmp_path)
    assert r["verdict"] == "pass", [c for c in r["checks"] if not c["passed"]]
