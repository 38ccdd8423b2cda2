"""The figure and the Markdown task table of `length_generalization`, from the result file alone."""
from __future__ import annotations

import numpy as np

from experiments.length_generalization.parts import even_pairs, sampler, table
from theory.harness.plotting import CONTROL, MEAS, PRED, figure

STYLES = {"sin_cos": dict(color="tab:orange", lw=1.8), "randomized_sin_cos": MEAS,
          "nope_causal": dict(color="tab:green", lw=1.5), "nope_noncausal": CONTROL}

CURVE_TASKS = ("reverse_string", "missing_duplicate_string", "bucket_sort", "duplicate_string")
"""Tasks drawn as accuracy-vs-length curves under the table (the paper's largest gains), first three present."""


def plot(result: dict):
    d = result["data"]
    has_table = "table" in d
    fig, axes = figure(2 if has_table else 1, 3 if has_table else 2, width=4.6, height=3.4)
    _plot_even_pairs(axes[0, 0], d)
    _plot_sampler(axes[0, 1], d["sampler"])
    if has_table:
        P, M = d["table"]["predicted"], d["table"]["measured"]
        table_rows = table.rows(P, M)
        _plot_table(axes[0, 2], P, table_rows)
        _plot_task_curves(axes[1], P, table_rows)
    return fig


def _plot_even_pairs(ax, d: dict) -> None:
    """Accuracy vs test length of every variant (seed mean, min-max band), chance, permutation bound."""
    P_ep, ep = d["even_pairs"]["predicted"], d["even_pairs"]["measured"]
    groups = [ep] + ([d["nope"]["measured"]] if "nope" in d else [])
    for g in groups:
        acc, xg = np.asarray(g["acc"]), np.asarray(g["lengths"])        # (V, S, E), (E,)
        for i, name in enumerate(g["variants"]):
            st = STYLES.get(name, {})
            ax.plot(xg, acc[i].mean(axis=0), marker="o", ms=3,
                    label=f"{name.replace('_', ' ')} ({g['steps']} steps)", **st)
            if acc.shape[1] > 1:
                ax.fill_between(xg, acc[i].min(axis=0), acc[i].max(axis=0), alpha=0.15,
                                color=st.get("color", "gray"))
    N = P_ep["train_max_len"]
    ax.axvspan(0, N, color="gray", alpha=0.12, label="training lengths")
    ax.axhline(P_ep["chance"], label=f"chance (prediction for sin/cos > {N})", **PRED)
    if "nope" in d:
        P_n = d["nope"]["predicted"]
        ax.plot(P_n["lengths"], P_n["bound_by_length"], color="black", ls=":", lw=1.2,
                label="permutation bound (non-causal NoPE)")
    ax.set(xlabel="test length", ylabel="accuracy", ylim=(0.3, 1.02),
           title=f"even_pairs, trained on lengths 1..{N}, {np.asarray(ep['acc']).shape[1]} seed(s)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=7)


def _plot_sampler(ax, part: dict) -> None:
    """z-score of each order statistic's sample mean against k(L+1)/(n+1) - 1, with the 3 s.e. band."""
    P, M = part["predicted"], part["measured"]
    z_mean, _ = sampler.z_scores(P, M)
    ax.axhline(0.0, label="prediction: E[i_(k)] = k(L+1)/(n+1) - 1", **PRED)
    ax.axhspan(-sampler.MEAN_Z_MAX, sampler.MEAN_Z_MAX, color="gray", alpha=0.12,
               label=f"tolerance: {sampler.MEAN_Z_MAX:g} s.e.")
    ax.plot(np.asarray(P["k"]), z_mean, "o", ms=3, color=MEAS["color"],
            label=f"training sampler, {P['draws']} draws")
    ax.set(xlabel="k (k-th smallest position)", ylabel="(measured mean - predicted) / s.e.",
           ylim=(-4.5, 4.5), title=f"sorted random positions, n={P['n']}, L={P['L']}")
    ax.legend(loc="upper left", fontsize=7)


def _plot_table(ax, P: dict, table_rows: list[dict]) -> None:
    """Heat map: in-distribution and out-of-distribution scores (max over seeds) per task."""
    cols = ["det\nin-dist", "rand\nin-dist", "det\nscore", "rand\nscore"]
    M = np.array([[r["det_in_dist"], r["rnd_in_dist"], r["det_max"], r["rnd_max"]] for r in table_rows], dtype=float)
    im = ax.imshow(M, vmin=0, vmax=100, cmap="viridis", aspect="auto")
    for (i, j), v in np.ndenumerate(M):
        ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7, color="white" if v < 60 else "black")
    ax.set_xticks(range(len(cols)), cols, fontsize=6)
    ax.set_yticks(range(len(table_rows)), [f"{r['task']} ({100 * r['chance']:.0f})" + ("" if r["learned"] else " (x)")
                                           for r in table_rows], fontsize=7)
    ax.grid(False)
    g_learned, g_all = table.gains(table.learned(table_rows))[0], table.gains(table_rows)[0]
    learned = "none" if g_learned is None else f"{g_learned:+.1f}"
    ax.set_title(f"accuracy %, in-dist = lengths {list(P['in_dist_lengths'])} (seed mean); score = mean over "
                 f"{list(P['eval_lengths'])} (max over {P['seeds']} seeds), {P['steps']} steps\n"
                 f"gain (max over seeds) {learned} over the learned tasks, {g_all:+.1f} over all; "
                 f"(chance %), (x) not learned in distribution", fontsize=7)
    ax.figure.colorbar(im, ax=ax, fraction=0.04)


def _plot_task_curves(axes, P: dict, table_rows: list[dict]) -> None:
    """Accuracy vs test length (seed mean, min-max band), deterministic vs randomized, for three tasks."""
    by_task = {r["task"]: r for r in table_rows}
    names = [t for t in CURVE_TASKS if t in by_task][:len(axes)]
    names += [t for t in by_task if t not in names][:len(axes) - len(names)]
    for ax, name in zip(axes, names):
        r = by_task[name]
        x, acc = np.asarray(r["lengths"]), np.asarray(r["acc"])                   # (E,), (2, S, E)
        for i, (label, st) in enumerate([(r["best"], dict(color="tab:orange", lw=1.8)),
                                         ("randomized " + r["best"], MEAS)]):
            ax.plot(x, acc[i].mean(axis=0), marker="o", ms=3, label=label.replace("_", " "), **st)
            ax.fill_between(x, acc[i].min(axis=0), acc[i].max(axis=0), alpha=0.15,
                            color=st.get("color", "gray"))
        ax.axvspan(0, P["train_max_len"], color="gray", alpha=0.12, label="training lengths")
        ax.axhline(r["chance"], label="chance", **PRED)
        ax.set(xlabel="test length", ylabel="accuracy", ylim=(0, 1.02),
               title=f"{name} ({r['level']}), {P['steps']} steps, {acc.shape[1]} seeds")
        ax.legend(loc="lower left", fontsize=7)
    for ax in axes[len(names):]:
        ax.set_visible(False)


def report_markdown(result: dict) -> str:
    """The observed decay of even_pairs beyond length 200 and the task table (part `table`) as
    Markdown for `sandbox report`; empty when the run had neither."""
    lines = []
    ep = result["data"].get("even_pairs", {}).get("measured", {})
    if ep.get("decay", {}).get("lengths"):
        d = ep["decay"]
        cells = ", ".join(f"{n}: {a:.3f} (sin/cos {b:.3f})" for n, a, b in
                          zip(d["lengths"], d["randomized_sin_cos"], d["sin_cos"]))
        lines += [f"even_pairs beyond length {even_pairs.FAR}, observed and not judged (no bound derived): "
                  f"randomized sin/cos accuracy (seed mean) {cells}.", ""]
    part = result["data"].get("table")
    if not part:
        return "\n".join(lines).strip()
    P = part["predicted"]
    table_rows = table.rows(P, part["measured"])
    good = table.learned(table_rows)
    g_max, g_mean = table.gains(good)
    a_max, a_mean = table.gains(table_rows)

    def pc(x):
        return f"{x:.1f}"

    families = ", ".join(sorted({r["best"] for r in table_rows}))
    lines += [f"Task table: best deterministic encoding ({families}) vs its randomized variant, "
              f"{P['steps']} Adam steps of batch {P['batch']}, {P['seeds']} seeds; score = mean accuracy (%) "
              f"over test lengths {list(P['eval_lengths'])}; in-dist = mean over lengths "
              f"{list(P['in_dist_lengths'])} (seed mean); learned = deterministic in-dist >= "
              f"{100 * P['learned_min']:.0f}.",
              "",
              "| task | level | chance | in-dist det / rand | learned | score det: mean, max | score rand: mean, max |",
              "|---|---|---|---|---|---|---|"]
    for r in table_rows:
        lines.append(f"| {r['task']} | {r['level']} | {100 * r['chance']:.0f} | {pc(r['det_in_dist'])} / "
                     f"{pc(r['rnd_in_dist'])} | {'yes' if r['learned'] else 'no: not learned in distribution'} | "
                     f"{pc(r['det_mean'])}, {pc(r['det_max'])} | {pc(r['rnd_mean'])}, {pc(r['rnd_max'])} |")
    learned = ("no task was learned in distribution" if g_max is None else
               f"{g_max:+.1f} points (max over seeds), {g_mean:+.1f} (seed mean) over the {len(good)} tasks "
               "learned in distribution")
    lines += ["", f"Measured average gain of randomized over deterministic: {learned}; {a_max:+.1f} (max), "
              f"{a_mean:+.1f} (mean) over all {len(table_rows)} tasks. For context only (another budget, "
              f"several encoding families, 15 tasks): the paper's abstract reports +{P['paper_gain']:.1f} "
              "on average (per the maintainers: 1M steps, max over 10 seeds x 3 learning rates). No per-task "
              "number of the paper is shown: its Table 1 could not be verified here."]
    return "\n".join(lines)
