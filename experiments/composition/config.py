"""The `composition` config: Part 1's one-step associative memory, Part 2's induction-head runs, Part 3's
chained sums; presets and validation. Every judge threshold lives in parts/*.py.

Part 2's vocabulary. With Dirichlet(0.5) bigram rows over the paper's 65 tokens the k = 5 most
frequent tokens carry only ~0.10 of the stationary mass (~2.6 occurrences each in T = 128), and
in exploratory runs (lr 0.03-0.3, d 64-128, batch 32-64, 300-400 steps) the output memory stayed
at 5/65 (only the triggers' self-loops learned) or rose slowly (wo1 0.31 after 300 steps at lr 0.1,
d = 128, batch 64). With V = 20 the triggers carry ~0.36 of the mass, as a text's most frequent
characters do, and the head forms within a few hundred steps; `--set vocab=65` runs the paper's
vocabulary."""
from __future__ import annotations

import dataclasses

from theory.errors import SandboxError
from theory.harness.config import check_fields, require_increasing, require_memory, require_positive
from theory.predictions.composition import d50_formula

# Part 1's d grid: 2^(k/4) from 16 to 256, so [d*/2, 2 d*] holds >= 8 points at N = 256 and 1024
DIMS = (16, 19, 23, 27, 32, 38, 45, 54, 64, 76, 91, 108, 128, 152, 181, 215, 256)


@dataclasses.dataclass(frozen=True)
class Config:
    TOLERANCES = ()                              # thresholds are constants of the parts (not settable)

    # --- Part 1: one gradient step on a linear associative memory (float64) ---
    n_pairs: tuple[int, ...] = (256, 1024)       # N = M stored pairs (= outputs) of each recall sweep
    dims: tuple[int, ...] = DIMS                 # embedding dimensions d of the recall curve
    recall_seeds: int = 4                        # embedding / map draws per (N, d)
    # --- Part 2: the induction head (albietz/transformer-birth, ihead_basic_main.py) ---
    vocab: int = 20                              # tokens of the bigram model (65 in the paper: see below)
    seq_len: int = 128                           # T
    n_triggers: int = 5                          # k most frequent tokens, successors redrawn per sequence
    d_model: int = 64                            # embedding width d (the repository's default dim)
    steps: int = 800                             # SGD steps
    batch: int = 32                              # sequences per step
    lr: float = 0.1                              # SGD learning rate (the repository's default 0.2, README 0.03)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    probe_every: int = 20                        # steps between probe evaluations (inside the scan)
    seeds: int = 3                               # induction-head runs (vmapped)
    # --- Part 3: errors compound along a chained sum (experiments/composition/parts/compounding.py) ---
    train_k: int = 6                             # the decoder trains on chains of k = 1..train_k
    test_k: int = 16                             # and is tested on k = 1..test_k
    chain_steps: int = 1000                      # training steps of Part 3's decoder (per-step errors of a few
                                                 # % beyond train_k keep ln A_k resolvable; 8000 flattens it)
    chain_test_size: int = 1000                  # test chains per k
    chain_seeds: int = 1                         # decoder runs

    @classmethod
    def quick(cls) -> "Config":
        return cls()

    @classmethod
    def full(cls) -> "Config":
        return cls(recall_seeds=8, d_model=128, batch=64, steps=2000, chain_test_size=2000, chain_seeds=3)

    def validate(self) -> None:
        """Refuse a config this claim cannot run (SandboxError naming the field), before any work.

        Memory: the largest allocation is estimated as Part 1's float64 score matrices of one
        vmapped sweep, recall_seeds x len(dims) x M x max(N, d) x 8 B x 4 (scores, gradient,
        temporaries), or Part 2's float32 activations of one step, seeds x batch x T x
        max(T, d) x 4 B x 24 (two layers' scores, values and their gradients)."""
        check_fields(self)
        require_positive(self, "n_pairs", "dims", "recall_seeds", "vocab", "seq_len", "n_triggers", "d_model",
                         "steps", "batch", "lr", "probe_every", "seeds", "train_k", "test_k", "chain_steps",
                         "chain_test_size", "chain_seeds")
        require_increasing(self, "dims")
        if any(n < 2 for n in self.n_pairs):
            raise SandboxError(f"n_pairs must be >= 2 (a recall needs two outputs), got {self.n_pairs}")
        if len(self.dims) < 2:
            raise SandboxError(f"dims needs at least 2 values (d_50 is interpolated), got {self.dims}")
        for n in self.n_pairs:
            star = d50_formula(n, n)
            if sum(star / 2 <= d <= 2 * star for d in self.dims) < 2:
                raise SandboxError(f"dims must hold at least 2 values in [d*/2, 2 d*] = [{star / 2:.1f}, "
                                   f"{2 * star:.1f}] for n_pairs {n} (d_50 is interpolated there), got {self.dims}")
        if self.recall_seeds < 4:
            raise SandboxError(f"recall_seeds must be >= 4 (d_50 is read from the mean over >= 4 draws), "
                               f"got {self.recall_seeds}")
        if self.vocab < 3:
            raise SandboxError(f"vocab must be >= 3, got {self.vocab}")
        if self.n_triggers >= self.vocab:
            raise SandboxError(f"n_triggers must be below vocab ({self.vocab}), got {self.n_triggers}")
        if self.seq_len < 8:
            raise SandboxError(f"seq_len must be >= 8 (a trigger must occur twice), got {self.seq_len}")
        if not 0 <= self.momentum < 1:
            raise SandboxError(f"momentum must lie in [0, 1), got {self.momentum}")
        if self.weight_decay < 0:
            raise SandboxError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.steps % self.probe_every:
            raise SandboxError(f"steps ({self.steps}) must be a multiple of probe_every ({self.probe_every})")
        if self.test_k < self.train_k + 3:
            raise SandboxError(f"test_k must be >= train_k + 3 = {self.train_k + 3} (the log-linear fit needs three "
                               f"lengths beyond the training range), got {self.test_k}")
        n_max, d_max = max(self.n_pairs), max(self.dims)
        require_memory(self, [
            (("n_pairs", "dims", "recall_seeds"),
             4 * 8 * self.recall_seeds * len(self.dims) * n_max * max(n_max, d_max),
             "recall_seeds x len(dims) x M x max(N, d) x 8 B x 4"),
            (("seeds", "batch", "seq_len", "d_model"),
             24 * 4 * self.seeds * self.batch * self.seq_len * max(self.seq_len, self.d_model),
             "seeds x batch x T x max(T, d) x 4 B x 24"),
        ])
