"""Tests of `length_generalization`: positional encodings, the transformer, the algorithmic tasks,
the proofs and predictions, the judges on wrong measurements, the quick preset end to end, and bad
input."""
from __future__ import annotations

import dataclasses
import functools
import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pytest
from claim_asserts import assert_checks_pass, assert_covered, committed, judge_tests, rejudge, wrong_measurement

import experiments.length_generalization as lg
from experiments.length_generalization import runs
from experiments.length_generalization.parts import even_pairs, nope, sampler, table
from proofs.length_generalization import (
    prove_even_pairs_multiset_probability,
    prove_order_statistic_mean,
    prove_order_statistic_variance,
    prove_relative_offset_factorisation,
    prove_rope_relative,
)
from theory.engine.keys import Keys
from theory.errors import SandboxError
from theory.harness import config as config_lib
from theory.harness.results import as_json
from theory.harness.runner import build_config, run_claim
from theory.models import positional, transformer
from theory.models.positional import PEConfig
from theory.predictions import length_generalization as pred
from theory.tasks import algorithmic

CLAIM = "length_generalization"
KEY = jax.random.PRNGKey(0)


# --- proofs and predictions ------------------------------------------------------------------------
@pytest.mark.parametrize("prove", [prove_order_statistic_mean, prove_order_statistic_variance,
                                   prove_even_pairs_multiset_probability,
                                   prove_relative_offset_factorisation, prove_rope_relative])
def test_proofs(prove):
    assert prove() is True


def test_order_statistic_formulas_match_exact_sums():
    for L, n in ((9, 4), (16, 7)):
        for k in range(1, n + 1):
            m, v = pred.order_stat_moments_exact(k, n, L)
            assert float(m) == pytest.approx(pred.order_stat_mean(k, n, L), abs=1e-12)
            assert float(v) == pytest.approx(pred.order_stat_var(k, n, L), abs=1e-12)
            assert pred.order_stat_moments_closed_form(k, n, L) == (m, v)


def test_permutation_bound_by_enumeration():
    """Brute force over all strings: best accuracy from (multiset) or (multiset, x_n)."""
    import itertools
    for n in (3, 4, 6):
        for read in ("encoder", "decoder"):
            groups: dict = {}
            for x in itertools.product((0, 1), repeat=n):
                info = (sum(x),) if read == "encoder" else (sum(x), x[-1])
                groups.setdefault(info, []).append(x[0] == x[-1])
            best = sum(max(sum(g), len(g) - sum(g)) for g in groups.values()) / 2 ** n
            assert pred.even_pairs_permutation_bound(n, read) == pytest.approx(best, abs=1e-12)


# --- positions ------------------------------------------------------------------------------------------
def test_sample_positions_sorted_distinct_and_padded():
    for n in (1, 5, 12):
        p = np.asarray(positional.sample_positions(jax.random.fold_in(KEY, n), n, 12, 50))
        assert np.all(np.diff(p[:n]) > 0) and p[:n].min() >= 0 and p[:n].max() < 50
        assert np.all(p[n:] >= 50)


def test_sampler_moments_small():
    """Mean and variance of each order statistic within 4 s.e. (L = 30, n = 6, 20000 draws)."""
    n, L, draws = 6, 30, 20_000
    mean, var, _ = sampler.sampler_moments(KEY, n, L, draws)
    k = np.arange(1, n + 1)
    se = np.sqrt(pred.order_stat_var(k, n, L) / draws)
    assert np.all(np.abs(mean - pred.order_stat_mean(k, n, L)) < 4 * se)
    assert np.all(np.abs(var / pred.order_stat_var(k, n, L) - 1) < 4 * np.sqrt(2 / draws))


def test_sampler_uniform_over_subsets():
    """Every 2-subset of {0..4} appears with frequency 1/10."""
    p = jax.vmap(lambda k: positional.sample_positions(k, 2, 2, 5))(jax.random.split(KEY, 20_000))
    codes = np.asarray(p[:, 0] * 5 + p[:, 1])
    freq = np.array([np.mean(codes == a * 5 + b) for a in range(5) for b in range(a + 1, 5)])
    assert np.all(np.abs(freq - 0.1) < 4 * math.sqrt(0.1 * 0.9 / 20_000))


def test_positions_per_batch_shared_per_sequence_not():
    pe = PEConfig("sin_cos", randomized=True, max_len=100)
    pb = np.asarray(positional.positions(dataclasses.replace(pe, per="batch"), KEY, 5, 8, batch=4))
    ps = np.asarray(positional.positions(pe, KEY, 5, 8, batch=4))
    det = np.asarray(positional.positions(dataclasses.replace(pe, randomized=False), KEY, 5, 8, batch=4))
    assert pb.shape == ps.shape == det.shape == (4, 8)
    assert np.all(pb == pb[:1]) and not np.all(ps == ps[:1])
    assert np.all(np.diff(ps[:, :5], axis=1) > 0) and np.all(ps[:, 5:] >= 100)
    assert np.all(det == np.arange(8)[None, :])


def test_positions_traced_switch_matches_static():
    """A traced `randomized` (one compiled sweep for both variants) selects exactly the static result."""
    pe = PEConfig("sin_cos", max_len=64)
    f = jax.jit(lambda r: positional.positions(pe, KEY, 5, 8, batch=3, randomized=r))
    for r in (False, True):
        np.testing.assert_array_equal(np.asarray(f(jnp.asarray(r))),
                                      np.asarray(positional.positions(pe, KEY, 5, 8, batch=3, randomized=r)))
    one = positional.positions(dataclasses.replace(pe, randomized=True), KEY, 5, 8)
    assert one.shape == (8,) and int(one[4]) < 64 and int(one[5]) >= 64


def test_positions_by_config():
    det = positional.positions(PEConfig("rope"), KEY, 4, 6)
    rnd = positional.positions(PEConfig("rope", randomized=True, max_len=64), KEY, 4, 6)
    assert det.tolist() == list(range(6))
    assert np.all(np.diff(np.asarray(rnd[:4])) > 0) and int(rnd[3]) < 64


def test_sampler_rejects_too_long():
    with pytest.raises(SandboxError):
        positional.sample_positions(KEY, 3, 10, 5)


def test_sin_cos_reference():
    p = jnp.array([0, 1, 7, 300])
    got = np.asarray(positional.sin_cos(p, 6))
    ref = np.zeros((4, 6))
    for t, pos in enumerate([0, 1, 7, 300]):
        for i in range(3):
            w = 1e4 ** (-2 * i / 6)
            ref[t, 2 * i], ref[t, 2 * i + 1] = math.sin(pos * w), math.cos(pos * w)
    np.testing.assert_allclose(got, ref, atol=2e-5)


def test_rope_scores_depend_on_offsets_only():
    q = jax.random.normal(KEY, (2, 5, 8))
    k = jax.random.normal(jax.random.fold_in(KEY, 1), (2, 5, 8))
    p = jnp.array([0, 3, 4, 9, 20])
    s = jnp.einsum("hid,hjd->hij", positional.rope(q, p), positional.rope(k, p))
    s_shift = jnp.einsum("hid,hjd->hij", positional.rope(q, p + 100), positional.rope(k, p + 100))
    np.testing.assert_allclose(np.asarray(s), np.asarray(s_shift), atol=1e-3)
    assert not np.allclose(np.asarray(s), np.asarray(jnp.einsum("hid,hjd->hij", q, k)), atol=1e-2)


def test_relative_bias_matches_naive_and_is_shift_invariant():
    ks = jax.random.split(KEY, 5)
    H, T, d, D = 2, 6, 4, 8
    q, k = jax.random.normal(ks[0], (H, T, d)), jax.random.normal(ks[1], (H, T, d))
    W_R, u, v = (jax.random.normal(ks[2], (H, D, d)), jax.random.normal(ks[3], (H, d)),
                 jax.random.normal(ks[4], (H, d)))
    p = jnp.array([0, 2, 3, 50, 51, 400])
    fast = positional.relative_bias(q, k, p, W_R, u, v)
    np.testing.assert_allclose(np.asarray(fast), np.asarray(positional.relative_bias_naive(
        q, k, p, W_R, u, v)), atol=1e-4)
    np.testing.assert_allclose(np.asarray(fast), np.asarray(positional.relative_bias(
        q, k, p + 1000, W_R, u, v)), atol=2e-3)


def test_alibi_reference():
    p = jnp.array([0, 2, 7])
    b = np.asarray(positional.alibi_bias(p, 2, causal=False))
    m = [2.0 ** -4, 2.0 ** -8]
    for h in range(2):
        for i in range(3):
            for j in range(3):
                ref = -m[h] * (abs(int(p[i]) - int(p[j])) - (0.5 if j < i else 0.0))
                assert b[h, i, j] == pytest.approx(ref, abs=1e-6)
    bc = np.asarray(positional.alibi_bias(p, 2, causal=True))
    assert bc[0, 2, 0] == pytest.approx(-m[0] * 7)


# --- transformer -----------------------------------------------------------------------------------------
def _np_forward(params, tokens, pos, pad, cfg, causal):
    """Naive numpy loop reference of transformer.forward (sin/cos, ReLU MLP, pre-LN)."""
    P = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params)
    T, D, H, d = len(tokens), cfg.d_model, cfg.n_heads, cfg.d_head

    def ln(x, g, b):
        return (x - x.mean()) / math.sqrt(((x - x.mean()) ** 2).mean() + 1e-5) * g + b

    x = np.array([P.W_E[t] * math.sqrt(D) + np.asarray(positional.sin_cos(jnp.array([p]), D))[0]
                  for t, p in zip(tokens, pos)])
    for l in range(cfg.n_layers):
        B = jax.tree_util.tree_map(lambda a, l=l: a[l], P.blocks)
        h = np.array([ln(x[i], B.ln1_g, B.ln1_b) for i in range(T)])
        out = np.zeros((T, D))
        for hh in range(H):
            for i in range(T):
                qi = h[i] @ B.W_Q[hh]
                s = []
                for jj in range(T):
                    ok = pad[jj] and (not causal or jj <= i)
                    s.append(qi @ (h[jj] @ B.W_K[hh]) / math.sqrt(d) if ok else -np.inf)
                a = np.exp(np.array(s) - max(s))
                a /= a.sum()
                out[i] += sum(a[jj] * (h[jj] @ B.W_V[hh]) for jj in range(T)) @ B.W_O[hh]
        x = x + out
        for i in range(T):
            hi = ln(x[i], B.ln2_g, B.ln2_b)
            x[i] = x[i] + np.maximum(hi @ B.W_in + B.b_in, 0) @ B.W_out + B.b_out
    return np.array([ln(x[i], P.lnf_g, P.lnf_b) @ P.W_U + P.b_U for i in range(T)])


@pytest.mark.parametrize("causal", [False, True])
def test_forward_matches_numpy_reference(causal):
    cfg = transformer.TransformerConfig(vocab=4, n_classes=3, d_model=8, n_heads=2, n_layers=2, d_ff=6)
    params = transformer.init(KEY, cfg)
    tokens, pos = jnp.array([0, 1, 1, 2, 3, 3]), jnp.array([0, 4, 9, 10, 11, 12])
    pad = tokens < 3
    got, acts = transformer.forward(params, tokens, pos, pad, cfg, causal)
    ref = _np_forward(params, np.asarray(tokens), np.asarray(pos), np.asarray(pad), cfg, causal)
    np.testing.assert_allclose(np.asarray(got)[:4], ref[:4], atol=1e-4)
    assert acts.residuals.shape == (3, 6, 8) and acts.pattern.shape == (2, 2, 6, 6)
    np.testing.assert_allclose(np.asarray(acts.pattern.sum(-1)), 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", positional.KINDS)
def test_forward_at_read_rows_equals_the_full_logits(kind):
    """forward(read=...) (the last block at the read rows only) gives the full forward's logits there."""
    cfg = transformer.TransformerConfig(vocab=5, n_classes=3, d_model=16, n_heads=2, n_layers=2, d_ff=8,
                                        pe=PEConfig(kind=kind, max_len=64))
    params = transformer.init(KEY, cfg)
    params = params._replace(blocks=params.blocks._replace(u=jnp.ones_like(params.blocks.u)))
    t, pos = jnp.array([0, 1, 2, 1, 4, 4, 3]), jnp.array([0, 3, 4, 9, 20, 21, 22])
    pad, read = jnp.arange(7) < 5, jnp.array([4, 2, 4])
    for causal in (False, True):
        full, acts = transformer.forward(params, t, pos, pad, cfg, causal)
        rows, none = transformer.forward(params, t, pos, pad, cfg, causal, read=read)
        assert rows.shape == (3, 3) and none is None and acts is not None
        np.testing.assert_allclose(np.asarray(rows), np.asarray(full[read]), rtol=1e-5, atol=1e-5)


def test_layer_norm_gradient_is_autodiff_of_its_formula():
    """The written-out VJP of `standardize` (theory/models/transformer.py) against autodiff of the formula."""
    x = jax.random.normal(KEY, (5, 8)) * 3.0 + 1.0
    g, b = jax.random.normal(jax.random.fold_in(KEY, 1), (8,)), jax.random.normal(jax.random.fold_in(KEY, 2), (8,))
    w = jax.random.normal(jax.random.fold_in(KEY, 3), (5, 8))

    def plain(x, g, b):
        mu = jnp.mean(x, axis=-1, keepdims=True)
        return (x - mu) / jnp.sqrt(jnp.mean((x - mu) ** 2, axis=-1, keepdims=True) + 1e-5) * g[None, :] + b[None, :]

    ours = jax.grad(lambda *a: jnp.sum(w * transformer.layer_norm(*a)), argnums=(0, 1, 2))(x, g, b)
    ref = jax.grad(lambda *a: jnp.sum(w * plain(*a)), argnums=(0, 1, 2))(x, g, b)
    np.testing.assert_array_equal(np.asarray(transformer.layer_norm(x, g, b)), np.asarray(plain(x, g, b)))
    for a, r in zip(ours, ref):
        np.testing.assert_allclose(np.asarray(a), np.asarray(r), rtol=1e-5, atol=1e-5)


def test_none_is_sin_cos_with_zero_gain():
    task = algorithmic.get("even_pairs")
    c_sc, c_none = lg.Config().model(task, "sin_cos"), lg.Config().model(task, "none")
    params = transformer.init(KEY, c_sc)
    t = jnp.array([0, 1, 0, 2, 3])
    pos, pad = jnp.arange(5), t < 3
    a = transformer.forward(params, t, pos, pad, c_sc, False, 0.0)[0]
    b = transformer.forward(params, t, pos, pad, c_none, False)[0]
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("kind", positional.KINDS)
def test_causal_prefix_and_padding_independence(kind):
    """Causal: changing a later token leaves earlier logits unchanged; padding content never matters."""
    cfg = transformer.TransformerConfig(vocab=5, n_classes=2, d_model=16, n_heads=2, n_layers=2,
                                        d_ff=8, pe=PEConfig(kind=kind, max_len=64))
    params = transformer.init(KEY, cfg)
    params = params._replace(blocks=params.blocks._replace(
        u=jnp.ones_like(params.blocks.u), v=jnp.ones_like(params.blocks.v)))
    t = jnp.array([0, 1, 2, 1, 4, 4])
    pos, pad = jnp.arange(6), jnp.arange(6) < 4
    f = jax.jit(lambda tt, c: transformer.forward(params, tt, pos, pad, cfg, c)[0], static_argnums=1)
    base = f(t, True)
    np.testing.assert_allclose(np.asarray(f(t.at[3].set(0), True)[:3]), np.asarray(base[:3]), atol=1e-5)
    assert not np.allclose(np.asarray(f(t.at[3].set(0), True)[3]), np.asarray(base[3]), atol=1e-5)
    for c in (False, True):
        np.testing.assert_allclose(np.asarray(f(t.at[4:].set(0), c)[:4]), np.asarray(f(t, c)[:4]),
                                   atol=1e-5)


def test_noncausal_nope_is_permutation_equivariant():
    """Zero up to float32 rounding without positions; the same model with sin/cos changes its logits."""
    cfg = lg.Config()
    assert nope.permutation_gap(cfg, KEY) < nope.PERMUTATION_TOL
    assert nope.permutation_gap(cfg, KEY, "sin_cos") > 100 * nope.PERMUTATION_TOL


def test_bad_model_config():
    with pytest.raises(SandboxError):
        transformer.TransformerConfig(vocab=4, n_classes=2, d_model=10, n_heads=4).validate()
    with pytest.raises(SandboxError):
        PEConfig(kind="nope").validate()
    with pytest.raises(SandboxError):
        PEConfig(kind="none", randomized=True).validate()


def test_eval_shapes():
    assert runs.eval_shapes((5, 10, 20, 30, 40, 60, 80, 100, 150, 200), 40) == (
        (40, (5, 10, 20, 30, 40)), (100, (60, 80, 100)), (200, (150, 200)))
    assert runs.eval_shapes((5, 40, 50, 60, 100, 300, 500), 40) == (
        (40, (5, 40)), (50, (50,)), (100, (60, 100)), (500, (300, 500)))
    assert runs.eval_shapes((41, 20), 40) == ((40, (20,)), (41, (41,)))


def test_evaluate_at_shapes_equals_exact_lengths(name="reverse_string", causal=True):
    """`runs.evaluate` (lengths padded to a few shapes, one lax.map per shape) gives the accuracies of
    evaluating every length in its own exact shape (the same sequences, positions and logits)."""
    cfg = dataclasses.replace(lg.Config(), d_model=16, n_heads=2, d_ff=16, n_layers=1, eval_batch=16, eval_chunk=8)
    lengths = (3, 12, 30)
    spec = dataclasses.replace(runs.spec_for(cfg, name, "sin_cos", 10, lengths), train_max_len=12)
    task, mcfg = algorithmic.get(name), spec.model
    params = transformer.init(KEY, mcfg)
    k_eval = jax.random.fold_in(KEY, 5)

    @functools.partial(jax.jit, static_argnums=(0,))
    def exact(n, r):
        def one(k1):
            k_s, k_p = jax.random.split(k1)
            s, lay = runs.sequences(task, k_s, n, n, causal, 1)
            pos = positional.positions(mcfg.pe, k_p, lay.n_tokens[0], algorithmic.seq_len(task, n), randomized=r)
            return runs.per_sequence(params, mcfg, s, lay, pos[None, :], causal, 1.0)[1][0]
        return jnp.mean(jax.vmap(one)(jax.random.split(jax.random.fold_in(k_eval, n), cfg.eval_batch)))

    got = jax.jit(jax.vmap(lambda r: runs.evaluate(params, k_eval, r, causal, 1.0, spec=spec)))(
        jnp.asarray([False, True]))                                                  # (2, E)
    ref = [[float(exact(n, jnp.asarray(r))) for n in lengths] for r in (False, True)]
    np.testing.assert_allclose(np.asarray(got), ref, atol=1e-6)


# --- tasks --------------------------------------------------------------------------------------------
def _reference(name, x, n):
    """Naive python answers (list of classes)."""
    x = list(x[:n])
    if name == "even_pairs":
        pairs = sum(1 for a, b in zip(x, x[1:]) if a != b)
        return [int(pairs % 2 == 0)]
    if name == "parity_check":
        return [sum(x) % 2]
    if name == "cycle_navigation":
        return [sum({0: 0, 1: 1, 2: -1}[s] for s in x) % 5]
    if name == "modular_arithmetic":
        expr = "".join(str(s) if s < 5 else {5: "+", 6: "-", 7: "*"}[s] for s in x)
        return [eval(expr) % 5]  # digits and + - * only, built above
    if name == "reverse_string":
        return x[::-1]
    if name == "duplicate_string":
        return x + x
    if name == "missing_duplicate_string":
        if n == 1:
            return [1]
        half = n // 2
        w = x[:2 * half]
        hole = w.index(2)
        other = (hole + half) % (2 * half)
        assert all(w[i] == w[(i + half) % (2 * half)] for i in range(2 * half) if 2 not in
                   (w[i], w[(i + half) % (2 * half)]))
        assert x[2 * half:] == [3] * (n % 2)
        return [w[other]]
    if name == "bucket_sort":
        return sorted(x)
    if name == "stack_manipulation":
        s = next((i for i, v in enumerate(x) if v >= 2), n)
        stack = x[:s] if s > 0 else x[:1]
        s = max(s, 1)
        for a in x[s:]:
            if a == 2:
                if stack:
                    stack.pop()
            else:
                stack.append(a - 3)
        return stack[::-1] + [2]
    if name == "binary_addition":
        if 2 not in x:
            a = int("".join(map(str, x[::-1])), 2)
            b = 0
        else:
            i = x.index(2)
            a = int("".join(map(str, x[:i][::-1])), 2)
            b = int("".join(map(str, x[i + 1:][::-1])), 2)
        bits = [int(c) for c in bin(a + b)[2:][::-1]] if a + b else []
        return bits + [2]
    raise AssertionError(name)


@pytest.mark.parametrize("name", list(algorithmic.TASKS))
def test_task_matches_naive_reference(name):
    task, N = algorithmic.get(name), 11
    sample = jax.jit(jax.vmap(lambda k, n: task.sample(k, n, N)))
    ns = jnp.tile(jnp.arange(1, N + 1), 6)
    s = sample(jax.random.split(jax.random.fold_in(KEY, len(name)), ns.shape[0]), ns)
    for i in range(ns.shape[0]):
        n = int(s.n[i])
        x, y, m = np.asarray(s.x[i]), np.asarray(s.y[i]), np.asarray(s.y_mask[i])
        assert x.max() < task.n_symbols and np.all(x[n:] == 0)
        ref = _reference(name, x.tolist(), n)
        assert y[m].tolist() == ref, (name, x[:n].tolist(), y[m].tolist(), ref)
        assert m.sum() <= task.out_len(N) and y.max() < task.n_classes


def test_stack_manipulation_worked_example():
    """The docstring example, run through the scan directly."""
    # 0 1 1 0 PUSH1 POP POP -> 1 1 0 END
    x = [0, 1, 1, 0, 4, 2, 2]
    assert _reference("stack_manipulation", x, 7) == [1, 1, 0, 2]


def test_layout_encoder_and_decoder():
    task = algorithmic.get("reverse_string")
    s = task.sample(KEY, 3, 5)
    enc, dec = algorithmic.layout(task, s, 5, False), algorithmic.layout(task, s, 5, True)
    E, P = task.n_symbols, task.n_symbols + 1
    assert enc.tokens.tolist() == s.x[:3].tolist() + [E, E, E] + [P] * 4
    assert enc.pad_mask.tolist() == [True] * 6 + [False] * 4
    assert enc.read.tolist() == [3, 4, 5, 6, 7] and dec.read.tolist() == [2, 3, 4, 5, 6]


def test_task_determinism():
    task = algorithmic.get("binary_addition")
    a, b = task.sample(KEY, 9, 12), task.sample(KEY, 9, 12)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))


# --- bad input -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("override", ["steps=0", "batch=-1", "sweep_chunk=-1", "task=sorting", "per=step",
                                      "table_pes=(none,)", "eval_lengths=(10,3000)", "d_model=30",
                                      "nope_lengths=(50,)", "sampler_n=4096", "log_every=7",
                                      "table_in_dist_lengths=(41,)", "table_eval_batch=0"])
def test_bad_config_rejected_before_training(override, tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "train_and_eval", lambda *a, **k: pytest.fail("trained on bad input"))
    with pytest.raises(SandboxError):
        build_config(CLAIM, "quick", [override])
    with pytest.raises(SandboxError):
        run_claim(CLAIM, "quick", overrides=[override], out=tmp_path)
    assert not (tmp_path / "results" / f"{CLAIM}.json").exists()


# --- judges on wrong measurements (no training: the committed quick result) -------------------------
def _unsorted_sampler(P, M):
    """Positions left unsorted: every slot is one uniform draw from {0..L-1}."""
    L, n = P["L"], P["n"]
    M["mean"] = [(L - 1) / 2] * n
    M["var"] = [(L ** 2 - 1) / 12] * n
    M["m4"] = [(L ** 2 - 1) * (3 * L ** 2 - 7) / 240] * n
    return M


def _pmf_shifted(P, M):
    """The pmf summed over {1..L} instead of {0..L-1}: every exact mean one too large."""
    M["exact"] = [[str(Fraction(m) + 1), v] for m, v in M["exact"]]
    return M


def _randomization_off(P, M):
    """The randomized flag ignored: with paired seeds the randomized run is the sin/cos run."""
    acc = np.asarray(M["acc"])
    acc[1] = acc[0]
    M["acc"] = acc.tolist()
    return M


def _sincos_plateau(P, M):
    """sin/cos never leaves its loss plateau: chance at every length."""
    acc = np.asarray(M["acc"])
    acc[0] = 0.5
    M["acc"] = acc.tolist()
    return M


def _sincos_extrapolates(P, M):
    """sin/cos generalizes beyond the training range as well as the randomized encoding."""
    acc = np.asarray(M["acc"])
    beyond = np.asarray(M["lengths"]) > P["train_max_len"]
    acc[0][:, beyond] = acc[1][:, beyond]
    M["acc"] = acc.tolist()
    return M


def _randomized_decays_early(P, M):
    """The randomized encoding holds at 60 but is at chance from 150 on (the bound at 200 must see it)."""
    acc = np.asarray(M["acc"])
    acc[1][:, np.asarray(M["lengths"]) >= 150] = 0.5
    M["acc"] = acc.tolist()
    return M


def _noncausal_sees_order(P, M):
    """Order leaks into the non-causal model (it learns the task as the causal one does)."""
    acc = np.asarray(M["acc"])
    acc[1] = acc[0]
    M["acc"] = acc.tolist()
    return M


def _causal_mask_dropped(P, M):
    """The causal mask dropped: the causal model is the non-causal one."""
    acc = np.asarray(M["acc"])
    acc[0] = acc[1]
    M["acc"] = acc.tolist()
    return M


def _positions_left_on(P, M):
    """The NoPE model keeps its sin/cos positions: its permutation gap is the control's."""
    M["permutation_gap"] = M["permutation_gap_sin_cos"]
    return M


WRONG = [
    ("sampler", "positions left unsorted", _unsorted_sampler,
     ["sampler_mean_max_abs_z", "sampler_var_max_abs_z"]),
    ("sampler", "pmf over {1..L}", _pmf_shifted, ["sampler_formula_exact"]),
    ("even_pairs", "randomization switched off", _randomization_off,
     ["randomized_at_60", "randomized_at_200", "gap_60_to_200_min"]),
    ("even_pairs", "sin/cos stuck at chance", _sincos_plateau, ["sincos_in_distribution_min"]),
    ("even_pairs", "sin/cos extrapolates", _sincos_extrapolates,
     ["sincos_at_60", "sincos_at_80", "sincos_at_100", "sincos_at_150", "sincos_at_200", "gap_60_to_200_min"]),
    ("even_pairs", "randomized decays early (fine at 60, at chance by 200)", _randomized_decays_early,
     ["randomized_at_200", "gap_60_to_200_min"]),
    ("nope", "non-causal model sees order", _noncausal_sees_order, ["nope_noncausal_below_bound"]),
    ("nope", "causal mask dropped", _causal_mask_dropped, ["nope_causal_above_bound"]),
    ("nope", "positions left on", _positions_left_on, ["nope_noncausal_permutation_invariance"]),
]


test_wrong_measurement_fails, test_every_evidence_check_can_fail = judge_tests(CLAIM, WRONG)


def test_even_pairs_judge_bounds_200_and_reports_beyond():
    """Full-preset lengths: the 0.65 bound is applied at exactly 200 and the gap over 60..200; the
    decay at 300 and 500 (0.60, 0.55: below 0.65, and a gap under 0.2) is reported, not judged."""
    cfg = lg.Config.full()
    E = np.asarray(cfg.lengths)
    rnd = np.interp(E, [40, 60, 200, 300, 500], [0.95, 0.92, 0.72, 0.60, 0.55])
    sc = np.where(E <= 40, 1.0, 0.5)
    acc = np.stack([np.tile(sc, (3, 1)), np.tile(rnd, (3, 1))])                     # (2, S, E)
    M = {"lengths": list(cfg.lengths), "acc": acc.tolist(), "decay": even_pairs.decay(cfg.lengths, acc)}
    checks = {c.name: c for c in even_pairs.judge(cfg, even_pairs.predict(cfg), M)}
    assert checks["randomized_at_200"].measured == pytest.approx(0.72)
    assert checks["gap_60_to_200_min"].measured == pytest.approx(0.22)
    assert all(c.passed for c in checks.values()), [n for n, c in checks.items() if not c.passed]
    assert not any(n.startswith("randomized_at_") and n not in ("randomized_at_60", "randomized_at_200")
                   for n in checks)
    assert M["decay"]["lengths"] == [300, 500]
    assert M["decay"]["randomized_sin_cos"] == pytest.approx([0.60, 0.55])
    md = lg.report_markdown({"data": {"even_pairs": {"measured": M}}})
    assert "300: 0.600" in md and "500: 0.550" in md and "not judged" in md


def test_sampler_measure_deterministic_and_seeded():
    """Keys(0) gives the committed numbers again; Keys(1) other numbers."""
    cfg = lg.Config.quick()
    a = as_json(sampler.measure(cfg, Keys(0).sub("sampler"), None))
    c = as_json(sampler.measure(cfg, Keys(1).sub("sampler"), None))
    assert a == committed(CLAIM)["data"]["sampler"]["measured"]         # computed in another process
    assert a["mean"] != c["mean"] and a["exact"] == c["exact"]


# --- the task table (full preset only): judged on a synthetic table, no training --------------------
TABLE_CFG = dataclasses.replace(lg.Config(), table_tasks=("parity_check", "reverse_string"), table_seeds=2)


def _synthetic_table_result() -> dict:
    """A table result a correct run could give: parity near chance, reverse_string helped by randomization."""
    cfg = TABLE_CFG
    n_in, n_out = len(cfg.table_in_dist_lengths), len(cfg.table_eval_lengths)

    def cell(in_dist, det, rnd):          # (2, S, E): deterministic, randomized
        one = lambda out: [[in_dist] * n_in + [out + 0.01 * s] * n_out for s in range(cfg.table_seeds)]
        return [one(det), one(rnd)]
    M = {"lengths": list(cfg.table_in_dist_lengths + cfg.table_eval_lengths),
         "acc": {"parity_check": {"sin_cos": cell(0.52, 0.50, 0.51)},
                 "reverse_string": {"sin_cos": cell(1.0, 0.60, 0.90)}}}
    return {"config": config_lib.describe(cfg),
            "data": {"table": {"predicted": as_json(table.predict(cfg)), "measured": M}}}


def _table_randomization_off(P, M):
    for cells in M["acc"].values():
        for acc in cells.values():
            acc[1] = acc[0]
    return M


def _parity_solved(P, M):
    for acc in M["acc"]["parity_check"].values():
        acc[1] = [[1.0] * len(M["lengths"]) for _ in acc[1]]
    return M


def _nothing_learned(P, M):
    """No task learned in distribution (deterministic in-distribution accuracy at chance): no average
    gain over learned tasks exists, so the gain check cannot pass."""
    n_in = len(P["in_dist_lengths"])
    for cells in M["acc"].values():
        for acc in cells.values():
            for run in acc[0]:
                run[:n_in] = [0.5] * n_in
    return M


def _gain_only_on_unlearned(P, M):
    """Randomization hurts every learned task and helps only the unlearned parity row: the average
    over all tasks is positive, the judged average over learned tasks is not."""
    for acc in M["acc"]["reverse_string"].values():
        acc[1] = [[1.0] * len(P["in_dist_lengths"]) + [0.55] * len(P["eval_lengths"]) for _ in acc[1]]
    for acc in M["acc"]["parity_check"].values():
        acc[1] = [[0.52] * len(P["in_dist_lengths"]) + [0.95] * len(P["eval_lengths"]) for _ in acc[1]]
    return M


TABLE_WRONG = [
    ("table", "randomization switched off", _table_randomization_off, ["table_randomized_gain_positive"]),
    ("table", "no task learned in distribution", _nothing_learned, ["table_randomized_gain_positive"]),
    ("table", "gain only on a task not learned in distribution", _gain_only_on_unlearned,
     ["table_randomized_gain_positive", "table_parity_check_near_chance"]),
    ("table", "parity solved beyond the training lengths", _parity_solved, ["table_parity_check_near_chance"]),
]


def test_table_judge_passes_a_correct_table_and_fails_wrong_ones():
    result = _synthetic_table_result()
    checks = rejudge(CLAIM, result, "table")
    assert list(checks) == ["table_randomized_gain_positive", "table_parity_check_near_chance"]
    assert all(c.passed for c in checks.values())
    for part, _, perturb, must_fail in TABLE_WRONG:
        wrong_measurement(CLAIM, part, perturb, must_fail, result=result)
    assert_covered(CLAIM, TABLE_WRONG, result={"checks": [c.to_json() for c in checks.values()]})


def test_table_rows_figure_and_markdown():
    """Rows, the six-panel figure and the Markdown table from a result's data alone."""
    result = _synthetic_table_result()
    P, M = result["data"]["table"]["predicted"], result["data"]["table"]["measured"]
    rows = table.rows(P, M)
    assert [r["task"] for r in rows] == ["parity_check", "reverse_string"]
    r = rows[1]
    assert r["det_max"] == pytest.approx(61.0) and r["rnd_mean"] == pytest.approx(90.5)
    assert r["det_in_dist"] == pytest.approx(100.0)
    assert [row["learned"] for row in rows] == [False, True]          # parity: 52% in distribution
    assert table.gains(rows)[0] == pytest.approx(np.mean([52.0 - 51.0, 91.0 - 61.0]))
    assert table.gains(table.learned(rows))[0] == pytest.approx(91.0 - 61.0)
    assert table.gains([]) == (None, None)
    md = lg.report_markdown(result).splitlines()
    assert sum(line.startswith(("| parity_check |", "| reverse_string |")) for line in md) == 2
    assert any("not learned in distribution" in line for line in md if line.startswith("| parity_check |"))
    assert any("+30.0 points (max over seeds)" in line and "over the 1 tasks learned" in line for line in md)
    assert not any("paper det" in line for line in md) and lg.report_markdown({"data": {}}) == ""
    data = {**committed(CLAIM)["data"], "table": result["data"]["table"]}
    fig = lg.plot({"data": data})
    assert len([a for a in fig.axes if a.get_visible()]) >= 6
    plt.close(fig)


# --- training (tiny) and the claim, quick preset -------------------------------------------------------
TINY = dataclasses.replace(lg.Config(), steps=4, nope_steps=4, batch=4, d_model=8, n_heads=2, d_ff=8,
                           log_every=2, eval_batch=4, eval_chunk=4, eval_lengths=(3, 50), nope_lengths=(3,),
                           table_tasks=("parity_check", "binary_addition"), table_steps=4, table_seeds=2,
                           table_eval_lengths=(41, 45))


@pytest.mark.claim
def test_training_deterministic_and_seeded():
    """The even_pairs measurement: Keys(0) twice gives equal numbers, Keys(1) other numbers."""
    a = as_json(even_pairs.measure(TINY, Keys(0).sub("even_pairs"), None))
    b = as_json(even_pairs.measure(TINY, Keys(0).sub("even_pairs"), None))
    c = as_json(even_pairs.measure(TINY, Keys(1).sub("even_pairs"), None))
    assert a == b
    assert a["loss"] != c["loss"]
    assert np.asarray(a["acc"]).shape == (2, 1, len(TINY.lengths))


@pytest.mark.claim
def test_table_measure_smoke():
    """The table part (full preset only) trains and evaluates on a tiny budget; its judge runs."""
    M = as_json(table.measure(TINY, Keys(0).sub("table"), None))
    assert M["lengths"] == [20, 40, 41, 45]
    for name in TINY.table_tasks:
        acc = np.asarray(M["acc"][name]["sin_cos"])                    # (variant, seed, length)
        assert acc.shape == (2, 2, 4) and np.all((0 <= acc) & (acc <= 1))
    checks = table.judge(TINY, as_json(table.predict(TINY)), M)
    assert [c.name for c in checks] == ["table_randomized_gain_positive", "table_parity_check_near_chance"]


QUICK_CHECKS = ["sampler_mean_max_abs_z", "sampler_var_max_abs_z", "sampler_formula_exact",
                "sincos_in_distribution_min", "sincos_at_60", "sincos_at_80", "sincos_at_100",
                "sincos_at_150", "sincos_at_200", "randomized_at_60", "randomized_at_200", "gap_60_to_200_min",
                "nope_noncausal_below_bound", "nope_causal_above_bound",
                "nope_noncausal_permutation_invariance"]
FULL_CHECKS = (QUICK_CHECKS[:4] + [f"sincos_at_{n}" for n in (60, 80, 100, 150, 200, 300, 500)]
               + QUICK_CHECKS[9:] + ["table_randomized_gain_positive", "table_parity_check_near_chance",
                                     "table_modular_arithmetic_near_chance"])
"""Every check of the full preset; the claim states that all of them pass (README). Nothing beyond
length 200 is judged for the randomized encoding: its accuracy at 300 and 500 is reported (`decay`)."""


@pytest.mark.claim
def test_quick_preset(tmp_path):
    result = run_claim(CLAIM, "quick", seed=0, out=tmp_path)
    checks = assert_checks_pass(result, QUICK_CHECKS)
    assert checks["sampler_formula_exact"]["error"] == 0.0
    assert (tmp_path / "figures" / f"{CLAIM}.png").stat().st_size > 10_000
    for part in ("even_pairs", "nope"):
        M = result["data"][part]["measured"]
        assert np.asarray(M["acc"]).shape == (2, 1, len(M["lengths"]))


def test_full_preset_checks_are_the_stated_ones():
    """FULL_CHECKS (what the slow test asserts) is exactly what the full preset's judges produce."""
    cfg = lg.Config.full()
    assert set(cfg.eval_lengths) >= {60, 200, 300, 500} and set(lg.Config.quick().eval_lengths) >= {60, 200}
    assert [n for n in cfg.lengths if n > even_pairs.FAR] == [300, 500]
    assert set(table.predict(cfg)["near_chance_tasks"]) == {"parity_check", "modular_arithmetic"}


@pytest.mark.slow
def test_full_preset(tmp_path):
    """The full preset: every stated check present and passing; 300 and 500 reported, not judged."""
    result = run_claim(CLAIM, "full", seed=0, out=tmp_path)
    assert_checks_pass(result, FULL_CHECKS)
    assert len(result["data"]["table"]["measured"]["acc"]) == len(algorithmic.TASKS)
    assert result["data"]["even_pairs"]["measured"]["decay"]["lengths"] == [300, 500]
