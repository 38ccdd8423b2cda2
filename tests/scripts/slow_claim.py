"""A small claim whose second part trains long enough to be interrupted (tests/test_interrupts.py).

Part `warmup` is a short sweep; part `long` trains 3 runs of a noisy least-squares problem with
Adam for `steps` steps. The judge checks that the final loss is below the initial one (a real,
failable check), so a resumed run is compared with an uninterrupted one on real numbers.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from theory.engine import train as engine
from theory.engine.sweep import sweep
from theory.harness.parts import Part
from theory.harness.results import at_most

PRECISION = "float32"


@dataclasses.dataclass(frozen=True)
class Config:
    steps: int = 150_000
    width: int = 64
    seeds: int = 3

    @classmethod
    def quick(cls):
        return cls()

    @classmethod
    def full(cls):
        return cls()

    def validate(self):
        pass


def _run(key, *, lr, run_id=0, steps, width):
    k_init, k_data = jax.random.split(key)
    A = jnp.linspace(0.5, 2.0, width)                                   # (width,)
    opt = engine.make_optimizer(engine.OptimizerConfig("adam"), lr, steps)
    w, tr = engine.train(k_data, jax.random.normal(k_init, (width,)),
                         lambda w, b: 0.5 * jnp.mean((A * w - b) ** 2),
                         lambda k: 1.0 + 0.1 * jax.random.normal(k, (32, width)), opt,
                         steps=steps, log_every=steps // 20, run_id=run_id)
    return w, tr.loss


def _measure(steps):
    def measure(cfg, keys, progress):
        w, loss = sweep(_Run(steps or cfg.steps, cfg.width), keys.runs(cfg.seeds),
                        lr=jnp.full((cfg.seeds,), 1e-3))
        return {"w_mean": np.asarray(w).mean(axis=1), "loss": np.asarray(loss)}
    return measure


@dataclasses.dataclass(frozen=True)
class _Run:
    steps: int
    width: int

    def __call__(self, key, *, lr, run_id=0):
        return _run(key, lr=lr, run_id=run_id, steps=self.steps, width=self.width)


def _judge(cfg, P, M, part):
    loss = np.asarray(M["loss"], dtype=float)
    return [at_most(f"{part}_loss_decreases", "the final training loss is at most the first logged one", "expected",
                    float(loss[:, 0].min()), float(loss[:, -1].max()), "tests/scripts/slow_claim.py")]


PARTS = (Part("warmup", lambda cfg: {}, _measure(200), functools.partial(_judge, part="warmup")),
         Part("long", lambda cfg: {}, _measure(None), functools.partial(_judge, part="long")))


def plot(result):
    import matplotlib.figure
    fig = matplotlib.figure.Figure(figsize=(3, 2))
    fig.add_subplot().plot(np.asarray(result["data"]["long"]["measured"]["loss"], dtype=float).T)
    return fig
