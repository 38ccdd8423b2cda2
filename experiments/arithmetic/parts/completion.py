"""Part `completion`: the sample count at which 2-digit addition is learned is a matrix-completion threshold.

Lee et al. 2024 ("Teaching Arithmetic to Small Transformers", ICLR 2024; abstract: the sample-count phase
transitions "can be explained through connections to low-rank matrix completion") read a training set of
N sums a + b, a, b in 0..n-1 (n = n_table = 100), as N revealed cells of the rank-2 table M_ab = a + b.

Prediction (theory/predictions/matrix_completion.py, no training). N uniform cells determine the table iff
their row-column graph is connected; P0 - B <= P(identifiable) <= P0 at finite n, and
P ~ exp(-2 e^(-c)) at N = n (ln n + c), N_50 ~ n (ln n + ln(2 / ln 2)).

Monte Carlo (measure). `completion_trials` uniform reveal orders per table size (n_table and
completion_n_small) from the stream completion/monte_carlo/<n>: each trial draws i.i.d. uniform cells and
keeps first occurrences (a uniformly random order of distinct cells, so its first N cells are a uniform
N-subset, nested in N). The N at which a trial's graph becomes connected is the largest rank on its minimum
spanning tree (ranks as weights; scipy.sparse.csgraph on all trials as one block-diagonal graph), so one
spanning-tree pass gives the whole curve P(N) = fraction of trials connected by N. The first
trials // ADJ_SHARE trials also run Lee et al.'s adjacent-window completion (matrix_completion/
iterative_mc_method.ipynb, `iterative_2_by_2_solver`) on the same cells, as bitsets (32 table columns per
word), N increasing, each closure continuing from the previous one (the closure is monotone).

Trained (measure). A causal decoder (theory/models/transformer.py: 2 layers, d 64, 4 heads, d_ff D_FF,
learned positions) on character tokens, zero-padded operands and a 3-digit answer:

    a1 a0 + b1 b0 = y0 y1 | y2       tokens 0-9, PLUS, EQ; the answer y = (s0, s1, s2), s = a + b,
                                     least significant digit first ("reversed", as Lee et al.), or
                                     (s2, s1, s0) ("plain"); slots 5, 6, 7 predict y0, y1, y2

Run r (key k_r -> k_perm, k_init, k_data): a uniform order of the n^2 cells; the revealed set is its first N
(nested in N for one seed; with `hold` every cell of row a = HOLD_ROW is moved behind the others, so it is
never revealed while N <= n^2 - n). AdamW steps on batches of BATCH uniform draws from the first N cells
(the set is padded to n^2 and masked by N: every run of the sweep has one shape). Exact match
(all three answer digits right under teacher forcing, which equals greedy decoding's exact match) is
evaluated on every cell; `held` is its mean over the unrevealed cells. All N, seeds, the falsifier runs
(hold, at N = max(reveal_counts)) and the plain-format runs (at PLAIN_AT) are one vmapped sweep.

Checks:
    completion_mc_band_<n>     (predicted) max over the N with 0.1 < P0 < 0.9 of the MC value's distance
                               outside [P0 - B, P0], in binomial s.d. of the predicted P: <= 3
    completion_mc_n50          (predicted) MC 50% point at n_table within N50_TOL of n (ln n + ln(2/ln 2))
    completion_adjacent_subset (sanity)    every trial the adjacent-window rule completes is connected
    completion_trained_threshold_low/high (expected) first N (mean over seeds) with held-out exact match
                               > 0.5 in [0.8 N_50, 1.25 ADJ_REF]
    completion_trained_large_n (expected)  min held-out exact match over seeds at N >= LARGE_N: >= 0.95
Reported, not judged: the adjacent-window curve and 50% point, the row-HOLD_ROW falsifier ("mechanism
differs from completion" when that row is still added, >= FALSIFIER_ACC), plain vs reversed at equal N.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import minimum_spanning_tree

from theory.engine.keys import Keys, data_key
from theory.engine.sweep import sweep
from theory.engine.train import OptimizerConfig, Trace, make_optimizer, raise_if_diverged, train
from theory.harness.parts import Part
from theory.harness.results import Check, at_least, at_most, close, holds
from theory.models import transformer
from theory.models.positional import PEConfig
from theory.predictions import matrix_completion as mc

# --- Monte Carlo ---
BAND_SD = 3.0            # binomial s.d. allowed outside the finite-n band [P0 - B, P0]
CHECK_RANGE = (0.1, 0.9)  # the N whose predicted P0 lies here are checked (the binomial s.d. is not tiny)
N50_TOL = 0.05           # MC 50% point vs the asymptotic N_50: finite-n offset ~3% at n = 100 (P0 crosses
                         # 1/2 near 550, research table) plus MC s.e. of the crossing (~0.5%)
CURVE_POINTS = 13        # grid of the identifiability curve (matrix_completion.curve_grid)
ADJ_SHARE = 10           # the adjacent-window rule runs on trials // ADJ_SHARE of the trials
ADJ_POINTS = 13          # its grid: N_50 .. ADJ_SPAN * N_50
ADJ_SPAN = 3.5
CHUNK = 500              # trials per Monte Carlo chunk (memory: chunk x n^2 ranks)
# --- trained decoder ---
PLUS, EQ = 10, 11
VOCAB, CLASSES, T_SEQ = 12, 10, 8
READ = (5, 6, 7)          # the slots whose logits predict y0, y1, y2
D_FF = 256
BATCH = 128
LR = 3e-3                 # Lee et al. (lee-ny/teaching_arithmetic, config2/addition/*) train NanoGPT with AdamW
WEIGHT_DECAY = 0.1        # at lr 1e-3, beta2 0.99, 100 warm-up iterations, 5000 iterations at batch 256; this
B2 = 0.99                 # 2-layer model at 1000 steps: lr 1e-3 gave held-out 0.20 / 0.67 / 0.90 at N = 800 /
WARMUP = 100              # 1600 / 2500, lr 3e-3 gave 0.43 / 0.96 / 0.999 (one seed each, batch 128)
EVAL_CHUNKS = 20        # evaluation in chunks of n^2 / 20 sequences per run (memory of the vmapped runs)
HOLD_ROW = 37
FALSIFIER_ACC = 0.9
PLAIN_AT = (1200, 5000)   # N of the plain-format contrast (those in reveal_counts: the full grid)
LARGE_N = 2500
LARGE_ACC = 0.95
THRESH_LEVEL = 0.5
LOW_FACTOR, HIGH_FACTOR = 0.8, 1.25
ADJ_REF = 1400.0          # the adjacent-window rule's 50% point at n = 100 (reference MC, 40-2000 trials)
LEE = ("Lee et al. 2024 (ICLR; abstract, low-rank matrix completion) and lee-ny/teaching_arithmetic, "
       "matrix_completion/iterative_mc_method.ipynb")
# Lee et al.'s 3-digit sample-efficiency numbers as reported (repository plots/sample_efficiency.csv), test
# exact match in %: reported beside the plain/reversed contrast, not judged (another task size)
LEE_REPORTED = {"samples": [2000, 4000], "reversed": [30.6, 98.2], "plain": [1.74, 62.3]}


# ----------------------------------------------------------------------------------- Monte Carlo
def draws_needed(n: int, cap: int) -> int:
    """i.i.d. cell draws that hold >= cap distinct cells but with a negligible probability: the number
    needed is a sum of geometric waits (coupon collector) with success rates k / n^2, k = n^2 .. n^2-cap+1;
    its mean plus 12 s.d. plus 64 (Chebyshev-free: each wait has an exponential tail)."""
    p = np.arange(n * n - cap + 1, n * n + 1) / (n * n)                 # (cap,) success rates
    mean, var = float(np.sum(1 / p)), float(np.sum((1 - p) / p ** 2))
    return int(math.ceil(mean + 12 * math.sqrt(var))) + 64


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def reveal_ranks(key: jax.Array, trials: int, n: int, M: int, cap: int) -> tuple[jax.Array, jax.Array]:
    """(trials, n^2) the rank of each cell in a uniformly random order of the cells (0 = revealed first;
    `cap` for cells not among the first cap), and (trials,) how many distinct cells the draws held.

    M i.i.d. uniform cells per trial; a cell's rank is the number of distinct cells first drawn before
    it (first occurrences of an i.i.d. sequence are a uniformly random order of distinct cells)."""
    def one(k):
        d = jax.random.randint(k, (M,), 0, n * n, dtype=jnp.int32)                 # (M,) cell = a n + b
        idx = jnp.arange(M, dtype=jnp.int32)                                       # (M,)
        first = jnp.full((n * n,), M, jnp.int32).at[d].min(idx)                    # (n^2,) first draw index
        rank = jnp.cumsum((first[d] == idx).astype(jnp.int32)) - 1                 # (M,) distinct so far - 1
        table = jnp.where(first < M, rank[jnp.minimum(first, M - 1)], cap)         # (n^2,)
        return jnp.minimum(table, cap), rank[-1] + 1
    return jax.vmap(one)(jax.random.split(data_key(key), trials))


def connection_times(table: np.ndarray, n: int, cap: int) -> np.ndarray:
    """(T,) the number of revealed cells at which each trial's row-column graph becomes connected:
    the largest rank + 1 on its minimum spanning tree (+inf if the first `cap` cells leave it
    disconnected). All trials are one block-diagonal graph of 2n T vertices."""
    T = table.shape[0]
    t, cell = np.nonzero(table < cap)
    w = table[t, cell].astype(np.float64) + 1.0                        # ranks 1..cap (0 = no edge)
    base = t * 2 * n
    g = coo_matrix((w, (base + cell // n, base + n + cell % n)), shape=(2 * n * T, 2 * n * T)).tocsr()
    tree = minimum_spanning_tree(g).tocoo()
    trial = tree.row // (2 * n)
    edges = np.bincount(trial, minlength=T)
    largest = np.zeros(T)
    np.maximum.at(largest, trial, tree.data)
    return np.where(edges == 2 * n - 1, largest, np.inf)


WORD = 32


def pack(m: jax.Array) -> jax.Array:
    """(T, R, n) bool -> (T, R, K) uint32: column j is bit j % 32 of word j // 32."""
    T, R, n = m.shape
    K = -(-n // WORD)
    m = jnp.pad(m, ((0, 0), (0, 0), (0, K * WORD - n))).reshape(T, R, K, WORD).astype(jnp.uint32)
    bits = jnp.arange(WORD, dtype=jnp.uint32)[None, None, None, :]                  # (1, 1, 1, WORD)
    return jnp.sum(m << bits, axis=-1, dtype=jnp.uint32)                          # (T, R, K)


def _next_column(x: jax.Array) -> jax.Array:
    """Bit j <- bit j + 1 (across words)."""
    nxt = jnp.concatenate([x[..., 1:], jnp.zeros_like(x[..., :1])], axis=-1)
    return (x >> 1) | (nxt << (WORD - 1))


def _prev_column(x: jax.Array) -> jax.Array:
    """Bit j <- bit j - 1 (across words)."""
    prv = jnp.concatenate([jnp.zeros_like(x[..., :1]), x[..., :-1]], axis=-1)
    return (x << 1) | (prv >> (WORD - 1))


def window_step(m: jax.Array, valid: jax.Array) -> jax.Array:
    """One parallel pass of the adjacent-window rule on packed masks m (T, n, K): every window
    (rows i, i+1 x columns j, j+1) with >= 3 known cells becomes fully known."""
    A, B = m[:, :-1], m[:, 1:]                                         # rows i, i+1 (T, n-1, K)
    A1, B1 = _next_column(A), _next_column(B)                          # their columns j+1
    w = ((A & A1 & (B | B1)) | (B & B1 & (A | A1))) & valid            # (T, n-1, K) >= 3 of 4 known
    f = w | _prev_column(w)                                            # columns j and j+1
    z = jnp.zeros_like(m[:, :1])
    return m | jnp.concatenate([f, z], axis=1) | jnp.concatenate([z, f], axis=1)


def window_closure(m: jax.Array, valid: jax.Array) -> jax.Array:
    """Repeat `window_step` until nothing changes (4 passes per convergence test)."""
    def body(s):
        m, _ = s
        m2 = window_step(window_step(window_step(window_step(m, valid), valid), valid), valid)
        return m2, jnp.any(m2 != m)
    return jax.lax.while_loop(lambda s: s[1], body, (m, jnp.asarray(True)))[0]


@functools.partial(jax.jit, static_argnums=(2,))
def adjacent_complete(table: jax.Array, Ns: jax.Array, n: int) -> jax.Array:
    """(len(Ns), T) bool: does the adjacent-window rule complete trial t's table from its first N cells?
    N increasing; each closure starts from the previous one (monotone, so the same closure)."""
    T = table.shape[0]
    rank = table.reshape(T, n, n)                                      # (T, n, n)
    valid = pack((jnp.arange(n) < n - 1)[None, None, :])               # (1, 1, K) windows start at j <= n-2
    full = pack(jnp.ones((1, 1, n), bool))                             # (1, 1, K)

    def at(m, N):
        m = window_closure(m | pack(rank < N), valid)
        return m, jnp.all(m == full, axis=(1, 2))
    return jax.lax.scan(at, jnp.zeros((T, n, -(-n // WORD)), jnp.uint32), Ns)[1]


def adjacent_grid(n: int) -> list[int]:
    """ADJ_POINTS integers from N_50 to min(ADJ_SPAN N_50, 3/4 n^2) (the draws stay cheap below 3/4 n^2)."""
    lo = mc.asymptotic_n50(n)
    return sorted(set(int(round(x)) for x in np.linspace(lo, min(ADJ_SPAN * lo, 0.75 * n * n), ADJ_POINTS)))


def monte_carlo(keys: Keys, n: int, trials: int, Ns, adj_Ns) -> dict:
    """Fraction of trials identifiable at each N of `Ns`, adjacent-window completion at `adj_Ns` on the
    first trials // ADJ_SHARE trials, and whether every adjacent-complete trial was connected."""
    cap = max(max(Ns), max(adj_Ns))
    adj_trials = max(trials // ADJ_SHARE, 1)
    chunks = -(-trials // CHUNK)
    chunk_keys = keys.runs(chunks)
    times, adj, subset = [], [], True
    for c in range(chunks):
        T = min(CHUNK, trials - c * CHUNK)
        table, distinct = (np.asarray(x) for x in reveal_ranks(chunk_keys[c], T, n, draws_needed(n, cap), cap))
        if distinct.min() < cap:
            raise RuntimeError(f"{distinct.min()} < {cap} distinct cells in a trial (draws_needed is too small)")
        t_conn = connection_times(table, n, cap)                       # (T,) +inf if not connected by cap
        times.append(t_conn)
        a = min(T, adj_trials - c * CHUNK)
        if a > 0:
            done = np.asarray(adjacent_complete(jnp.asarray(table[:a]), jnp.asarray(adj_Ns), n))   # (A, a)
            adj.append(done)
            subset &= bool(np.all(~done | (t_conn[None, :a] <= np.asarray(adj_Ns)[:, None])))
    times = np.concatenate(times)
    adj = np.concatenate(adj, axis=1)
    return {"N": list(Ns), "p": [float(np.mean(times <= N)) for N in Ns], "trials": trials,
            "adj_N": list(adj_Ns), "adj_p": adj.mean(axis=1).tolist(), "adj_trials": int(adj.shape[1]),
            "adj_subset": subset}


# ----------------------------------------------------------------------------------- trained decoder
MODEL = transformer.TransformerConfig(vocab=VOCAB, n_classes=CLASSES, d_model=64, n_heads=4, n_layers=2,
                                      d_ff=D_FF, pe=PEConfig(kind="learned", max_len=T_SEQ))


def sequences(cells: jax.Array, n: int, reverse) -> tuple[jax.Array, jax.Array]:
    """Cells (B,) (cell = a n + b) -> tokens (B, T_SEQ) and answer digits (B, 3).

        a = 7, b = 45, s = 52, reversed:  tokens 0 7 + 4 5 = 2 5, answer (2, 5, 0)
                               plain:     tokens 0 7 + 4 5 = 0 5, answer (0, 5, 2)"""
    a, b = cells // n, cells % n                                       # (B,)
    s = a + b                                                          # (B,)
    low_first = jnp.stack([s % 10, (s // 10) % 10, s // 100], axis=-1)   # (B, 3)
    y = jnp.where(reverse, low_first, low_first[:, ::-1])              # (B, 3)
    x = jnp.stack([a // 10, a % 10, jnp.full_like(a, PLUS), b // 10, b % 10, jnp.full_like(a, EQ),
                   y[:, 0], y[:, 1]], axis=-1)                         # (B, T_SEQ)
    return x, y


def answer_logits(params, x: jax.Array) -> jax.Array:
    """(B, 3, CLASSES) logits at the READ slots of the causal decoder."""
    pos, pad, read = jnp.arange(T_SEQ), jnp.ones(T_SEQ, bool), jnp.asarray(READ)
    return jax.vmap(lambda xi: transformer.forward(params, xi, pos, pad, MODEL, True, read=read)[0])(x)


def loss_fn(params, batch) -> jax.Array:
    """Mean over the batch of the summed cross-entropy of the three answer digits."""
    x, y = batch
    logp = jax.nn.log_softmax(answer_logits(params, x), axis=-1)      # (B, 3, C)
    return -jnp.mean(jnp.sum(logp * jax.nn.one_hot(y, CLASSES, dtype=logp.dtype), axis=(-1, -2)))


def exact_match(params, x: jax.Array, y: jax.Array) -> jax.Array:
    """(B,) bool: all three answer digits are the argmax."""
    return jnp.all(jnp.argmax(answer_logits(params, x), axis=-1) == y, axis=-1)


def reveal_order(k_perm: jax.Array, n: int, hold) -> jax.Array:
    """(n^2,) a uniform order of the cells; with `hold` the cells of row HOLD_ROW come last."""
    cells = jnp.arange(n * n)
    u = jax.random.uniform(k_perm, (n * n,))                           # (n^2,)
    u = jnp.where(hold & (cells // n == HOLD_ROW), u + 2.0, u)           # (n^2,) the row behind every other
    return jnp.argsort(u)


def decoder_run(n: int, steps: int, log_every: int, progress, key, N, reverse, hold, run_id=0):
    """Train on the first N cells of the run's order; (held-out, revealed, held-out row HOLD_ROW) exact
    match, the loss trace and the first bad step."""
    k_perm, k_init, k_data = jax.random.split(key, 3)
    order = reveal_order(k_perm, n, hold)                              # (n^2,)
    revealed = jnp.zeros(n * n, bool).at[order].set(jnp.arange(n * n) < N)   # (n^2,)

    def sample_batch(k):
        return sequences(order[jax.random.randint(k, (BATCH,), 0, N)], n, reverse)

    opt = make_optimizer(OptimizerConfig("adamw", b2=B2, weight_decay=WEIGHT_DECAY, schedule="warmup_cosine",
                                         warmup=WARMUP, final_lr_frac=0.1), LR, steps)
    params, tr = train(k_data, transformer.init(k_init, MODEL), loss_fn, sample_batch, opt, steps=steps,
                       log_every=log_every, progress=progress, run_id=run_id)
    per = -(-n * n // EVAL_CHUNKS)                                     # cells per evaluation chunk
    x, y = sequences(jnp.arange(per * EVAL_CHUNKS) % (n * n), n, reverse)   # (chunks x per, T_SEQ), (.., 3)
    ok = jax.lax.map(lambda c: exact_match(params, *c),
                     (x.reshape(EVAL_CHUNKS, per, T_SEQ), y.reshape(EVAL_CHUNKS, per, 3))).reshape(-1)[:n * n]
    f = ok.astype(jnp.float32)
    held, row = ~revealed, (jnp.arange(n * n) // n == HOLD_ROW) & ~revealed

    def mean_on(mask):
        w = mask.astype(f.dtype)
        return jnp.sum(f * w) / jnp.maximum(jnp.sum(w), 1.0)
    return mean_on(held), mean_on(revealed), mean_on(row), tr.loss, tr.first_bad_step


def run_table(cfg) -> list[tuple[str, int, bool, bool]]:
    """(kind, N, reverse, hold) of every trained configuration: the grid, the falsifier, the plain runs."""
    rows = [("grid", N, True, False) for N in cfg.reveal_counts]
    rows.append(("hold_row", max(cfg.reveal_counts), True, True))
    rows += [("plain", N, False, False) for N in PLAIN_AT if N in cfg.reveal_counts]
    return rows


def train_decoders(cfg, keys: Keys, progress) -> dict:
    """Every configuration x completion_seeds seeds in one vmapped sweep (seed s: the same key, hence the
    same order and init, in every configuration)."""
    rows, S = run_table(cfg), cfg.completion_seeds
    seed_keys = keys.sub("runs").runs(S)                               # (S, 2)
    keys_all = jnp.tile(seed_keys, (len(rows), 1))                     # (R S, 2)
    vals = {name: np.repeat([r[i] for r in rows], S) for i, name in ((1, "N"), (2, "reverse"), (3, "hold"))}
    fn = functools.partial(decoder_run, cfg.n_table, cfg.completion_steps, cfg.log_every, progress)
    held, revealed, row, loss, bad = sweep(fn, keys_all, N=jnp.asarray(vals["N"], jnp.int32),
                                           reverse=jnp.asarray(vals["reverse"]), hold=jnp.asarray(vals["hold"]))
    raise_if_diverged(Trace(None, loss, None, bad), "arithmetic/completion",
                      {"N": vals["N"], "reverse": vals["reverse"], "hold": vals["hold"]})
    out = {}
    for i, (kind, N, _, _) in enumerate(rows):
        sl = slice(i * S, (i + 1) * S)
        out.setdefault(kind, {"N": [], "held": [], "revealed": [], "row": [], "final_loss": []})
        d = out[kind]
        d["N"].append(int(N))
        d["held"].append(np.asarray(held[sl]).tolist())
        d["revealed"].append(np.asarray(revealed[sl]).tolist())
        d["row"].append(np.asarray(row[sl]).tolist())
        d["final_loss"].append(np.asarray(loss[sl])[:, -1].tolist())
    return out


# ----------------------------------------------------------------------------------- the part
def predict(cfg) -> dict:
    curves = {}
    for n in (cfg.n_table, cfg.completion_n_small):
        curve = mc.predict_curve(n, mc.curve_grid(n, CURVE_POINTS))
        curve["checked"] = [CHECK_RANGE[0] < p < CHECK_RANGE[1] for p in curve["upper"]]
        curve["max_gap_checked"] = max(u - lo for u, lo, c in zip(curve["upper"], curve["lower"], curve["checked"])
                                       if c)
        curve["adj_N"] = adjacent_grid(n)
        curves[str(n)] = curve
    n50 = mc.asymptotic_n50(cfg.n_table)
    return {"curves": curves, "n50_asymptotic": n50,
            "trained_interval": [LOW_FACTOR * n50, HIGH_FACTOR * ADJ_REF], "lee_reported": LEE_REPORTED}


def measure(cfg, keys: Keys, progress) -> dict:
    sims = {}
    for n in (cfg.n_table, cfg.completion_n_small):
        curve = mc.predict_curve(n, mc.curve_grid(n, CURVE_POINTS))    # the grid only (no draws in predict)
        sims[str(n)] = monte_carlo(keys.sub("monte_carlo", n), n, cfg.completion_trials, curve["N"],
                                   adjacent_grid(n))
    trained = train_decoders(cfg, keys.sub("decoder"), progress) if cfg.reveal_counts else {}
    return {"mc": sims, "trained": trained}


def band_score(P_curve: dict, M_curve: dict) -> tuple[float, float]:
    """(max over the checked N of the distance outside [lower, upper] in binomial s.d. of the predicted
    midpoint (negative inside), max |MC - midpoint|) for one table size."""
    T = M_curve["trials"]
    z, dev = [], []
    for lo, up, ok, p in zip(P_curve["lower"], P_curve["upper"], P_curve["checked"], M_curve["p"]):
        if not ok:
            continue
        mid = 0.5 * (lo + up)
        sd = math.sqrt(mid * (1 - mid) / T)
        z.append(max(lo - p, p - up) / sd)
        dev.append(abs(p - mid))
    return max(z), max(dev)


def crossing_grid(Ns, acc, level: float) -> float:
    """The first N of the grid whose mean accuracy exceeds `level` (+inf if none)."""
    for N, a in zip(Ns, acc):
        if a > level:
            return float(N)
    return math.inf


def judge(cfg, P: dict, M: dict) -> list[Check]:
    checks = []
    for n in (cfg.n_table, cfg.completion_n_small):
        Pc, Mc = P["curves"][str(n)], M["mc"][str(n)]
        z, dev = band_score(Pc, Mc)
        checks.append(at_most(
            f"completion_mc_band_n{n}",
            f"n = {n}, {Mc['trials']} trials: max over the N with {CHECK_RANGE[0]} < P0 < {CHECK_RANGE[1]} of the "
            f"Monte Carlo P(identifiable) outside [P0 - B, P0], in binomial s.d. (band width <= "
            f"{Pc['max_gap_checked']:.4f}; max |MC - band midpoint| = {dev:.4f}).",
            "predicted", BAND_SD, z,
            "theory/predictions/matrix_completion.py: P0 (inclusion-exclusion, no empty row or column) is an upper "
            "bound and P0 - B (union bound over the smallest component) a lower bound on connectivity; "
            f"{BAND_SD:g} binomial s.d. of {Mc['trials']} trials"))
    Pc, Mc = P["curves"][str(cfg.n_table)], M["mc"][str(cfg.n_table)]
    checks.append(close(
        "completion_mc_n50",
        f"n = {cfg.n_table}: the Monte Carlo 50% point of P(identifiable) (linear interpolation on the grid) against "
        f"n (ln n + ln(2 / ln 2)) = {P['n50_asymptotic']:.1f} (finite-n P0 crosses 1/2 at {Pc['n50_upper']:.1f}).",
        "predicted", P["n50_asymptotic"], mc.crossing(Mc["N"], Mc["p"]), N50_TOL,
        "P(connected) -> exp(-2 e^(-c)) at N = n (ln n + c) (the Poisson limit of empty rows and columns, "
        "theory/predictions/matrix_completion.py); the finite-n offset is ~3% at n = 100"))
    subset = all(M["mc"][k]["adj_subset"] for k in M["mc"])
    checks.append(holds(
        "completion_adjacent_subset",
        f"Every Monte Carlo trial that Lee et al.'s adjacent-window rule completes ({Mc['adj_trials']} trials at "
        f"n = {cfg.n_table}) is connected at the same N, at both table sizes.", "sanity",
        "adjacent-window complete => connected", subset, subset,
        "a 2x2 fill M_i'j' = M_ij' + M_i'j - M_ij follows a row-column path, so it never joins two components "
        "(proofs/matrix_completion.py, prove_identifiability_criterion)"))
    if not M["trained"]:                                               # reveal_counts = (): Monte Carlo only
        return checks
    grid = M["trained"]["grid"]
    mean_held = [float(np.mean(h)) for h in grid["held"]]
    cross = crossing_grid(grid["N"], mean_held, THRESH_LEVEL)
    lo, hi = P["trained_interval"]
    S = cfg.completion_seeds
    summary = ", ".join(f"{N}: {a:.3f}" for N, a in zip(grid["N"], mean_held))
    why_interval = (f"{LEE}: the trained threshold should lie between the identifiability threshold "
                    f"(0.8 x {P['n50_asymptotic']:.0f}) and the adjacent-window rule's (1.25 x {ADJ_REF:.0f}, "
                    "reference Monte Carlo)")
    checks.append(at_least(
        "completion_trained_threshold_low",
        f"First N of the grid whose held-out exact match (mean over {S} seeds) exceeds {THRESH_LEVEL} "
        f"(held-out means {summary}).", "expected", lo, cross, why_interval))
    checks.append(at_most(
        "completion_trained_threshold_high",
        f"First N of the grid whose held-out exact match (mean over {S} seeds) exceeds {THRESH_LEVEL}.",
        "expected", hi, cross, why_interval))
    large = [min(h) for N, h in zip(grid["N"], grid["held"]) if N >= LARGE_N]
    if large:
        checks.append(at_least(
            "completion_trained_large_n",
            f"Min over N >= {LARGE_N} in the grid and {S} seeds of the held-out exact match.",
            "expected", LARGE_ACC, min(large),
            f"{LEE}: past both completion thresholds the table is determined (P(identifiable) > 0.999 at "
            f"N = {LARGE_N}, n = 100), so a model that completes it is near exact"))
    return checks


PART = Part(name="completion", predict=predict, measure=measure, judge=judge)


# ----------------------------------------------------------------------------------- figure
def falsifier(M: dict) -> dict:
    """The held-out row's exact match per seed and what it says about the mechanism."""
    h = M["trained"].get("hold_row")
    if not h:
        return {}
    row = h["row"][0]
    verdict = ("mechanism differs from completion" if float(np.mean(row)) >= FALSIFIER_ACC
               else "consistent with completion")
    return {"N": h["N"][0], "row": HOLD_ROW, "exact_match": row, "held": h["held"][0], "reading": verdict}


def plot_completion(ax, data: dict) -> None:
    """Panel: P(identifiable) at n_table (finite-n band, asymptotic curve, Monte Carlo, adjacent-window rule)
    and the trained decoder's held-out exact match (seeds as dots, mean as a line) against N revealed.
    `data` is result["data"]["completion"]."""
    P, M = data["predicted"], data["measured"]
    n = max(int(k) for k in P["curves"])
    Pc, Mc = P["curves"][str(n)], M["mc"][str(n)]
    ax.fill_between(Pc["N"], Pc["lower"], Pc["upper"], color="tab:blue", alpha=0.3, label="P0 - B .. P0 (finite n)")
    trained = M["trained"]
    Ns = np.linspace(min(Pc["N"]), max(Mc["adj_N"] + (trained["grid"]["N"] if trained else [])), 200)
    ax.plot(Ns, mc.asymptotic_p(n, Ns), color="tab:blue", ls="--", lw=1, label="exp(-2 e^-c)")
    ax.plot(Mc["N"], Mc["p"], "o", color="tab:blue", ms=3, label=f"identifiable (MC, {Mc['trials']})")
    ax.plot(Mc["adj_N"], Mc["adj_p"], "s-", color="tab:orange", ms=3, lw=1,
            label=f"adjacent 2x2 rule (MC, {Mc['adj_trials']})")
    for kind, color, label in (("grid", "black", "decoder, reversed"), ("plain", "tab:gray", "decoder, plain")):
        d = trained.get(kind)
        if not d:
            continue
        for N, h in zip(d["N"], d["held"]):
            ax.plot([N] * len(h), h, ".", color=color, ms=3)
        ax.plot(d["N"], [np.mean(h) for h in d["held"]], "-", color=color, lw=1.5, label=f"{label}: held-out EM")
    f = falsifier(M)
    if f:
        ax.plot([f["N"]] * len(f["exact_match"]), f["exact_match"], "x", color="tab:red", ms=5,
                label=f"decoder, row a = {f['row']} never shown")
    lo, hi = P["trained_interval"]
    ax.axvspan(lo, hi, color="tab:green", alpha=0.08, label="predicted trained threshold")
    ax.set_xscale("log")
    ticks = [t for t in (200, 300, 500, 1000, 2000, 5000, 10000) if min(Pc["N"]) / 1.5 <= t <= 1.5 * max(Ns)]
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel(f"revealed sums N (n = {n})")
    ax.set_ylabel("P(identifiable) / held-out exact match")
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=6, loc="upper left")


def completion_markdown(data: dict) -> str:
    """Markdown for REPORT.md from result["data"]["completion"]: thresholds, the trained grid (reversed and
    plain), the falsifier and Lee et al.'s reported 3-digit numbers."""
    P, M = data["predicted"], data["measured"]
    lines = ["| table n | trials | MC 50% point | finite-n band 50% | asymptotic 50% | adjacent-window 50% (trials) |",
             "|---|---|---|---|---|---|"]
    for n, Mc in sorted(M["mc"].items(), key=lambda kv: -int(kv[0])):
        Pc = P["curves"][n]
        lines.append(f"| {n} | {Mc['trials']} | {mc.crossing(Mc['N'], Mc['p']):.1f} | {Pc['n50_upper']:.1f} - "
                     f"{Pc['n50_lower']:.1f} | {mc.asymptotic_n50(int(n)):.1f} | "
                     f"{mc.crossing(Mc['adj_N'], Mc['adj_p']):.0f} ({Mc['adj_trials']}) |")
    trained = M["trained"]
    if trained:
        plain = dict(zip(trained.get("plain", {}).get("N", []), trained.get("plain", {}).get("held", [])))
        lines += ["", "| revealed N | held-out exact match, reversed (seeds) | plain (seeds) |", "|---|---|---|"]
        for N, h in zip(trained["grid"]["N"], trained["grid"]["held"]):
            p = plain.get(N)
            lines.append(f"| {N} | {np.mean(h):.3f} ({', '.join(f'{x:.3f}' for x in h)}) | "
                         + (f"{np.mean(p):.3f} ({', '.join(f'{x:.3f}' for x in p)})" if p else "-") + " |")
        f = falsifier(M)
        lines += ["", f"Falsifier: row a = {f['row']} never revealed (N = {f['N']}): its exact match per seed "
                  f"{', '.join(f'{x:.3f}' for x in f['exact_match'])} -> {f['reading']} "
                  f"(threshold {FALSIFIER_ACC})."]
    r = P["lee_reported"]
    reported = "; ".join(f"{s} samples: reversed {a}%, plain {b}%"
                         for s, a, b in zip(r["samples"], r["reversed"], r["plain"]))
    lines += ["", "Lee et al. (3-digit addition, as reported in lee-ny/teaching_arithmetic "
              f"plots/sample_efficiency.csv): {reported} (another task size: not judged)."]
    return "\n".join(lines)
