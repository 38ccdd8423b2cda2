"""The claim registry: name -> what the claim says, which paper, which experiment module.

Each experiment module `experiments/<name>.py` (or package `experiments/<name>/`) provides
    PRECISION: "float32" | "float64"
    Config: frozen dataclass with classmethods quick() and full(), and validate() (raises SandboxError)
    PARTS: sequence of theory.harness.parts.Part (predict / measure / judge; see that module)
    plot(result: dict) -> matplotlib Figure             # from the result file alone
    report_markdown(result: dict) -> str                # optional: extra tables for REPORT.md
"""
from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType

from theory.errors import SandboxError


@dataclasses.dataclass(frozen=True)
class ClaimSpec:
    name: str        # snake_case, the same in experiments/, proofs/, tests/, figures/, results/
    statement: str   # one line: what the paper claims
    paper: str       # short citation
    module: str      # the experiment module implementing it


CLAIMS: dict[str, ClaimSpec] = {c.name: c for c in [
    ClaimSpec(
        "gd_equivalence",
        "One linear self-attention layer trained on in-context linear regression implements one "
        "(preconditioned) GD step; deeper layers implement GD++.",
        "von Oswald et al. 2023; Zhang, Frei & Bartlett 2024; Ahn et al. 2023",
        "experiments.gd_equivalence"),
    ClaimSpec(
        "svm_bias",
        "Gradient descent on a softmax attention layer converges in direction to a max-margin "
        "token-selecting SVM: Frobenius norm for W, nuclear norm for the product K Q^T.",
        "Tarzanagh, Li, Thrampoulidis & Oymak 2023",
        "experiments.svm_bias"),
    ClaimSpec(
        "rank_growth",
        "From small initialisation the learned weight change grows in rank one stage at a time, "
        "at times predicted by the greedy saddle-to-saddle procedure (Saxe modes for linear nets).",
        "Boix-Adsera et al. 2023; Saxe, McClelland & Ganguli 2014",
        "experiments.rank_growth"),
    ClaimSpec(
        "scan_snap",
        "One-layer attention first scans toward distinctive tokens (ordered by co-occurrence), then "
        "snaps: attention freezes at a time t0 ~ 1/eta_Y set by the decoder learning rate.",
        "Tian, Wang, Chen & Du 2023",
        "experiments.scan_snap"),
    ClaimSpec(
        "length_generalization",
        "Randomized positional encodings let transformers trained on short algorithmic inputs "
        "generalize to longer ones better than their deterministic counterparts.",
        "Ruoss et al. 2023",
        "experiments.length_generalization"),
    ClaimSpec(
        "modular_arithmetic",
        "A quadratic MLP computes a + b mod p by a Fourier product-to-sum algorithm with a closed "
        "form (Gromov 2023), and one trained in the setup of Doshi et al. groks it: memorises first, "
        "generalises later, and ends as the construction; a one-layer transformer groks it too, and "
        "its progress measures (restricted and excluded loss on the key frequencies) move before the "
        "test loss does (Nanda et al. 2023).",
        "Gromov 2023 (arXiv 2301.02679); Doshi, Das, He & Gromov 2024 (arXiv 2310.13061, code d-doshi/Grokking); "
        "Nanda, Chan, Lieberum, Smith & Steinhardt 2023 (arXiv 2301.05217)",
        "experiments.modular_arithmetic"),
    ClaimSpec(
        "arithmetic",
        "A transformer learning 2-digit addition from N revealed sums needs about as many as completing "
        "the rank-2 table of a + b does (Lee et al.), and positions that encode digit significance "
        "(coupled ids, Abacus) let addition generalize to longer operands where absolute positions fail.",
        "Lee, Sreenivasan, Lee, Lee & Papailiopoulos 2024 (arXiv 2307.03381); Cho et al. 2024 (arXiv "
        "2405.20671); McLeish et al. 2024 (arXiv 2405.17399)",
        "experiments.arithmetic"),
    ClaimSpec(
        "composition",
        "Transformers compose through associative memories: one gradient step stores N pairs once "
        "d ~ sqrt(2 N ln M), a two-layer attention-only model learns an induction head from three "
        "such memories; and a k-step computation succeeds with probability ~ prod (1 - eps_i).",
        "Bietti, Cabannes, Bouchacourt, Jegou & Bottou 2023 (arXiv 2306.00802, code albietz/transformer-birth); "
        "Dziri et al. 2023 (arXiv 2305.18654)",
        "experiments.composition"),
]}


def names() -> list[str]:
    return list(CLAIMS)


def get(name: str) -> ClaimSpec:
    """The spec of `name`; an unknown name is a SandboxError listing the known ones."""
    if name not in CLAIMS:
        raise SandboxError(f"unknown claim {name!r}; known claims: {', '.join(CLAIMS)}")
    return CLAIMS[name]


def load(name: str) -> ModuleType:
    """Import the experiment module of claim `name`."""
    return importlib.import_module(get(name).module)
