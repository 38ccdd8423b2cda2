"""Training and evaluation pieces shared by the `gd_equivalence` parts (pure functions; no state).

Models take token matrices Z (T, D) with T = M + 1 (M context pairs and the query) and D = d + 1
(`theory.tasks.linear_regression.tokens`); y_hat is minus the query's y-slot after the last layer.

* `train`: one vmapped sweep of training runs (one run per key), Adam(W) with a cosine decay, fresh
  prompts every step; the run key splits into (k_init, k_data), and the prompts are drawn from
  `data_key(k_data)` (theory/engine/keys.py: k_data's own numbers, drawn ~3x faster on a CPU).
  Options for vO's deep-stack recipe: clip_by_global_norm of the gradient, and a residual clamp
  (every token entry clipped to [-clamp, clamp] after each layer; `theory.models.lsa.lsa_forward`).
* `squared_errors` / `squared_errors_of`: per-prompt (y_hat - y_q)^2 on n held-out prompts of
  length M, chunked; `squared_errors_of` scores several predictors on the same prompts in one pass
  (each chunk is drawn once). Held-out prompts come from a `Keys(...).data_key`.
* `sensitivity_cosines`: per prompt, cos(d f / d x_q, d g / d x_q) of two predictors (vO's
  "model cosine": two linear-in-x_q predictors agree iff their sensitivities align).
* `learned_preconditioner`: Gamma_eff = -W_PV[y, y] W_KQ[x, x]^T (d, d). With the query's y-slot
  0, one layer predicts y_hat = -W_PV[y, :] (1/M) sum_j z_j (z_j^T W_KQ z_q); when W_PV[y, x] = 0
  and W_KQ[y, x] = 0 (both vanish at the GD construction) this is
  y_hat = x_q^T Gamma_eff (1/M) sum_j y_j x_j, preconditioned GD from W0 = 0 (vO, Proposition 1;
  ZFB's and Ahn et al.'s one-layer parametrisation). The scale c of W_KQ -> c W_KQ,
  W_PV -> W_PV / c cancels in Gamma_eff.
"""
from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from experiments.gd_equivalence.config import EVAL_CHUNK
from theory.engine import train as engine
from theory.engine.keys import data_key
from theory.engine.sweep import sweep
from theory.models import lsa
from theory.predictions.gd_equivalence import predict_prompts
from theory.tasks.linear_regression import RegressionTask, sample_batch, tokens


def optimizer(lr, steps: int, clip: float = 0.0, name: str = "adam"):
    """Adam(W) (b2 = 0.98, vO's choice; no weight decay) with a cosine decay from lr to 0 over
    `steps`, after clip_by_global_norm(clip) of the gradient when clip > 0."""
    return engine.make_optimizer(engine.OptimizerConfig(name, b2=0.98, clip=clip, schedule="cosine"), lr, steps)


def softmax_predict_prompts(params: lsa.SoftmaxParams, prompts, n_ctx: int) -> jax.Array:
    """Softmax-head predictions on a batch of prompts, (B,)."""
    Z = jax.vmap(tokens)(prompts)                                                        # (B, T, D)
    return jax.vmap(lambda z: lsa.softmax_attention_predict(params, z, n_ctx))(Z)        # (B,)


def predict_batch(params, prompts, n_ctx: int, depth: int | None = None,
                  n_norm: int | None = None, clamp: float | None = None) -> jax.Array:
    """y_hat (B,) of LSA weights (any depth, optional frozen normalisation, optional residual
    clamp: then the full forward, which the query-row recursion cannot express) or a softmax head."""
    if isinstance(params, lsa.SoftmaxParams):
        return softmax_predict_prompts(params, prompts, n_ctx)
    if clamp is not None:
        Z = jax.vmap(tokens)(prompts)                                                    # (B, T, D)
        return jax.vmap(lambda z: lsa.lsa_forward(params, z, n_ctx, depth=depth, n_norm=n_norm,
                                                  clamp=clamp)[0])(Z)                   # (B,)
    return predict_prompts(params, prompts, n_ctx, depth=depth, n_norm=n_norm)


def predictor(params, n_ctx: int, depth: int | None = None) -> Callable[[jax.Array], jax.Array]:
    """The per-prompt predictor Z (T, D) -> y_hat of LSA weights or a softmax head."""
    if isinstance(params, lsa.SoftmaxParams):
        return lambda Z: lsa.softmax_attention_predict(params, Z, n_ctx)
    return lambda Z: lsa.lsa_predict(params, Z, n_ctx, depth=depth)


def _half_mse(params, batch, n_ctx: int, depth: int | None, clamp: float | None = None):
    return 0.5 * jnp.mean((predict_batch(params, batch, n_ctx, depth, clamp=clamp) - batch.y_q) ** 2)


def _run(key, *, lr, run_id, model: str, task: RegressionTask, n_ctx: int, n_layers: int,
         depth: int | None, steps: int, batch: int, init_scale: float, log_every: int,
         progress: str | None, opt: str = "adam", clip: float = 0.0, clamp: float | None = None,
         init: Callable | None = None):
    """One training run (a pure function of its key; vmapped by `sweep`). model: "lsa" | "softmax";
    `init(key, n_layers, D, init_scale)` replaces the model's default initialisation when given."""
    k_init, k_data = jax.random.split(key)
    init = init or (lsa.init_lsa if model == "lsa" else lsa.init_softmax)
    p0 = init(k_init, n_layers, task.d + 1, init_scale)
    return engine.train(data_key(k_data), p0, functools.partial(_half_mse, n_ctx=n_ctx, depth=depth, clamp=clamp),
                        lambda k: sample_batch(k, task, n_ctx, batch), optimizer(lr, steps, clip, opt),
                        steps=steps, log_every=log_every, progress=progress, run_id=run_id)


def train(run_keys: jax.Array, name: str, *, lr: float, model: str = "lsa", task: RegressionTask,
          n_ctx: int, n_layers: int = 1, depth: int | None = None, steps: int, batch: int,
          init_scale: float, log_every: int, progress: str | None = None, opt: str = "adam",
          clip: float = 0.0, clamp: float | None = None, init: Callable | None = None):
    """Train len(run_keys) independent models; return (params, trace) with a leading run axis.

    model "lsa": `n_layers` LSA layers applied `depth` times (depth > n_layers = 1 is the
    weight-shared model); "softmax": `n_layers` softmax heads in one layer. opt "adam" | "adamw"
    (no weight decay either way), clip: clip_by_global_norm threshold (0: none), clamp: residual
    clamp of the LSA stack (None: none), init: initialisation (key, n_layers, D, init_scale) -> params
    (None: the model's default)."""
    run = functools.partial(_run, model=model, task=task, n_ctx=n_ctx, n_layers=n_layers, depth=depth,
                            steps=steps, batch=batch, init_scale=init_scale, log_every=log_every,
                            progress=progress, opt=opt, clip=clip, clamp=clamp, init=init)
    params, trace = sweep(run, run_keys, lr=lr)
    engine.raise_if_diverged(trace, name, {"lr": lr, "steps": steps})
    return params, trace


def run_of(tree, i: int):
    """Run i of a pytree with a leading run axis."""
    return jax.tree_util.tree_map(lambda a: a[i], tree)


def squared_errors(params, task: RegressionTask, M: int, n: int, key: jax.Array,
                   depth: int | None = None, n_norm: int | None = None) -> jax.Array:
    """(y_hat - y_q)^2 on n held-out prompts of length M, (n,); chunk i is drawn from fold_in(key, i)."""
    return squared_errors_of(((params, depth, n_norm),), task, M, n, key)[0]


def squared_errors_of(models, task: RegressionTask, M: int, n: int, key: jax.Array) -> jax.Array:
    """`squared_errors` of several predictors on the same n prompts, (len(models), n).

    models: (params, depth, n_norm) triples, or (params, depth, n_norm, clamp). Each chunk of
    prompts is drawn once and scored by every predictor, so k predictors cost one draw of the
    prompts instead of k."""
    params = tuple(m[0] for m in models)
    forms = tuple((m[1], m[2], m[3] if len(m) > 3 else None) for m in models)
    return _squared_errors(params, task, M, n, key, forms)


@functools.partial(jax.jit, static_argnames=("task", "M", "n", "forms"))
def _squared_errors(params: tuple, task: RegressionTask, M: int, n: int, key: jax.Array,
                    forms: tuple) -> jax.Array:
    def chunk(i):
        p = sample_batch(jax.random.fold_in(key, i), task, M, EVAL_CHUNK)
        return jnp.stack([(predict_batch(w, p, M, depth, n_norm, clamp) - p.y_q) ** 2     # (k, EVAL_CHUNK)
                          for w, (depth, n_norm, clamp) in zip(params, forms)])
    out = jax.lax.map(chunk, jnp.arange(n // EVAL_CHUNK))                                  # (chunks, k, EVAL_CHUNK)
    return jnp.moveaxis(out, 1, 0).reshape(len(forms), n)                                  # (k, n)


@functools.partial(jax.jit, static_argnames=("task", "M", "n", "depth", "clamp"))
def clamp_activity(params, task: RegressionTask, M: int, n: int, key: jax.Array, depth: int,
                   clamp: float) -> jax.Array:
    """How often the residual clamp acts on n held-out prompts (the chunks of `squared_errors`):
    (fraction of prompts clipped at some layer, fraction of (prompt, layer) pairs clipped), (2,).

    A layer is clipped iff its largest |entry| before the clip exceeds `clamp` (Acts.peak)."""
    def chunk(i):
        Z = jax.vmap(tokens)(sample_batch(jax.random.fold_in(key, i), task, M, EVAL_CHUNK))    # (B, T, D)
        peak = jax.vmap(lambda z: lsa.lsa_forward(params, z, M, depth=depth, clamp=clamp)[1].peak)(Z)   # (B, K)
        hit = peak > clamp                                                                     # (B, K)
        return jnp.stack([jnp.mean(jnp.any(hit, axis=1)), jnp.mean(hit)])
    return jnp.mean(jax.lax.map(chunk, jnp.arange(n // EVAL_CHUNK)), axis=0)


def conditional_risks(params, task: RegressionTask, M: int, n: int, key: jax.Array, n_norms: tuple) -> jax.Array:
    """Per-prompt risk of ONE LSA layer given the context and the task, averaged exactly over the
    query x_q ~ N(0, Lambda): (len(n_norms), n), one row per normalisation (None: 1/M; N: frozen 1/N).

    With the query's y-slot 0, one layer's prediction is exactly linear in x_q: y_hat = x_q^T v,
    v = d y_hat / d x_q (a function of the context only). So, with y_q = w^T x_q + noise,

        E[(y_hat - y_q)^2 | context, w] = (v - w)^T Lambda (v - w) + noise^2,

    an unbiased estimate of the risk with a smaller Monte-Carlo error than (y_hat - y_q)^2 (the
    x_q draw is averaged out exactly; Rao-Blackwellisation). Chunk i is drawn from fold_in(key, i)."""
    return _conditional_risks(params, task, M, n, key, tuple(n_norms))


@functools.partial(jax.jit, static_argnames=("task", "M", "n", "n_norms"))
def _conditional_risks(params, task: RegressionTask, M: int, n: int, key: jax.Array, n_norms: tuple) -> jax.Array:
    lam = jnp.asarray(task.covariance_diag)                                                    # (d,)

    def chunk(i):
        p = sample_batch(jax.random.fold_in(key, i), task, M, EVAL_CHUNK)
        Z = jax.vmap(tokens)(p)                                                                # (B, T, D)
        rows = []
        for n_norm in n_norms:
            f = functools.partial(lsa.lsa_predict, params, n_ctx=M, depth=1, n_norm=n_norm)
            v = jax.vmap(functools.partial(query_sensitivity, f))(Z)                           # (B, d)
            rows.append(jnp.sum(lam[None, :] * (v - p.w) ** 2, axis=1) + task.noise ** 2)         # (B,)
        return jnp.stack(rows)                                                                 # (k, B)
    out = jax.lax.map(chunk, jnp.arange(n // EVAL_CHUNK))                                      # (chunks, k, B)
    return jnp.moveaxis(out, 1, 0).reshape(len(n_norms), n)


def query_sensitivity(f: Callable[[jax.Array], jax.Array], Z: jax.Array) -> jax.Array:
    """d f(Z) / d x_q: the gradient at the query token's input slots Z[-1, :d], (d,)."""
    return jax.grad(f)(Z)[-1, :-1]


def sensitivity_cosines(f, g, Zs: jax.Array) -> jax.Array:
    """Per-prompt cos(d f / d x_q, d g / d x_q) over token matrices Zs (B, T, D), (B,)."""
    def one(Z):
        a, b = query_sensitivity(f, Z), query_sensitivity(g, Z)                     # (d,), (d,)
        return a @ b / (jnp.linalg.norm(a) * jnp.linalg.norm(b))
    return jax.vmap(one)(Zs)


@functools.partial(jax.jit, static_argnames=("n_ctx", "depth_a", "depth_b"))
def _mean_cosine(params_a, params_b, Zs, n_ctx: int, depth_a: int | None, depth_b: int | None):
    return jnp.mean(sensitivity_cosines(predictor(params_a, n_ctx, depth_a),
                                        predictor(params_b, n_ctx, depth_b), Zs))


def mean_cosine(params_a, params_b, Zs: jax.Array, n_ctx: int, depth_a: int | None = None,
                depth_b: int | None = None) -> float:
    """vO's model cosine: the mean over Zs of cos(d y_hat_a / d x_q, d y_hat_b / d x_q) of two
    models (LSA weights at a depth, or a softmax head), jitted once per model pair's structure."""
    return float(_mean_cosine(params_a, params_b, Zs, n_ctx, depth_a, depth_b))


@functools.partial(jax.jit, static_argnames=("task", "n_ctx", "n"))
def sensitivity_tokens(key: jax.Array, task: RegressionTask, n_ctx: int, n: int) -> jax.Array:
    """n held-out token matrices (n, N + 1, d + 1) for sensitivity cosines."""
    return jax.vmap(tokens)(sample_batch(key, task, n_ctx, n))


def learned_preconditioner(W_KQ, W_PV) -> np.ndarray:
    """Gamma_eff = -W_PV[y, y] W_KQ[x, x]^T (d, d) of one LSA layer's (D, D) weights, in float64."""
    kq, pv = np.asarray(W_KQ, np.float64), np.asarray(W_PV, np.float64)
    d = kq.shape[0] - 1
    return -pv[d, d] * kq[:d, :d].T


def one_layer_structure(W_KQ, W_PV) -> dict:
    """What vO's Proposition 1 fixes in one trained layer (D, D weights), as host floats:

        implied_eta  tr(Gamma_eff) / d                       (the GD step size; eta* predicted)
        kq_offdiag   max |off-diag W_KQ[x, x]| / mean |diag W_KQ[x, x]|     (0 predicted)
        pv_x_part    ||W_PV[y, x]|| / |W_PV[y, y]|                          (0 predicted)
    """
    kq, pv = np.asarray(W_KQ, np.float64), np.asarray(W_PV, np.float64)
    d = kq.shape[0] - 1
    kx = kq[:d, :d]                                                           # (d, d)
    return {"implied_eta": float(np.trace(learned_preconditioner(kq, pv)) / d),
            "kq_offdiag": float(np.max(np.abs(kx - np.diag(np.diag(kx)))) / np.mean(np.abs(np.diag(kx)))),
            "pv_x_part": float(np.linalg.norm(pv[d, :d]) / abs(pv[d, d]))}
