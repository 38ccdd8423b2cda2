"""Part `svm_ranks`: ranks of the two SVM solutions of the opt tokens, against d (no training).

Stationarity of the Frobenius Att-SVM writes its solution as n rank-one terms,

    W^mm = sum_it lam_it (x_{i opt_i} - x_it) z_i^T = sum_i u_i z_i^T,

so rank W^mm <= min(n, d) (Tarzanagh et al. 2023; proofs/svm_bias.py prove_frobenius_rank_bound).
A sequence whose constraints are all slack has u_i = 0 and drops out; for generic u_i, z_i the rank
is then min(#sequences with a support token, d). The nuclear Att-SVM* solution is observed to be
of lower rank, about n/2 (singular values above 1% of the largest: solver residue makes tighter
tolerances unreliable).

Rows of the rank panel: (d, feasible, rank W^mm_F, rank W^mm_* (-1: not solved), sequences with a
support token); cfg.rank_instances instances per d, the first cfg.rank_nuclear_instances of them
also solved with the nuclear norm. The main size (n, T, d) gets cfg.seeds instances, all solved
with both norms.
"""
from __future__ import annotations

import numpy as np

from theory import metrics
from theory.engine.keys import Keys
from theory.harness.results import at_most, close, holds
from theory.predictions import svm_bias as pred

from .. import common
from ..config import Config

RANK_WHY = ("Tarzanagh et al. 2023 (their theorem on the rank of W^mm): rank W^mm <= n; "
            "proofs/svm_bias.py prove_frobenius_rank_bound")


def predict(cfg: Config) -> dict:
    """The rank bound min(n, d) per panel d and at the main size, and the 'about n/2' of W^mm_*."""
    return {"rank_ds": list(cfg.rank_ds), "rank_bound": [min(cfg.n, d) for d in cfg.rank_ds],
            "main_rank_bound": min(cfg.n, cfg.d), "nuclear_rank_about": cfg.n / 2}


def _panel_row(inst, d: int, with_nuclear: bool, cfg: Config) -> tuple[int, int, int, int, int]:
    """(d, feasible, rank_F, rank_* or -1, sequences with a support token) of one instance."""
    o = common.opt_tokens(inst)
    sF = pred.solve_frobenius(inst.X, inst.Z, o)
    if not sF.feasible:
        return (d, 0, -1, -1, -1)
    sN = pred.solve_nuclear(inst.X, inst.Z, o) if with_nuclear else None
    rank_N = metrics.numerical_rank(sN.W, cfg.nuclear_rank_tol) if sN is not None and sN.feasible else -1
    return (d, 1, metrics.numerical_rank(sF.W, cfg.frob_rank_tol), rank_N,
            int(np.any(sF.lam > 0, axis=1).sum()))


def measure(cfg: Config, keys: Keys, progress: str | None) -> dict:
    """Solve both SVMs of the opt tokens on fresh instances: the d panel and the main size."""
    rows = []
    for d in cfg.rank_ds:
        insts = common.host_instances(common.draw_instances(keys.sub("panel", d), cfg.rank_instances,
                                                            cfg.n, cfg.T, d))
        rows += [_panel_row(inst, d, k < cfg.rank_nuclear_instances, cfg) for k, inst in enumerate(insts)]
    main = common.host_instances(common.draw_instances(keys.sub("instances"), cfg.seeds, cfg.n, cfg.T,
                                                       cfg.d))
    svms = common.SVMs(main)
    opts = [common.opt_tokens(i) for i in main]
    sol_F = svms.frobenius(opts)
    common.require_feasible(sol_F, cfg)
    sol_N = svms.nuclear(opts)
    return {"rank_rows": np.array(rows, dtype=np.int64).reshape(-1, 5),          # (rows, 5)
            "main_rank_F": [metrics.numerical_rank(s.W, cfg.frob_rank_tol) for s in sol_F if s.feasible],
            "main_rank_N": [metrics.numerical_rank(s.W, cfg.nuclear_rank_tol) for s in sol_N
                            if s.feasible]}


def judge(cfg: Config, P: dict, M: dict) -> list:
    rows = np.asarray(M["rank_rows"], dtype=np.int64).reshape(-1, 5)
    feas = rows[rows[:, 1] == 1]
    d_col, rank_F, supported = feas[:, 0], feas[:, 2], feas[:, 4]
    bound = np.minimum(cfg.n, d_col)
    main_F, main_N = np.asarray(M["main_rank_F"]), np.asarray(M["main_rank_N"])
    n_full = int(np.sum(rank_F == bound))
    bad = feas[rank_F != bound]
    main_full = bool(np.all(main_F == P["main_rank_bound"]))
    return [
        holds("rank_frob_equals_min_n_d", "rank W^mm_F = min(n, d) on every feasible instance.",
              "predicted", "rank W^mm_F = min(n, d) whenever feasible",
              f"{n_full}/{len(feas)} feasible (of {len(rows)}), main "
              f"{int(np.sum(main_F == P['main_rank_bound']))}/{len(main_F)}; exceptions (d, rank, "
              f"sequences with a support token): {[(int(r[0]), int(r[2]), int(r[4])) for r in bad]}",
              bool(n_full == len(feas) and main_full),
              "tests the equality rank W^mm_F = min(n, d) at singular values > 1e-7 sigma_max on "
              "every feasible panel and main instance; " + RANK_WHY + " proves only the upper bound, "
              "and a sequence without support tokens lowers the rank"),
        at_most("rank_frob_at_most_min_n_d", "rank W^mm_F never exceeds min(n, d).", "sanity", 0,
                int(np.max(rank_F - bound)) if len(feas) else float("inf"),
                "the solver builds W^mm_F = sum_k lam_k A_k, n rank-one terms u_i z_i^T, by construction "
                "(theory/predictions/svm_bias.py solve_frobenius; " + RANK_WHY + ")"),
        at_most("rank_frob_equals_min_supported_seqs_d", "rank W^mm_F = min(#sequences with a support "
                "token, d) on every feasible instance (count of exceptions).", "exact", 0,
                int(np.sum(rank_F != np.minimum(supported, d_col))) if len(feas) else float("inf"),
                "theory/predictions/svm_bias.py: a sequence whose constraints are all slack has u_i = 0 "
                "and drops out of W^mm = sum_i u_i z_i^T; generic u_i, z_i give full rank otherwise"),
        at_most("rank_nuclear_below_frob", "rank W^mm_* < min(n, d) on every main instance.", "expected",
                P["main_rank_bound"] - 1, int(main_N.max()) if main_N.size else float("inf"),
                "reference runs of this experiment (mean nuclear rank 3.1 at n = 6, d = 10); "
                "sigma > 1e-2 sigma_max, since solver residue makes tighter tolerances unreliable"),
        close("rank_nuclear_mean_about_n_over_2", "The mean rank of W^mm_* on the main instances is "
              "about n/2.", "expected", P["nuclear_rank_about"],
              float(np.mean(main_N)) if main_N.size else float("nan"), 1.0,
              "reference runs of this experiment (mean 3.1 at n = 6); +-1 rank as 'about'", rel=False),
    ]
