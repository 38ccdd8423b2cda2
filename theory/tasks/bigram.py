"""Bigram sequences with triggers (Bietti et al. 2023, arXiv 2306.00802, Sec. 4; albietz/transformer-birth,
ihead_data.py): most tokens follow a global bigram model, and each of k trigger tokens is followed,
throughout one sequence, by a successor drawn afresh for that sequence.

    P (V, V)     bigram matrix, rows ~ Dirichlet(alpha) (here alpha = 0.5 over V = 65 tokens; the paper
                 uses tiny-Shakespeare character bigrams)
    pi (V,)      its stationary law (the marginal of the tokens); the first token is drawn from pi
    triggers     the k tokens of largest pi (the repository's fixed_special_toks, "most frequent")
    successors   per sequence, one token per trigger, uniform over all V tokens
    sequence     z_0 ~ pi; z_{t+1} = successor of z_t if z_t is a trigger, else z_{t+1} ~ P[z_t]

A sample is (x, y, outs) with x = z_0..z_{T-1}, y = z_1..z_T (the next token) and outs[t] = how
many times x[t]'s trigger has been seen up to and including t (0 where x[t] is no trigger), so
outs[t] >= 2 marks the targets that can be read from context: the second and later occurrences of
a trigger's successor. Worked example (trigger 0 with successor 2 in this sequence): z = 0 2 1 0 2
gives x = 0 2 1 0, y = 2 1 0 2, outs = 1 0 0 2 (only the last target counts in the loss).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

ALPHA = 0.5                 # Dirichlet concentration of the bigram rows
STATIONARY_ITERS = 200      # power iterations for pi (|lambda_2| of a Dirichlet(0.5) 65 x 65 matrix ~ 0.2)


class Bigram(NamedTuple):
    P: jax.Array             # (V, V) row-stochastic bigram matrix
    pi: jax.Array            # (V,) stationary law
    triggers: jax.Array      # (k,) the k tokens of largest pi, most frequent first


class Sample(NamedTuple):
    x: jax.Array             # (T,) input tokens
    y: jax.Array             # (T,) next tokens
    outs: jax.Array          # (T,) occurrence count of x[t]'s trigger (0: not a trigger)


def stationary(P: jax.Array, iters: int = STATIONARY_ITERS) -> jax.Array:
    """pi with pi P = pi (power iteration from the uniform law)."""
    V = P.shape[0]
    return jax.lax.fori_loop(0, iters, lambda _, p: p @ P, jnp.full((V,), 1.0 / V, P.dtype))


def draw_bigram(key: jax.Array, vocab: int, n_triggers: int, alpha: float = ALPHA) -> Bigram:
    """A random bigram model with Dirichlet(alpha) rows, its stationary law and its k triggers."""
    P = jax.random.dirichlet(key, jnp.full((vocab,), alpha), (vocab,))          # (V, V)
    pi = stationary(P)
    return Bigram(P, pi, jnp.argsort(-pi)[:n_triggers])


def _draw(cum: jax.Array, u: jax.Array) -> jax.Array:
    """The token whose cumulative-probability bin holds u (inverse CDF: the number of bins below u)."""
    return jnp.minimum(jnp.sum(cum <= u), cum.shape[-1] - 1)


def sample(key: jax.Array, bigram: Bigram, seq_len: int) -> Sample:
    """One sequence of length T = seq_len (x, y, outs)."""
    k_first, k_succ, k_steps = jax.random.split(key, 3)
    V, k = bigram.P.shape[0], bigram.triggers.shape[0]
    cum = jnp.cumsum(bigram.P, axis=1)                                           # (V, V)
    first = _draw(jnp.cumsum(bigram.pi), jax.random.uniform(k_first))
    succ = jax.random.randint(k_succ, (k,), 0, V)                                # (k,) uniform successors
    u = jax.random.uniform(k_steps, (seq_len,))                                  # (T,)

    def step(state, u_t):
        tok, counts = state
        hit = tok == bigram.triggers                                             # (k,)
        is_trigger, which = hit.any(), jnp.argmax(hit)
        counts = counts + hit.astype(jnp.int32)
        nxt = jnp.where(is_trigger, succ[which], _draw(cum[tok], u_t))
        return (nxt, counts), (tok, nxt, jnp.where(is_trigger, counts[which], 0))

    _, (x, y, outs) = jax.lax.scan(step, (first, jnp.zeros((k,), jnp.int32)), u)
    return Sample(x, y, outs)


def sample_batch(key: jax.Array, bigram: Bigram, seq_len: int, batch: int) -> Sample:
    """`batch` independent sequences (leaves (batch, T))."""
    return jax.vmap(lambda k: sample(k, bigram, seq_len))(jax.random.split(key, batch))


def previous_token_uses(s: Sample) -> jax.Array:
    """How often each position's previous-token memory is read, per sequence of a batch s (leaves
    (B, T)): uses[j - 1] for keys j = 1..T-1 is the mean over sequences of #{t >= j : outs_t >= 2,
    x_(j-1) = x_t}, the targets whose induction head needs key j to carry x_(j-1) (the layer-1
    previous-token head copies x_(j-1) into position j, the layer-2 head then finds it from x_t).
    Returns (T-1,). Worked example: x = 0 2 1 0, outs = 1 0 0 2 gives uses = 1 0 0 (key 1 serves
    the target at t = 3)."""
    def one(x, outs):
        T = x.shape[0]
        t, j = jnp.arange(T)[:, None], jnp.arange(1, T)[None, :]                 # (T, 1), (1, T-1)
        reads = (outs[:, None] >= 2) & (x[:-1][None, :] == x[:, None]) & (j <= t)  # (T, T-1)
        return jnp.sum(reads, axis=0)                                            # (T-1,)
    real = jnp.result_type(float)
    return jnp.mean(jax.vmap(one)(s.x, s.outs).astype(real), axis=0)
