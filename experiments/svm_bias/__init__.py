"""Claim `svm_bias`: attention's implicit bias is a max-margin token-selecting SVM.

Tarzanagh, Li, Thrampoulidis & Oymak (2023), "Transformers as Support Vector Machines" /
"Max-margin token selection in attention mechanism". Model f(X, z) = v^T X^T softmax(X W z) with a
fixed head v and the logistic loss (theory/models/single_attention.py), on random unit-norm
instances of n sequences of T tokens in R^d (theory/tasks/token_selection.py). For a selection
alpha (one token per sequence) the attention SVMs are (theory/predictions/svm_bias.py)

    Att-SVM   W^mm_alpha   = argmin ||W||_F  s.t. (x_{i alpha_i} - x_it)^T W z_i >= 1, t != alpha_i
    Att-SVM*  W^mm_{*,alpha} = argmin ||W||_*  under the same constraints,

solved from the instances alone (exact least-distance program; certified conic solve).

Parts (each a Part(predict, measure, judge) in parts/<name>.py; each draws its own instances from
its own named stream Keys(seed).sub(<name>) and trains what it compares):
  w_ngd                 normalized GD on W: W(k)/||W(k)|| -> W^mm_alpha/||W^mm_alpha|| for the tokens
                        alpha it selects; softmax mass on alpha -> 1; alpha locally optimal. Exact
                        piece: pairwise gradient == autodiff where no cancellation occurs. Control:
                        autodiff's softmax gradient.
  kq_ngd                normalized GD on (K, Q): K Q^T is closer to Att-SVM* than to Att-SVM and its
                        margin-normalised nuclear norm is within 5% of the Att-SVM* optimum; W on the
                        same instances shows the opposite preference.
  svm_ranks             ranks of both SVM solutions against d (no training).
  overparameterisation  the fraction of runs selecting the global opt tokens rises with d.
  regularization_path   W_R = argmin_{||W|| <= R} L: cos(W_R, W^mm_opt) -> 1 and W_R selects opt.
  plain_gd              plain GD: ||W(k)|| ~ log k and slower direction convergence than normalized GD.
  trajectory_2d         figure only: W(k) z_i against W^mm z_i on a d = 2 instance.
"""
from __future__ import annotations

from theory.harness.config import Knob

from .config import Config
from .figure import plot
from .parts import PARTS

PRECISION = "float64"

# `sandbox explore` knobs (theory/harness/explore.py): the main one first
KNOBS = (
    Knob("d", (4, 6, 10, 20), "token dimension: the local-convergence theorem holds at every d; larger d "
         "makes GD's selection globally optimal more often (Tarzanagh et al. 2023)", part="w_ngd", paper=10),
)

__all__ = ["KNOBS", "PRECISION", "Config", "PARTS", "plot"]
