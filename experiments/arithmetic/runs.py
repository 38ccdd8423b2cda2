"""Part 3's runs: one-layer causal decoders trained on short additions, tested on longer ones.

A scheme is a format of theory/tasks/arithmetic.py read by the same transformer
(theory/models/transformer.py) with a learned position table of `table` rows:

    coupled   coupled tokens and ids          abacus    reversed numbers, Abacus ids
    learned   the coupled tokens, ids 0..T-1  reversed  plain operands, reversed answer, ids 0..T-1
    hints     index hints, ids 0..T-1

One run (`run`), from its key k -> (k_init, k_data, k_eval):

    train   `steps` Adam steps (global-norm clip 1, cosine decay to 0.1 lr after a 1% warm-up, as
            in HanseulJo/position-coupling configs/training/default.yaml). Step t draws B additions
            with operand lengths U{lo..hi} each, laid out for hi digits (one shape), with the
            scheme's training shifts (coupled start, hint offset, Abacus offset);
            loss = mean over the batch of sum_k y_mask_k CE(logits[read_k], y_k) (the answer only).
    eval    for every operand length n = 1..N_test, `eval_pairs` additions of two n-digit numbers
            laid out for N_test digits (one shape), test shifts; exact match = the fraction whose
            every answer digit is the argmax at its read slot. Teacher forcing: every digit right
            given the true prefix <=> greedy decoding writes the whole answer.
    routing on the same pairs (reported, never judged): the accuracy of each answer digit, and
            the attention mass of block 0 (its most focused head) on the operand digits the read
            slot needs, `needed_tokens`: a digit of significance s is a_s + b_s + c_s mod 10 and
            its carry c_s is fixed by a_(s-1), b_(s-1) and the previous answer digit, so a
            one-layer adder must read the operand digits of significances s and s - 1 (the two
            ids Cho et al.'s construction attends to; theory/models/adder.py). A mass near 1 at
            every length with digit errors growing says the routing generalizes and the readout
            does not; a mass that falls beyond the training lengths says the routing fails.

The schemes of one sequence length (all but hints) are one vmapped sweep: the scheme index is a
traced value and the batch is built by `lax.switch` over the formats (vmapped, every format's
batch is computed and one selected: a few integer ops per token beside the model). Hints (6N + 4
tokens instead of 3N + 3) are a second sweep of the same run function. Seeds are paired: scheme s
of seed i uses run key i (the same init and data stream).
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from theory.engine.keys import data_key
from theory.engine.sweep import sweep
from theory.engine.train import OptimizerConfig, Trace, make_optimizer, raise_if_diverged, train
from theory.models import transformer
from theory.models.positional import PEConfig
from theory.tasks import arithmetic

FORMAT = {"coupled": "coupled", "abacus": "abacus", "learned": "padded", "reversed": "reversed", "hints": "hints"}


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Everything shape-like or static of one sweep (hashable: the sweep's compile cache key)."""
    formats: tuple[str, ...]          # the formats of this sweep, one sequence length
    model: transformer.TransformerConfig
    lo: int                           # training operand lengths lo..hi
    hi: int
    n_test: int                       # test operand lengths 1..n_test
    steps: int
    batch: int
    lr: float
    log_every: int
    max_pos: int                      # coupled ids 1..max_pos
    n_hints: int                      # hint tokens
    max_offset: int                   # Abacus training offsets 0..max_offset
    eval_pairs: int
    pos_gain: float                   # multiplies the learned position rows (transformer.forward's pe_gain)
    pos_init: float                   # scale of the position table's initial values (0: start at zero)


def table_size(cfg) -> int:
    """Rows of the learned position table shared by every scheme (one parameter shape): the
    largest id any scheme uses, at training or test: coupled max_pos, Abacus hi + 1 + max_offset,
    absolute ids seq_len - 1 of the longest test format."""
    longest = max(arithmetic.seq_len(FORMAT[s], cfg.test_digits[1]) for s in cfg.schemes)
    return max(cfg.max_pos + 1, cfg.train_digits[1] + 2 + cfg.abacus_max_offset, longest)


def model(cfg) -> transformer.TransformerConfig:
    return transformer.TransformerConfig(
        vocab=arithmetic.vocab(cfg.max_pos), n_classes=arithmetic.N_CLASSES, d_model=cfg.d_model,
        n_heads=cfg.n_heads, n_layers=cfg.n_layers, d_ff=cfg.d_ff,
        pe=PEConfig(kind="learned", max_len=table_size(cfg)))


def spec_for(cfg, formats: tuple[str, ...]) -> RunSpec:
    return RunSpec(formats=formats, model=model(cfg), lo=cfg.train_digits[0], hi=cfg.train_digits[1],
                   n_test=cfg.test_digits[1], steps=cfg.steps, batch=cfg.batch, lr=cfg.lr,
                   log_every=cfg.log_every, max_pos=cfg.max_pos, n_hints=cfg.max_pos,
                   max_offset=cfg.abacus_max_offset, eval_pairs=cfg.eval_pairs,
                   pos_gain=cfg.pos_gain, pos_init=cfg.pos_init)


def examples(key, scheme, size: int, lo, hi: int, N: int, train_mode: bool, spec: RunSpec):
    """`size` examples of the sweep's format number `scheme` (traced): lax.switch over the formats."""
    branches = [functools.partial(arithmetic.batch, fmt=f, size=size, lo=lo, hi=hi, N=N, train=train_mode,
                                  max_pos=spec.max_pos, n_hints=spec.n_hints, max_offset=spec.max_offset)
                for f in spec.formats]
    if len(branches) == 1:
        return branches[0](key)
    return jax.lax.switch(scheme, [lambda k, b=b: b(k) for b in branches], key)


def per_sequence(params, spec: RunSpec, ex):
    """(summed answer cross-entropy, exact match) per sequence (B,)."""
    def one(e):
        out, _ = transformer.forward(params, e.tokens, e.pos, e.pad_mask, spec.model, True, spec.pos_gain,
                                     read=e.read)                                 # (M, C)
        logp = jax.nn.log_softmax(out, axis=-1)                                   # (M, C)
        nll = -jnp.sum(logp * jax.nn.one_hot(e.y, out.shape[-1], dtype=logp.dtype), axis=-1)   # (M,)
        right = (jnp.argmax(out, axis=-1) == e.y) | ~e.y_mask                     # (M,)
        return jnp.sum(nll * e.y_mask.astype(nll.dtype)), jnp.all(right).astype(out.dtype)
    return jax.vmap(one)(ex)


def needed_tokens(ex) -> jax.Array:
    """(M, T) bool for one example: token t is an operand digit (before =) whose significance is
    that of answer digit k or one below (k's carry), for the digit read at slot read_k."""
    T = ex.tokens.shape[0]
    eq = jnp.argmax(ex.tokens == arithmetic.EQ)                                    # () slot of =
    operand = (jnp.arange(T) < eq) & (ex.sig >= 0)                                 # (T,)
    s = ex.sig[ex.read + 1]                                                        # (M,) significance of digit k
    same = (ex.sig[None, :] == s[:, None]) | (ex.sig[None, :] == s[:, None] - 1)   # (M, T)
    return operand[None, :] & same & ex.y_mask[:, None]


def routing(params, spec: RunSpec, ex):
    """(needed attention mass (B, M), digit right (B, M)) per sequence: the largest over heads of
    block 0's attention from read slot k onto needed_tokens(ex)[k], and argmax == y at slot k."""
    def one(e):
        out, acts = transformer.forward(params, e.tokens, e.pos, e.pad_mask, spec.model, True, spec.pos_gain)
        A = acts.pattern[0][:, e.read, :]                                         # (H, M, T)
        mass = jnp.max(jnp.sum(A * needed_tokens(e)[None].astype(A.dtype), axis=-1), axis=0)   # (M,)
        right = jnp.argmax(out[e.read], axis=-1) == e.y                           # (M,)
        return mass, right
    return jax.vmap(one)(ex)


def evaluate(params, k_eval, scheme, *, spec: RunSpec):
    """At every operand length n = 1..n_test, both operands n digits, laid out for n_test digits (one
    shape; n is traced: at test time `hi` only bounds the lengths): exact match (n_test,), the mean
    needed attention mass over the answer digits (n_test,) and each answer digit's accuracy
    (n_test, n_test + 1) (k-th in sequence order; 0 beyond n + 1 digits)."""
    def at(n):
        ex = examples(data_key(jax.random.fold_in(k_eval, n)), scheme, spec.eval_pairs, n, n, spec.n_test,
                      False, spec)
        exact = jnp.mean(per_sequence(params, spec, ex)[1])
        mass, right = routing(params, spec, ex)                                   # (B, M), (B, M)
        w = ex.y_mask.astype(mass.dtype)                                          # (B, M)
        return exact, jnp.sum(mass * w) / jnp.sum(w), jnp.mean(right.astype(w.dtype) * w, axis=0)
    return jax.lax.map(at, jnp.arange(1, spec.n_test + 1))


def run(key, scheme, *, spec: RunSpec, run_id=0, progress=None):
    """Train one model from `key`; (exact match (n_test,), needed attention mass (n_test,), digit
    accuracy (n_test, n_test + 1), loss trace, first bad step)."""
    k_init, k_data, k_eval = jax.random.split(key, 3)
    opt = make_optimizer(OptimizerConfig("adam", clip=1.0, schedule="warmup_cosine",
                                         warmup=max(spec.steps // 100, 1), final_lr_frac=0.1), spec.lr, spec.steps)

    def sample_batch(k_step):
        return examples(data_key(k_step), scheme, spec.batch, spec.lo, spec.hi, spec.hi, True, spec)

    def loss_fn(params, ex):
        return jnp.mean(per_sequence(params, spec, ex)[0])

    params0 = transformer.init(k_init, spec.model)
    params0 = params0._replace(P=spec.pos_init * params0.P)
    params, trace = train(k_data, params0, loss_fn, sample_batch, opt,
                          steps=spec.steps, log_every=spec.log_every, progress=progress, run_id=run_id)
    exact, mass, digits = evaluate(params, k_eval, scheme, spec=spec)
    return exact, mass, digits, trace.loss, trace.first_bad_step


def train_and_eval(cfg, run_keys: jax.Array, progress: str | None = None) -> dict[str, np.ndarray]:
    """Every scheme of cfg.schemes x seeds (run_keys (S, 2), paired over schemes), in cfg.schemes
    order: exact_match (schemes, S, n_test), needed_mass (schemes, S, n_test), digit_acc
    (schemes, S, n_test, n_test + 1) and loss (schemes, S, steps / log_every)."""
    S = run_keys.shape[0]
    groups: dict[int, list[str]] = {}
    for s in cfg.schemes:
        groups.setdefault(arithmetic.seq_len(FORMAT[s], cfg.train_digits[1]), []).append(s)
    names_out = ("exact_match", "needed_mass", "digit_acc", "loss")
    got: dict[str, dict[str, np.ndarray]] = {k: {} for k in names_out}
    for names in groups.values():
        spec = spec_for(cfg, tuple(FORMAT[s] for s in names))
        V = len(names)
        keys = jnp.tile(run_keys, (V, 1))                                         # (V*S, 2)
        scheme = np.repeat(np.arange(V, dtype=np.int32), S)                       # (V*S,)
        *outs, bad = sweep(functools.partial(run, spec=spec, progress=progress), keys, scheme=scheme)
        raise_if_diverged(Trace(None, outs[-1], None, bad), "arithmetic/positions",
                          {"scheme": np.repeat(names, S), "lr": cfg.lr})
        for i, s in enumerate(names):
            for k, o in zip(names_out, outs):
                got[k][s] = np.asarray(o)[i * S:(i + 1) * S]
    return {k: np.stack([got[k][s] for s in cfg.schemes]) for k in names_out}
