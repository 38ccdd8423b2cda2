"""Length buckets: variable-length training without padding every step to the maximum length.

A step of a variable-length task draws its length n ~ U{n_min..N} and a batch of that length.
Padding the batch to N and masking the slots beyond n ("pad-to-max") gives one compiled shape for
every length, at the price of computing every step at length N. With buckets b_1 < ... < b_K = N
the step computes at the smallest bucket that holds n,

    L(n) = b_i(n),    i(n) = min{i : b_i >= n} = #{i : b_i < n},

with the same masking. The K branches sit in one `lax.switch(i(n), ...)` inside the jitted step:
one program holds every bucket (compiled once, together), and each step executes one branch.

Equality with pad-to-max. Let batch_L be the batch a step builds at static length L from its key
and its length n <= L. If

  (i)  the sampler is prefix-consistent: the first L slots of batch_N equal batch_L. JAX's
       partitionable threefry (`jax_threefry_partitionable`, the default since JAX 0.5) draws
       entry j of an array from the counter j alone, so `randint(key, (N,))[:L]` equals
       `randint(key, (L,))`; a task whose answer depends on slots < n only keeps the property;
  (ii) the loss ignores slots >= n exactly: masked as attention keys (weight exp(-1e30) = 0 after
       the max shift) and as targets (weight 0),

then loss_L = loss_N as functions of the parameters, so the loss and its gradient agree up to
float rounding (the same terms summed with fewer exact zeros, in a different blocking).
`tests/test_buckets.py` checks it on a small transformer, for a length in every bucket.

Cost model. A step at length L costs about c(L) = a L + q L^2 (the dense layers are linear in the
number of tokens, the attention scores quadratic). For n ~ U{n_min..N} the expected cost of a
step relative to pad-to-max is

    E[c(L(n))] / c(N) = sum_i P(L(n) = b_i) c(b_i) / c(N),   P(L(n) = b_i) = |{n : L(n) = b_i}| / (N - n_min + 1).

For N = 40, n_min = 1 (`expected_cost`; linear part E[L] / N, quadratic part E[L^2] / N^2):

    buckets                          K    linear   quadratic
    (40,)  pad-to-max                1    1        1
    (10, 20, 30, 40)                 4    0.63     0.47
    (1, 2, 4, 8, 16, 32, 40)         7    0.63     0.49
    (5, 10, ..., 40)                 8    0.56     0.40
    (1, 2, ..., 40)  exact lengths  40    0.51     0.35

Equal widths are the best K buckets for a linear cost and uniform lengths. Every branch is
compiled (about a fixed compile time per branch), so a handful of buckets buys most of the
saving: 4 buckets save as much as the 7 powers of two.

vmap. Under `jax.vmap` a `lax.switch` with a batched index becomes a select over the outputs of
every branch (JAX's batching rule: all branches execute), which costs more than pad-to-max. The
index must be the same for all vmapped runs, so the lengths of a sweep are drawn from one step key
shared by its runs (`train(schedule_key, ...)`, an unbatched key: step k's key fold_in(schedule_key, k)
is then unbatched too), and each run derives its own data from its own key and the step key
(`run_step_key`).
"""
from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from theory.errors import SandboxError

PyTree = Any


def powers_of_two(n_max: int) -> tuple[int, ...]:
    """(1, 2, 4, ..., 2^k, n_max) with 2^k < n_max: the default buckets for lengths 1..n_max."""
    if n_max <= 0:
        raise SandboxError(f"the longest length must be positive, got {n_max}")
    out = [1 << j for j in range(max(n_max.bit_length(), 1)) if (1 << j) < n_max]
    return tuple(out) + (n_max,)


def even(n_max: int, k: int) -> tuple[int, ...]:
    """k buckets of (nearly) equal width, ceil(j n_max / k) for j = 1..k (at most n_max of them):
    the best k buckets for a linear cost and uniform lengths."""
    if n_max <= 0 or k <= 0:
        raise SandboxError(f"n_max and the number of buckets must be positive, got {n_max}, {k}")
    k = min(k, n_max)
    return tuple(math.ceil(j * n_max / k) for j in range(1, k + 1))


def validate(buckets, n_max: int) -> tuple[int, ...]:
    """The buckets as a strictly increasing tuple of positive ints ending at n_max (or bad input)."""
    b = tuple(int(x) for x in buckets)
    if not b or any(x <= 0 for x in b) or any(x >= y for x, y in zip(b, b[1:])) or b[-1] != n_max:
        raise SandboxError(f"buckets must be strictly increasing positive lengths ending at the longest "
                           f"length {n_max}, got {tuple(buckets)}")
    return b


def index(n, buckets: tuple[int, ...]) -> jax.Array:
    """i(n) = #{i : b_i < n}, the bucket of length n; for an array of lengths (one per sequence)
    the bucket of the longest. n may be traced; () int32."""
    n_max = jnp.max(jnp.asarray(n, jnp.int32))
    return jnp.sum(jnp.asarray(buckets, jnp.int32) < n_max).astype(jnp.int32)


def bucket_of(n: int, buckets: tuple[int, ...]) -> int:
    """L(n) on the host: the smallest bucket >= n."""
    return next(b for b in buckets if b >= n)


def expected_cost(buckets: tuple[int, ...], n_min: int, n_max: int,
                  cost: Callable[[int], float] = lambda L: float(L)) -> float:
    """E[cost(L(n))] / cost(n_max) for n ~ U{n_min..n_max} (the cost model above); 1 = pad-to-max."""
    b = validate(buckets, n_max)
    ns = range(n_min, n_max + 1)
    return float(np.mean([cost(bucket_of(n, b)) for n in ns]) / cost(n_max))


def run_step_key(run_key: jax.Array, step_key: jax.Array) -> jax.Array:
    """A run's own key for one step, from its key and the step key its sweep shares:
    fold_in(fold_in(run_key, s_0), s_1), (s_0, s_1) the two words of the step key. Distinct steps
    give distinct keys unless two 64-bit step keys collide."""
    s = jax.random.key_data(step_key) if jnp.issubdtype(step_key.dtype, jax.dtypes.prng_key) else step_key
    return jax.random.fold_in(jax.random.fold_in(run_key, s[0]), s[1])


def loss(loss_at: Callable[[PyTree, jax.Array, Any, int], jax.Array],
         buckets: tuple[int, ...]) -> Callable[[PyTree, tuple], jax.Array]:
    """loss_fn(params, (n, data)) = loss_at(params, n, data, L(n)), one `lax.switch` branch per bucket.

    `loss_at(params, n, data, L)` builds the step's batch of real length n (traced) at the static
    length L and returns its loss; it must satisfy (i) and (ii) of the module docstring."""
    branches = [lambda p, n, d, L=L: loss_at(p, n, d, L) for L in buckets]

    def loss_fn(params, batch):
        n, data = batch
        return jax.lax.switch(index(n, buckets), branches, params, n, data)
    return loss_fn


def value_and_grad(loss_at: Callable[[PyTree, jax.Array, Any, int], jax.Array],
                   buckets: tuple[int, ...]) -> Callable[[PyTree, tuple], tuple[jax.Array, PyTree]]:
    """grad_fn(params, (n, data)) -> (loss, grads) at bucket L(n): the engine's `grad_fn`.

    Each branch differentiates its own bucket (`value_and_grad` inside the switch, not a
    gradient through it: reverse-mode through a switch would keep every branch's residuals)."""
    branches = [lambda p, n, d, L=L: jax.value_and_grad(loss_at)(p, n, d, L) for L in buckets]

    def grad_fn(params, batch):
        n, data = batch
        return jax.lax.switch(index(n, buckets), branches, params, n, data)
    grad_fn.loss_at, grad_fn.buckets = loss_at, buckets     # for cost accounting (theory/bench)
    return grad_fn
