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
from experiments.composition.config import Config
from experiments.composition.figure import plot
from experiments.composition.parts import compounding, induction, memory
from theory.harness.config import Knob

PRECISION = "float32"   # training; Part 1 runs in float64
PARTS = (memory.PART, induction.PART, compounding.PART)

KNOBS = (
    Knob("lr", (0.03, 0.1, 0.2),
         "SGD learning rate of the induction-head runs (the preset's 0.1 departs from the paper's 0.03; "
         "the repository's default is 0.2): the memories should form top-down, output matrix first, at "
         "every rate that trains (Bietti et al. 2023's top-down claim, the order per our reading)",
         paper=0.03, part="induction"),
    Knob("d_model", (32, 64, 128),
         "embedding width of the induction-head model: associative-memory capacity grows with d, so the "
         "probes should form at least as well when d grows (Bietti et al. 2023; Part 1's recall curve)",
         part="induction"),
    Knob("train_k", (2, 4, 6),
         "longest chain the decoder trains on: free-running exact match should follow prod (1 - eps_i) "
         "at every k, inside and beyond the training range (our independence hypothesis after Dziri et al. 2023)",
         part="compounding"),
)

__all__ = ["KNOBS", "PRECISION", "Config", "PARTS", "plot"]
