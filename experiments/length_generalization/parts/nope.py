"""Part `nope`: no positional encoding, with and without the causal mask (the permutation bound).

Without positions and without a causal mask a transformer is permutation-equivariant over its
input tokens, so on even_pairs (label [x_1 == x_n]) its answer can depend only on the multiset of
input bits (plus x_n when it reads at the last input slot). The Bayes accuracy of such predictors
at length n, read at the last input slot (the looser of the two layouts,
theory/predictions/length_generalization.py: even_pairs_permutation_bound), is

    acc_n = E_j max(j, n-1-j) / (n-1),   j ~ Bin(n-1, 1/2)

(proofs/length_generalization.py: prove_even_pairs_multiset_probability). A causal mask alone
breaks the symmetry (token i sees only tokens <= i), so the causal model may exceed the bound.

    predict   the bound at every NoPE test length, its mean over nope_lengths, and the standard error
              0.5 / sqrt(eval_batch * seeds * |nope_lengths|) of a mean accuracy there
    measure   the NoPE pair (`nope_steps` Adam steps, paired seeds), accuracy (variant, seed,
              length) at the in-distribution test lengths (`lengths`); max |logit change| at the
              read slots of a randomly initialised non-causal NoPE model when its n = 30 input
              tokens are permuted, and (a control, not judged) of the same model and input with
              sin/cos positions added
    judge     non-causal mean accuracy <= bound + 3 s.e.; causal >= bound + 0.15; logit change
              <= 1e-4 (float32 rounding)
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from experiments.length_generalization import runs
from theory.engine.keys import Keys
from theory.harness.results import Check, at_least, at_most
from theory.models import positional, transformer
from theory.predictions import length_generalization as pred
from theory.tasks import algorithmic

VARIANTS = runs.VARIANTS[2:]               # nope_causal, nope_noncausal
READ = "decoder"                           # layout of the bound (the looser of the two)
Z = 3.0                                    # s.e. above the bound allowed for the non-causal model
CAUSAL_MARGIN = 0.15                       # "clearly above" the bound for the causal model
PERMUTATION_TOL = 1e-4                     # float32 rounding of the logits
PERMUTED = 30                              # input tokens permuted in the invariance measurement
WHY = ("proofs/length_generalization.py (prove_even_pairs_multiset_probability) and "
       "theory/predictions/length_generalization.py (even_pairs_permutation_bound)")


def lengths(cfg) -> tuple[int, ...]:
    """The test lengths of the NoPE pair: the in-distribution ones (the checks use nope_lengths;
    nothing beyond the training range is judged for NoPE)."""
    return tuple(n for n in cfg.lengths if n <= cfg.train_max_len)


def predict(cfg) -> dict:
    bounds = [pred.even_pairs_permutation_bound(int(m), READ) for m in cfg.nope_lengths]
    return {"lengths": lengths(cfg), "nope_lengths": cfg.nope_lengths, "read": READ,
            "bound_by_length": [pred.even_pairs_permutation_bound(int(m), READ) for m in lengths(cfg)],
            "bound": float(np.mean(bounds)),
            "se": 0.5 / np.sqrt(cfg.eval_batch * cfg.seeds * len(cfg.nope_lengths))}


def permutation_gap(cfg, key: jax.Array, kind: str = "none") -> float:
    """max |logits(P x) - logits(x)| at the read slots of a randomly initialised non-causal model
    with encoding `kind` (NoPE: "none"), for a random permutation P of n = PERMUTED input tokens."""
    return float(_permutation_gap(cfg, key, kind))


@functools.partial(jax.jit, static_argnums=(0, 2))
def _permutation_gap(cfg, key: jax.Array, kind: str) -> jax.Array:
    task = algorithmic.get(cfg.task)
    mcfg = cfg.model(task, kind)
    k_init, k_data, k_perm = jax.random.split(key, 3)
    params = transformer.init(k_init, mcfg)
    s, lay = runs.sequences(task, k_data, PERMUTED, cfg.train_max_len, False, 1)
    s, lay = jax.tree_util.tree_map(lambda a: a[0], (s, lay))
    T = lay.tokens.shape[0]
    perm = jnp.concatenate([jax.random.permutation(k_perm, PERMUTED), jnp.arange(PERMUTED, T)])   # (T,)
    pos = positional.positions(mcfg.pe, k_perm, PERMUTED, T)                        # (T,) 0..T-1
    a = transformer.forward(params, lay.tokens, pos, lay.pad_mask, mcfg, False)[0]  # (T, C)
    b = transformer.forward(params, lay.tokens[perm], pos, lay.pad_mask, mcfg, False)[0]   # (T, C)
    return jnp.max(jnp.abs(a[lay.read] - b[lay.read]))


def measure(cfg, keys: Keys, progress: str | None) -> dict:
    run_keys = keys.sub(cfg.task, "none").runs(cfg.seeds)                           # (S, 2)
    k_gap = keys.sub("permutation").key           # one init and input for the NoPE model and its control
    schedule = keys.sub(cfg.task, "none", "lengths").key                            # step lengths, shared
    acc, loss = runs.train_and_eval(cfg, cfg.task, "sin_cos", VARIANTS, run_keys, cfg.nope_steps,
                                    lengths(cfg), schedule, progress)               # (2, S, E), (2, S, n_logs)
    return {"lengths": lengths(cfg), "variants": [v.name for v in VARIANTS], "acc": acc, "loss": loss,
            "steps": cfg.nope_steps, "permutation_gap": permutation_gap(cfg, k_gap),
            "permutation_gap_sin_cos": permutation_gap(cfg, k_gap, "sin_cos")}


def judge(cfg, P: dict, M: dict) -> list[Check]:
    E = np.asarray(M["lengths"])
    sel = np.isin(E, P["nope_lengths"])
    causal, noncausal = (float(a[sel].mean()) for a in np.asarray(M["acc"], float).mean(axis=1))
    bound, se = float(P["bound"]), float(P["se"])
    lengths = tuple(P["nope_lengths"])
    return [
        at_most("nope_noncausal_below_bound",
                f"Non-causal NoPE is no more accurate than the best permutation-invariant predictor "
                f"({bound:.3f}) at lengths {lengths}.", "predicted", bound + Z * se, noncausal,
                f"{WHY}; Bayes accuracy given the multiset of bits and x_n, + {Z:g} s.e."),
        at_least("nope_causal_above_bound",
                 f"Causal NoPE is clearly ({CAUSAL_MARGIN}) above the permutation bound at lengths {lengths}.",
                 "expected", bound + CAUSAL_MARGIN, causal,
                 f"{WHY}: the causal mask alone carries order; the margin {CAUSAL_MARGIN} "
                 f"(= {CAUSAL_MARGIN / se:.0f} s.e.) is a chosen threshold, not derived"),
        at_most("nope_noncausal_permutation_invariance",
                "Permuting the inputs of a non-causal NoPE model leaves its read-slot logits unchanged.",
                "exact", PERMUTATION_TOL, float(M["permutation_gap"]),
                "theory/models/transformer.py: without positions or a mask every layer is "
                "permutation-equivariant, so the change is 0 up to float32 rounding"),
    ]
