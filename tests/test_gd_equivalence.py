"""gd_equivalence: exact constructions, reference implementations, predictions, proofs, the quick claim."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from proofs import gd_equivalence as proofs
from theory.models import lsa as models
from theory.engine.precision import precision
from theory.predictions import gd_equivalence as pred
from theory.harness.runner import run_claim
from theory.tasks.linear_regression import RegressionTask, sample_batch, sample_prompt, tokens

VO = RegressionTask(d=10)
ZFB = RegressionTask(d=5, input_dist="gaussian", lam=(4.0, 2.0, 1.0, 0.5, 0.25))


# --- the model against a naive loop --------------------------------------------------------------
def _naive_lsa(W_KQ, W_PV, Z, n_ctx, n_norm=None):
    """Token-by-token loops, straight from dz_i = (1/n) sum_j (z_j^T W_KQ z_i) W_PV z_j."""
    Z = np.asarray(Z, np.float64)
    out = Z.copy()
    for i in range(Z.shape[0]):
        acc = np.zeros(Z.shape[1])
        for j in range(n_ctx):
            acc += (Z[j] @ np.asarray(W_KQ) @ Z[i]) * (np.asarray(W_PV) @ Z[j])
        out[i] = Z[i] + acc / (n_norm or n_ctx)
    return out


def test_lsa_layer_matches_naive_loop():
    with precision("float64"):
        k1, k2 = jax.random.split(jax.random.PRNGKey(0))
        p = models.init_lsa(k1, 2, 4, 0.5)
        Z = jax.random.normal(k2, (6, 4))
        ref = _naive_lsa(p.W_KQ[1], p.W_PV[1], _naive_lsa(p.W_KQ[0], p.W_PV[0], Z, 5), 5)
        y_hat, acts = models.lsa_forward(p, Z, 5)
        np.testing.assert_allclose(acts.residuals[-1], ref, rtol=1e-12, atol=1e-12)
        assert float(y_hat) == pytest.approx(-ref[-1, -1], rel=1e-12)
        assert float(models.lsa_predict(p, Z, 5)) == pytest.approx(-ref[-1, -1], rel=1e-12)
        fixed = _naive_lsa(p.W_KQ[0], p.W_PV[0], Z, 5, n_norm=3)
        assert float(models.lsa_predict(p, Z, 5, depth=1, n_norm=3)) == pytest.approx(-fixed[-1, -1], rel=1e-12)


def test_softmax_attention_matches_naive_loop():
    with precision("float64"):
        k1, k2 = jax.random.split(jax.random.PRNGKey(1))
        p = models.init_softmax(k1, 2, 4, 0.7)
        Z = np.asarray(jax.random.normal(k2, (6, 4)))
        ref = Z[-1].copy()
        for h in range(2):
            s = np.array([Z[j] @ np.asarray(p.W_KQ[h]) @ Z[-1] for j in range(5)])
            a = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
            ref += sum(a[j] * np.asarray(p.W_PV[h]) @ Z[j] for j in range(5))
        y_hat, pattern = models.softmax_attention_forward(p, jnp.asarray(Z), 5)
        assert float(y_hat) == pytest.approx(-ref[-1], rel=1e-12)
        np.testing.assert_allclose(pattern.sum(-1), 1.0, rtol=1e-12)


def test_query_is_never_attended_to():
    """Changing the query token's y-slot must not change any context token (query mask)."""
    p = models.init_lsa(jax.random.PRNGKey(2), 1, 4, 0.5)
    Z = jax.random.normal(jax.random.PRNGKey(3), (6, 4))
    a = models.lsa_forward(p, Z, 5)[1].residuals[-1]
    b = models.lsa_forward(p, Z.at[-1, -1].set(7.0), 5)[1].residuals[-1]
    np.testing.assert_array_equal(a[:5], b[:5])


def test_task_worked_example_and_shapes():
    with precision("float64"):
        p = sample_prompt(jax.random.PRNGKey(0), VO, 10)
        Z = tokens(p)
        assert Z.shape == (11, 11) and float(Z[-1, -1]) == 0.0
        np.testing.assert_allclose(Z[:10, -1], p.X @ p.w, rtol=1e-12)
        b = sample_batch(jax.random.PRNGKey(1), ZFB, 20, 20000)
        np.testing.assert_allclose(jnp.var(b.X.reshape(-1, 5), axis=0), ZFB.lam, rtol=0.05)
        u = sample_batch(jax.random.PRNGKey(2), VO, 10, 4000).X
        assert float(jnp.max(jnp.abs(u))) <= 0.5 and float(jnp.var(u)) == pytest.approx(1 / 12, rel=0.02)


# --- constructions: exact in float64 ------------------------------------------------------------
@pytest.mark.parametrize("K", [1, 2, 4])
def test_construction_equals_K_steps_of_gd(K):
    with precision("float64"):
        ps = jax.vmap(lambda k: sample_prompt(k, VO, 10))(jax.random.split(jax.random.PRNGKey(K), 32))
        etas = jnp.linspace(2.0, 6.0, K)
        lsa = pred.lsa_predict(pred.construct_gd(etas, 10), ps, 10)
        ref = jax.vmap(lambda q: pred.gd_steps(q.X, q.y, q.x_q, etas))(ps)
        np.testing.assert_allclose(lsa, ref, rtol=1e-10, atol=1e-12)
        # the full forward agrees too, and every context token holds its GD residual
        Z = tokens(jax.tree_util.tree_map(lambda a: a[0], ps))
        _, acts = models.lsa_forward(pred.construct_gd(etas, 10), Z, 10)
        q = jax.tree_util.tree_map(lambda a: a[0], ps)
        W = jnp.zeros(10)
        for eta in etas:
            W = W - eta * (q.X @ W - q.y) @ q.X / 10
        np.testing.assert_allclose(acts.residuals[-1][:10, -1], q.y - q.X @ W, rtol=1e-10, atol=1e-12)


def test_construction_equals_gd_plus_plus():
    with precision("float64"):
        ps = jax.vmap(lambda k: sample_prompt(k, VO, 10))(jax.random.split(jax.random.PRNGKey(9), 32))
        etas, gammas = jnp.array([5.0, 12.0, 3.0]), jnp.array([1.5, 0.7, 2.0])
        lsa = pred.lsa_predict(pred.construct_gdpp(etas, gammas, 10), ps, 10)
        ref = jax.vmap(lambda q: pred.gd_plus_plus(q.X, q.y, q.x_q, etas, gammas))(ps)
        np.testing.assert_allclose(lsa, ref, rtol=1e-10, atol=1e-12)
        # the construction is a sign/scale choice: W_KQ -> c W_KQ, W_PV -> W_PV / c leaves it unchanged
        p = pred.construct_gdpp(etas, gammas, 10)
        p2 = models.LSAParams(-2.0 * p.W_KQ, p.W_PV / -2.0)
        np.testing.assert_allclose(pred.lsa_predict(p2, ps, 10), lsa, rtol=1e-12)


# --- predictions --------------------------------------------------------------------------------
def test_one_step_prediction_against_monte_carlo():
    """The closed-form L(eta) against the constructed layer's loss on 2^17 prompts (float64)."""
    with precision("float64"):
        eta, loss = pred.optimal_one_step(VO, 10)
        assert eta == pytest.approx(6.0606, abs=1e-4) and loss == pytest.approx(0.20623, abs=1e-5)
        ps = sample_batch(jax.random.PRNGKey(5), VO, 10, 2 ** 17)
        for e in (0.5 * eta, eta, 1.5 * eta):
            mc = 0.5 * float(jnp.mean((pred.lsa_predict(pred.construct_gd(e, 10), ps, 10) - ps.y_q) ** 2))
            assert mc == pytest.approx(pred.one_step_loss(VO, 10, e), rel=0.01)


def test_zfb_prediction_against_monte_carlo():
    with precision("float64"):
        gamma_inv = pred.zfb_preconditioner(ZFB, 20)
        np.testing.assert_allclose(np.diag(gamma_inv), [0.218, 0.402, 0.696, 1.096, 1.538], atol=2e-3)
        A = jnp.asarray(gamma_inv)
        for M in (5, 40):
            ps = sample_batch(jax.random.PRNGKey(M), ZFB, M, 2 ** 16)
            preds = jax.vmap(lambda q: q.x_q @ A @ (q.X.T @ q.y) / M)(ps)
            mc = float(jnp.mean((preds - ps.y_q) ** 2))
            assert mc == pytest.approx(pred.zfb_risk(ZFB, 20, M), rel=0.03)
        # isotropic special case: R(N) = d (d + 1)/(N + d + 1)
        iso = RegressionTask(d=5, input_dist="gaussian")
        assert pred.zfb_risk(iso, 20, 20) == pytest.approx(5 * 6 / 26, rel=1e-12)
        # the fixed-1/N control equals the trained optimum at M = N and blows up beyond
        assert pred.zfb_risk_fixed_norm(ZFB, 20, 20) == pytest.approx(pred.zfb_risk(ZFB, 20, 20))
        assert pred.zfb_risk_fixed_norm(ZFB, 20, 1000) > 1000 * pred.zfb_risk(ZFB, 20, 1000)


def test_predictions_follow_the_config():
    eta6, _ = pred.optimal_one_step(RegressionTask(d=6), 15)
    assert eta6 == pytest.approx(15 / ((1 / 12) * (15 + 6 - 0.2)))
    with pytest.raises(ValueError, match="isotropic"):
        pred.optimal_one_step(ZFB, 20)


# --- proofs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("prove", proofs.ALL, ids=lambda f: f.__name__)
def test_proof(prove):
    prove()


# --- the claim, quick preset -------------------------------------------------------------------------
EXPECTED_CHECKS = [
    "construction: LSA == K-step GD (K=1,2,3), rel. max error",
    "construction: LSA == GD++ (K=1,2,3), rel. max error",
    "one layer: held-out loss vs analytic one-step GD loss L*",
    "one layer: implied step size tr(-W_PV[y,y] W_KQ[x,x])/d vs eta*",
    "one layer: W_KQ x-block off-diagonal / diagonal",
    "one layer: |W_PV y-row x-part| / |W_PV[y,y]|",
    "one layer: model cosine vs GD on held-out tasks",
    "ZFB: ||Gamma_eff - Gamma^-1||_F / ||Gamma^-1||_F",
    "control: softmax head model cosine vs GD",
]


@pytest.fixture(scope="module")
def quick_result(tmp_path_factory):
    return run_claim("gd_equivalence", "quick", out=tmp_path_factory.mktemp("gd"))


def test_quick_claim_verdict_and_each_check(quick_result):
    checks = {c["name"]: c for c in quick_result["checks"]}
    for name in EXPECTED_CHECKS:
        assert checks[name]["passed"], checks[name]
    assert any(n.startswith("ZFB: test risk R(M)") and c["passed"] for n, c in checks.items())
    assert any(n.startswith("ZFB control") and c["passed"] for n, c in checks.items())
    depth = [c for n, c in checks.items() if n.startswith("depth")]
    assert depth and all(c["passed"] for c in depth), [c for c in depth if not c["passed"]]
    assert quick_result["verdict"] == "pass"


def test_quick_result_file_and_figure(quick_result, tmp_path_factory):
    assert quick_result["precision"] == "float32" and quick_result["config"]["d"] == 10
    assert quick_result["git"].keys() == {"commit", "dirty"} and quick_result["versions"]["jax"]
