"""Part `compounding`: errors compound multiplicatively along a computation (Dziri et al. 2023).

Task (theory/tasks/chains.py): the chained sum s_0 = a, s_i = (s_{i-1} + x_i) mod 10, i = 1..k,
then the answer y = s_k, written as a scratchpad interleaved with the inputs,
[a, x_1, S(s_1), .., x_k, S(s_k), EQ, S(y)]; a computation graph of exactly k addition steps and a
copy. A causal decoder (theory/models/transformer.py as is: d = 64, 4 heads, 2 layers, MLP 128,
ALiBi) is trained with Adam on chains of k = 1..train_k (k uniform per sequence, padded to
train_k), the loss the mean cross-entropy over the k + 1 outputs (scratchpad and answer), and
tested on `chain_test_size` fresh chains at every k = 1..test_k:

    eps_{k,i}  teacher-forced error of output i (the true prefix given), i = 1..k+1
    A_k        free-running exact match: greedy decoding, each output written back as the input of
               the next step (one jitted program: lax.scan over the outputs, with a key/value cache
               `decode`), every output (scratchpad and answer) right

Positions. ALiBi (Press et al. 2022, "Train short, test long"): a score bias -m_h |i - j| with no
position embedding, so a head reads its recent neighbours the same way at every length; each step
reads the two slots before it (theory/tasks/chains.py), so a chain of 16 is 16 steps of the
computation trained on, not an unseen position. (A learned or sin/cos table would be untrained
beyond 2 train_k + 3 slots; RoPE makes the near offsets length-independent as well but leaves the
far, never-trained offsets in every softmax.)

Prediction (theory/predictions/error_compounding.py; a modelling hypothesis conditional on the
measured eps, not a theorem): if the k + 1 outputs fail independently, A_k = prod_i (1 - eps_{k,i}).
With greedy decoding a chain is right free-running iff every teacher-forced step is right (the
prefixes agree until the first error), so the comparison tests exactly whether the step failures
of a chain are independent: positively correlated failures (hard chains) give A_k > A_hat_k.

    judge   |A_k - A_hat_k| <= 3 sqrt(A_k (1 - A_k) / n) + 3 se(A_hat_k) at every k with A_k > 5%
            (`predicted`, conditional on eps); ln A_k against k beyond the training range linear,
            R^2 > 0.9, with the sign of its curvature reported (convex: errors cluster; concave:
            off-distribution collapse) (`expected`); A_{train_k} >= 0.8 (the model learned the
            task: `expected`); free-running exact match = the rate of chains with every
            teacher-forced step right (`sanity`: greedy decoding)
    report  error types of the free-running outputs as faith-and-fate classifies them (local,
            propagated, restored), answer-only accuracy, the graph sizes, depths, parallelism
"""
from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from theory.engine.keys import Keys, data_key
from theory.engine.sweep import sweep
from theory.engine.train import OptimizerConfig, Trace, make_optimizer, raise_if_diverged, train
from theory.harness.parts import Part
from theory.harness.results import Check, at_least, at_most
from theory.models import positional, transformer
from theory.predictions import error_compounding as pred
from theory.tasks import chains

D_MODEL, N_HEADS, N_LAYERS, D_FF = 64, 4, 2, 128   # the decoder
PE = "alibi"
BATCH = 64                     # chains per training step
LR = 1e-3                      # Adam, constant, global-norm clip CLIP
CLIP = 1.0
EVAL_CHUNK = 500               # test chains per vmapped block (lax.map)
MIN_ACC = 0.05                 # A_k above which the independence comparison is made (the 5%)
Z = 3.0                        # standard errors of the comparison
R2_MIN = 0.9                   # ln A_k linear beyond the training range
TRAINED_MIN = 0.8              # A_{train_k}: the model learned the task (reference runs: >= 0.95)
DECODE_TOL = 1e-3              # free-running vs all-teacher-forced-right: an argmax flipped by rounding
WHY_IND = ("Dziri et al. 2023 (arXiv 2305.18654), abstract: accuracy decays with the depth of the computation "
           "graph; the product form is our modelling hypothesis (theory/predictions/error_compounding.py, "
           "proofs/error_compounding.py)")


@dataclasses.dataclass(frozen=True)
class ChainSpec:
    """The static description of one sweep of decoders (hashable: the sweep's compile cache key)."""
    model: transformer.TransformerConfig
    train_k: int
    test_k: int
    steps: int
    test_size: int
    log_every: int


def model_config() -> transformer.TransformerConfig:
    return transformer.TransformerConfig(vocab=chains.VOCAB, n_classes=chains.BASE, d_model=D_MODEL,
                                         n_heads=N_HEADS, n_layers=N_LAYERS, d_ff=D_FF,
                                         pe=positional.PEConfig(kind=PE))


def spec_for(cfg) -> ChainSpec:
    return ChainSpec(model_config(), cfg.train_k, cfg.test_k, cfg.chain_steps, cfg.chain_test_size,
                     math.gcd(cfg.chain_steps, 100))


# --- training -----------------------------------------------------------------------------------
def output_logits(params, lay: chains.Layout, mcfg) -> jax.Array:
    """Teacher-forced logits of the K + 1 outputs (K + 1, C): the true prefix at every read slot."""
    pos = jnp.arange(lay.tokens.shape[0], dtype=jnp.int32)                     # (T,)
    return transformer.forward(params, lay.tokens, pos, lay.pad_mask, mcfg, True, read=lay.read)[0]


def sample_batch(k_step, *, spec: ChainSpec) -> chains.Layout:
    """BATCH chains, each of its own length k ~ U{1..train_k}, padded to train_k (leaves (B, ...))."""
    k_len, k_chain = jax.random.split(data_key(k_step))
    ks = jax.random.randint(k_len, (BATCH,), 1, spec.train_k + 1)                # (B,)
    c = jax.vmap(lambda kk, n: chains.sample(kk, n, spec.train_k))(jax.random.split(k_chain, BATCH), ks)
    return jax.vmap(chains.layout)(c)


def batch_loss(params, lay: chains.Layout, *, spec: ChainSpec) -> jax.Array:
    """Mean cross-entropy over the batch's real outputs (scratchpad digits and answers)."""
    logits = jax.vmap(output_logits, (None, 0, None))(params, lay, spec.model)    # (B, K+1, C)
    logp = jax.nn.log_softmax(logits, axis=-1)                                     # (B, K+1, C)
    nll = -jnp.sum(logp * jax.nn.one_hot(lay.out, chains.BASE, dtype=logp.dtype), axis=-1)   # (B, K+1)
    w = lay.out_mask.astype(nll.dtype)                                             # (B, K+1)
    return jnp.sum(nll * w) / jnp.sum(w)


# --- free-running decoding ----------------------------------------------------------------------
def decode(params, lay: chains.Layout, mcfg) -> tuple[jax.Array, jax.Array]:
    """Greedy free-running decoding of one chain: (outputs (K + 1,), their logits (K + 1, C)).

    Step j = 0..K feeds slots 2j (the output written at step j - 1; a at j = 0) and 2j + 1 (x_{j+1},
    or EQ before the answer) through the blocks, keeping every block's keys and values in a cache
    (n_layers, H, T, d), reads the logits at slot 2j + 1 = read_{j+1} and writes the argmax as
    token S(.) at slot 2j + 2. Each row is the computation of transformer.forward restricted to
    it (pre-LN block, causal mask, ALiBi / RoPE / additive positions), so the logits equal
    forward's on the decoded sequence (tests/test_error_compounding.py); 2 rows per step instead
    of T."""
    if mcfg.pe.kind == "relative":
        raise ValueError("decode supports every positional encoding but 'relative'")
    T, D, H, d = lay.tokens.shape[0], mcfg.d_model, mcfg.n_heads, mcfg.d_head
    K = (T - 3) // 2
    pos = jnp.arange(T, dtype=jnp.int32)                                           # (T,)
    alibi = positional.alibi_bias(pos, H, True) if mcfg.pe.kind == "alibi" else None   # (H, T, T)
    cache = jnp.zeros((mcfg.n_layers, H, T, d))                                    # (n, H, T, d)

    def step(carry, j):
        tokens, Kc, Vc = carry
        rows = 2 * j + jnp.arange(2, dtype=jnp.int32)                              # (2,)
        tok = jax.lax.dynamic_slice(tokens, (2 * j,), (2,))                        # (2,)
        onehot = jax.nn.one_hot(tok, params.W_E.shape[0], dtype=params.W_E.dtype)  # (2, V)
        x = (onehot @ params.W_E) * math.sqrt(D) + positional.additive(mcfg.pe, params.P, rows, D)  # (2, D)
        allowed = (pos[None, :] <= rows[:, None]) & lay.pad_mask[None, :]         # (2, T)
        for l in range(mcfg.n_layers):
            b = jax.tree_util.tree_map(lambda w, l=l: w[l], params.blocks)
            h = transformer.layer_norm(x, b.ln1_g, b.ln1_b)                        # (2, D)
            q = jnp.einsum("td,hde->hte", h, b.W_Q)                                # (H, 2, d)
            k = jnp.einsum("td,hde->hte", h, b.W_K)                                # (H, 2, d)
            v = jnp.einsum("td,hde->hte", h, b.W_V)                                # (H, 2, d)
            if mcfg.pe.kind == "rope":
                q = positional.rope(q, rows, mcfg.pe.max_time)
                k = positional.rope(k, rows, mcfg.pe.max_time)
            Kc = jax.lax.dynamic_update_slice(Kc, k[None], (l, 0, 2 * j, 0))       # (n, H, T, d)
            Vc = jax.lax.dynamic_update_slice(Vc, v[None], (l, 0, 2 * j, 0))       # (n, H, T, d)
            s = jnp.einsum("hid,hjd->hij", q, Kc[l]) / math.sqrt(d)                # (H, 2, T)
            if alibi is not None:
                s = s + jax.lax.dynamic_slice(alibi, (0, 2 * j, 0), (H, 2, T))     # (H, 2, T)
            s = jnp.where(allowed[None], s, -1e30)                                 # (H, 2, T)
            a = jax.nn.softmax(s, axis=-1)                                         # (H, 2, T)
            x = x + jnp.einsum("hij,hjd,hde->ie", a, Vc[l], b.W_O)                 # (2, D)
            if mcfg.d_ff > 0:
                h = transformer.layer_norm(x, b.ln2_g, b.ln2_b)                    # (2, D)
                x = x + jax.nn.relu(h @ b.W_in + b.b_in[None, :]) @ b.W_out + b.b_out[None, :]  # (2, D)
        logits = (transformer.layer_norm(x[1:], params.lnf_g, params.lnf_b) @ params.W_U
                  + params.b_U[None, :])[0]                                        # (C,) at slot 2j + 1
        out = jnp.argmax(logits).astype(jnp.int32)
        tokens = tokens.at[jnp.minimum(2 * j + 2, T - 1)].set(chains.SUM + out)
        return (tokens, Kc, Vc), (out, logits)

    _, (outs, logits) = jax.lax.scan(step, (lay.tokens, cache, cache), jnp.arange(K + 1))
    return outs, logits                                                            # (K+1,), (K+1, C)


# --- one run --------------------------------------------------------------------------------------
def evaluate(params, k_eval, *, spec: ChainSpec) -> dict:
    """Every test length k = 1..test_k, `test_size` chains each padded to K = test_k: the inputs,
    teacher-forced and free-running outputs (leaves (test_k, n, ...))."""
    K, mcfg = spec.test_k, spec.model

    def one(key, k):
        c = chains.sample(key, k, K)
        lay = chains.layout(c)
        tf = jnp.argmax(output_logits(params, lay, mcfg), axis=-1).astype(jnp.int32)   # (K+1,)
        free, _ = decode(params, lay, mcfg)                                        # (K+1,)
        return {"a": c.a, "x": c.x, "true": lay.out, "tf": tf, "free": free}

    def at_length(k):
        keys = jax.random.split(data_key(jax.random.fold_in(k_eval, k)), spec.test_size)
        return jax.lax.map(lambda kk: one(kk, k), keys, batch_size=min(EVAL_CHUNK, spec.test_size))

    return jax.lax.map(at_length, jnp.arange(1, K + 1, dtype=jnp.int32))


def run(key, *, spec: ChainSpec, run_id=0, progress=None):
    """Train one decoder from `key` (k_init, k_data, k_eval = split(key, 3)) and test it:
    (evaluate's dict, loss trace, first bad step)."""
    k_init, k_data, k_eval = jax.random.split(key, 3)
    opt = make_optimizer(OptimizerConfig("adam", clip=CLIP), LR, spec.steps)
    params, trace = train(k_data, transformer.init(k_init, spec.model),
                          functools.partial(batch_loss, spec=spec), functools.partial(sample_batch, spec=spec),
                          opt, steps=spec.steps, log_every=spec.log_every, progress=progress, run_id=run_id)
    return evaluate(params, k_eval, spec=spec), trace.loss, trace.first_bad_step


# --- the part -------------------------------------------------------------------------------------
def lengths(cfg) -> list[int]:
    return list(range(1, cfg.test_k + 1))


def predict(cfg) -> dict:
    """The computation graphs (theory/tasks/chains.py) of every test length; no training."""
    m = [chains.metrics(k) for k in lengths(cfg)]
    return {"k": lengths(cfg), "train_k": cfg.train_k, "n": cfg.chain_test_size,
            "size": [g["size"] for g in m], "depth": [g["depth"] for g in m],
            "parallelism": [g["parallelism"] for g in m],
            "model": {"d_model": D_MODEL, "n_heads": N_HEADS, "n_layers": N_LAYERS, "d_ff": D_FF, "pe": PE,
                      "batch": BATCH, "lr": LR}}


def summarize(ev: dict, K: int) -> dict:
    """Host-side rates of one run's evaluation (leaves (K, n, ...)): eps (K, K + 1) zero beyond
    output k + 1, A, the all-teacher-forced-right rate, answer accuracy, error-type counts (K, 4)."""
    eps, A, tf_all, answer, types = np.zeros((K, K + 1)), [], [], [], []
    for i, k in enumerate(range(1, K + 1)):
        true, tf, free = (np.asarray(ev[name][i])[:, :k + 1] for name in ("true", "tf", "free"))   # (n, k+1)
        eps[i, :k + 1] = (tf != true).mean(axis=0)
        A.append(float((free == true).all(axis=1).mean()))
        tf_all.append(float((tf == true).all(axis=1).mean()))
        answer.append(float((free[:, k] == true[:, k]).mean()))
        labels = chains.classify(np.asarray(ev["a"][i]), np.asarray(ev["x"][i]), free, k)   # (n, k+1)
        types.append([int((labels == t).sum()) for t in range(len(chains.TYPES))])
    return {"eps": eps, "A": A, "tf_all": tf_all, "answer": answer, "types": types}


def measure(cfg, keys: Keys, progress: str | None) -> dict:
    spec = spec_for(cfg)
    run_keys = keys.sub("decoder").runs(cfg.chain_seeds)                          # (R, 2)
    ev, loss, bad = sweep(functools.partial(run, spec=spec, progress=progress), run_keys, shard=False)
    raise_if_diverged(Trace(None, loss, None, bad), "composition/compounding", {"lr": LR})
    runs = [summarize(jax.tree_util.tree_map(lambda a, r=r: np.asarray(a)[r], ev), cfg.test_k)
            for r in range(cfg.chain_seeds)]
    out = {key: [r[key] for r in runs] for key in runs[0]}
    n = cfg.chain_test_size
    out["A_hat"] = [[pred.chain_success(e[:k + 1]) for k, e in enumerate(r["eps"], start=1)] for r in runs]
    out["A_hat_se"] = [[pred.chain_success_se(e[:k + 1], n) for k, e in enumerate(r["eps"], start=1)]
                       for r in runs]
    return {"k": lengths(cfg), "n": n, "types_order": list(chains.TYPES), "loss": loss,
            "steps": cfg.chain_steps, **out}


def comparisons(P: dict, M: dict) -> list[dict]:
    """Every (run, k) with A_k > MIN_ACC: A, A_hat (from M's eps), the tolerance and |A - A_hat| / tol."""
    n, rows = int(M["n"]), []
    for r, (A_r, eps_r) in enumerate(zip(M["A"], M["eps"])):
        for k, A, e in zip(M["k"], A_r, eps_r):
            if A > MIN_ACC:
                eps = np.asarray(e, float)[:k + 1]
                A_hat, tol = pred.chain_success(eps), pred.tolerance(A, eps, n, Z)
                rows.append({"run": r, "k": k, "A": A, "A_hat": A_hat, "tol": tol,
                             "ratio": abs(A - A_hat) / tol if tol > 0 else (0.0 if A == A_hat else math.inf)})
    return rows


def log_fit(P: dict, M: dict) -> list[dict]:
    """Per run: R^2 and curvature of ln A_k over k > train_k with A_k > MIN_ACC (None if < 3 points)."""
    fits = []
    for A_r in M["A"]:
        ks = [k for k, A in zip(M["k"], A_r) if k > P["train_k"] and A > MIN_ACC]
        As = [A_r[k - 1] for k in ks]
        fits.append({"k": ks, "r2": pred.log_linear_r2(ks, As) if len(ks) >= 3 else None,
                     "curvature": pred.log_curvature(ks, As) if len(ks) >= 3 else None})
    return fits


def judge(cfg, P: dict, M: dict) -> list[Check]:
    rows = comparisons(P, M)
    worst = max(rows, key=lambda c: c["ratio"]) if rows else None
    fits = log_fit(P, M)
    r2 = min((f["r2"] if f["r2"] is not None else -math.inf) for f in fits)
    curv = [f["curvature"] for f in fits]
    shape = ", ".join("n/a" if c is None else ("convex" if c > 0 else "concave") for c in curv)
    train_acc = min(A_r[P["train_k"] - 1] for A_r in M["A"])
    decode_gap = max(abs(a - b) for A_r, T_r in zip(M["A"], M["tf_all"]) for a, b in zip(A_r, T_r))
    where = (f"worst at k = {worst['k']} (run {worst['run']}): A = {worst['A']:.3f}, "
             f"A_hat = {worst['A_hat']:.3f}" if worst else "no k with A_k > 5%")
    return [
        at_most("compounding_independence",
                f"Free-running exact match A_k equals prod_i (1 - eps_i) of the teacher-forced step errors "
                f"(conditional on the measured eps) within 3 binomial s.e. + 3 s.e.(A_hat), at all "
                f"{len(rows)} (run, k) with A_k > 5%; |A - A_hat| / tolerance, {where}.",
                "predicted", 1.0, worst["ratio"] if worst else math.inf,
                f"{WHY_IND}; a modelling hypothesis, not a theorem: tolerance = 3 s.e. of A_k (binomial, "
                f"n = {M['n']}) + 3 s.e. of A_hat (delta method)"),
        at_least("compounding_log_linear",
                 f"ln A_k is linear in k beyond the training range (k > {P['train_k']}, A_k > 5%): "
                 f"min R^2 over runs; curvature per run: {shape}.",
                 "expected", R2_MIN, r2,
                 f"{WHY_IND}: a constant per-step error makes ln A_k = k ln(1 - eps) + c; R^2 > {R2_MIN} "
                 f"is the issue's threshold; convex = errors cluster, concave = off-distribution collapse"),
        at_least("compounding_trained",
                 f"The decoder learned the task: free-running exact match at k = train_k = {P['train_k']} "
                 f"(min over runs) is at least {TRAINED_MIN}.",
                 "expected", TRAINED_MIN, train_acc,
                 "reference runs of this part (A_{train_k} >= 0.95 after 1000 steps); without it the "
                 "comparison would be vacuous (no k with A_k > 5%)"),
        at_most("compounding_decode_consistent",
                "Free-running exact match equals the rate of chains whose every teacher-forced step is right "
                "(greedy decoding: the prefixes agree until the first error); max |difference| over k and runs.",
                "sanity", DECODE_TOL, decode_gap,
                "experiments/composition/parts/compounding.py (decode): the same argmax on the same prefix; "
                f"{DECODE_TOL} allows a near-tie flipped by float32 rounding"),
    ]


# --- figure ---------------------------------------------------------------------------------------
def plot_compounding(ax, data: dict) -> None:
    """Exact match against k (log scale) from a result's data alone (`data` =
    result["data"]["compounding"]): measured A_k (mean over runs; each run faint when there are
    several), A_hat_k = prod (1 - eps_i) from the teacher-forced step errors with the judge's band
    (3 binomial s.e. + 3 s.e.(A_hat), first run), the 5% line below which nothing is compared, and
    the training range shaded."""
    P, M = data["predicted"], data["measured"]
    k, n = np.asarray(M["k"]), int(M["n"])
    A, A_hat = np.asarray(M["A"], float), np.asarray(M["A_hat"], float)            # (R, K)
    floor = 0.5 / n                                                                # 0 drawn at half a chain
    eps0 = [np.asarray(e, float)[:kk + 1] for kk, e in zip(k, M["eps"][0])]
    tol = np.array([pred.tolerance(a, e, n, Z) for a, e in zip(A[0], eps0)])       # (K,)
    ax.axvspan(0.5, P["train_k"] + 0.5, color="0.92", label=f"training range k <= {P['train_k']}")
    ax.fill_between(k, np.maximum(A_hat[0] - tol, floor), np.minimum(A_hat[0] + tol, 1.0), color="C3",
                    alpha=0.15, lw=0, label="judge's band (3 s.e. + 3 s.e.)")
    for a in A if A.shape[0] > 1 else ():
        ax.plot(k, np.maximum(a, floor), color="C0", alpha=0.3, lw=0.8)
    ax.plot(k, np.maximum(A.mean(0), floor), "o-", color="C0", ms=4, label="free-running exact match $A_k$")
    ax.plot(k, np.maximum(A_hat.mean(0), floor), "s--", color="C3", mfc="none", ms=5,
            label=r"$\hat A_k = \prod_i (1 - \epsilon_i)$, teacher-forced $\epsilon_i$")
    lo = max(floor, 0.7 * float(min(A.min(), A_hat.min())))
    if lo < MIN_ACC:
        ax.axhline(MIN_ACC, color="0.5", lw=0.6, ls=":")
    ax.set_yscale("log")
    ax.set_ylim(lo, 1.1)
    ax.set_xlabel("chain length k (addition steps)")
    ax.set_ylabel("exact match (log scale)")
    ax.set_title("Errors compound along the chain")
    ax.legend(fontsize=7, loc="lower left")


def report_markdown(data: dict) -> str:
    """A Markdown table of Part 3 from a result's data alone (first run): per k the graph, A_k,
    A_hat_k, the judge's band, answer-only accuracy, and the error types of the free-running nodes."""
    P, M = data["predicted"], data["measured"]
    n, order = int(M["n"]), M["types_order"]
    lines = ["| k | graph size / depth / parallelism | A_k | A_hat_k | band | answer acc. | output nodes: "
             + " / ".join(order) + " |", "|---|---|---|---|---|---|---|"]
    for i, k in enumerate(M["k"]):
        A, eps = M["A"][0][i], np.asarray(M["eps"][0][i], float)[:k + 1]
        lines.append(f"| {k}{' (trained)' if k <= P['train_k'] else ''} | {P['size'][i]} / {P['depth'][i]} / "
                     f"{P['parallelism'][i]:.2f} | {A:.3f} | {pred.chain_success(eps):.3f} | "
                     f"{pred.tolerance(A, eps, n, Z):.3f} | {M['answer'][0][i]:.3f} | "
                     + " / ".join(str(c) for c in M["types"][0][i]) + " |")
    return "\n".join(lines)


PART = Part("compounding", predict, measure, judge)
