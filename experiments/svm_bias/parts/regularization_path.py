"""Part `regularization_path`: W_R = argmin_{||W||_F <= R} L(W) turns toward W^mm_opt as R grows.

Theorem (Tarzanagh et al. 2023, regularization path): W_R / R -> W^mm_opt / ||W^mm_opt||_F, the
Frobenius Att-SVM of the GLOBALLY optimal tokens, even on instances where normalized GD stops at a
locally-optimal selection, because W_R minimises the loss over the whole ball.

W_R is computed by projected normalized GD inside each ball (theory/predictions/svm_bias.py
regularization_path), the start of lowest final loss kept. The path checks use the UNSEEDED path
alone. At every radius its first round starts from the previous radius's solution (path following
from W = 0) and cfg.path_starts random unit directions (stream "random_starts", fresh at every
radius); a second round (basin hopping) kicks the best of the first along every query / token pair,
W + cfg.path_kick R x_it q_i^T / ||x_it q_i^T|| (q_i: column i of pinv(Z), so only sequence i's
logits move, toward token t), and descends from each of the n T kicked points. Nothing the search is
given comes from an SVM solution or the prediction: the kicks are built from the tokens and queries
alone, and the loss alone picks the winner. The search was fixed on seed 0 of the quick preset alone
(kick length 1 R, one kick round per radius; kick length 0.5 R left one miss there, no kicks six),
before seeds 1, 2 and the full preset were run as held-out checks.

A second, SEEDED path starts besides path following from R W^mm_opt/||W^mm_opt|| and
R W^mm_alpha/||W^mm_alpha|| (alpha: the selection normalized GD reaches on the instance), without
kicks; it is used only for a loss comparison: a seeded loss below the unseeded one shows that the
unseeded search missed the ball minimiser on that instance (W_R is a global minimiser, so no start
can end below it). Which start wins is recorded at every radius (0: path following, 1..S random
starts, then the kicks).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from theory import metrics
from theory.engine.keys import Keys
from theory.harness.results import at_least, at_most, holds
from theory.predictions import svm_bias as pred
from theory.tasks.token_selection import Instance

from .. import common
from ..config import Config

PATH_WHY = "Tarzanagh et al. 2023: the regularization path converges in direction to Att-SVM(opt)"
LOSS_TOL = 1e-4     # relative loss excess of the unseeded over the seeded search that counts as a miss


def predict(cfg: Config) -> dict:
    """The limit of cos(W_R, W^mm_opt) as R -> infinity."""
    return {"path_radii": list(cfg.path_radii), "cos_limit": 1.0}


def _unit(x: jax.Array) -> jax.Array:
    """Each trailing (d, d) block scaled to unit Frobenius norm."""
    return x / jnp.linalg.norm(x, axis=(-2, -1), keepdims=True)


def _paths(stack: Instance, starts: jax.Array, cfg: Config, kick: float):
    """The path of every instance from its starts (B, [R,] S, d, d) and kicks of length `kick` R:
    W_R (B, R, d, d), losses (B, R, 1 + S [+ n T])."""
    pcfg = pred.PathConfig(radii=tuple(cfg.path_radii), steps=cfg.path_steps, kick=kick)
    W_R, L_R = jax.jit(jax.vmap(lambda inst, st: pred.regularization_path(inst, st, pcfg)))(stack, starts)
    return np.asarray(W_R), np.asarray(L_R)


def measure(cfg: Config, keys: Keys, progress: str | None) -> dict:
    """Normalized GD (which instances are GD-local), then the unseeded and the seeded path."""
    batch, insts, svms, opts, sol_opt = common.main_instances(cfg, keys.sub("instances"))
    W_gd, _ = common.train(cfg, batch, keys.sub("init_W").runs(cfg.seeds), log_every=cfg.steps,
                           log_weights=False, label="W-NGD", progress=progress)
    alphas = [common.selected(W, i) for W, i in zip(W_gd, insts)]
    sol_gd = svms.frobenius(alphas)

    ok = [r for r in range(len(insts)) if sol_opt[r].feasible and sol_gd[r].feasible]
    stack = Instance(*(jnp.asarray(np.stack([getattr(insts[r], f) for r in ok])) for f in Instance._fields))
    shape = (len(cfg.path_radii), cfg.path_starts, cfg.d, cfg.d)
    random_starts = _unit(jax.vmap(lambda k: jax.random.normal(k, shape))(
        keys.sub("random_starts").runs(len(insts))[np.asarray(ok)]))                 # (B, R, S, d, d)
    W_u, L_u = _paths(stack, random_starts, cfg, cfg.path_kick)                 # (B, R, d, d), (B, R, 1+S+nT)
    seeded = np.stack([np.stack([sol_opt[r].W / np.linalg.norm(sol_opt[r].W),
                                 sol_gd[r].W / np.linalg.norm(sol_gd[r].W)]) for r in ok])  # (B, 2, d, d)
    W_s, L_s = _paths(stack, jnp.asarray(seeded), cfg, 0.0)                          # (B, R, d, d), (B, R, 3)
    return {
        "path_radii": list(cfg.path_radii),
        "path_cos": [[metrics.cosine(W, sol_opt[r].W) for W in W_u[b]] for b, r in enumerate(ok)],   # (B, R)
        "path_selects_opt": [bool(np.array_equal(common.selected(W_u[b, -1], insts[r]), opts[r]))
                             for b, r in enumerate(ok)],                                      # (B,)
        "gd_selects_opt": [bool(np.array_equal(alphas[r], opts[r])) for r in ok],             # (B,)
        "path_loss": L_u.min(axis=-1),                                                        # (B, R)
        "path_winner": L_u.argmin(axis=-1),     # (B, R): 0 path following, 1..S random starts, > S kicks
        "seeded_path_cos": [[metrics.cosine(W, sol_opt[r].W) for W in W_s[b]] for b, r in enumerate(ok)],
        "seeded_path_loss": L_s.min(axis=-1),                                                 # (B, R)
        "seeded_path_winner": L_s.argmin(axis=-1),      # (B, R): 0 path following, 1 W^mm_opt, 2 W^mm_alpha
    }


def winner_fractions(winner, n_named: int) -> list:
    """Per radius, the fraction of instances won by start 0 (path following), each of the first
    n_named - 1 starts, and (last entry) any other start; (R, n_named + 1)."""
    w = np.asarray(winner)                                                           # (B, R)
    cols = [w == j for j in range(n_named)] + [w >= n_named]
    return np.stack([c.mean(axis=0) for c in cols], axis=-1).tolist()


def judge(cfg: Config, P: dict, M: dict) -> list:
    cos = np.asarray(M["path_cos"], dtype=np.float64)                                # (B, R)
    mean_R = cos.mean(axis=0)                                                        # (R,)
    sel_opt, gd_opt = np.asarray(M["path_selects_opt"], bool), np.asarray(M["gd_selects_opt"], bool)
    local = ~gd_opt
    L_u, L_s = np.asarray(M["path_loss"], np.float64), np.asarray(M["seeded_path_loss"], np.float64)
    excess = (L_u - L_s) / L_s                                                       # (B, R)
    missed = int(np.sum(excess[:, -1] > LOSS_TOL))
    missed_R = np.sum(excess > LOSS_TOL, axis=0).tolist()                          # (R,) data, every radius
    win = np.asarray(M["path_winner"])[:, -1]                                       # (B,)
    random_won, kick_won = float(np.mean((win > 0) & (win <= cfg.path_starts))), float(np.mean(win > cfg.path_starts))
    return [
        at_least("path_cos_opt_at_rmax_mean", f"The mean cosine of the unseeded W_R with W^mm_opt reaches "
                 f"0.95 at R = {cfg.path_radii[-1]:g} (at R_max a random start won on {random_won:.0%} of "
                 f"the instances, a query-token kick on {kick_won:.0%}, path following on the rest).",
                 "predicted", 0.95, float(mean_R[-1]),
                 PATH_WHY + f"; limit 1, but at R = {cfg.path_radii[-1]:g} the approach is O(log R / R)-slow, "
                 "so 0.95; the path is searched from path following, random starts and rank-one kicks "
                 "x_it q_i^T built from the data only, the loss picking the winner"),
        at_least("path_cos_rises_with_r", "The mean cosine of the unseeded W_R with W^mm_opt does not "
                 "decrease with R (smallest step between radii, tolerance 0.005).", "predicted", -0.005,
                 float(np.min(np.diff(mean_R))) if mean_R.size > 1 else float("nan"),
                 PATH_WHY + "; 0.005 for the finite projected-GD solve at each radius"),
        holds("path_selects_opt_where_gd_local", "The unseeded W at the largest radius selects the global "
              "opt on every instance, including those where GD stopped at a local selection.", "predicted",
              "argmax softmax(W_Rmax) = opt on every instance, >= 1 of them GD-local",
              f"{int(sel_opt.sum())}/{len(sel_opt)} select opt; GD was local on {int(local.sum())} of "
              f"them, path selects opt on {int(sel_opt[local].sum())}",
              bool(np.all(sel_opt) and local.sum() > 0),
              PATH_WHY + ": the path minimises the loss over the whole ball, hence picks the global "
              "opt tokens (needs >= 1 GD-local instance to be informative)"),
        at_most("path_unseeded_loss_reaches_seeded", f"The unseeded search finds the ball minimiser at R = "
                f"{cfg.path_radii[-1]:g}: instances where a start seeded with W^mm_opt or GD's W^mm_alpha "
                f"ends with a loss lower by more than {LOSS_TOL:g} (relative; loss comparison only). At "
                f"R = {', '.join(f'{R:g}' for R in cfg.path_radii)}: {missed_R} (data; only R_max is judged).",
                "sanity", 0, missed,
                "W_R is a global minimiser over the ball (Tarzanagh et al. 2023), so no start ends below "
                "it; a lower seeded loss means the unseeded W_R is a local one, and the path checks above "
                "then test the search, not the theorem. This check measures the search itself: 0 when it "
                f"finds the minimiser everywhere. {LOSS_TOL:g} lies below the relative loss gaps between two "
                "selections in reference runs of this experiment (4e-4 to 2e-2 at R = 32) and above the "
                "gaps left by the finite projected-GD solve within one selection (below 2e-5 there)"),
    ]
