"""The `modular_arithmetic` figure, drawn from a result file alone (`data[part] = {predicted, measured}`)."""
from __future__ import annotations

import numpy as np

from experiments.modular_arithmetic.parts import transformer as tpart
from experiments.modular_arithmetic.parts.fourier_features import stats
from experiments.modular_arithmetic.parts.grokking import events
from theory.predictions import modular_arithmetic as pred

COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown"]


def plot(result: dict):
    from theory.harness.plotting import MEAS, PRED, figure
    d, cfg = result["data"], result["config"]
    fig, axes = figure(3 if "transformer" in d else 2, 3, width=4.2, height=3.3)

    ax = axes[0, 0]
    if "grokking" in d:
        M = d["grokking"]["measured"]
        ep = np.asarray(M["epochs"], float)
        for i, (tr, te) in enumerate(zip(M["train_acc"], M["test_acc"])):
            ax.plot(ep, tr, color="tab:blue", lw=1.0, alpha=0.8, label="train" if i == 0 else None)
            ax.plot(ep, te, color="tab:red", lw=1.0, alpha=0.8, label="test" if i == 0 else None)
        t_train, _, t_test = events(M)
        done = t_test[np.isfinite(t_test)]
        ax.axvspan(float(np.min(t_train)), float(done.max()) if done.size else float(ep[-1]), color="0.9",
                   label="grokking delay (first train = 1 to last test >= 0.99)")
        ax.set(xscale="log", xlabel="epoch (full batch)", ylabel="accuracy",
               title=f"grokking: p={cfg['mlp_p']}, frac {cfg['train_frac'][0]}, wd {cfg['weight_decay'][0]}")
        ax.legend(fontsize=7)

    ax = axes[0, 1]
    if "closed_form" in d:
        P, M = d["closed_form"]["predicted"], d["closed_form"]["measured"]
        grid = np.arange(min(cfg["widths"]), max(cfg["widths"]) + 1)
        for j, p in enumerate(cfg["primes"]):
            c = COLORS[j % len(COLORS)]
            ax.plot(grid, [pred.coherent_accuracy(p, int(n)) for n in grid], **{**PRED, "color": c})
            ax.plot(grid, [pred.gaussian_accuracy(p, int(n)) for n in grid], color=c, lw=0.8, ls=":", alpha=0.7)
            acc = np.asarray(M[f"p{p}"]["accuracy"], float)                     # (widths, seeds)
            for k in range(acc.shape[1]):
                ax.scatter(cfg["widths"], acc[:, k], s=8, color=c, alpha=0.4)
            ax.plot(cfg["widths"], acc.mean(axis=1), "o", color=c,
                    label=f"p={p}: mean (dashed: model, dotted: balanced formula)")
        ax.set(xlabel="width N", ylabel="accuracy on all p² pairs", title="closed form: accuracy vs width")
        ax.legend(fontsize=7)

    ax = axes[0, 2]
    if "closed_form" in d:
        P, M = d["closed_form"]["predicted"], d["closed_form"]["measured"]
        p = cfg["primes"][-1]
        Pp, Mp = P[f"p{p}"], M[f"p{p}"]
        m = np.arange(p)
        ax.plot(m, Pp["unbalanced"], **PRED, label=f"N={Pp['unbalanced_width']}: Σ ½cos(ωσm)")
        ax.vlines(m, Mp["unbalanced_min"], Mp["unbalanced_max"], color="tab:orange", lw=2)
        ax.axhline(-Pp["balanced_width"] / (2 * (p - 1)), color="tab:blue", lw=1,
                   label=f"N={Pp['balanced_width']}: -N/(2(p-1))")
        ax.vlines(m, Mp["coherent_min"], Mp["coherent_max"], color="tab:blue", lw=2)
        ax.set(ylim=(-6, 6), xlabel="offset m = a + b - q mod p", ylabel="phase-averaged output",
               title=f"coherent part, p={p} (m=0: N/2, off scale)")
        ax.legend(fontsize=7)

    if "fourier_features" in d:
        M = d["fourier_features"]["measured"]
        for ax, key, when in ((axes[1, 0], "spectrum_init", "at init"), (axes[1, 1], "spectrum_final", "trained")):
            S = np.asarray(M[key], float)                                      # (N, p//2 + 1)
            im = ax.imshow(S, aspect="auto", cmap="viridis", interpolation="nearest")
            ax.set(xlabel="frequency k (rfft of the a-block row)", ylabel="neuron (sorted by frequency)",
                   title=f"|rfft| of W1 rows {when} (wd {M['weight_decay'][0]:g}, seed 0)")
            fig.colorbar(im, ax=ax, fraction=0.04)
        S, st = cfg["seeds"], stats(M)
        if len(M["weight_decay"]) > S:                                         # the control (full preset)
            axes[1, 1].text(0.02, 0.02, "\n".join(
                f"wd {M['weight_decay'][r]:g}{' (control)' if r == S else ''}: Fourier fraction "
                f"{st['fourier'][r]:.2f}, IPR {st['ipr'][r]:.2f}" for r in (0, S)),
                transform=axes[1, 1].transAxes, fontsize=7, color="white", va="bottom")
        ax = axes[1, 2]
        x, y = np.asarray(M["phase_sum"], float), np.asarray(M["phase_out"], float)
        ax.scatter(x, y, s=5, **{k: v for k, v in MEAS.items() if k == "color"})
        t = np.linspace(-np.pi, np.pi, 50)
        ax.plot(t, t, **PRED, label="φ_out = φ_a + φ_b")
        ax.set(xlabel="φ_a + φ_b (wrapped)", ylabel="φ_out", title="Fourier neurons: phase relation")
        ax.legend(fontsize=7)
    if "transformer" in d:
        _transformer_panels(axes[2], d["transformer"]["measured"], cfg)
    return fig


def _transformer_panels(axes, M: dict, cfg: dict) -> None:
    """Run 0 of Part 3: the progress measures over training, the accuracies, the embedding's spectrum."""
    ep = np.asarray(M["epochs"], float)
    ev = tpart.events(M, 0)
    title = f"transformer p={cfg['transformer_p']}"
    ax = axes[0]
    for key, color, label in (("train_loss", "tab:blue", "train loss"), ("test_loss", "tab:red", "test loss"),
                              ("restricted_loss", "tab:green", "restricted loss (all pairs)"),
                              ("excluded_loss", "tab:purple", "excluded loss (train)")):
        ax.plot(ep, np.maximum(np.asarray(M[key][0], float), 1e-9), color=color, lw=1.2, label=label)
    for t, ls, label in ((ev["t_mem"], ":", "train acc 1"), (ev["t_restricted"], "-.", "restricted < 0.1"),
                         (ev["t_grok"], "--", "test loss < 1")):
        if np.isfinite(t):
            ax.axvline(t, color="0.4", ls=ls, lw=0.8, label=f"{label} ({t:g})")
    ax.set(yscale="log", xlabel="epoch (full batch)", ylabel="cross-entropy (nats)",
           title=f"{title}: progress measures (Nanda et al. Fig. 7)")
    ax.legend(fontsize=6)
    ax = axes[1]
    ax.plot(ep, M["train_acc"][0], color="tab:blue", lw=1.2, label="train accuracy")
    ax.plot(ep, M["test_acc"][0], color="tab:red", lw=1.2, label="test accuracy")
    ax.plot(ep, M["logit_variance"][0], color="tab:green", lw=1.2,
            label="logit variance on cos(w_k(a+b-c)), key k")
    ax.set(xlabel="epoch (full batch)", ylabel="fraction", ylim=(-0.02, 1.02), title=f"{title}: accuracy")
    ax.legend(fontsize=7)
    ax = axes[2]
    spec = np.asarray(M["embedding_spectrum"][0], float)
    k = np.arange(spec.size)
    keyset = set(int(x) for x in M["key_freqs"][0])
    ax.bar(k[1:], spec[1:] / spec.sum(), color=["tab:red" if i in keyset else "tab:gray" for i in k[1:]])
    ax.set(xlabel="frequency k (red: MLP key frequencies)", ylabel="fraction of ||W_E||² (number tokens)",
           title=f"{title}: embedding Fourier spectrum, final")
