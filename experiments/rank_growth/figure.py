"""The `rank_growth` figure, drawn from a result file alone (`data[part] = {predicted, measured}`)."""
from __future__ import annotations

import numpy as np

from experiments.rank_growth.analysis import floats
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
    ax = axes[0, 1]
    tp = halfway_steps(sx_P, sx_M["u0"])                                   # (A, S, r)
    tm = floats(sx_M["t_cross"])
    for j, a in enumerate(sx_M["alphas"]):
        ax.scatter(tp[j].ravel(), tm[j].ravel(), s=10, color=COLORS[j % len(COLORS)], label=f"α={a:g}")
    lo, hi = np.nanmin(tp), np.nanmax(tp)
    ax.plot([lo, hi], [lo, hi], **PRED, label="t_meas = t_pred")
    ax.set(xscale="log", yscale="log", xlabel="predicted stage time (GD steps)",
           ylabel="measured (σ_i crosses s_i/2)", title="Saxe stage times, every mode and seed")
    ax.legend(fontsize=7)

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
    for name, color in (("gd", "tab:blue"), ("adam", "tab:orange")):
        h = fh_M[name]
        st = floats(h["step"])
        live = floats(h["sigma_max"])[0] > cfg["head_floor"]               # seed 0
        ax.step(st, np.where(live, floats(h["rank"])[0], 0), where="post", lw=1.5, color=color,
                label=f"{name}: #σ > {cfg['head_rel']:g}σmax")
        ax.plot(st, np.where(live, floats(h["stable_rank"]), 0.0), ls=":", lw=1.2, color=color,
                label=f"{name}: stable rank")
    ax.axhline(fh_P["teacher_rank"], **PRED, label=f"teacher rank {fh_P['teacher_rank']}")
    ax.axhline(fh_P["teacher_stable_rank"], color="black", ls=":", lw=0.8, label="teacher stable rank")
    ax.set(xlabel="step (log)", xscale="log", ylabel="rank of Δ(W_K W_Q^T)",
           title="full head, seed 0 (expected, no theorem)")
    ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("rank_growth: " + result.get("verdict", ""), fontsize=10)
    return fig


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
