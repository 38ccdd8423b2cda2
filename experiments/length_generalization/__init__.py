"""Claim `length_generalization` (Ruoss et al. 2023): randomized positional encodings let a
transformer trained on lengths 1..N generalize to longer inputs better than the deterministic one.

Protocol: every training step draws one length n ~ U{1..N} (N = 40) and a batch of that length,
computed at the smallest of `train_buckets` length buckets >= n and masked beyond n (the same loss
and gradient as padding to N, theory/engine/buckets.py), so training is ONE compiled program;
the step lengths are shared by the runs of a sweep (runs.py); positions are 0..T-1
(deterministic) or a sorted uniform subset of {0..L-1}, L = 2048, drawn per sequence (or per
batch) at training AND test time (theory/models/positional.py: positions). Evaluation runs the
test lengths at a few static shapes (runs.eval_shapes: masked as in training, the numbers of an
exact-length evaluation), `eval_batch` sequences per length, each with its own random
positions. Adam, global-norm clip 1. The runs (runs.py) are vmapped sweeps with paired seeds:
variant v of seed s uses the same init and data keys.

Parts (each Part(predict, measure, judge); parts/<name>.py states its math):
    sampler     the training position sampler: sample mean and variance of every order statistic
                i_(k) within 3 (4) s.e. of k(L+1)/(n+1) - 1 and k(n-k+1)(L+1)(L-n)/((n+1)^2(n+2))
                (`predicted`); the closed forms equal exact rational sums over the pmf (`exact`)
    even_pairs  sin/cos vs randomized sin/cos encoders, `steps` steps: sin/cos >= 0.99 in
                distribution and 0.50 +- 0.06 at lengths >= 60; randomized >= 0.85 at 60 and
                >= 0.65 at exactly 200; gap >= 0.2 at every length in 60..200 (`expected`:
                thresholds from reference runs); the decay beyond 200 is reported, not judged
    nope        no positional encoding, causal decoder and non-causal encoder, `nope_steps` steps:
                the non-causal model is permutation-invariant (`exact`, float32 rounding) and at
                most the Bayes accuracy of permutation-invariant predictors + 3 s.e.
                (`predicted`); the causal one is clearly above that bound (`expected`)
    table       (when cfg.table_tasks, the full preset) task x {deterministic, randomized} scores;
                average gain > 0 over the tasks learned in distribution (the average over all
                tasks reported beside it); parity/modular arithmetic near chance
"""
from __future__ import annotations

from experiments.length_generalization.config import Config
from experiments.length_generalization.figure import plot, report_markdown
from experiments.length_generalization.parts import even_pairs, nope, sampler, table
from theory.harness.config import Knob
from theory.harness.parts import Part

PRECISION = "float32"

PARTS = (
    Part("sampler", sampler.predict, sampler.measure, sampler.judge),
    Part("even_pairs", even_pairs.predict, even_pairs.measure, even_pairs.judge),
    Part("nope", nope.predict, nope.measure, nope.judge, enabled=lambda cfg: cfg.nope),
    Part("table", table.predict, table.measure, table.judge, enabled=table.enabled),
)

# `sandbox explore` knobs (theory/harness/explore.py): the main one first
KNOBS = (
    Knob("max_pos", (224, 256, 512, 2048),
         "L: randomized positions are an ordered subset of {0..L-1}; L near the longest test sequence (200 "
         "tokens) leaves little randomness, so the randomized variant's gain should need L well above it",
         paper=2048, part="even_pairs"),
)

__all__ = ["KNOBS", "PARTS", "PRECISION", "Config", "plot", "report_markdown"]
