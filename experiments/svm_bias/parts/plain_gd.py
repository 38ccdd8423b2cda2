"""Part `plain_gd`: plain GD grows ||W(k)|| like ||W^mm_alpha|| log k and turns toward W^mm slower than NGD.

Plain GD W(k+1) = W(k) - eta grad L(W(k)) on separable data: near the limit the loss gradient is a
positive combination of exp(-<A_it, W>) A_it (the softmax tail on the tokens GD did not select,
weighted by |l'| (gamma_ia - gamma_it) > 0 at a locally optimal selection alpha), the gradient of an
exponentially-tailed loss on the features A_it. For such losses W(k) = W^mm_alpha ln k + rho(k) with
rho bounded (Soudry et al. 2018, JMLR 19), so

    d ||W(k)||_F / d ln k  ->  ||W^mm_alpha||_F,

the Frobenius Att-SVM norm of the selection GD reaches (derived here for attention; Tarzanagh et al.
2023 state ||W(k)|| -> infinity). sqrt k growth would give a slope rising without bound (about 2.5x
the SVM norm over the last decade at the same final norm), so the slope separates log k from sqrt k;
the window must be late (at 400-4000 steps the slope still overshoots by ~20%). Normalized GD,
which steps eta in direction each iteration, is far ahead at equal k. Both run on the part's own
instances from the same init.
"""
from __future__ import annotations

import math

import numpy as np

from theory.engine.keys import Keys
from theory.harness.results import close, holds

from .. import common
from ..config import Config

NORM_POINTS = 120      # log-spaced log points at which the per-run norms are kept (~40 per decade)


def predict(cfg: Config) -> dict:
    """The limit of d||W||/d ln k over ||W^mm_alpha||, and the ratio of the norm's increments over two
    successive decades for three growth laws (reported beside the check)."""
    return {"slope_over_svm_norm": 1.0,
            "decade_ratio_log_k": 1.0, "decade_ratio_sqrt_k": math.sqrt(10.0), "decade_ratio_linear_k": 10.0}


def measure(cfg: Config, keys: Keys, progress: str | None) -> dict:
    """Plain GD and normalized GD from the same init on cfg.seeds instances; cosines to W^mm."""
    batch = common.draw_instances(keys.sub("instances"), cfg.seeds, cfg.n, cfg.T, cfg.d)
    insts = common.host_instances(batch)
    svms = common.SVMs(insts)
    common.require_feasible(svms.frobenius([common.opt_tokens(i) for i in insts]), cfg)
    init_keys = keys.sub("init_W").runs(cfg.seeds)
    out = {}
    for name, optimizer, eta, steps in (("plain", "gd", cfg.plain_eta, cfg.plain_steps),
                                         ("ngd", "normalized_gd", cfg.eta, cfg.steps)):
        W_fin, tr = common.train(cfg, batch, init_keys, optimizer=optimizer, eta=eta, steps=steps,
                                 label=f"W-{name}", progress=progress)
        W_traj = np.asarray(tr.logged)                                               # (N, K, d, d)
        sols = svms.frobenius([common.selected(W, i) for W, i in zip(W_fin, insts)])
        out[f"{name}_steps"] = np.asarray(tr.step[0])                               # (K,)
        out[f"{name}_cos_frob_traj_mean"] = common.nanmean_rows(common.cosine_trajectories(W_traj, sols))
        out[f"{name}_norm_mean"] = np.linalg.norm(W_traj, axis=(2, 3)).mean(axis=0)  # (K,)
        if name == "plain":                     # per-run norms at NORM_POINTS log-spaced log points
            idx = np.unique(np.round(np.geomspace(1, W_traj.shape[1], NORM_POINTS)).astype(int) - 1)
            out["plain_norm_steps"] = np.asarray(tr.step[0])[idx]                    # (P,)
            out["plain_norm"] = np.linalg.norm(W_traj[:, idx], axis=(2, 3))           # (N, P)
            out["plain_svm_norm"] = [s.objective if s.feasible else None for s in sols]   # (N,), null: infeasible
    return out


def _at(steps: np.ndarray, k: int) -> int:
    """Index of the log point nearest to step k."""
    return int(np.argmin(np.abs(steps - k)))


def decade_ratio(steps, norm, K: int) -> float:
    """(||W(K)|| - ||W(K/10)||) / (||W(K/10)|| - ||W(K/100)||) from the logged mean norm."""
    steps, norm = np.asarray(steps), np.asarray(norm, dtype=np.float64)
    late = norm[_at(steps, K)] - norm[_at(steps, K // 10)]
    early = norm[_at(steps, K // 10)] - norm[_at(steps, K // 100)]
    return float(late / early) if early > 0 else float("inf")


def slope_ratios(steps, norms, svm_norms, K: int) -> np.ndarray:
    """Per run, the least-squares slope of ||W(k)||_F against ln k over the last decade [K/10, K],
    divided by ||W^mm_alpha||_F of the run's final selection (nan where that SVM is infeasible); (N,)."""
    k = np.asarray(steps, dtype=np.float64)
    late = (k >= K / 10) & (k <= K)
    svm = np.array([np.nan if s is None else s for s in svm_norms], dtype=np.float64)
    slopes = np.array([np.polyfit(np.log(k[late]), np.asarray(n, np.float64)[late], 1)[0] for n in norms])
    return slopes / svm


def judge(cfg: Config, P: dict, M: dict) -> list:
    K = cfg.plain_steps
    ratio = decade_ratio(M["plain_steps"], M["plain_norm_mean"], K)
    slope = slope_ratios(M["plain_norm_steps"], M["plain_norm"], M["plain_svm_norm"], K)
    tol = 1.0 / math.log(K / 10)
    k_cmp = min(cfg.steps, cfg.plain_steps)
    cos_pl = float(np.asarray(M["plain_cos_frob_traj_mean"], float)[_at(np.asarray(M["plain_steps"]), k_cmp)])
    cos_ngd = float(np.asarray(M["ngd_cos_frob_traj_mean"], float)[_at(np.asarray(M["ngd_steps"]), k_cmp)])
    return [
        close("plain_gd_norm_grows_like_log_k", f"Under plain GD, ||W(k)||_F grows like ||W^mm_alpha||_F ln k "
              f"over the last decade (k = {K // 10}..{K}; mean over runs of slope / ||W^mm_alpha||_F, "
              f"conditional on GD's selection; min {np.nanmin(slope):.3f}, max {np.nanmax(slope):.3f}; "
              f"decade ratio of the mean norm {ratio:.3f}, log k: 1, sqrt k: {P['decade_ratio_sqrt_k']:.2f}).",
              "predicted", P["slope_over_svm_norm"], common.finite_mean(slope), tol,
              "W(k) = W^mm ln k + O(1) for exponentially-tailed losses on separable data (Soudry et al. "
              "2018, JMLR 19; derived here for the softmax tail, experiments/svm_bias/parts/plain_gd.py), "
              f"so the slope -> ||W^mm_alpha||_F; tolerance 1/ln(K/10) = {tol:.3f}, the O(1/ln k) rate of "
              "that direction convergence (unit constant) at the start of the window; sqrt k growth gives ~2.5"),
        holds("plain_gd_slower_than_ngd", f"At k = {k_cmp}, plain GD is less aligned with W^mm than "
              "normalized GD, conditional on each one's selection.", "predicted",
              f"cos(plain, {k_cmp}) < cos(NGD, {k_cmp})", f"{cos_pl:.4f} < {cos_ngd:.4f}",
              bool(cos_pl < cos_ngd),
              "Tarzanagh et al. 2023: plain GD's norm grows like log k, so its direction converges "
              "more slowly than normalized GD's fixed-length steps"),
    ]
