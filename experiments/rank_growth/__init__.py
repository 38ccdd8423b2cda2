"""Claim `rank_growth`: from small initialisation the learned weight change grows in rank one stage
at a time, at times predicted by Saxe's mode solution (linear nets, Saxe, McClelland & Ganguli 2014)
and by the greedy incremental-learning procedure (diagonal networks, Boix-Adsera et al. 2023,
Algorithm 1). Everything is full-batch plain GD in float64 unless stated; rescaled time is
tau = lr * step / ln(1/alpha) for an init of scale alpha.

Parts (experiments/rank_growth/parts/<name>.py; each module's docstring gives its math):

1. saxe_linear_net    2-layer linear net W2 W1 on M = U diag(s) V^T: the GD step at which
                      sigma_i(W2 W1) crosses s_i/2 against t_i = ln(s_i/u0_i - 1) / (2 ln(1 + lr s_i))
                      with u0_i orthogonalised against the earlier modes' growing vectors (the pass
                      criterion, theory/predictions/rank_growth.py) and, for the top mode, the exact
                      u0_i of the init; the plain formula's error for every mode is reported over
                      time_seeds seeds as data (it is seed-dependent, no check); the plateau
                      losses 1/2 sum_{j>k} s_j^2; the rank of W2 W1 rises in unit steps in order of s;
                      and an exact check: from an aligned balanced init GD equals the scalar recursion.
2. rescaled_collapse  Saxe stage times in rescaled time collapse onto the alpha -> 0 limit
                      lr / ln(1 + lr s_i) within rescale_const / ln(1/alpha), the worst deviation
                      shrinking as alpha decreases.
3. diag_regression    diagonal linear regression with correlated features: the same collapse onto
                      Algorithm 1's stage times, within reg_rescale_const / ln(1/alpha) (the constant
                      a high quantile of reference runs), and its activation order.
4. diag_attention     diagonal attention head (a = w_K w_Q, b = w_V w_O) on a diagonal teacher: stage
                      order, times and saddle losses against Algorithm 1; one coordinate per stage.
                      Orders are compared for stage pairs further apart than the collapse bound
                      (near-ties cannot be ordered at finite alpha); saddle losses for plateaus
                      predicted to last >= min_plateau_steps GD steps.
5. full_head          full attention head on a low-rank teacher, GD and Adam: the number of singular
                      values of Delta(W_K W_Q^T) above head_rel of the largest climbs 1, 2, .., r in
                      order, every level visited, in at least the binomial 1% lower quantile of the
                      seeds at each optimiser's reference rate (kind `expected`: no theorem covers a
                      non-diagonal head; experiments/rank_growth/reference.py).

Algorithm-1 times use the discrete-GD rate ln(1 + lr g)/lr in place of g (lr -> 0: flow). The
diagonal toys' training sets are the parts' random problems (`draw`, theory/harness/parts.py):
drawn from the seed's stream `<part>/problem`, Algorithm 1 is solved for them in `predict` (no
training) and GD trains on the same set in `measure`.
"""
from experiments.rank_growth.config import Config
from experiments.rank_growth.figure import plot
from experiments.rank_growth.parts import diag_attention, diag_regression, full_head, rescaled_collapse, saxe_linear_net
from theory.harness.config import Knob
from theory.harness.parts import Part

PRECISION = "float64"

PARTS = (
    Part("saxe_linear_net", saxe_linear_net.predict, saxe_linear_net.measure, saxe_linear_net.judge,
         unbounded=("t_cross", "plateau_loss", "plain_error", "plain_error_summary")),
    Part("rescaled_collapse", rescaled_collapse.predict, rescaled_collapse.measure, rescaled_collapse.judge),
    Part("diag_regression", diag_regression.predict, diag_regression.measure, diag_regression.judge,
         draw=diag_regression.draw, unbounded=("act",)),
    Part("diag_attention", diag_attention.predict, diag_attention.measure, diag_attention.judge,
         draw=diag_attention.draw, unbounded=("act", "plateau_steps")),
    Part("full_head", full_head.predict, full_head.measure, full_head.judge),
)

# `sandbox explore` knobs (theory/harness/explore.py): the main one first
KNOBS = (
    Knob("time_alphas", ((1e-2,), (1e-3,), (1e-4,), (1e-6,), (1e-9,)),
         "init scale alpha: the Saxe stage times are exact only as alpha -> 0; their relative error shrinks "
         "like 1/ln(1/alpha) (Saxe, McClelland & Ganguli 2014)", part="saxe_linear_net", axis="last"),
)

__all__ = ["KNOBS", "PRECISION", "Config", "PARTS", "plot"]
