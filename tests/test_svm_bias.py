"""Tests of claim `svm_bias`: task, model, pairwise softmax gradient, SVM solvers, proofs, the
quick preset end to end, and bad input (Tarzanagh, Li, Thrampoulidis & Oymak 2023)."""
from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theory.models import single_attention as sa
from theory.errors import SandboxError
from theory.engine.precision import precision
from theory.predictions import svm_bias as svm
from theory.harness.runner import build_config, run_claim
from theory.tasks.token_selection import (Instance, optimal_tokens, sample_instance,
                                          token_scores)


@pytest.fixture(autouse=True)
def _x64():
    with precision("float64"):
        yield


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
    assert svm.numerical_rank(sol.W, 1e-7) == 6
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


# --- proofs --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["prove_pairwise_softmax_gradient", "prove_nuclear_variational",
                                  "prove_svm_kkt_exact", "prove_frobenius_rank_bound"])
def test_proofs(name):
    import proofs.svm_bias as P
    assert getattr(P, name)() is True


# --- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize("override", ["n=0", "T=1", "d=0", "steps=2010", "eta=-0.1",
                                      "gap_stop=800", "sweep_ds=(8,4)", "seeds=0"])
def test_bad_config_raises_before_training(override):
    with pytest.raises(SandboxError):
        build_config("svm_bias", "quick", [override])


def test_d1_infeasible_gives_one_clear_error(tmp_path):
    with pytest.raises(SandboxError, match="infeasible"):
        run_claim("svm_bias", "quick", overrides=["d=1"], out=tmp_path)
    assert not (tmp_path / "results" / "svm_bias.json").exists()


def test_zero_padding_of_the_d_sweep_is_exact():
    """The d-sweep trains every d in one compile by zero-padding tokens to d_max: the padded
    gradient must be the unpadded gradient in the top-left block and zero elsewhere."""
    inst = sample_instance(jax.random.PRNGKey(0), 6, 8, 4)
    W = 0.3 * jax.random.normal(jax.random.PRNGKey(1), (4, 4))
    pad = Instance(jnp.pad(inst.X, ((0, 0), (0, 0), (0, 6))), inst.Y,
                   jnp.pad(inst.Z, ((0, 0), (0, 6))), jnp.pad(inst.v, (0, 6)))
    L, g = sa.make_grad_fn(inst)(sa.WParams(W), None)
    Lp, gp = sa.make_grad_fn(pad)(sa.WParams(jnp.pad(W, ((0, 6), (0, 6)))), None)
    assert float(abs(L - Lp)) < 1e-15
    np.testing.assert_allclose(gp.W[:4, :4], g.W, rtol=1e-13, atol=1e-16)
    assert float(jnp.max(jnp.abs(gp.W[4:, :]))) == 0.0 and float(jnp.max(jnp.abs(gp.W[:, 4:]))) == 0.0


def test_training_is_deterministic():
    import functools

    from experiments import svm_bias as E
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(0), i))(jnp.arange(2))
    fn = functools.partial(E._run, n=3, T=4, d=4, m=4, kind="W", optimizer="normalized_gd",
                           readout="pairwise", eta=0.1, steps=40, log_every=20, gap_stop=600.0,
                           log_weights=False, progress=None)
    a = jax.jit(jax.vmap(fn))(keys)[0]
    b = jax.jit(jax.vmap(fn))(keys)[0]
    assert np.array_equal(np.asarray(a), np.asarray(b))


# --- the quick preset end to end -----------------------------------------------------------------
QUICK_CHECKS_THAT_HOLD = [
    "all_instances_svm_feasible", "svm_kkt_max_residual", "pairwise_grad_vs_autodiff_rel_error",
    "W_NGD_cos_Frob_mean", "W_NGD_cos_Frob_min", "W_NGD_softmax_mass_selected_min",
    "W_NGD_selection_locally_optimal", "KQ_NGD_cos_nuclear_mean", "KQ_NGD_cos_Frob_mean",
    "KQ_nuclear_norm_over_margin_ratio", "W_prefers_Frob_KQ_prefers_nuclear",
    "nuclear_certificate_rel_gap_max", "rank_Frob_at_most_min_n_d",
    "rank_Frob_equals_min_supported_seqs_d", "rank_nuclear_below_Frob",
    "rank_nuclear_mean_about_n_over_2", "global_fraction_d4", "global_fraction_d32",
    "global_fraction_rises_with_d", "path_cos_opt_at_Rmax_mean", "path_cos_rises_with_R",
    "path_selects_opt_where_GD_local", "plain_GD_norm_grows_like_log_k", "plain_GD_slower_than_NGD",
    "control_naive_grad_worse",
]


@pytest.fixture(scope="module")
def quick_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("svm_bias")
    with precision("float64"):
        result = run_claim("svm_bias", "quick", seed=0, out=out)
    return result, out


# The "rank W^mm_F = min(n, d) whenever feasible" does NOT hold on every instance: at
# seed 0, 4 of 144 feasible rank-panel instances (d = 6, 8) have rank 5 < 6, each because one
# sequence has all its SVM constraints slack (no support token), so its term u_i z_i^T vanishes.
# Verified independently (SLSQP on the primal gives the same optimum and rank). The check stays at
# the statement and reports passed: false; the refined statement is asserted instead.
DOCUMENTED_FAILING = {"rank_Frob_equals_min_n_d"}


def test_quick_preset_checks(quick_result):
    result, out = quick_result
    checks = {c["name"]: c for c in result["checks"]}
    assert set(QUICK_CHECKS_THAT_HOLD) | DOCUMENTED_FAILING == set(checks)
    failing = {n: (checks[n]["predicted"], checks[n]["measured"]) for n in QUICK_CHECKS_THAT_HOLD
               if not checks[n]["passed"]}
    assert not failing, failing
    rank = checks["rank_Frob_equals_min_n_d"]
    rows = np.asarray(result["data"]["rank_rows"]).reshape(-1, 5)
    feas = rows[rows[:, 1] == 1]
    exceptions = feas[feas[:, 2] != np.minimum(result["data"]["n"], feas[:, 0])]
    assert rank["passed"] == (len(exceptions) == 0)
    assert np.all(exceptions[:, 4] < result["data"]["n"])   # each exception: a sequence without support
    assert result["verdict"] == ("pass" if rank["passed"] else "fail")
    on_disk = json.loads((out / "results" / "svm_bias.json").read_text())
    assert on_disk["verdict"] == result["verdict"] and on_disk["precision"] == "float64"
    assert (out / "figures" / "svm_bias.png").stat().st_size > 10_000


@pytest.mark.slow
def test_full_preset(tmp_path):
    result = run_claim("svm_bias", "full", seed=0, out=tmp_path)
    failing = [c["name"] for c in result["checks"] if not c["passed"]]
    assert set(failing) <= DOCUMENTED_FAILING, failing
    assert result["verdict"] == ("pass" if not failing else "fail")
