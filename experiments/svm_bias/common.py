"""What the parts of `svm_bias` share: instance draws, the training runs, SVM solves, host helpers.

Instances (`theory/tasks/token_selection.py`) are drawn on the host from a part's named stream,
one key per instance, and handed to the jitted training run as values: the SVM solver and the
optimiser see the very same arrays. The initial weights come from a separate stream of init keys
(torch's nn.Linear default, U(-1/sqrt(d), 1/sqrt(d)) entries, as in the authors' notebooks).

Host helpers (numpy, one instance at a time):
    gamma_it = Y_i v^T x_it                 token scores; opt_i = argmax_t gamma_it
    l_it     = x_it^T W z_i                 logits; the selection of W is alpha_i = argmax_t l_it
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from theory import metrics
from theory.engine import train as engine
from theory.engine.keys import Keys
from theory.engine.sweep import sweep
from theory.errors import SandboxError
from theory.models import single_attention as sa
from theory.predictions import svm_bias as pred
from theory.tasks.token_selection import Instance, sample_instance

from .config import Config


# --- instances ---------------------------------------------------------------------------------
@functools.partial(jax.jit, static_argnames=("n", "T", "d"))
def _sample_batch(run_keys: jax.Array, n: int, T: int, d: int) -> Instance:
    return jax.vmap(lambda k: sample_instance(k, n, T, d))(run_keys)


def draw_instances(keys: Keys, count: int, n: int, T: int, d: int) -> Instance:
    """`count` instances, instance r from run key r of the stream `keys`; leaves (count, ...)."""
    return _sample_batch(keys.runs(count), n=n, T=T, d=d)


def host_instances(batch: Instance) -> list[Instance]:
    """A batched Instance as a list of numpy Instances (one per run)."""
    arrays = [np.asarray(a) for a in batch]
    return [Instance(*(a[r] for a in arrays)) for r in range(arrays[0].shape[0])]


def scores(inst: Instance) -> np.ndarray:
    """gamma_it = Y_i v^T x_it, (n, T) (numpy twin of token_selection.token_scores)."""
    return inst.Y[:, None] * (inst.X @ inst.v)                                  # (n, T)


def opt_tokens(inst: Instance) -> np.ndarray:
    """opt_i = argmax_t gamma_it, (n,)."""
    return np.argmax(scores(inst), axis=-1)


def logits(W: np.ndarray, inst: Instance) -> np.ndarray:
    """l_it = x_it^T W z_i, (n, T)."""
    return np.einsum("ntd,nd->nt", inst.X, inst.Z @ np.asarray(W).T)             # (n, T)


def selected(W: np.ndarray, inst: Instance) -> np.ndarray:
    """alpha_i = argmax_t l_it, the tokens W selects, (n,)."""
    return np.argmax(logits(W, inst), axis=-1)


def require_feasible(solutions: list[pred.SVMSolution], cfg: Config) -> None:
    """Raise SandboxError when no instance's Att-SVM(opt) is feasible: nothing to converge to."""
    if any(s.feasible for s in solutions):
        return
    statuses = sorted({s.status for s in solutions})
    raise SandboxError(f"Att-SVM is infeasible for all {len(solutions)} instances at n={cfg.n}, "
                       f"T={cfg.T}, d={cfg.d} (status {', '.join(statuses)}): no token selection can "
                       "be separated with margin; raise d (d >= 2, feasible for all alpha when "
                       "d >= max(T-1, n))")


class SVMs:
    """Att-SVM solutions of a list of instances, each (instance, selection, norm) solved once."""

    def __init__(self, insts: list[Instance]):
        self.insts = insts
        self._store: dict = {}

    def _solve(self, norm: str, r: int, alpha) -> pred.SVMSolution:
        key = (norm, r, tuple(int(a) for a in alpha))
        if key not in self._store:
            solve = pred.solve_frobenius if norm == "F" else pred.solve_nuclear
            self._store[key] = solve(self.insts[r].X, self.insts[r].Z, alpha)
        return self._store[key]

    def frobenius(self, alphas) -> list[pred.SVMSolution]:
        """W^mm_alpha (Frobenius Att-SVM) of instance r for selection alphas[r]."""
        return [self._solve("F", r, a) for r, a in enumerate(alphas)]

    def nuclear(self, alphas) -> list[pred.SVMSolution]:
        """W^mm_{*,alpha} (nuclear Att-SVM*) of instance r for selection alphas[r]."""
        return [self._solve("N", r, a) for r, a in enumerate(alphas)]


def final_cosines(Ws: np.ndarray, sols: list[pred.SVMSolution]) -> list:
    """cos(W_r, W^mm_r) per run; None (null: undefined) where the SVM has no solution; (N,).

    Undefined is explicit, never NaN: a NaN in a measurement is a divergence (exit 2). A judge
    reading the list as floats sees nan there, so `finite_mean` fails the check it feeds."""
    return [metrics.cosine(W, s.W) if s.feasible else None for W, s in zip(Ws, sols)]


def undefined_count(sols: list[pred.SVMSolution]) -> int:
    """Runs whose SVM reference has no solution (their cosines are null)."""
    return sum(not s.feasible for s in sols)


def cosine_trajectories(W_traj: np.ndarray, sols: list[pred.SVMSolution]) -> np.ndarray:
    """cos(W_r(k), W^mm_r) per run and log point, nan rows where infeasible; (N, K). Host-side
    only: store it through `nanmean_rows`, which turns undefined entries into nulls."""
    return np.stack([metrics.cosine_trajectory(Wt, s.W) if s.feasible else np.full(len(Wt), np.nan)
                     for Wt, s in zip(W_traj, sols)])


def nanmean_rows(x: np.ndarray) -> list:
    """Mean over runs ignoring nan rows, None (null: undefined) where every run is nan; (K,)."""
    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(x)
    count = ok.sum(axis=0)
    mean = np.where(ok, x, 0.0).sum(axis=0) / np.maximum(count, 1)
    return [float(m) if c > 0 else None for m, c in zip(mean, count)]


# --- training ----------------------------------------------------------------------------------
def init_params(init_key, d_max: int, d_true, m: int, kind: str, dtype):
    """U(-1/sqrt(d_true), 1/sqrt(d_true)) entries on the top-left d_true block, 0 elsewhere.

    kind "W": W in R^{d_max x d_max}; kind "KQ": K, Q in R^{d_max x m} (rows beyond d_true zero).
    Zero padding leaves logits and gradients in the d_true block, so a padded run equals the
    unpadded one (tests/test_svm_bias.py) and one compile serves every d of a sweep.
    """
    bound = 1.0 / jnp.sqrt(jnp.asarray(d_true, dtype))
    mask = (jnp.arange(d_max) < d_true).astype(dtype)                               # (d_max,)
    if kind == "KQ":
        k_K, k_Q = jax.random.split(init_key)
        K = jax.random.uniform(k_K, (d_max, m), dtype, -1.0, 1.0)                   # (d_max, m)
        Q = jax.random.uniform(k_Q, (d_max, m), dtype, -1.0, 1.0)                   # (d_max, m)
        return sa.KQParams(bound * K * mask[:, None], bound * Q * mask[:, None])
    W = jax.random.uniform(init_key, (d_max, d_max), dtype, -1.0, 1.0)             # (d_max, d_max)
    return sa.WParams(bound * W * mask[:, None] * mask[None, :])


def _run(init_key, run_id=0, *, X, Y, Z, v, d_true, d_max, m, kind, optimizer, readout, eta, steps,
         log_every, gap_stop, log_weights, progress):
    """One run on one instance: init from `init_key`, train; (final W, trace with W snapshots)."""
    inst = Instance(X, Y, Z, v)
    params = init_params(init_key, d_max, d_true, m, kind, X.dtype)
    opt = engine.make_optimizer(engine.OptimizerConfig(name=optimizer), eta, steps)
    params, trace = engine.train(
        init_key, params, lambda p, batch: sa.loss(p, inst, readout), lambda k: (), opt,
        steps=steps, log_every=log_every, log_fn=sa.combined_W if log_weights else None,
        grad_fn=sa.make_grad_fn(inst, readout, gap_stop), progress=progress, run_id=run_id)
    return sa.combined_W(params), trace


def train(cfg: Config, batch: Instance, init_keys, *, label: str, progress: str | None,
          kind: str = "W", optimizer: str = "normalized_gd", readout: str = "pairwise",
          eta: float | None = None, steps: int | None = None, log_every: int | None = None,
          d_true=None, log_weights: bool = True):
    """Train one run per instance of `batch` (vmapped); (final W (N, d, d), Trace).

    `d_true` (one entry per run) marks zero-padded instances; by default every run uses the full d.
    """
    d_max = batch.X.shape[-1]
    steps = steps or cfg.steps
    fn = functools.partial(_run, d_max=d_max, m=cfg.m, kind=kind, optimizer=optimizer,
                           readout=readout, eta=cfg.eta if eta is None else eta, steps=steps,
                           log_every=log_every or cfg.log_every, gap_stop=cfg.gap_stop,
                           log_weights=log_weights,
                           progress=f"{progress}:{label}" if progress else None)
    d_true = np.full(batch.X.shape[0], d_max) if d_true is None else np.asarray(d_true)
    W, trace = sweep(fn, init_keys, d_true=d_true, **batch._asdict())
    engine.raise_if_diverged(trace, f"svm_bias {label}", {"eta": cfg.eta if eta is None else eta})
    return np.asarray(W), trace


@functools.partial(jax.jit, static_argnames=("d",))
def initial_W(init_keys: jax.Array, d: int) -> jax.Array:
    """The initial W of the W-parameterisation runs of `init_keys` (what `train` starts from)."""
    dtype = jnp.result_type(float)
    return jax.vmap(lambda k: init_params(k, d, d, 1, "W", dtype).W)(init_keys)       # (N, d, d)


def finite_mean(x) -> float:
    """Mean of a sample; nan as soon as one entry is null or not finite (an unsolved SVM fails a check)."""
    x = np.asarray(x, dtype=np.float64)
    return float(np.mean(x)) if x.size and np.all(np.isfinite(x)) else float("nan")


def main_instances(cfg, keys):
    """cfg.seeds main-size instances from `keys`: (batch, host instances, their SVMs, opt tokens,
    the Frobenius Att-SVM of the opt tokens), refusing a config where that SVM is infeasible."""
    batch = draw_instances(keys, cfg.seeds, cfg.n, cfg.T, cfg.d)
    insts = host_instances(batch)
    svms = SVMs(insts)
    opts = [opt_tokens(i) for i in insts]
    sol_opt = svms.frobenius(opts)
    require_feasible(sol_opt, cfg)
    return batch, insts, svms, opts, sol_opt
