"""Tests for the `composition` claim (Parts 1-2; Part 3 has tests/test_error_compounding.py): the
associative memory and the induction transformer against naive loops, the bigram task, the
predictions against Monte Carlo, the proofs, the judges fed wrong measurements, the quick preset
and bad input."""
from __future__ import annotations

import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from claim_asserts import assert_covered, committed, judge_tests

import experiments.composition as comp
from experiments.composition import runs
from experiments.composition.parts import induction, memory
from proofs.composition import prove_gradient_at_zero, prove_score_margin
from theory.errors import SandboxError
from theory.harness.runner import run_claim
from theory.models import associative_memory as am
from theory.models import induction_transformer as it
from theory.predictions import composition as pred
from theory.tasks import bigram

CLAIM = "composition"


# --- Part 1: the associative memory ---------------------------------------------------------------
def test_memory_worked_example(f64):
    """The docstring's example: N = M = 2, E = U = I, f = identity, p uniform."""
    E = U = jnp.eye(2)
    f, p = jnp.array([0, 1]), jnp.array([0.5, 0.5])
    G = -jax.grad(am.loss)(jnp.zeros((2, 2)), E, U, f, p)
    np.testing.assert_allclose(np.asarray(G), 0.5 * np.array([[0.5, -0.5], [-0.5, 0.5]]), atol=1e-15)
    assert np.asarray(am.recall(G, E, U)).tolist() == [0, 1]


def test_memory_scores_and_loss_match_loops(f64):
    rng = np.random.default_rng(0)
    N, M, d = 4, 5, 3
    E, U, W = rng.normal(size=(N, d)), rng.normal(size=(M, d)), rng.normal(size=(d, d))
    f, p = np.array([1, 4, 0, 4]), np.array([0.1, 0.2, 0.3, 0.4])
    S = np.asarray(am.scores(jnp.asarray(W), jnp.asarray(E), jnp.asarray(U)))
    for x in range(N):
        for y in range(M):
            assert S[x, y] == pytest.approx(U[y] @ W @ E[x], rel=1e-12)
    want = -sum(p[x] * (S[x, f[x]] - math.log(np.exp(S[x]).sum())) for x in range(N))
    got = float(am.loss(*(jnp.asarray(a) for a in (W, E, U, f, p))))
    assert got == pytest.approx(want, rel=1e-12)


def test_closed_form_step_matches_autodiff_and_finite_differences(f64):
    rng = np.random.default_rng(1)
    N, M, d = 6, 4, 3
    E, U = rng.normal(size=(N, d)), rng.normal(size=(M, d))
    f, p = rng.integers(0, M, N), rng.dirichlet(np.ones(N))
    C = pred.closed_form_step(E, U, f, p)
    G = -np.asarray(jax.grad(am.loss)(jnp.zeros((d, d)), *(jnp.asarray(a) for a in (E, U, f, p))))
    np.testing.assert_allclose(G, C, rtol=1e-12, atol=1e-15)
    h, fd = 1e-6, np.zeros((d, d))
    for i in range(d):
        for j in range(d):
            Wp, Wm = np.zeros((d, d)), np.zeros((d, d))
            Wp[i, j], Wm[i, j] = h, -h
            lp, lm = (float(am.loss(jnp.asarray(w), *(jnp.asarray(a) for a in (E, U, f, p)))) for w in (Wp, Wm))
            fd[i, j] = -(lp - lm) / (2 * h)
    np.testing.assert_allclose(fd, C, rtol=1e-6, atol=1e-9)


def test_jitted_step_with_zeros_passed_in_is_exact(f64):
    """The workaround in parts/memory.py: jit(grad) with W0 an argument matches the closed form, at
    the sizes of the quick preset (N = 256, padded d)."""
    W0 = memory.zeros(128)
    acc, err = jax.jit(memory.recall_run, static_argnums=(3, 4))(jax.random.PRNGKey(3), 100, W0, 256, 128)
    assert float(err) < 1e-13
    assert 0.9 < float(acc) <= 1.0


def test_padding_coordinates_change_no_score(f64):
    """A draw at d in d_max coordinates (zeros beyond d) recalls exactly as the d-dim computation."""
    key, N, d = jax.random.PRNGKey(5), 64, 20
    E, U = memory._draw(key, N, N, d, 48)
    f = jnp.arange(N)[::-1]
    p = jnp.full((N,), 1.0 / N)
    G = pred.closed_form_step(E, U, f, p)
    S_pad = am.scores(G, E, U)
    Ed, Ud = E[:, :d], U[:, :d]
    S_d = am.scores(pred.closed_form_step(Ed, Ud, f, p), Ed, Ud)
    np.testing.assert_allclose(np.asarray(S_pad), np.asarray(S_d), rtol=1e-12, atol=1e-15)
    assert float(jnp.abs(E[:, d:]).max()) == 0.0


def test_score_variances_against_monte_carlo():
    """The Gaussian model's moments: mean margin 1, Var(correct) = 4/d + (N-1)/d^2 and Var(wrong) =
    2/d + (N-2)/d^2 (the research note's 1/d + (N-1)/d^2 is ~15% low at N = 256, d = 54)."""
    rng = np.random.default_rng(0)
    N, d, reps = 256, 54, 6
    cs, ws = [], []
    for _ in range(reps):
        E, U = rng.normal(size=(N, d)) / math.sqrt(d), rng.normal(size=(N, d)) / math.sqrt(d)
        f = rng.permutation(N)
        S = E @ (N * pred.closed_form_step(E, U, f, np.full(N, 1.0 / N))).T @ U.T
        right = np.zeros_like(S, bool)
        right[np.arange(N), f] = True
        cs.append(S[right])
        ws.append(S[~right])
    c, w = np.concatenate(cs), np.concatenate(ws)
    sc2, sw2 = pred.score_variances(N, d)
    assert c.mean() - w.mean() == pytest.approx(1.0, abs=0.05)
    assert c.var() == pytest.approx(sc2, rel=0.12)            # 1536 samples: s.e. of a variance ~4%
    assert w.var() == pytest.approx(sw2, rel=0.03)
    assert abs(w.var() - pred.score_variances(N, d, note=True)[1]) / sw2 > 0.1


def test_gaussian_accuracy_limits_and_d50():
    assert pred.gaussian_accuracy(256, 256, 4.0) < 0.05
    assert pred.gaussian_accuracy(256, 256, 1000.0) > 0.999
    for N in (256, 1024):
        d = pred.gaussian_d50(N, N)
        assert pred.gaussian_accuracy(N, N, d) == pytest.approx(0.5, abs=1e-6)
    assert pred.d50_formula(256, 256) == pytest.approx(math.sqrt(512 * math.log(256)))
    assert pred.gaussian_d50(1024, 1024, note=True) == pytest.approx(109.2, abs=0.5)   # the note's table


def test_crossing_log():
    assert pred.crossing_log([10, 20, 40], [0.1, 0.3, 0.7]) == pytest.approx(20 * 2 ** 0.5)
    assert pred.crossing_log([10, 20], [0.6, 0.9]) == 10.0
    assert pred.crossing_log([10, 20], [0.1, 0.2]) == math.inf


# --- Part 2: the bigram task and the induction transformer ----------------------------------------
def test_bigram_rows_stationary_law_and_triggers():
    b = bigram.draw_bigram(jax.random.PRNGKey(0), 65, 5)
    P, pi = np.asarray(b.P, float), np.asarray(b.pi, float)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(pi @ P, pi, atol=1e-6)
    assert pi.sum() == pytest.approx(1.0, abs=1e-5)
    assert sorted(np.argsort(-pi)[:5].tolist()) == sorted(np.asarray(b.triggers).tolist())


def test_sequences_follow_triggers_and_count_occurrences():
    b = bigram.draw_bigram(jax.random.PRNGKey(1), 65, 5)
    s = bigram.sample_batch(jax.random.PRNGKey(2), b, 128, 16)
    x, y, outs = (np.asarray(a) for a in s)
    trig = np.asarray(b.triggers).tolist()
    assert (x[:, 1:] == y[:, :-1]).all()
    for i in range(x.shape[0]):
        succ, seen = {}, {}
        for t in range(x.shape[1]):
            if x[i, t] in trig:
                succ.setdefault(x[i, t], y[i, t])
                assert y[i, t] == succ[x[i, t]]                     # one successor per sequence
                seen[x[i, t]] = seen.get(x[i, t], 0) + 1
                assert outs[i, t] == seen[x[i, t]]
            else:
                assert outs[i, t] == 0
    assert (outs >= 2).sum() > 100


def test_non_trigger_transitions_follow_the_bigram():
    b = bigram.draw_bigram(jax.random.PRNGKey(3), 8, 1)
    s = bigram.sample_batch(jax.random.PRNGKey(4), b, 256, 64)
    x, y, outs = (np.asarray(a).ravel() for a in s)
    P = np.asarray(b.P, float)
    a = int(np.argsort(-np.asarray(b.pi))[1])                     # the most frequent non-trigger
    nxt = y[(x == a) & (outs == 0)]
    freq = np.bincount(nxt, minlength=8) / nxt.size
    np.testing.assert_allclose(freq, P[a], atol=5 * math.sqrt(0.25 / nxt.size))


def _naive_forward(trained, frozen, x):
    """Loops over positions: the repository's attention (W_Q = I, scores / sqrt(d), causal)."""
    W_K1, W_K2, W_O2 = (np.asarray(w, float) for w in trained)
    w_E, p, W_V1, W_O1, W_V2, W_U = (np.asarray(w, float) for w in frozen)
    z = w_E[x] + p[: len(x)]
    for W_K, W_V, W_O in ((W_K1, W_V1, W_O1), (W_K2, W_V2, W_O2)):
        out = np.zeros_like(z)
        for i in range(len(x)):
            s = np.array([z[i] @ (W_K @ z[j]) / math.sqrt(z.shape[1]) for j in range(i + 1)])
            a = np.exp(s - s.max())
            a /= a.sum()
            out[i] = z[i] + W_O @ (W_V @ (a[:, None] * z[: i + 1]).sum(axis=0))
        z = out
    return z @ W_U.T


def test_induction_transformer_matches_loops(f64):
    trained, frozen = it.init(jax.random.PRNGKey(0), 11, 9, 6)
    x = jnp.array([3, 1, 4, 1, 5, 9, 2, 6, 5])
    logits, A1, A2 = it.forward(trained, frozen, x)
    np.testing.assert_allclose(np.asarray(logits), _naive_forward(trained, frozen, np.asarray(x)), rtol=1e-9)
    assert np.allclose(np.triu(np.asarray(A1), 1), 0) and np.allclose(np.asarray(A2).sum(axis=1), 1)


def test_head_loss_is_the_mean_over_targets_and_chunks_agree(f64):
    trained, frozen = it.init(jax.random.PRNGKey(1), 11, 16, 8)
    b = bigram.draw_bigram(jax.random.PRNGKey(2), 11, 2)
    s = bigram.sample_batch(jax.random.PRNGKey(3), b, 16, 8)
    logits = np.asarray(jax.vmap(lambda x: it.forward(trained, frozen, x)[0])(s.x))
    y, outs = np.asarray(s.y), np.asarray(s.outs)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = [-logp[i, t, y[i, t]] for i in range(8) for t in range(16) if outs[i, t] >= 2]
    full = float(it.head_loss(trained, frozen, s.x, s.y, s.outs))
    assert full == pytest.approx(np.mean(nll), rel=1e-10)
    assert float(it.head_loss(trained, frozen, s.x, s.y, s.outs, chunk=4)) == pytest.approx(full, rel=1e-12)


def test_probes_of_a_constructed_induction_head():
    """Weights built as the three memories score 1 on every probe; random weights score near chance."""
    d, V, T = 256, 20, 32
    trained, frozen = it.init(jax.random.PRNGKey(4), V, T, d)
    triggers = jnp.array([0, 1, 2])
    p, e = np.asarray(frozen.p, float), np.asarray(frozen.w_E, float)
    W_K1 = sum(np.outer(p[t], p[t - 1]) for t in range(1, T)) / d          # key p_(t-1) -> query p_t
    OV1 = np.asarray(frozen.W_O1 @ frozen.W_V1, float)
    W_K2 = sum(np.outer(e[a], OV1 @ e[a]) for a in range(3)) / d
    V2 = np.asarray(frozen.W_V2, float)
    W_O2 = sum(np.outer(np.asarray(frozen.W_U[v], float), V2 @ e[v]) for v in range(V))
    built = it.Trained(*(jnp.asarray(w, jnp.float32) for w in (W_K1, W_K2, W_O2)))
    got = {k: float(v) for k, v in it.probes(built, frozen, triggers).items()}
    assert got == {"wk0": 1.0, "wk1": 1.0, "wo1": 1.0, "wk0_64": 1.0, "wk0_causal": 1.0}
    assert bool(jnp.all(it.previous_token_hits(built, frozen)))
    rand = it.probes(trained, frozen, triggers)
    assert float(rand["wk0"]) < 0.2 and float(rand["wo1"]) < 0.3


def test_wk0_diagnostics_separate_future_keys_and_late_positions():
    """With orthogonal position embeddings (no cross-talk, so every score is exact): a previous-token
    memory outscored by a future key (p_(t+5), never visible to the causal head) fails the unmasked
    wk0 on every row whose future key is among the probe's keys and passes wk0_causal on every row;
    a memory of the first 40 positions (the later rows pointing at key 0) scores exactly 40/79 on wk0
    and 40/63 on wk0_64 at T = 80."""
    d, V, T = 256, 20, 80
    trained, frozen = it.init(jax.random.PRNGKey(5), V, T, d)
    q, _ = np.linalg.qr(np.asarray(jax.random.normal(jax.random.PRNGKey(6), (d, d)), float))
    p = np.sqrt(d) * q[:T]                                                # (T, d) orthogonal rows, |p_t|^2 = d
    frozen = frozen._replace(p=jnp.asarray(p, jnp.float32))
    triggers = jnp.array([0, 1, 2])
    prev = sum(np.outer(p[t], p[t - 1]) for t in range(1, T)) / d
    future = sum(np.outer(p[t], p[t + 5]) for t in range(0, T - 5)) / d
    W_K1 = jnp.asarray(prev + 2 * future, jnp.float32)
    got = it.probes(trained._replace(W_K1=W_K1), frozen, triggers)
    hits = np.asarray(it.previous_token_hits(trained._replace(W_K1=W_K1), frozen))
    assert float(got["wk0_causal"]) == 1.0
    assert not hits[:T - 7].any() and hits[T - 7:].all()                  # future key t + 5 <= T - 2 wins
    assert float(got["wk0"]) == pytest.approx(6 / 79)
    early = sum(np.outer(p[t], p[t - 1]) for t in range(1, 41)) / d
    early += 0.5 * sum(np.outer(p[t], p[0]) for t in range(41, T)) / d    # later rows: a wrong memory
    got = it.probes(trained._replace(W_K1=jnp.asarray(early, jnp.float32)), frozen, triggers)
    assert float(got["wk0"]) == pytest.approx(40 / 79)
    assert float(got["wk0_64"]) == pytest.approx(40 / 63)


def test_previous_token_uses_against_a_loop():
    """uses[j - 1] = mean over sequences of #{t >= j : outs_t >= 2, x_(j-1) = x_t}, checked on the
    docstring's example and on random samples against plain Python."""
    x = jnp.array([[0, 2, 1, 0]])
    assert np.asarray(bigram.previous_token_uses(bigram.Sample(x, x, jnp.array([[1, 0, 0, 2]])))).tolist() == [1, 0, 0]
    model = bigram.draw_bigram(jax.random.PRNGKey(6), 8, 3)
    s = bigram.sample_batch(jax.random.PRNGKey(7), model, 24, 5)
    xs, outs = np.asarray(s.x), np.asarray(s.outs)
    want = [np.mean([sum(1 for t in range(j, 24) if outs[b, t] >= 2 and xs[b, j - 1] == xs[b, t]) for b in range(5)])
            for j in range(1, 24)]
    assert np.asarray(bigram.previous_token_uses(s)) == pytest.approx(want, abs=1e-6)


def test_sgd_matches_torch_update_rule():
    """torch.optim.SGD(lr, momentum, weight_decay): b = m b + (g + wd w); w -= lr b."""
    opt = runs.optimizer(0.1, 0.9, 0.01)
    w = {"w": jnp.array([1.0, -2.0])}
    state = opt.init(w)
    buf, ref = np.zeros(2), np.array([1.0, -2.0])
    for g in ([0.5, 0.25], [-1.0, 2.0]):
        upd, state = opt.update({"w": jnp.array(g)}, state, w)
        w = {"w": w["w"] + upd["w"]}
        buf = 0.9 * buf + (np.array(g) + 0.01 * ref)
        ref = ref - 0.1 * buf
    np.testing.assert_allclose(np.asarray(w["w"]), ref, rtol=1e-6)


def test_crossing_steps_and_order():
    assert induction.crossing_steps([0.0, 0.2, 0.6, 1.0], 10) == pytest.approx(17.5)
    assert induction.crossing_steps([0.0, 0.2], 10) == math.inf
    crossing = {"wo1": [10, 30, 10, 50], "wk1": [20, 20, 20, 10], "wk0": [30, 40, math.inf, 40]}
    assert [induction.in_order(crossing, s) for s in range(4)] == [True, True, False, False]
    assert induction.order(crossing, 2) == "wo1 < wk1 < wk0 never"
    assert induction.order(crossing, 3) == "wk1 < wk0 < wo1"


# --- proofs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("proof", [prove_gradient_at_zero, prove_score_margin])
def test_proofs(proof):
    proof()


# --- judges fed wrong measurements ----------------------------------------------------------------
def _set(*path_value):
    *path, value = path_value

    def perturb(P, M):
        node = M
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value(node[path[-1]]) if callable(value) else value
        return M
    return perturb


def _reverse_order(P, M):
    """Bottom-up: the previous-token memory first, both layer-2 memories after it."""
    M["crossing"] = {"wk0": [10.0] * len(M["crossing"]["wk0"]), "wk1": [50.0] * len(M["crossing"]["wk1"]),
                     "wo1": [90.0] * len(M["crossing"]["wo1"])}
    return M


def _recall_shifted(factor):
    """Accuracies read as those of dimension d / factor: the curve, hence d_50, moved by `factor`."""
    def perturb(P, M):
        M["d50"] = {k: v * factor for k, v in M["d50"].items()}
        return M
    return perturb


WRONG = [
    ("memory", "a gradient off by 1e-8 relative (a wrong u_bar)", _set("gradient_error", 1e-8), ["gradient_identity"]),
    ("memory", "d_50 25% above sqrt(2 N ln M)", _recall_shifted(1.25), [f"d50_n{N}" for N in (256, 1024)]),
    ("memory", "d_50 25% below sqrt(2 N ln M)", _recall_shifted(0.75), [f"d50_n{N}" for N in (256, 1024)]),
    ("memory", "the curve never crosses 1/2 in the window", _set("d50", lambda v: {k: math.inf for k in v}),
     [f"d50_n{N}" for N in (256, 1024)]),
    ("induction", "no previous-token head in one seed", _set("final", "wk0", lambda v: [0.3] + v[1:]),
     ["probe_wk0_formed"]),
    ("induction", "no trigger memory in one seed", _set("final", "wk1", lambda v: v[:-1] + [0.6]),
     ["probe_wk1_formed"]),
    ("induction", "no output memory in one seed", _set("final", "wo1", lambda v: [0.9] + v[1:]),
     ["probe_wo1_formed"]),
    ("induction", "no induction head: targets at the bigram's accuracy",
     _set("test", "model", lambda v: [0.02] * len(v)), ["in_context_accuracy"]),
    ("induction", "targets predictable from the bigram (a leak)",
     _set("test", "bigram_per_sequence", lambda v: [0.3] * len(v)),
     ["bigram_only_on_targets"]),
    ("induction", "bottom-up formation: wk0 first, wo1 last", _reverse_order, ["memories_form_top_down"]),
]

test_wrong_measurement_fails, _ = judge_tests(CLAIM, WRONG)


def test_every_evidence_check_can_fail():
    """Every evidence check of Parts 1-2 in the committed result (Part 3's: tests/test_error_compounding.py)."""
    r = committed(CLAIM)
    mine = {**r, "checks": [c for c in r["checks"] if c["part"] in ("memory", "induction")]}
    assert len(mine["checks"]) == len(expected_checks())
    assert_covered(CLAIM, WRONG, mine)


# --- the claim, quick preset ----------------------------------------------------------------------
def expected_checks() -> list[str]:
    names = ["gradient_identity", *[f"d50_n{N}" for N in comp.Config.quick().n_pairs],
             "probe_wk0_formed", "probe_wk1_formed", "probe_wo1_formed", "in_context_accuracy",
             "bigram_only_on_targets", "memories_form_top_down"]
    return names


# Part 2 does not hold in full at the quick preset (seeds 0, 1, 2; README "composition"): the repository's
# unmasked previous-token probe wk0 stays at 0.32-0.38 (0.62-0.68 on the first 64 positions; the late
# positions, whose memory few targets read, are not learned), so it never crosses 50% and the top-down
# order cannot be confirmed; in-context accuracy is 0.942-0.967 against 0.95. Any other failure is new.
DOCUMENTED_FAILING = {"probe_wk0_formed", "memories_form_top_down", "in_context_accuracy"}
# The full preset (d 128, batch 64, 2000 steps; results/full/composition.json): only wk0 fails, at
# 0.65-0.69 (0.92-0.97 on the first 64 positions); in-context accuracy 0.997-0.999 and the order
# wk1 < wo1 < wk0 in every seed. The slow test asserts exactly this set.
FULL_FAILING = {"probe_wk0_formed"}


@pytest.mark.claim
def test_quick_preset(tmp_path):
    r = run_claim(CLAIM, "quick", seed=0, out=tmp_path)
    checks = {c["name"]: c for c in r["checks"]}
    mine = [n for n in checks if checks[n]["part"] in ("memory", "induction")]
    assert mine == expected_checks()
    failing = {n for n, c in checks.items() if not c["passed"]}
    assert failing <= DOCUMENTED_FAILING, failing - DOCUMENTED_FAILING
    assert r["verdict"] == ("pass" if not failing else "fail")
    assert (tmp_path / "figures" / "composition.png").is_file()
    prof = r["data"]["induction"]["measured"]["wk0_profile"]           # data beside the checks
    T = comp.Config.quick().seq_len
    assert len(prof["wk0_by_key"]) == len(prof["uses_by_key"]) == T - 1
    assert prof["first_key"][0] == 1 and prof["last_key"][-1] == T - 1
    final = r["data"]["induction"]["measured"]["final"]
    assert np.mean(prof["wk0"], axis=1) == pytest.approx(final["wk0"], abs=0.02)   # blocks of near-equal size


@pytest.mark.slow
def test_full_preset(tmp_path):
    r = run_claim(CLAIM, "full", seed=0, out=tmp_path)
    assert {c["name"] for c in r["checks"] if not c["passed"]} == FULL_FAILING


# --- bad input: SandboxError before any work, one line and exit 2 from the CLI --------------------
@pytest.fixture
def no_training(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("work started")
    monkeypatch.setattr(runs, "sweep", boom)
    monkeypatch.setattr(memory, "recall_sweep", boom)


BAD = [
    ("n_pairs=(1,256)", ">= 2"),
    ("dims=(64,32)", "increasing"),
    ("dims=(8,9)", "at least 2 values in"),
    ("recall_seeds=3", ">= 4"),
    ("vocab=2", ">= 3"),
    ("seq_len=4", ">= 8"),
    ("n_triggers=65", "below vocab"),
    ("d_model=0", "positive"),
    ("steps=1001", "multiple of probe_every"),
    ("batch=0", "positive"),
    ("lr=0", "positive"),
    ("momentum=1.0", "momentum"),
    ("weight_decay=-1e-4", ">= 0"),
    ("probe_every=0", "positive"),
    ("seeds=0", "positive"),
    ("train_k=0", "positive"),
    ("test_k=3", "test_k must be >= train_k"),
    ("chain_steps=0", "positive"),
    ("chain_test_size=0", "positive"),
    ("chain_seeds=0", "positive"),
]


@pytest.mark.parametrize("override, match", BAD, ids=[b[0] for b in BAD])
def test_bad_input_raises_before_work(tmp_path, no_training, override, match):
    with pytest.raises(SandboxError, match=match):
        run_claim(CLAIM, "quick", out=tmp_path, overrides=[override])


def test_every_config_field_has_a_bad_input_test():
    import dataclasses
    fields = {f.name for f in dataclasses.fields(comp.Config)}
    assert fields <= {b[0].split("=")[0] for b in BAD} | EXTRA_FIELDS, fields - {b[0].split("=")[0] for b in BAD}


EXTRA_FIELDS: set[str] = set()     # fields Part 3 adds and tests in tests/test_error_compounding.py


def test_bad_input_from_the_cli_is_one_line_and_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "theory.cli", "run", CLAIM, "--set", "vocab=2",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "vocab" in proc.stderr
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("*.json"))
