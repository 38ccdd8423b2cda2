"""Length buckets (theory/engine/buckets.py): the bucket of a length, the cost model, and equality
with pad-to-max (same key -> same loss and gradients to float rounding) on a small transformer at
a length in every bucket, inside one compiled program."""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.length_generalization import runs
from experiments.length_generalization.config import Config
from theory.engine import buckets
from theory.errors import SandboxError
from theory.models import transformer

KEY = jax.random.PRNGKey(0)


# --- buckets and the cost model ---------------------------------------------------------------------
def test_bucket_sets():
    assert buckets.powers_of_two(40) == (1, 2, 4, 8, 16, 32, 40)
    assert buckets.powers_of_two(32) == (1, 2, 4, 8, 16, 32)
    assert buckets.powers_of_two(1) == (1,)
    assert buckets.even(40, 8) == (5, 10, 15, 20, 25, 30, 35, 40)
    assert buckets.even(10, 3) == (4, 7, 10)
    assert buckets.even(3, 5) == (1, 2, 3)
    assert buckets.even(40, 1) == (40,)


@pytest.mark.parametrize("bad", [(), (0, 40), (10, 10, 40), (20, 10, 40), (10, 20), (10, 50)])
def test_validate_refuses(bad):
    with pytest.raises(SandboxError):
        buckets.validate(bad, 40)


def test_index_is_the_smallest_bucket_that_holds_n():
    b = (3, 7, 12)
    idx = jax.jit(lambda n: buckets.index(n, b))
    for n in range(1, 13):
        i = int(idx(jnp.int32(n)))
        assert b[i] >= n and (i == 0 or b[i - 1] < n)
        assert buckets.bucket_of(n, b) == b[i]
    # one length per sequence: the bucket of the longest
    assert int(buckets.index(jnp.array([1, 8, 2], jnp.int32), b)) == 2


def test_expected_cost_against_hand_sums():
    N = 40
    assert buckets.expected_cost((N,), 1, N) == 1.0
    # exact lengths: E[n] / N = (N + 1) / (2N); E[n^2] / N^2 = (N + 1)(2N + 1) / (6 N^2)
    exact = tuple(range(1, N + 1))
    assert buckets.expected_cost(exact, 1, N) == pytest.approx((N + 1) / (2 * N))
    assert buckets.expected_cost(exact, 1, N, lambda L: L * L) == pytest.approx((N + 1) * (2 * N + 1) / (6 * N * N))
    # powers of two: lengths 1 | 2 | 3-4 | 5-8 | 9-16 | 17-32 | 33-40, by hand
    counts = {1: 1, 2: 1, 4: 2, 8: 4, 16: 8, 32: 16, 40: 8}
    lin = sum(c * L for L, c in counts.items()) / N / N
    quad = sum(c * L * L for L, c in counts.items()) / N / N ** 2
    assert buckets.expected_cost(buckets.powers_of_two(N), 1, N) == pytest.approx(lin)
    assert buckets.expected_cost(buckets.powers_of_two(N), 1, N, lambda L: L * L) == pytest.approx(quad)
    assert (round(lin, 2), round(quad, 2)) == (0.63, 0.49)              # the module docstring's numbers
    for k, lin_k, quad_k in ((4, 0.625, 0.46875), (8, 0.5625, 0.3984375)):  # the docstring table (rounded there)
        eq = buckets.even(N, k)
        assert buckets.expected_cost(eq, 1, N) == pytest.approx(lin_k)
        assert buckets.expected_cost(eq, 1, N, lambda L: L * L) == pytest.approx(quad_k)


def test_run_step_keys_distinct_per_step_and_run():
    steps = jax.vmap(lambda t: jax.random.fold_in(KEY, t))(jnp.arange(64))              # shared step keys
    runs_ = jax.random.split(jax.random.PRNGKey(1), 3)
    ks = jax.vmap(lambda r: jax.vmap(lambda s: buckets.run_step_key(r, s))(steps))(runs_)   # (3, 64, 2)
    flat = np.asarray(ks).reshape(-1, 2)
    assert len({tuple(k) for k in flat}) == flat.shape[0]


# --- a toy loss: the switch picks the bucket, one program holds all ---------------------------------
def _toy_loss_at(w, n, key, L):
    """sum over the first n of L standard normals x_j of (w x_j)^2: prefix-consistent, masked beyond n."""
    x = jax.random.normal(key, (L,))                                   # (L,)
    mask = (jnp.arange(L) < n).astype(x.dtype)                         # (L,)
    return jnp.sum(mask * (w * x) ** 2)


def test_toy_bucketed_equals_pad_to_max_and_compiles_once():
    b = (2, 5, 9)
    grad_fn = jax.jit(buckets.value_and_grad(_toy_loss_at, b))
    pad = jax.jit(lambda w, n, k: jax.value_and_grad(_toy_loss_at)(w, n, k, 9))
    w = jnp.float32(0.7)
    compiled = grad_fn.lower(w, (jnp.int32(1), KEY)).compile()         # one program for every bucket
    for n in range(1, 10):
        k = jax.random.fold_in(KEY, n)
        (l1, g1), (l2, g2) = compiled(w, (jnp.int32(n), k)), pad(w, jnp.int32(n), k)
        np.testing.assert_allclose(float(l1), float(l2), rtol=1e-6)
        np.testing.assert_allclose(float(g1), float(g2), rtol=1e-6)


def test_vmap_keeps_the_switch_only_with_a_shared_length():
    """A batched index turns the switch into a select over every branch (all buckets execute):
    the lengths of vmapped runs must be shared (the module docstring, 'vmap')."""
    b = (2, 5, 9)
    grad_fn = buckets.value_and_grad(_toy_loss_at, b)
    ws, ks = jnp.ones((3,), jnp.float32), jax.random.split(KEY, 3)
    shared = jax.make_jaxpr(jax.vmap(lambda w, k, n: grad_fn(w, (n, k)), in_axes=(0, 0, None)))(ws, ks, jnp.int32(4))
    per_run = jax.make_jaxpr(jax.vmap(lambda w, k, n: grad_fn(w, (n, k))))(ws, ks, jnp.array([1, 4, 8], jnp.int32))
    assert "cond[" in str(shared) and "cond[" not in str(per_run)


# --- the transformer of length_generalization: bucket == pad-to-max, every bucket ------------------
SMALL = Config(d_model=16, n_heads=2, n_layers=2, d_ff=16, batch=4, train_max_len=12, train_buckets=4,
               max_pos=64, log_every=2, steps=4)
TINY = dataclasses.replace(SMALL, n_layers=1, train_max_len=4, train_buckets=2, steps=2)


@pytest.mark.parametrize("task,randomized,causal,per", [
    ("even_pairs", False, False, "sequence"), ("even_pairs", True, False, "sequence"),
    ("reverse_string", True, False, "batch"), ("reverse_string", False, True, "sequence")])
def test_transformer_bucket_equals_pad_to_max(task, randomized, causal, per):
    cfg = dataclasses.replace(SMALL, task=task, per=per)
    spec = runs.spec_for(cfg, task, "sin_cos", cfg.steps, (5,))
    assert spec.buckets == (3, 6, 9, 12)
    params = transformer.init(KEY, spec.model)
    loss_at = functools.partial(runs.batch_loss, spec=spec, randomized=jnp.asarray(randomized),
                                causal=jnp.asarray(causal), gain=jnp.float32(1.0))
    bucketed = jax.jit(buckets.value_and_grad(loss_at, spec.buckets))
    pad = jax.jit(lambda p, n, k: jax.value_and_grad(loss_at)(p, n, k, cfg.train_max_len))
    for n in (1, 3, 4, 6, 8, 9, 11, 12):                       # the edges of every bucket
        k = jax.random.fold_in(KEY, n)
        (l1, g1), (l2, g2) = bucketed(params, (jnp.int32(n), k)), pad(params, jnp.int32(n), k)
        np.testing.assert_allclose(float(l1), float(l2), rtol=2e-6, err_msg=f"n={n}")
        for a, b in zip(jax.tree_util.tree_leaves(g1), jax.tree_util.tree_leaves(g2)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=2e-6, err_msg=f"n={n}")


def _train_losses(cfg):
    spec = runs.spec_for(cfg, "even_pairs", "sin_cos", cfg.steps, (5,))
    fn = jax.jit(jax.vmap(lambda key, r: runs.train_run(key, r, False, jnp.float32(1.0), spec=spec,
                                                        schedule=KEY)[1].loss))
    return np.asarray(fn(jax.random.split(KEY, 2), jnp.array([False, True])))


@pytest.mark.claim          # trains: claim tier, not the unit loop
def test_bucketed_training_run_equals_pad_to_max():
    """Two vmapped runs of engine.train with shared step lengths: the loss traces of 2 buckets and
    of padding to N agree to float rounding."""
    np.testing.assert_allclose(_train_losses(TINY), _train_losses(dataclasses.replace(TINY, train_buckets=1)),
                               rtol=1e-5)


def test_bad_buckets_config():
    with pytest.raises(SandboxError):
        _ = dataclasses.replace(SMALL, train_buckets=0).buckets
