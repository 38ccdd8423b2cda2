"""Part `trajectory_2d` (figure only, no checks): normalized GD from W = 0 on a d = 2 instance.

The first of cfg.trajectory_candidates instances (n = 2, T = 3, d = 2) whose Att-SVM(opt) is
feasible; the figure draws W(k) z_i / ||W(k)||_F against W^mm z_i / ||W^mm||_F for both sequences.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from theory.engine import train as engine
from theory.engine.keys import Keys
from theory.models import single_attention as sa
from theory.predictions import svm_bias as pred
from theory.tasks.token_selection import Instance, sample_instance

from .. import common
from ..config import Config

N_SEQ, T_TOK, D = 2, 3, 2          # the instance drawn in the figure's plane


def predict(cfg: Config) -> dict:
    return {}


def _first_feasible(keys: Keys, count: int):
    """(instance, opt, Att-SVM(opt)) of the first feasible candidate, or None."""
    for key in keys.runs(count):
        inst = Instance(*(np.asarray(a) for a in sample_instance(key, N_SEQ, T_TOK, D)))
        o = common.opt_tokens(inst)
        sol = pred.solve_frobenius(inst.X, inst.Z, o)
        if sol.feasible:
            return inst, o, sol
    return None


def measure(cfg: Config, keys: Keys, progress: str | None) -> dict:
    found = _first_feasible(keys.sub("candidates"), cfg.trajectory_candidates)
    if found is None:
        return {}
    inst, o, sol = found
    inst_j = Instance(*map(jnp.asarray, inst))
    opt = engine.make_optimizer(engine.OptimizerConfig(name="normalized_gd"), cfg.eta, cfg.steps)
    _, tr = engine.train(keys.sub("train").key, sa.WParams(jnp.zeros((D, D))),
                         lambda p, batch: sa.loss(p, inst_j), lambda k: (), opt, steps=cfg.steps,
                         log_every=cfg.log_every, log_fn=sa.combined_W, grad_fn=sa.make_grad_fn(inst_j))
    Wk = np.asarray(tr.logged)                                                   # (K, 2, 2)
    return {"Wz": np.einsum("kab,nb->kna", Wk, inst.Z),                          # (K, n, 2)
            "W_norm": np.linalg.norm(Wk, axis=(1, 2)),                           # (K,)
            "Wmm_z": (sol.W @ inst.Z.T).T, "Wmm_fro": float(sol.objective),      # (n, 2)
            "X": inst.X, "opt": o, "selected": common.selected(Wk[-1], inst)}


def judge(cfg: Config, P: dict, M: dict) -> list:
    return []
