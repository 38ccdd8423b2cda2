"""Claim `modular_arithmetic`: the Fourier algorithm for a + b mod p, exactly (Gromov 2023) and
learned through grokking by a quadratic MLP (Gromov 2023; d-doshi/Grokking's training scripts).

Parts (experiments/modular_arithmetic/parts/<name>.py; each module's docstring gives its math):

1. closed_form       (float64, no training) Gromov's network f(a, b) = W2 (W1 [e_a; e_b])^2 with
                     balanced frequencies and random phases: the phase-averaged network equals the
                     product-to-sum prediction N/2 / -N/(2(p-1)) to 1e-10 on every pair; the noise
                     variance / N is 1; accuracy against width follows the Gaussian model around
                     the exact coherent part, E_Z[prod_(m != 0) Phi(Z + (C(0) - C(m))/sqrt(N))]
                     (E_Z[Phi(Z + sqrt(N) p/(2(p-1)))^(p-1)] at balanced widths); every pair is
                     correct near N = 300.
2. grokking          the trained quadratic MLP (p = 97, N = 500, fraction 0.3, no weight decay)
                     reaches train accuracy 1 while test accuracy is at chance, and test >= 0.99
                     at least 4x later.
3. fourier_features  with weight decay 5 (fraction 0.5) the neurons become single-frequency, the a-,
                     b- and output blocks share the frequency, phi_out = phi_a + phi_b, and the
                     single-frequency projection keeps the test accuracy: the learned network is
                     Part 1's construction. In the full preset a weight-decay-1 run is reported
                     beside as the control.

Nanda et al. 2023's one-layer transformer with progress measures (the issue's Part 3, full preset)
is not implemented yet (`transformer_p` is accepted and validated; 0 leaves it out).
Parts 2-3 train in float32 (the MSE loss recomputed in float64 agrees to ~1e-7, a sanity check);
all seeds of a setting are one vmapped sweep, each run's train/test split drawn from its own key.
"""
from experiments.modular_arithmetic.config import Config
from experiments.modular_arithmetic.figure import plot
from experiments.modular_arithmetic.parts import closed_form, fourier_features, grokking

PRECISION = "float32"   # training; the closed-form part runs in float64

PARTS = (closed_form.PART, grokking.PART, fourier_features.PART)

__all__ = ["PRECISION", "Config", "PARTS", "plot"]
