"""Predictions of the `arithmetic` claim, from the config alone (no training).

Part 1 (construction): coupled position ids (Cho et al. 2024) give equal ids exactly to digits of
equal significance, so the hand-set adder of theory/models/adder.py adds two n-digit numbers exactly
for every n up to its maximum position (the carry recursion c_{i+1} = [a_i + b_i + c_i >= 10],
s_i = (a_i + b_i + c_i) mod 10, proved in proofs/arithmetic.py), and the same weights wired to
absolute slots of one training layout cannot read the right digits at any longer length.
Part 2 (completion): 2-digit addition is the rank-2 n x n table of a + b; N uniform revealed cells
determine it iff the row-column bipartite graph is connected, P(identifiable) ~ exp(-2 e^(-c)) at
N = n (ln n + c), with exact finite-n bounds in theory/predictions/matrix_completion.py.
Part 3 (positions): ordinal expectations only (no paper gives a number at this size).
"""
from __future__ import annotations

from theory.predictions.matrix_completion import *  # noqa: F401,F403  (the completion predictions)
