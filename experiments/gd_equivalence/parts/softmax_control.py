"""Part `softmax_control` (negative control): one softmax head does NOT implement a GD step.

One softmax attention head (with a residual) trained in vO's setting. Its prediction is a
softmax-weighted average of context tokens, which is not linear in (1/N) sum_i y_i x_i, so it lies
outside the family of GD steps (vO 2023, Proposition 1 needs the linear score). Its model cosine
with GD at eta* (the mean cosine of d y_hat / d x_q on this part's own held-out prompts) should be
clearly below the 0.999 the linear layer reaches (one_layer part).
"""
from __future__ import annotations

from experiments.gd_equivalence import common
from experiments.gd_equivalence.config import Config
from theory.engine.keys import Keys
from theory.harness.parts import Part
from theory.harness.results import at_most
from theory.metrics import mean_se
from theory.predictions import gd_equivalence as pred


def predict(cfg: Config) -> dict:
    """eta* of the GD step the head is compared with."""
    eta_star, loss_star = pred.optimal_one_step(cfg.vo_task, cfg.n_context)
    return {"eta_star": eta_star, "gd_loss": loss_star}


def measure(cfg: Config, keys: Keys, progress: str | None) -> dict:
    """Train one softmax head; its model cosine with GD at eta* and its held-out loss."""
    task, N = cfg.vo_task, cfg.n_context
    params, _ = common.train(keys.sub("train").runs(1), "gd_equivalence/softmax", lr=cfg.lr,
                             model="softmax", task=task, n_ctx=N, steps=cfg.softmax_steps,
                             batch=cfg.softmax_batch, init_scale=cfg.init_scale,
                             log_every=cfg.log_every, progress=progress)
    head = common.run_of(params, 0)
    gd = pred.construct_gd(pred.optimal_one_step(task, N)[0], cfg.d)
    Zs = common.sensitivity_tokens(keys.sub("sensitivity").key, task, N, cfg.n_sens)    # (n_sens, T, D)
    cosine = common.mean_cosine(head, gd, Zs, N)
    loss = 0.5 * mean_se(common.squared_errors(head, task, N, cfg.n_eval, keys.sub("eval").data_key))[0]
    return {"cosine": cosine, "loss": loss}


def judge(cfg: Config, P: dict, M: dict) -> list:
    return [at_most(
        "softmax_cosine_with_gd", "Negative control: one trained softmax head's sensitivity aligns "
        "clearly worse with GD at eta* than the linear layer's.", "expected", 0.99, float(M["cosine"]),
        "von Oswald et al. 2023 (ICML), Proposition 1 needs linear attention scores; 0.99 reads "
        "'clearly worse': a misalignment 1 - cos at least 10x the linear layer's bound "
        "(model_cosine_with_gd, experiments/gd_equivalence/parts/one_layer.py)")]


PART = Part("softmax_control", predict, measure, judge)
