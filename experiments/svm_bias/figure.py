"""The figure of claim `svm_bias`, drawn from the result file alone (six panels, one per part)."""
from __future__ import annotations

import numpy as np

from .parts.overparameterisation import REFERENCE_FIRST, REFERENCE_LAST, global_fractions, two_sd


def _measured(data: dict, part: str) -> dict:
    return (data.get(part) or {}).get("measured") or {}


def _arr(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _direction_panel(a, data, MEAS, PRED, CONTROL) -> None:
    w, kq, pl = _measured(data, "w_ngd"), _measured(data, "kq_ngd"), _measured(data, "plain_gd")
    a.loglog(w["steps"], 1 - _arr(w["cos_frob_traj_mean"]), label="W, NGD vs W^mm_F", **MEAS)
    a.loglog(kq["W_steps"], 1 - _arr(kq["W_cos_nuclear_traj_mean"]), color="tab:blue", ls=":",
             label="W, NGD vs W^mm_*")
    a.loglog(kq["KQ_steps"], 1 - _arr(kq["KQ_cos_nuclear_traj_mean"]), color="tab:orange", lw=1.8,
             label="KQ^T, NGD vs W^mm_*")
    a.loglog(kq["KQ_steps"], 1 - _arr(kq["KQ_cos_frob_traj_mean"]), color="tab:orange", ls=":",
             label="KQ^T, NGD vs W^mm_F")
    a.loglog(pl["plain_steps"], 1 - _arr(pl["plain_cos_frob_traj_mean"]), color="tab:green",
             label="W, plain GD vs W^mm_F")
    if w.get("naive"):
        a.loglog(w["steps"], 1 - _arr(w["naive"]["cos_frob_traj_mean"]),
                 label="W, NGD, autodiff softmax grad", **CONTROL)
    a.axhline(0.01, label="1 - 0.99 (check)", **PRED)
    a.set(xlabel="iteration k", ylabel="1 - cos(W(k), SVM of its selection)",
          title="direction convergence (mean)")
    a.legend(fontsize=6)


def _sweep_panel(a, data, n, MEAS, PRED) -> None:
    sw = _measured(data, "overparameterisation")
    ds, fr = sw["sweep_ds"], global_fractions(sw)
    count = len(sw["selected"][0])
    a.errorbar(ds, fr, yerr=[two_sd(f, count) for f in fr], marker="o", capsize=3,
               label="measured (+- 2 binomial s.d.)", **MEAS)
    a.plot([ds[0], ds[-1]], [REFERENCE_FIRST, REFERENCE_LAST], marker="s",
           label=f"reference runs ~{REFERENCE_FIRST:g} / >= {REFERENCE_LAST:g}", **PRED)
    a.set(xlabel="d", ylabel="fraction selecting global opt", ylim=(0, 1.05),
          title=f"over-parameterisation (n={n}, NGD)")
    a.set_xticks(ds, [str(x) for x in ds])
    a.legend()


def _rank_panel(a, data, n, MEAS, PRED) -> None:
    sr = _measured(data, "svm_ranks")
    panel, ds = sr["panel"], data["svm_ranks"]["predicted"]["rank_ds"]
    d_col, feas = np.asarray(panel["d"]), np.asarray(panel["feasible"], bool)

    def mean_of(key):
        col = np.array([np.nan if v is None else v for v in panel[key]], dtype=np.float64)
        return [np.nanmean(col[(d_col == d) & feas]) if np.any(np.isfinite(col[(d_col == d) & feas]))
                else np.nan for d in ds]
    a.plot(ds, [min(n, d) for d in ds], label="min(n, d) (bound)", **PRED)
    a.plot(ds, mean_of("rank_exact"), marker="o", label="rank W^mm_F (mean)", **MEAS)
    a.plot(ds, mean_of("rank_independent"), marker="x", ls="none", color="black",
           label="certified rank, independent solve")
    a.plot(ds, mean_of("rank_nuclear"), marker="s", color="tab:orange", label="rank W^mm_* (sigma > 1% max)")
    a.set(xlabel="d", ylabel="rank (mean over feasible)", title=f"SVM ranks (n = {n})")
    a.legend(fontsize=6, loc="upper left")
    b = a.twinx()
    frac = [np.nan if f is None else f for f in sr["full_rank_fraction"]]
    b.bar(ds, frac, width=0.4, alpha=0.25, color="tab:green")
    b.set(ylim=(0, 1.05), ylabel="fraction with rank W^mm_F = min(n, d) (bars)")


def _path_panel(a, data, MEAS, PRED, CONTROL) -> None:
    p = _measured(data, "regularization_path")
    R, cos = p["path_radii"], _arr(p["path_cos"])                                  # (B, R)
    local = ~np.asarray(p["gd_selects_opt"], bool)
    a.semilogx(R, cos.mean(axis=0), marker="o", label="unseeded search (random starts + kicks), mean", **MEAS)
    a.semilogx(R, cos.min(axis=0), marker=".", color="tab:blue", ls=":", label="unseeded path, min")
    if local.any():
        a.semilogx(R, cos[local].mean(axis=0), marker="x", label="unseeded, instances where GD went local",
                   **CONTROL)
    a.semilogx(R, _arr(p["seeded_path_cos"]).mean(axis=0), color="tab:gray", ls="--",
               label="seeded with W^mm_opt (loss comparison only)")
    a.axhline(1.0, label="W^mm_opt direction (theory)", **PRED)
    a.set(xlabel="ball radius R", ylabel="cos(W_R, W^mm_opt)", title="regularization path")
    a.legend(fontsize=6)


def _norm_panel(a, data, MEAS, PRED) -> None:
    pl = _measured(data, "plain_gd")
    k, nk = _arr(pl["plain_steps"]), _arr(pl["plain_norm_mean"])
    svm = np.nanmean(_arr(pl["plain_svm_norm"]))
    a.semilogx(k, nk, label="plain GD ||W(k)||_F (mean)", **MEAS)
    late = k >= k[-1] / 10
    c = np.mean(nk[late] - svm * np.log(k[late]))
    a.semilogx(k, svm * np.log(k) + c, label=f"||W^mm_alpha||_F ln k + c (slope {svm:.2f}, theory)", **PRED)
    a.axvline(k[-1] / 10, color="gray", lw=0.8, ls=":", label="fitted decade starts")
    a.set(xlabel="iteration k", ylabel="||W(k)||_F", title="plain GD: norm growth")
    a.legend(fontsize=6)


def _plane_panel(a, data) -> None:
    tr = _measured(data, "trajectory_2d")
    if tr:
        Wz = _arr(tr["Wz"]) / _arr(tr["W_norm"])[:, None, None]                  # (K, n, 2)
        Wmm = _arr(tr["Wmm_z"]) / float(tr["Wmm_fro"])                            # (n, 2)
        for i in range(Wz.shape[1]):
            a.plot(Wz[:, i, 0], Wz[:, i, 1], color=f"C{i}", lw=1.5, label=f"W(k) z_{i + 1} / ||W(k)||_F")
            a.plot(Wz[-1:, i, 0], Wz[-1:, i, 1], "o", color=f"C{i}", ms=4)
            a.plot([Wmm[i, 0]], [Wmm[i, 1]], marker="*", ms=13, ls="none", mfc="none", mec="black",
                   label="W^mm z_i / ||W^mm||_F (theory)" if i == 0 else None)
        a.set_aspect("equal", adjustable="datalim")
    a.set(xlabel="coordinate 1", ylabel="coordinate 2",
          title=f"2-D instance (n=2, T=3), NGD from W = 0, {len(tr.get('W_norm', []))} logs")
    a.legend(fontsize=6)


def plot(result: dict):
    from theory.harness.plotting import CONTROL, MEAS, PRED, figure
    data, n = result["data"], result["config"]["n"]
    fig, ax = figure(2, 3, width=4.2, height=3.3, layout="constrained")
    _direction_panel(ax[0, 0], data, MEAS, PRED, CONTROL)
    _sweep_panel(ax[0, 1], data, n, MEAS, PRED)
    _rank_panel(ax[0, 2], data, n, MEAS, PRED)
    _path_panel(ax[1, 0], data, MEAS, PRED, CONTROL)
    _norm_panel(ax[1, 1], data, MEAS, PRED)
    _plane_panel(ax[1, 2], data)
    n_pass = sum(c["passed"] for c in result["checks"])
    fig.suptitle(f"svm_bias: {n_pass}/{len(result['checks'])} checks pass "
                 f"(preset {result['preset']}, seed {result['seed']})")
    return fig
