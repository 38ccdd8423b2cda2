"""The figure of `arithmetic`, drawn from the result file alone.

Panels: Part 3 (exact match against operand length per scheme, seeds thin, seed mean thick,
training range shaded), Part 3's routing (the attention mass on the operand digits each answer
digit needs, same layout; results from before it was measured leave the panel empty), Part 1 (the
construction over coupled ids and over absolute slots), and Part 2's panel, drawn by
`plot_completion(ax, data)` of experiments/arithmetic/parts/completion.py when that part ran and
provides it.
"""
from __future__ import annotations

import importlib

import numpy as np

from theory.harness.plotting import CONTROL, MEAS, PRED, figure

COLORS = {"coupled": "tab:blue", "abacus": "tab:green", "learned": "tab:red", "hints": "tab:purple",
          "reversed": "tab:orange"}


def plot(result: dict):
    d = result["data"]
    fig, axes = figure(1, 4, width=4.6, height=3.6)
    if "positions" in d:
        _plot_positions(axes[0, 0], d["positions"])
    if "positions" in d and "needed_mass" in d["positions"]["measured"]:
        _plot_routing(axes[0, 1], d["positions"])
    else:
        axes[0, 1].set_axis_off()
    if "construction" in d:
        _plot_construction(axes[0, 2], d["construction"])
    completion = _completion_plotter() if "completion" in d else None
    if completion is not None:
        completion(axes[0, 3], d["completion"])
    else:
        axes[0, 3].set_axis_off()
    return fig


def _completion_plotter():
    try:
        return getattr(importlib.import_module("experiments.arithmetic.parts.completion"), "plot_completion", None)
    except ImportError:
        return None


def _scheme_curves(ax, part: dict, key: str, seeds_in_label: bool) -> None:
    """Part 3's measurement `key` (schemes, S, L) against operand length: the training lengths
    shaded, each seed a thin line, the seed mean thick, one colour per scheme."""
    P, M = part["predicted"], part["measured"]
    n = np.asarray(M["lengths"])
    lo, hi = P["train_digits"]
    ax.axvspan(lo - 0.5, hi + 0.5, color="gray", alpha=0.12, label=f"training lengths {lo}-{hi}")
    for name, v in zip(M["schemes"], M[key]):
        v = np.asarray(v, float)                                        # (S, L)
        c = COLORS.get(name, "black")
        for s in v:
            ax.plot(n, s, color=c, lw=0.6, alpha=0.5)
        ax.plot(n, v.mean(axis=0), color=c, lw=1.8, marker="o", ms=3,
                label=f"{name} ({v.shape[0]} seeds)" if seeds_in_label else name)


def _plot_positions(ax, part: dict) -> None:
    _scheme_curves(ax, part, "exact_match", seeds_in_label=True)
    ax.axhline(0.9, xmin=0, xmax=1, label="coupled >= 0.9 at the longest; learned <= 0.1 beyond", **PRED)
    ax.axhline(0.1, **PRED)
    ax.set(xlabel="operand length (digits)", ylabel="exact match", ylim=(-0.03, 1.03),
           title=f"1-layer decoders, {part['measured']['steps']} steps")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, fontsize=7)


def _plot_routing(ax, part: dict) -> None:
    _scheme_curves(ax, part, "needed_mass", seeds_in_label=False)
    ax.set(xlabel="operand length (digits)", ylabel="attention on the needed digits (best head)",
           ylim=(-0.03, 1.03), title="routing: digits of significance s and s - 1")
    handles, labels = ax.get_legend_handles_labels()                    # the schemes, not the shading again
    ax.legend(handles[1:], labels[1:], loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, fontsize=7)


def _plot_construction(ax, part: dict) -> None:
    P, M = part["predicted"], part["measured"]
    n = np.asarray(M["lengths"])
    ax.plot(n, M["coupled"], marker="o", ms=3, label="coupled ids (hand-set weights)", **MEAS)
    ax.plot(n, M["absolute"], marker="s", ms=3, label=f"absolute slots, wired for {P['layout_digits']} digits",
            **CONTROL)
    ax.axvline(P["layout_digits"], color="gray", ls=":", lw=1)
    ax.set(xlabel="operand length n (two n-digit numbers)", ylabel="exact match", ylim=(-0.03, 1.03),
           title=f"Part 1: the construction, {M['pairs']} pairs per n")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=1, fontsize=7)
