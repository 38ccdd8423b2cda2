"""Tests of claim `svm_bias`: task, model, pairwise softmax gradient, SVM solvers, proofs, bad
input, the parts' determinism, judges fed wrong measurements, and the quick preset end to end
(Tarzanagh, Li, Thrampoulidis & Oymak 2023)."""
from __future__ import annotations

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from claim_asserts import judge_tests

import experiments.svm_bias as exp
from experiments.svm_bias import common
from experiments.svm_bias.parts import w_ngd
from theory import metrics
from theory.engine.keys import Keys
from theory.errors import SandboxError
from theory.harness.runner import build_config, run_claim
from theory.models import single_attention as sa
from theory.predictions import svm_bias as svm
from theory.tasks.token_selection import Instance, optimal_tokens, sample_instance, token_scores

CLAIM = "svm_bias"
pytestmark = pytest.mark.usefixtures("f64")


def _np(inst):
    return Instance(*(np.asarray(a) for a in inst))


# --- task ----------------------------------------------------------------------------------------
def test_sampler_shapes_unit_norm_and_determinism():
    inst = sample_instance(jax.random.PRNGKey(3), 6, 8, 10)
    assert inst.X.shape == (6, 8, 10) and inst.Y.shape == (6,) and inst.Z.shape == (6, 10)
    assert inst.v.shape == (10,) and inst.X.dtype == jnp.float64
    np.testing.assert_allclose(np.linalg.norm(inst.X, axis=-1), 1.0, atol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(inst.Z, axis=-1), 1.0, atol=1e-14)
    assert set(np.unique(inst.Y)) <= {-1.0, 1.0}
    again = sample_instance(jax.random.PRNGKey(3), 6, 8, 10)
    other = sample_instance(jax.random.PRNGKey(4), 6, 8, 10)
    assert all(np.array_equal(a, b) for a, b in zip(inst, again))
    assert not np.array_equal(inst.X, other.X)


def test_worked_example_of_docstring():
    inst = Instance(X=jnp.array([[[1.0, 0.0], [0.6, 0.8]]]), Y=jnp.array([-1.0]),
                    Z=jnp.array([[0.0, 1.0]]), v=jnp.array([1.0, 0.0]))
    np.testing.assert_allclose(token_scores(inst), [[-1.0, -0.6]])
    assert int(optimal_tokens(inst)[0]) == 1


# --- model ---------------------------------------------------------------------------------------
def test_forward_and_loss_match_a_naive_loop():
    inst = _np(sample_instance(jax.random.PRNGKey(0), 3, 5, 4))
    W = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (4, 4)))
    f_ref, L_ref = [], 0.0
    for i in range(3):
        lg = [inst.X[i, t] @ W @ inst.Z[i] for t in range(5)]
        e = [math.exp(x - max(lg)) for x in lg]
        f = sum(e[t] / sum(e) * (inst.v @ inst.X[i, t]) for t in range(5))
        f_ref.append(f)
        L_ref += math.log(1 + math.exp(-inst.Y[i] * f)) / 3
    inst_j = Instance(*map(jnp.asarray, inst))
    np.testing.assert_allclose(sa.forward(jnp.asarray(W), inst_j), f_ref, rtol=1e-13)
    np.testing.assert_allclose(sa.loss(sa.WParams(jnp.asarray(W)), inst_j), L_ref, rtol=1e-13)


def test_kq_parameterisation_is_the_product():
    inst = sample_instance(jax.random.PRNGKey(0), 3, 5, 4)
    K = jax.random.normal(jax.random.PRNGKey(1), (4, 3))
    Q = jax.random.normal(jax.random.PRNGKey(2), (4, 3))
    np.testing.assert_allclose(sa.loss(sa.KQParams(K, Q), inst), sa.loss(sa.WParams(K @ Q.T), inst),
                               rtol=1e-14)


def test_pairwise_gradient_equals_autodiff_at_small_gaps():
    inst = sample_instance(jax.random.PRNGKey(0), 6, 8, 10)
    W = 0.5 * jax.random.normal(jax.random.PRNGKey(1), (10, 10))
    gp = jax.grad(lambda W: sa.loss(sa.WParams(W), inst, "pairwise"))(W)
    gn = jax.grad(lambda W: sa.loss(sa.WParams(W), inst, "naive"))(W)
    assert float(jnp.linalg.norm(gp - gn) / jnp.linalg.norm(gn)) < 1e-13


def test_naive_softmax_gradient_is_noise_at_large_gap_pairwise_is_exact():
    """The failure the pairwise form fixes: at a logit gap of 48.5 (> 36) autodiff's gradient on
    the selected token, s_t (h_t - f), has no correct digit (f rounds to h_t: the result is 0 or
    rounding noise instead of the true ~1e-22); the pairwise form keeps full relative accuracy."""
    import mpmath
    mpmath.mp.dps = 60
    logits = jnp.array([50.0, 0.0, -3.0, 1.5])
    h = jnp.array([0.7, -0.2, 0.4, 0.1])
    ref = []
    Zs = sum(mpmath.exp(mpmath.mpf(float(x))) for x in logits)
    s = [mpmath.exp(mpmath.mpf(float(x))) / Zs for x in logits]
    f = sum(si * mpmath.mpf(float(hi)) for si, hi in zip(s, h))
    for t in range(4):
        ref.append(float(s[t] * (mpmath.mpf(float(h[t])) - f)))
    ref = np.array(ref)
    g_pair = np.asarray(jax.grad(sa.pairwise_readout)(logits, h))
    g_naive = np.asarray(jax.grad(sa.naive_readout)(logits, h))
    rel_pair = np.abs(g_pair - ref) / np.abs(ref)
    rel_naive = np.abs(g_naive - ref) / np.abs(ref)
    assert rel_pair.max() < 1e-13
    assert rel_naive[0] >= 0.5      # the selected token's gradient: no correct digit
    # the h-cotangent is the softmax itself in both forms
    g_h = jax.grad(sa.pairwise_readout, argnums=1)(logits, h)
    np.testing.assert_allclose(g_h, jax.nn.softmax(logits), rtol=1e-15)


def test_grad_fn_freezes_past_gap_stop():
    inst = sample_instance(jax.random.PRNGKey(0), 2, 3, 4)
    o = np.asarray(optimal_tokens(inst))
    sol = svm.solve_frobenius(np.asarray(inst.X), np.asarray(inst.Z), o)
    W = jnp.asarray(300.0 * sol.W)          # every margin >= 1, so every logit gap >= 300
    _, g = sa.make_grad_fn(inst, "pairwise", 250.0)(sa.WParams(W), None)
    assert float(jnp.max(jnp.abs(g.W))) == 0.0
    _, g = sa.make_grad_fn(inst, "pairwise", 650.0)(sa.WParams(W), None)
    assert float(jnp.max(jnp.abs(g.W))) > 0.0


# --- SVM solvers ---------------------------------------------------------------------------------
def _instance(seed, n=6, T=8, d=10):
    inst = _np(sample_instance(jax.random.PRNGKey(seed), n, T, d))
    return inst, np.asarray(optimal_tokens(Instance(*map(jnp.asarray, inst))))


def test_frobenius_svm_kkt_and_independent_primal_solver():
    inst, o = _instance(0)
    sol = svm.solve_frobenius(inst.X, inst.Z, o)
    assert sol.feasible
    res = svm.kkt_residuals(sol, inst.X, inst.Z, o)
    assert max(res.values()) < 1e-10, res
    # independent: SLSQP on the primal min ||w||^2/2 s.t. M w >= 1
    import scipy.optimize
    M = svm.features(inst.X, inst.Z, o)
    r = scipy.optimize.minimize(lambda w: 0.5 * w @ w, np.zeros(M.shape[1]), jac=lambda w: w,
                                method="SLSQP", constraints=[{"type": "ineq", "fun": lambda w: M @ w - 1,
                                                              "jac": lambda w: M}],
                                options={"ftol": 1e-14, "maxiter": 500})
    assert r.success
    np.testing.assert_allclose(np.linalg.norm(r.x), sol.objective, rtol=1e-6)
    assert metrics.numerical_rank(sol.W, 1e-7) == 6
    assert svm.is_locally_optimal(sol, np.asarray(token_scores(Instance(*map(jnp.asarray, inst)))), o)


def test_nuclear_svm_certificate_and_burer_monteiro_cross_check():
    inst, o = _instance(1, n=3, T=4, d=4)
    sol = svm.solve_nuclear(inst.X, inst.Z, o)
    assert sol.feasible and sol.gap < 1e-6
    assert sol.margins.min() >= 1 - 1e-9
    start = np.asarray(0.3 * jax.random.normal(jax.random.PRNGKey(5), (2, 4, 4)))
    W_bm, obj_bm, ok = svm.solve_nuclear_burer_monteiro(inst.X, inst.Z, o, start)
    assert ok
    np.testing.assert_allclose(obj_bm, sol.objective, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(W_bm, "nuc"), sol.objective, rtol=1e-5)
    frob = svm.solve_frobenius(inst.X, inst.Z, o)
    assert sol.objective <= np.linalg.norm(frob.W, "nuc") + 1e-7   # nuclear optimum is lower


def test_infeasible_instance_is_reported_not_raised():
    inst, o = _instance(2, n=6, T=8, d=1)
    f = svm.solve_frobenius(inst.X, inst.Z, o)
    n = svm.solve_nuclear(inst.X, inst.Z, o)
    assert f.status == "infeasible" and not f.feasible and f.W is None
    assert n.status == "infeasible" and not n.feasible


def test_regularization_path_runs_and_stays_in_ball():
    inst, o = _instance(0, n=3, T=4, d=4)
    sol = svm.solve_frobenius(inst.X, inst.Z, o)
    starts = jnp.asarray((sol.W / sol.objective)[None])
    cfg = svm.PathConfig(radii=(1.0, 4.0, 16.0), steps=100)
    Ws, Ls = svm.regularization_path(Instance(*map(jnp.asarray, inst)), starts, cfg)
    norms = np.linalg.norm(np.asarray(Ws), axis=(1, 2))
    assert np.all(norms <= np.asarray(cfg.radii) * (1 + 1e-12))
    assert Ls.shape == (3, 2)
    # one set of starts per radius (the unseeded path's random starts): same answer when all sets are equal
    per_radius = jnp.broadcast_to(starts, (3,) + starts.shape)
    Ws2, Ls2 = svm.regularization_path(Instance(*map(jnp.asarray, inst)), per_radius, cfg)
    np.testing.assert_array_equal(np.asarray(Ws2), np.asarray(Ws))
    np.testing.assert_array_equal(np.asarray(Ls2), np.asarray(Ls))
    # the kick round: n T more starts per radius, still inside the ball; at the first radius it
    # descends from a superset of the same starts, so its best loss is no higher
    kcfg = dataclasses.replace(cfg, kick=1.0)
    Wk, Lk = svm.regularization_path(Instance(*map(jnp.asarray, inst)), starts, kcfg)
    assert Lk.shape == (3, 2 + 3 * 4)
    assert np.all(np.linalg.norm(np.asarray(Wk), axis=(1, 2)) <= np.asarray(cfg.radii) * (1 + 1e-12))
    np.testing.assert_array_equal(np.asarray(Lk)[:, :2][0], np.asarray(Ls)[0])
    assert float(np.min(Lk[0])) <= float(np.min(Ls[0]))


def test_kick_directions_move_one_sequence_toward_one_token():
    """E_it = x_it q_i^T / ||.|| with q_i = pinv(Z)[:, i]: unit norm, the logits of sequence j != i
    unchanged (z_j^T q_i = 0 at d >= n), and in sequence i token t's logit rises the most."""
    inst, _ = _instance(3, n=3, T=4, d=5)
    E = np.asarray(svm.kick_directions(Instance(*map(jnp.asarray, inst))))            # (n T, d, d)
    np.testing.assert_allclose(np.linalg.norm(E, axis=(1, 2)), 1.0, rtol=1e-12)
    for i in range(3):
        for t in range(4):
            dl = np.einsum("ntd,de,ne->nt", inst.X, E[i * 4 + t], inst.Z)              # (n, T) logit change
            others = [j for j in range(3) if j != i]
            assert np.max(np.abs(dl[others])) < 1e-12
            assert int(np.argmax(dl[i])) == t and dl[i, t] > 0


def test_independent_primal_solve_matches_and_certifies_the_rank():
    """The interior-point primal reaches the least-distance optimum, its certified distance bound
    holds, and the certified rank is min(n, d) at d > n: the independent test of rank <= min(n, d)."""
    inst, o = _instance(0)
    exact = svm.solve_frobenius(inst.X, inst.Z, o)
    primal = svm.solve_frobenius_primal(inst.X, inst.Z, o)
    assert primal.solved and primal.margins.min() >= 1 - 1e-12
    assert abs(primal.objective - exact.objective) / exact.objective < 1e-8
    assert np.linalg.norm(primal.W - exact.W) <= primal.dist_bound
    assert 0 < primal.dist_bound < 1e-4 * np.linalg.norm(exact.W, 2)
    assert svm.certified_rank(primal.W, primal.dist_bound) == 6
    U, sig, Vt = np.linalg.svd(primal.W)
    full_rank = U @ np.diag(np.maximum(sig, 10 * primal.dist_bound)) @ Vt    # what a rank-blind solver might return
    assert svm.certified_rank(full_rank, primal.dist_bound) == 10
    by_margin, by_lam = svm.active_sequences(exact)
    assert np.all(by_lam <= by_margin)                                  # lam > 0 implies an active margin


def test_infeasible_primal_is_reported_not_raised():
    inst, o = _instance(2, n=6, T=8, d=1)
    primal = svm.solve_frobenius_primal(inst.X, inst.Z, o)
    assert not primal.solved and primal.W is None


def test_undefined_cosines_are_null_not_nan():
    """An infeasible SVM makes a cosine undefined: null in the measurement (not NaN, which the
    runner treats as a divergence), and the judge fails the check it feeds instead of crashing."""
    from theory.harness.parts import require_finite
    from theory.harness.results import as_json
    inst, o = _instance(0)
    ok = svm.solve_frobenius(inst.X, inst.Z, o)
    bad = svm.SVMSolution(None, "infeasible", float("nan"), None, None)
    W = np.stack([ok.W, ok.W])
    cos = common.final_cosines(W, [ok, bad])
    assert cos[0] == pytest.approx(1.0) and cos[1] is None
    traj = common.nanmean_rows(common.cosine_trajectories(W[:, None], [bad, bad]))
    assert traj == [None]
    M = as_json({"cos_frob_final": cos, "cos_frob_traj_mean": traj})
    require_finite(next(p for p in exp.PARTS if p.name == "w_ngd"), {}, M)      # no divergence raised
    assert math.isnan(common.finite_mean(cos))


def test_unbounded_nuclear_ratio_is_allowed_nan_is_not():
    from theory.errors import DivergenceError
    from theory.harness.parts import require_finite
    part = next(p for p in exp.PARTS if p.name == "kq_ngd")
    require_finite(part, {}, {"KQ_nuclear_ratio": [1.0, "inf"]})
    with pytest.raises(DivergenceError):
        require_finite(part, {}, {"KQ_nuclear_ratio": [1.0, "nan"]})


# --- proofs --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["prove_pairwise_softmax_gradient", "prove_nuclear_variational",
                                  "prove_svm_kkt_exact", "prove_frobenius_rank_bound"])
def test_proofs(name):
    import proofs.svm_bias as P
    assert getattr(P, name)() is True


# --- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize("override", ["n=0", "T=1", "d=0", "steps=2010", "eta=-0.1",
                                      "gap_stop=800", "sweep_ds=(8,4)", "seeds=0", "path_kick=-1"])
def test_bad_config_raises_before_training(override):
    with pytest.raises(SandboxError):
        build_config(CLAIM, "quick", [override])


def test_d1_infeasible_gives_one_clear_error(tmp_path):
    with pytest.raises(SandboxError, match="infeasible"):
        run_claim(CLAIM, "quick", overrides=["d=1"], out=tmp_path)
    assert not (tmp_path / "results" / "svm_bias.json").exists()


def test_zero_padding_of_the_d_sweep_is_exact():
    """The d-sweep trains every d in one compile by zero-padding tokens to d_max: the padded
    gradient must be the unpadded gradient in the top-left block and zero elsewhere, and the
    padded init must vanish outside that block."""
    inst = sample_instance(jax.random.PRNGKey(0), 6, 8, 4)
    W = 0.3 * jax.random.normal(jax.random.PRNGKey(1), (4, 4))
    pad = Instance(jnp.pad(inst.X, ((0, 0), (0, 0), (0, 6))), inst.Y,
                   jnp.pad(inst.Z, ((0, 0), (0, 6))), jnp.pad(inst.v, (0, 6)))
    L, g = sa.make_grad_fn(inst)(sa.WParams(W), None)
    Lp, gp = sa.make_grad_fn(pad)(sa.WParams(jnp.pad(W, ((0, 6), (0, 6)))), None)
    assert float(abs(L - Lp)) < 1e-15
    np.testing.assert_allclose(gp.W[:4, :4], g.W, rtol=1e-13, atol=1e-16)
    assert float(jnp.max(jnp.abs(gp.W[4:, :]))) == 0.0 and float(jnp.max(jnp.abs(gp.W[:, 4:]))) == 0.0
    W0 = np.asarray(common.init_params(jax.random.PRNGKey(2), 10, 4, 1, "W", jnp.float64).W)
    assert np.all(W0[4:, :] == 0) and np.all(W0[:, 4:] == 0)
    assert 0 < np.abs(W0[:4, :4]).max() <= 0.5          # U(-1/sqrt(4), 1/sqrt(4)) on the block


@pytest.mark.claim          # trains: claim tier, not the unit loop
def test_same_seed_same_numbers_other_seed_other_numbers():
    """The w_ngd part (instances, init, training): Keys(0) twice agree, Keys(1) differs."""
    cfg = dataclasses.replace(exp.Config(), n=3, T=4, d=4, seeds=2, steps=40, log_every=20,
                              naive_control=False)
    a, b, c = (w_ngd.measure(cfg, Keys(s).sub("w_ngd"), None) for s in (0, 0, 1))
    for k in ("final_logits", "cos_frob_final", "grad_rel_error"):
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]))
        assert not np.any(np.asarray(a[k]) == np.asarray(c[k])), k


# --- judges fed wrong measurements (no training: the committed result's data) --------------------
def _instance_infeasible(P, M):
    """A degenerate instance (e.g. tokens on a line): Att-SVM(opt) reports infeasible."""
    M["svm_opt_status"][0] = "infeasible"
    return M


def _pairwise_grad_off_by_1pct(P, M):
    """A custom backward pass scaled by 1.01: relative error 0.01 against autodiff at init."""
    M["grad_rel_error"] = [0.01] * len(M["grad_rel_error"])
    return M


def _stopped_after_first_log(P, M):
    """Training stopped after log_every steps: every final cosine is the first logged mean."""
    M["cos_frob_final"] = [M["cos_frob_traj_mean"][0]] * len(M["cos_frob_final"])
    return M


def _W_100x_smaller(P, M):
    """W 100 times smaller (an early iterate): logits / 100, the softmax no longer saturates."""
    M["final_logits"] = (np.asarray(M["final_logits"]) / 100).tolist()
    return M


def _non_locally_optimal_selection(P, M):
    """One run stuck at a selection whose support tokens outscore the selected one."""
    M["selection_locally_optimal"][0] = False
    return M


def _control_with_pairwise_gradient(P, M):
    """The 'naive' control ran with the pairwise gradient: the same cosines as the main run."""
    M["naive"]["cos_frob_final"] = list(M["cos_frob_final"])
    return M


def _KQ_behaves_like_W(P, M):
    """K Q^T converging like W (to the Frobenius SVM): the W runs' cosines and nuclear ratios."""
    for what in ("cos_frob_final", "cos_nuclear_final", "nuclear_ratio"):
        M[f"KQ_{what}"] = list(M[f"W_{what}"])
    return M


def _frobenius_rank_one_short(P, M):
    """A Frobenius solver that loses one rank (e.g. drops its last support sequence)."""
    for part in ("panel", "main"):
        M[part]["rank_exact"] = [None if r is None else r - 1 for r in M[part]["rank_exact"]]
    return M


def _independent_solve_full_rank(P, M):
    """An independent solve whose W has full rank d (what rank <= min(n, d) rules out at d > n)."""
    for part in ("panel", "main"):
        M[part]["rank_independent"] = [None if r is None else d
                                       for r, d in zip(M[part]["rank_independent"], M[part]["d"])]
    return M


def _independent_solve_failed(P, M):
    """The independent solve did not finish on one feasible instance: its rank is undefined (null)."""
    M["main"]["rank_independent"][0] = None
    M["main"]["independent_solved"][0] = False
    return M


def _active_sets_miss_a_sequence(P, M):
    """An active-set count that misses one sequence wherever all n are active."""
    for part in ("panel", "main"):
        M[part]["active_by_margin"] = [a if a is None or not all(a) else [False] + a[1:]
                                       for a in M[part]["active_by_margin"]]
    return M


def _nuclear_returns_frobenius(P, M):
    """A nuclear solver that returns the Frobenius solution: full rank min(n, d)."""
    M["main"]["rank_nuclear"] = list(M["main"]["rank_exact"])
    return M


def _other_token(opt: np.ndarray) -> np.ndarray:
    """A token other than opt in every sequence (token 1 where opt is 0, else token 0)."""
    return np.where(opt == 0, 1, 0)


def _always_another_token(P, M):
    """A model that never selects opt (a fixed other token): no run reaches the global opt."""
    M["selected"] = _other_token(np.asarray(M["opt"])).tolist()
    return M


def _no_gain_from_d(P, M):
    """Over-parameterisation does not help: at every d as many runs reach opt as at the first d."""
    opt = np.asarray(M["opt"])                                                     # (D, I, n)
    hits = int(np.all(np.asarray(M["selected"])[0] == opt[0], axis=-1).sum())
    sel = _other_token(opt)
    sel[:, :hits] = opt[:, :hits]
    M["selected"] = sel.tolist()
    return M


def _path_reversed_in_R(P, M):
    """A path that turns away from W^mm_opt as R grows (a sign error): cosines reversed in R."""
    M["path_cos"] = [row[::-1] for row in M["path_cos"]]
    return M


def _path_keeps_gd_selection(P, M):
    """A path that only follows GD's solution: it selects opt exactly where GD did."""
    M["path_selects_opt"] = list(M["gd_selects_opt"])
    return M


def _path_cos_of_gd_local_start(P, M):
    """An unseeded path stuck at cosine 0.9 with W^mm_opt at every radius (a local branch)."""
    M["path_cos"] = [[0.9] * len(row) for row in M["path_cos"]]
    return M


def _seeded_start_beats_unseeded(P, M):
    """A seeded start that ends 1% below the unseeded loss on every instance (a missed minimiser)."""
    M["seeded_path_loss"] = (0.99 * np.asarray(M["path_loss"])).tolist()
    return M


def _norm_grows_like_sqrt_k(P, M):
    """||W(k)|| ~ sqrt k (not log k): the same final norms, increments ratio sqrt 10 per decade."""
    k, k_run = np.asarray(M["plain_steps"], dtype=float), np.asarray(M["plain_norm_steps"], dtype=float)
    norms = np.asarray(M["plain_norm"])
    M["plain_norm"] = (norms[:, -1:] * np.sqrt(k_run / k_run[-1])[None]).tolist()
    M["plain_norm_mean"] = (M["plain_norm_mean"][-1] * np.sqrt(k / k[-1])).tolist()
    return M


def _norm_slope_of_a_smaller_svm(P, M):
    """The norm's slope of a selection whose SVM norm is 30% larger (slope / ||W^mm|| = 1/1.3)."""
    M["plain_svm_norm"] = [None if s is None else 1.3 * s for s in M["plain_svm_norm"]]
    return M


def _fraction_d32_at_075(P, M):
    """18 of 24 runs at d = 32 reach opt (0.75): inside 2 s.d. at p = 1/2, outside 2 s.d. at p = 0.9."""
    opt, sel = np.asarray(M["opt"]), np.asarray(M["selected"])                   # (D, I, n)
    count = sel.shape[1]
    sel[-1] = opt[-1]
    sel[-1, : count - int(round(0.75 * count))] = _other_token(opt[-1, : count - int(round(0.75 * count))])
    M["selected"] = sel.tolist()
    return M


def _one_cosine_undefined(P, M):
    """One run's selection has an infeasible SVM: its cosine is null (undefined), not a number."""
    M["cos_frob_final"][0] = None
    return M


def _plain_as_fast_as_ngd(P, M):
    """Plain GD turning as fast as normalized GD: its cosines are NGD's at the same step."""
    M["plain_cos_frob_traj_mean"] = np.interp(M["plain_steps"], M["ngd_steps"],
                                              M["ngd_cos_frob_traj_mean"]).tolist()
    return M


WRONG = [
    ("w_ngd", "degenerate instance, SVM infeasible", _instance_infeasible, ["all_instances_svm_feasible"]),
    ("w_ngd", "pairwise gradient off by 1%", _pairwise_grad_off_by_1pct,
     ["pairwise_grad_vs_autodiff_rel_error"]),
    ("w_ngd", "training stopped after the first log", _stopped_after_first_log,
     ["w_ngd_cos_frob_mean", "w_ngd_cos_frob_min"]),
    ("w_ngd", "one cosine undefined (null)", _one_cosine_undefined, ["w_ngd_cos_frob_mean", "w_ngd_cos_frob_min"]),
    ("w_ngd", "W 100x smaller", _W_100x_smaller, ["w_ngd_softmax_mass_selected_min"]),
    ("w_ngd", "a non-locally-optimal selection", _non_locally_optimal_selection,
     ["w_ngd_selection_locally_optimal"]),
    ("w_ngd", "control ran with the pairwise gradient", _control_with_pairwise_gradient,
     ["control_naive_grad_worse"]),
    ("kq_ngd", "K Q^T behaves like W", _KQ_behaves_like_W,
     ["kq_ngd_cos_nuclear_mean", "kq_ngd_cos_frob_mean", "kq_nuclear_norm_over_margin_ratio",
      "w_prefers_frob_kq_prefers_nuclear"]),
    ("svm_ranks", "Frobenius solution one rank short", _frobenius_rank_one_short,
     ["rank_frob_equals_min_active_seqs_d"]),
    ("svm_ranks", "independent solve of full rank d", _independent_solve_full_rank,
     ["rank_frob_at_most_min_n_d_independent"]),
    ("svm_ranks", "independent solve failed on one instance", _independent_solve_failed,
     ["rank_frob_at_most_min_n_d_independent"]),
    ("svm_ranks", "active-set count misses a sequence", _active_sets_miss_a_sequence,
     ["rank_frob_equals_min_active_seqs_d"]),
    ("svm_ranks", "nuclear solver returns the Frobenius solution", _nuclear_returns_frobenius,
     ["rank_nuclear_below_frob", "rank_nuclear_mean_about_n_over_2"]),
    ("overparameterisation", "never the opt token", _always_another_token,
     ["global_fraction_d4", "global_fraction_d32", "global_fraction_rises_with_d"]),
    ("overparameterisation", "no gain from d", _no_gain_from_d,
     ["global_fraction_d32", "global_fraction_rises_with_d"]),
    ("overparameterisation", "0.75 at d = 32 (fails only at the s.d. of p = 0.9)", _fraction_d32_at_075,
     ["global_fraction_d32"]),
    ("regularization_path", "path reversed in R", _path_reversed_in_R,
     ["path_cos_opt_at_rmax_mean", "path_cos_rises_with_r"]),
    ("regularization_path", "unseeded path on a local branch", _path_cos_of_gd_local_start,
     ["path_cos_opt_at_rmax_mean"]),
    ("regularization_path", "path keeps GD's selection", _path_keeps_gd_selection,
     ["path_selects_opt_where_gd_local"]),
    ("regularization_path", "a seeded start beats the unseeded search", _seeded_start_beats_unseeded,
     ["path_unseeded_loss_reaches_seeded"]),
    ("plain_gd", "norm grows like sqrt k", _norm_grows_like_sqrt_k, ["plain_gd_norm_grows_like_log_k"]),
    ("plain_gd", "slope of an SVM 1.3x larger", _norm_slope_of_a_smaller_svm, ["plain_gd_norm_grows_like_log_k"]),
    ("plain_gd", "plain GD as fast as NGD", _plain_as_fast_as_ngd, ["plain_gd_slower_than_ngd"]),
]


test_wrong_measurement_fails, test_every_evidence_check_can_fail = judge_tests(CLAIM, WRONG)


# --- the quick preset end to end -----------------------------------------------------------------
QUICK_CHECKS_THAT_HOLD = [
    "all_instances_svm_feasible", "svm_kkt_max_residual", "pairwise_grad_vs_autodiff_rel_error",
    "w_ngd_cos_frob_mean", "w_ngd_cos_frob_min", "w_ngd_softmax_mass_selected_min",
    "w_ngd_selection_locally_optimal",
    "control_naive_grad_worse",
    "kq_ngd_cos_nuclear_mean", "kq_ngd_cos_frob_mean", "kq_nuclear_norm_over_margin_ratio",
    "w_prefers_frob_kq_prefers_nuclear", "nuclear_certificate_rel_gap_max",
    "rank_frob_at_most_min_n_d_independent", "rank_frob_at_most_min_n_d",
    "independent_primal_matches_least_distance", "rank_frob_equals_min_active_seqs_d",
    "rank_nuclear_below_frob", "rank_nuclear_mean_about_n_over_2", "global_fraction_d4", "global_fraction_d32",
    "global_fraction_rises_with_d", "path_cos_rises_with_r", "path_cos_opt_at_rmax_mean",
    "path_selects_opt_where_gd_local", "path_unseeded_loss_reaches_seeded",
    "plain_gd_norm_grows_like_log_k", "plain_gd_slower_than_ngd",
]

# Checks that may fail at the quick preset, and why (each reports its numbers in the result):
#
# "every selection GD reaches is locally optimal" is a statement about the limit of normalized GD.
# At the authors' 2000 steps one of the 20 seed-0 runs (run 7) has not converged yet (smallest
# logit gap 63, below gap_stop = 600) and selects a token that a support token outscores; trained
# to 10^4 steps (the presets' budget) every run at seeds 0, 1, 2 and in the full preset converges to
# a locally optimal selection, so the check is expected to hold.
#
# The regularization-path checks run on the unseeded path (path following, 8 random unit starts and
# one round of n T query-token kicks per radius; nothing from an SVM solution). With the kicks the
# search finds the ball minimiser on every instance at seeds 0, 1, 2 (no start seeded with W^mm_opt
# ends lower by > 1e-4; without them 6/20 at seed 0 did), so those checks are expected to hold.
DOCUMENTED_FAILING: set[str] = set()


def _assert_quick_result(result, out):
    checks = {c["name"]: c for c in result["checks"]}
    assert set(QUICK_CHECKS_THAT_HOLD) | DOCUMENTED_FAILING == set(checks)
    failing = {n: (checks[n]["predicted"], checks[n]["measured"]) for n in QUICK_CHECKS_THAT_HOLD
               if not checks[n]["passed"]}
    assert not failing, failing
    panel = result["data"]["svm_ranks"]["measured"]["panel"]
    n = result["config"]["n"]
    for d, r, active in zip(panel["d"], panel["rank_exact"], panel["active_by_margin"]):
        if r is not None and r != min(n, d):
            assert sum(active) < n           # each exception to min(n, d): a sequence without an active margin
    assert result["verdict"] == ("pass" if all(checks[n]["passed"] for n in DOCUMENTED_FAILING) else "fail")
    on_disk = json.loads((out / "results" / "svm_bias.json").read_text())
    assert on_disk["verdict"] == result["verdict"] and on_disk["precision"] == "float64"
    assert (out / "figures" / "svm_bias.png").stat().st_size > 10_000


@pytest.mark.claim
def test_quick_preset_checks(tmp_path):
    _assert_quick_result(run_claim(CLAIM, "quick", seed=0, out=tmp_path), tmp_path)


# At the authors' 2000 steps the full preset's 40 runs include one (run 20 at seed 0) far from
# converged (smallest logit gap 4.8: selection not locally optimal, softmax mass 0.9916); at the
# presets' 10^4 steps every run converges, and the unseeded path search (16 random starts and the
# n T query-token kicks per radius) finds the ball minimiser on all 40 instances.
FULL_DOCUMENTED_FAILING = DOCUMENTED_FAILING


@pytest.mark.slow
def test_full_preset(tmp_path):
    result = run_claim(CLAIM, "full", seed=0, out=tmp_path)
    failing = [c["name"] for c in result["checks"] if not c["passed"]]
    assert set(failing) <= FULL_DOCUMENTED_FAILING, failing
    assert result["verdict"] == ("pass" if not failing else "fail")
