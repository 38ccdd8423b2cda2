"""The `modular_arithmetic` config: Part 1's primes and widths, Part 2's quadratic MLP runs, Part 3's
transformer, the seeds; presets and validation. Every judge threshold lives in parts/*.py."""
from __future__ import annotations

import dataclasses

from theory.errors import SandboxError
from theory.harness.config import check_fields, require_increasing, require_length, require_memory, require_positive

T_LOG_EVERY = 200     # the transformer's snapshot interval in epochs (experiments/modular_arithmetic/runs.py)


def n_params(p: int, D: int = 128, F: int = 512) -> int:
    """Parameters of the transformer at modulus p (vocabulary p + 1, 3 positions, 4 heads of D / 4)."""
    return 2 * (p + 1) * D + 3 * D + 4 * D * D + F * D * 2 + F + D


def is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n ** 0.5) + 1))


@dataclasses.dataclass(frozen=True)
class Config:
    TOLERANCES = ()                              # thresholds are constants of the parts (not settable)

    # --- Part 1: Gromov's closed form (float64, no training) ---
    primes: tuple[int, ...] = (23, 97)           # odd primes of the construction checks
    widths: tuple[int, ...] = (25, 50, 75, 100, 150)   # widths N of the accuracy-against-width check
    # --- Part 2: the trained quadratic MLP (d-doshi/Grokking, Training_scripts/phase_diagrams_wd.py) ---
    mlp_p: int = 97                              # modulus of the trained MLP
    mlp_width: int = 500                         # hidden neurons N
    train_frac: tuple[float, float] = (0.3, 0.5)         # training fraction: (grokking run, Fourier runs)
    weight_decay: tuple[float, ...] = (0.0, 5.0)  # AdamW wd: (grokking, Fourier[, control]); the control
                                                  # (reported, not judged) runs only when a third is given
    epochs: tuple[int, int] = (400, 300)         # full-batch epochs: (grokking run, Fourier runs)
    # --- Part 3: Nanda et al.'s one-layer transformer (0 = part left out) ---
    transformer_p: int = 0                       # modulus of the transformer (progress-measures-paper: 113);
                                                 # 0 = left out (the quick preset: it does not fit the minute)
    transformer_epochs: int = 40000              # full-batch AdamW epochs, as the paper's model (cleanup ends
                                                 # ~14k at p = 113); a multiple of T_LOG_EVERY
    transformer_seeds: int = 1                   # transformer runs (one vmapped sweep)
    seeds: int = 3                               # constructions per width (Part 1), runs per setting (2, 3)

    @classmethod
    def quick(cls) -> "Config":
        return cls()

    @classmethod
    def full(cls) -> "Config":
        return cls(primes=(23, 97, 113), weight_decay=(0.0, 5.0, 1.0), seeds=5, transformer_p=113)

    def validate(self) -> None:
        """Refuse a config this claim cannot run (SandboxError naming the field), before any work.

        Memory: the largest allocation is estimated as 8x (weights, Adam moments, gradients,
        activations) the float32 hidden activations of one training step of the MLP sweep,
        3 seeds x p^2 x N x 4 B, or 2x the float64 logits of Part 1 at its largest prime,
        p^2 x p x 8 B x 2 (and the same p^2 x max N hidden layer), or the transformer's parameter
        snapshots (runs x epochs / 200 x its parameters x 4 B) beside 8 float64 copies of the MLP
        activations of all pairs (p^2 x 512 x 8 B x 8, the progress measures)."""
        check_fields(self)
        require_positive(self, "primes", "widths", "mlp_p", "mlp_width", "train_frac", "epochs",
                         "seeds", "transformer_epochs", "transformer_seeds")
        require_increasing(self, "widths")
        require_increasing(self, "primes")
        for p in self.primes:
            if p < 5 or not is_prime(p):
                raise SandboxError(f"primes: {p} is not an odd prime >= 5 (the construction needs a field, "
                                   f"and at least 2 frequencies)")
        if self.mlp_p < 5 or not is_prime(self.mlp_p):
            raise SandboxError(f"mlp_p must be an odd prime >= 5, got {self.mlp_p}")
        if self.transformer_p and (self.transformer_p < 5 or not is_prime(self.transformer_p)):
            raise SandboxError(f"transformer_p must be 0 (part left out) or an odd prime >= 5, "
                               f"got {self.transformer_p}")
        if self.transformer_epochs % T_LOG_EVERY:
            raise SandboxError(f"transformer_epochs must be a multiple of {T_LOG_EVERY} (the snapshot interval), "
                               f"got {self.transformer_epochs}")
        require_length(self, "train_frac", 2, 2, "the grokking run and the Fourier runs")
        require_length(self, "weight_decay", 2, 3, "grokking, Fourier and optionally the control")
        require_length(self, "epochs", 2, 2, "the grokking run and the Fourier runs")
        if any(not 0 < f < 1 for f in self.train_frac):
            raise SandboxError(f"train_frac must lie strictly between 0 and 1, got {self.train_frac}")
        if any(w < 0 for w in self.weight_decay):
            raise SandboxError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if any(e % 5 for e in self.epochs):
            raise SandboxError(f"epochs must be multiples of 5 (the accuracy log interval), got {self.epochs}")
        if self.seeds < 3:
            raise SandboxError(f"seeds must be >= 3 (Part 1 judges the mean accuracy over >= 3 constructions), "
                               f"got {self.seeds}")
        big = max(self.primes)
        require_memory(self, [
            (("seeds", "mlp_p", "mlp_width"), 8 * 4 * 2 * self.seeds * self.mlp_p ** 2 * self.mlp_width,
             "2 seeds x p^2 x N x 4 B x 8"),
            (("primes", "widths"), 2 * 8 * big ** 2 * max(big, max(self.widths), 300),
             "p^2 x max(p, N) x 8 B x 2"),
            (("transformer_p", "transformer_epochs", "transformer_seeds"),
             self.transformer_seeds * (self.transformer_epochs // T_LOG_EVERY) * 4 * n_params(self.transformer_p)
             + 8 * 8 * self.transformer_p ** 2 * 512, "snapshots x parameters x 4 B + 8 x p^2 x 512 x 8 B"),
        ])
