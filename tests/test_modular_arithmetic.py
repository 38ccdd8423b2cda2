"""Tests for the `modular_arithmetic` claim: the quadratic MLP and the task against naive loops, the
closed form and its predictions, the Fourier analysis helpers, the proofs, the judges fed wrong
measurements, the quick preset and bad input."""
from __future__ import annotations

import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
from claim_asserts import assert_checks_pass, judge_tests
from scipy.special import ndtr

import experiments.modular_arithmetic as ma
from experiments.modular_arithmetic import analysis, runs
from experiments.modular_arithmetic import progress as pm
from experiments.modular_arithmetic.parts import closed_form
from experiments.modular_arithmetic.parts import transformer as tpart
from proofs.modular_arithmetic import (
    prove_balanced_sum,
    prove_noise_variance,
    prove_product_to_sum,
    prove_restricted_projection_idempotent,
)
from theory.errors import SandboxError
from theory.harness.runner import run_claim
from theory.models import quadratic_mlp as qm
from theory.models import relu_transformer as rt
from theory.predictions import modular_arithmetic as pred
from theory.tasks import modular

CLAIM = "modular_arithmetic"


# --- model and task against naive loops ---------------------------------------------------------
def test_quadratic_mlp_matches_one_hot_loop(f64):
    p, N = 5, 7
    params = qm.init_quadratic_mlp(jax.random.PRNGKey(0), p, N, 0.7)
    W1 = np.concatenate([np.asarray(params.U), np.asarray(params.V)], axis=1)      # (N, 2p)
    W2 = np.asarray(params.W)
    a, b = jnp.array([0, 3, 4], dtype=jnp.int32), jnp.array([2, 3, 1], dtype=jnp.int32)
    got = np.asarray(qm.forward(params, a, b))
    for i in range(3):
        x = np.zeros(2 * p)
        x[int(a[i])], x[p + int(b[i])] = 1.0, 1.0
        want = [sum(W2[q, j] * (W1[j] @ x) ** 2 for j in range(N)) for q in range(p)]
        np.testing.assert_allclose(got[i], want, rtol=1e-12)
    c = (a + b) % p
    mse = np.mean([(got[i, q] - (q == int(c[i]))) ** 2 for i in range(3) for q in range(p)])
    assert float(qm.mse_loss(params, a, b, c)) == pytest.approx(mse, rel=1e-12)


def test_all_pairs_and_split():
    pairs = modular.all_pairs(3)
    assert np.asarray(pairs.a).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert np.asarray(pairs.b).tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2]
    assert np.asarray(pairs.c).tolist() == [0, 1, 2, 1, 2, 0, 2, 0, 1]
    tr, te = modular.split(jax.random.PRNGKey(1), 11, 0.3)
    assert len(tr.a) == modular.n_train(11, 0.3) == 36 and len(te.a) == 121 - 36
    index = lambda s: set((np.asarray(s.a) * 11 + np.asarray(s.b)).tolist())
    assert index(tr) | index(te) == set(range(121)) and not index(tr) & index(te)
    assert np.all(np.asarray(tr.c) == (np.asarray(tr.a) + np.asarray(tr.b)) % 11)
    other, _ = modular.split(jax.random.PRNGKey(2), 11, 0.3)
    assert not np.array_equal(np.asarray(tr.a), np.asarray(other.a))


def test_init_std_follows_the_authors_code():
    assert runs.init_std(500) == pytest.approx(0.25 ** 0.5 / 1000 ** (1 / 3))


# --- the one-layer transformer (Part 3) against naive loops -----------------------------------------
def _naive_transformer(params, tokens) -> np.ndarray:
    """Logits (T, V) of one sequence by explicit loops over positions, heads and keys, float64 numpy."""
    P = {k: np.asarray(v, dtype=np.float64) for k, v in params._asdict().items()}
    T, H, d = len(tokens), P["W_Q"].shape[0], P["W_Q"].shape[-1]
    x = [P["W_E"][t] + P["W_pos"][i] for i, t in enumerate(tokens)]
    out = []
    for i in range(T):
        y = x[i].copy()
        for h in range(H):
            q = x[i] @ P["W_Q"][h]
            s = np.array([q @ (x[j] @ P["W_K"][h]) / math.sqrt(d) for j in range(i + 1)])
            w = np.exp(s - s.max())
            w /= w.sum()
            z = sum(w[j] * (x[j] @ P["W_V"][h]) for j in range(i + 1))
            y = y + z @ P["W_O"][h]
        hid = np.maximum(y @ P["W_in"] + P["b_in"], 0.0)
        out.append((y + hid @ P["W_out"] + P["b_out"]) @ P["W_U"])
    return np.array(out)


def _tiny_transformer(p=7, key=0, dtype=jnp.float64):
    params = rt.init_relu_transformer(jax.random.PRNGKey(key), p + 1, 3, 16, 4, 24, dtype=dtype)
    # nonzero biases, so the test sees them
    return params._replace(b_in=0.1 * jnp.arange(24, dtype=dtype), b_out=0.05 * jnp.ones(16, dtype=dtype))


def test_relu_transformer_matches_naive_loop(f64):
    p = 7
    params = _tiny_transformer(p)
    for tokens in ([0, 3, p], [6, 6, p], [2, 5, 1]):
        got = np.asarray(rt.forward(params, jnp.asarray(tokens, dtype=jnp.int32)))
        np.testing.assert_allclose(got, _naive_transformer(params, tokens), rtol=1e-12, atol=1e-12)


def test_last_row_tables_equal_the_full_forward(f64):
    """The speed-up (only the '=' row needs a query, the MLP and the unembedding; per-token K/V tables)
    changes no number: last_logits equals forward(...)[2] on every pair."""
    p = 7
    params = _tiny_transformer(p)
    pairs = modular.all_pairs(p)
    tokens = jnp.stack([pairs.a, pairs.b, jnp.full_like(pairs.a, p)], axis=-1)          # (p^2, 3)
    full = jax.vmap(lambda t: rt.forward(params, t)[2])(tokens)                          # (p^2, V)
    np.testing.assert_allclose(np.asarray(rt.last_logits(params, pairs.a, pairs.b, p)), np.asarray(full),
                               rtol=1e-12, atol=1e-12)
    _, h = rt.last_row(params, pairs.a, pairs.b, p)
    assert h.shape == (p * p, 24) and float(jnp.min(h)) >= 0.0


def test_transformer_init_and_loss_follow_the_paper():
    """Init std 1/sqrt(d_model) (W_U: 1/sqrt(vocab)), zero biases; the cross-entropy runs in float64."""
    with jax.enable_x64(True):
        params = rt.init_relu_transformer(jax.random.PRNGKey(0), 114, 3, 128, 4, 512)
        assert params.W_Q.dtype == jnp.float32 and params.W_Q.shape == (4, 128, 32)
        assert float(jnp.std(params.W_in)) == pytest.approx(1 / math.sqrt(128), rel=0.02)
        assert float(jnp.std(params.W_U)) == pytest.approx(1 / math.sqrt(114), rel=0.03)
        assert not np.any(np.asarray(params.b_in)) and not np.any(np.asarray(params.b_out))
        logits = jnp.asarray([[30.0, 0.0, 0.0]], dtype=jnp.float32)
        loss = rt.cross_entropy(logits, jnp.asarray([0], dtype=jnp.int32))
        assert loss.dtype == jnp.float64 and float(loss) == pytest.approx(2 * math.exp(-30.0), rel=1e-6)


# --- the progress measures against their definitions ---------------------------------------------------
def _direction_matrix(p, keys):
    """(p^2, 2K) columns cos / sin(w_k (a+b)) by loops, pair index a p + b."""
    cols = []
    for k in keys:
        w = 2 * math.pi * k / p
        cols += [[math.cos(w * (a + b)) for a in range(p) for b in range(p)],
                 [math.sin(w * (a + b)) for a in range(p) for b in range(p)]]
    return np.array(cols).T


def test_key_projection_is_the_least_squares_projection(f64):
    p, keys = 11, (2, 5)
    L = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (p * p, p)))
    mask = np.zeros(p // 2 + 1, dtype=bool)
    mask[list(keys)] = True
    B = _direction_matrix(p, keys)
    want = B @ np.linalg.lstsq(B, L, rcond=None)[0]
    got = np.asarray(pm.key_projection(jnp.asarray(L), jnp.asarray(mask), p))
    np.testing.assert_allclose(got, want, atol=1e-12)
    again = np.asarray(pm.key_projection(jnp.asarray(got), jnp.asarray(mask), p))
    np.testing.assert_allclose(again, got, atol=1e-12)                        # idempotent (proofs/)


def test_restricted_and_excluded_loss_on_a_fourier_logit_table(f64):
    """Logits 5 cos(w_k (a + b - c)) + noise off the key directions: restricting to k keeps the loss
    of the clean table, excluding k leaves chance-level logits."""
    p, k = 11, 3
    pairs = modular.all_pairs(p)
    s = np.asarray(pairs.a + pairs.b)[:, None]
    c = np.arange(p)[None, :]
    clean = 5 * np.cos(2 * math.pi * k * (s - c) / p)                         # (p^2, p)
    mask = np.zeros(p // 2 + 1, dtype=bool)
    mask[k] = True
    L = jnp.asarray(clean)
    PL = pm.key_projection(L, jnp.asarray(mask), p)
    np.testing.assert_allclose(np.asarray(PL), clean, atol=1e-10)
    restricted = pm.cross_entropy(PL + jnp.mean(L, axis=0, keepdims=True), pairs.c)
    assert float(restricted) == pytest.approx(float(pm.cross_entropy(L, pairs.c)), rel=1e-10)
    assert float(pm.cross_entropy(L - PL, pairs.c)) == pytest.approx(math.log(p), rel=1e-10)
    assert float(pm.logit_variance_explained(L, jnp.asarray(mask), p)) == pytest.approx(1.0, abs=1e-10)
    other = np.zeros_like(mask)
    other[k + 1] = True
    assert float(pm.logit_variance_explained(L, jnp.asarray(other), p)) == pytest.approx(0.0, abs=1e-10)


def test_neuron_frequency_and_embedding_spectrum(f64):
    """A neuron relu(cos(w k a + phi) + cos(w k b + psi)) has its best frequency k (its constant, linear
    and quadratic terms); an embedding of cos / sin columns of frequencies {2, 4} has all its
    squared Fourier norm there."""
    p, F = 13, 6
    pairs = modular.all_pairs(p)
    a, b = np.asarray(pairs.a, float), np.asarray(pairs.b, float)
    freqs = np.array([1, 2, 3, 5, 4, 2])
    h = np.stack([np.maximum(np.cos(2 * math.pi * f * a / p + 0.3 * i) + np.cos(2 * math.pi * f * b / p + 0.7), 0)
                  for i, f in enumerate(freqs)], axis=-1)                    # (p^2, F)
    h[:, -1] = 0.0                                                            # a dead neuron
    best, frac, live = (np.asarray(x) for x in pm.neuron_frequencies(jnp.asarray(h), p))
    assert best[:-1].tolist() == freqs[:-1].tolist() and live.tolist() == [True] * (F - 1) + [False]
    assert np.all(frac[:-1] > 0.9)
    counts = np.asarray(pm.frequency_counts(jnp.asarray(best), jnp.asarray(live), p))
    assert counts.tolist() == [0, 1, 1, 1, 1, 1, 0]
    x = np.arange(p)
    W_E = np.zeros((p + 1, 4))
    W_E[:p, 0], W_E[:p, 1], W_E[:p, 2] = np.cos(2 * math.pi * 2 * x / p), np.sin(2 * math.pi * 4 * x / p), 1.0
    W_E[p] = 9.0                                                              # the '=' row is left out
    spec = np.asarray(pm.embedding_spectrum(jnp.asarray(W_E), p))
    assert spec.sum() == pytest.approx((W_E[:p] ** 2).sum())                  # Parseval
    np.testing.assert_allclose(spec, [p, 0, p / 2, 0, p / 2, 0, 0], atol=1e-10)


@pytest.mark.claim          # trains: claim tier, not the unit loop
def test_transformer_measurement_pipeline_on_a_tiny_run(f64):
    """The part's measure at p = 7, 200 epochs, 2 runs (seconds): shapes, the split, and the last
    snapshot's losses recomputed from the final parameters."""
    import dataclasses

    from theory.engine.keys import Keys
    cfg = dataclasses.replace(ma.Config.quick(), transformer_p=7, transformer_epochs=200, transformer_seeds=2)
    cfg.validate()
    M = tpart.measure(cfg, Keys(0).sub("transformer"), None)
    assert np.asarray(M["epochs"]).tolist() == [200]
    assert np.asarray(M["test_loss"]).shape == (2, 1) and np.asarray(M["neuron_counts"]).shape == (2, 4)
    assert all(set(k) <= {1, 2} and k for k in M["key_freqs"])                # range(1, p//2) = {1, 2}
    assert np.asarray(M["neuron_counts"]).sum(axis=1).max() <= 512
    keys = Keys(0).sub("transformer").sub("runs").runs(2)
    final, _ = runs.sweep_transformer(cfg, keys, None)
    for r in range(2):
        train_set, test_set, _ = runs.transformer_instance(keys[r], 7)
        q = jax.tree_util.tree_map(lambda x, r=r: x[r], final)
        for s, name in ((train_set, "train_loss"), (test_set, "test_loss")):
            want = float(rt.cross_entropy(rt.last_logits(q, s.a, s.b, 7), s.c))
            assert float(np.asarray(M[name])[r, -1]) == pytest.approx(want, rel=1e-6)
        assert len(train_set.a) == modular.n_train(7, runs.T_FRAC)


# --- the closed form ------------------------------------------------------------------------
def test_construction_weights_match_the_formula(f64):
    p, N = 7, 9
    key = jax.random.PRNGKey(3)
    net = pred.construct_gromov(p, N, key)
    phi = np.asarray(pred._phases(key), dtype=np.float64)[:, :N]
    for i in range(N):
        s = 1 + i % 3
        w = 2 * math.pi * s / p
        for n in range(p):
            assert net.U[i, n] == pytest.approx(math.cos(w * n + phi[0, i]), abs=1e-12)
            assert net.V[i, n] == pytest.approx(math.cos(w * n + phi[1, i]), abs=1e-12)
            assert net.W[n, i] == pytest.approx(math.cos(-w * n - phi[0, i] - phi[1, i]), abs=1e-12)
    wide = pred.construct_gromov(p, 3 * N, key)
    np.testing.assert_array_equal(wide.U[:N], net.U)            # nested widths share neurons


def test_phase_lattice_kills_every_noise_harmonic():
    vectors = [(1, 1), (1, -1), (3, 1), (-1, 1), (1, 3), (2, 2), (0, -2), (2, 0)]
    assert all((c1 + 3 * c2) % pred.PHASE_SHIFTS for c1, c2 in vectors)


@pytest.mark.parametrize("p, N", [(7, 9), (11, 10), (11, 13)])
def test_phase_average_is_the_coherent_part_to_1e10(f64, p, N):
    """The 7-shift phase average of the network equals sum_i 1/2 cos(omega sigma_i m) on every pair
    and class, balanced (N = 9 at p = 7, 10 at p = 11) or not (13 at p = 11)."""
    lo, hi, _ = closed_form.coherent_range(p, N, jax.random.PRNGKey(4))
    want = pred.coherent_by_offset(p, N)
    assert max(np.abs(lo - want).max(), np.abs(hi - want).max()) < 1e-10
    if N % pred.half(p) == 0:
        np.testing.assert_allclose(want, pred.coherent_balanced(p, N), atol=1e-12)


def test_balanced_widths():
    assert [pred.balanced_width(p, 300) for p in (23, 97, 113)] == [297, 288, 280]
    assert [pred.balanced_width_at_least(p, 2000) for p in (23, 97, 113)] == [2002, 2016, 2016]


def test_noise_variance_prediction():
    for p in (7, 23, 97):
        N = pred.balanced_width(p, 300)
        v = pred.noise_variance_per_neuron(p, N)
        assert v[0] == pytest.approx(1 + 1 / 16) and v[1] == pytest.approx(1 - 1 / (16 * (p - 1)))
        assert pred.noise_variance_mean(p, N) == pytest.approx(1.0, abs=1e-12)


def test_noise_variance_monte_carlo(f64):
    """Per-neuron noise variance 1 + cos(2 omega sigma m)/16 over random phases (one neuron, many draws)."""
    p = 7
    keys = jax.random.split(jax.random.PRNGKey(5), 4000)
    phi1, phi2 = pred.phases_batch(keys, 1)
    U, V, W = pred.construct_from_phases(p, phi1, phi2)                       # one neuron, sigma = 1
    a, b, q = 2, 3, 1
    f = (U[:, 0, a] + V[:, 0, b]) ** 2 * W[:, q, 0]
    w = 2 * math.pi / p
    noise = f - 0.5 * math.cos(w * (a + b - q))
    assert np.mean(noise) == pytest.approx(0.0, abs=4 * np.std(noise) / math.sqrt(4000))
    assert np.var(noise) == pytest.approx(1 + math.cos(2 * w * (a + b - q)) / 16, rel=0.06)


def test_gaussian_accuracy_against_quad():
    for p, N in [(23, 25), (97, 50), (113, 100)]:
        mu = pred.margin(p, N)
        want, _ = scipy.integrate.quad(lambda z, mu=mu, p=p: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
                                       * ndtr(z + mu) ** (p - 1), -np.inf, np.inf, epsabs=1e-13)
        assert pred.gaussian_accuracy(p, N) == pytest.approx(want, abs=1e-10)
    np.testing.assert_allclose([pred.gaussian_accuracy(97, N) for N in (25, 50, 75, 100)],
                               [0.52, 0.84, 0.96, 0.99], atol=0.006)


@pytest.mark.parametrize("p, N", [(23, 33), (23, 297), (97, 48), (97, 288), (113, 280)])
def test_coherent_accuracy_is_the_balanced_formula_at_balanced_widths(p, N):
    assert pred.coherent_accuracy(p, N) == pytest.approx(pred.gaussian_accuracy(p, N), abs=1e-12)


def test_coherent_accuracy_against_quad_and_monte_carlo():
    """Unbalanced widths: the quadrature against scipy's quad, and against a direct simulation of the
    model's logits C(m) + sqrt(N) eps_m (eps iid N(0, 1)) at p = 97, N = 25 (frequencies 1..25 only)."""
    for p, N in [(23, 25), (97, 25), (97, 60)]:
        gap = (pred.coherent_by_offset(p, N)[0] - pred.coherent_by_offset(p, N)[1:]) / math.sqrt(N)
        want, _ = scipy.integrate.quad(lambda z, g=gap: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
                                       * float(np.prod(ndtr(z + g))), -np.inf, np.inf, epsabs=1e-13)
        assert pred.coherent_accuracy(p, N) == pytest.approx(want, abs=1e-10)
    p, N, R = 97, 25, 20000
    C = pred.coherent_by_offset(p, N)
    f = C[None, :] + math.sqrt(N) * np.random.default_rng(0).standard_normal((R, p))   # (R, p) class 0 correct
    mc = np.mean(np.argmax(f, axis=1) == 0)
    assert pred.coherent_accuracy(p, N) == pytest.approx(mc, abs=4 * math.sqrt(mc * (1 - mc) / R))
    assert pred.coherent_accuracy(p, N) == pytest.approx(0.451, abs=0.002)     # balanced formula: 0.515
    assert pred.gaussian_accuracy(p, N) == pytest.approx(0.515, abs=0.002)


# --- Fourier analysis helpers -----------------------------------------------------------------
def test_dominant_frequency_phase_and_projection():
    p = 13
    n = np.arange(p)
    x = 2.0 * np.cos(2 * np.pi * 4 * n / p + 0.7)
    k, frac, phase = analysis.dominant(analysis.spectrum(x[None]))
    assert k[0] == 4 and frac[0] == pytest.approx(1.0) and phase[0] == pytest.approx(0.7)
    assert analysis.ipr(analysis.spectrum(x[None]))[0] == pytest.approx(1.0)
    noisy = x + 0.3 * np.cos(2 * np.pi * 2 * n / p)
    np.testing.assert_allclose(analysis.project(noisy[None], np.array([4]))[0], x, atol=1e-12)
    assert analysis.wrap(2 * np.pi + 0.1) == pytest.approx(0.1)


def test_constructed_network_passes_the_construction_analysis(f64):
    """Gromov's weights read back by the trained-network analysis: one frequency per neuron, the same
    in all three blocks, phi_out = phi_a + phi_b exactly."""
    p, N = 23, 22
    net = pred.construct_gromov(p, N, jax.random.PRNGKey(6))
    a = analysis.neuron_analysis(net.U, net.V, net.W)
    assert np.all(a["power_u"] > 1 - 1e-12)
    assert np.array_equal(a["freq_u"], pred.balanced_frequencies(p, N))
    assert np.array_equal(a["freq_u"], a["freq_v"]) and np.array_equal(a["freq_v"], a["freq_w"])
    assert np.abs(a["phase_err"]).max() < 1e-10


# --- proofs -----------------------------------------------------------------------------------
@pytest.mark.parametrize("proof", [prove_product_to_sum, prove_balanced_sum, prove_noise_variance,
                                   prove_restricted_projection_idempotent])
def test_proofs(proof):
    proof()


# --- judges fed wrong measurements (no training: the committed result) ---------------------------
def _per_prime(fn):
    def perturb(P, M):
        for key in M:
            fn(P[key], M[key])
        return M
    return perturb


def _shift(name, by):
    def fn(P, M):
        M[name] = (np.asarray(M[name], float) + by).tolist()
    return fn


def _set(name, value):
    def fn(P, M):
        M[name] = value
    return fn


def _scale(name, factor):
    def perturb(P, M):
        M[name] = (np.asarray(M[name], float) * factor).tolist()
        return M
    return perturb


def _copy(src, dst):
    def perturb(P, M):
        M[dst] = M[src]
        return M
    return perturb


def _grokking_never(P, M):
    M["test_acc"] = (np.asarray(M["test_acc"], float) * 0.9).tolist()
    return M


def _freq_off_by_one(P, M):
    M["freq_w"] = [[int(k) % 40 + 1 for k in row] for row in M["freq_w"]]
    return M


def _phase_off(P, M):
    M["phase_err"] = (np.asarray(M["phase_err"], float) + 1.0).tolist()
    return M


def _primes(prefix):
    return [f"{prefix}_p{p}" for p in ma.Config.quick().primes]


WRONG = [
    ("closed_form", "a wrong output phase: the coherent part off by 1e-6", _per_prime(_shift("coherent_max", 1e-6)),
     _primes("coherent_part_exact")),
    ("closed_form", "the unbalanced coherent part off by 1e-6", _per_prime(_shift("unbalanced_min", -1e-6)),
     _primes("coherent_part_unbalanced")),
    ("closed_form", "one wrong pair at the balanced width", _per_prime(_set("wrong_pairs", [1, 0, 0])),
     _primes("all_pairs_correct")),
    ("closed_form", "noise variance 10% above N", _per_prime(lambda P, M: M.update(noise_var=M["noise_var"] * 1.1)),
     _primes("noise_variance")),
    ("closed_form", "accuracy 0.15 below the Gaussian model at every width",
     _per_prime(_shift("accuracy", -0.15)), _primes("accuracy_vs_width")),
    ("grokking", "no delay: test accuracy tracks train accuracy", _copy("train_acc", "test_acc"),
     ["grokking_memorises_first", "grokking_delay_ratio"]),
    ("grokking", "no generalisation: test accuracy stops at 0.9 of its value", _grokking_never,
     ["grokking_generalises", "grokking_delay_ratio"]),
    ("fourier_features", "spread spectra: half the power in the top frequency", _scale("power_u", 0.5),
     ["fourier_neuron_fraction"]),
    ("fourier_features", "spread spectra: IPR halved", _scale("ipr_u", 0.5), ["fourier_mean_ipr"]),
    ("fourier_features", "the output block at another frequency", _freq_off_by_one, ["construction_same_frequency"]),
    ("fourier_features", "phi_out = phi_a + phi_b + 1 rad", _phase_off, ["construction_phase_relation"]),
    ("fourier_features", "the single-frequency projection loses half the test accuracy",
     _scale("proj_test_acc", 0.5), ["construction_projection_accuracy"]),
]


test_wrong_measurement_fails, test_every_evidence_check_can_fail = judge_tests(CLAIM, WRONG)


# --- Part 3's judge fed wrong measurements (no training: a measurement with the paper's timeline) ----
def _paper_like_transformer_result(epochs: int = 40000) -> dict:
    """A result whose `transformer` measurement follows Nanda et al.'s Fig. 7 at p = 113 (synthetic, made
    here: memorised by 1k, restricted loss < 0.1 from 6k, excluded loss 0.3 -> 8 nats by 9k, test loss
    < 1 from 12.8k, test accuracy 1 at the end; the embedding in 6 frequencies, the neurons in 5 of them;
    0.96 of the logit variance on their cos(w_k(a+b-c))).
    The quick preset has no transformer part, so the judge tests perturb this one."""
    import dataclasses
    import json

    from theory.harness.results import as_json
    cfg = dataclasses.replace(ma.Config.full(), transformer_epochs=epochs)
    ep = np.arange(runs.T_LOG_EVERY, epochs + 1, runs.T_LOG_EVERY, dtype=float)
    step = lambda at, lo, hi: np.where(ep >= at, hi, lo)
    ramp = lambda t0, t1, a, b: a + (b - a) * np.clip((ep - t0) / (t1 - t0), 0, 1)
    spectrum = np.full(113 // 2 + 1, 0.05)
    spectrum[[14, 35, 41, 42, 52, 20]] = [20, 18, 15, 12, 10, 3]
    M = {"epochs": ep, "step_loss": [ramp(0, 1000, 4.7, 1e-6)],
         "train_loss": [ramp(0, 1000, 4.7, 1e-6)], "test_loss": [ramp(9000, 13000, 12.0, 1e-3)],
         "train_acc": [step(1000, 0.5, 1.0)], "test_acc": [ramp(9000, 13000, 0.01, 1.0)],
         "restricted_loss": [ramp(1000, 6000, 4.0, 0.05)], "excluded_loss": [ramp(1000, 9000, 0.3, 8.0)],
         "logit_variance": [ramp(1000, 14000, 0.0, 0.96)], "neuron_counts_per_log": [[[0] * 57] * len(ep)],
         "weight_norm2": [ramp(0, 20000, 3000.0, 900.0)], "key_freqs": [[14, 35, 41, 42, 52]],
         "neuron_counts": [[0] * 57], "embedding_spectrum": [spectrum]}
    data = {"transformer": {"predicted": as_json(tpart.predict(cfg)), "measured": as_json(M)}}
    return json.loads(json.dumps({"config": as_json(dataclasses.asdict(cfg)), "data": data}))


def _t_set(name, value):
    def perturb(P, M):
        M[name] = value
        return M
    return perturb


def _t_curve(name, fn):
    def perturb(P, M):
        M[name] = [fn(np.asarray(M["epochs"], float), np.asarray(x, float)).tolist() for x in M[name]]
        return M
    return perturb


WRONG_TRANSFORMER = [
    ("no grokking: test accuracy stops at 0.5", _t_curve("test_acc", lambda e, x: np.minimum(x, 0.5)),
     ["transformer_test_accuracy"]),
    ("the restricted loss falls with the test loss (no lead)",
     _t_curve("restricted_loss", lambda e, x: np.where(e >= 11500, 0.05, 3.0)), ["restricted_loss_leads_test_loss"]),
    ("the restricted loss never falls below 0.1", _t_curve("restricted_loss", lambda e, x: np.maximum(x, 0.2)),
     ["restricted_loss_leads_test_loss"]),
    ("the test loss never falls below 1", _t_curve("test_loss", lambda e, x: np.maximum(x, 1.5)),
     ["restricted_loss_leads_test_loss", "excluded_loss_rises"]),
    ("the excluded loss rises by 3 nats only", _t_curve("excluded_loss", lambda e, x: np.minimum(x, 3.3)),
     ["excluded_loss_rises"]),
    ("a dense embedding: every frequency equal", _t_set("embedding_spectrum", [[1.0] * 57]),
     ["embedding_fourier_sparse"]),
    ("an MLP key frequency the embedding lacks", _t_set("key_freqs", [[14, 35, 41, 42, 53]]),
     ["key_frequencies_agree"]),
    ("no MLP key frequency at all", _t_set("key_freqs", [[]]), ["key_frequencies_agree"]),
    ("the logits only 0.8 on the key frequencies' cos(w_k(a+b-c))",
     _t_curve("logit_variance", lambda e, x: np.minimum(x, 0.8)), ["logit_variance_explained"]),
]


def test_paper_like_transformer_measurement_passes():
    from claim_asserts import rejudge
    checks = rejudge(CLAIM, _paper_like_transformer_result(), "transformer")
    assert list(checks) == ["transformer_test_accuracy", "restricted_loss_leads_test_loss", "excluded_loss_rises",
                            "embedding_fourier_sparse", "key_frequencies_agree", "logit_variance_explained"]
    assert all(c.passed for c in checks.values()), {n: c.measured for n, c in checks.items()}
    assert checks["restricted_loss_leads_test_loss"].measured == 12800 - 6000          # first logs below 1, 0.1


@pytest.mark.parametrize("description, perturb, must_fail", WRONG_TRANSFORMER, ids=[w[0] for w in WRONG_TRANSFORMER])
def test_transformer_wrong_measurement_fails(description, perturb, must_fail):
    from claim_asserts import wrong_measurement
    wrong_measurement(CLAIM, "transformer", perturb, must_fail, result=_paper_like_transformer_result())


def test_every_transformer_check_can_fail():
    from claim_asserts import rejudge
    names = set(rejudge(CLAIM, _paper_like_transformer_result(), "transformer"))
    assert names and not names - set().union(*(set(w[2]) for w in WRONG_TRANSFORMER))


def test_logit_variance_is_judged_only_at_the_papers_length():
    """At the paper's 40k epochs its 95% is compared (>= 0.9); a shorter run only reports it, beside."""
    from claim_asserts import rejudge
    assert tpart.PAPER_EPOCHS == 40000
    short = rejudge(CLAIM, _paper_like_transformer_result(20000), "transformer")
    assert "logit_variance_explained" not in short and all(c.passed for c in short.values())
    assert "0.96 (the paper's 95% is its 40000-epoch model; not compared: trained 20000 epochs)" \
        in short["key_frequencies_agree"].label


def test_the_wd_control_is_reported_not_judged():
    """The full preset's third weight decay adds a control run to the Fourier sweep: it appears in the
    labels (and the figure) and changes no verdict. Fed from the committed quick result, with run 0's
    measurement appended as the 'control' and its spectra halved (it would fail if judged)."""
    import copy

    import matplotlib.pyplot as plt
    from claim_asserts import committed, rejudge
    r = copy.deepcopy(committed(CLAIM))
    base = {c["name"]: c["passed"] for c in r["checks"] if c["part"] == "fourier_features"}
    M = r["data"]["fourier_features"]["measured"]
    for k in ("test_acc", "train_acc", "proj_test_acc", "freq_u", "freq_v", "freq_w", "ipr_u", "phase_err"):
        M[k] = list(M[k]) + [M[k][0]]
    M["power_u"] = list(M["power_u"]) + [(np.asarray(M["power_u"][0], float) * 0.5).tolist()]
    M["weight_decay"] = list(M["weight_decay"]) + [1.0]
    r["config"]["weight_decay"] = [0.0, 5.0, 1.0]
    checks = rejudge(CLAIM, r, "fourier_features", M)
    assert {n: c.passed for n, c in checks.items()} == base
    assert "wd 1 control: 0.00" in checks["fourier_neuron_fraction"].label
    plt.close(ma.plot(r))


# --- the claim, quick preset ------------------------------------------------------------------
EXPECTED_CHECKS = [
    *[name for p in ma.Config.quick().primes for name in (
        f"coherent_part_exact_p{p}", f"coherent_part_unbalanced_p{p}", f"all_pairs_correct_p{p}",
        f"noise_variance_p{p}", f"accuracy_vs_width_p{p}")],
    "grokking_memorises_first", "grokking_generalises", "grokking_delay_ratio", "grokking_float32_loss_safe",
    "fourier_neuron_fraction", "fourier_mean_ipr", "construction_same_frequency", "construction_phase_relation",
    "construction_projection_accuracy", "fourier_float32_loss_safe",
]


@pytest.mark.claim
def test_quick_preset(tmp_path):
    r = run_claim(CLAIM, "quick", seed=0, out=tmp_path)
    assert_checks_pass(r, EXPECTED_CHECKS)
    assert (tmp_path / "results" / "modular_arithmetic.json").is_file()
    assert (tmp_path / "figures" / "modular_arithmetic.png").is_file()


# The full preset's one failing check, measured (results/full/modular_arithmetic.json, README): the
# restricted loss crosses 0.1 at epoch 7400, 800 epochs before the test loss crosses 1 (8200), against
# the 2000 expected. The slow tests assert exactly this set fails: another failure, or this one
# passing, is a change to look at (and to write into the README).
FULL_FAILING = {"restricted_loss_leads_test_loss"}


@pytest.mark.slow
def test_full_preset(tmp_path):
    r = run_claim(CLAIM, "full", seed=0, out=tmp_path)
    assert {c["name"] for c in r["checks"] if not c["passed"]} == FULL_FAILING


def test_another_prime_keeps_part_one_exact(f64):
    """--set primes=(29,) at a tiny width grid: Part 1's checks at p = 29 (no training)."""
    import dataclasses

    from theory.engine.keys import Keys
    from theory.harness.results import as_json
    cfg = dataclasses.replace(ma.Config.quick(), primes=(29,), widths=(50, 100))
    P = as_json(closed_form.predict(cfg))
    M = as_json(closed_form.measure(cfg, Keys(0).sub("closed_form"), None))
    checks = {c.name: c for c in closed_form.judge(cfg, P, M)}
    assert all(c.passed for c in checks.values()), {k: c.measured for k, c in checks.items()}


# --- bad input: SandboxError before any work, one line and exit 2 from the CLI -----------------
@pytest.fixture
def no_training(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("work started")
    monkeypatch.setattr(runs, "sweep", boom)
    monkeypatch.setattr(closed_form, "coherent_range", boom)


BAD = [
    ("primes=(23,91)", "not an odd prime"),
    ("primes=(97,23)", "increasing"),
    ("widths=(50,25)", "increasing"),
    ("widths=(0,50)", "positive"),
    ("mlp_p=96", "odd prime"),
    ("mlp_width=0", "positive"),
    ("train_frac=(0.3,1.5)", "strictly between"),
    ("train_frac=(0.3,)", "2 values"),
    ("weight_decay=(0.0,-5.0,1.0)", ">= 0"),
    ("epochs=(400,301)", "multiples of 5"),
    ("epochs=(0,300)", "positive"),
    ("transformer_p=100", "odd prime"),
    ("transformer_epochs=0", "positive"),
    ("transformer_epochs=300", "multiple of 200"),
    ("transformer_seeds=0", "positive"),
    ("seeds=2", ">= 3"),
]


@pytest.mark.parametrize("override, match", BAD, ids=[b[0] for b in BAD])
def test_bad_input_raises_before_work(tmp_path, no_training, override, match):
    with pytest.raises(SandboxError, match=match):
        run_claim(CLAIM, "quick", out=tmp_path, overrides=[override])


def test_every_config_field_has_a_bad_input_test():
    import dataclasses
    fields = {f.name for f in dataclasses.fields(ma.Config)}
    assert fields == {b[0].split("=")[0] for b in BAD}


def test_the_full_preset_runs_the_transformer_and_the_quick_one_does_not():
    full, quick = ma.Config.full(), ma.Config.quick()
    full.validate()
    assert (full.transformer_p, full.transformer_epochs, quick.transformer_p) == (113, 40000, 0)
    assert tpart.PART.enabled(full) and not tpart.PART.enabled(quick)


def test_another_prime_from_the_command_line_is_accepted():
    from theory.harness import config as config_lib
    cfg = config_lib.apply_overrides(ma.Config.quick(), ["primes=(29,113)"])
    cfg.validate()
    assert cfg.primes == (29, 113)


def test_bad_input_from_the_cli_is_one_line_and_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "theory.cli", "run", CLAIM, "--set", "mlp_p=96",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "mlp_p" in proc.stderr
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("*.json"))


@pytest.mark.slow
def test_transformer_part_at_the_full_preset():
    """Part 3 alone at the full preset's config (p = 113, 40k epochs: 62 min on the shared 2-core machine)."""
    from theory.engine.keys import Keys
    from theory.engine.precision import precision
    from theory.harness.results import as_json
    cfg = ma.Config.full()
    with precision("float64"):
        P = as_json(tpart.predict(cfg))
        M = as_json(tpart.measure(cfg, Keys(0).sub("transformer"), None))
    checks = tpart.judge(cfg, P, M)
    assert {c.name for c in checks if not c.passed} == FULL_FAILING, {c.name: c.measured for c in checks}
