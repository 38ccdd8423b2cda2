"""The `gd_equivalence` figure, drawn from a result file's `data` alone (2 x 3 panels):

  one layer: training loss vs L*  |  W_KQ / c vs construction  |  -c W_PV / eta* vs construction
  ZFB: R(M) and fixed-1/N control  |  learned preconditioner vs Gamma^-1  |  depth: LSA vs GD, GD++
"""
from __future__ import annotations

import numpy as np

ZFB_START = {"zfb": "ZFB's init", "gaussian": "a Gaussian init"}   # panel title by config zfb_init


def plot(result: dict):
    from theory.harness.plotting import CONTROL, MEAS, PRED, figure
    d = result["data"]
    fig, ax = figure(2, 3, width=4.3, height=3.4)
    one_p, one_m = d["one_layer"]["predicted"], d["one_layer"]["measured"]
    a = ax[0, 0]
    for i, curve in enumerate(one_m["loss"]):
        a.plot(one_m["step"], curve, **MEAS, alpha=0.8, label="trained LSA (train loss)" if i == 0 else None)
    a.axhline(one_p["loss_star"], **PRED, label=f"one GD step at eta*: {one_p['loss_star']:.4f}")
    a.set(xlabel="step", ylabel="1/2 MSE", title="one layer (vO setting)", yscale="log")
    a.legend()

    # products are what the theory fixes: W_KQ up to a scale c, W_PV up to 1/c; eta* = -c W_PV[y, y]
    kq, pv = np.asarray(one_m["W_KQ"][0]), np.asarray(one_m["W_PV"][0])       # seed 0, (D, D)
    gd_kq, gd_pv = np.asarray(one_p["W_KQ"]), np.asarray(one_p["W_PV"])       # construction at eta*
    eta = one_p["eta_star"]
    c = np.mean(np.diag(kq)[:-1])
    _side_by_side(fig, ax[0, 1], kq / c, gd_kq, "W_KQ / mean diag")
    _side_by_side(fig, ax[0, 2], -c * pv / eta, -gd_pv / eta, "-c W_PV / eta*")

    zp, zm = d["zfb"]["predicted"], d["zfb"]["measured"]
    a = ax[1, 0]
    a.plot(zp["M"], zp["risk"], **PRED, marker="o", label="R(M), ZFB formula")
    a.errorbar(zp["M"], zm["risk"], yerr=zm["risk_se"], **MEAS, marker="x", ls="none", label="trained LSA")
    a.plot(zp["M"], zp["fixed_norm_risk"], color=CONTROL["color"], ls="--", label="fixed 1/N: formula")
    a.errorbar(zp["M"], zm["fixed_norm_risk"], yerr=zm.get("fixed_norm_risk_se"), **{**CONTROL, "ls": "none"},
               marker="s", label="fixed 1/N: measured")
    a.axhline(zp["zero_risk"], color="grey", lw=0.8, label="zero predictor")
    a.set(xscale="log", yscale="log", xlabel="test prompt length M", ylabel="MSE",
          title=f"ZFB, trained at N={result['config']['zfb_n_context']} from "
                f"{ZFB_START[result['config'].get('zfb_init', 'gaussian')]}")
    a.legend()

    a = ax[1, 1]
    x = np.arange(len(zp["gamma_inv_diag"]))
    a.bar(x - 0.2, zp["gamma_inv_diag"], 0.4, color="black", label="Gamma^-1 (predicted)")
    a.bar(x + 0.2, zm["gamma_eff_diag"], 0.4, color=MEAS["color"], label="learned -W_PV[y,y] W_KQ[x,x]")
    a.plot(x, zp["lambda_inv_diag"], "r_", ms=14, label="naive Lambda^-1")
    a.text(0.02, 0.95, f"implied eta (vO): {', '.join(f'{v:.3f}' for v in one_m['implied_eta'])}\n"
           f"eta* = {eta:.3f}", transform=a.transAxes, va="top")
    a.set(xlabel="coordinate", ylabel="preconditioner diagonal", title="learned preconditioner (ZFB)")
    a.legend(loc="center right")

    a = ax[1, 2]
    sm = d["softmax_control"]["measured"]
    if "depth" in d:
        dp = d["depth"]["measured"]
        K = np.asarray(dp["K"])
        a.plot(K, dp["gd"], **PRED, marker="o", label="K-step GD (best eta)")
        a.plot(K, dp["gdpp_shared"], color="grey", ls="--", marker="o", label="GD++ shared (eta, gamma)")
        a.plot(K, dp["gdpp_layer"], color="grey", ls=":", marker="o", label="GD++ per-layer")
        top = 1.15 * sm["loss"]
        for name, key, style in (("shared", "tf_shared", MEAS), ("per_layer", "tf_per_layer", {"color": "tab:green"})):
            y = np.asarray(dp[key], float)                                  # (len(K),) pure-LSA held-out loss
            color = style.get("color", "C0")
            a.plot(K, np.where(y > top, np.nan, y), **style, marker="x", label=f"trained LSA, {name.replace('_', '-')}")
            for k, v in zip(K, y):                                          # off the scale: marked at the top
                if v > top:
                    a.plot(k, 0.97 * top, marker="^", color=color, ls="none")
                    a.annotate(f"{v:.1e}", (k, 0.97 * top), xytext=(4, -10 if name == "shared" else -20),
                               textcoords="offset points", fontsize=7, color=color)
            trained = [(k, c[name]["loss_as_trained"]) for k, c in zip(K, dp.get("clamp", [])) if c and name in c]
            if trained:                                                     # the deep-stack recipe's clamp on
                a.plot(*zip(*trained), marker="o", mfc="none", color=color, ls="none",
                       label=f"{name.replace('_', '-')}, as trained (clamp on)")
        a.set(xticks=K)
    a.axhline(sm["loss"], **CONTROL, label=f"1 softmax head (cos {sm['cosine']:.3f})")
    a.set(xlabel="layers K", ylabel="held-out 1/2 MSE", title="depth: LSA vs GD and GD++ (^: off the scale)",
          ylim=(0, 1.15 * sm["loss"]))
    a.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=3, fontsize=6)
    fig.suptitle(f"gd_equivalence ({result['preset']}): {result['verdict'].upper()}", fontsize=11)
    return fig


def _side_by_side(fig, a, trained, construction, title):
    """Heat maps of a trained matrix and its construction, separated by a blank column."""
    gap = np.full((trained.shape[0], 1), np.nan)
    im = a.imshow(np.concatenate([trained, gap, construction], axis=1), cmap="RdBu_r", vmin=-1.2, vmax=1.2)
    a.set(title=f"{title}\ntrained (left) | GD construction (right)", xticks=[], yticks=[])
    fig.colorbar(im, ax=a, shrink=0.7)
