"""Part `full_head`: a full attention head (W_K, W_Q, W_V, W_O all (d, d)) from N(0, alpha^2) init on a
teacher with low-rank W_KQ* = W_K W_Q^T: the numerical rank of Delta W_KQ = W_KQ(t) - W_KQ(0) rises
one unit at a time to the teacher's rank, under GD and under Adam.

No theorem covers this case (Boix-Adsera et al. 2023 prove the diagonal head, part diag_attention):
the unit staircase is what reference runs of this part show, so the checks are `expected`.

predict  the teacher's rank len(head_s_kq) and stable rank sum s^2 / s_1^2 (for the figure)
measure  at every log point: numerical_rank(Delta W_KQ, head_rel) (singular values above head_rel
         times the largest) and ||Delta W_KQ||_2, for each seed and optimiser
judge    over the log points where ||Delta W_KQ||_2 > head_floor, the rank steps by at most one and
         ends at the teacher's rank, for every seed
"""
from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

from experiments.rank_growth import runs
from experiments.rank_growth.analysis import floats, staircase
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


def stepwise(cfg, P: dict, run: dict) -> tuple[bool, list[int]]:
    """(every seed steps by units to the teacher rank, the levels of seed 0) over live log points."""
    ok_all, levels0 = True, None
    for rank, smax in zip(run["rank"], floats(run["sigma_max"])):
        live = smax > cfg.head_floor
        jump, levels = staircase(np.asarray(rank)[live]) if live.any() else (99, [])
        ok = bool(live.any()) and jump <= 1 and len(levels) >= 2 and levels[-1] == P["teacher_rank"]
        ok_all &= ok
        levels0 = levels if levels0 is None else levels0
    return ok_all, levels0


def judge(cfg, P: dict, M: dict) -> list[Check]:
    checks = []
    for opt in OPTIMIZERS:
        ok, levels0 = stepwise(cfg, P, M[opt])
        checks.append(holds(
            f"full_head_{opt}_rank_stepwise",
            f"Under {'GD' if opt == 'gd' else 'Adam'} the numerical rank of Delta W_KQ rises in unit steps "
            "to the teacher's rank, every seed.",
            "expected", f"count(sigma > {cfg.head_rel:g} sigma_max) of Delta W_KQ rises by unit steps to "
            f"{P['teacher_rank']}", f"levels (seed 0) {levels0}; all seeds ok: {ok}", ok,
            "reference runs of experiments/rank_growth/parts/full_head.py; no theorem covers a non-diagonal "
            "head" + (" or Adam" if opt == "adam" else "") + " (Boix-Adsera et al. 2023, Algorithm 1, is the "
            "diagonal case)"))
    return checks
