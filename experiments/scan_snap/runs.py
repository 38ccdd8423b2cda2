"""The runs of scan_snap and the host-side measurements every part shares.

Two run types, both on the Y/Z model of `theory.models.yz_attention`:

* population (T -> infinity): full-batch GD on the population loss from Y = Z = 0 with rates
  eta_Y, eta_Z; one GD step on the mean over the K classes moves each class by eta/K, one theory
  step (theory/predictions/scan_snap.py). Deterministic: the run key is drawn but never used.
* sampled: SGD on batches of sequences of T i.i.d. context tokens (seen through their counts),
  zero or PyTorch-uniform init, optional PyTorch-style momentum. The counts are histograms of
  drawn tokens (`sampled_run`, cost O(T)) or drawn directly from their multinomial law
  (`counts_run`, cost independent of T, T a swept value: one program for every T).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from theory.engine.keys import data_key
from theory.engine.train import train
from theory.metrics import first_crossing, relative_spread
from theory.models import yz_attention as yz
from theory.tasks.next_token import Classes, Counts, NextTokenTask, classes, sample_counts


def population_run(key, *, task: NextTokenTask, steps: int, eta_Y, eta_Z, P, progress=None, run_id=0):
    """Full-batch GD on the population loss from zero; logs z_m. of every class after every step.

    P (K, M) is the class table's P(.|n) (swept: orthogonal or with common tokens). Returns the
    trace: loss (steps,) at the parameters before each step, logged (steps, K, M) after each step.
    """
    cls = classes(task)
    opt = yz.group_sgd(eta_Y, eta_Z)
    loss = lambda p, batch: yz.population_loss(p, P, cls.query, cls.next)
    _, trace = train(key, yz.zeros(task.M), loss, lambda k: (), opt, steps=steps, log_every=1,
                     log_fn=lambda p: p.Z[cls.query], progress=progress, run_id=run_id)
    return trace


def sampled_run(key, *, task: NextTokenTask, T: int, batch: int, steps: int, momentum: float,
                random_init: bool, eta_Y, eta_Z, progress=None, run_id=0):
    """SGD on sampled sequences; returns the final z_m. (K, M), the distinct entropies (K,), the trace."""
    cls = classes(task)
    k_init, k_data = jax.random.split(key)
    params0 = yz.init_uniform(k_init, task.M) if random_init else yz.zeros(task.M)
    sample = lambda k: jax.vmap(lambda kk: sample_counts(kk, cls, T))(jax.random.split(k, batch))
    loss = lambda p, b: yz.sampled_loss(p, b.counts, b.query, b.next)
    # data_key: k_data's own draws with the threefry hash fused (theory/engine/keys.py): the same
    # numbers, 1.6x faster steps at T = 127 (searchsorted dominates at T = 1024)
    params, trace = train(data_key(k_data), params0, loss, sample, yz.group_sgd(eta_Y, eta_Z, momentum),
                          steps=steps, log_every=steps, progress=progress, run_id=run_id)
    return params.Z[cls.query], yz.distinct_entropy(params.Z, cls.P, cls.query, cls.distinct), trace


def multinomial_counts(key, cls: Classes, T, n_support: int) -> Counts:
    """The counts of T i.i.d. contextual tokens of a uniform class n, drawn from their law directly.

    counts ~ Multinomial(T, P(.|n)): `n_support` sequential binomials over the class's support,
    largest P first (jax.random.multinomial), so the cost does not grow with T and T may be traced.
    The same law as `theory.tasks.next_token.sample_counts` (the class is drawn as there; the
    counts are other draws). n_support >= the number of tokens with P(l|n) > 0.
    """
    kc, kx = jax.random.split(key)
    k = jax.random.randint(kc, (), 0, cls.P.shape[0])
    support = jnp.argsort(-cls.P[k], stable=True)[:n_support]       # (n_support,) token ids, largest P first
    c = jax.random.multinomial(kx, T, cls.P[k][support])            # (n_support,)
    counts = jnp.zeros(cls.P.shape[1], c.dtype).at[support].set(c)  # (M,)
    return Counts(counts, cls.query[k], cls.next[k], k)


def counts_run(key, *, task: NextTokenTask, batch: int, steps: int, T, eta_Y, eta_Z, progress=None, run_id=0):
    """SGD from zero (no momentum) on batches of multinomial counts of T tokens; returns the final
    z_m. (K, M) and the trace. T is a value (one program for every T)."""
    cls = classes(task)
    n_support = task.n_common + task.n_distinct
    sample = lambda k: jax.vmap(lambda kk: multinomial_counts(kk, cls, T, n_support))(jax.random.split(k, batch))
    loss = lambda p, b: yz.sampled_loss(p, b.counts, b.query, b.next)
    params, trace = train(data_key(key), yz.zeros(task.M), loss, sample, yz.group_sgd(eta_Y, eta_Z),
                          steps=steps, log_every=steps, progress=progress, run_id=run_id)
    return params.Z[cls.query], trace


# --- host-side measurements ----------------------------------------------------------------
def crossing_step(loss: np.ndarray, level: float) -> float:
    """First t (GD steps, linearly interpolated) with loss(t) <= level, loss[t] the loss after t steps.

    0.0 when loss[0] is already at or below the level; +inf when the loss never reaches it within
    the run (an explicit "never": the parts list these keys in `Part.unbounded`, never NaN).
    """
    return first_crossing(loss, level, "down")


def invariant(z: np.ndarray, P: np.ndarray) -> np.ndarray:
    """I_l = (1 - e^{-2 z_l}) / P_l^2 (z(0) = 0) over one class's distinct tokens (Theorem 3)."""
    return -np.expm1(-2.0 * z) / P ** 2


def invariant_spread(z: np.ndarray, P: np.ndarray) -> float:
    """max I_l / min I_l - 1: 0 when the invariant holds exactly."""
    return relative_spread(invariant(z, P))


def class_spreads(z: np.ndarray, P: np.ndarray, distinct: np.ndarray) -> list[float]:
    """The invariant spread of each class from z_m. (K, M), P (K, M) and the distinct masks (K, M)."""
    return [invariant_spread(z[k, distinct[k]], P[k, distinct[k]]) for k in range(z.shape[0])]


def rarest_over_invariant(z: np.ndarray, P: np.ndarray) -> float:
    """z of the rarest distinct token over the value the invariant predicts from the top token.

    With I_rare = I_top: z_rare = -1/2 log(1 - (P_rare/P_top)^2 (1 - e^{-2 z_top})); 1 on the invariant.
    """
    top, rare = int(np.argmax(P)), int(np.argmin(P))
    z_inv = -0.5 * np.log1p(-(P[rare] / P[top]) ** 2 * -np.expm1(-2 * z[top]))
    return float(z[rare] / z_inv)


def name_number(x: float) -> str:
    """A number as a check-name fragment: 0.5 -> "0p5", 1.0 -> "1", 0.01 -> "0p01"."""
    return f"{x:g}".replace(".", "p").replace("-", "m")
