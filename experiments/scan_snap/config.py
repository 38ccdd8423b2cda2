"""The scan_snap config: the data model, the population (T -> infinity) runs and the sampled runs."""
from __future__ import annotations

import dataclasses

import numpy as np

from theory.errors import SandboxError
from theory.harness.config import check_fields, require_increasing, require_length, require_memory, require_positive
from theory.predictions import scan_snap as pred
from theory.tasks.next_token import NextTokenTask


@dataclasses.dataclass(frozen=True)
class Config:
    TOLERANCES = ()                    # no tolerance is a field: every judge threshold is in parts/*.py

    # data model (Tian et al. 2023 Sec. 3.2; the paper's code `Dataset2`)
    n_common: int = 10                 # common tokens (present in every class)
    n_distinct: int = 10               # distinct tokens per class, weights linspace(0.1, 1)
    next_per_query: int = 2            # K: classes (next tokens) sharing the one query
    # part snap_time: decoder closed form and snap time (population model)
    snap_steps: int = 200              # GD steps of the snap runs (t0 <= ~60 steps)
    snap_eta_Y: tuple[float, ...] = (0.5, 1.0, 2.0)   # decoder rates for the snap time
    snap_eta_Z: float = 0.05           # attention rate of the snap runs (the decoder check uses 0)
    snap_limit_eta_Y: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4)   # small rates: t0 eta_Y extrapolated to 0
    snap_limit_steps: int = 800        # GD steps of the small-rate runs (t0 <= ~400 steps)
    # part scan: scan signs, ordering invariant, learning-rate ordering (population model)
    scan_steps: int = 10000            # GD steps of the scan runs (signs checked at every step)
    invariant_eta_Y: float = 1.0       # eta_Y of the invariant runs
    invariant_ratios: tuple[float, ...] = (1.0, 0.1, 0.02, 0.01)   # eta_Z / eta_Y, decreasing
    invariant_step: int = 3000         # step at which the invariant spread is read
    order_eta_Z: float = 0.05          # fixed eta_Z of the learning-rate-ordering runs
    order_eta_Y: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)          # increasing
    order_step: int = 10000            # "fixed late step" at which z_max is read
    # parts finite_T and fig6: sampled sequences
    sampled: bool = True               # run the sampled parts
    batch: int = 128                   # sequences per SGD step
    finite_T: tuple[int, ...] = (1024, 4096, 16384)   # context lengths of the T -> infinity extrapolation
    breakdown_T: int = 128             # a short context length at which the invariant breaks
    finite_T_steps: int = 300          # SGD steps of the finite-T runs (zero init, no momentum)
    finite_T_eta_Y: float = 1.0        # rates of the finite-T runs (and of their T -> inf reference),
    finite_T_eta_Z: float = 0.01       # at eta_Z/eta_Y = 0.01, where the population invariant is tight
    finite_T_seeds: int = 6            # seeds per context length (their spread gives the s.e.)
    fig6_context: int = 127            # Fig. 6: L = 128 tokens = 127 context tokens + the query
    fig6_steps: int = 100              # Fig. 6: SGD iterations
    fig6_momentum: float = 0.9         # Fig. 6: PyTorch-style momentum
    fig6_eta_Z: tuple[float, ...] = (0.5, 1.0)          # the eta_Z <= 1 rows of Fig. 6
    fig6_ratios: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0)   # eta_Y / eta_Z
    seeds: int = 10                    # Fig. 6 seeds per cell (the paper uses 10)

    @classmethod
    def quick(cls) -> "Config":
        return cls()

    @classmethod
    def full(cls) -> "Config":
        return cls(finite_T_seeds=16, seeds=20)

    @property
    def task(self) -> NextTokenTask:
        return NextTokenTask(n_queries=1, next_per_query=self.next_per_query,
                             n_common=self.n_common, n_distinct=self.n_distinct)

    def validate(self) -> None:
        """Refuse a config this claim cannot run (SandboxError naming the field), before any work.

        Memory (float64, 8 B): the largest allocation is estimated as 2x the population runs' per-step
        logs, runs x steps x K x M (scan: len(invariant_ratios) + len(order_eta_Y) runs of
        scan_steps; snap: 3 x len(snap_eta_Y) runs of snap_steps and len(snap_limit_eta_Y) of
        snap_limit_steps), or 4x the sampled runs' batches runs x batch x (T + M) (fig6 and the
        breakdown_T runs draw T tokens; the finite_T runs draw counts, 2 M per sequence whatever T),
        or 4x the (M x M) weights of every run."""
        check_fields(self)
        require_positive(self, "n_distinct", "next_per_query", "snap_steps", "snap_eta_Y",
                         "snap_eta_Z", "snap_limit_eta_Y", "snap_limit_steps", "breakdown_T", "scan_steps",
                         "invariant_eta_Y", "invariant_ratios",
                         "invariant_step", "order_eta_Z", "order_eta_Y", "order_step", "batch",
                         "finite_T", "finite_T_steps", "finite_T_eta_Y", "finite_T_eta_Z",
                         "finite_T_seeds", "fig6_context", "fig6_steps", "fig6_eta_Z",
                         "fig6_ratios", "seeds")
        if self.n_common <= 0:
            raise SandboxError(f"n_common must be positive (the scan check needs a common token), "
                               f"got {self.n_common}")
        if self.next_per_query < 2:
            raise SandboxError(f"next_per_query must be >= 2 (|psi^-1(m)| >= 2), got {self.next_per_query}")
        if self.n_distinct < 2:
            raise SandboxError(f"n_distinct must be >= 2 to test an ordering, got {self.n_distinct}")
        if not 0 <= self.fig6_momentum < 1:
            raise SandboxError(f"fig6_momentum must be in [0, 1), got {self.fig6_momentum}")
        if max(self.invariant_step, self.order_step) > self.scan_steps:
            raise SandboxError(f"invariant_step and order_step must be <= scan_steps ({self.scan_steps})")
        if len(self.invariant_ratios) < 2 or len(self.order_eta_Y) < 2:
            raise SandboxError("invariant_ratios and order_eta_Y need at least two values")
        require_length(self, "snap_eta_Y", 2, why="the snap time must be constant across eta_Y")
        require_length(self, "snap_limit_eta_Y", 2, why="a line in eta_Y is extrapolated to eta_Y = 0")
        require_length(self, "finite_T", 3, why="a line in 1/T is fitted and its residuals tested")
        require_increasing(self, "finite_T")
        if self.breakdown_T >= min(self.finite_T):
            raise SandboxError(f"breakdown_T must be below every finite_T (a short context), got "
                               f"{self.breakdown_T} >= {min(self.finite_T)}")
        if self.finite_T_seeds < 3:
            raise SandboxError(f"finite_T_seeds must be >= 3 (the tolerances are standard errors over the "
                               f"seeds), got {self.finite_T_seeds}")
        for name in ("snap_eta_Y", "snap_limit_eta_Y", "fig6_eta_Z"):
            if len(set(getattr(self, name))) != len(getattr(self, name)):
                raise SandboxError(f"{name} must not repeat a value (one check or cell per value), "
                                   f"got {getattr(self, name)}")
        if list(self.invariant_ratios) != sorted(set(self.invariant_ratios), reverse=True):
            raise SandboxError(f"invariant_ratios must be strictly decreasing (the last is the ratio the "
                               f"spread threshold is set for), got {self.invariant_ratios}")
        require_increasing(self, "order_eta_Y")
        require_increasing(self, "fig6_ratios")
        if sum(r >= 2 for r in self.fig6_ratios) < 2:
            raise SandboxError(f"fig6_ratios needs at least two ratios >= 2 (the entropy ordering is "
                               f"tested on them), got {self.fig6_ratios}")
        if self.task.M - 1 <= np.e:
            raise SandboxError(f"vocabulary too small (M = {self.task.M})")
        M, K = self.task.M, self.task.K
        for steps, rates in (("snap_steps", "snap_eta_Y"), ("snap_limit_steps", "snap_limit_eta_Y")):
            t0 = pred.snap_time_times_eta(M, K) / min(getattr(self, rates))
            if getattr(self, steps) < 2 * t0:
                raise SandboxError(f"{steps}={getattr(self, steps)} is too short to observe the snap: the "
                                   f"predicted t0 at eta_Y={min(getattr(self, rates)):g} is {t0:.0f} steps "
                                   f"(need {steps} >= 2 t0 = {2 * t0:.0f}; t0 depends on {rates}, n_common, "
                                   "n_distinct, next_per_query)")
        pop_runs = (len(self.invariant_ratios) + len(self.order_eta_Y) + 3 * len(self.snap_eta_Y)
                    + len(self.snap_limit_eta_Y))
        pop_log = ((len(self.invariant_ratios) + len(self.order_eta_Y)) * self.scan_steps
                   + 3 * len(self.snap_eta_Y) * self.snap_steps + len(self.snap_limit_eta_Y) * self.snap_limit_steps)
        fig6_runs = len(self.fig6_eta_Z) * len(self.fig6_ratios) * self.seeds if self.sampled else 0
        count_runs = self.finite_T_seeds * len(self.finite_T) if self.sampled else 0
        token_runs = self.finite_T_seeds if self.sampled else 0
        require_memory(self, [
            (("invariant_ratios", "order_eta_Y", "scan_steps", "snap_eta_Y", "snap_steps", "snap_limit_eta_Y",
              "snap_limit_steps", "n_common", "n_distinct", "next_per_query"),
             2 * 8 * K * M * pop_log, "population runs x steps x K x M x 8 B x 2"),
            (("finite_T_seeds", "finite_T", "breakdown_T", "fig6_eta_Z", "fig6_ratios", "seeds", "batch",
              "fig6_context", "n_common", "n_distinct", "next_per_query"),
             4 * 8 * self.batch * (fig6_runs * (self.fig6_context + M) + token_runs * (self.breakdown_T + M)
                                   + count_runs * 2 * M),
             "sampled runs x batch x (T + M) x 8 B x 4 (multinomial counts: 2 M per sequence, whatever T)"),
            (("n_common", "n_distinct", "next_per_query", "seeds", "finite_T_seeds"),
             4 * 8 * (pop_runs + fig6_runs + count_runs + token_runs) * 2 * M * M, "runs x 2 M^2 weights x 8 B x 4"),
        ])
