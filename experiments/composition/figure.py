"""The `composition` figure, drawn from a result file alone (`data[part] = {predicted, measured}`).

Panels: recall accuracy after one step against d (Part 1); the induction head's two attention maps,
the three memory probes against steps and the final previous-token probe by key position and
against how often each position is read (Part 2);
exact match against k (Part 3, drawn by `plot_compounding` of experiments/composition/parts/compounding.py
when that part ran)."""
from __future__ import annotations

import importlib.util

import numpy as np

COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown"]
PROBE_COLORS = {"wo1": "tab:red", "wk1": "tab:green", "wk0": "tab:blue"}


def _recall(ax, P: dict, M: dict, cfg: dict) -> None:
    from theory.harness.plotting import PRED
    for j, N in enumerate(cfg["n_pairs"]):
        c, Pn, Mn = COLORS[j % len(COLORS)], P[f"N{N}"], M[f"N{N}"]
        dims, acc = np.asarray(Pn["dims"], float), np.asarray(Mn["accuracy"], float)   # (dims, seeds)
        for k in range(acc.shape[1]):
            ax.scatter(dims, acc[:, k], s=6, color=c, alpha=0.35)
        ax.plot(dims, acc.mean(axis=1), "o-", color=c, lw=1.2, ms=3,
                label=f"N=M={N}: measured, d50 = {float(M['d50'][f'N{N}']):.1f}")
        ax.plot(dims, Pn["gaussian"], color=c, ls="--", lw=1.2, label="Gaussian model")
        ax.plot(dims, Pn["gaussian_note"], color=c, ls=":", lw=1.0, label="Gaussian, s_w² = 1/d + (N-1)/d²")
        ax.axvline(Pn["d50"], **{**PRED, "color": c, "lw": 0.9}, label=f"√(2N ln M) = {Pn['d50']:.1f}")
        lo, hi = min(Pn["window"]), max(Pn["window"])
        ax.axvspan(lo, hi, color=c, alpha=0.06)
    ax.axhline(0.5, color="0.5", lw=0.6)
    ax.set(xscale="log", xlabel="embedding dimension d", ylabel="recall accuracy after one step",
           title="one gradient step from W = 0 (shaded: [d*/2, 2d*])")
    ax.legend(fontsize=6)


def _maps(axes, M: dict) -> None:
    maps = M["maps"]
    outs = np.asarray(maps["outs"])
    for ax, layer, what in ((axes[0], "layer1", "layer 1 (previous token)"),
                            (axes[1], "layer2", "layer 2 (induction)")):
        A = np.asarray(maps[layer], float)
        ax.imshow(A, cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
        rows = np.nonzero(outs >= 2)[0]
        ax.scatter(np.full(rows.shape, -1.5), rows, s=5, color="tab:red", marker=">", clip_on=False)
        ax.set(xlabel="key position j", ylabel="query position i", title=f"attention, {what}; seed 0")
        ax.grid(False)


def _probes(ax, M: dict, cfg: dict) -> None:
    steps = np.asarray(M["steps"], float)
    for k, c in PROBE_COLORS.items():
        for s, curve in enumerate(M["probes"][k]):
            t = float(M["crossing"][k][s])
            at = ", ".join(f"{float(x):.0f}" for x in M["crossing"][k])
            ax.plot(steps, curve, color=c, lw=1.0, alpha=0.8, label=f"{k} (50% at steps {at})" if s == 0 else None)
            if np.isfinite(t):
                ax.plot([t], [0.5], "|", color=c, ms=8)
    acc = np.asarray(M["accuracy"], float)
    for s, a in enumerate(acc):
        ax.plot(steps[1:], a, color="0.3", lw=0.8, ls="--",
                label="in-context accuracy (probe batch)" if s == 0 else None)
    ax.axhline(0.5, color="0.5", lw=0.6)
    ax.set(xlabel="SGD step", ylabel="probe accuracy", ylim=(-0.02, 1.02),
           title=f"memory probes, {cfg['seeds']} seeds (d={cfg['d_model']}, batch {cfg['batch']})")
    ax.legend(fontsize=6, loc="lower right")


def _profile(ax, M: dict) -> None:
    """The final wk0 probe key position by key position (mean over seeds) against how often each
    position's previous-token memory is read by a target (theory/tasks/bigram.py previous_token_uses)."""
    prof = M["wk0_profile"]
    keys = np.arange(1, len(prof["wk0_by_key"]) + 1)
    ax.plot(keys, prof["wk0_by_key"], color=PROBE_COLORS["wk0"], lw=1.0, label="wk0 hit (mean over seeds)")
    for s, w in enumerate(prof["wk0"]):
        mid = [(a + b) / 2 for a, b in zip(prof["first_key"], prof["last_key"])]
        ax.plot(mid, w, "o", color=PROBE_COLORS["wk0"], ms=3, alpha=0.6,
                label="per block, each seed" if s == 0 else None)
    ax.set(xlabel="key position j (memory p_j -> p_(j-1))", ylabel="final wk0 probe", ylim=(-0.02, 1.02),
           title="previous-token memory by position")
    tw = ax.twinx()
    tw.plot(keys, prof["uses_by_key"], color="0.4", lw=0.8, ls="--", label="reads per sequence (test batch)")
    tw.set_ylabel("targets reading key j, per sequence")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = tw.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=6, loc="lower left")


def _reads(ax, M: dict) -> None:
    """Each block's final wk0 probe against how often its keys are read, every seed a point."""
    prof = M["wk0_profile"]
    for s, (w, u) in enumerate(zip(prof["wk0"], prof["uses"])):
        ax.plot(u, w, "o-", color=PROBE_COLORS["wk0"], ms=4, lw=0.6, alpha=0.4 + 0.2 * (s % 3),
                label=f"seed {s}")
    ax.set(xlabel="targets reading a key of the block, per sequence", ylabel="final wk0 probe on the block",
           ylim=(-0.02, 1.02), title=f"{len(prof['first_key'])} blocks of key positions")
    ax.legend(fontsize=6, loc="lower right")


def _summary(ax, M: dict, cfg: dict) -> None:
    """The test accuracies and the crossing order per seed, as text."""
    t = M["test"]
    lines = [f"V={cfg['vocab']}, T={cfg['seq_len']}, k={cfg['n_triggers']}, d={cfg['d_model']}, "
             f"{cfg['steps']} steps, lr {cfg['lr']}",
             "seed: in-context / bigram-only (per seq.) / 50% steps wo1, wk1, wk0"]
    for s in range(len(t["model"])):
        steps = ", ".join(f"{float(M['crossing'][k][s]):.0f}" for k in ("wo1", "wk1", "wk0"))
        lines.append(f"{s}: {t['model'][s]:.3f} / {t['bigram_per_sequence'][s]:.3f} / {steps}")
    ax.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", fontsize=7, family="monospace", transform=ax.transAxes)
    ax.set_axis_off()


def plot(result: dict):
    from theory.harness.plotting import figure
    d, cfg = result["data"], result["config"]
    fig, axes = figure(2, 4, width=4.3, height=3.4)
    if "memory" in d:
        _recall(axes[0, 0], d["memory"]["predicted"], d["memory"]["measured"], cfg)
    if "induction" in d:
        _probes(axes[0, 1], d["induction"]["measured"], cfg)
        _maps((axes[1, 0], axes[1, 1]), d["induction"]["measured"])
        if "wk0_profile" in d["induction"]["measured"]:
            _profile(axes[1, 2], d["induction"]["measured"])
            _reads(axes[1, 3], d["induction"]["measured"])
        else:
            axes[1, 2].set_axis_off()
            axes[1, 3].set_axis_off()
        _summary(axes[0, 3], d["induction"]["measured"], cfg)
    else:
        for ax in (axes[1, 2], axes[1, 3], axes[0, 3]):
            ax.set_axis_off()
    ax = axes[0, 2]
    compounding = None
    if "compounding" in d and importlib.util.find_spec("experiments.composition.parts.compounding") is not None:
        from experiments.composition.parts import compounding
    if compounding is not None and hasattr(compounding, "plot_compounding"):
        compounding.plot_compounding(ax, d["compounding"])
    else:
        ax.set_axis_off()
    return fig
