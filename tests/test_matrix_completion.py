"""Tests for `arithmetic`'s completion part: the identifiability proofs, the finite-n prediction against
exact enumeration and the reference table, the Monte Carlo machinery against plain references, the
decoder's sequences, and the judge fed wrong measurements (synthetic and, once committed, the quick result).

`COMPLETION_WRONG` holds (part, description, perturb, must_fail) entries in the format of
tests/claim_asserts.py; tests/test_arithmetic.py may add them to the claim's WRONG list."""
from __future__ import annotations

import copy
import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from experiments.arithmetic import Config
from experiments.arithmetic.parts import completion as C
from proofs.matrix_completion import (
    prove_finite_n_bounds,
    prove_identifiability_criterion,
    prove_p0_rectangular,
    prove_threshold_limit,
    rule_closure,
)
from theory.predictions import matrix_completion as mc

CFG = dataclasses.replace(Config.quick(), n_table=100, completion_n_small=20, completion_trials=2000,
                          completion_seeds=3, reveal_counts=(300, 500, 800, 1200, 1600, 2500))


# --- proofs ---------------------------------------------------------------------------------------
def test_identifiability_criterion():
    prove_identifiability_criterion()


def test_threshold_limit():
    prove_threshold_limit()


def test_finite_n_bounds_against_enumeration():
    prove_finite_n_bounds()


def test_p0_rectangular():
    prove_p0_rectangular()


# --- predictions ----------------------------------------------------------------------------------
def test_p0_matches_the_reference_table():
    """P0 at n = 100 (arithmetic_compositional research notes, 3a: .309 .670 .873 .955 .995 .9995)."""
    for N, ref in ((500, 0.309), (600, 0.670), (700, 0.873), (800, 0.955), (1000, 0.995), (1200, 0.9995)):
        assert abs(mc.p_no_empty_line(100, 100, N) - ref) < 6e-4, N


def test_asymptotic_n50():
    assert abs(mc.asymptotic_n50(100) - 566.48) < 0.01
    assert abs(mc.asymptotic_p(100, mc.asymptotic_n50(100)) - 0.5) < 1e-12


@pytest.fixture(scope="module")
def predicted():
    return C.predict(CFG)


def test_finite_n_bound_is_sharp_enough(predicted):
    """The band width B is below 0.025 at n = 100 and 0.04 at n = 20 where 0.1 < P0 < 0.9."""
    assert predicted["curves"]["100"]["max_gap_checked"] < 0.025
    assert predicted["curves"]["20"]["max_gap_checked"] < 0.04
    for curve in predicted["curves"].values():
        assert sum(curve["checked"]) >= 4
        assert all(lo <= up for lo, up in zip(curve["lower"], curve["upper"]))


def test_crossing():
    assert mc.crossing([10, 20, 30], [0.1, 0.3, 0.7], 0.5) == 25.0
    assert mc.crossing([10, 20], [0.6, 0.9], 0.5) == 10.0
    assert mc.crossing([10, 20], [0.1, 0.2], 0.5) == math.inf


# --- Monte Carlo machinery ------------------------------------------------------------------------
def small_tables(n: int, trials: int, cap: int, seed: int = 0) -> np.ndarray:
    table, distinct = C.reveal_ranks(jax.random.PRNGKey(seed), trials, n, C.draws_needed(n, cap), cap)
    assert int(np.min(distinct)) >= cap
    return np.asarray(table)


def test_reveal_ranks_are_orders():
    n, cap = 10, 60
    table = small_tables(n, 50, cap)
    for row in table:
        assert sorted(row[row < cap].tolist()) == list(range(cap))
        assert np.sum(row == cap) == n * n - cap


def test_reveal_order_is_uniform():
    """Each cell is among the first N with probability N / n^2 (mean over trials, 5 s.e.)."""
    n, cap, T = 6, 12, 4000
    table = small_tables(n, T, cap, seed=1)
    freq = np.mean(table < cap, axis=0)                                   # (n^2,)
    assert np.all(np.abs(freq - cap / n ** 2) < 5 * math.sqrt(cap / n ** 2 / T))


def test_connection_times_against_connected_components():
    n, cap = 8, 40
    table = small_tables(n, 30, cap, seed=2)
    times = C.connection_times(table, n, cap)
    for t, row in enumerate(table):
        for N in range(1, cap + 1):
            cells = np.nonzero(row < N)[0]
            g = coo_matrix((np.ones(cells.size), (cells // n, n + cells % n)), shape=(2 * n, 2 * n))
            conn = connected_components(g, directed=False)[0] == 1
            assert conn == (times[t] <= N), (t, N)


@pytest.mark.parametrize("n", [5, 33])
def test_adjacent_rule_against_the_plain_loop(n):
    """The bitset closure (33 columns: two words) equals the 2x2 rule scanned cell by cell."""
    cap = n * n - 1
    table = small_tables(n, 4, cap, seed=3)
    Ns = sorted({int(n * n * f) for f in (0.2, 0.35, 0.5, 0.65)})
    done = np.asarray(C.adjacent_complete(jnp.asarray(table), jnp.asarray(Ns), n))     # (len(Ns), T)
    for t, row in enumerate(table):
        for k, N in enumerate(Ns):
            revealed = [(c // n, c % n) for c in np.nonzero(row < N)[0]]
            assert done[k, t] == rule_closure(n, n, revealed, adjacent=True), (n, t, N)


def test_monte_carlo_stays_in_the_band_at_small_n():
    """A cheap end-to-end run of the Monte Carlo at n = 10 against the finite-n band."""
    from theory.engine.keys import Keys
    n = 10
    curve = mc.predict_curve(n, mc.curve_grid(n, 9))
    M = C.monte_carlo(Keys(0).sub("test"), n, 1500, curve["N"], C.adjacent_grid(n))
    for lo, up, p in zip(curve["lower"], curve["upper"], M["p"]):
        sd = math.sqrt(max(up * (1 - up), 1e-4) / 1500)
        assert lo - 4 * sd <= p <= up + 4 * sd
    assert M["adj_subset"]


# --- the decoder's data ---------------------------------------------------------------------------
def test_sequences_worked_examples():
    cells = jnp.asarray([7 * 100 + 45, 99 * 100 + 99, 0])
    x, y = C.sequences(cells, 100, True)
    assert x[0].tolist() == [0, 7, C.PLUS, 4, 5, C.EQ, 2, 5] and y[0].tolist() == [2, 5, 0]
    assert x[1].tolist() == [9, 9, C.PLUS, 9, 9, C.EQ, 8, 9] and y[1].tolist() == [8, 9, 1]
    assert y[2].tolist() == [0, 0, 0]
    x, y = C.sequences(cells, 100, False)
    assert x[0].tolist() == [0, 7, C.PLUS, 4, 5, C.EQ, 0, 5] and y[0].tolist() == [0, 5, 2]
    assert y[1].tolist() == [1, 9, 8]


def test_hold_moves_the_row_last():
    order = np.asarray(C.reveal_order(jax.random.PRNGKey(0), 100, True))
    assert set((order[-100:] // 100).tolist()) == {C.HOLD_ROW}
    free = np.asarray(C.reveal_order(jax.random.PRNGKey(0), 100, False))
    assert sorted(free.tolist()) == list(range(10_000))


# --- the judge ------------------------------------------------------------------------------------
def synthetic(P: dict) -> dict:
    """A measurement that agrees with the theory: the band midpoints, a threshold at 1200."""
    mcs = {}
    for n, curve in P["curves"].items():
        mid = [0.5 * (lo + up) for lo, up in zip(curve["lower"], curve["upper"])]
        mcs[n] = {"N": curve["N"], "p": mid, "trials": CFG.completion_trials, "adj_N": curve["adj_N"],
                  "adj_p": [0.0] * len(curve["adj_N"]), "adj_trials": 200, "adj_subset": True}
    held = {300: 0.05, 500: 0.1, 800: 0.3, 1200: 0.7, 1600: 0.9, 2500: 0.99}
    grid = {"N": list(CFG.reveal_counts), "held": [[held[N]] * 3 for N in CFG.reveal_counts],
            "revealed": [[1.0] * 3] * 6, "row": [[0.0] * 3] * 6, "final_loss": [[0.01] * 3] * 6}
    hold = {"N": [2500], "held": [[0.95] * 3], "revealed": [[1.0] * 3], "row": [[0.2] * 3], "final_loss": [[0.0] * 3]}
    return {"mc": mcs, "trained": {"grid": grid, "hold_row": hold}}


def _set_p(n: str, shift: float):
    def perturb(P, M):
        M["mc"][n]["p"] = [min(max(p + shift, 0.0), 1.0) for p in M["mc"][n]["p"]]
        return M
    return perturb


def _stretch_mc(P, M):
    """A curve 10% to the right (a threshold 10% off the asymptotic one)."""
    n = max(M["mc"], key=int)
    M["mc"][n]["p"] = [float(x) for x in np.interp(np.asarray(M["mc"][n]["N"]) / 1.1, M["mc"][n]["N"], M["mc"][n]["p"])]
    return M


def _held(values):
    def perturb(P, M):
        g = M["trained"]["grid"]
        g["held"] = [[values(N, float(np.mean(hs)))] * len(hs) for N, hs in zip(g["N"], g["held"])]
        return M
    return perturb


COMPLETION_WRONG = [
    ("completion", "MC 0.08 above the band at n = 100", _set_p("100", 0.08), ["completion_mc_band_n100"]),
    ("completion", "MC 0.08 below the band at n = 20", _set_p("20", -0.08), ["completion_mc_band_n20"]),
    ("completion", "MC threshold 10% right", _stretch_mc, ["completion_mc_n50"]),
    ("completion", "decoder learns from 300 sums", _held(lambda N, h: 0.9 if N < 2500 else 0.99),
     ["completion_trained_threshold_low"]),
    ("completion", "decoder never passes 0.5", _held(lambda N, h: 0.3),
     ["completion_trained_threshold_high", "completion_trained_large_n"]),
    ("completion", "decoder at 0.9 for N >= 2500", _held(lambda N, h: 0.9 if N >= 2500 else h),
     ["completion_trained_large_n"]),
]


def test_synthetic_measurement_passes(predicted):
    checks = C.judge(CFG, predicted, synthetic(predicted))
    assert all(c.passed for c in checks), [c.name for c in checks if not c.passed]
    assert {c.name for c in checks} >= {w for entry in COMPLETION_WRONG for w in entry[3]}


@pytest.mark.parametrize("part, description, perturb, must_fail", COMPLETION_WRONG,
                         ids=[w[1] for w in COMPLETION_WRONG])
def test_wrong_synthetic_measurement_fails(predicted, part, description, perturb, must_fail):
    M = perturb(copy.deepcopy(predicted), synthetic(predicted))
    checks = {c.name: c for c in C.judge(CFG, predicted, M)}
    assert not [n for n in must_fail if checks[n].passed]


def test_adjacent_subset_sanity_can_fail(predicted):
    M = synthetic(predicted)
    M["mc"]["20"]["adj_subset"] = False
    checks = {c.name: c for c in C.judge(CFG, predicted, M)}
    assert not checks["completion_adjacent_subset"].passed




MC_WRONG = [w for w in COMPLETION_WRONG if not w[3][0].startswith("completion_trained")]   # quick-preset checks


@pytest.mark.parametrize("part, description, perturb, must_fail", MC_WRONG, ids=[w[1] for w in MC_WRONG])
def test_wrong_measurement_of_the_committed_result_fails(part, description, perturb, must_fail):
    """The committed quick result (Monte Carlo only: its reveal_counts is empty, so the trained-decoder
    checks exist only in the full preset and are fed wrong measurements synthetically above)."""
    from claim_asserts import committed, wrong_measurement
    wrong_measurement("arithmetic", part, perturb, must_fail, result=committed("arithmetic"))


def test_every_completion_evidence_check_of_the_committed_result_can_fail():
    from claim_asserts import assert_covered, committed
    result = committed("arithmetic")
    result = {**result, "checks": [c for c in result["checks"] if c["part"] == "completion"]}
    assert result["checks"]
    assert_covered("arithmetic", MC_WRONG, result=result)


def test_falsifier_reading():
    M = synthetic(C.predict(dataclasses.replace(CFG, n_table=10, completion_n_small=6)))
    assert C.falsifier(M)["reading"] == "consistent with completion"
    M["trained"]["hold_row"]["row"] = [[0.95, 0.92, 0.97]]
    assert C.falsifier(M)["reading"] == "mechanism differs from completion"
