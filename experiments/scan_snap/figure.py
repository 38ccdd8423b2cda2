"""The scan_snap figure, drawn from a result file's `data` alone (one panel per measurement)."""
from __future__ import annotations

import numpy as np


def _log_ticks(ax, values) -> None:
    """A log x axis with one labelled tick per value and no minor ticks."""
    ax.set_xscale("log")
    ax.set_xticks(values, [f"{v:g}" for v in values])
    ax.minorticks_off()


def _attention_heat(ax, fig, P: dict, M: dict, order_eta_Z: float) -> None:
    """(a) attention c_n of class 0 over GD steps, common tokens below the white line."""
    heat = np.asarray(M["heat"], dtype=float)
    steps = M["heat_steps"]
    im = ax.imshow(heat, aspect="auto", origin="lower", cmap="viridis",
                   extent=(0, len(steps), 0, heat.shape[0]))
    ticks = np.linspace(0, len(steps) - 1, 5).astype(int)
    ax.set_xticks(ticks + 0.5, [f"{steps[i]:g}" for i in ticks])
    ax.axhline(M["n_common"], color="w", lw=0.8)
    ax.set(xlabel="GD step", ylabel="token: common | distinct (P up)",
           title=f"attention c_n, eta_Y={P['fig_eta_Y']:g}, eta_Z={order_eta_Z:g}")
    fig.colorbar(im, ax=ax, fraction=0.05)


def _z_trajectories(ax, P: dict, M: dict, styles) -> None:
    """(b) z_l against GD steps, with the predicted snap step."""
    PRED, MEAS, CONTROL = styles
    zt = np.asarray(M["z_traj"], dtype=float)
    ts = np.asarray(M["heat_steps"])
    nc = M["n_common"]
    for i, row in enumerate(zt):
        ax.plot(ts, row, color=("tab:red" if i < nc else "tab:blue"), lw=0.8,
                alpha=(0.5 if i < nc else 0.3 + 0.7 * (i - nc + 1) / (len(zt) - nc)))
    ax.axvline(P["fig_snap_step"], **PRED, label="predicted snap t0")
    ax.plot([], [], **MEAS, label="z_l distinct (darker = larger P)")
    ax.plot([], [], **CONTROL, label="z_l common")
    ax.set(xscale="log", xlabel="GD step", ylabel="z_ml", title="scan, then snap")
    ax.legend()


def _finite(values) -> np.ndarray:
    """JSON numbers (with "inf" for a run that never crossed) as floats, non-finite ones dropped."""
    v = np.asarray(values, dtype=float)
    return v[np.isfinite(v)]


def _snap_time(ax, P: dict, M: dict, n_common: int, styles) -> None:
    """(c) t0 eta_Y against eta_Y: the main and the small rates, the line to eta_Y = 0 and Lemma 6."""
    from experiments.scan_snap.parts.snap_time import limit_fit
    PRED, MEAS, CONTROL = styles
    t0 = P["t0_eta"]
    ax.axhline(t0, **PRED, label=f"Lemma 6/8: {t0:.2f}")
    eY = np.asarray(P["eta_Y"] + P["limit_eta_Y"], dtype=float)
    ortho = np.asarray(M["t0_eta_orthogonal"] + M["t0_eta_limit"], dtype=float)
    order = np.argsort(eY)
    ax.plot(eY[order], ortho[order], "o", **MEAS, label="measured, orthogonal")
    a, b = limit_fit(P["limit_eta_Y"], M["t0_eta_limit"])
    if np.isfinite(a):
        x = np.asarray([0.0, max(P["limit_eta_Y"])])
        ax.plot(x, a + b * x, color=MEAS["color"], lw=0.8, label=f"line to eta_Y = 0: {a:.2f}")
    ax.plot(P["eta_Y"], M["t0_eta_common"], "s-", **CONTROL, label=f"measured, {n_common} common tokens")
    top = np.concatenate([_finite(M["t0_eta_common"]), [t0]]).max()
    ax.set(xlabel="eta_Y", ylabel="t0 * eta_Y", title="snap time ~ 1/eta_Y", xlim=(0, 1.05 * eY.max()),
           ylim=(0, 1.6 * top))
    ax.legend()


def _decoder_loss(ax, P: dict, M: dict, styles) -> None:
    """(d) the eta_Z = 0 decoder loss against Lemma 5 (discrete) and Lemma 6 (continuous)."""
    PRED, MEAS, _ = styles
    i = P["decoder_index"]
    measured = M["decoder_loss"][i]
    t = np.arange(len(measured))
    ax.plot(t, measured, **MEAS, label="measured (eta_Z = 0)")
    ax.plot(t, P["decoder_loss_lemma5"][i], **PRED, label="Lemma 5 recursion")
    ax.plot(t, P["decoder_loss_lemma6"], color="0.5", ls=":", label="Lemma 6 continuous")
    ax.axhline(P["snap_loss"], color="0.6", lw=0.8)
    ax.set(yscale="log", xlabel="GD step", ylabel="loss",
           title=f"decoder, orthogonal classes, eta_Y={P['decoder_eta_Y']:g}")
    ax.legend()


def _invariant(ax, cfg: dict, M: dict, finite, styles) -> None:
    """(e) invariant spread against eta_Z/eta_Y (population), with the sampled runs' |spread|."""
    PRED, MEAS, _ = styles
    ax.plot(cfg["invariant_ratios"], M["invariant_spread"], "o-", **MEAS, label="population model")
    ax.axhline(0.05, **PRED, label="tolerance 0.05 (theory: 0 as ratio -> 0)")
    if finite is not None:
        T_lo = str(cfg["breakdown_T"])
        for T, v in finite["measured"]["spreads"].items():
            vv = np.abs(np.asarray(v, dtype=float))
            ax.plot(np.full(len(vv), finite["predicted"]["ratio"]), vv, "+" if T == T_lo else "x",
                    color="tab:red" if T == T_lo else None, label=f"sampled T={T} (step {cfg['finite_T_steps']})")
    ax.set(xscale="log", yscale="log", xlabel="eta_Z / eta_Y", ylabel="max I_l / min I_l - 1",
           title=f"ordering invariant (step {cfg['invariant_step']})")
    ax.legend()


def _zmax(ax, cfg: dict, P: dict, M: dict, styles) -> None:
    """(f) z_max against eta_Y at fixed steps, with Theorem 4's B(t) scaled to the first point."""
    PRED, MEAS, _ = styles
    eY = cfg["order_eta_Y"]
    for s, v in M["zmax_at_steps"].items():
        ax.plot(eY, v, "o-", **dict(MEAS, alpha=0.4 + 0.6 * (s == str(cfg["order_step"]))),
                label=f"z_max at step {s}")
    B = np.asarray(P["B"], dtype=float)
    ax.plot(eY, B * M["zmax"][0] / B[0], **PRED, label="Thm 4 B(t), scaled")
    _log_ticks(ax, eY)
    ax.set(xlabel="eta_Y", ylabel="z_max", title=f"denser attention for larger eta_Y (eta_Z={cfg['order_eta_Z']:g})")
    ax.legend()


def _fig6(ax, cfg: dict, P: dict, M: dict) -> None:
    """(g) the Fig. 6 slice: our mean entropy (s.e. bars) against the reference means decoded from the
    authors' released data (figure_6_data.pkl)."""
    ratios = cfg["fig6_ratios"]
    for a, ez in enumerate(cfg["fig6_eta_Z"]):
        col = ["tab:blue", "tab:orange", "tab:green"][a % 3]
        ax.errorbar(ratios, M["entropy"][a], M["sem"][a], color=col, marker="o", label=f"ours eta_Z={ez:g}")
        pp = [(r, v) for r, v in zip(ratios, P["paper"][a]) if v is not None]
        if pp:
            ax.plot(*zip(*pp), color=col, ls="--", marker="x", label=f"authors' data eta_Z={ez:g}")
    ax.axhline(P["initial"], color="0.6", lw=0.8)
    _log_ticks(ax, ratios)
    ax.set(xlabel="eta_Y / eta_Z", ylabel="entropy of c_n over distinct",
           title=f"paper Fig. 6 slice ({M['seeds']} seeds)")
    ax.legend()


def _convergence_in_T(ax, cfg: dict, M: dict, styles) -> None:
    """(h) finite T: the invariant's violation I_rare/I_top - 1 against 1/T, the line a + b/T, the
    population value at 1/T = 0."""
    from experiments.scan_snap.parts.finite_t import inverse_t_fit
    PRED, MEAS, _ = styles
    Ts = [int(T) for T in cfg["finite_T"]]
    v = [np.asarray(M["violation"][str(T)], dtype=float) for T in Ts]
    mean = np.asarray([x.mean() for x in v])
    se = np.asarray([x.std(ddof=1) / np.sqrt(x.size) for x in v])
    x = 1.0 / np.asarray(Ts, dtype=float)
    for xi, vi in zip(x, v):
        ax.plot(np.full(vi.size, xi), vi, ".", color=MEAS["color"], alpha=0.3)
    ax.errorbar(x, mean, 3 * se, fmt="o", color=MEAS["color"], label="sampled, mean +- 3 s.e.")
    fit = inverse_t_fit(Ts, mean, se)
    xx = np.asarray([0.0, x.max()])
    ax.plot(xx, fit["a"] + fit["b"] * xx, color=MEAS["color"], lw=0.8, label=f"a + b/T, b = {fit['b']:.0f}")
    ax.errorbar([0.0], [fit["a"]], [3 * fit["se_a"]], fmt="s", color=MEAS["color"], mfc="white")
    ax.plot([0.0], [M["population_violation"]], "*", ms=10, color=PRED["color"], label="population (T -> inf)")
    for xi, m, T in zip(x, mean, Ts):
        ax.annotate(f"T={T}", (xi, m), textcoords="offset points", xytext=(6, 6), fontsize=7)
    ax.set(xlabel="1/T", ylabel="I_rare / I_top - 1",
           title=f"finite T: the invariant converges as 1/T (step {cfg['finite_T_steps']})")
    ax.legend()


def plot(result: dict):
    from theory.harness.plotting import CONTROL, MEAS, PRED, figure
    styles = (PRED, MEAS, CONTROL)
    d, cfg = result["data"], result["config"]
    fig, ax = figure(2, 4, width=4.0, height=3.2)
    ax = ax.ravel()
    snap, scan = d["snap_time"], d["scan"]
    _attention_heat(ax[0], fig, scan["predicted"], scan["measured"], cfg["order_eta_Z"])
    _z_trajectories(ax[1], scan["predicted"], scan["measured"], styles)
    _snap_time(ax[2], snap["predicted"], snap["measured"], cfg["n_common"], styles)
    _decoder_loss(ax[3], snap["predicted"], snap["measured"], styles)
    _invariant(ax[4], cfg, scan["measured"], d.get("finite_T"), styles)
    _zmax(ax[5], cfg, scan["predicted"], scan["measured"], styles)
    if "fig6" in d:
        _fig6(ax[6], cfg, d["fig6"]["predicted"], d["fig6"]["measured"])
    else:
        ax[6].axis("off")
    if "finite_T" in d:
        _convergence_in_T(ax[7], cfg, d["finite_T"]["measured"], styles)
    else:
        ax[7].axis("off")
    fig.suptitle(f"scan_snap: {result.get('verdict', '')}")
    return fig
