"""Tests of `composition` Part 3 (`compounding`): the chained-sum task and its graphs, the error
taxonomy, the independence model and its proofs, the cached greedy decoder against the model's
forward pass, the judge on wrong measurements, and the figure panel.

`WRONG` lists the part's wrong measurements; tests/test_composition.py (which owns the claim's
coverage test) can add them to its own list."""
from __future__ import annotations

import copy
import dataclasses
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest
from claim_asserts import assert_covered, committed, wrong_measurement

from experiments.composition.parts import compounding
from proofs.error_compounding import (
    prove_chain_success_probability,
    prove_delta_method_se,
    prove_greedy_prefix_success,
    prove_log_linear_in_steps,
)
from theory.engine.keys import Keys
from theory.harness.results import as_json
from theory.models import transformer
from theory.models.positional import PEConfig
from theory.predictions import error_compounding as pred
from theory.tasks import chains

matplotlib.use("Agg")
CLAIM, PART = "composition", "compounding"


# --- proofs and predictions ------------------------------------------------------------------------
@pytest.mark.parametrize("prove", [prove_chain_success_probability, prove_greedy_prefix_success,
                                   prove_delta_method_se, prove_log_linear_in_steps])
def test_proofs(prove):
    assert prove() is True


def test_chain_success_against_monte_carlo():
    """Chains of independent Bernoulli step failures: the success rate is prod (1 - eps) within 4 s.e.,
    and the delta-method s.e. of A_hat is the spread of A_hat over repeated eps estimates (within 15%)."""
    rng = np.random.default_rng(0)
    eps, n, reps = np.array([0.01, 0.05, 0.1, 0.2, 0.03]), 2000, 400
    A = pred.chain_success(eps)
    fails = rng.random((reps, n, eps.size)) < eps                         # (reps, n, m)
    success = (~fails).all(axis=2).mean(axis=1)                           # (reps,)
    assert abs(success.mean() - A) <= 4 * np.sqrt(A * (1 - A) / (n * reps))
    A_hat = np.prod(1 - fails.mean(axis=1), axis=1)                       # (reps,) from estimated eps
    assert np.std(A_hat) == pytest.approx(pred.chain_success_se(eps, n), rel=0.15)
    assert pred.chain_success_se([0.0, 0.0], n) == 0.0
    assert pred.chain_success_se([1.0, 0.1], n) == pytest.approx(np.sqrt(0.0))   # a sure failure: A_hat = 0 exactly
    assert pred.chain_success_se([1.0], 10) == 0.0


def test_tolerance_and_log_fit():
    assert pred.tolerance(0.5, [0.5], 100) == pytest.approx(3 * 0.05 + 3 * 0.05)
    k = np.arange(7, 17)
    assert pred.log_linear_r2(k, 0.95 ** k) == pytest.approx(1.0)
    assert pred.log_linear_r2(k, np.ones(k.size)) == 1.0                 # ln A = 0: a line
    assert abs(pred.log_curvature(k, 0.95 ** k)) < 1e-12
    assert pred.log_curvature(k, np.exp(-0.01 * (k - 7) ** 2)) < 0       # collapse: concave
    assert pred.log_curvature(k, np.exp(-np.sqrt(k))) > 0                # clustering: convex
    assert pred.log_linear_r2(k, np.where(k < 12, 0.9, 0.1)) < 0.9


# --- the task and its graph -------------------------------------------------------------------------
def test_layout_docstring_example():
    c = chains.Chain(jnp.int32(7), jnp.array([5, 9, 3], jnp.int32), jnp.array([2, 1, 4], jnp.int32), jnp.int32(2))
    lay = chains.layout(c)
    assert lay.tokens.tolist() == [7, 5, 12, 9, 11, 20, 11, 21, 21]
    assert lay.read.tolist() == [1, 3, 5, 7]
    assert lay.out.tolist() == [2, 1, 1, 0]
    assert lay.out_mask.tolist() == [True, True, True, False]
    assert lay.pad_mask.tolist() == [True] * 7 + [False] * 2
    written = chains.layout(c, jnp.array([4, 4, 6, 0]))                  # the model's own outputs
    assert written.tokens.tolist() == [7, 5, 14, 9, 14, 20, 16, 21, 21]


@pytest.mark.parametrize("k, K", [(1, 1), (1, 6), (4, 6), (6, 6), (9, 16)])
def test_sample_partial_sums_and_prefix_consistency(k, K):
    key = jax.random.PRNGKey(3)
    c = chains.sample(key, k, K)
    long = chains.sample(key, k, 16)
    assert int(c.a) == int(long.a) and c.x[:k].tolist() == long.x[:k].tolist()
    s = int(c.a)
    lay = chains.layout(c)
    for i in range(k):                                                    # s_i = s_{i-1} + x_i mod 10
        s = (s + int(c.x[i])) % 10
        assert int(c.s[i]) == s == int(lay.out[i])
        assert int(lay.tokens[lay.read[i]]) == int(c.x[i])                # output i is read at x_i
        assert int(lay.tokens[lay.read[i] + 1]) == chains.SUM + s         # and written after it
    assert int(lay.out[k]) == s and int(lay.tokens[lay.read[k]]) == chains.EQ
    assert int(lay.tokens[lay.read[k] + 1]) == chains.SUM + s
    assert bool(lay.out_mask[k]) and not lay.out_mask[k + 1:].any()


def _longest_simple_path_nodes(g: chains.Graph) -> int:
    """Brute force (as faith-and-fate measures depth): the most nodes on a simple path from an input."""
    children = {v: [c for c, ps in g.parents.items() if v in ps] for v in g.nodes}

    def walk(v, seen):
        return 1 + max((walk(c, seen | {c}) for c in children[v] if c not in seen), default=0)
    return max(walk(v, {v}) for v in g.inputs)


@pytest.mark.parametrize("k", range(1, 17))
def test_graph_metrics(k):
    g = chains.graph(k)
    m = chains.metrics(k)
    assert m == {"size": 2 * k + 2, "depth": k + 2, "parallelism": (2 * k + 2) / (k + 2)}
    assert chains.depth(g) == _longest_simple_path_nodes(g)
    assert sum(g.operation[v] == "add" for v in g.parents) == k            # exactly k addition steps
    assert len(set(g.nodes)) == len(g.nodes)                               # no name collisions (no cycle)


def _classify_naive(a, x, pred_out):
    """faith-and-fate's compute_node_type rules, node by node over the graph (dicts, one chain)."""
    k = len(x)
    g = chains.graph(k)
    true = {"a": a} | {f"x{i + 1}": x[i] for i in range(k)}
    value = dict(true) | {f"s{i + 1}": pred_out[i] for i in range(k)} | {"y": pred_out[k]}
    for i in range(k):
        true[f"s{i + 1}"] = (true["a" if i == 0 else f"s{i}"] + x[i]) % 10
    true["y"] = true[f"s{k}"]
    label = {v: "correct" for v in g.inputs}
    for v in g.nodes[len(g.inputs):]:
        ps = g.parents[v]
        parents_ok = all(label[p] == "correct" for p in ps)
        right = value[v] == true[v]
        if right:
            label[v] = "correct" if parents_ok else "restored"
        else:
            applied = sum(value[p] for p in ps) % 10 if g.operation[v] == "add" else value[ps[0]]
            label[v] = "propagated" if value[v] == applied else "local"
    return [chains.TYPES.index(label[v]) for v in g.nodes[len(g.inputs):]]


def test_classify_matches_the_node_rules():
    rng = np.random.default_rng(1)
    for k in (1, 2, 5):
        a, x = rng.integers(0, 10, 300), rng.integers(0, 10, (300, k))
        true = (a[:, None] + np.cumsum(x, 1)) % 10
        true = np.concatenate([true, true[:, -1:]], 1)
        noisy = np.where(rng.random(true.shape) < 0.3, rng.integers(0, 10, true.shape), true)
        got = chains.classify(a, x, noisy, k)
        want = [_classify_naive(int(a[i]), [int(v) for v in x[i]], [int(v) for v in noisy[i]]) for i in range(300)]
        assert got.tolist() == want
    # a = 7, x = (5, 9): true s = (2, 1), y = 1
    assert chains.classify(np.array([7]), np.array([[5, 9]]), np.array([[3, 2, 2]]), 2).tolist() == [[1, 2, 2]]
    assert chains.classify(np.array([7]), np.array([[5, 9]]), np.array([[3, 1, 5]]), 2).tolist() == [[1, 3, 1]]


# --- the decoder --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["alibi", "rope"])
def test_cached_decode_equals_forward(kind):
    """The cached greedy decoder's logits equal transformer.forward's on the sequence it decoded
    (teacher forcing on its own outputs), and its outputs equal a naive decoder that recomputes the
    whole sequence at every step."""
    mcfg = dataclasses.replace(compounding.model_config(), pe=PEConfig(kind=kind, max_len=64), init_scale=3.0)
    params = transformer.init(jax.random.PRNGKey(1), mcfg)
    decode = jax.jit(compounding.decode, static_argnums=2)
    pos = jnp.arange(chains.seq_len(9))
    for k in (1, 5, 9):
        lay = chains.layout(chains.sample(jax.random.PRNGKey(k), k, 9))
        outs, logits = decode(params, lay, mcfg)
        again = compounding.output_logits(params, chains.layout(chains.sample(jax.random.PRNGKey(k), k, 9), outs), mcfg)
        np.testing.assert_allclose(np.asarray(logits)[:k + 1], np.asarray(again)[:k + 1], atol=1e-4)
        tokens, naive = lay.tokens, []
        for j in range(k + 1):
            lg = transformer.forward(params, tokens, pos, lay.pad_mask, mcfg, True)[0][lay.read[j]]
            naive.append(int(jnp.argmax(lg)))
            tokens = tokens.at[lay.read[j] + 1].set(chains.SUM + naive[-1])
        assert np.asarray(outs)[:k + 1].tolist() == naive


def test_decode_refuses_relative_positions():
    mcfg = dataclasses.replace(compounding.model_config(), pe=PEConfig(kind="relative"))
    lay = chains.layout(chains.sample(jax.random.PRNGKey(0), 2, 3))
    with pytest.raises(ValueError):
        compounding.decode(transformer.init(jax.random.PRNGKey(0), mcfg), lay, mcfg)


# --- the judge ------------------------------------------------------------------------------------------
def _beyond(P, M, f):
    """Apply f(k, A, A_hat) to every run's A_k beyond the training range."""
    for A_r, H_r in zip(M["A"], M["A_hat"]):
        for i, k in enumerate(M["k"]):
            if k > P["train_k"]:
                A_r[i] = f(k, A_r[i], H_r[i])
    return M


def _errors_cluster(P, M):
    """The failures of a chain come together (hard chains): A_k well above prod (1 - eps)."""
    return _beyond(P, M, lambda k, A, H: min(1.0, H + 0.1 + 0.5 * (1 - H)))


def _collapse(P, M):
    """Free-running chains collapse off-distribution faster than the teacher-forced steps predict."""
    return _beyond(P, M, lambda k, A, H: 0.5 * H)


def _eps_underestimated(P, M):
    M["eps"] = [[[e / 4 for e in row] for row in run] for run in M["eps"]]
    return M


def _step_collapse(P, M):
    """Fine for a few lengths beyond training, then a sudden drop: ln A_k a step, not a line."""
    mid = (P["train_k"] + max(M["k"])) / 2
    return _beyond(P, M, lambda k, A, H: 0.95 if k <= mid else 0.08)


def _untrained(P, M):
    for A_r in M["A"]:
        A_r[P["train_k"] - 1] = 0.5
    return M


def _decoder_feeds_truth(P, M):
    """A decoder that wrote the true digits back: free-running equals teacher forcing step by step."""
    M["A"] = [[min(1.0, a + 0.05) for a in A_r] for A_r in M["A"]]
    return M


WRONG = [
    (PART, "step failures cluster (A above prod (1 - eps))", _errors_cluster, ["compounding_independence"]),
    (PART, "free-running collapse off-distribution", _collapse, ["compounding_independence"]),
    (PART, "teacher-forced errors underestimated 4x", _eps_underestimated, ["compounding_independence"]),
    (PART, "ln A_k a step beyond the training range", _step_collapse, ["compounding_log_linear"]),
    (PART, "decoder did not learn the task", _untrained, ["compounding_trained"]),
    (PART, "free-running decoder not greedy on its own outputs", _decoder_feeds_truth,
     ["compounding_decode_consistent"]),
]

CFG = SimpleNamespace(train_k=6, test_k=16, chain_steps=1000, chain_test_size=1000, chain_seeds=2, seeds=3)


def _synthetic(cfg=CFG, eps_step=0.04) -> dict:
    """Data a correct run could give: eps = eps_step at every step beyond the first three (which a
    trained decoder gets right), chains failing independently, so A_k = prod (1 - eps)."""
    K = cfg.test_k
    eps = np.zeros((cfg.chain_seeds, K, K + 1))
    for i, k in enumerate(range(1, K + 1)):
        eps[:, i, 3:k] = eps_step
    A_hat = np.prod(1 - eps, axis=2)                                       # (R, K)
    M = {"k": list(range(1, K + 1)), "n": cfg.chain_test_size, "eps": eps.tolist(), "A": A_hat.tolist(),
         "tf_all": A_hat.tolist(), "A_hat": A_hat.tolist(), "A_hat_se": np.zeros_like(A_hat).tolist(),
         "answer": A_hat.tolist(), "types": [[[1, 0, 0, 0]] * K] * cfg.chain_seeds,
         "types_order": list(chains.TYPES), "loss": [[1.0]] * cfg.chain_seeds, "steps": cfg.chain_steps}
    return {"predicted": as_json(compounding.predict(cfg)), "measured": M}


def _judge(data, cfg=CFG):
    return {c.name: c for c in compounding.judge(cfg, data["predicted"], data["measured"])}


def test_judge_passes_synthetic_and_fails_every_wrong_measurement():
    data = _synthetic()
    checks = _judge(data)
    assert list(checks) == ["compounding_independence", "compounding_log_linear", "compounding_trained",
                            "compounding_decode_consistent"]
    assert all(c.passed for c in checks.values()), {n: c.label for n, c in checks.items() if not c.passed}
    assert [c.kind for c in checks.values()] == ["predicted", "expected", "expected", "sanity"]
    for _, description, perturb, must_fail in WRONG:
        M = perturb(data["predicted"], copy.deepcopy(data["measured"]))
        bad = _judge({"predicted": data["predicted"], "measured": M})
        assert not any(bad[n].passed for n in must_fail), description
    assert_covered(CLAIM, WRONG, result={"checks": [c.to_json() for c in checks.values()]})


def test_judge_fails_when_nothing_is_compared():
    """A decoder at 0% everywhere: no (run, k) with A_k > 5%, so independence cannot pass vacuously."""
    data = _synthetic()
    data["measured"]["A"] = [[0.0] * CFG.test_k for _ in range(CFG.chain_seeds)]
    checks = _judge(data)
    assert not checks["compounding_independence"].passed
    assert not checks["compounding_log_linear"].passed


def test_judge_tolerance_is_three_standard_errors():
    """A_k just inside / just outside 3 binomial s.e. + 3 s.e.(A_hat) of A_hat at one k."""
    data = _synthetic()
    M, n = data["measured"], CFG.chain_test_size
    i = 11                                                                  # k = 12
    eps = np.asarray(M["eps"][0][i])[:13]
    H = pred.chain_success(eps)
    for shift, ok in ((0.98, True), (1.02, False)):
        A = H
        for _ in range(50):                                                 # the tolerance is evaluated at A
            A = H + shift * pred.tolerance(A, eps, n)
        M["A"][0][i] = A
        assert _judge(data)["compounding_independence"].passed is ok


@pytest.mark.parametrize("part, description, perturb, must_fail", WRONG, ids=[w[1] for w in WRONG])
def test_wrong_measurement_fails_on_the_committed_result(part, description, perturb, must_fail):
    result = committed(CLAIM)
    if PART not in result["data"]:
        pytest.fail("results/composition.json has no compounding part: run `sandbox run composition --quick`")
    wrong_measurement(CLAIM, part, perturb, must_fail, result=result)


# --- measurement (trains a tiny decoder) and the figure panel ---------------------------------------------
TINY = SimpleNamespace(train_k=3, test_k=5, chain_steps=100, chain_test_size=50, chain_seeds=2, seeds=3)


@pytest.mark.claim
def test_measure_is_seeded_and_consistent():
    """A tiny run: the same seed gives the same numbers, another seed others; the stored A_hat is the
    product of the stored eps; free-running = all teacher-forced right (greedy decoding)."""
    a = as_json(compounding.measure(TINY, Keys(0).sub(PART), None))
    b = as_json(compounding.measure(TINY, Keys(0).sub(PART), None))
    c = as_json(compounding.measure(TINY, Keys(1).sub(PART), None))
    assert a == b and a["A_hat"] != c["A_hat"]
    for A_r, T_r, H_r, E_r in zip(a["A"], a["tf_all"], a["A_hat"], a["eps"]):
        assert max(abs(x - y) for x, y in zip(A_r, T_r)) <= compounding.DECODE_TOL
        assert H_r == pytest.approx([pred.chain_success(e[:k + 1]) for k, e in enumerate(E_r, start=1)])
    types = np.asarray(a["types"])                                           # (R, K, 4)
    assert (types.sum(axis=2) == TINY.chain_test_size * (np.arange(1, TINY.test_k + 1) + 1)).all()


def test_plot_compounding_from_data_alone():
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    compounding.plot_compounding(ax, _synthetic())
    assert ax.get_yscale() == "log" and len(ax.get_lines()) >= 3
    plt.close(fig)


def test_report_markdown_from_data_alone():
    md = compounding.report_markdown(_synthetic())
    rows = md.splitlines()
    assert len(rows) == 2 + CFG.test_k and rows[2].startswith("| 1 (trained) | 4 / 3 / 1.33 | 1.000 | 1.000 |")
    assert "local / propagated / restored" in rows[0]


def test_spec_is_hashable_and_steps_log_evenly():
    assert hash(compounding.spec_for(CFG)) == hash(compounding.spec_for(CFG))
    for steps in (1000, 1500, 3000, 8000, 250, 7):
        spec = compounding.spec_for(SimpleNamespace(**{**vars(CFG), "chain_steps": steps}))
        assert spec.steps == steps and steps % spec.log_every == 0
