"""Part `full_head`: a full attention head (W_K, W_Q, W_V, W_O all (d, d)) from N(0, alpha^2) init on a
teacher with low-rank W_KQ* = W_K W_Q^T: the numerical rank of Delta W_KQ = W_KQ(t) - W_KQ(0) rises
one unit at a time to the teacher's rank, under GD and under Adam.

No theorem covers this case (Boix-Adsera et al. 2023 prove the diagonal head, part diag_attention):
the staircase is what most reference runs of this part show, so the checks are `expected`, and a
rate, not an all-seeds rule. It does not hold in every run: under Adam the first perturbation above
head_floor can already have two singular values within a factor 1/head_rel (Adam's per-coordinate
normalisation moves every entry by ~lr from the first step, whatever the gradient's spectrum), and
under GD at alpha = 1e-4 a second direction can stay within that factor of the first until the first
has grown (a finite-alpha effect). The reference rate p_ref of each optimiser (head_gd_ref,
head_adam_ref: climbing runs / runs on base seeds disjoint from the presets',
experiments/rank_growth/reference.py) sets the rule: of n seeds at least k_min climb, k_min the
binomial head_quantile lower quantile of Binomial(n, p_ref), so a correct run fails with probability
< head_quantile; p_ref = 1 gives k_min = n. The check reports every failing seed's levels.

predict  the teacher's rank len(head_s_kq) and stable rank sum s^2 / s_1^2 (for the figure)
measure  at every log point: numerical_rank(Delta W_KQ, head_rel) (singular values above head_rel
         times the largest) and ||Delta W_KQ||_2, for each seed and optimiser
judge    over the log points where ||Delta W_KQ||_2 > head_floor, the rank climbs the levels 1, 2, ..,
         r (r the teacher's rank) in order: monotone non-decreasing, starting at 0 or 1, no level
         skipped, ending at r (a count that drops, 2 -> 1 -> 2 -> 3, starts above 1 or skips a level
         does not climb), in at least k_min of the seeds; the failing seeds' levels are in the
         check's measured text.
"""
from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

from experiments.rank_growth import runs
from experiments.rank_growth.analysis import binomial_lower_quantile, climbs_every_level, floats, staircase
from theory.engine.keys import Keys
from theory.engine.train import raise_if_diverged
from theory.harness.results import Check, holds
from theory.metrics import numerical_rank

OPTIMIZERS = ("gd", "adam")


def predict(cfg) -> dict:
    s = np.asarray(cfg.head_s_kq, dtype=np.float64)
    return {"teacher_rank": len(cfg.head_s_kq), "teacher_stable_rank": float((s ** 2).sum() / s.max() ** 2)}


def measure(cfg, keys: Keys, progress) -> dict:
    """Both optimisers on the same teachers and inits (run i of stream `runs`)."""
    run_keys = keys.sub("runs").runs(cfg.seeds)                              # (S, 2)
    out = {}
    for opt in OPTIMIZERS:
        tr = runs.sweep(functools.partial(runs.head_run, cfg, opt, progress), run_keys,
                        alpha=jnp.full((cfg.seeds,), cfg.head_alpha))
        raise_if_diverged(tr, f"rank_growth/full_head/{opt}", {"alpha": cfg.head_alpha})
        dKQ = np.asarray(tr.logged)                                          # (S, n_logs, d, d)
        sigma = np.linalg.svd(dKQ, compute_uv=False)                         # (S, n_logs, d)
        out[opt] = {
            "step": np.asarray(tr.step[0]),
            "rank": [[numerical_rank(W, cfg.head_rel) for W in run] for run in dKQ],   # (S, n_logs)
            "sigma_max": sigma[:, :, 0],                                     # (S, n_logs)
            "sigma": sigma[0],                                               # (n_logs, d) seed 0
            "stable_rank": (sigma[0] ** 2).sum(axis=1) / np.where(sigma[0, :, 0] > 0, sigma[0, :, 0] ** 2, 1.0),
            "loss": np.asarray(tr.loss[0])}
    return out


def live_levels(cfg, run: dict) -> list[list[int]]:
    """Per seed, the distinct levels (in order of appearance) of the rank count over the log points
    where ||Delta W_KQ||_2 > head_floor ([] if there are none)."""
    out = []
    for rank, smax in zip(run["rank"], floats(run["sigma_max"])):
        live = smax > cfg.head_floor
        out.append(staircase(np.asarray(rank)[live])[1] if live.any() else [])
    return out


def required_climbs(cfg, opt: str, n: int) -> tuple[int, float, tuple[int, int]]:
    """(k_min, p_ref, reference): of n runs, at least k_min must climb 1, .., r in order, k_min the
    binomial head_quantile lower quantile at the reference rate p_ref = climbing / runs measured by
    experiments/rank_growth/reference.py (config.py, REFERENCE); p_ref = 1 gives k_min = n (strict)."""
    ref = tuple(getattr(cfg, f"head_{opt}_ref"))
    p_ref = ref[0] / ref[1]
    return binomial_lower_quantile(n, p_ref, cfg.head_quantile), p_ref, ref


def judge(cfg, P: dict, M: dict) -> list[Check]:
    checks = []
    r = P["teacher_rank"]
    for opt in OPTIMIZERS:
        levels = live_levels(cfg, M[opt])
        ok = [climbs_every_level(lv, r) for lv in levels]
        bad = {i: lv for i, lv in enumerate(levels) if not climbs_every_level(lv, r)}
        k_min, p_ref, ref = required_climbs(cfg, opt, len(ok))
        name = "GD" if opt == "gd" else "Adam"
        rule = ("every seed (its reference rate is 1)" if k_min == len(ok) else
                f">= {k_min}/{len(ok)} seeds, the binomial {cfg.head_quantile:g} lower quantile at the "
                f"reference rate {ref[0]}/{ref[1]}")
        checks.append(holds(
            f"full_head_{opt}_rank_stepwise",
            f"Under {name} the numerical rank of Delta W_KQ climbs 1, 2, .., {r} in order (monotone, from "
            f"<= 1, every level visited) in {rule}.",
            "expected", f">= {k_min}/{len(ok)} seeds: count(sigma > {cfg.head_rel:g} sigma_max) of Delta W_KQ, "
            f"where ||Delta W_KQ||_2 > {cfg.head_floor:g}, goes 1, 2, .., {r} (or 0, 1, .., {r}) with no drop "
            "and no skip",
            f"{sum(ok)}/{len(ok)} seeds climb every level; levels (seed 0) {levels[0]}"
            + (f"; failing seeds {bad}" if bad else ""), sum(ok) >= k_min,
            f"reference runs (experiments/rank_growth/reference.py, base seeds disjoint from the presets'): "
            f"{ref[0]}/{ref[1]} runs of this part climb every level in order under {name} at alpha = "
            f"{cfg.head_alpha:g}; no theorem covers a non-diagonal head" + (" or Adam" if opt == "adam" else "")
            + " (Boix-Adsera et al. 2023, Algorithm 1, proves one new coordinate per stage for the diagonal "
            "case), so the staircase is a rate, not a law: with p_ref the reference rate, a correct run "
            f"fails this check with probability < {cfg.head_quantile:g}"
            + ("" if p_ref < 1 else " (p_ref = 1: every seed must climb)")
            + ". Tests the order of the levels, not only the size of the jumps: a count that falls back "
            "(2 -> 1 -> 2 -> 3) or starts above 1 does not climb"))
    return checks
