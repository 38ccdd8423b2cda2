"""Tests for the `arithmetic` claim's Parts 1 and 3 (Part 2, completion, is tested in
tests/test_matrix_completion.py): the addition formats against a plain-Python reference, the
coupled and Abacus id generators, the hand-set adder, the proofs, the config's refusals, the
judges fed wrong measurements and the quick preset."""
from __future__ import annotations

import copy
import dataclasses
import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from claim_asserts import assert_covered, committed, wrong_measurement

from experiments.arithmetic import Config, runs
from experiments.arithmetic.parts import construction, positions
from proofs.arithmetic import prove_carry_recursion, prove_digits_sum, prove_hat_readout
from theory.engine.keys import data_key
from theory.errors import SandboxError
from theory.harness.runner import run_claim
from theory.models import adder, positional, transformer
from theory.tasks import arithmetic

CLAIM = "arithmetic"
MY_PARTS = ("construction", "positions")
SYMBOL = {"+": arithmetic.PLUS, "=": arithmetic.EQ}


# --- the formats against a plain-Python reference ----------------------------------------------
def reference(a: int, b: int, fmt: str, shift: int):
    """(tokens, ids, answer digits, answer slots) of a + b written out by hand from the format's
    definition (theory/tasks/arithmetic.py; HanseulJo/position-coupling src/data/addition.py for the
    coupled ids, mcleish7/arithmetic abacus.py for the Abacus ids)."""
    sa, sb = str(a), str(b)
    n = max(len(sa), len(sb))
    c = str(a + b).zfill(n + 1)
    if fmt in ("plain", "reversed"):
        toks = list(sa) + ["+"] + list(sb) + ["="] + list(c if fmt == "plain" else c[::-1])
        ids = list(range(len(toks)))
    elif fmt in ("padded", "coupled"):
        toks = list(sa.zfill(n)) + ["+"] + list(sb.zfill(n)) + ["="] + list(c[::-1])
        if fmt == "padded":
            ids = list(range(len(toks)))
        else:
            start, end = shift, shift + n + 1
            ids = list(range(end - n, end + 1)) * 2 + list(range(end - 1, start - 1, -1))
    elif fmt == "abacus":
        toks = list(sa[::-1]) + ["+"] + list(sb[::-1]) + ["="] + list(c[::-1])
        ids, run = [], 0
        for t in toks:
            run = run + 1 if t.isdigit() else 0
            ids.append(run + shift if t.isdigit() else 0)
    else:                                                       # hints
        toks = []
        for s in (sa.zfill(n), sb.zfill(n)):
            for q, ch in enumerate(s):
                toks += [f"h{shift + n - 1 - q}", ch]
            toks.append("+" if not toks.count("+") else "=")
        for j, ch in enumerate(c[::-1]):
            toks += [f"h{shift + j}", ch]
        ids = list(range(len(toks)))
    eq = toks.index("=")
    slots = [i for i in range(eq + 1, len(toks)) if toks[i].isdigit()]
    ids_tok = [int(t) if t.isdigit() else SYMBOL.get(t, None) for t in toks]
    ids_tok = [arithmetic.HINT + int(t[1:]) if t.startswith("h") else v for t, v in zip(toks, ids_tok)]
    return ids_tok, ids, [int(toks[s]) for s in slots], slots


def digits(x: int, N: int) -> jnp.ndarray:
    return jnp.asarray([(x // 10 ** i) % 10 for i in range(N)], jnp.int32)


@pytest.mark.parametrize("fmt", arithmetic.FORMATS)
def test_layout_matches_reference(fmt):
    rng = random.Random(fmt)
    N = 7
    for _ in range(40):
        la, lb = rng.randint(1, N), rng.randint(1, N)
        a = rng.randint(0, 9) if la == 1 else rng.randint(10 ** (la - 1), 10 ** la - 1)
        b = rng.randint(0, 9) if lb == 1 else rng.randint(10 ** (lb - 1), 10 ** lb - 1)
        shift = {"coupled": rng.randint(1, 5), "abacus": rng.randint(0, 30), "hints": rng.randint(0, 3)}.get(fmt, 0)
        e = arithmetic.layout(fmt, digits(a, N), digits(b, N), la, lb, shift)
        toks, ids, ans, slots = reference(a, b, fmt, shift)
        L = len(toks)
        assert e.tokens.shape == (arithmetic.seq_len(fmt, N),)
        assert np.asarray(e.tokens[:L]).tolist() == toks, (a, b)
        assert np.all(np.asarray(e.tokens[L:]) == arithmetic.PAD)
        assert np.asarray(e.pad_mask).tolist() == [True] * L + [False] * (e.tokens.shape[0] - L)
        assert np.asarray(e.pos[:L]).tolist() == ids, (a, b, shift)
        k = len(ans)
        assert np.asarray(e.y_mask).tolist() == [True] * k + [False] * (N + 1 - k)
        assert np.asarray(e.y[:k]).tolist() == ans
        assert np.asarray(e.read[:k]).tolist() == [s - 1 for s in slots]


def test_id_generators_docstring_examples():
    sig = jnp.asarray([2, 1, 0, -1, 2, 1, 0, -1, 0, 1, 2, 3, -2])
    assert positional.coupled_ids(sig, 3, 1).tolist() == [2, 3, 4, 5, 2, 3, 4, 5, 4, 3, 2, 1, 0]
    index = jnp.asarray([1, 2, 0, 1, 2, 3, 0, 1, 2, 3])
    assert positional.abacus_ids(index, 0).tolist() == [1, 2, 0, 1, 2, 3, 0, 1, 2, 3]
    assert positional.abacus_ids(index, 7).tolist() == [8, 9, 0, 8, 9, 10, 0, 8, 9, 10]


def test_numbers_lengths_and_values():
    D, L = arithmetic.numbers(data_key(jax.random.PRNGKey(0)), (20000,), 1, 5, 6)
    D, L = np.asarray(D), np.asarray(L)
    counts = np.bincount(L, minlength=6)[1:]
    assert counts.min() > 20000 / 5 - 4 * np.sqrt(20000 * 0.16)          # uniform lengths, 4 s.d.
    lead = D[np.arange(D.shape[0]), L - 1]
    assert np.all(lead[L > 1] >= 1)                                      # l digits, no leading zero
    assert np.all(D[np.arange(6)[None, :] >= L[:, None]] == 0)
    one = D[L == 1, 0]
    assert set(one.tolist()) == set(range(10))                           # 1-digit numbers include 0


def test_sum_digits_is_the_sum():
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = (int(x) for x in rng.integers(0, 10 ** 9, 2))
        c = np.asarray(arithmetic.sum_digits(digits(a, 9), digits(b, 9)))
        assert sum(int(d) * 10 ** i for i, d in enumerate(c)) == a + b


def test_training_shifts():
    kw = dict(max_pos=17, n_hints=17, max_offset=30)
    k = data_key(jax.random.PRNGKey(1))
    ex = arithmetic.batch(k, "coupled", 4000, 1, 5, 5, train=True, **kw)
    n = np.asarray(jnp.max(jnp.where(ex.sig >= 0, ex.sig, -1), axis=1))        # top answer significance = n
    start = np.asarray(jnp.min(jnp.where(ex.pad_mask, ex.pos, 99), axis=1))
    assert start.min() == 1 and np.all(start <= 17 - n - 1) and np.any(start == 17 - n - 1)
    assert int(jnp.max(ex.pos)) == 17
    ab = arithmetic.batch(k, "abacus", 64, 1, 5, 5, train=True, **kw)
    first = np.asarray(ab.pos[:, 0])                                            # the least significant digit of a
    assert len(set(first.tolist())) == 1 and 1 <= first[0] <= 31                # one offset per batch
    offsets = {int(arithmetic.batch(jax.random.fold_in(k, i), "abacus", 2, 1, 5, 5, train=True, **kw).pos[0, 0])
               for i in range(60)}
    assert min(offsets) >= 1 and max(offsets) <= 31 and len(offsets) > 20
    test = arithmetic.batch(k, "coupled", 16, 10, 10, 10, train=False, **kw)
    assert int(jnp.min(jnp.where(test.pad_mask, test.pos, 99))) == 1


# --- Part 1 ------------------------------------------------------------------------------------
def test_significance_classes_and_violations():
    k = data_key(jax.random.PRNGKey(2))
    ex = arithmetic.batch(k, "coupled", 500, 1, 8, 8, train=True, max_pos=17, n_hints=1, max_offset=0)
    tokens, pos = np.asarray(ex.tokens), np.asarray(ex.pos)
    cls = construction.significance_classes(tokens)
    assert np.array_equal(np.where(cls == -1, -1, cls), np.where(np.asarray(ex.sig) == -1, -1, np.asarray(ex.sig)))
    assert construction.id_violations(tokens, pos) == 0
    absolute = np.broadcast_to(np.arange(tokens.shape[1]), tokens.shape)
    assert construction.id_violations(tokens, absolute) == 500          # absolute ids violate everywhere
    shifted = pos.copy()
    shifted[:, 0] += 1                                                   # one wrong id
    assert construction.id_violations(tokens, shifted) > 0


def test_adder_exact_on_every_two_digit_pair():
    a, b = np.meshgrid(np.arange(100), np.arange(100))
    A = jnp.asarray(np.stack([a.ravel() % 10, a.ravel() // 10], 1), jnp.int32)
    B = jnp.asarray(np.stack([b.ravel() % 10, b.ravel() // 10], 1), jnp.int32)
    la = jnp.asarray(np.where(a.ravel() >= 10, 2, 1))
    lb = jnp.asarray(np.where(b.ravel() >= 10, 2, 1))
    ex = jax.vmap(lambda x, y, p, q: arithmetic.layout("coupled", x, y, p, q, 3))(A, B, la, lb)
    params = adder.construct(arithmetic.vocab(1), 18, arithmetic.PLUS, adder.coupled_maps(18))
    assert float(construction.exact_match(params, ex)) == 1.0
    wrong = params._replace(W_O=params.W_O * jnp.asarray([1.0, 0.0])[:, None, None])   # no carry head
    assert float(construction.exact_match(wrong, ex)) < 0.9


def test_absolute_maps_match_coupled_at_their_layout():
    n0 = 4
    lay = arithmetic.layout("padded", jnp.zeros(n0, jnp.int32), jnp.zeros(n0, jnp.int32), n0, n0)
    cur, prev = adder.absolute_maps(np.asarray(lay.sig), 20)
    cp = arithmetic.layout("coupled", jnp.zeros(n0, jnp.int32), jnp.zeros(n0, jnp.int32), n0, n0, 1)
    ids = np.asarray(cp.pos)
    mc, mp = adder.coupled_maps(18)
    T = ids.shape[0]
    assert np.array_equal(cur[:T, :T], mc[ids][:, ids]) and np.array_equal(prev[:T, :T], mp[ids][:, ids])


@pytest.mark.parametrize("proof", [prove_carry_recursion, prove_digits_sum, prove_hat_readout])
def test_proofs(proof):
    proof()


# --- config ------------------------------------------------------------------------------------
def test_presets_validate():
    Config.quick().validate()
    Config.full().validate()


BAD = [
    ("train_digits", dict(train_digits=(5, 1))),
    ("test_digits", dict(test_digits=(4, 10))),
    ("schemes", dict(schemes=("coupled", "rope"))),
    ("schemes", dict(schemes=("coupled", "coupled"))),
    ("max_pos", dict(max_pos=11)),
    ("reveal_counts", dict(reveal_counts=(500, 300))),
    ("reveal_counts", dict(reveal_counts=(300, 10_000))),
    ("steps", dict(steps=150)),
    ("d_model", dict(d_model=100)),
    ("abacus_max_offset", dict(abacus_max_offset=-1)),
    ("construction_pairs", dict(construction_pairs=0)),
    ("completion_n_small", dict(completion_n_small=1)),
]


@pytest.mark.parametrize("field, change", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_config_refused(field, change):
    with pytest.raises(SandboxError, match=field):
        dataclasses.replace(Config.quick(), **change).validate()


# --- judges fed wrong measurements --------------------------------------------------------------
def _set(key, value):
    def perturb(P, M):
        M[key] = value
        return M
    return perturb


def _em(key, index, value):
    def perturb(P, M):
        a = np.asarray(M[key], float)
        a[index] = value
        M[key] = a.tolist()
        return M
    return perturb


def _scheme(name, length, value, seed=0):
    def perturb(P, M):
        i = M["schemes"].index(name)
        a = np.asarray(M["exact_match"], float)
        a[i, seed, M["lengths"].index(length)] = value
        M["exact_match"] = a.tolist()
        return M
    return perturb


WRONG = [
    ("construction", "an id shared across significances", _set("id_violations", [0, 0, 3] + [0] * 12),
     ["coupled_ids_by_significance"]),
    ("construction", "an id beyond max_pos", _set("largest_id", 18), ["coupled_ids_in_range"]),
    ("construction", "an id 0 on a real token", _set("smallest_id", 0), ["coupled_ids_in_range"]),
    ("construction", "one wrong sum at 12 digits", _em("coupled", 11, 0.9999), ["construction_coupled_exact"]),
    ("construction", "absolute slots that still add at 7 digits", _em("absolute", 6, 0.5),
     ["construction_absolute_beyond_layout"]),
    ("positions", "coupled fails at 10 digits in one seed", _scheme("coupled", 10, 0.6, seed=0),
     ["coupled_at_10"]),
    ("positions", "learned absolute generalizes to 6 digits", _scheme("learned", 6, 0.3, seed=0),
     ["learned_beyond_training"]),
]


@pytest.mark.parametrize("part, description, perturb, must_fail", WRONG, ids=[w[1] for w in WRONG])
def test_wrong_measurement_fails(part, description, perturb, must_fail):
    wrong_measurement(CLAIM, part, perturb, must_fail)


def test_every_evidence_check_of_parts_1_and_3_can_fail():
    """assert_covered over this file's parts (Part 2's wrong measurements live in its own test file)."""
    result = copy.deepcopy(committed(CLAIM))
    result["checks"] = [c for c in result["checks"] if c["part"] in MY_PARTS]
    assert_covered(CLAIM, WRONG, result=result)


# --- the claim, quick preset ------------------------------------------------------------------
EXPECTED_CHECKS = ["coupled_ids_by_significance", "coupled_ids_in_range", "construction_coupled_exact",
                   "construction_absolute_in_layout", "construction_absolute_beyond_layout",
                   "coupled_at_10", "learned_beyond_training"]


# Part 3 does not hold at the quick budget (README "arithmetic"): coupled ids generalise to ~6-7 digits
# and decay beyond (exact match at 10 digits 0.21 / 0.0 / 0.38 at seeds 0 / 1 / 2, against >= 0.9) after
# 2000 steps at batch 64 (Cho et al. train 50k steps at batch 1000). Any other failure is new.
DOCUMENTED_FAILING = {"coupled_at_10"}


def _assert_only_documented_failures(r: dict) -> set[str]:
    """This file's parts produced exactly their checks, and nothing outside DOCUMENTED_FAILING failed."""
    mine = [c for c in r["checks"] if c["part"] in MY_PARTS]
    assert [c["name"] for c in mine] == EXPECTED_CHECKS
    failing = {c["name"] for c in r["checks"] if not c["passed"]}
    assert failing <= DOCUMENTED_FAILING, failing - DOCUMENTED_FAILING
    return failing


@pytest.mark.claim
def test_quick_preset(tmp_path):
    r = run_claim(CLAIM, "quick", seed=0, out=tmp_path)
    failing = _assert_only_documented_failures(r)
    assert r["verdict"] == ("pass" if not failing else "fail")
    assert (tmp_path / "results" / "arithmetic.json").is_file()
    assert (tmp_path / "figures" / "arithmetic.png").is_file()


@pytest.mark.slow
def test_full_preset(tmp_path):
    _assert_only_documented_failures(run_claim(CLAIM, "full", seed=0, out=tmp_path))


# --- Part 3's routing diagnostic (reported, not judged) ------------------------------------------
def test_needed_tokens_worked_example():
    """57 + 468 = 525 coupled (theory/tasks/arithmetic.py): slots 0 5 7 + 4 6 8 = at 0..7; answer
    digit k (significance k) needs the operand digits of significances k and k - 1."""
    ex = arithmetic.layout("coupled", jnp.array([7, 5, 0]), jnp.array([8, 6, 4]), 2, 3, 1)
    need = np.asarray(runs.needed_tokens(ex))                                  # (4, 12)
    want = {0: {2, 6}, 1: {1, 2, 5, 6}, 2: {0, 1, 4, 5}, 3: {0, 4}}            # k = 3: the carry digit
    assert {k: set(np.flatnonzero(need[k]).tolist()) for k in range(4)} == want


@pytest.mark.parametrize("fmt", ["coupled", "padded", "hints", "abacus"])
def test_routing_mass_under_uniform_attention(fmt):
    """With W_Q = 0 every head attends uniformly over the visible real tokens, so the needed mass of
    read slot r is |needed tokens at or before r| / |real tokens at or before r|, exactly."""
    cfg = dataclasses.replace(Config.quick(), d_model=16, n_heads=2, d_ff=8, schemes=("coupled", "learned", "hints",
                                                                                       "abacus"))
    spec = runs.spec_for(cfg, (fmt,))
    params = transformer.init(jax.random.key(0), spec.model)
    params = params._replace(blocks=params.blocks._replace(W_Q=jnp.zeros_like(params.blocks.W_Q)))
    ex = runs.examples(data_key(jax.random.key(1)), 0, 8, 1, 5, 5, False, spec)
    mass, right = runs.routing(params, spec, ex)                                 # (8, 6)
    need = np.asarray(jax.vmap(runs.needed_tokens)(ex))                          # (8, 6, T)
    real, read = np.asarray(ex.pad_mask), np.asarray(ex.read)
    for b in range(8):
        for k in np.flatnonzero(np.asarray(ex.y_mask[b])):
            r = read[b, k]
            want = need[b, k, :r + 1].sum() / real[b, :r + 1].sum()
            assert abs(float(mass[b, k]) - want) < 1e-6
    assert right.shape == mass.shape == (8, 6)


def test_positions_judge_without_schemes():
    """A run without coupled or learned rows has no ordinal check to make (no crash)."""
    cfg = dataclasses.replace(Config.quick(), schemes=("abacus",))
    P = positions.predict(cfg)
    M = {"schemes": ["abacus"], "lengths": P["lengths"], "exact_match": [[[0.5] * 10]]}
    assert positions.judge(cfg, P, M) == []
