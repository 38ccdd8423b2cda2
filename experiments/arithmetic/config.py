"""The configuration of `arithmetic`: one frozen dataclass, quick and full presets.

Part 1 (`construction`, exact) uses max_pos, construction_pairs and train_digits (the layout the
absolute wiring is built for); Part 2 (`completion`, matrix completion) n_table, reveal_counts and
the completion_* fields; Part 3 (`positions`, trained length generalization) train_digits,
test_digits, max_pos, schemes, seeds, steps and the model / optimiser fields.

Part 3's recipe, the same for every scheme, was set from a few single-seed runs (d 64, batch 64,
coupled and learned rows, 1-5 digits -> 10): with the transformer's position table as initialised
(std 0.02) and gain 1, coupled ids had not left the loss plateau after 1500 steps (summed answer
cross-entropy 6.7, exact match 0 beyond 3 digits); pos_gain 10 made the position rows count
beside the token embedding (training loss ~0 by step ~600) but left the random initial rows as
distractors at unseen id distances (exact match 0.27 at 10 digits after 2000 steps); starting the
table at zero (pos_init 0) gave 0.72-0.83 at 10 digits (0.33-0.51 with batch 128 or d 128);
decoupled weight decay 0.5 (AdamW) lowered it to 0.0. Cho et al. train 50k steps at batch 1000
(HanseulJo/position-coupling configs/training/default.yaml), far beyond this CPU budget.
Measured since (seed 0, 2000 steps, d 128, d_ff 512, coupled only): the batch is what moves the
10-digit exact match (0.62 at 256, 0.84 at 512, 0.976 at 1000; 0.82-0.98 over 3 seeds at 1000),
not the steps (8000 at batch 64: 0.03-0.07) or the learning rate (1e-3 at batch 64: 0.00-0.75
over 3 seeds). The presets keep the issue's batch 64 / 128 for time; `--set batch=1000
--set d_model=128 --set d_ff=512` is the authors' batch (~13 min per seed on 2 cores).
"""
from __future__ import annotations

import dataclasses

from theory.errors import SandboxError
from theory.harness.config import check_fields, require_increasing, require_length, require_memory, require_positive

SCHEMES = ("coupled", "abacus", "learned", "hints", "reversed")   # Part 3's position schemes


@dataclasses.dataclass(frozen=True)
class Config:
    TOLERANCES = ()                          # every judge threshold lives in parts/*.py
    MAY_BE_EMPTY = ("reveal_counts",)        # () leaves Part 2's trained decoder grid out (its Monte Carlo stays)

    # Part 2: matrix completion (Lee et al. 2024)
    n_table: int = 100                       # n: the n x n table of a + b (2-digit operands)
    reveal_counts: tuple[int, ...] = ()      # N: revealed sums of Part 2's trained grid (quick: none, its 12
                                             # decoder runs cost ~3-4 min on 2 cores; the full preset trains them)
    completion_trials: int = 2000            # Monte Carlo trials per N of P(identifiable)
    completion_n_small: int = 20             # the small table size of the finite-n check
    completion_steps: int = 1000             # training steps of Part 2's decoder (lr 3e-3: 1000 suffice at N >= 1600)
    completion_seeds: int = 3                # seeds per N of Part 2's decoder

    # Part 1 (construction) and Part 3 (positions): length generalization. The Part 3 defaults are
    # the quick preset (CPU budget): coupled and learned rows only, one seed, d 64, batch 64; the
    # full preset is the configuration (all five schemes, 3 seeds, d 128, batch 128).
    max_pos: int = 17                        # coupled ids 1..max_pos (HanseulJo/position-coupling's small config)
    construction_pairs: int = 10_000         # Part 1: random pairs per operand length
    train_digits: tuple[int, int] = (1, 5)   # operand lengths of training, (min, max)
    test_digits: tuple[int, int] = (6, 10)   # operand lengths of the out-of-distribution test, (min, max)
    schemes: tuple[str, ...] = ("coupled", "learned")   # Part 3's position schemes (rows), from SCHEMES
    seeds: int = 1                           # seeds per scheme of Part 3
    steps: int = 2000                        # Adam steps of Part 3 per run
    batch: int = 64                          # sequences per step
    lr: float = 3e-3                         # Adam peak learning rate (1% warm-up, cosine to 0.1 lr)
    d_model: int = 64                        # residual width
    n_heads: int = 4                         # attention heads
    n_layers: int = 1                        # blocks
    d_ff: int = 256                          # MLP width
    pos_gain: float = 10.0                   # scale of the learned position rows in the embedding (pe_gain)
    pos_init: float = 0.0                    # multiplies the position table's initial values (0: zeros)
    abacus_max_offset: int = 30              # Abacus: the random training offset is U{0..max} (McLeish et al.)
    eval_pairs: int = 500                    # Part 3: test pairs per operand length (s.e. <= 0.023)
    log_every: int = 100                     # training-loss log interval

    @classmethod
    def quick(cls) -> "Config":
        return cls()

    @classmethod
    def full(cls) -> "Config":
        return cls(reveal_counts=(300, 500, 800, 1200, 1600, 2500, 5000), completion_trials=5000,
                   completion_steps=1000, completion_seeds=3,
                   schemes=SCHEMES, seeds=3, steps=4000, batch=128, d_model=128, d_ff=512, eval_pairs=2000)

    @property
    def max_digits(self) -> int:
        """The longest operand of Part 3 (training or test)."""
        return max(self.train_digits[1], self.test_digits[1])

    def validate(self) -> None:
        """Refuse a config this claim cannot run (SandboxError naming the field), before any work."""
        check_fields(self)
        require_positive(self, "n_table", "reveal_counts", "completion_trials", "completion_n_small",
                         "completion_steps", "completion_seeds", "max_pos", "construction_pairs",
                         "train_digits", "test_digits", "seeds", "steps", "batch", "lr", "d_model",
                         "n_heads", "n_layers", "eval_pairs", "log_every", "pos_gain")
        if self.n_table < 2 or self.completion_n_small < 2:
            raise SandboxError(f"n_table and completion_n_small must be >= 2, got {self.n_table}, "
                               f"{self.completion_n_small}")
        if not 38 <= self.n_table <= 100:
            raise SandboxError(f"n_table must lie in 38..100 (two-digit operands; the held-out row a = 37 must "
                               f"exist), got {self.n_table}")
        if self.completion_n_small < 5:
            raise SandboxError(f"completion_n_small must be >= 5, got {self.completion_n_small}")
        if self.completion_seeds < 3 or self.completion_trials < 100:
            raise SandboxError(f"completion_seeds must be >= 3 and completion_trials >= 100, got "
                               f"{self.completion_seeds}, {self.completion_trials}")
        if self.reveal_counts:
            require_increasing(self, "reveal_counts")
            if self.reveal_counts[-1] > self.n_table ** 2 - self.n_table:
                raise SandboxError(f"reveal_counts must stay at most n_table^2 - n_table = "
                                   f"{self.n_table ** 2 - self.n_table} (the held-out row stays unrevealed), "
                                   f"got {self.reveal_counts[-1]}")
        for name in ("train_digits", "test_digits"):
            require_length(self, name, 2, 2, "(min, max) operand lengths")
            lo, hi = getattr(self, name)
            if lo > hi:
                raise SandboxError(f"{name} must be (min, max) with min <= max, got {getattr(self, name)}")
        if self.test_digits[0] <= self.train_digits[1]:
            raise SandboxError(f"test_digits {self.test_digits} must start above the training lengths "
                               f"{self.train_digits} (out of distribution)")
        unknown = [s for s in self.schemes if s not in SCHEMES]
        if unknown or len(set(self.schemes)) != len(self.schemes):
            raise SandboxError(f"schemes must be distinct names from {SCHEMES}, got {self.schemes}")
        if self.max_pos <= self.max_digits + 1:
            raise SandboxError(f"max_pos ({self.max_pos}) must exceed max(test_digits) + 1 = "
                               f"{self.max_digits + 1} (coupled ids of the longest answer)")
        if self.pos_init < 0:
            raise SandboxError(f"pos_init must be >= 0, got {self.pos_init}")
        if self.abacus_max_offset < 0:
            raise SandboxError(f"abacus_max_offset must be >= 0, got {self.abacus_max_offset}")
        if self.steps % self.log_every or self.completion_steps % self.log_every:
            raise SandboxError(f"steps ({self.steps}) and completion_steps ({self.completion_steps}) must be "
                               f"multiples of log_every ({self.log_every})")
        if self.d_ff < 0:
            raise SandboxError(f"d_ff must be >= 0, got {self.d_ff}")
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise SandboxError(f"d_model={self.d_model} must split into {self.n_heads} heads of even width")
        T = 3 * self.max_digits + 8                      # the longest sequence (hints double the digits)
        runs = len(self.schemes) * self.seeds
        per_token = self.n_layers * (8 * self.d_model + 2 * self.d_ff + self.n_heads * 2 * T)
        require_memory(self, [
            (("schemes", "seeds", "batch", "test_digits", "d_model", "d_ff", "n_heads", "n_layers"),
             4 * 4 * runs * self.batch * 2 * T * per_token, "runs x batch x T x a(T) x 4 B x 4"),
            (("construction_pairs", "test_digits", "max_pos"),
             8 * 4 * self.construction_pairs * T * (self.max_pos + 16), "pairs x T x width x 4 B x 8"),
        ])
