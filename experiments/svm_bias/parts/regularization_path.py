"""Part `regularization_path`: W_R = argmin_{||W||_F <= R} L(W) turns toward W^mm_opt as R grows.

Theorem (Tarzanagh et al. 2023, regularization path): W_R / R -> W^mm_opt / ||W^mm_opt||_F, the
Frobenius Att-SVM of the GLOBALLY optimal tokens, even on instances where normalized GD stops at a
locally-optimal selection, because W_R minimises the loss over the whole ball.

W_R is computed by projected normalized GD inside each ball (theory/predictions/svm_bias.py
regularization_path) from three starts: path following from the previous radius (from W = 0),
R W^mm_opt/||W^mm_opt||, and R W^mm_alpha/||W^mm_alpha|| for the selection alpha that normalized GD
reaches on the same instance; the start of lowest loss is kept. The instances are the part's own,
and its own normalized-GD runs say which are GD-local.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from theory import metrics
from theory.engine.keys import Keys
from theory.harness.results import at_least, holds
from theory.predictions import svm_bias as pred
from theory.tasks.token_selection import Instance

from .. import common
from ..config import Config

PATH_WHY = "Tarzanagh et al. 2023: the regularization path converges in direction to Att-SVM(opt)"


def predict(cfg: Config) -> dict:
    """The limit of cos(W_R, W^mm_opt) as R -> infinity."""
    return {"path_radii": list(cfg.path_radii), "cos_limit": 1.0}


def measure(cfg: Config, keys: Keys, progress: str | None) -> dict:
    """Normalized GD (for the GD-local instances and starts), then the path on every instance."""
    batch, insts, svms, opts, sol_opt = common.main_instances(cfg, keys.sub("instances"))
    W_gd, _ = common.train(cfg, batch, keys.sub("init_W").runs(cfg.seeds), log_every=cfg.steps,
                           log_weights=False, label="W-NGD", progress=progress)
    alphas = [common.selected(W, i) for W, i in zip(W_gd, insts)]
    sol_gd = svms.frobenius(alphas)

    ok = [r for r in range(len(insts)) if sol_opt[r].feasible and sol_gd[r].feasible]
    starts = np.stack([np.stack([sol_opt[r].W / np.linalg.norm(sol_opt[r].W),
                                 sol_gd[r].W / np.linalg.norm(sol_gd[r].W)]) for r in ok])  # (B, 2, d, d)
    stack = Instance(*(jnp.asarray(np.stack([getattr(insts[r], f) for r in ok])) for f in Instance._fields))
    pcfg = pred.PathConfig(radii=tuple(cfg.path_radii), steps=cfg.path_steps)
    W_R, L_R = jax.jit(jax.vmap(lambda inst, st: pred.regularization_path(inst, st, pcfg)))(
        stack, jnp.asarray(starts))
    W_R, L_R = np.asarray(W_R), np.asarray(L_R)                        # (B, R, d, d), (B, R, 3)
    return {
        "path_radii": list(cfg.path_radii),
        "path_cos": [[metrics.cosine(W, sol_opt[r].W) for W in W_R[b]] for b, r in enumerate(ok)],  # (B, R)
        "path_selects_opt": [bool(np.array_equal(common.selected(W_R[b, -1], insts[r]), opts[r]))
                             for b, r in enumerate(ok)],                                    # (B,)
        "gd_selects_opt": [bool(np.array_equal(alphas[r], opts[r])) for r in ok],           # (B,)
        "path_following_best_fraction_rmax": float(np.mean(L_R[:, -1, 0] <= L_R[:, -1].min(axis=-1)
                                                           + 1e-15)),
    }


def judge(cfg: Config, P: dict, M: dict) -> list:
    cos = np.asarray(M["path_cos"], dtype=np.float64)                                # (B, R)
    mean_R = cos.mean(axis=0)                                                        # (R,)
    sel_opt, gd_opt = np.asarray(M["path_selects_opt"], bool), np.asarray(M["gd_selects_opt"], bool)
    local = ~gd_opt
    return [
        at_least("path_cos_opt_at_rmax_mean", f"The mean cosine of W_R with W^mm_opt reaches 0.95 at "
                 f"R = {cfg.path_radii[-1]:g}.", "predicted", 0.95, float(mean_R[-1]),
                 PATH_WHY + f"; limit 1, but at R = {cfg.path_radii[-1]:g} the approach is "
                 "O(log R / R)-slow, so 0.95"),
        at_least("path_cos_rises_with_r", "The mean cosine of W_R with W^mm_opt does not decrease with "
                 "R (smallest step between radii, tolerance 0.005).", "predicted", -0.005,
                 float(np.min(np.diff(mean_R))) if mean_R.size > 1 else float("nan"),
                 PATH_WHY + "; 0.005 for the finite projected-GD solve at each radius"),
        holds("path_selects_opt_where_gd_local", "W at the largest radius selects the global opt on "
              "every instance, including those where GD stopped at a local selection.", "predicted",
              "argmax softmax(W_Rmax) = opt on every instance, >= 1 of them GD-local",
              f"{int(sel_opt.sum())}/{len(sel_opt)} select opt; GD was local on {int(local.sum())} of "
              f"them, path selects opt on {int(sel_opt[local].sum())}",
              bool(np.all(sel_opt) and local.sum() > 0),
              PATH_WHY + ": the path minimises the loss over the whole ball, hence picks the global "
              "opt tokens (needs >= 1 GD-local instance to be informative)"),
    ]
