"""Claim `composition`: transformers compose through associative memories (Bietti et al. 2023), and a
k-step computation succeeds with probability ~ prod (1 - eps_i) (Dziri et al. 2023).

Parts (experiments/composition/parts/<name>.py; each module's docstring gives its math):

1. memory         (float64) one gradient step from W = 0 on a linear associative memory stores N pairs:
                  the step is sum_x p(x) (u_f(x) - u_bar) e_x^T exactly, and recall accuracy against d
                  crosses 50% near d = sqrt(2 N ln M).
2. induction      Bietti et al.'s two-layer attention-only transformer with frozen embeddings learns an
                  induction head on bigram sequences with triggers: the three memories (previous-token
                  key, trigger key, output matrix) form and the in-context targets are predicted.
3. compounding    a decoder trained on chained modular sums with a scratchpad: free-running exact match
                  against prod (1 - eps_i) of the teacher-forced step errors.
"""
import importlib.util

from experiments.composition.config import Config
from experiments.composition.figure import plot
from experiments.composition.parts import induction, memory

PRECISION = "float32"   # training; Part 1 runs in float64

PARTS = (memory.PART, induction.PART)
if importlib.util.find_spec("experiments.composition.parts.compounding") is not None:   # Part 3, while written
    from experiments.composition.parts import compounding
    PARTS += (compounding.PART,)

__all__ = ["PRECISION", "Config", "PARTS", "plot"]
