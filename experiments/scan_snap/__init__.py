"""Claim `scan_snap` (Tian, Wang, Chen & Du 2023): one-layer attention scans toward the distinct
tokens, ordered by co-occurrence, then snaps (attention freezes) at t0 ~ 1/eta_Y.

Model: the Y/Z one-layer attention + decoder of `theory.models.yz_attention` on the data model of
`theory.tasks.next_token` (K = 2 next tokens sharing one query, 10 common and 2 x 10 distinct
tokens with weights linspace(0.1, 1, 10), M = 33 output tokens). Float64 throughout.

Parts (experiments/scan_snap/parts/):
  snap_time  population (T -> infinity) model, full-batch GD from zero with separate rates eta_Y,
             eta_Z (one GD step = one theory step, a class is visited t/K times): the decoder's
             Lemma 5 recursion (exact on orthogonal classes), the snap time t0 eta_Y of Lemmas 6
             and 8 as the eta_Y -> 0 limit, t0 ~ 1/eta_Y with common tokens (Thm 4(a)).
  scan       population model: scan signs (Thm 2), the ordering invariant and the ordering of z
             by P (Thm 3), z_max decreasing in eta_Y (Thm 4(c)).
  finite_T   sampled sequences of T i.i.d. context tokens (batch 128, SGD from zero): the
             invariant converges to the population model's as T grows (gap ~ 1/T), and breaks at
             small T.
  fig6       sampled sequences, the paper's Fig. 6 slice (momentum 0.9, random init, 100 steps).
The population runs are deterministic (their keys are drawn but unused); the seed enters the
sampled parts only. `sampled=False` leaves the sampled parts out.
"""
from __future__ import annotations

from experiments.scan_snap.config import Config
from experiments.scan_snap.figure import plot
from experiments.scan_snap.parts import fig6, finite_t, scan, snap_time
from theory.harness.config import Knob
from theory.harness.parts import Part

PRECISION = "float64"


def _sampled(cfg: Config) -> bool:
    return cfg.sampled


PARTS = (
    Part("snap_time", snap_time.predict, snap_time.measure, snap_time.judge, unbounded=snap_time.UNBOUNDED),
    Part("scan", scan.predict, scan.measure, scan.judge),
    Part("finite_T", finite_t.predict, finite_t.measure, finite_t.judge, enabled=_sampled),
    Part("fig6", fig6.predict, fig6.measure, fig6.judge, enabled=_sampled),
)

# `sandbox explore` knobs (theory/harness/explore.py): the main one first
KNOBS = (
    Knob("invariant_ratios", ((1.0, 0.5), (1.0, 0.2), (1.0, 0.1), (1.0, 0.05), (1.0, 0.02), (1.0, 0.01)),
         "eta_Z/eta_Y (the last entry is judged): the invariant I_l of Tian et al. 2023 holds to first order "
         "in the ratio, so the 5% spread check should fail once the ratio grows", part="scan", axis="last"),
)

__all__ = ["KNOBS", "PRECISION", "Config", "PARTS", "plot"]
