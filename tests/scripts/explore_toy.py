"""A seconds-sized claim for tests/test_explore.py: gradient descent on f(w) = a w^2 / 2.

GD with step lr from w_0 gives w_k = (1 - lr a)^k w_0 exactly (part `gd`, check `closed_form`,
exact to float32 rounding); it contracts iff 0 < lr a < 2, so the expected check `converged`
(|w_K / w_0| <= 0.05) fails for small lr x steps and for lr a near or above 2, and a large lr
overflows float32 (a divergence, not a failed check). Knobs: lr (main), steps.
"""
from __future__ import annotations

import dataclasses

import jax
import numpy as np

from theory.errors import SandboxError
from theory.harness.config import Knob, check_fields, require_positive
from theory.harness.parts import Part
from theory.harness.results import at_most, close

PRECISION = "float32"
A = 1.0


@dataclasses.dataclass(frozen=True)
class Config:
    lr: float = 0.5
    steps: int = 20
    seeds: int = 2

    @classmethod
    def quick(cls):
        return cls()

    @classmethod
    def full(cls):
        return cls(steps=40)

    def validate(self):
        check_fields(self)
        require_positive(self, "lr", "steps", "seeds")
        if self.lr > 1e3:
            raise SandboxError(f"lr must be at most 1000, got {self.lr}")


KNOBS = (Knob("lr", (0.05, 0.5, 1.0, 1.9, 2.5), "contracts iff 0 < lr a < 2"), Knob("steps", (2, 20)))


def _predict(cfg):
    return {"factor": (1 - cfg.lr * A) ** cfg.steps}


def _measure(cfg, keys, progress):
    w0 = 1.0 + jax.random.uniform(keys.sub("init").key, (cfg.seeds,))           # (seeds,)

    def step(w, _):
        return w - cfg.lr * A * w, None
    w, _ = jax.lax.scan(step, w0, None, length=cfg.steps)                       # (seeds,)
    return {"w0": np.asarray(w0), "w": np.asarray(w)}


def _judge(cfg, P, M):
    ratio = np.asarray(M["w"], dtype=float) / np.asarray(M["w0"], dtype=float)
    tol = 1e-4 * max(1.0, abs(P["factor"]))            # float32 rounding over K steps
    return [close("closed_form", "w_K / w_0 equals (1 - lr a)^K", "exact", P["factor"], float(ratio[0]), tol,
                  "tests/scripts/explore_toy.py (GD on a quadratic)", rel=False),
            at_most("converged", "|w_K / w_0| at most 0.05", "expected", 0.05, float(np.abs(ratio).max()),
                    "tests/scripts/explore_toy.py")]


PARTS = (Part("gd", _predict, _measure, _judge),)


def plot(result):
    import matplotlib.figure
    fig = matplotlib.figure.Figure(figsize=(3, 2))
    fig.add_subplot().plot(np.asarray(result["data"]["gd"]["measured"]["w"], dtype=float))
    return fig
