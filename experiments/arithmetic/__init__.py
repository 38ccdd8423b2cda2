"""Claim `arithmetic`: multi-digit addition as matrix completion (Lee et al. 2024) and length
generalization by positions that encode digit significance (Cho et al. 2024; McLeish et al. 2024).

Tasks: theory/tasks/arithmetic.py (plain, reversed, padded, index hints, coupled and Abacus
formats); position ids: theory/models/positional.py (coupled_ids, abacus_ids). Parts
(experiments/arithmetic/parts/<name>.py; each module's docstring gives its math):

1. construction  (exact, no training) coupled ids give one id exactly to the digits of one
                 significance; a hand-set one-layer transformer over coupled ids
                 (theory/models/adder.py, our own construction) adds two n-digit numbers exactly
                 for every n up to max_pos - 2 on 10^4 pairs per n, and the same weights over
                 absolute slots, wired for the 5-digit layout, fail at every longer length.
2. completion    (matrix completion) the sample count at which N revealed sums determine the
                 n x n table of a + b, against a trained decoder's held-out exact match.
3. positions     (trained) one-layer decoders on 1-5 digit operands, tested at 1-10 digits:
                 coupled ids >= 0.9 exact match at 10 digits, learned absolute ids <= 0.1 beyond 5
                 (`expected`, ordinal); Abacus, index hints and the reversed answer reported.
"""
from experiments.arithmetic.config import Config
from experiments.arithmetic.figure import plot
from experiments.arithmetic.parts import completion, construction, positions
from theory.harness.config import Knob

PRECISION = "float32"

PARTS = (construction.PART, completion.PART, positions.PART)

KNOBS = (
    Knob("steps", (1000, 2000, 4000, 8000),
         "Adam steps of Part 3's decoders: coupled positions should reach >= 0.9 exact match at 10-digit "
         "operands once training has converged on 1-5 digits, learned absolute positions should stay "
         "near 0 beyond 5 (Cho et al. 2024, position coupling); at the quick preset's 2000 steps the "
         "coupled model does not yet generalise", part="positions"),
    Knob("batch", (64, 256, 512, 1000),
         "sequences per step of Part 3's decoders: the coupled model's 10-digit exact match climbs with "
         "the batch (0.21 at 64, 0.84 at 512, 0.98 at 1000 with d_model 128 in seed 0; README) toward "
         "the >= 0.9 Cho et al.'s construction allows; the authors train at batch 1000 "
         "(HanseulJo/position-coupling scripts/addition/run_coupling.sh). Costly: ~13 min per seed at 1000",
         paper=1000, part="positions"),
)

__all__ = ["KNOBS", "PRECISION", "Config", "PARTS", "plot"]
