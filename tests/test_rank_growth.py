"""Tests for the `rank_growth` claim: model pieces, teachers, predictions, proofs, quick preset, bad input."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from claim_asserts import assert_checks_pass

from experiments import rank_growth as rg
from proofs.rank_growth import (prove_balanced_mode_ode, prove_conserved_imbalance,
                                prove_discrete_gd_mode_growth, prove_dormant_scale,
                                prove_saxe_halfway_time, prove_saxe_logistic_solves_ode)
from theory.models import factored as ln
from theory.errors import SandboxError
from theory.engine.precision import precision
from theory.predictions import rank_growth as pred
from theory.harness.runner import run_claim
from theory.tasks import teachers


@pytest.fixture
def f64():
    with precision("float64"):
        yield


# --- model pieces against naive numpy loops ---------------------------------------------------
def _naive_diag_attention(a, b, X):
    T, d = X.shape
    out = np.zeros((T, d))
    for i in range(T):
        sc = np.array([sum(X[i, k] * a[k] * X[j, k] for k in range(d)) for j in range(T)])
        w = np.exp(sc - sc.max())
        w /= w.sum()
        for j in range(T):
            out[i] += w[j] * X[j] * b
    return out


def test_diag_attention_matches_naive_loop(f64):
    key = jax.random.PRNGKey(3)
    X = jax.random.normal(key, (5, 4))
    p = ln.DiagAttention(*(jax.random.normal(jax.random.fold_in(key, i), (4,)) for i in range(4)))
    a, b = ln.diag_products(p)
    got = np.asarray(ln.diag_attention_forward(p, X))
    want = _naive_diag_attention(np.asarray(a), np.asarray(b), np.asarray(X))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_full_head_with_diagonal_factors_is_the_diagonal_head(f64):
    key = jax.random.PRNGKey(4)
    X = jax.random.normal(key, (6, 3))
    w = [jax.random.normal(jax.random.fold_in(key, i), (3,)) for i in range(4)]
    full = ln.AttentionHead(*(jnp.diag(v) for v in w))
    np.testing.assert_allclose(np.asarray(ln.attention_head_forward(full, X)),
                               np.asarray(ln.diag_attention_forward(ln.DiagAttention(*w), X)),
                               rtol=1e-12, atol=1e-13)


def test_attention_head_score_convention(f64):
    """s_ij = x_j^T W_KQ x_i with W_KQ = W_K W_Q^T (theory.models convention): an asymmetric
    W_KQ = e_0 e_1^T makes query i attend to key j in proportion to exp(x_j[0] x_i[1])."""
    X = jnp.array([[0.0, 3.0], [2.0, 0.0], [0.0, 0.0]])
    W_K = jnp.array([[1.0], [0.0]])
    W_Q = jnp.array([[0.0], [1.0]])
    e0 = jnp.array([[1.0], [0.0]])
    head = ln.AttentionHead(W_K, W_Q, e0, e0)                        # W_V W_O^T = e_0 e_0^T
    F = np.asarray(ln.attention_head_forward(head, X))
    w = np.exp(np.array([0.0, 6.0, 0.0]))                            # query 0: x_j[0] * 3
    np.testing.assert_allclose(F[0, 0], (w / w.sum()) @ np.array([0.0, 2.0, 0.0]), rtol=1e-12)


def test_linear_net_loss_matches_loop(f64):
    key = jax.random.PRNGKey(0)
    p = ln.init_linear_net(key, 3, 4, 2, 0.7)
    M = jax.random.normal(jax.random.fold_in(key, 9), (2, 3))
    W = np.asarray(p.W2) @ np.asarray(p.W1)
    want = 0.5 * sum((W[i, j] - float(M[i, j])) ** 2 for i in range(2) for j in range(3))
    assert float(ln.linear_net_loss(p, M)) == pytest.approx(want, rel=1e-13)


def test_stable_rank(f64):
    assert float(ln.stable_rank(jnp.diag(jnp.array([2.0, 1.0, 0.0])))) == pytest.approx(1.25)
    assert float(ln.stable_rank(jnp.zeros((3, 3)))) == 0.0


# --- teachers -------------------------------------------------------------------------------
def test_saxe_teacher_has_the_given_spectrum(f64):
    T = teachers.saxe_teacher(jax.random.PRNGKey(1), 6, 5, jnp.array([3.0, 1.0, 0.25]))
    np.testing.assert_allclose(np.linalg.svd(np.asarray(T.M), compute_uv=False),
                               [3.0, 1.0, 0.25, 0, 0], atol=1e-12)
    np.testing.assert_allclose(np.asarray(T.U.T @ T.U), np.eye(5), atol=1e-12)


def test_equicorrelated_regression_covariance(f64):
    D = teachers.equicorrelated_regression(jax.random.PRNGKey(2), 20000, 0.5, jnp.array([1.0, 0, -1]))
    C = np.cov(np.asarray(D.X).T)
    np.testing.assert_allclose(C, 0.5 * np.eye(3) + 0.5, atol=0.03)   # 20000 samples: sd ~ 0.01
    np.testing.assert_allclose(np.asarray(D.y), np.asarray(D.X) @ np.array([1.0, 0, -1]), atol=1e-12)


def test_lowrank_teacher_ranks(f64):
    L = teachers.lowrank_attention_teacher(jax.random.PRNGKey(5), 4, 3, 5, jnp.array([2.0, 1.0, 0.5]),
                                           jnp.array([1.0]))
    KQ, VO = ln.head_products(L.head)
    np.testing.assert_allclose(np.linalg.svd(np.asarray(KQ), compute_uv=False)[:4], [2, 1, 0.5, 0], atol=1e-12)
    assert np.linalg.matrix_rank(np.asarray(VO), tol=1e-9) == 1


# --- predictions ------------------------------------------------------------------------------
def test_saxe_halfway_time_matches_logistic(f64):
    s, u0, lr = 2.0, 1e-12, 0.01
    t = pred.saxe_halfway_time(s, u0, lr, discrete=False)
    assert float(pred.saxe_logistic(t, s, u0, lr)) == pytest.approx(1.0, rel=1e-10)
    # discrete GD: the exact scalar recursion reaches s/2 within a step of the corrected formula
    a = jnp.array([math.sqrt(u0)])
    u = np.asarray(pred.saxe_aligned_recursion(a, jnp.array([s]), lr, 3000))[:, 0]
    t_meas = rg.crossing_step(u, s / 2)
    assert t_meas == pytest.approx(float(pred.saxe_halfway_time(s, u0, lr)), rel=2e-3)


def test_saxe_u0_definitions(f64):
    cfg = rg.Config.quick()
    T, p0 = rg.saxe_instance(jax.random.PRNGKey(0), cfg, 1e-3)
    u0 = np.asarray(pred.saxe_u0(p0.W1, p0.W2, T.U, T.V, 4))
    u0r = np.asarray(pred.saxe_u0_orthogonalized(p0.W1, p0.W2, T.U, T.V, 4))
    assert u0r[0] == pytest.approx(u0[0], rel=1e-12)          # nothing to project out for mode 1
    assert np.all(u0r <= u0 * (1 + 1e-12))                    # projections only shrink
    assert 0.05 < u0.mean() / (1e-6 * cfg.hidden / 2) < 5      # scale alpha^2 h / 2


def test_saxe_plateau_losses():
    np.testing.assert_allclose(pred.saxe_plateau_losses([4, 2, 1, 0.5]), [10.625, 2.625, 0.625, 0.125, 0])


def test_greedy_separable_problem_exact(f64):
    """L = 1/2 sum (w_i - w*_i)^2: stages in order of |w*|, T_k = 1/|w*_k| (flow),
    lr/ln(1 + lr|w*_k|) (GD), saddles = w* restricted to the learned coordinates."""
    w_star = jnp.array([0.5, -2.0, 0.0, 1.0])
    loss = lambda th: 0.5 * jnp.sum((th - w_star) ** 2)
    st = pred.greedy_incremental(loss, 4)
    assert st.coord == [1, 3, 0] and st.sign == [-1.0, 1.0, 1.0]
    np.testing.assert_allclose(st.times, [0.5, 1.0, 2.0], rtol=1e-12)
    np.testing.assert_allclose(st.losses, [2.625, 0.625, 0.125, 0.0], atol=1e-8)
    np.testing.assert_allclose(st.thetas[-1], w_star, atol=1e-8)
    st_gd = pred.greedy_incremental(loss, 4, lr=0.1)
    np.testing.assert_allclose(st_gd.times, [0.1 / math.log1p(0.1 * w) for w in (2.0, 1.0, 0.5)], rtol=1e-12)


def test_greedy_rejects_unstable_lr(f64):
    with pytest.raises(SandboxError, match="stability"):
        pred.greedy_incremental(lambda th: 0.5 * jnp.sum((th - 3.0) ** 2), 2, lr=0.5)


# --- measurement helpers --------------------------------------------------------------------
def test_crossing_and_staircase_helpers():
    assert rg.crossing_step(np.array([0.0, 1.0, 3.0]), 2.0) == pytest.approx(2.5)   # x[k] is after k+1 steps
    assert rg.crossing_step(np.array([0.0, 1.0]), 2.0) == math.inf
    assert rg.staircase(np.array([0, 1, 1, 2, 3])) == (1, [0, 1, 2, 3])
    assert rg.staircase(np.array([0, 2, 3]))[0] == 2
    th = np.array([[0, 0], [0.1, 0], [0.2, 0.3]])
    assert rg.one_at_a_time(th, 0.05) == (True, [[0], [0, 1]])
    assert rg.one_at_a_time(np.array([[0, 0], [0.1, 0.1]]), 0.05)[0] is False


# --- proofs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("proof", [prove_balanced_mode_ode, prove_saxe_logistic_solves_ode,
                                   prove_saxe_halfway_time, prove_conserved_imbalance,
                                   prove_discrete_gd_mode_growth, prove_dormant_scale])
def test_proofs(proof):
    proof()


# --- determinism ----------------------------------------------------------------------------
def test_same_seed_same_numbers(f64):
    cfg = rg.Config(s=(2.0, 1.0), d=3, hidden=3, time_alphas=(1e-3,), time_tols=(0.1,),
                    rescale_alphas=(1e-2,))
    key = jax.random.PRNGKey(7)
    a = rg.saxe_run(cfg, key, 0, 1e-3)
    b = rg.saxe_run(cfg, key, 0, 1e-3)
    np.testing.assert_array_equal(np.asarray(a.logged[0]), np.asarray(b.logged[0]))


# --- the claim, quick preset ------------------------------------------------------------------
EXPECTED_CHECKS = [
    "saxe_stage_time_alpha_1e-06", "saxe_stage_time_alpha_1e-09", "saxe_top_mode_time",
    "saxe_stage_time_refined_all_alphas", "saxe_rank_unit_steps", "saxe_plateau_losses_rel_alpha_1e-09",
    "saxe_aligned_init_exact", "rescaled_collapse_saxe_alpha_0.01", "rescaled_collapse_saxe_alpha_0.0001",
    "rescaled_collapse_saxe_alpha_1e-08", "rescaled_collapse_saxe_shrinks",
    "rescaled_collapse_diag_regression_alpha_0.01", "rescaled_collapse_diag_regression_alpha_0.0001",
    "rescaled_collapse_diag_regression_alpha_1e-08", "rescaled_collapse_diag_regression_shrinks",
    "diag_regression_order", "diag_attention_order", "diag_attention_stage_times_alpha_1e-16",
    "diag_attention_one_coordinate_per_stage", "diag_attention_saddle_losses",
    "full_head_gd_rank_stepwise_EMPIRICAL", "full_head_adam_rank_stepwise_EMPIRICAL",
]


def test_quick_preset(tmp_path):
    """Default seed: every check passes. Known, reported: with --seed 3 the issue's Saxe tolerances
    fail (max |t_meas/t_pred - 1| = 0.089 at alpha=1e-6 vs 0.08, 0.057 at 1e-9 vs 0.05) because lower
    modes lose the hidden-space overlap with learned modes; saxe_stage_time_refined_all_alphas,
    which accounts for that, stays at 0.005 for seeds 0-3."""
    r = run_claim("rank_growth", "quick", seed=0, out=tmp_path)
    checks = assert_checks_pass(r, EXPECTED_CHECKS)
    assert checks["saxe_aligned_init_exact"]["error"] < 1e-10
    assert (tmp_path / "results" / "rank_growth.json").is_file()
    assert (tmp_path / "figures" / "rank_growth.png").is_file()


@pytest.mark.slow
def test_full_preset(tmp_path):
    r = run_claim("rank_growth", "full", seed=0, out=tmp_path)
    assert r["verdict"] == "pass", [c["name"] for c in r["checks"] if not c["passed"]]


# --- bad input: SandboxError before any training ----------------------------------------------
@pytest.fixture
def no_training(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("training started")
    monkeypatch.setattr(rg, "train", boom)
    monkeypatch.setattr(rg, "sweep", boom)


@pytest.mark.parametrize("override, match", [
    ("rescale_alphas=(1e-2,0,1e-8)", "positive"),
    ("time_alphas=(-1e-6,1e-9)", "positive"),
    ("att_alphas=(1e-2,1e-160)", "underflows"),
    ("head_alpha=1e-155", "underflows"),
    ("rescale_alphas=(2.0,1e-4)", "small initialisation"),
    ("saxe_lr=0.3", "stability"),
    ("reg_lr=0.5", "stability"),
    ("seeds=0", "positive"),
    ("s=(1.0,2.0)", "decreasing"),
    ("time_tols=(0.08,)", "one tolerance"),
])
def test_bad_input_raises_before_training(tmp_path, no_training, override, match):
    with pytest.raises(SandboxError, match=match):
        run_claim("rank_growth", "quick", out=tmp_path, overrides=[override])


def test_unstable_attention_lr_raises_before_training(no_training):
    """The attention lr is checked against the dormant-mode stability limit lr |dL/dtheta| < 1 when
    Algorithm 1 runs, which is before any training."""
    with precision("float64"), pytest.raises(SandboxError, match="stability"):
        rg._greedy_att(rg.Config(att_lr=2.0), jax.random.PRNGKey(0))


def test_plateau_levels_picks_the_flat_part():
    loss = np.array([5.0, 5.0, 5.0, 4.0, 2.0, 2.0, 2.0001, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(rg.plateau_levels(loss, np.array([3, 7])), [5.0, 2.0, 0.0])


def test_order_agrees_respects_resolution():
    # stages at T = 1.0, 1.05, 2.0; measured order swaps the first two (a near-tie) -> still ok
    ok, ties = rg.order_agrees([1.0, 1.05, 2.0], [1.1, 1.0, 2.1], [0, 1, 2], [1, 0, 2], rel=0.1)
    assert ok and ties == [(0, 1)]
    # a swap of well-separated stages fails, as does a missing coordinate
    assert not rg.order_agrees([1.0, 2.0], [2.1, 1.0], [0, 1], [1, 0], rel=0.1)[0]
    assert not rg.order_agrees([1.0, 2.0], [1.0, 2.0], [0, 1], [0], rel=0.1)[0]
