"""The configuration of claim `svm_bias` (quick and full presets)."""
from __future__ import annotations

import dataclasses

from theory.errors import SandboxError
from theory.harness.config import check_fields, require_memory, require_positive
from theory.tasks.token_selection import validate_sizes


@dataclasses.dataclass(frozen=True)
class Config:
    TOLERANCES = ("nuclear_rank_tol", "frob_rank_tol")   # numerical-rank thresholds of the rank checks

    n: int = 6                           # sequences per instance (authors' local_converge: 6)
    T: int = 8                           # tokens per sequence (8)
    d: int = 10                          # token dimension (10)
    seeds: int = 20                      # instances of each main-size part (one run each, vmapped)
    eta: float = 0.1                     # normalized-GD step (authors: 0.1)
    steps: int = 10000                   # W-parameterisation normalized-GD steps (authors' figures: 2000; the
                                         # local-convergence checks are about the limit, and at 2000 steps 1/20
                                         # runs (2/40 full) have not reached the gap_stop freeze)
    log_every: int = 100                 # steps between logged weight snapshots (100 snapshots)
    m: int = 10                          # inner width of K, Q in R^{d x m} (authors: m = d)
    kq_steps: int = 1000                 # (K, Q) normalized-GD steps (frozen at gap_stop anyway)
    gap_stop: float = 600.0              # freeze a run once its smallest logit gap exceeds this
    naive_control: bool = True           # also train W with autodiff's (cancelling) softmax gradient
    plain_eta: float = 1.0               # plain-GD step
    plain_steps: int = 20000             # plain-GD steps (the norm's slope is fitted over the last decade)
    sweep_ds: tuple[int, ...] = (4, 8, 16, 32)   # d values of the over-parameterisation sweep
    sweep_instances: int = 24            # instances per d in the sweep
    sweep_steps: int = 1000              # normalized-GD steps per sweep run
    rank_ds: tuple[int, ...] = (2, 3, 4, 6, 8, 10)   # d values of the SVM-rank panel
    rank_instances: int = 30             # instances per d for the Frobenius ranks
    rank_nuclear_instances: int = 5      # of those, how many also get the (slower) nuclear solve
    path_radii: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)   # ball radii R
    path_steps: int = 300                # projected normalized-GD steps per radius and start
    path_starts: int = 8                 # random unit starting directions per radius (unseeded path)
    path_kick: float = 1.0               # rank-one kick length / R along every query-token pair (0: none)
    nuclear_rank_tol: float = 1e-2       # numerical rank of W^mm_*: sigma > tol * sigma_max
    frob_rank_tol: float = 1e-7          # numerical rank of W^mm_F (exact solution)
    trajectory_candidates: int = 50      # d = 2 instances tried for the 2-D trajectory panel

    @classmethod
    def quick(cls) -> "Config":
        return cls()

    @classmethod
    def full(cls) -> "Config":
        return cls(seeds=40, plain_steps=40000, log_every=100, sweep_instances=40,
                   rank_ds=(2, 3, 4, 5, 6, 8, 10, 16), rank_instances=60, rank_nuclear_instances=10,
                   path_radii=(0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0), path_steps=500, path_starts=16)

    def validate(self) -> None:
        """Refuse a config this claim cannot run (SandboxError naming the field), before any work.

        Memory (float64, 8 B): the largest allocation is estimated as 4x (gradients, temporaries)
        the logged weight snapshots seeds x (longest run / log_every) x d x max(d, m) of the W and
        (K, Q) runs, or the d-sweep's weights sweep_instances x len(sweep_ds) x max(sweep_ds)^2, or
        one nuclear-norm SVM solve, whose conic program over (2d x 2d) PSD blocks has a KKT system
        of ~4 d^4 entries (d = the largest of d and rank_ds)."""
        check_fields(self)
        require_positive(self, "n", "T", "d", "seeds", "eta", "steps", "log_every", "m",
                         "kq_steps", "gap_stop", "plain_eta", "plain_steps", "sweep_ds",
                         "sweep_instances", "sweep_steps", "rank_ds", "rank_instances",
                         "rank_nuclear_instances", "path_radii", "path_steps", "path_starts", "nuclear_rank_tol",
                         "frob_rank_tol", "trajectory_candidates")
        validate_sizes(self.n, self.T, self.d)
        for name in ("steps", "kq_steps", "plain_steps", "sweep_steps"):
            if getattr(self, name) % self.log_every:
                raise SandboxError(f"{name}={getattr(self, name)} must be a multiple of "
                                   f"log_every={self.log_every}")
        if self.gap_stop > 700:
            raise SandboxError(f"gap_stop={self.gap_stop} too large: exp(-gap) underflows float64 "
                               "near 700")
        if len(self.sweep_ds) < 2 or list(self.sweep_ds) != sorted(set(self.sweep_ds)):
            raise SandboxError(f"sweep_ds must hold at least two strictly increasing values, got {self.sweep_ds}")
        if len(self.path_radii) < 2 or list(self.path_radii) != sorted(set(self.path_radii)):
            raise SandboxError(f"path_radii must hold at least two strictly increasing radii (the path "
                               f"checks compare neighbouring radii), got {self.path_radii}")
        if not self.path_kick >= 0:
            raise SandboxError(f"path_kick must be >= 0 (0 turns the kick round off), got {self.path_kick}")
        if len(set(self.rank_ds)) != len(self.rank_ds):
            raise SandboxError(f"rank_ds must not repeat a value, got {self.rank_ds}")
        if self.rank_nuclear_instances > self.rank_instances:
            raise SandboxError(f"rank_nuclear_instances ({self.rank_nuclear_instances}) must not exceed "
                               f"rank_instances ({self.rank_instances}): they are a subset")
        d_svm = max(self.d, max(self.rank_ds))
        longest = max(self.steps, self.kq_steps, self.plain_steps)
        require_memory(self, [
            (("seeds", "steps", "kq_steps", "plain_steps", "log_every", "d", "m"),
             4 * 8 * self.seeds * (longest // self.log_every + 1) * self.d * max(self.d, self.m),
             "seeds x (longest run / log_every) x d x max(d, m) x 8 B x 4"),
            (("sweep_instances", "sweep_ds"),
             4 * 8 * self.sweep_instances * len(self.sweep_ds) * max(self.sweep_ds) ** 2,
             "sweep_instances x len(sweep_ds) x max(sweep_ds)^2 x 8 B x 4"),
            (("d", "rank_ds"), 8 * 4 * d_svm ** 4, "nuclear SVM KKT system ~4 d^4 x 8 B"),
        ])
