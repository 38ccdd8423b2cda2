"""Problem instances and training runs of `rank_growth`: each run is one jitted `lax.scan`
(`theory.engine.train.train`), vmapped over seeds and init scales alpha by `theory.engine.sweep.sweep`.

Every run is plain full-batch GD (Adam for one full-head run) on a fixed batch, so `train`'s per-step
batch key is never used for data; the run key only draws the teacher and the init.

    Saxe net       teacher M = U diag(s) V^T and init W1, W2 ~ N(0, alpha^2): k_teacher, k_init = split(run key)
    diagonal toys  the training set is drawn from the part's problem key (`draw`, the stream
                   `<part>/problem`; Algorithm 1 is solved for it in `predict`); init u = alpha, v = 0
    full head      teacher head, its inputs and the init: k_teacher, k_init = split(run key)
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from theory.engine.sweep import sweep  # noqa: F401  (the parts train through this module only)
from theory.engine.train import OptimizerConfig, make_optimizer, train
from theory.models import factored
from theory.tasks import teachers

ALIGNED_A0 = 1e-3   # per-mode factor a(0) of the aligned balanced init (strength u0 = a0^2 = 1e-6)


# --- instances: pure functions of (key, config) ------------------------------------------------
def saxe_instance(key: jax.Array, cfg, alpha) -> tuple[teachers.SaxeTeacher, factored.LinearNet]:
    """The teacher and the N(0, alpha^2) init of one Saxe run (the same draw at every alpha)."""
    k_teacher, k_init = jax.random.split(key)
    teacher = teachers.saxe_teacher(k_teacher, cfg.d, cfg.d, jnp.asarray(cfg.s))
    return teacher, factored.init_linear_net(k_init, cfg.d, cfg.hidden, cfg.d, alpha)


def regression_data(key: jax.Array, cfg) -> teachers.RegressionData:
    return teachers.equicorrelated_regression(key, cfg.reg_N, cfg.reg_rho, jnp.asarray(cfg.reg_w_star))


def attention_data(key: jax.Array, cfg) -> teachers.AttentionData:
    return teachers.diag_attention_teacher(key, cfg.att_N, cfg.att_T, jnp.asarray(cfg.att_a_star),
                                           jnp.asarray(cfg.att_b_star))


def head_instance(key: jax.Array, cfg) -> teachers.LowRankTeacher:
    return teachers.lowrank_attention_teacher(key, cfg.head_N, cfg.head_T, cfg.head_d,
                                              jnp.asarray(cfg.head_s_kq), jnp.asarray(cfg.head_s_pv))


# --- horizons ------------------------------------------------------------------------------------
def saxe_steps(cfg, alphas) -> int:
    """GD steps reaching saxe_horizon * (1/s_min) in rescaled time lr * step / ln(1/alpha) at the
    smallest of `alphas`."""
    return int(math.ceil(cfg.saxe_horizon / min(cfg.s) * math.log(1 / min(alphas)) / cfg.saxe_lr))


def aligned_steps(cfg) -> int:
    """GD steps of the aligned run: twice the flow time ln(1/a0^2) / (2 s_min) of the last mode."""
    return int(2.0 / min(cfg.s) * math.log(1 / ALIGNED_A0) / cfg.saxe_lr)


def diag_steps(T_last: float, alpha: float, lr: float, horizon: float) -> int:
    """GD steps reaching horizon * T_last in rescaled time lr * step / ln(1/alpha)."""
    return int(math.ceil(horizon * T_last * math.log(1 / alpha) / lr))


# --- runs ----------------------------------------------------------------------------------------
def _gd(lr, steps):
    return make_optimizer(OptimizerConfig(name="gd"), lr, steps)


def saxe_run(cfg, steps: int, progress, key, run_id, alpha):
    """GD on 1/2 ||W2 W1 - M||_F^2; logs every step sigma(W2 W1), U_i^T W2 W1 V_i and the loss."""
    teacher, p0 = saxe_instance(key, cfg, alpha)
    r = len(cfg.s)

    def log_fn(p):
        W = factored.linear_net_product(p)                                  # (d, d)
        proj = jnp.diagonal(teacher.U[:, :r].T @ W @ teacher.V[:, :r])      # (r,) mode strengths
        return jnp.linalg.svd(W, compute_uv=False), proj, factored.linear_net_loss(p, teacher.M)

    _, tr = train(key, p0, factored.linear_net_loss, lambda k: teacher.M, _gd(cfg.saxe_lr, steps),
                  steps=steps, log_every=1, log_fn=log_fn, run_id=run_id, progress=progress)
    return tr


@functools.partial(jax.jit, static_argnums=0)
def aligned_run(cfg, key: jax.Array) -> jax.Array:
    """GD from the aligned balanced init W1 = diag(a0) V_r^T, W2 = U_r diag(a0) (hidden units = modes)
    on the teacher drawn from `key`; returns the mode strengths U_i^T W2 W1 V_i after each step, (steps, r)."""
    teacher = teachers.saxe_teacher(key, cfg.d, cfg.d, jnp.asarray(cfg.s))
    r, steps = len(cfg.s), aligned_steps(cfg)
    a0 = jnp.full((r,), ALIGNED_A0)                                              # (r,)
    W1 = jnp.zeros((cfg.hidden, cfg.d)).at[:r].set(a0[:, None] * teacher.V[:, :r].T)   # (h, d)
    W2 = jnp.zeros((cfg.d, cfg.hidden)).at[:, :r].set(teacher.U[:, :r] * a0[None, :])  # (d, h)
    log_fn = lambda p: jnp.diagonal(teacher.U[:, :r].T @ factored.linear_net_product(p) @ teacher.V[:, :r])
    _, tr = train(key, factored.LinearNet(W1, W2), factored.linear_net_loss, lambda k: teacher.M,
                  _gd(cfg.saxe_lr, steps), steps=steps, log_every=1, log_fn=log_fn)
    return tr.logged                                                             # (steps, r)


def reg_run(cfg, steps: int, progress, key, run_id, alpha):
    """GD on diagonal regression from u = alpha, v = 0 on the training set of `key`; logs w = u * v
    and the loss every step."""
    data = regression_data(key, cfg)
    p = len(cfg.reg_w_star)
    p0 = factored.DiagLinear(alpha * jnp.ones((p,)), jnp.zeros((p,)))
    batch = (data.X, data.y)
    loss = lambda q, b: factored.diag_linear_loss(q, *b)
    _, tr = train(key, p0, loss, lambda k: batch, _gd(cfg.reg_lr, steps), steps=steps, log_every=1,
                  log_fn=lambda q: (q.u * q.v, loss(q, batch)), run_id=run_id, progress=progress)
    return tr


def att_run(cfg, steps: int, progress, key, run_id, alpha):
    """GD on the diagonal head from w_K = w_V = alpha, w_Q = w_O = 0 on the training set of `key`;
    logs (a, b) = (w_K w_Q, w_V w_O) and the loss every step."""
    data = attention_data(key, cfg)
    d = len(cfg.att_a_star)
    p0 = factored.DiagAttention(alpha * jnp.ones((d,)), jnp.zeros((d,)), alpha * jnp.ones((d,)), jnp.zeros((d,)))
    batch = (data.X, data.F_star)
    loss = lambda q, b: factored.diag_attention_loss(q, *b)

    def log_fn(q):
        a, b = factored.diag_products(q)
        return jnp.concatenate([a, b]), loss(q, batch)                      # (2d,), ()

    _, tr = train(key, p0, loss, lambda k: batch, _gd(cfg.att_lr, steps), steps=steps, log_every=1,
                  log_fn=log_fn, run_id=run_id, progress=progress)
    return tr


def head_run(cfg, opt_name: str, progress, key, run_id, alpha):
    """A full head from N(0, alpha^2) init on a low-rank teacher; logs Delta W_KQ = W_KQ - W_KQ(0)."""
    k_teacher, k_init = jax.random.split(key)
    inst = head_instance(k_teacher, cfg)
    p0 = factored.init_attention_head(k_init, cfg.head_d, cfg.head_d, alpha)
    KQ0, _ = factored.head_products(p0)                                          # (d, d)
    batch = (inst.data.X, inst.data.F_star)
    lr, steps = ((cfg.head_gd_lr, cfg.head_gd_steps) if opt_name == "gd"
                 else (cfg.head_adam_lr, cfg.head_adam_steps))
    opt = make_optimizer(OptimizerConfig(name=opt_name), lr, steps)
    log_fn = lambda q: factored.head_products(q)[0] - KQ0                       # (d, d)
    _, tr = train(key, p0, lambda q, b: factored.attention_head_loss(q, *b), lambda k: batch, opt,
                  steps=steps, log_every=cfg.head_log_every, log_fn=log_fn, run_id=run_id,
                  progress=progress)
    return tr
