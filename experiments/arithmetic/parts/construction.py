"""Part `construction` (exact, no training): coupled ids, and a hand-set transformer that adds.

    predict   the lengths the construction covers, 1..max_pos - 2 (coupled ids start at 1 and end
              at start + n + 1 <= max_pos), and the layout the absolute wiring is built for,
              n0 = max(train_digits)
    measure   (1) ids: for every length n, `construction_pairs` coupled examples with operand
              lengths U{1..n} and random start ids (the training distribution); each token's
              significance is re-derived from the tokens alone (a digit of a: its distance to +,
              of b: to =, of the answer: its place after =; + and = one class) and every pair of
              real tokens is compared: same id <=> same class; the number of examples with a
              violation, and the largest id used
              (2) coupled: the construction of theory/models/adder.py over coupled ids on
              `construction_pairs` pairs of two n-digit numbers per length n (random start ids):
              exact match per length
              (3) absolute: the same construction with absolute slots, its key map wired for the
              n0-digit layout (adder.absolute_maps), on the same kind of pairs: exact match per length
    judge     ids: no violation, every id in 1..max_pos (`exact`); coupled: exact match 1 at every
              length (`exact`); absolute: 1 at n0 (`sanity`: the wiring is right) and at most 0.01
              at every n > n0 (`expected`)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from theory.engine.keys import Keys
from theory.harness.parts import Part
from theory.harness.results import Check, at_least, at_most, holds
from theory.models import adder
from theory.tasks import arithmetic

ABSOLUTE_BEYOND_MAX = 0.01
CHUNK = 2000                               # pairs per evaluation chunk (memory)


def max_digits(cfg) -> int:
    """The longest operands whose coupled ids fit 1..max_pos at start 1: end = n + 2 <= max_pos."""
    return cfg.max_pos - 2


def predict(cfg) -> dict:
    return {"lengths": list(range(1, max_digits(cfg) + 1)), "layout_digits": cfg.train_digits[1],
            "max_pos": cfg.max_pos, "exact_match": 1.0}


def significance_classes(tokens: np.ndarray) -> np.ndarray:
    """(B, T) class of each token from the tokens alone: digit significance, -1 for + and =,
    -2 for padding. a's digits end at +, b's at =, the answer (reversed) starts after =."""
    B, T = tokens.shape
    t = np.arange(T)[None, :]
    plus = np.argmax(tokens == arithmetic.PLUS, axis=1)[:, None]          # (B, 1)
    eq = np.argmax(tokens == arithmetic.EQ, axis=1)[:, None]              # (B, 1)
    cls = np.where(t < plus, plus - 1 - t, np.where(t < eq, eq - 1 - t, t - eq - 1))
    cls = np.where((t == plus) | (t == eq), -1, cls)
    return np.where(tokens == arithmetic.PAD, -2, cls)


def _distinct(x: np.ndarray, real: np.ndarray) -> np.ndarray:
    """(B,) number of distinct values of x (B, T) over the real tokens of each row."""
    big = np.iinfo(np.int64).max
    v = np.sort(np.where(real, x, big), axis=1)                           # (B, T) padding last
    new = np.concatenate([v[:, :1] != big, (v[:, 1:] != v[:, :-1]) & (v[:, 1:] != big)], axis=1)
    return new.sum(axis=1)


def id_violations(tokens: np.ndarray, pos: np.ndarray) -> int:
    """Examples in which some pair of real tokens has (same id) != (same significance class).

    Same id <=> same class on every pair iff class -> id is a bijection on the example's tokens,
    iff the numbers of distinct classes, of distinct ids and of distinct (class, id) pairs agree."""
    cls = significance_classes(tokens).astype(np.int64)                   # (B, T)
    pos = np.asarray(pos, np.int64)
    real = cls > -2
    pairs = (cls + 2) * (pos.max() + 1) + pos                              # (class, id) as one integer
    n_cls, n_id, n_pair = _distinct(cls, real), _distinct(pos, real), _distinct(pairs, real)
    return int(np.sum((n_pair != n_cls) | (n_pair != n_id)))


def exact_match(params, ex) -> jax.Array:
    """Fraction of examples whose every answer digit is the construction's argmax (teacher forcing:
    every digit right given the true prefix <=> greedy decoding writes the whole answer)."""
    def one(e):
        logits = adder.forward(params, e.tokens, e.pos, e.pad_mask, e.read)   # (M, 10)
        return jnp.all((jnp.argmax(logits, axis=-1) == e.y) | ~e.y_mask)
    return jnp.mean(jax.lax.map(one, ex, batch_size=CHUNK).astype(jnp.float32))


def _lengths_program(cfg, params, fmt: str):
    """exact match (L,) at every length 1..L, one compiled program (lengths traced, one shape)."""
    L, n_pairs = max_digits(cfg), cfg.construction_pairs
    kw = dict(train=True, max_pos=cfg.max_pos, n_hints=1, max_offset=0)

    @jax.jit
    def at(key):
        def one_length(n):
            ex = arithmetic.batch(jax.random.fold_in(key, n), fmt, n_pairs, n, n, L, **kw)
            return exact_match(params, ex)
        return jax.lax.map(one_length, jnp.arange(1, L + 1))
    return at


def measure(cfg, keys: Keys, progress: str | None) -> dict:
    L, n0 = max_digits(cfg), cfg.train_digits[1]
    T = arithmetic.seq_len("coupled", L)
    vocab = arithmetic.vocab(1)

    ids_key = keys.sub("ids").data_key
    violations, smallest, largest = [], cfg.max_pos, 0
    gen = jax.jit(lambda k, n: arithmetic.batch(k, "coupled", cfg.construction_pairs, 1, n, L, train=True,
                                                max_pos=cfg.max_pos, n_hints=1, max_offset=0))
    for n in range(1, L + 1):
        ex = gen(jax.random.fold_in(ids_key, n), n)
        tokens, pos, real = np.asarray(ex.tokens), np.asarray(ex.pos), np.asarray(ex.pad_mask)
        violations.append(id_violations(tokens, pos))
        largest = max(largest, int(pos[real].max()))
        smallest = min(smallest, int(pos[real].min()))

    coupled = adder.construct(vocab, cfg.max_pos + 1, arithmetic.PLUS, adder.coupled_maps(cfg.max_pos + 1))
    em_coupled = _lengths_program(cfg, coupled, "coupled")(keys.sub("coupled").data_key)

    layout = arithmetic.layout("padded", jnp.zeros(n0, jnp.int32), jnp.zeros(n0, jnp.int32), n0, n0)
    absolute = adder.construct(vocab, T, arithmetic.PLUS, adder.absolute_maps(np.asarray(layout.sig), T))
    em_absolute = _lengths_program(cfg, absolute, "padded")(keys.sub("absolute").data_key)
    return {"lengths": list(range(1, L + 1)), "id_violations": violations, "largest_id": largest,
            "smallest_id": smallest, "pairs": cfg.construction_pairs,
            "coupled": np.asarray(em_coupled), "absolute": np.asarray(em_absolute)}


def judge(cfg, P: dict, M: dict) -> list[Check]:
    n = np.asarray(M["lengths"])
    coupled, absolute = np.asarray(M["coupled"], float), np.asarray(M["absolute"], float)
    n0 = P["layout_digits"]
    beyond = n > n0
    checks = [
        at_most("coupled_ids_by_significance",
                f"Coupled ids: two tokens share an id iff they have the same significance (+ and = one class), "
                f"in every one of {M['pairs']} sampled examples at every length 1..{n.max()}.",
                "exact", 0, float(sum(M["id_violations"])),
                "Cho et al. 2024, Sec. 3 (position coupling); the significance is re-derived from the tokens "
                "alone; count of examples with a violating pair"),
        holds("coupled_ids_in_range", f"Coupled ids stay within 1..max_pos = {P['max_pos']} (a learned table "
              f"of max_pos + 1 rows covers them).", "exact", f"1 <= id <= {P['max_pos']}",
              [M["smallest_id"], M["largest_id"]], M["smallest_id"] >= 1 and M["largest_id"] <= P["max_pos"],
              "HanseulJo/position-coupling src/data/addition.py: start ~ U[1, max_pos - n), end = start + n + 1"),
        at_least("construction_coupled_exact",
                 f"The hand-set one-layer transformer over coupled ids adds two n-digit numbers exactly "
                 f"(exact match 1 on {M['pairs']} pairs) at every n in 1..{n.max()}; minimum over n.",
                 "exact", 1.0, float(coupled.min()),
                 "theory/models/adder.py: beta = 1e4 zeroes every unmatched attention weight in float32 and "
                 "s' is within 0.1 of a_i + b_i + carry_i (proofs/arithmetic.py prove_carry_recursion)"),
        at_least("construction_absolute_in_layout",
                 f"The same construction over absolute slots, wired for the {n0}-digit layout, is exact there.",
                 "sanity", 1.0, float(absolute[n == n0][0]),
                 "the wiring (adder.absolute_maps) reads the same digits as the coupled map at n0"),
    ]
    if beyond.any():
        checks.append(at_most(
            "construction_absolute_beyond_layout",
            f"Over absolute slots the same construction fails beyond its {n0}-digit layout: exact match at most "
            f"{ABSOLUTE_BEYOND_MAX} at every n in {n0 + 1}..{n.max()}; maximum over n.",
            "expected", ABSOLUTE_BEYOND_MAX, float(absolute[beyond].max()),
            "threshold from reference runs of this construction (0 at every n > n0); slots wired for one "
            "layout read digits of other significances in any other (theory/models/adder.py)"))
    return checks


PART = Part("construction", predict, measure, judge)
