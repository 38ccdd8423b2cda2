"""A small pre-LN transformer (encoder or causal decoder) with a pluggable positional encoding.

Single-example forward pass over token ids (T,), positions (T,) and a padding mask (T,):

    x_0 = sqrt(D) W_E[tokens] + PE(p)                              (T, D)  embedding (Ruoss et al.)
    for each block l:                                              pre-LN
        h = LN(x);  Q_h = h W_Q[h], K_h = h W_K[h], V_h = h W_V[h] (H, T, d)   [rope: rotate Q, K]
        s_hij = Q_hi . K_hj / sqrt(d)  [+ relative or ALiBi bias]  masked where j is padding or,
                                                                   causal, where j > i
        x <- x + sum_h softmax_j(s_h) V_h W_O[h]
        x <- x + W_out^T relu(W_in^T LN(x) + b_in) + b_out         (if d_ff > 0)
    logits = LN(x) W_U + b_U                                       (T, C)

Convention (theory/models/__init__.py): tokens are rows; Q = X W_Q means q_i = W_Q^T x_i, so
s_ij = x_j^T W_K W_Q^T x_i = x_j^T W_KQ x_i per head. The output weight is stored row-wise,
W_O[h] (d, D) with out_i = sum_j a_ij v_j W_O[h], so the OV circuit of head h is
W_PV = W_O[h]^T W_V[h]^T (the convention's W_O is the stored W_O[h]^T). Batch with jax.vmap.

`causal` may be a traced boolean, so an encoder and a decoder can share one compiled sweep.
`pe_gain` (default 1) scales the additive embedding; 0 turns sin/cos into "none" exactly.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from theory.errors import SandboxError
from theory.models import positional
from theory.models.positional import PEConfig


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    vocab: int                   # input token ids 0..vocab-1 (task symbols, answer slot, padding)
    n_classes: int               # output classes per answer slot
    d_model: int = 64            # residual width D
    n_heads: int = 4             # H; head width d = D / H
    n_layers: int = 2            # blocks
    d_ff: int = 128              # MLP width (0 = attention-only)
    pe: PEConfig = PEConfig()    # positional encoding
    init_scale: float = 1.0      # multiplies the 1/sqrt(fan_in) init std

    def validate(self) -> None:
        for name in ("vocab", "n_classes", "d_model", "n_heads", "n_layers"):
            if getattr(self, name) <= 0:
                raise SandboxError(f"{name} must be positive, got {getattr(self, name)}")
        if self.d_ff < 0 or self.init_scale <= 0:
            raise SandboxError(f"d_ff must be >= 0 and init_scale > 0, got {self.d_ff}, {self.init_scale}")
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise SandboxError(f"d_model={self.d_model} must split into {self.n_heads} heads of even width")
        if self.d_model % 2:
            raise SandboxError(f"d_model must be even for sin/cos encodings, got {self.d_model}")
        self.pe.validate()

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads


class Blocks(NamedTuple):
    """Per-block weights stacked over blocks (leading axis n_layers)."""
    ln1_g: jax.Array   # (n, D)
    ln1_b: jax.Array   # (n, D)
    W_Q: jax.Array     # (n, H, D, d)
    W_K: jax.Array     # (n, H, D, d)
    W_V: jax.Array     # (n, H, D, d)
    W_O: jax.Array     # (n, H, d, D)
    W_R: jax.Array     # (n, H, D, d) relative only (else (n, H, 0, d)): sin/cos offset -> head
    u: jax.Array       # (n, H, d) relative only (else zeros): content bias
    v: jax.Array       # (n, H, d) relative only (else zeros): position bias
    ln2_g: jax.Array   # (n, D)
    ln2_b: jax.Array   # (n, D)
    W_in: jax.Array    # (n, D, F)
    b_in: jax.Array    # (n, F)
    W_out: jax.Array   # (n, F, D)
    b_out: jax.Array   # (n, D)


class TransformerParams(NamedTuple):
    W_E: jax.Array     # (V, D) token embedding
    P: jax.Array       # (L, D) learned position table (learned only, else (0, D))
    blocks: Blocks
    lnf_g: jax.Array   # (D,)
    lnf_b: jax.Array   # (D,)
    W_U: jax.Array     # (D, C) unembedding
    b_U: jax.Array     # (C,)


class Acts(NamedTuple):
    residuals: jax.Array  # (n_layers+1, T, D) the residual stream before each block and after the last
    pattern: jax.Array    # (n_layers, H, T, T) attention probabilities


def init(key: jax.Array, cfg: TransformerConfig) -> TransformerParams:
    """Gaussian init with std init_scale / sqrt(fan_in); LayerNorm gains 1, biases 0."""
    D, H, d, F, n, s = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_ff, cfg.n_layers, cfg.init_scale
    ks = jax.random.split(key, 10)

    def normal(k, shape, fan_in):
        return s * jax.random.normal(k, shape) / math.sqrt(max(fan_in, 1))

    rel = cfg.pe.kind == "relative"
    blocks = Blocks(
        ln1_g=jnp.ones((n, D)), ln1_b=jnp.zeros((n, D)),
        W_Q=normal(ks[0], (n, H, D, d), D), W_K=normal(ks[1], (n, H, D, d), D),
        W_V=normal(ks[2], (n, H, D, d), D), W_O=normal(ks[3], (n, H, d, D), D),
        W_R=normal(ks[4], (n, H, D if rel else 0, d), D),
        u=jnp.zeros((n, H, d)), v=jnp.zeros((n, H, d)),
        ln2_g=jnp.ones((n, D)), ln2_b=jnp.zeros((n, D)),
        W_in=normal(ks[5], (n, D, F), D), b_in=jnp.zeros((n, F)),
        W_out=normal(ks[6], (n, F, D), F), b_out=jnp.zeros((n, D)))
    P = 0.02 * jax.random.normal(ks[7], (cfg.pe.max_len if cfg.pe.kind == "learned" else 0, D))
    return TransformerParams(
        W_E=normal(ks[8], (cfg.vocab, D), D), P=P, blocks=blocks,
        lnf_g=jnp.ones(D), lnf_b=jnp.zeros(D),
        W_U=normal(ks[9], (D, cfg.n_classes), D), b_U=jnp.zeros(cfg.n_classes))


def layer_norm(x: jax.Array, g: jax.Array, b: jax.Array, eps: float = 1e-5) -> jax.Array:
    """(x - mean) / sqrt(var + eps) * g + b over the last axis of x (T, D)."""
    return standardize(x, eps) * g[None, :] + b[None, :]


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def standardize(x: jax.Array, eps: float = 1e-5) -> jax.Array:
    """x_hat = (x - mu) / s, s = sqrt(var + eps), mean and (population) variance over the last axis.

    Its gradient is written out (custom VJP): with g = dL/dx_hat,
        dL/dx = (g - mean(g) - x_hat * mean(g * x_hat)) / s.
    Autodiff of the forward formula gives the same numbers (to rounding) but a graph of many small
    elementwise passes that XLA's CPU fusion duplicates across layers (the residual-stream
    gradient recomputed in every fusion that reads it); written out, the training step of
    length_generalization's 2-layer encoder ran about 2x faster on CPU."""
    return _standardize_fwd(x, eps)[0]


def _standardize_fwd(x, eps):
    mu = jnp.mean(x, axis=-1, keepdims=True)                       # (T, 1)
    var = jnp.mean((x - mu) ** 2, axis=-1, keepdims=True)          # (T, 1)
    s = jnp.sqrt(var + eps)                                        # (T, 1)
    x_hat = (x - mu) / s                                           # (T, D)
    return x_hat, (x_hat, s)


def _standardize_bwd(eps, res, g):
    x_hat, s = res
    mean_g = jnp.mean(g, axis=-1, keepdims=True)                   # (T, 1)
    mean_gx = jnp.mean(g * x_hat, axis=-1, keepdims=True)          # (T, 1)
    return ((g - mean_g - x_hat * mean_gx) / s,)


standardize.defvjp(_standardize_fwd, _standardize_bwd)


def attention_mask(pad_mask: jax.Array, causal: jax.Array | bool) -> jax.Array:
    """allowed_ij = key j is a real token and (not causal or j <= i); (T, T) bool."""
    T = pad_mask.shape[0]
    lower = jnp.arange(T)[None, :] <= jnp.arange(T)[:, None]       # (T, T) j <= i
    return pad_mask[None, :] & (lower | jnp.logical_not(jnp.asarray(causal)))


def forward(params: TransformerParams, tokens: jax.Array, pos: jax.Array, pad_mask: jax.Array,
            cfg: TransformerConfig, causal: jax.Array | bool = False,
            pe_gain: jax.Array | float = 1.0, read: jax.Array | None = None) -> tuple[jax.Array, Acts | None]:
    """Logits (T, C) and Acts for one sequence: tokens (T,) int, pos (T,) int, pad_mask (T,) bool.

    With `read` (M,) int (the slots whose logits are wanted) the result is the logits of those
    slots, (M, C), the same numbers to float rounding, and no Acts: the last block computes its
    attention output and MLP at the read rows only (no other row of the last block reaches their
    logits; its keys and values still come from every row), about half of its cost when M << T."""
    pe, D, H, T = cfg.pe, cfg.d_model, cfg.n_heads, tokens.shape[0]
    # the lookup W_E[tokens] as a one-hot product: the same numbers (one nonzero term per row),
    # and its gradient is a small matmul instead of a scatter-add (slow on CPU)
    onehot = jax.nn.one_hot(tokens, params.W_E.shape[0], dtype=params.W_E.dtype)   # (T, V)
    x = (onehot @ params.W_E) * math.sqrt(D)                       # (T, D)
    x = x + pe_gain * positional.additive(pe, params.P, pos, D)    # (T, D)
    allowed = attention_mask(pad_mask, causal)                     # (T, T)
    residuals, patterns = [x], []
    for l in range(cfg.n_layers):
        b = jax.tree_util.tree_map(lambda w, l=l: w[l], params.blocks)
        rows = read is not None and l == cfg.n_layers - 1          # the last block at the read rows only
        h = layer_norm(x, b.ln1_g, b.ln1_b)                        # (T, D)
        q = jnp.einsum("td,hde->hte", h, b.W_Q)                    # (H, T, d)
        k = jnp.einsum("td,hde->hte", h, b.W_K)                    # (H, T, d)
        v = jnp.einsum("td,hde->hte", h, b.W_V)                    # (H, T, d)
        if pe.kind == "rope":
            q, k = positional.rope(q, pos, pe.max_time), positional.rope(k, pos, pe.max_time)
        if rows:
            R = jax.nn.one_hot(read, T, dtype=x.dtype)             # (M, T) exact row selector
            x = R @ x                                              # (M, D) the read rows' residuals
            mask = (R @ allowed.astype(x.dtype)) > 0.5             # (M, T)
            if pe.kind not in ("relative", "alibi"):               # biases need every query row first
                q = jnp.einsum("mt,htd->hmd", R, q)                # (H, M, d)
        else:
            mask = allowed                                         # (T, T)
        s = jnp.einsum("hid,hjd->hij", q, k) / math.sqrt(cfg.d_head)   # (H, T or M, T)
        if pe.kind == "relative":
            s = s + positional.relative_bias(q, k, pos, b.W_R, b.u, b.v, pe.max_time) / math.sqrt(cfg.d_head)
        elif pe.kind == "alibi":
            s = s + positional.alibi_bias(pos, H, causal)
        if rows and pe.kind in ("relative", "alibi"):
            s = jnp.einsum("mi,hij->hmj", R, s)                    # (H, M, T)
        s = jnp.where(mask[None], s, -1e30)                        # (H, T or M, T)
        a = jax.nn.softmax(s, axis=-1)                             # (H, T or M, T)
        x = x + jnp.einsum("hij,hjd,hde->ie", a, v, b.W_O)         # (T or M, D)
        if cfg.d_ff > 0:
            h = layer_norm(x, b.ln2_g, b.ln2_b)                    # (T or M, D)
            x = x + jax.nn.relu(h @ b.W_in + b.b_in[None, :]) @ b.W_out + b.b_out[None, :]  # (T or M, D)
        residuals.append(x)
        patterns.append(a)
    logits = layer_norm(x, params.lnf_g, params.lnf_b) @ params.W_U + params.b_U[None, :]  # (T or M, C)
    return logits, (None if read is not None else Acts(jnp.stack(residuals), jnp.stack(patterns)))
