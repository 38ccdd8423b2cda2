"""Tests of the scan_snap claim: task, model, predictions, proofs, the judges on wrong
measurements, re-judging the committed result, determinism, bad input, the presets."""
from __future__ import annotations

import copy
import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from claim_asserts import assert_checks_pass, committed, judge_tests, rejudge

import experiments.scan_snap as exp
from experiments.scan_snap import runs
from experiments.scan_snap.parts import fig6, finite_t, scan, snap_time
from proofs import scan_snap as proofs
from theory.engine.keys import Keys
from theory.errors import DivergenceError, SandboxError
from theory.harness.parts import require_finite
from theory.harness.results import as_json
from theory.harness.runner import run_claim
from theory.models import yz_attention as yz
from theory.predictions import scan_snap as pred
from theory.tasks.next_token import NextTokenTask, classes, counts_of, sample_counts, sample_sequence

CLAIM = "scan_snap"


# --- task ----------------------------------------------------------------------------------
def test_worked_example(f64):
    task = NextTokenTask(n_queries=1, next_per_query=2, n_common=1, n_distinct=2,
                         distinct_min=1.0, distinct_max=2.0)
    cls = classes(task)
    assert (task.K, task.M) == (2, 8)
    np.testing.assert_allclose(cls.P[0], [0.25, 0.25, 0.5, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(cls.P[1], [0.25, 0, 0, 0.25, 0.5, 0, 0, 0])
    assert cls.query.tolist() == [5, 5] and cls.next.tolist() == [6, 7]
    assert cls.common.tolist() == [True] + [False] * 7
    assert np.asarray(cls.distinct).sum(axis=1).tolist() == [2, 2]


def test_default_task_matches_paper_code(f64):
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


def test_sequences_and_counts(f64):
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


def test_multinomial_counts_has_the_law_of_drawn_tokens(f64):
    """runs.multinomial_counts (cost independent of T) against sample_counts (T drawn tokens):
    the same class for the same key, counts summing to T on the class's support, and the same
    mean T P and variance T P (1 - P) per class (5 standard errors over 4000 draws)."""
    task = NextTokenTask()
    cls = classes(task)
    n_sup = task.n_common + task.n_distinct
    keys = jax.random.split(jax.random.PRNGKey(7), 4000)
    T = 48.0
    mn = jax.vmap(lambda k: runs.multinomial_counts(k, cls, T, n_sup))(keys)
    tok = jax.vmap(lambda k: sample_counts(k, cls, int(T)))(keys)
    np.testing.assert_array_equal(mn.label, tok.label)
    np.testing.assert_array_equal(np.asarray(mn.counts).sum(axis=1), T)
    for n in range(task.K):
        sel = np.asarray(mn.label) == n
        c = np.asarray(mn.counts)[sel]
        p = np.asarray(cls.P[n])
        assert np.all(c[:, p == 0] == 0)
        sd = np.sqrt(T * p * (1 - p))
        se_mean = sd / np.sqrt(sel.sum()) + 1e-12
        assert np.all(np.abs(c.mean(0) - T * p) < 5 * se_mean)
        # variance: s.e. of the sample variance ~ sd^2 sqrt(2 / N) (near-normal counts)
        var_ok = np.abs(c.var(0, ddof=1) - sd ** 2) < 5 * sd ** 2 * np.sqrt(2 / sel.sum()) + 1e-12
        assert np.all(var_ok[p > 0])
    # T may be a traced value: one program for every T
    f = jax.jit(lambda k, T: runs.multinomial_counts(k, cls, T, n_sup).counts.sum())
    assert [float(f(keys[0], t)) for t in (16.0, 4096.0)] == [16.0, 4096.0]


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


def test_forward_matches_naive_loop_and_counts(f64):
    cls = classes(NextTokenTask())
    params = yz.init_uniform(jax.random.PRNGKey(0), 33)
    params = params._replace(Z=3.0 * params.Z)
    seq = sample_sequence(jax.random.PRNGKey(1), cls, 40)
    logits, acts = yz.forward_tokens(params, seq.context, seq.query)
    ref = _naive_forward(np.asarray(params.Y), np.asarray(params.Z), np.asarray(seq.context),
                         int(seq.query))
    np.testing.assert_allclose(logits, ref, rtol=0, atol=1e-13)
    logits_c, _ = yz.forward_counts(params, counts_of(seq, 33).counts, seq.query)
    np.testing.assert_allclose(logits_c, logits, rtol=0, atol=1e-13)
    assert acts.b.shape == (40,) and abs(float(jnp.linalg.norm(acts.f)) - 1) < 1e-14


def test_population_gradient_is_lemma1(f64):
    """dL/dY = -(1/K) sum_n f_n (e_n - alpha_n)^T  (Lemma 1 in the T -> inf limit)."""
    cls = classes(NextTokenTask())
    params = yz.init_uniform(jax.random.PRNGKey(5), 33)
    gY = jax.grad(yz.population_loss)(params, cls.P, cls.query, cls.next).Y
    ref = np.zeros((33, 33))
    for n in range(2):
        logits, acts = yz.forward_counts(params, cls.P[n], cls.query[n])
        alpha = np.asarray(jax.nn.softmax(logits))
        e = np.eye(33)[int(cls.next[n])]
        ref -= np.outer(np.asarray(acts.f), e - alpha) / 2
    np.testing.assert_allclose(gY, ref, rtol=0, atol=1e-14)


def test_group_sgd_momentum_matches_torch_rule(f64):
    params = yz.Params(jnp.ones((2, 2)), jnp.ones((2, 2)))
    grads = [yz.Params(jnp.full((2, 2), g), jnp.full((2, 2), -g)) for g in (1.0, 2.0, 0.5)]
    opt = yz.group_sgd(0.1, 0.01, momentum=0.9)
    state = opt.init(params)
    vY = vZ = 0.0
    Y = Z = 1.0
    for g in grads:
        upd, state = opt.update(g, state, params)
        params = jax.tree_util.tree_map(lambda p, u: p + u, params, upd)
        vY, vZ = 0.9 * vY + float(g.Y[0, 0]), 0.9 * vZ + float(g.Z[0, 0])
        Y, Z = Y - 0.1 * vY, Z - 0.01 * vZ
    np.testing.assert_allclose([params.Y[0, 0], params.Z[0, 0]], [Y, Z], rtol=1e-14)


def test_distinct_entropy_initial_value(f64):
    cls = classes(NextTokenTask())
    H = yz.distinct_entropy(jnp.zeros((33, 33)), cls.P, cls.query, cls.distinct)
    np.testing.assert_allclose(H, 2.151281720651836, rtol=1e-12)      # the paper's Fig. 6 start
    assert abs(pred.initial_entropy(10, 0.1, 1.0) - 2.151281720651836) < 1e-12


# --- predictions and metrics ---------------------------------------------------------------
def test_snap_predictions():
    x = pred.snap_root(33)
    assert abs(math.exp(x) - 32 * x) < 1e-9 and abs(x - 5.0938) < 1e-4
    assert abs(pred.snap_loss(33) - 0.1792) < 1e-4
    assert abs(pred.snap_time_times_eta(33, 2) - 19.697) < 1e-3
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
    """spread = 0 for z on the invariant, about 9 for dz ~ P, about 99 for uniform dz."""
    P = np.linspace(0.1, 1, 10) / 15.5
    z_top = 0.3
    z_inv = -0.5 * np.log1p(-(P / P[-1]) ** 2 * -np.expm1(-2 * z_top))
    assert abs(runs.invariant_spread(z_inv, P)) < 1e-12
    assert abs(runs.rarest_over_invariant(z_inv, P) - 1.0) < 1e-12
    assert 8 < runs.invariant_spread(1e-4 * P / P[-1], P) < 10
    assert 95 < runs.invariant_spread(np.full(10, 1e-4), P) < 100


def test_crossing_step():
    """Interpolated crossing in steps; 0 when already at the level at step 0, +inf when never below."""
    loss = np.array([1.0, 0.5, 0.2, 0.1])
    assert runs.crossing_step(loss, 0.15) == pytest.approx(2.5)
    assert runs.crossing_step(loss, 0.5) == 1.0
    assert runs.crossing_step(loss, 0.01) == math.inf
    assert runs.crossing_step(loss, 2.0) == 0.0


def test_never_snapped_is_unbounded_not_a_divergence():
    """A run whose loss never reaches the snap level: its t0 eta_Y is +inf, which the part declares
    `unbounded` (not a divergence, exit 2), and every snap-time check that reads it fails."""
    r = committed(CLAIM)
    part = next(p for p in exp.PARTS if p.name == "snap_time")
    P = r["data"]["snap_time"]["predicted"]
    for key in ("t0_eta_orthogonal", "t0_eta_common", "t0_eta_limit"):
        M = copy.deepcopy(r["data"]["snap_time"]["measured"])
        M[key] = [math.inf] + M[key][1:]
        M = as_json(M)
        require_finite(part, P, M)                                     # +inf under `unbounded`: allowed
        failed = {n for n, c in rejudge(CLAIM, r, "snap_time", M).items() if not c.passed}
        want = {"t0_eta_orthogonal": {"snap_time_orthogonal_equals_lemma5"},
                "t0_eta_common": {"snap_time_constant_common"},
                "t0_eta_limit": {"snap_time_orthogonal_equals_lemma5", "snap_time_lemma6_limit"}}[key]
        assert failed == want, (key, failed)
        M[key][0] = "nan"
        with pytest.raises(DivergenceError):
            require_finite(part, P, M)                                 # NaN is never allowed


def test_limit_fit_and_inverse_t_fit():
    """The two extrapolations: Lemma 5's crossings fitted by a line in eta_Y reach Lemma 6's constant
    (forward Euler is first order); a + b/T data is fitted exactly, with se(a) from the weights."""
    eta = [0.05, 0.1, 0.2, 0.4]
    t0 = snap_time.lemma5_snap_times(33, 2, eta, 800)
    a, b = snap_time.limit_fit(eta, t0)
    assert abs(a / pred.snap_time_times_eta(33, 2) - 1) < 1e-4 and b < 0
    assert snap_time.limit_fit(eta, [math.inf] + t0[1:])[0] == math.inf
    T = [1024, 4096, 16384]
    fit = finite_t.inverse_t_fit(T, [0.02 - 120 / t for t in T], [0.01] * 3)
    assert fit["a"] == pytest.approx(0.02) and fit["b"] == pytest.approx(-120)
    assert np.allclose(fit["residual_se"], 0, atol=1e-9)
    x = 1 / np.asarray(T, float)                  # equal weights: se(a)^2 = s^2 sum x^2 / (n sum (x - mean)^2)
    se_a = 0.01 * np.sqrt((x ** 2).sum() / (3 * ((x - x.mean()) ** 2).sum()))
    assert fit["se_a"] == pytest.approx(se_a)


# --- proofs --------------------------------------------------------------------------------
@pytest.mark.parametrize("prove", proofs.ALL, ids=[f.__name__ for f in proofs.ALL])
def test_proofs(prove):
    prove()


# --- the judges on wrong measurements (no training: the committed result) -------------------
def _decoder_step_too_large(P, M):
    """GD with step 1.2 eta_Y/K: the loss follows Lemma 5's recursion at 1.2 times the rate."""
    K, steps = P["K"], len(M["decoder_loss"][0])
    M["decoder_loss"] = [pred.decoder_loss(P["M"], pred.decoder_h_discrete(P["M"], 1.2 * e / K, steps - 1)).tolist()
                         for e in P["eta_Y"]]
    return M


def _snap_late(P, M):
    """A decoder 1.3 times slower than the theory's: every snap 30% late."""
    for k in ("t0_eta_orthogonal", "t0_eta_common", "t0_eta_limit"):
        M[k] = [1.3 * v for v in M[k]]
    return M


def _decoder_rate_2pc_slow(P, M):
    """Orthogonal runs whose decoder moves at 0.98 eta_Y (Lemma 5's recursion at that rate): the
    eta_Y -> 0 limit 2% above Lemma 6's constant."""
    for k, eta, steps in (("t0_eta_orthogonal", P["eta_Y"], len(M["decoder_loss"][0])),
                          ("t0_eta_limit", P["limit_eta_Y"], exp.Config().snap_limit_steps)):
        slow = snap_time.lemma5_snap_times(P["M"], P["K"], [0.98 * e for e in eta], steps)
        M[k] = [t / 0.98 for t in slow]
    return M


def _snap_at_fixed_step(P, M):
    """A snap at the same step whatever eta_Y (t0 not ~ 1/eta_Y): t0 eta_Y grows with eta_Y."""
    for k in ("t0_eta_orthogonal", "t0_eta_common"):
        M[k] = [v * e / P["eta_Y"][0] for v, e in zip(M[k], P["eta_Y"])]
    return M


def _common_tokens_grow(P, M):
    """Attention that grows on the common tokens too (no scan away from them)."""
    M["max_dz_common"] = abs(M["max_dz_common"])
    return M


def _no_time_scale_separation(P, M):
    """The smallest ratio's run behaving as eta_Z = eta_Y: its spread that of the ratio-1 run."""
    M["invariant_spread"][-1] = M["invariant_spread"][0]
    return M


def _adjacent_swap(P, M):
    """Two adjacent distinct tokens of one class in the wrong order: Spearman 1 - 12/(n^3 - n)."""
    n = exp.Config().n_distinct
    M["spearman_min"] = 1.0 - 12.0 / (n ** 3 - n)
    return M


def _zmax_reversed(P, M):
    """z_max growing with eta_Y (sparser attention for a faster decoder)."""
    M["zmax"] = M["zmax"][::-1]
    return M


def _finite_t_offset(P, M):
    """A sampled model whose bias does not vanish with T: every T offset from the population value
    by T = 1024's mean gap (the seeds' scatter kept)."""
    Ts = sorted(exp.Config().finite_T)
    v = {T: np.asarray(M["violation"][str(T)]) for T in Ts}
    gap0 = v[Ts[0]].mean() - M["population_violation"]
    for T in Ts:
        M["violation"][str(T)] = (v[T] - v[T].mean() + M["population_violation"] + gap0).tolist()
    return M


def _finite_t_gap_inverse_sqrt(P, M):
    """A gap falling as 1/sqrt(T), not 1/T (T = 1024's gap kept, the seeds' scatter kept)."""
    Ts = sorted(exp.Config().finite_T)
    v = {T: np.asarray(M["violation"][str(T)]) for T in Ts}
    gap0 = v[Ts[0]].mean() - M["population_violation"]
    for T in Ts:
        M["violation"][str(T)] = (v[T] - v[T].mean() + M["population_violation"]
                                  + gap0 * math.sqrt(Ts[0] / T)).tolist()
    return M


def _rare_token_on_invariant(P, M):
    """A sampled model at small T that behaves as T -> infinity: the rarest token on the invariant."""
    M["rare_over_invariant"] = [1.0] * len(M["rare_over_invariant"])
    return M


def _attention_never_trained(P, M):
    """Attention stuck at its starting point: every cell at the Z = 0 entropy."""
    M["entropy"] = [[P["initial"]] * len(row) for row in M["entropy"]]
    return M


def _entropy_order_reversed(P, M):
    """Entropy falling with eta_Y/eta_Z (each row's order reversed)."""
    M["entropy"] = [row[::-1] for row in M["entropy"]]
    return M


WRONG = [
    ("snap_time", "decoder step 1.2 eta_Y/K", _decoder_step_too_large, ["decoder_loss_equals_lemma5"]),
    ("snap_time", "snap 30% late", _snap_late,
     ["snap_time_orthogonal_equals_lemma5", "snap_time_lemma6_limit"]),
    ("snap_time", "decoder rate 2% slow", _decoder_rate_2pc_slow,
     ["snap_time_orthogonal_equals_lemma5", "snap_time_lemma6_limit"]),
    ("snap_time", "snap at a fixed step", _snap_at_fixed_step,
     ["snap_time_orthogonal_equals_lemma5", "snap_time_constant_common"]),
    ("scan", "common tokens gain attention", _common_tokens_grow, ["scan_signs_every_step"]),
    ("scan", "no time-scale separation", _no_time_scale_separation,
     ["invariant_spread_at_smallest_ratio", "invariant_spread_monotone_in_ratio"]),
    ("scan", "one adjacent swap of the ordering", _adjacent_swap, ["ordering_spearman_z_vs_p"]),
    ("scan", "z_max increasing in eta_Y", _zmax_reversed, ["zmax_decreases_with_eta_y"]),
    ("finite_T", "finite-T bias that does not vanish", _finite_t_offset,
     ["sampled_invariant_extrapolates_to_population", "sampled_invariant_gap_shrinks_as_inverse_t"]),
    ("finite_T", "gap falling as 1/sqrt(T)", _finite_t_gap_inverse_sqrt,
     ["sampled_invariant_extrapolates_to_population"]),
    ("finite_T", "rare token on the invariant at small T", _rare_token_on_invariant,
     ["sampled_t128_rarest_token_breaks_invariant"]),
    ("fig6", "attention never trained", _attention_never_trained,
     ["fig6_entropy_vs_paper", "fig6_entropy_increases_with_eta_y_over_eta_z"]),
    ("fig6", "entropy falling in eta_Y/eta_Z", _entropy_order_reversed,
     ["fig6_entropy_increases_with_eta_y_over_eta_z"]),
]


test_wrong_measurement_fails, test_every_evidence_check_can_fail = judge_tests(CLAIM, WRONG)


# --- training: seeds, a real failure, bad input ---------------------------------------------
def _tiny(**kw) -> exp.Config:
    return dataclasses.replace(
        exp.Config(), snap_steps=60, snap_limit_eta_Y=(0.5, 1.0), snap_limit_steps=60, scan_steps=200,
        invariant_step=100, order_step=200, invariant_ratios=(2.0, 1.0), order_eta_Y=(1.0, 2.0),
        finite_T=(32, 64, 128), breakdown_T=16, finite_T_steps=40, finite_T_seeds=3, fig6_context=16,
        fig6_steps=5, fig6_eta_Z=(0.5,), fig6_ratios=(1.0, 2.0), seeds=2, batch=8, **kw)


@pytest.mark.claim          # trains: claim tier, not the unit loop
def test_same_seed_same_numbers_other_seed_other_numbers(f64):
    """The fig6 part (random init and sampled data): Keys(0) twice agree, Keys(1) differs."""
    cfg = _tiny()
    a, b, c = (fig6.measure(cfg, Keys(s).sub("fig6"), None) for s in (0, 0, 1))
    np.testing.assert_array_equal(a["entropy"], b["entropy"])
    assert not np.any(np.asarray(a["entropy"]) == np.asarray(c["entropy"]))


@pytest.mark.claim          # trains: claim tier, not the unit loop
def test_invariant_check_fails_without_time_scale_separation(f64):
    """A real model at eta_Z = eta_Y: the invariant is far off and the check reports it."""
    cfg = _tiny()
    M = scan.measure(cfg, Keys(0).sub("scan"), None)
    c = {x.name: x for x in scan.judge(cfg, scan.predict(cfg), M)}["invariant_spread_at_smallest_ratio"]
    assert not c.passed and c.measured > 0.05


@pytest.mark.parametrize("override", ["snap_steps=0", "n_common=0", "next_per_query=1",
                                      "invariant_step=20000", "fig6_momentum=1.5",
                                      "snap_eta_Y=(1,-1)", "seeds=0", "n_distinct=1",
                                      "snap_limit_eta_Y=(0.1,)", "snap_limit_steps=100",
                                      "snap_limit_eta_Y=(0.1,0.1)", "finite_T=(1024,4096)",
                                      "finite_T=(4096,1024,16384)", "breakdown_T=1024",
                                      "finite_T_seeds=2"])
def test_bad_input_raises_before_training(tmp_path, monkeypatch, override):
    def boom(*a, **k):
        raise AssertionError("training started")
    monkeypatch.setattr(runs, "train", boom)
    with pytest.raises(SandboxError):
        run_claim(CLAIM, "quick", out=tmp_path, overrides=[override])
    assert not (tmp_path / "results" / "scan_snap.json").exists()


# --- the presets ----------------------------------------------------------------------------
CHECKS = ["decoder_loss_equals_lemma5", "snap_time_orthogonal_equals_lemma5", "snap_time_lemma6_limit",
          "snap_time_constant_common", "scan_signs_every_step", "invariant_spread_at_smallest_ratio",
          "invariant_spread_monotone_in_ratio", "ordering_spearman_z_vs_p", "zmax_decreases_with_eta_y",
          "sampled_invariant_extrapolates_to_population", "sampled_invariant_gap_shrinks_as_inverse_t",
          "sampled_t128_rarest_token_breaks_invariant", "fig6_entropy_vs_paper",
          "fig6_entropy_increases_with_eta_y_over_eta_z"]


@pytest.mark.claim
def test_quick_preset(tmp_path):
    r = run_claim(CLAIM, "quick", seed=0, out=tmp_path)
    checks = assert_checks_pass(r, CHECKS)
    assert checks["decoder_loss_equals_lemma5"]["measured"] < 1e-12
    assert abs(checks["snap_time_lemma6_limit"]["measured"] / 19.697 - 1) < 0.01
    assert checks["invariant_spread_at_smallest_ratio"]["measured"] < 0.05
    assert (tmp_path / "results" / "scan_snap.json").is_file()
    assert (tmp_path / "figures" / "scan_snap.png").is_file()
    assert r["precision"] == "float64" and not jax.config.jax_enable_x64   # x64 scoped to the run


@pytest.mark.slow
def test_full_preset(tmp_path):
    r = run_claim(CLAIM, "full", seed=0, out=tmp_path)
    assert r["verdict"] == "pass", [c for c in r["checks"] if not c["passed"]]
