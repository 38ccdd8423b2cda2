"""The `gd_equivalence` config: the two task settings (vO's uniform inputs, ZFB's anisotropic
Gaussian inputs), the training budgets of each part and the evaluation sample sizes."""
from __future__ import annotations

import dataclasses

from theory.errors import SandboxError
from theory.harness.config import check_fields, require_memory, require_positive
from theory.tasks.linear_regression import RegressionTask

EVAL_CHUNK = 1024   # prompts per chunk of a held-out evaluation (bounds memory at M = 1000)
ZFB_INITS = ("zfb", "gaussian")   # starts of the ZFB part (parts/zfb.py)


@dataclasses.dataclass(frozen=True)
class Config:
    TOLERANCES = ()                    # no tolerance is a field: every judge threshold is in parts/*.py
    MAY_BE_EMPTY = ("depths",)         # depths=() leaves the depth part out (its checks are skipped)

    d: int = 10                        # input dimension (vO: 10)
    n_context: int = 10                # N, context pairs per training prompt (vO: 10)
    input_range: float = 1.0           # x ~ U(-r/2, r/2) (vO's code: r = 1, variance 1/12)
    lr: float = 1e-2                   # Adam peak learning rate, cosine-decayed to 0
    steps: int = 2000                  # training steps of the one-layer model
    batch: int = 2048                  # prompts per step (fresh every step)
    init_scale: float = 0.02           # std of the i.i.d. Gaussian initial weights (near-zero start)
    zfb_lam: tuple[float, ...] = (4.0, 2.0, 1.0, 0.5, 0.25)   # diag of Lambda for the ZFB part
    zfb_n_context: int = 20            # N for the ZFB part
    zfb_steps: int = 3000              # training steps, ZFB part
    # ZFB part's start: "zfb" = ZFB's initialisation assumption (their Section 3.3; the start their
    # Theorem 4.1 covers; sigma = init_scale), "gaussian" = i.i.d. N(0, init_scale^2) (outside the theorem)
    zfb_init: str = "zfb"
    zfb_test_lengths: tuple[int, ...] = (5, 10, 20, 40, 80, 1000)   # test prompt lengths M
    depths: tuple[int, ...] = (2,)     # numbers of LSA layers in the depth part
    depth_steps: int = 3000            # training steps per depth model (K < deep_from)
    depth_batch: int = 2048            # prompts per step for the depth models
    depth_lr: float = 1e-2             # Adam peak learning rate of the depth models
    # vO's deep-stack recipe for K >= deep_from (their paper, App. A.12; their notebook
    # transformers_learn_icl_by_gd/constructed_token_setup.ipynb): AdamW (b2 0.98, no weight decay)
    # at lr 5e-4 for K > 3, clip_by_global_norm 10, init 0.002/K, batch 2048, 50k steps for the
    # per-layer stack and 5k for the recurrent one, residual stream clamped to +-10 after each layer
    deep_from: int = 4                 # depths K >= deep_from are trained with the deep_* recipe
    deep_lr: float = 5e-4              # AdamW peak learning rate (cosine-decayed, as every part here)
    deep_grad_clip: float = 10.0       # clip_by_global_norm threshold of the gradient
    deep_init: float = 0.002           # init std = deep_init / K
    deep_clamp: float = 10.0           # residual clamp: every token entry clipped to +-deep_clamp per layer
    deep_batch: int = 2048             # prompts per step
    deep_steps: int = 50000            # training steps of the per-layer stack
    deep_shared_steps: int = 5000      # training steps of the weight-shared (recurrent) stack
    softmax_steps: int = 1000          # training steps of the softmax negative control
    softmax_batch: int = 1024          # prompts per step of the softmax negative control
    n_eval_one_layer: int = 2 ** 20    # held-out prompts for the one-layer loss (MC s.e. ~0.15%)
    n_eval: int = 65536                # held-out prompts for the ZFB risks and depth losses
    n_sens: int = 4096                 # held-out prompts for sensitivity cosines
    n_spectra: int = 65536             # sampled context spectra per sample (fit, validation) of the references
    ref_restarts: int = 10             # random Newton starts of each per-step reference
    n_construction: int = 64           # random prompts on which the constructions are checked
    seeds: int = 1                     # seeds of the one-layer vO model
    log_every: int = 100               # training-loss logging interval

    @classmethod
    def quick(cls) -> "Config":
        return cls()

    @classmethod
    def full(cls) -> "Config":
        # depth 4 uses vO's deep recipe (the deep_* fields): with the shallow one (Adam at lr 1e-3..5e-3,
        # init 0.02, no clipping or clamp) its loss spiked to 1e7..1e14 within a few thousand steps
        return cls(steps=5000, zfb_steps=8000, depths=(2, 3, 4), depth_steps=10000, depth_batch=1024,
                   depth_lr=5e-3, softmax_steps=5000, n_eval=262144, n_sens=10240, n_spectra=2 ** 20,
                   ref_restarts=30, seeds=3)

    def validate(self) -> None:
        """Refuse a config this claim cannot run (SandboxError naming the field), before any work.

        Memory: the largest allocation is estimated as 8x (activations, gradients, Adam moments,
        temporaries) the float32 prompts of one training step, seeds x B x (N+1) x (D+N) with
        B = the largest batch, N = the longer context, D = the larger input dimension + 1 (tokens
        plus attention scores; D^2 weights are below this), or of one evaluation chunk
        EVAL_CHUNK x (M+1) x D at the longest test length M, or 8x the two float64 samples of
        reference spectra, 2 n_spectra x (d+1)."""
        check_fields(self)
        require_positive(self, "d", "n_context", "lr", "steps", "batch", "init_scale", "zfb_lam",
                         "zfb_n_context", "zfb_steps", "zfb_test_lengths", "depths", "depth_steps",
                         "depth_batch", "depth_lr", "softmax_steps", "softmax_batch", "deep_from",
                         "deep_lr", "deep_init", "deep_clamp", "deep_batch", "deep_steps",
                         "deep_shared_steps", "n_spectra",
                         "n_eval_one_layer", "n_eval", "n_sens", "n_construction", "seeds",
                         "log_every", "input_range")
        if self.zfb_init not in ZFB_INITS:
            raise SandboxError(f"zfb_init must be one of {ZFB_INITS}, got {self.zfb_init!r}")
        if self.deep_grad_clip < 0 or self.ref_restarts < 0:
            raise SandboxError("deep_grad_clip and ref_restarts must be >= 0 (0: no clipping / no restarts)")
        for name in ("steps", "zfb_steps", "depth_steps", "softmax_steps", "deep_steps", "deep_shared_steps"):
            if getattr(self, name) % self.log_every:
                raise SandboxError(f"{name}={getattr(self, name)} must be a multiple of "
                                   f"log_every={self.log_every}")
        if self.zfb_n_context not in self.zfb_test_lengths:
            raise SandboxError("zfb_test_lengths must include zfb_n_context (the training length)")
        for name in ("n_eval", "n_sens", "n_eval_one_layer"):
            if getattr(self, name) % EVAL_CHUNK:
                raise SandboxError(f"{name}={getattr(self, name)} must be a multiple of {EVAL_CHUNK} "
                                   "(the evaluation chunk size)")
        for name in ("depths", "zfb_test_lengths"):
            if len(set(getattr(self, name))) != len(getattr(self, name)):
                raise SandboxError(f"{name} must not repeat a value, got {getattr(self, name)}")
        if any(K < 2 for K in self.depths):
            raise SandboxError(f"depths must be >= 2 (one layer is the one_layer part; the depth part "
                               f"compares K-layer stacks with GD++), got {self.depths}")
        N = max(self.n_context, self.zfb_n_context)
        D = max(self.d, len(self.zfb_lam)) + 1
        B = max(self.batch, self.depth_batch, self.softmax_batch, self.deep_batch)
        M = max(self.zfb_test_lengths)
        require_memory(self, [
            (("seeds", "batch", "depth_batch", "softmax_batch", "deep_batch", "n_context", "zfb_n_context", "d",
              "zfb_lam"),
             8 * 4 * self.seeds * B * (N + 1) * (D + N), "seeds x batch x (N+1) x (D+N) x 4 B x 8"),
            (("zfb_test_lengths", "d", "zfb_lam"), 8 * 4 * EVAL_CHUNK * (M + 1) * D,
             f"{EVAL_CHUNK} x (max test length + 1) x (d+1) x 4 B x 8"),
            (("n_spectra", "d"), 8 * 8 * 2 * self.n_spectra * (self.d + 1), "2 n_spectra x (d+1) x 8 B x 8"),
        ])

    @property
    def vo_task(self) -> RegressionTask:
        """vO's setting: x ~ U(-r/2, r/2)^d, w ~ N(0, I_d), noiseless labels."""
        return RegressionTask(d=self.d, input_dist="uniform", input_range=self.input_range)

    @property
    def zfb_task(self) -> RegressionTask:
        """ZFB's setting: x ~ N(0, Lambda), Lambda = diag(zfb_lam), noiseless labels."""
        return RegressionTask(d=len(self.zfb_lam), input_dist="gaussian", lam=self.zfb_lam)
