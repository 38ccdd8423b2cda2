"""Claim `gd_equivalence`: linear self-attention trained on in-context regression is (preconditioned) GD.

Papers: von Oswald et al. 2023 (ICML; vO), Zhang, Frei & Bartlett 2024 (JMLR; ZFB), Ahn, Cheng,
Daneshmand & Sra 2023 (NeurIPS). Each part predicts from the config alone
(theory/predictions/gd_equivalence.py, proofs in proofs/gd_equivalence.py), measures on its own
key stream and judges the two:

  construction     (exact, float64) constructed LSA == K steps of GD, and == GD++ (K = 1, 2, 3);
  one_layer        vO: x ~ U(-r/2, r/2); loss vs L*, implied step size vs eta*, structure of W_KQ
                   and W_PV, model cosine with GD at eta*;
  zfb              ZFB: Gaussian inputs with anisotropic Lambda; learned preconditioner vs
                   Gamma^{-1}, risk R(M) over test lengths, and the fixed-1/N negative control
                   against its exact risk at every M;
  depth            K layers (weight-shared and per-layer; K >= 4 with vO's deep-stack recipe:
                   AdamW, gradient clipping, residual clamp) against GD++ and K-step GD references
                   fitted in float64 (loss exact in the task and query, a Gauss rule on sampled
                   context spectra, Newton's method; settled against a second sample and the
                   held-out prompts), every model scored on the held-out prompts in float64;
  softmax_control  negative control: one softmax head aligns clearly worse with GD at eta*.
"""
from __future__ import annotations

from experiments.gd_equivalence.config import Config
from experiments.gd_equivalence.figure import plot
from experiments.gd_equivalence.parts import construction, depth, one_layer, softmax_control, zfb
from theory.harness.config import Knob

PRECISION = "float32"   # training; the construction part runs in float64, the depth references and evaluation too

PARTS = (construction.PART, one_layer.PART, zfb.PART, depth.PART, softmax_control.PART)

# `sandbox explore` knobs (theory/harness/explore.py): the main one first
KNOBS = (
    Knob("n_context", (5, 10, 20, 40), "N: the trained layer should equal one GD step at eta*(d, N) for every N "
         "(von Oswald et al. 2023, Prop. 1; the optimum in theory/predictions/gd_equivalence.py)",
         paper=10, part="one_layer"),
    Knob("d", (2, 5, 10), "input dimension: the same identity at every d", paper=10, part="one_layer"),
)

__all__ = ["KNOBS", "PRECISION", "Config", "PARTS", "plot"]
