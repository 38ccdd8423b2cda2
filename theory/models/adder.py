"""A hand-set one-layer transformer that adds two numbers: the construction of `arithmetic` Part 1.

Derived here (Cho et al. 2024 prove that a one-layer transformer with coupled positions adds; their
appendix constants could not be checked, so this is our own construction, not theirs). Input: the
padded / coupled layout of theory/tasks/arithmetic.py, 0a + 0b = c reversed (a_i, b_i, c_i the
digits of significance i), read as a causal decoder: the query that predicts c_i is the token
before it, = for i = 0 and c_(i-1) otherwise.

Residual stream x (T, D), D = V + P + 4 + 10, one block, no LayerNorm:

    x_t = W_E[token_t] + P[pos_t]           channels: token one-hot (V), position one-hot (P), VAL
                                            (the digit's value, 0 for other tokens), ONE (= 1),
                                            CUR, PREV (written by attention), LOGIT_0..9 (by the MLP)
    head "cur"   s_tj = beta [M_cur(p_t, p_j)] + beta/2 [token_j = +]     values VAL, output 2 x mean -> CUR
    head "prev"  s_tj = beta [M_prev(p_t, p_j)]                           values VAL, output 3 x mean -> PREV
    MLP          s' = CUR + (PREV - 2 VAL) / 10;   LOGIT_k = sum_{m = k, k+10} hat(s' - m),
                 hat(z) = relu(2z + 1) - 2 relu(2z) + relu(2z - 1)   (1 at z = 0, 0 for |z| >= 1/2)
    logits = LOGIT_0..9

The key map M is where the positions enter. With coupled ids (significance i <-> id end - 1 - i,
+ and = <-> end) it is a function of the ids alone, the same for every length:

    M_cur(p, p') = [p' = p - 1]             the query of c_i reads a_i, b_i (c_i is not yet there;
                                            for the top digit c_n nothing matches and + (value 0) wins)
    M_prev(p, p') = [p' = p]                it reads a_(i-1), b_(i-1) and itself, c_(i-1) (at =: + and =)

so CUR = a_i + b_i and PREV - 2 VAL = a_(i-1) + b_(i-1) - c_(i-1) = 10 carry_i - carry_(i-1) in
{-1, 0, 9, 10} (proofs/arithmetic.py: prove_carry_recursion), hence s' = a_i + b_i + carry_i -
carry_(i-1)/10 lies within 0.1 of the integer a_i + b_i + carry_i and LOGIT peaks at its digit
c_i. With absolute positions the same map must name slots, which depend on the length:
`absolute_maps(layout)` wires M for one layout n0 (the same two reads, by slot), exact there and
wrong for every other layout. beta = 1e4: a non-matching key's weight is exp(-5000) = 0 in float32,
so each mean is over exactly the matched keys.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from theory.errors import SandboxError

BETA = 1e4
N_CLASSES = 10


class AdderParams(NamedTuple):
    W_E: jax.Array     # (V, D) token embedding
    P: jax.Array       # (P, D) position table
    W_Q: jax.Array     # (2, D, d) heads cur, prev
    W_K: jax.Array     # (2, D, d)
    W_V: jax.Array     # (2, D, 1)
    W_O: jax.Array     # (2, 1, D)
    W_in: jax.Array    # (D, F)
    b_in: jax.Array    # (F,)
    W_out: jax.Array   # (F, D)
    W_U: jax.Array     # (D, 10)


def coupled_maps(n_pos: int) -> tuple[np.ndarray, np.ndarray]:
    """(M_cur, M_prev) (n_pos, n_pos) over coupled ids: M_cur[p, p - 1] = 1, M_prev = identity."""
    return np.eye(n_pos, k=-1), np.eye(n_pos)


def absolute_maps(sig: np.ndarray, n_pos: int) -> tuple[np.ndarray, np.ndarray]:
    """(M_cur, M_prev) over absolute slots, wired for ONE layout: sig (T0,) the significance of each
    slot of that layout (theory/tasks/arithmetic.Example.sig; separators -1, padding -2).
    M_cur[t, t'] = [sig t' = sig t + 1], M_prev[t, t'] = [sig t' = sig t] over real slots."""
    sig = np.asarray(sig)
    if sig.shape[0] > n_pos:
        raise SandboxError(f"the layout has {sig.shape[0]} slots > the position table's {n_pos}")
    s = np.full(n_pos, -100)
    s[:sig.shape[0]] = np.where(sig == -2, -100, sig)              # padding and unused slots match nothing
    real = s[:, None] > -100
    cur = (s[None, :] == s[:, None] + 1) & real & real.T
    prev = (s[None, :] == s[:, None]) & real & real.T
    return cur.astype(float), prev.astype(float)


def construct(vocab: int, n_pos: int, plus: int, maps: tuple[np.ndarray, np.ndarray]) -> AdderParams:
    """The weights above; tokens 0..9 are the digits, `plus` the + token, positions 0..n_pos-1."""
    V, P = vocab, n_pos
    VAL, ONE, CUR, PREV, LOGIT = V + P, V + P + 1, V + P + 2, V + P + 3, V + P + 4
    D, d = LOGIT + N_CLASSES, P + 1
    m_cur, m_prev = (np.asarray(m, float) for m in maps)
    W_E = np.zeros((V, D))
    W_E[np.arange(V), np.arange(V)] = 1.0                                  # token one-hot
    W_E[:10, VAL] = np.arange(10)                                          # digit value
    W_E[:, ONE] = 1.0
    Ptab = np.zeros((P, D))
    Ptab[np.arange(P), V + np.arange(P)] = 1.0                             # position one-hot
    W_Q, W_K = np.zeros((2, D, d)), np.zeros((2, D, d))
    W_V, W_O = np.zeros((2, D, 1)), np.zeros((2, 1, D))
    for h, (m, out, scale) in enumerate(((m_cur, CUR, 2.0), (m_prev, PREV, 3.0))):
        W_Q[h, V:V + P, :P] = BETA * m                                     # q_t = beta M[p_t, :]
        W_K[h, V:V + P, :P] = np.eye(P)                                    # k_j = e_(p_j)
        W_V[h, VAL, 0] = 1.0
        W_O[h, 0, out] = scale
    W_Q[0, ONE, P] = BETA / 2                                              # cur head: + is the sink
    W_K[0, plus, P] = 1.0
    m = np.repeat(np.arange(2 * N_CLASSES), 3)                             # (F,) hat centre
    r = np.tile([1.0, 0.0, -1.0], 2 * N_CLASSES)                           # (F,) hat offset
    W_in = np.zeros((D, m.size))
    W_in[CUR], W_in[PREV], W_in[VAL] = 2.0, 2.0 / 10, -4.0 / 10            # 2 s'
    b_in = r - 2.0 * m                                                     # relu(2 (s' - m) + r)
    W_out = np.zeros((m.size, D))
    W_out[np.arange(m.size), LOGIT + m % N_CLASSES] = np.tile([1.0, -2.0, 1.0], 2 * N_CLASSES)
    W_U = np.zeros((D, N_CLASSES))
    W_U[LOGIT + np.arange(N_CLASSES), np.arange(N_CLASSES)] = 1.0
    f = lambda a: jnp.asarray(a, jnp.float32)                              # noqa: E731
    return AdderParams(f(W_E), f(Ptab), f(W_Q), f(W_K), f(W_V), f(W_O), f(W_in), f(b_in), f(W_out), f(W_U))


def forward(params: AdderParams, tokens: jax.Array, pos: jax.Array, pad_mask: jax.Array,
            read: jax.Array) -> jax.Array:
    """Logits (M, 10) at the slots `read` (M,) of one sequence: tokens, pos (T,) int, pad_mask (T,).

    Keys and values are linear in x = W_E[token] + P[pos], so they are read from the projected
    tables (W_E W_K)[token] + (P W_K)[pos] (the same numbers as x W_K, without the (T, D) stream);
    the attention output and the MLP are computed at the read rows only (nothing else reaches
    their logits in one block)."""
    T = tokens.shape[0]
    proj = lambda tab, W: jnp.einsum("vd,hde->vhe", tab, W)                   # noqa: E731
    k = proj(params.W_E, params.W_K)[tokens] + proj(params.P, params.W_K)[pos]   # (T, 2, d)
    v = proj(params.W_E, params.W_V)[tokens] + proj(params.P, params.W_V)[pos]   # (T, 2, 1)
    x = params.W_E[tokens[read]] + params.P[pos[read]]                        # (M, D)
    q = jnp.einsum("md,hde->hme", x, params.W_Q)                              # (2, M, d)
    allowed = pad_mask[None, :] & (jnp.arange(T)[None, :] <= read[:, None])  # (M, T) causal
    s = jnp.where(allowed[None], jnp.einsum("hme,the->hmt", q, k), -1e30)     # (2, M, T)
    a = jax.nn.softmax(s, axis=-1)                                            # (2, M, T)
    heads = jnp.einsum("hmt,th->hm", a, v[..., 0])                            # (2, M)
    x = x + jnp.einsum("hm,hd->md", heads, params.W_O[:, 0, :])               # (M, D)
    x = x + jax.nn.relu(x @ params.W_in + params.b_in[None, :]) @ params.W_out   # (M, D)
    return x @ params.W_U                                                     # (M, 10)
