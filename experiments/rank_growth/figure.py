"""The `rank_growth` figure, drawn from a result file alone (`data[part] = {predicted, measured}`)."""
from __future__ import annotations

import types

import numpy as np

from experiments.rank_growth.analysis import climbs_every_level, floats
from experiments.rank_growth.parts import full_head
from experiments.rank_growth.parts.saxe_linear_net import halfway_steps

COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive"]


def plot(result: dict):
    from theory.harness.plotting import MEAS, PRED, figure
    d, cfg = result["data"], result["config"]
    fig, axes = figure(2, 3, width=4.2, height=3.3)

    rc = d["rescaled_collapse"]
    _collapse_panel(axes[0, 0], rc["measured"], cfg["saxe_lr"], rc["predicted"]["limit"],
                    rc["predicted"]["plateau_losses"], "predicted lr/ln(1+lr s_i)", "1/2 Σ_{j>k} s_j²",
                    "Saxe net: loss collapses onto staircase")

    sx_P, sx_M = d["saxe_linear_net"]["predicted"], d["saxe_linear_net"]["measured"]
    _stage_time_panel(axes[0, 1], sx_P, sx_M, cfg["refined_tol"])

    ax = axes[0, 2]
    sig = floats(sx_M["sigma"])                                            # (points, d) smallest alpha, seed 0
    steps = np.arange(sig.shape[0]) * sx_M["thin"] + 1
    a = min(sx_M["alphas"])
    tau = cfg["saxe_lr"] * steps / np.log(1 / a)
    for m in range(sig.shape[1]):
        ax.plot(tau, sig[:, m], **MEAS if m == 0 else dict(color="tab:blue", lw=1.2))
    ax2 = ax.twinx()
    ax2.step(tau, (sig > cfg["rank_threshold"]).sum(axis=1), color="tab:red", lw=1.0, where="post")
    ax2.set_ylabel("rank (σ > threshold)", color="tab:red")
    for t in sx_P["limit"]:
        ax.axvline(t, **PRED)
    ax.set(xlabel="rescaled time", ylabel="σ_i(W2 W1)", title=f"singular values and rank, α={a:g}")

    at_P, at_M = d["diag_attention"]["predicted"], d["diag_attention"]["measured"]
    _collapse_panel(axes[1, 0], at_M, cfg["att_lr"], at_P["times"], at_P["saddle_losses"],
                    "Algorithm 1 stage times", "predicted saddle losses",
                    "diagonal attention head vs Algorithm 1 (greedy)")

    ax = axes[1, 1]
    th = floats(at_M["theta"])                                             # (points, 2d) smallest alpha
    steps = np.arange(th.shape[0]) * at_M["thin"] + 1
    a = min(at_M["alphas"])
    tau = cfg["att_lr"] * steps / np.log(1 / a)
    for i in range(th.shape[1]):
        if np.abs(th[:, i]).max() > 1e-3:
            ax.plot(tau, th[:, i], lw=1.3, label=at_P["names"][i])
    for t in at_P["times"]:
        ax.axvline(t, **PRED)
    ax.set(xlabel="rescaled time", ylabel="a = w_K w_Q,  b = w_V w_O",
           title=f"coordinates switch on one at a time (α={a:g})")
    ax.legend(fontsize=7, ncol=2)

    ax = axes[1, 2]
    fh_P, fh_M = d["full_head"]["predicted"], d["full_head"]["measured"]
    head_cfg = types.SimpleNamespace(**cfg)
    tally = []
    for name, color in (("gd", "tab:blue"), ("adam", "tab:orange")):
        climbs = [climbs_every_level(lv, fh_P["teacher_rank"]) for lv in full_head.live_levels(head_cfg, fh_M[name])]
        k_min = full_head.required_climbs(head_cfg, name, len(climbs))[0]
        tally.append(f"{name} {sum(climbs)}/{len(climbs)} (need ≥{k_min})")
        h = fh_M[name]
        st = floats(h["step"])
        for i, (rank, smax) in enumerate(zip(floats(h["rank"]), floats(h["sigma_max"]))):
            live = smax > cfg["head_floor"]                                # log points the judge reads
            ax.step(st, np.where(live, rank, 0) + (0.04 * i if i else 0), where="post", color=color,
                    lw=1.5 if i == 0 else 0.6, alpha=1.0 if i == 0 else 0.6,
                    label=f"{name}: #σ > {cfg['head_rel']:g}σmax (seed 0 bold)" if i == 0 else None)
        ax.plot(st, np.where(floats(h["sigma_max"])[0] > cfg["head_floor"], floats(h["stable_rank"]), 0.0),
                ls=":", lw=1.2, color=color, label=f"{name}: stable rank, seed 0")
    ax.axhline(fh_P["teacher_rank"], **PRED, label=f"teacher rank {fh_P['teacher_rank']}")
    ax.axhline(fh_P["teacher_stable_rank"], color="black", ls=":", lw=0.8, label="teacher stable rank")
    ax.set(xlabel="step (log)", xscale="log", ylabel="rank of Δ(W_K W_Q^T)",
           title="full head, seeds climbing 1, 2, .., r:\n" + ", ".join(tally))
    ax.legend(fontsize=6, loc="upper left")
    fig.suptitle("rank_growth: " + result.get("verdict", ""), fontsize=10)
    return fig


def _stage_time_panel(ax, P, M, tol):
    """Distribution over seeds of each seed's worst mode, max_i |t_meas/t_pred - 1|, per alpha: the
    plain u0 (data, seed-dependent) and the orthogonalised u0 (the pass criterion, below tol)."""
    from theory.harness.plotting import PRED
    tm = floats(M["t_cross"])                                              # (A, S, r)
    refined = np.abs(tm / halfway_steps(P, M["u0_orth"]) - 1).max(axis=2)  # (A, S)
    for j, row in enumerate(M["plain_error_summary"]):
        color = COLORS[j % len(COLORS)]
        for err, ls, what in ((floats(row["per_seed"]), "-", "plain u0"), (refined[j], "--", "orthogonalised u0")):
            x = np.sort(np.maximum(err, 1e-5))
            ax.step(x, np.arange(1, x.size + 1) / x.size, where="post", color=color, ls=ls, lw=1.3,
                    label=f"α={row['alpha']:g}, {what}")
    ax.axvline(tol, **PRED, label=f"tolerance {tol:g} (orthogonalised)")
    ax.set(xscale="log", xlabel="max over modes of |t_meas/t_pred - 1|", ylabel=f"fraction of {refined.shape[1]} seeds",
           title="Saxe stage times: error over seeds")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(0.13, 0.99))


def _collapse_panel(ax, M, lr, times, plateaus, times_label, plateau_label, title):
    """Loss against rescaled time lr*step/ln(1/alpha) for every alpha, with predicted stage times
    (vertical) and plateau losses (horizontal): the curves collapse as alpha -> 0."""
    from theory.harness.plotting import PRED
    for j, a in enumerate(M["alphas"]):
        L = floats(M["loss"][j])
        steps = np.arange(len(L)) * M["thin"] + 1
        ax.plot(lr * steps / np.log(1 / a), L, color=COLORS[j % len(COLORS)], lw=1.2, label=f"α={a:g}")
    for k, t in enumerate(times):
        ax.axvline(t, **PRED, label=times_label if k == 0 else None)
    for k, Lk in enumerate(plateaus[:-1]):
        ax.axhline(Lk, color="gray", ls=":", lw=0.8, label=plateau_label if k == 0 else None)
    ax.set(xlabel="rescaled time  η·step / ln(1/α)", ylabel="loss (log)", yscale="log",
           xlim=(0, 1.3 * max(times)), ylim=(1e-3, 2 * plateaus[0]), title=title)
    ax.legend(fontsize=7)
