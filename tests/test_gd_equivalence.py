"""Tests of claim `gd_equivalence`: the LSA model and task, exact constructions, predictions against
Monte-Carlo, proofs, the parts' measurement helpers, judges fed wrong measurements, the quick preset
end to end (von Oswald et al. 2023; Zhang, Frei & Bartlett 2024; Ahn et al. 2023)."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from claim_asserts import assert_checks_pass, judge_tests

import experiments.gd_equivalence as exp
from experiments.gd_equivalence import common
from experiments.gd_equivalence.parts import one_layer
from proofs import gd_equivalence as proofs
from theory.engine.keys import Keys
from theory.errors import SandboxError
from theory.harness.runner import run_claim
from theory.models import lsa as models
from theory.predictions import gd_equivalence as pred
from theory.tasks.linear_regression import RegressionTask, sample_batch, sample_prompt, tokens

CLAIM = "gd_equivalence"
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


def test_lsa_layer_matches_naive_loop(f64):
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


@pytest.mark.parametrize("n_layers, depth, n_norm", [(1, 2, None), (2, 2, None), (3, 3, None), (2, 4, 3),
                                                     (1, 3, 7)])
def test_lsa_predict_matches_naive_loop_at_depth(f64, n_layers, depth, n_norm):
    """lsa_predict's moment recursion (query row only) against the naive loop, layers cycled."""
    k1, k2 = jax.random.split(jax.random.PRNGKey(depth))
    p = models.init_lsa(k1, n_layers, 4, 0.5)
    Z = jax.random.normal(k2, (7, 4))
    ref = np.asarray(Z, np.float64)
    for k in range(depth):
        ref = _naive_lsa(p.W_KQ[k % n_layers], p.W_PV[k % n_layers], ref, 6, n_norm)
    got = models.lsa_predict(p, Z, 6, depth=depth, n_norm=n_norm)
    assert float(got) == pytest.approx(-ref[-1, -1], rel=1e-12)
    assert float(got) == pytest.approx(float(models.lsa_forward(p, Z, 6, depth=depth, n_norm=n_norm)[0]), rel=1e-12)


def test_residual_clamp_matches_naive_loop(f64):
    """lsa_forward's clamp: the naive layer, then every entry clipped to [-c, c], after each layer;
    Acts.peak is the largest |entry| before the clip; no clamp leaves the stack unchanged."""
    k1, k2 = jax.random.split(jax.random.PRNGKey(7))
    p = models.init_lsa(k1, 2, 4, 1.5)
    Z = 2.0 * jax.random.normal(k2, (6, 4))
    ref, peaks = np.asarray(Z, np.float64), []
    for k in range(3):
        ref = _naive_lsa(p.W_KQ[k % 2], p.W_PV[k % 2], ref, 5)
        peaks.append(np.max(np.abs(ref)))
        ref = np.clip(ref, -3.0, 3.0)
    y_hat, acts = models.lsa_forward(p, Z, 5, depth=3, clamp=3.0)
    assert max(peaks) > 3.0                                  # the clamp acts in this example
    np.testing.assert_allclose(acts.residuals[-1], ref, rtol=1e-12)
    np.testing.assert_allclose(acts.peak, peaks, rtol=1e-12)
    assert float(y_hat) == pytest.approx(-ref[-1, -1], rel=1e-12)
    free = models.lsa_forward(p, Z, 5, depth=3)
    assert float(free[0]) == pytest.approx(float(models.lsa_predict(p, Z, 5, depth=3)), rel=1e-10)
    assert float(models.lsa_forward(p, Z, 5, depth=3, clamp=1e30)[0]) == pytest.approx(float(free[0]), rel=1e-12)


def test_softmax_attention_matches_naive_loop(f64):
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
    assert float(models.softmax_attention_predict(p, jnp.asarray(Z), 5)) == pytest.approx(-ref[-1], rel=1e-12)


def test_query_is_never_attended_to():
    """Changing the query token's y-slot must not change any context token (query mask)."""
    p = models.init_lsa(jax.random.PRNGKey(2), 1, 4, 0.5)
    Z = jax.random.normal(jax.random.PRNGKey(3), (6, 4))
    a = models.lsa_forward(p, Z, 5)[1].residuals[-1]
    b = models.lsa_forward(p, Z.at[-1, -1].set(7.0), 5)[1].residuals[-1]
    np.testing.assert_array_equal(a[:5], b[:5])


def test_task_worked_example_and_shapes(f64):
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
def test_construction_equals_K_steps_of_gd(K, f64):
    ps = jax.vmap(lambda k: sample_prompt(k, VO, 10))(jax.random.split(jax.random.PRNGKey(K), 32))
    etas = jnp.linspace(2.0, 6.0, K)
    lsa = pred.predict_prompts(pred.construct_gd(etas, 10), ps, 10)
    ref = jax.vmap(pred.gd_steps, (0, 0, 0, None))(ps.X, ps.y, ps.x_q, etas)
    np.testing.assert_allclose(lsa, ref, rtol=1e-10, atol=1e-12)
    # the full forward agrees too, and every context token holds its GD residual
    q = jax.tree_util.tree_map(lambda a: a[0], ps)
    _, acts = models.lsa_forward(pred.construct_gd(etas, 10), tokens(q), 10)
    W = jnp.zeros(10)
    for eta in etas:
        W = W - eta * (q.X @ W - q.y) @ q.X / 10
    np.testing.assert_allclose(acts.residuals[-1][:10, -1], q.y - q.X @ W, rtol=1e-10, atol=1e-12)


def test_construction_equals_gd_plus_plus(f64):
    ps = jax.vmap(lambda k: sample_prompt(k, VO, 10))(jax.random.split(jax.random.PRNGKey(9), 32))
    etas, gammas = jnp.array([5.0, 12.0, 3.0]), jnp.array([1.5, 0.7, 2.0])
    lsa = pred.predict_prompts(pred.construct_gdpp(etas, gammas, 10), ps, 10)
    ref = jax.vmap(pred.gd_plus_plus, (0, 0, 0, None, None))(ps.X, ps.y, ps.x_q, etas, gammas)
    np.testing.assert_allclose(lsa, ref, rtol=1e-10, atol=1e-12)
    # the construction is a sign/scale choice: W_KQ -> c W_KQ, W_PV -> W_PV / c leaves it unchanged
    p = pred.construct_gdpp(etas, gammas, 10)
    p2 = models.LSAParams(-2.0 * p.W_KQ, p.W_PV / -2.0)
    np.testing.assert_allclose(pred.predict_prompts(p2, ps, 10), lsa, rtol=1e-12)


# --- predictions --------------------------------------------------------------------------------
def test_one_step_prediction_against_monte_carlo(f64):
    """The closed-form L(eta) against the constructed layer's loss on 2^17 prompts (float64)."""
    eta, loss = pred.optimal_one_step(VO, 10)
    assert eta == pytest.approx(6.0606, abs=1e-4) and loss == pytest.approx(0.20623, abs=1e-5)
    ps = sample_batch(jax.random.PRNGKey(5), VO, 10, 2 ** 17)
    for e in (0.5 * eta, eta, 1.5 * eta):
        mc = 0.5 * float(jnp.mean((pred.predict_prompts(pred.construct_gd(e, 10), ps, 10) - ps.y_q) ** 2))
        assert mc == pytest.approx(pred.one_step_loss(VO, 10, e), rel=0.01)


def test_zfb_prediction_against_monte_carlo(f64):
    gamma_inv = pred.zfb_preconditioner(ZFB, 20)
    np.testing.assert_allclose(np.diag(gamma_inv), [0.218, 0.402, 0.696, 1.096, 1.538], atol=2e-3)
    A = jnp.asarray(gamma_inv)
    for M in (5, 40):
        ps = sample_batch(jax.random.PRNGKey(M), ZFB, M, 2 ** 16)
        preds = jnp.einsum("bd,de,bne,bn->b", ps.x_q, A, ps.X, ps.y) / M           # x_q^T A (1/M) X^T y
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
    P = one_layer.predict(dataclasses.replace(exp.Config(), d=6, n_context=15))
    assert P["eta_star"] == pytest.approx(eta6) and np.asarray(P["W_PV"])[6, 6] == pytest.approx(-eta6)


# --- proofs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("prove", proofs.ALL, ids=lambda f: f.__name__)
def test_proof(prove):
    prove()


# --- measurement helpers -----------------------------------------------------------------------
def test_structure_of_the_gd_construction_is_the_prediction(f64):
    """implied eta = eta, no off-diagonal, no x-part; invariant under W_KQ -> c W_KQ, W_PV -> W_PV/c."""
    gd = pred.construct_gd(6.0, 10)
    s = common.one_layer_structure(gd.W_KQ[0], gd.W_PV[0])
    assert s == {"implied_eta": pytest.approx(6.0, rel=1e-12), "kq_offdiag": 0.0, "pv_x_part": 0.0}
    scaled = common.one_layer_structure(-3.0 * gd.W_KQ[0], gd.W_PV[0] / -3.0)
    assert scaled["implied_eta"] == pytest.approx(6.0, rel=1e-12)
    np.testing.assert_allclose(common.learned_preconditioner(gd.W_KQ[0], gd.W_PV[0]), 6.0 * np.eye(10))


def test_sensitivity_of_one_gd_step_is_eta_h(f64):
    """d y_hat / d x_q of one GD step is eta (1/N) sum_i y_i x_i; cos(GD, GD) = 1, cos(GD, -GD) = -1."""
    ps = sample_batch(jax.random.PRNGKey(4), VO, 10, 8)
    Zs = jax.vmap(tokens)(ps)                                                           # (8, 11, 11)
    gd = pred.construct_gd(2.5, 10)
    f = common.predictor(gd, 10)
    np.testing.assert_allclose(jax.vmap(lambda Z: common.query_sensitivity(f, Z))(Zs),
                               2.5 * jnp.einsum("bn,bnd->bd", ps.y, ps.X) / 10, rtol=1e-12)
    np.testing.assert_allclose(common.sensitivity_cosines(f, f, Zs), 1.0, rtol=1e-12)
    np.testing.assert_allclose(common.sensitivity_cosines(f, lambda Z: -f(Z), Zs), -1.0, rtol=1e-12)
    assert common.mean_cosine(gd, pred.construct_gd(7.0, 10), Zs, 10) == pytest.approx(1.0, rel=1e-12)


def test_squared_errors_are_the_chunks_of_fold_in_keys():
    """The chunked held-out evaluation: chunk i is the prompts of fold_in(key, i), in order."""
    gd, key = pred.construct_gd(2.0, 10), jax.random.PRNGKey(0)
    sq = common.squared_errors(gd, VO, 10, 2048, key)
    direct = [(pred.predict_prompts(gd, p, 10) - p.y_q) ** 2
              for p in (sample_batch(jax.random.fold_in(key, i), VO, 10, 1024) for i in range(2))]
    np.testing.assert_allclose(sq, np.concatenate(direct), rtol=1e-5, atol=1e-6)


def test_conditional_risk_is_the_query_average(f64):
    """conditional_risks = E over x_q of (y_hat - y_q)^2 given the context: against the sampled
    squared errors of the same contexts (same chunks) with many queries each, and unbiased for the
    frozen normalisation too (a random one-layer LSA, so nothing relies on the GD construction)."""
    p = models.init_lsa(jax.random.PRNGKey(11), 1, 6, 0.3)
    key = jax.random.PRNGKey(12)
    cr = np.asarray(common.conditional_risks(p, ZFB, 7, 1024, key, (None, 3)))              # (2, 1024)
    ps = sample_batch(jax.random.fold_in(key, 0), ZFB, 7, 1024)
    xq = jax.random.normal(jax.random.PRNGKey(13), (512, 5)) * jnp.sqrt(jnp.asarray(ZFB.lam))[None, :]   # (512, d)
    for row, n_norm in zip(cr, (None, 3)):
        def mc(prompt, n_norm=n_norm):
            Zs = jax.vmap(lambda q: tokens(prompt._replace(x_q=q, y_q=q @ prompt.w)))(xq)   # (512, T, D)
            y_hat = jax.vmap(lambda z: models.lsa_predict(p, z, 7, n_norm=n_norm))(Zs)
            return jnp.mean((y_hat - xq @ prompt.w) ** 2)
        sampled = np.asarray(jax.vmap(mc)(jax.tree_util.tree_map(lambda a: a[:16], ps)))
        # 512 queries per context: the sampled average is within ~3 x sqrt(2/512) = 19% of the exact one
        np.testing.assert_allclose(sampled, row[:16], rtol=0.25)
        assert abs(np.mean(sampled) / np.mean(row[:16]) - 1) < 0.08


def test_spectral_loss_is_gdpp_exact_in_the_task_and_query(f64):
    """GD++'s prediction is x_q^T (I - B_K(S)) w with b_K the per-eigenvalue recursion (gdpp_residual),
    prompt by prompt to rounding; averaged over w and x_q its loss is 1/2 s2 d E b_K(lambda)^2."""
    ps = sample_batch(jax.random.PRNGKey(21), VO, 10, 64)
    etas, gammas = jnp.array([3.3, 25.0, 100.0]), jnp.array([2.8, 20.0, 0.4])
    direct = jax.vmap(pred.gd_plus_plus, (0, 0, 0, None, None))(ps.X, ps.y, ps.x_q, etas, gammas)

    def via_spectrum(X, w, x_q):
        lam, U = jnp.linalg.eigh(X.T @ X / 10)                                       # (d,), (d, d)
        return x_q @ (w - U @ (pred.gdpp_residual(lam, etas, gammas) * (U.T @ w)))
    np.testing.assert_allclose(jax.vmap(via_spectrum)(ps.X, ps.w, ps.x_q), direct, rtol=1e-10, atol=1e-12)
    # the loss: spectra of 2^12 contexts, each with 64 (w, x_q) pairs, against the spectral mean
    lam = pred.spectra(VO, 10, jax.random.PRNGKey(22), 2 ** 12, chunk=2 ** 10)          # (4096, d)
    spec = float(pred.spectral_loss(etas[:2], gammas[:2], lam, 1 / lam.size, 1 / 12, 10))
    mc = sample_batch(jax.random.PRNGKey(23), VO, 10, 2 ** 15)
    err = jax.vmap(pred.gd_plus_plus, (0, 0, 0, None, None))(mc.X, mc.y, mc.x_q, etas[:2], gammas[:2]) - mc.y_q
    m, se = float(0.5 * jnp.mean(err ** 2)), float(0.5 * jnp.std(err ** 2) / np.sqrt(err.size))
    assert abs(m - spec) < 4 * se + 4 * spec / np.sqrt(lam.shape[0])


def test_gauss_rule_is_exact_for_the_sample(f64):
    """The m-node rule reproduces the sample mean of b_K^2 (degree 3^K - 1 <= 2m - 1) to rounding, at
    step sizes spanning three decades (where the polynomial's coefficients are huge)."""
    lam = pred.spectra(VO, 10, jax.random.PRNGKey(5), 2 ** 13, chunk=2 ** 12)           # (8192, d)
    for K, etas, gammas in ((2, [4.0, 36.0], [4.0, 0.0]), (4, [3.3, 24.8, 224.0, 2080.0], [2.7, 24.7, 222.0, 0.0]),
                            (4, [26.0] * 4, [2.0] * 4)):
        rule = pred.gauss_rule(lam, pred.rule_size(K))
        raw = float(pred.spectral_loss(jnp.asarray(etas), jnp.asarray(gammas), lam, 1 / lam.size, 1 / 12, 10))
        quad = float(pred.spectral_loss(jnp.asarray(etas), jnp.asarray(gammas), jnp.asarray(rule.nodes),
                                        jnp.asarray(rule.weights), 1 / 12, 10))
        assert quad == pytest.approx(raw, rel=1e-9)
    assert pred.rule_size(2) == 5 and pred.rule_size(4) == 41


def test_reference_converges_and_continues_from_depth_below(f64):
    """Newton reaches a strict local minimum (decrement <= 1e-12); a zero step appended to the depth-1
    optimum leaves its loss; the per-step optimum at K = 2 beats the shared ones; a shared reference has
    one (eta, gamma); the fit and validation samples agree (settled) at this K."""
    samples = []
    for i in range(2):
        lam = pred.spectra(VO, 10, jax.random.PRNGKey(30 + i), 2 ** 14)
        samples.append((lam, pred.gauss_rule(lam, pred.rule_size(2))))
    eta_star, loss_star = pred.optimal_one_step(VO, 10)
    start = pred.extend(np.array([eta_star]), 2, "gdpp")
    assert [len(v) for v in start] == [3, 3] and start[0][1] == 0.0
    s2 = 1 / 12
    one = float(pred.spectral_loss(*pred._steps(jnp.asarray(start[0]), 2, "gdpp", False),
                                   jnp.asarray(samples[0][1].nodes), jnp.asarray(samples[0][1].weights), s2, 10))
    assert one == pytest.approx(loss_star, rel=0.01)
    refs = {(kind, shared): pred.reference(VO, 10, 2, kind, shared, *samples, jax.random.PRNGKey(1), 8,
                                           np.array([eta_star]))
            for kind, shared in (("gd", True), ("gdpp", True), ("gdpp", False))}
    for r in refs.values():
        assert r["converged"] and r["decrement"] <= 1e-12 and r["min_curvature"] > 0
        assert abs(r["gap"]) <= 3 * r["gap_se"]
    assert refs[("gdpp", False)]["val_loss"] < refs[("gdpp", True)]["val_loss"] < refs[("gd", True)]["val_loss"]
    shared = refs[("gdpp", True)]
    assert shared["etas"][0] == shared["etas"][1] and shared["gammas"][0] == shared["gammas"][1]
    assert refs[("gdpp", False)]["gammas"][-1] == 0.0          # the last gamma never acts: not a free value


def test_depth_recipe_switches_at_deep_from():
    from experiments.gd_equivalence.parts import depth
    cfg = exp.Config.full()
    assert depth.recipe(cfg, 2, True) == {"lr": cfg.depth_lr, "steps": cfg.depth_steps, "batch": cfg.depth_batch,
                                          "init_scale": cfg.init_scale, "opt": "adam", "clip": 0.0, "clamp": None}
    deep = depth.recipe(cfg, 4, False)
    assert deep == {"lr": 5e-4, "steps": 50000, "batch": 2048, "init_scale": 0.002 / 4, "opt": "adamw",
                    "clip": 10.0, "clamp": 10.0}
    assert depth.recipe(cfg, 4, True)["steps"] == 5000 and 4 in cfg.depths
    # Adam's travel under the cosine decay, lr steps / 2, against the construction's sqrt(eta)
    assert depth.reach(deep, [2025.0]) == {"travel": 12.5, "needed": 45.0}


def test_zfb_init_is_the_papers_start(f64):
    """ZFB's Section 3.3 start: W_KQ = sigma [[Theta Theta^T, 0], [0, 0]] with ||Theta Theta^T||_F = 1,
    W_PV's only nonzero entry the y-corner; in this codebase's sign (y_hat = -Z[-1, -1]) the layer then
    predicts ZFB's y_hat = x_q^T sigma^2 Theta Theta^T (1/N) sum_i y_i x_i (checked on a prompt)."""
    from experiments.gd_equivalence.parts import zfb
    sigma, d, N = 0.3, 5, 7
    p = zfb.zfb_init(jax.random.PRNGKey(3), d, sigma)
    tt = np.asarray(p.W_KQ[0, :d, :d]) / sigma                                          # (d, d)
    assert np.linalg.norm(tt) == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(tt, tt.T, atol=1e-15)
    assert np.min(np.linalg.eigvalsh(tt)) >= -1e-12 and np.linalg.matrix_rank(tt) == d
    assert not np.any(np.asarray(p.W_KQ[0, d, :])) and not np.any(np.asarray(p.W_KQ[0, :, d]))
    pv = np.zeros((d + 1, d + 1))
    pv[d, d] = -sigma
    np.testing.assert_array_equal(np.asarray(p.W_PV[0]), pv)
    np.testing.assert_allclose(common.learned_preconditioner(p.W_KQ[0], p.W_PV[0]), sigma ** 2 * tt, rtol=1e-12)
    prompt = sample_prompt(jax.random.PRNGKey(4), ZFB, N)
    X, y = np.asarray(prompt.X), np.asarray(prompt.y)
    zfb_y_hat = np.asarray(prompt.x_q) @ (sigma ** 2 * tt) @ (X.T @ y) / N
    assert float(models.lsa_predict(p, tokens(prompt), N)) == pytest.approx(zfb_y_hat, rel=1e-10)


def test_config_rejects_bad_input():
    for bad in (dict(zfb_test_lengths=(5, 10)), dict(n_eval=1000), dict(steps=150), dict(d=0),
                dict(deep_steps=150), dict(deep_clamp=0.0), dict(deep_grad_clip=-1.0), dict(n_spectra=0),
                dict(zfb_init="orthogonal")):
        with pytest.raises(SandboxError):
            dataclasses.replace(exp.Config(), **bad).validate()


def _tiny() -> exp.Config:
    return dataclasses.replace(exp.Config(), d=3, n_context=4, steps=10, softmax_steps=10, log_every=5,
                               batch=32, softmax_batch=32, n_eval_one_layer=1024, n_eval=1024, n_sens=64)


@pytest.mark.claim          # trains: claim tier, not the unit loop
def test_same_seed_same_numbers_other_seed_other_numbers():
    """The one_layer part (random init, batches, held-out prompts): Keys(0) twice agree, Keys(1) differs."""
    cfg = _tiny()
    a, b, c = (one_layer.measure(cfg, Keys(s).sub("one_layer"), None) for s in (0, 0, 1))
    for k in ("heldout_loss", "implied_eta", "cosine", "W_KQ"):
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]))
        assert not np.any(np.asarray(a[k]) == np.asarray(c[k])), k


# --- judges fed wrong measurements (no training: the committed result's data) --------------------
def _gd_np(X, y, x_q, etas):
    """K GD steps on (1/2N) sum (W x_i - y_i)^2 from W = 0, straight from the definition (numpy)."""
    W = np.zeros(X.shape[1])
    for eta in etas:
        W = W - eta * (X @ W - y) @ X / len(y)
    return x_q @ W


def _gdpp_np(X, y, x_q, etas, gammas):
    """vO's GD++ (numpy): residuals and inputs both move, from the pre-step values."""
    N = len(y)
    Xa, r = np.vstack([X, x_q]), np.append(y, 0.0)
    for eta, gamma in zip(etas, gammas):
        g, S = Xa[:N].T @ r[:N] / N, Xa[:N].T @ Xa[:N] / N
        r, Xa = r - eta * Xa @ g, Xa - gamma * Xa @ S.T
    return -r[N]


def _rel_error(wrong, right, P, K: str = "K2") -> float:
    """max |wrong - right| / max |y_q| over 16 vO prompts (numpy, float64) at the part's step sizes."""
    etas, gammas = (np.asarray(P["steps"][K][k], np.float64) for k in ("etas", "gammas"))
    rng = np.random.default_rng(0)
    X = rng.uniform(-0.5, 0.5, (16, 11, 10))
    y = np.einsum("bnd,bd->bn", X, rng.standard_normal((16, 10)))
    out = [wrong(X[b, :10], y[b, :10], X[b, 10], etas, gammas) - right(X[b, :10], y[b, :10], X[b, 10], etas, gammas)
           for b in range(16)]
    return float(np.max(np.abs(out)) / np.max(np.abs(y[:, 10])))


def _construction_step_off_by_1pct(P, M):
    """W_PV[y, y] = -1.01 eta: the LSA computes GD at 1.01 eta, not the GD it is compared with."""
    M["errors"]["gd_K2"] = _rel_error(lambda X, y, q, e, g: _gd_np(X, y, q, 1.01 * e),
                                      lambda X, y, q, e, g: _gd_np(X, y, q, e), P)
    return M


def _construction_without_input_update(P, M):
    """GD++ built without W_PV[x, x] = -gamma I: the LSA computes plain GD, compared with GD++."""
    M["errors"]["gdpp_K2"] = _rel_error(lambda X, y, q, e, g: _gd_np(X, y, q, e), _gdpp_np, P)
    return M


def _restructure(M):
    for k, v in common.one_layer_structure(M["W_KQ"][0], M["W_PV"][0]).items():
        M[k][0] = v
    return M


def _step_size_1p2(P, M):
    """The layer learned 1.2 eta*: W_PV scaled by 1.2, and the loss of GD at 1.2 eta* (the closed form)."""
    M["W_PV"][0] = (1.2 * np.asarray(M["W_PV"][0])).tolist()
    excess = pred.one_step_loss(VO, 10, 1.2 * P["eta_star"]) - P["loss_star"]
    M["heldout_loss"][0] += excess
    M["paired_excess"][0] += excess
    return _restructure(M)


def _dense_kq(P, M):
    """W_KQ x-block with off-diagonal entries at 10% of its diagonal."""
    kq = np.asarray(M["W_KQ"][0])
    d = kq.shape[0] - 1
    kq[:d, :d] += 0.1 * np.mean(np.diag(kq)[:d]) * (np.ones((d, d)) - np.eye(d))
    M["W_KQ"][0] = kq.tolist()
    return _restructure(M)


def _pv_x_part(P, M):
    """W_PV y-row picks up an x-part of 10% of |W_PV[y, y]| in each coordinate."""
    pv = np.asarray(M["W_PV"][0])
    d = pv.shape[0] - 1
    pv[d, :d] = 0.1 * abs(pv[d, d])
    M["W_PV"][0] = pv.tolist()
    return _restructure(M)


def _anisotropic_preconditioner(P, M):
    """The layer preconditions with diag(0.5..1.5) eta*: its model cosine with GD, y_hat = x_q^T G h,
    h = (1/N) sum y_i x_i, is mean h^T G h / (|G h| |h|) over vO prompts (numpy Monte-Carlo)."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-0.5, 0.5, (4096, 10, 10))
    y = np.einsum("bnd,bd->bn", X, rng.standard_normal((4096, 10)))
    h = np.einsum("bn,bnd->bd", y, X) / 10
    Gh = h * np.linspace(0.5, 1.5, 10)
    M["cosine"][0] = float(np.mean(np.sum(h * Gh, 1) / (np.linalg.norm(h, axis=1) * np.linalg.norm(Gh, axis=1))))
    return M


def _naive_lambda_inverse(P, M):
    """The layer learned Lambda^{-1} (not Gamma^{-1}): its Gamma_eff and its risk at every M."""
    lam = np.asarray(P["lambda_inv_diag"])
    M["gamma_eff"] = np.diag(lam).tolist()
    M["risk"] = [pred.linear_risk(ZFB, np.diag(lam), m) for m in P["M"]]
    return M


def _normalisation_ignored(P, M):
    """The n_norm switch ignored: the 'fixed 1/N' layer is the adaptive 1/M layer."""
    M["fixed_norm_risk"] = list(M["risk"])
    return M


def _fixed_norm_off_by_5pct(P, M):
    """The frozen-1/N risk 5% above its exact value at one test length (M = 40) only."""
    i = list(P["M"]).index(40)
    M["fixed_norm_risk"][i] = 1.05 * P["fixed_norm_risk"][i]
    return M


def _per_layer_stack_3pct_above_gdpp(P, M):
    """The per-layer stack stops 3% above its GD++ reference (still far below GD), with a reference
    whose fit/validation gap is 1% (tolerance 2.5%)."""
    M["tf_per_layer"] = [1.03 * v for v in M["gdpp_layer"]]
    r = M["references"][0]["gdpp_layer"]
    r["val_loss"] = r["fit_loss"] * 1.01
    r["gap"], r["heldout_loss"] = 0.01, r["val_loss"]
    return M


def _reference_exploits_its_sample(P, M):
    """The per-step GD++ reference's validation loss is 4 s.e. above its fit loss (it overfits its spectra)."""
    r = M["references"][0]["gdpp_layer"]
    r["gap"] = 4 * r["gap_se"]
    return M


def _reference_heldout_disagrees(P, M):
    """The per-step GD++ reference's held-out loss is 4 s.e. above its validation loss (a rare context
    the fit never saw), everything else settled."""
    r = M["references"][0]["gdpp_layer"]
    r["heldout_loss"] = r["val_loss"] + 4 * np.hypot(r["heldout_se"], r["val_se"])
    return M


def _reference_heldout_heavy_tailed(P, M):
    """One held-out prompt dominates the per-step GD++ reference's loss (a float32 or tail blow-up):
    coefficient of variation 20, which also inflates the s.e. its disagreement is measured in."""
    r = M["references"][0]["gdpp_layer"]
    r["heldout_se"] = 20 * r["heldout_loss"] / np.sqrt(r["n_eval"])
    return M


def _reference_not_converged(P, M):
    """Newton stopped short of a strict local minimum for the GD reference."""
    M["references"][0]["gd"]["converged"] = False
    return M


def _stacks_stop_at_gd(P, M):
    """The trained stacks implement K-step GD: GD's loss, and the shared stack's sensitivity is GD's
    (cos with GD 1, cos with GD++ what cos(GD, GD++) is, about the measured cos(TF, GD))."""
    M["tf_shared"], M["tf_per_layer"] = list(M["gd"]), list(M["gd"])
    M["cos_gdpp"], M["cos_gd"] = list(M["cos_gd"]), [1.0] * len(M["cos_gd"])
    return M


def _softmax_head_is_gd(P, M):
    """A 'softmax' head that computes GD at eta* (e.g. the linear layer run by mistake): cosine 1."""
    M["cosine"] = 1.0
    return M


DEPTH_FAILS = [f"depth2_{s}_vs_{r}" for s in ("shared", "per_layer") for r in ("gdpp", "gd")]
WRONG = [
    ("construction", "GD construction with eta off by 1%", _construction_step_off_by_1pct,
     ["lsa_equals_gd_steps"]),
    ("construction", "GD++ construction without the input update", _construction_without_input_update,
     ["lsa_equals_gdpp"]),
    ("one_layer", "learned step size 1.2 eta*", _step_size_1p2,
     ["loss_vs_one_step_optimum", "paired_excess_over_gd", "implied_step_size"]),
    ("one_layer", "W_KQ x-block 10% off-diagonal", _dense_kq, ["kq_offdiagonal"]),
    ("one_layer", "W_PV y-row with an x-part", _pv_x_part, ["pv_query_x_part"]),
    ("one_layer", "anisotropic preconditioner", _anisotropic_preconditioner, ["model_cosine_with_gd"]),
    ("zfb", "naive Lambda^-1 preconditioner", _naive_lambda_inverse,
     ["preconditioner_vs_gamma_inv", "risk_vs_formula_worst_length"]),
    ("zfb", "frozen normalisation not applied", _normalisation_ignored, ["fixed_norm_risk_vs_formula_worst_length"]),
    ("zfb", "frozen-1/N risk 5% off at one length", _fixed_norm_off_by_5pct,
     ["fixed_norm_risk_vs_formula_worst_length"]),
    ("depth", "per-layer stack 3% above GD++", _per_layer_stack_3pct_above_gdpp, ["depth2_per_layer_vs_gdpp"]),
    ("depth", "GD++ reference exploits its fit sample", _reference_exploits_its_sample, ["depth2_references_settled"]),
    ("depth", "GD++ reference off on the held-out prompts", _reference_heldout_disagrees,
     ["depth2_references_settled"]),
    ("depth", "GD++ reference held-out loss one prompt's blow-up", _reference_heldout_heavy_tailed,
     ["depth2_references_settled"]),
    ("depth", "GD reference not converged", _reference_not_converged, ["depth2_references_settled"]),
    ("depth", "stacks implement K-step GD", _stacks_stop_at_gd,
     DEPTH_FAILS + ["depth2_shared_cosine_gdpp_over_gd"]),
    ("softmax_control", "softmax head computes GD", _softmax_head_is_gd, ["softmax_cosine_with_gd"]),
]


test_wrong_measurement_fails, test_every_evidence_check_can_fail = judge_tests(CLAIM, WRONG)


# --- the claim end to end ------------------------------------------------------------------------
def expected_checks(cfg: exp.Config) -> list[str]:
    depth = [n for K in cfg.depths for n in (f"depth{K}_shared_vs_gdpp", f"depth{K}_shared_vs_gd",
                                             f"depth{K}_per_layer_vs_gdpp", f"depth{K}_per_layer_vs_gd",
                                             f"depth{K}_references_settled",
                                             f"depth{K}_shared_cosine_gdpp_over_gd")]
    return ["lsa_equals_gd_steps", "lsa_equals_gdpp", "loss_vs_one_step_optimum", "paired_excess_over_gd",
            "implied_step_size", "kq_offdiagonal", "pv_query_x_part", "model_cosine_with_gd",
            "preconditioner_vs_gamma_inv", "risk_vs_formula_worst_length", "fixed_norm_risk_vs_formula_worst_length",
            *depth, "softmax_cosine_with_gd"]


@pytest.mark.claim
def test_quick_claim_passes_every_check(tmp_path):
    result = run_claim(CLAIM, "quick", out=tmp_path)
    assert_checks_pass(result, expected_checks(exp.Config.quick()))
    assert result["precision"] == "float32" and result["config"]["d"] == 10
    assert (tmp_path / "figures" / f"{CLAIM}.png").is_file()


# The full preset (results/full/gd_equivalence.json, commit 4ceadb4, 61 min): depths 2 and 3 (shared)
# land on GD++; the per-layer depth-3 stack is not converged (1.585x its GD++ reference); the
# depth-4 stacks trained with von Oswald et al.'s residual clamp reach 0.283 / 0.0646 as trained,
# but judged as pure LSAs their held-out loss (1.5e6-5.7e6) is dominated by the rare prompts
# (0.003-0.05%) on which the clamp was active. The slow test asserts exactly this failing set.
FULL_FAILING = {"depth3_per_layer_vs_gdpp", "depth4_shared_vs_gdpp", "depth4_shared_vs_gd",
                "depth4_per_layer_vs_gdpp", "depth4_per_layer_vs_gd", "depth4_shared_cosine_gdpp_over_gd"}


@pytest.mark.slow
def test_full_claim_fails_only_the_documented_checks(tmp_path):
    result = run_claim(CLAIM, "full", out=tmp_path)
    checks = {c["name"]: c for c in result["checks"]}
    assert list(checks) == expected_checks(exp.Config.full())
    assert {n for n, c in checks.items() if not c["passed"]} == FULL_FAILING

