"""Part `construction` (float64): the constructed LSA weights ARE K steps of GD, and GD++.

For K = 1, 2, 3 layers with step sizes eta_k = linspace(0.5, 1.5, K) eta* and GD++ input steps
gamma_k = linspace(0.5, 1, K), on random vO prompts:

    err_GD   = max_prompts |LSA(construct_gd(etas))(Z) - (W_K x_q)| / max |y_q|
    err_GD++ = max_prompts |LSA(construct_gdpp(etas, gammas))(Z) - GD++(X, y, x_q)| / max |y_q|

where W_K is K GD steps on L(W) = (1/2N) sum (W x_i - y_i)^2 from W0 = 0 (`gd_steps`) and GD++ is
vO's curvature-corrected update (`gd_plus_plus`), both in theory/predictions/gd_equivalence.py.
Both errors are identities (vO 2023, Proposition 1 and its GD++ extension; the one- and two-step
identities are proved symbolically in proofs/gd_equivalence.py), so they sit at float64 rounding.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from experiments.gd_equivalence.config import Config
from theory.engine.keys import Keys
from theory.harness.parts import Part
from theory.harness.results import at_most
from theory.predictions import gd_equivalence as pred
from theory.tasks.linear_regression import sample_batch

LAYERS = (1, 2, 3)
ROUNDING_BOUND = 1e-10   # float64 rounding of these sums is ~1e-15; any algebra slip is O(1)


def step_sizes(cfg: Config, K: int) -> tuple[list[float], list[float]]:
    """(etas, gammas) at which the K-layer constructions are checked (spread around eta*)."""
    eta_star, _ = pred.optimal_one_step(cfg.vo_task, cfg.n_context)
    etas = [float(v) * eta_star for v in jnp.linspace(0.5, 1.5, K)]
    gammas = [float(v) for v in jnp.linspace(0.5, 1.0, K)]
    return etas, gammas


def predict(cfg: Config) -> dict:
    """The step sizes tested and the predicted errors (identities: 0)."""
    steps = {f"K{K}": dict(zip(("etas", "gammas"), step_sizes(cfg, K))) for K in LAYERS}
    return {"steps": steps, "error": 0.0}


def measure(cfg: Config, keys: Keys, progress: str | None) -> dict:
    """Relative max errors of both constructions against their algorithms, K = 1, 2, 3."""
    task, N = cfg.vo_task, cfg.n_context
    ps = sample_batch(keys.sub("prompts").key, task, N, cfg.n_construction)
    scale = float(jnp.max(jnp.abs(ps.y_q)))
    errors = {}
    for K in LAYERS:
        etas, gammas = (jnp.asarray(v) for v in step_sizes(cfg, K))
        lsa_gd = pred.predict_prompts(pred.construct_gd(etas, cfg.d), ps, N)                 # (B,)
        ref_gd = jax.vmap(pred.gd_steps, (0, 0, 0, None))(ps.X, ps.y, ps.x_q, etas)          # (B,)
        lsa_pp = pred.predict_prompts(pred.construct_gdpp(etas, gammas, cfg.d), ps, N)       # (B,)
        ref_pp = jax.vmap(pred.gd_plus_plus, (0, 0, 0, None, None))(ps.X, ps.y, ps.x_q, etas, gammas)
        errors[f"gd_K{K}"] = float(jnp.max(jnp.abs(lsa_gd - ref_gd))) / scale
        errors[f"gdpp_K{K}"] = float(jnp.max(jnp.abs(lsa_pp - ref_pp))) / scale
    return {"errors": errors, "dtype": str(ps.X.dtype)}


def judge(cfg: Config, P: dict, M: dict) -> list:
    errs = M["errors"]
    worst_gd = max(float(v) for k, v in errs.items() if k.startswith("gd_"))
    worst_pp = max(float(v) for k, v in errs.items() if k.startswith("gdpp_"))
    return [
        at_most("lsa_equals_gd_steps", "K constructed LSA layers reproduce K steps of GD (K = 1, 2, 3), "
                "relative max error over random prompts.", "exact", ROUNDING_BOUND, worst_gd,
                "von Oswald et al. 2023 (ICML), Proposition 1: construct_gd in "
                "theory/predictions/gd_equivalence.py is K GD steps exactly (proved for K = 1, 2 in "
                "proofs/gd_equivalence.py); float64 rounding is ~1e-15"),
        at_most("lsa_equals_gdpp", "K constructed LSA layers reproduce K steps of GD++ (K = 1, 2, 3), "
                "relative max error over random prompts.", "exact", ROUNDING_BOUND, worst_pp,
                "von Oswald et al. 2023 (ICML), GD++: W_PV[x, x] = -gamma I moves the inputs by "
                "x <- (I - gamma S) x (construct_gdpp and gd_plus_plus in "
                "theory/predictions/gd_equivalence.py); float64 rounding is ~1e-15"),
    ]


PART = Part("construction", predict, measure, judge, precision="float64")
