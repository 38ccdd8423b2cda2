"""Part `zfb`: with anisotropic Gaussian inputs the trained layer is GD preconditioned by Gamma^{-1}.

Setting (Zhang, Frei & Bartlett 2024): x ~ N(0, Lambda), Lambda = diag(zfb_lam), w ~ N(0, I_d),
one LSA layer trained on prompts of N = zfb_n_context pairs. The global minimum of the one-layer
loss predicts y_hat = x_q^T Gamma^{-1} (1/M) sum_i y_i x_i with

    Gamma = (1 + 1/N) Lambda + tr(Lambda)/N I       (not the naive Lambda^{-1})

(ZFB; Ahn et al. 2023 for the same optimum; stationarity proved in proofs/gd_equivalence.py), and
its test MSE on prompts of M pairs, with B = Gamma^{-1} Lambda Gamma^{-1} (theory/predictions/
gd_equivalence.py, `linear_risk`):

    R(M) = (1 + 1/M) tr(Lambda B Lambda) + tr(B Lambda) tr(Lambda)/M - 2 tr(Lambda Gamma^{-1} Lambda) + tr(Lambda)

Negative control: the same trained weights with the normalisation frozen at 1/N instead of 1/M
(vO's P = eta/N) scale the update by M/N, so their risk grows like (M/N)^2 for M >> N; its exact
value is linear_risk at scale M/N (`zfb_risk_fixed_norm`), checked at every M like R(M).
Measured: the learned Gamma_eff = -W_PV[y, y] W_KQ[x, x]^T, and both risks on held-out prompts
(the query averaged exactly given each context: `common.conditional_risks`).

Initialisation (cfg.zfb_init). ZFB's convergence theorem (their Theorem 4.1) covers gradient flow
from their initialisation assumption (Section 3.3), not from any start:

    W_PV(0) = sigma [[0, 0], [0, 1]],   W_KQ(0) = sigma [[Theta Theta^T, 0], [0, 0]],
    ||Theta Theta^T||_F = 1,  Theta Theta^T Lambda != 0,  sigma small,

a balanced start whose off-diagonal blocks are zero (and stay zero along the flow). "zfb" (the
default) is that start with Theta a d x d standard Gaussian draw rescaled to ||Theta Theta^T||_F = 1
and sigma = cfg.init_scale; because this codebase predicts y_hat = -Z[-1, -1] (ZFB: +Z[-1, -1]),
W_PV's y-entry is -sigma, which gives ZFB's predictor: Gamma_eff(0) = sigma^2 Theta Theta^T,
positive semidefinite. "gaussian" is the generic i.i.d. N(0, init_scale^2) start of the other parts,
which the theorem does not cover.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from experiments.gd_equivalence import common
from experiments.gd_equivalence.config import Config
from theory.engine.keys import Keys
from theory.harness.parts import Part
from theory.harness.results import at_most, close
from theory.metrics import mean_se
from theory.models import lsa
from theory.predictions import gd_equivalence as pred

ZFB = "Zhang, Frei & Bartlett 2024 (JMLR)"


def zfb_init(key: jax.Array, d: int, sigma: float) -> lsa.LSAParams:
    """ZFB's initialisation (Section 3.3) for one layer, in this codebase's sign convention:
    W_KQ = sigma [[Theta Theta^T, 0], [0, 0]], W_PV = -sigma e_{d+1} e_{d+1}^T, with Theta (d, d)
    standard Gaussian rescaled so that ||Theta Theta^T||_F = 1 (Gamma_eff(0) = sigma^2 Theta Theta^T)."""
    theta = jax.random.normal(key, (d, d))                                             # (d, d)
    tt = theta @ theta.T                                                               # (d, d)
    W_KQ = jnp.zeros((d + 1, d + 1)).at[:d, :d].set(sigma * tt / jnp.linalg.norm(tt))  # (D, D)
    W_PV = jnp.zeros((d + 1, d + 1)).at[d, d].set(-sigma)                              # (D, D)
    return lsa.LSAParams(W_KQ[None], W_PV[None])                                       # (1, D, D) each


def _zfb_init_layers(key, n_layers: int, D: int, sigma: float) -> lsa.LSAParams:
    """`zfb_init` in `common.train`'s init signature (one layer, D = d + 1)."""
    return zfb_init(key, D - 1, sigma)


def _train(cfg: Config, keys: Keys, progress: str | None):
    """The trained layer (one run), from cfg.zfb_init."""
    task, N = cfg.zfb_task, cfg.zfb_n_context
    init = None if cfg.zfb_init == "gaussian" else _zfb_init_layers
    params, _ = common.train(keys.sub("train").runs(1), "gd_equivalence/zfb", lr=cfg.lr, task=task,
                             n_ctx=N, n_layers=1, depth=1, steps=cfg.zfb_steps, batch=cfg.batch,
                             init_scale=cfg.init_scale, log_every=cfg.log_every, progress=progress, init=init)
    return common.run_of(params, 0)


def predict(cfg: Config) -> dict:
    """Gamma^{-1}, R(M) and the fixed-1/N risk for every test length M, from the config alone."""
    task, N = cfg.zfb_task, cfg.zfb_n_context
    gamma_inv = pred.zfb_preconditioner(task, N)                                     # (d, d)
    return {"M": list(cfg.zfb_test_lengths), "gamma_inv": gamma_inv,
            "gamma_inv_diag": np.diag(gamma_inv), "lambda_inv_diag": 1 / np.asarray(cfg.zfb_lam),
            "risk": [pred.zfb_risk(task, N, M) for M in cfg.zfb_test_lengths],
            "fixed_norm_risk": [pred.zfb_risk_fixed_norm(task, N, M) for M in cfg.zfb_test_lengths],
            "zero_risk": float(np.sum(task.covariance_diag))}


def measure(cfg: Config, keys: Keys, progress: str | None) -> dict:
    """Train one layer at length N; its Gamma_eff and its risks (1/M and frozen 1/N) at every M.

    The risks are Monte-Carlo means over cfg.n_eval held-out (context, w) draws of the exact
    conditional risk given the context, averaged over the query x_q (`common.conditional_risks`):
    unbiased, with about 2.5x smaller standard error than the squared error of one sampled query."""
    task, N = cfg.zfb_task, cfg.zfb_n_context
    p = _train(cfg, keys, progress)
    out = {"risk": [], "risk_se": [], "fixed_norm_risk": [], "fixed_norm_risk_se": []}
    for M in cfg.zfb_test_lengths:
        # both normalisations on the same prompts (one draw): (2, n)
        r, r_fixed = np.asarray(common.conditional_risks(p, task, M, cfg.n_eval, keys.sub("eval", M).data_key,
                                                         (None, N)))
        for name, row in (("risk", r), ("fixed_norm_risk", r_fixed)):
            m, se = mean_se(row)
            out[name].append(m)
            out[f"{name}_se"].append(se)
    gamma_eff = common.learned_preconditioner(p.W_KQ[0], p.W_PV[0])                 # (d, d)
    return {"gamma_eff": gamma_eff, "gamma_eff_diag": np.diag(gamma_eff), **out}


def _worst_relative(P: dict, M: dict, name: str) -> tuple[int, float]:
    """(index, relative error) of the test length where measured risk `name` is furthest from P's."""
    pred_, meas = np.asarray(P[name], float), np.asarray(M[name], float)
    rel = np.abs(meas / pred_ - 1)
    return int(np.argmax(rel)), float(np.max(np.asarray(M[f"{name}_se"], float) / meas))


def judge(cfg: Config, P: dict, M: dict) -> list:
    gamma_inv, gamma_eff = np.asarray(P["gamma_inv"]), np.asarray(M["gamma_eff"])
    rel_frob = float(np.linalg.norm(gamma_eff - gamma_inv) / np.linalg.norm(gamma_inv))
    lengths = list(P["M"])
    worst, max_se = _worst_relative(P, M, "risk")
    worst_f, max_se_f = _worst_relative(P, M, "fixed_norm_risk")
    start = (f"trained from {'ZFB' if cfg.zfb_init == 'zfb' else 'an i.i.d. Gaussian'} init (zfb_init="
             f"{cfg.zfb_init!r}); ZFB's Theorem 4.1 proves gradient flow reaches this minimum from their "
             "Section 3.3 start (W_PV(0) = sigma e_y e_y^T, W_KQ(0) = sigma [[Theta Theta^T, 0], [0, 0]], "
             "||Theta Theta^T||_F = 1, small sigma)" + ("" if cfg.zfb_init == "zfb" else
                                                         ", which this random start is not"))
    mc = (f"{cfg.n_eval} held-out contexts, the query averaged exactly (conditional_risks in "
          "experiments/gd_equivalence/common.py)")
    # the finite-training part of the error: the formulas at the learned Gamma_eff instead of Gamma^-1
    task, N = cfg.zfb_task, cfg.zfb_n_context
    train_part = {frozen: max(abs(pred.linear_risk(task, gamma_eff, m, m / N if frozen else 1.0)
                                  / pred.linear_risk(task, gamma_inv, m, m / N if frozen else 1.0) - 1)
                              for m in lengths) for frozen in (False, True)}
    return [
        at_most("preconditioner_vs_gamma_inv", "The learned preconditioner -W_PV[y,y] W_KQ[x,x]^T "
                "equals Gamma^-1: ||Gamma_eff - Gamma^-1||_F / ||Gamma^-1||_F.", "predicted", 0.01,
                rel_frob,
                f"{ZFB}: the global minimum of the one-layer loss is Gamma^-1, Gamma = (1 + 1/N) Lambda "
                "+ tr(Lambda)/N I (zfb_preconditioner in theory/predictions/gd_equivalence.py; "
                f"stationarity proved in proofs/gd_equivalence.py); {start}; 1% allows finite training"),
        close("risk_vs_formula_worst_length", f"The trained layer's test risk R(M) matches the formula at "
              f"the worst test length (M = {lengths[worst]} of {lengths}).", "predicted",
              float(P["risk"][worst]), float(M["risk"][worst]), 0.03,
              f"{ZFB}: R(M) of Gamma^-1 on prompts of length M (linear_risk in "
              f"theory/predictions/gd_equivalence.py), {start}; 3% = finite training (the formula at the learned "
              f"Gamma_eff moves by up to {train_part[False]:.2%}) plus >= 3 Monte-Carlo standard errors "
              f"(s.e. up to {max_se:.2%} of the risk on {mc})"),
        close("fixed_norm_risk_vs_formula_worst_length", "Negative control: the trained layer with its "
              "normalisation frozen at 1/N has the exact risk of Gamma^-1 frozen at 1/N at every test "
              f"length (worst: M = {lengths[worst_f]} of {lengths}); it blows up like (M/N)^2.",
              "predicted", float(P["fixed_norm_risk"][worst_f]), float(M["fixed_norm_risk"][worst_f]), 0.03,
              f"{ZFB}; the frozen normalisation (von Oswald et al. 2023's P = eta/N) scales the update "
              "by M/N (zfb_risk_fixed_norm in theory/predictions/gd_equivalence.py, predicted "
              f"{float(P['fixed_norm_risk'][-1]):.4g} at M = {lengths[-1]}), {start}; 3% = finite training (the "
              f"formula at the learned Gamma_eff moves by up to {train_part[True]:.2%}) plus >= 3 "
              f"Monte-Carlo standard errors (s.e. up to {max_se_f:.2%} on {mc})"),
    ]


PART = Part("zfb", predict, measure, judge)
