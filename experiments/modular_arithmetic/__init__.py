"""Claim `modular_arithmetic`: the Fourier algorithm for a + b mod p, exactly (Gromov 2023) and
learned through grokking by a quadratic MLP (Gromov 2023; d-doshi/Grokking's training scripts) and by
Nanda et al. 2023's one-layer transformer (arXiv 2301.05217; progress-measures-paper's code).

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
4. transformer       (full preset: transformer_p = 113, 40k epochs; 0 leaves it out, as the quick
                     preset does: it does not fit the minute) Nanda et al.'s one-layer ReLU transformer
                     on [a, b, =] (theory/models/relu_transformer.py), full-batch AdamW: test accuracy
                     >= 0.95; the restricted loss (logits on the key frequencies' cos/sin(w_k(a+b))
                     directions, all pairs) falls below 0.1 >= 2k epochs before the test loss falls
                     below 1; the excluded loss (those directions removed, training pairs) rises > 5
                     nats during circuit formation; the embedding holds >= 0.8 of its Fourier norm in 6
                     frequencies, which contain the MLP neurons' key frequencies; the logit variance
                     on cos(w_k(a+b-c)) is compared with the paper's 95% (judged only at 40k epochs).
                     The measures come from parameter snapshots every 200 epochs
                     (experiments/modular_arithmetic/progress.py).

Parts 2-3 train in float32 (the MSE loss recomputed in float64 agrees to ~1e-7, a sanity check);
the transformer keeps float32 weights with its log-softmax in float64 (the part runs with x64 on).
All seeds of a setting are one vmapped sweep, each run's train/test split drawn from its own key.
"""
from experiments.modular_arithmetic.config import Config
from experiments.modular_arithmetic.figure import plot
from experiments.modular_arithmetic.parts import closed_form, fourier_features, grokking, transformer
from theory.harness.config import Knob

PRECISION = "float32"   # training; the closed-form part runs in float64

PARTS = (closed_form.PART, grokking.PART, fourier_features.PART, transformer.PART)

# `sandbox explore` knobs (theory/harness/explore.py): the main one first; both are (grokking run,
# Fourier runs) pairs, plotted against the grokking run's entry
KNOBS = (
    Knob("train_frac", ((0.2, 0.5), (0.3, 0.5), (0.5, 0.5), (0.7, 0.5)),
         "training fraction of the grokking run: the delay between memorisation and generalisation "
         "shrinks as the fraction grows (Power et al. 2022; Doshi et al. 2024's phase diagrams)",
         part="grokking", axis="first", paper=(0.3, 0.5)),
    Knob("weight_decay", ((0.0, 5.0), (1.0, 5.0), (5.0, 5.0)),
         "AdamW weight decay of the grokking run", part="grokking", axis="first"),
)

__all__ = ["KNOBS", "PRECISION", "Config", "PARTS", "plot"]
