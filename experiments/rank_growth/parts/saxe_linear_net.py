"""Part `saxe_linear_net`: the 2-layer linear net W2 W1 learns the modes of M = U diag(s) V^T one at
a time, at the times of Saxe's logistic mode solution.

With whitened inputs the loss is L = 1/2 ||W2 W1 - M||_F^2. A balanced aligned mode of strength
u_i = U_i^T W2 W1 V_i follows u' = 2 eta u (s_i - u) under gradient flow (proofs/rank_growth.py,
prove_balanced_mode_ode), the logistic (Saxe, McClelland & Ganguli 2014)

    u_i(t) = s_i e^{2 eta s_i t} / (e^{2 eta s_i t} - 1 + s_i / u0_i),

which crosses s_i / 2 at  t_i = ln(s_i/u0_i - 1) / (2 ln(1 + eta s_i))  GD steps (discrete-GD rate,
prove_discrete_gd_mode_growth; flow rate 2 eta s_i, prove_saxe_halfway_time). From a random init the
growing part of mode i is g_i = (W2^T U_i + W1 V_i)/2, so u0_i = ||g_i||^2; the refined prediction
replaces g_i by its part orthogonal to g_1..g_{i-1} (theory/predictions/rank_growth.py,
saxe_u0_orthogonalized). Between stages k and k+1 the loss sits at 1/2 sum_{j>k} s_j^2.

predict  rates 2 ln(1 + eta s_i), plateau losses, the exact scalar recursion of the aligned init
measure  u0_i of each drawn init; the GD step at which sigma_i(W2 W1) crosses s_i/2; the count of
         sigma_i above rank_threshold and the learned-mode set over time; plateau losses; GD from
         the aligned balanced init
judge    t_meas against t_i(u0) per alpha, mode and seed; unit rank steps in order of s; plateau
         losses; aligned GD = scalar recursion to rounding
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from experiments.rank_growth import runs
from experiments.rank_growth.analysis import (
    alpha_tag,
    change_events,
    crossing_step,
    floats,
    rank_staircase,
    thin,
    thin_factor,
)
from theory.engine.keys import Keys
from theory.engine.train import raise_if_diverged
from theory.harness.results import Check, at_most, holds
from theory.predictions import rank_growth as pred

SAXE = "Saxe, McClelland & Ganguli 2014, the logistic mode solution"


def predict(cfg) -> dict:
    s = np.asarray(cfg.s, dtype=np.float64)
    r = len(cfg.s)
    a0 = jnp.full((r,), runs.ALIGNED_A0)
    return {"s": s, "rate": pred.saxe_mode_rate(s, cfg.saxe_lr),
            "limit": pred.saxe_rescaled_limit(s, cfg.saxe_lr),
            "plateau_losses": pred.saxe_plateau_losses(s),
            "aligned_u": pred.saxe_aligned_recursion(a0, jnp.asarray(s), cfg.saxe_lr, runs.aligned_steps(cfg))}


@functools.partial(jax.jit, static_argnums=0)
def _strengths(cfg, run_keys: jax.Array, alpha) -> tuple[jax.Array, jax.Array]:
    """(u0, u0 orthogonalised), each (S, r), of the inits drawn from run_keys at scale alpha."""
    def one(key):
        teacher, p = runs.saxe_instance(key, cfg, alpha)
        return (pred.saxe_u0(p.W1, p.W2, teacher.U, teacher.V, len(cfg.s)),
                pred.saxe_u0_orthogonalized(p.W1, p.W2, teacher.U, teacher.V, len(cfg.s)))
    return jax.vmap(one)(run_keys)


def init_strengths(cfg, run_keys, alphas) -> tuple[np.ndarray, np.ndarray]:
    """(u0, u0 orthogonalised), each (A, S, r): the initial strength of each mode's growing part."""
    out = [_strengths(cfg, run_keys, a) for a in alphas]
    return np.asarray([u for u, _ in out]), np.asarray([u for _, u in out])


def train_grid(cfg, keys: Keys, alphas, progress) -> tuple[jnp.ndarray, tuple[np.ndarray, ...]]:
    """Every seed at every alpha (alpha-major); the same teacher and init direction for seed i at all
    alphas. Returns the run keys (S, 2) and the traces (sigma, proj, loss), leaves (A, S, steps, ...)."""
    run_keys = keys.sub("runs").runs(cfg.seeds)                              # (S, 2)
    grid_keys = jnp.tile(run_keys, (len(alphas), 1))                         # (A*S, 2)
    grid_alpha = jnp.repeat(jnp.asarray(alphas), cfg.seeds)                  # (A*S,)
    steps = runs.saxe_steps(cfg, alphas)
    tr = runs.sweep(functools.partial(runs.saxe_run, cfg, steps, progress), grid_keys, alpha=grid_alpha)
    raise_if_diverged(tr, "rank_growth/saxe", {"alpha": grid_alpha})
    shape = (len(alphas), cfg.seeds)
    return run_keys, tuple(np.asarray(x).reshape(shape + np.shape(x)[1:]) for x in tr.logged)


def crossing_steps(cfg, sig: np.ndarray) -> np.ndarray:
    """(A, S, r) GD step at which sigma_m crosses s_m / 2 (sig (A, S, steps, d))."""
    A, S = sig.shape[:2]
    return np.array([[[crossing_step(sig[j, i, :, m], cfg.s[m] / 2) for m in range(len(cfg.s))]
                      for i in range(S)] for j in range(A)])


def measure(cfg, keys: Keys, progress) -> dict:
    alphas = tuple(cfg.time_alphas)
    r = len(cfg.s)
    run_keys, (sig, proj, loss) = train_grid(cfg, keys, alphas, progress)   # (A, S, steps, d|r), (A, S, steps)
    u0, u0_orth = init_strengths(cfg, run_keys, alphas)
    t_cross = crossing_steps(cfg, sig)                                       # (A, S, r)
    count = (sig > cfg.rank_threshold).sum(axis=-1)                          # (A, S, steps)
    learned = proj > cfg.rank_threshold                                      # (A, S, steps, r)
    count_events = [[change_events(count[j, i].tolist()) for i in range(cfg.seeds)] for j in range(len(alphas))]
    mode_events = [[change_events([tuple(np.nonzero(row)[0].tolist()) for row in learned[j, i]])
                    for i in range(cfg.seeds)] for j in range(len(alphas))]
    # plateau losses at the smallest alpha: the loss midway between consecutive measured stage times
    # (index int(midpoint) of the per-step loss, whose entry k is the loss after k + 1 steps)
    j = alphas.index(min(alphas))
    plateau = []
    for i in range(cfg.seeds):
        tm = np.concatenate([[0.0], t_cross[j, i]])
        if not np.all(np.isfinite(tm)):                                      # a mode was never learned
            plateau.append([np.nan] * r)
            continue
        mids = [int((tm[k] + tm[k + 1]) / 2) for k in range(r)]
        plateau.append(loss[j, i, mids].tolist())
    aligned = runs.aligned_run(cfg, keys.sub("aligned_init").key)            # (steps, r)
    return {"alphas": list(alphas), "u0": u0, "u0_orth": u0_orth, "t_cross": t_cross,
            "count_events": count_events, "mode_events": mode_events, "plateau_loss": plateau,
            "aligned_u": np.asarray(aligned),
            "thin": thin_factor(sig.shape[2]), "sigma": thin(sig[j, 0])}


def halfway_steps(P: dict, u0) -> np.ndarray:
    """t_i = ln(s_i/u0_i - 1) / rate_i, the predicted step at which mode i reaches s_i/2, for the
    measured initial strengths u0 (..., r) of the drawn inits."""
    s, rate = floats(P["s"]), floats(P["rate"])
    return np.log(s / floats(u0) - 1.0) / rate


def judge(cfg, P: dict, M: dict) -> list[Check]:
    alphas = list(M["alphas"])
    r, S = len(cfg.s), cfg.seeds
    t_cross = floats(M["t_cross"])                                           # (A, S, r)
    t_pred = halfway_steps(P, M["u0"])                                       # (A, S, r)
    t_ref = halfway_steps(P, M["u0_orth"])
    ratio = t_cross / t_pred
    checks = []
    for a, tol in zip(cfg.time_alphas, cfg.time_tols):
        j = alphas.index(a)
        checks.append(at_most(
            f"saxe_stage_time_alpha_{alpha_tag(a)}",
            f"At alpha={a:g}, max over {r} modes x {S} seeds of |t_meas/t_pred - 1|, t_pred with the exact u0.",
            "predicted", tol, float(np.abs(ratio[j] - 1).max()),
            f"{SAXE}: t_i = ln(s_i/u0_i - 1)/(2 ln(1 + lr s_i)) with the exact u0 of the init and the "
            "discrete-GD rate (proofs/rank_growth.py, prove_saxe_halfway_time, prove_discrete_gd_mode_growth); "
            "lower modes lag because learned modes suppress their hidden-space overlap, an O(1/ln(1/alpha)) "
            "effect (theory/predictions/rank_growth.py, saxe_u0_orthogonalized)"))
    rows = [alphas.index(a) for a in cfg.time_alphas]
    checks.append(at_most(
        "saxe_top_mode_time", "Max over alphas and seeds of |t_meas/t_pred - 1| for the top mode.",
        "predicted", cfg.top_tol, float(np.abs(ratio[rows, :, 0] - 1).max()),
        f"{SAXE}: the top mode grows first on an empty network, so the single-mode logistic is exact up "
        "to the decaying part of the init (proofs/rank_growth.py, prove_saxe_logistic_solves_ode)"))
    checks.append(at_most(
        "saxe_stage_time_refined_all_alphas",
        "Max over alphas, modes and seeds of |t_meas/t_ref - 1|, u0 orthogonalised against earlier modes.",
        "predicted", cfg.refined_tol, float(np.abs(t_cross / t_ref - 1).max()),
        "theory/predictions/rank_growth.py, saxe_u0_orthogonalized (derived there): removes the "
        "mode-coupling delay; the residual is the O(lr s) discretisation of the saturating phase"))
    results = [rank_staircase(M["count_events"][j][i], M["mode_events"][j][i], r)
               for j in rows for i in range(S)]
    rank_ok = all(ok for ok, _ in results)
    checks.append(holds(
        "saxe_rank_unit_steps",
        f"The count of sigma_i(W2 W1) > {cfg.rank_threshold:g} steps through 0, 1, .., {r}, top modes first.",
        "predicted", f"count(sigma > {cfg.rank_threshold:g}) = 0,1,..,{r}, top modes first",
        f"levels {results[0][1]}; all runs ok: {rank_ok}", rank_ok,
        f"{SAXE}: modes are learned one at a time in order of s (the stage times t_i increase as s_i "
        "decreases, proofs/rank_growth.py, prove_saxe_halfway_time)"))
    plateau = floats(M["plateau_loss"])                                      # (S, r)
    plateau_pred = floats(P["plateau_losses"])[:r]
    err = np.abs(plateau / plateau_pred[None, :] - 1)
    checks.append(at_most(
        f"saxe_plateau_losses_rel_alpha_{alpha_tag(min(cfg.time_alphas))}",
        "Max relative error of the loss midway between measured stages against 1/2 sum_{j>k} s_j^2.",
        "predicted", cfg.plateau_tol, float(err.max()) if np.all(np.isfinite(err)) else np.inf,
        f"{SAXE}: after k learned modes the loss is 1/2 sum_{{j>k}} s_j^2 (theory/predictions/rank_growth.py, "
        "saxe_plateau_losses); the unlearned modes are still ~alpha-small there, 1e-2 leaves room for the "
        "learned modes' residue"))
    checks.append(at_most(
        "saxe_aligned_init_exact",
        "Max over steps and modes of |u_GD - u_recursion| from the aligned balanced init.",
        "exact", 1e-10, float(np.abs(floats(M["aligned_u"]) - floats(P["aligned_u"])).max()),
        "identity: an aligned balanced init stays aligned under GD and each mode follows the scalar "
        "recursion a <- a + lr a (s - a^2) exactly (theory/predictions/rank_growth.py, "
        "saxe_aligned_recursion); only float64 rounding over the run remains"))
    return checks
