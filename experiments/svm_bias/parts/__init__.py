"""The parts of claim `svm_bias`, in the order they run (see experiments/svm_bias/__init__.py)."""
from __future__ import annotations

from theory.harness.parts import Part

from . import kq_ngd, overparameterisation, plain_gd, regularization_path, svm_ranks, trajectory_2d, w_ngd

PARTS = tuple(Part(m.__name__.rsplit(".", 1)[-1], m.predict, m.measure, m.judge,
                   unbounded=getattr(m, "UNBOUNDED", ()))
              for m in (w_ngd, kq_ngd, svm_ranks, overparameterisation, regularization_path, plain_gd,
                        trajectory_2d))
