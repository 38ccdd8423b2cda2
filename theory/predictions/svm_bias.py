"""Predictions for `svm_bias`: the attention SVMs of Tarzanagh, Li, Thrampoulidis & Oymak (2023).

For token selections alpha = (alpha_1..alpha_n) and instance (X_i, z_i), the constraint features are
    A_it = (x_{i alpha_i} - x_it) z_i^T,   t != alpha_i          so  <A_it, W> = (x_ia - x_it)^T W z_i.

* Att-SVM (Frobenius):  W^mm_alpha = argmin ||W||_F  s.t.  <A_it, W> >= 1 for all i, t != alpha_i.
  A hard-margin SVM through the origin. Solved EXACTLY as a least-distance program (Lawson & Hanson
  1974, ch. 23): with M the (n(T-1), d^2) matrix of vec(A_it),
      u = argmin_{u >= 0} || [M^T; 1^T] u - e_last ||,     r = [M^T; 1^T] u - e_last,
  the problem is infeasible iff r = 0, else W = -r[:d^2] / r_last. The active set of u is then
  polished by solving G_SS mu = 1 (G = M M^T) so that the KKT conditions hold to rounding:
  W = sum_k lam_k A_k (stationarity), lam >= 0, <A_k, W> >= 1, lam_k (<A_k, W> - 1) = 0.
  By stationarity W = sum_i (sum_t lam_it (x_ia - x_it)) z_i^T, so rank W <= min(n, d).
* Att-SVM* (nuclear):  W^mm_* = argmin ||W||_*  under the same constraints, solved with cvxpy +
  Clarabel (an interior-point conic solver). Its optimality is CERTIFIED by the dual
      max sum_k lam_k  s.t.  ||sum_k lam_k A_k||_op <= 1, lam >= 0:
  the solver's multipliers, rescaled to be exactly dual feasible, give a lower bound; the primal W
  rescaled to be exactly feasible gives an upper bound; their relative gap is reported.
  Independent cross-check: Burer-Monteiro, min (||K||_F^2 + ||Q||_F^2)/2 s.t. <A_k, K Q^T> >= 1
  (scipy SLSQP), whose optimum equals ||W^mm_*||_* by the variational identity of ||.||_*.
* Feasibility: with d >= n the queries z_i are linearly independent, so W z_i = w_i can be chosen
  freely per sequence; with d >= T-1 the T-1 differences x_ia - x_it of a sequence are independent,
  so some w_i meets all of them with margin 1. Generic instances are then feasible for EVERY
  selection; below that (d = 1 always, d = 2 often) Att-SVM can be infeasible, which both solvers
  report as status "infeasible".
* Locally optimal selection: the support tokens (t with <A_it, W^mm_alpha> = 1) all score strictly
  below the selected token, gamma_{i alpha_i} > gamma_it (gamma_it = Y_i v^T x_it). The global opt
  (alpha = argmax gamma) is always locally optimal.
* Regularization path: W_R = argmin_{||W||_F <= R} L(W); Theorem: W_R / R -> W^mm_opt/||W^mm_opt||_F.
  W_R is searched by projected normalized GD from path following, random starts and rank-one kicks
  along every query / token pair (`regularization_path`), none of them built from an SVM solution.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import NamedTuple

import numpy as np
import scipy.optimize

FEAS_TOL = 1e-9      # a margin below 1 - FEAS_TOL counts as a violated constraint


class SVMSolution(NamedTuple):
    W: np.ndarray | None     # (d, d) solution, None if infeasible or failed
    status: str              # "optimal" | "infeasible" | "solver_error: ..."
    objective: float         # ||W||_F or ||W||_* (nan if no solution)
    lam: np.ndarray | None   # (n, T-1) dual multipliers of the constraints (t != alpha_i order)
    margins: np.ndarray | None  # (n, T-1) <A_it, W>
    gap: float = 0.0         # nuclear: relative primal-dual gap of the certificate

    @property
    def feasible(self) -> bool:
        return self.status == "optimal"


def differences(X: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """D_it = x_{i alpha_i} - x_it for t != alpha_i, shape (n, T-1, d)."""
    n, T, _ = X.shape
    out = []
    for i in range(n):
        others = [t for t in range(T) if t != int(alpha[i])]
        out.append(X[i, alpha[i]][None, :] - X[i, others])               # (T-1, d)
    return np.stack(out)


def features(X: np.ndarray, Z: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Rows vec(A_it) = vec((x_ia - x_it) z_i^T) (row-major), shape (n(T-1), d*d)."""
    D = differences(X, alpha)                                          # (n, T-1, d)
    A = D[:, :, :, None] * Z[:, None, None, :]                         # (n, T-1, d, d)
    return A.reshape(-1, Z.shape[1] ** 2)


def solve_frobenius(X, Z, alpha) -> SVMSolution:
    """Att-SVM with Frobenius norm, exact (least-distance programming + active-set polish)."""
    X, Z, alpha = np.asarray(X, np.float64), np.asarray(Z, np.float64), np.asarray(alpha)
    n, T, d = X.shape
    M = features(X, Z, alpha)                                          # (m, d^2)
    m = M.shape[0]
    E = np.vstack([M.T, np.ones((1, m))])                              # (d^2+1, m)
    f = np.zeros(d * d + 1)
    f[-1] = 1.0
    try:
        u, _ = scipy.optimize.nnls(E, f, maxiter=50 * m)
    except RuntimeError as e:                                          # no convergence
        return SVMSolution(None, f"solver_error: nnls {e}", np.nan, None, None)
    r = E @ u - f
    if not (r[-1] < -1e-12 and np.linalg.norm(r) > 1e-10):
        return SVMSolution(None, "infeasible", np.nan, None, None)
    w = -r[:-1] / r[-1]                                                # (d^2,)
    lam = u / (-r[-1])
    # polish on the active set: G_SS mu = 1, W = M_S^T mu
    S = lam > 1e-12 * max(lam.max(), 1e-300)
    G = M[S] @ M[S].T
    try:
        mu = np.linalg.solve(G, np.ones(int(S.sum())))
        w_p = M[S].T @ mu
        if np.all(mu > 0) and np.all(M @ w_p >= 1 - FEAS_TOL):
            w, lam = w_p, np.zeros(m)
            lam[S] = mu
    except np.linalg.LinAlgError:
        pass
    margins = M @ w
    if np.any(margins < 1 - 1e-6):
        return SVMSolution(None, "solver_error: margins violated after nnls", np.nan, None, None)
    W = w.reshape(d, d)
    return SVMSolution(W, "optimal", float(np.linalg.norm(W)), lam.reshape(n, T - 1),
                       margins.reshape(n, T - 1))


class PrimalSolution(NamedTuple):
    W: np.ndarray | None     # (d, d) the solver's own primal variable, rescaled to exact feasibility
    status: str              # Clarabel's status ("Solved", ...) or "solver_error: ..."
    objective: float         # ||W||_F of the rescaled primal
    dist_bound: float        # certified ||W - W^mm||_F <= dist_bound (duality gap, strong convexity)
    margins: np.ndarray | None  # (n, T-1) <A_it, W>

    @property
    def solved(self) -> bool:
        return self.status == "Solved"


def solve_frobenius_primal(X, Z, alpha) -> PrimalSolution:
    """Att-SVM (Frobenius) by an interior-point QP on the primal, independent of `solve_frobenius`.

        min_w  (1/2) ||w||^2   s.t.  M w >= 1          (Clarabel; M the rows vec(A_it))

    The returned W is the solver's own primal iterate, not assembled from multipliers as
    sum_k lam_k A_k, so rank W <= min(n, d) is not built in. (SLSQP would not be independent: its
    QP subproblem with the identity Hessian of ||w||^2/2 is the same least-distance program, whose
    solution is a combination of the rows of M.) Certificate: with w_f = w / min(1, min M w)
    (exactly feasible) and lam = max(z, 0) the solver's multipliers, weak duality gives
    f(w_f) - f* <= f(w_f) - g(lam), g(lam) = 1^T lam - ||M^T lam||^2/2, and 1-strong convexity of f
    over the feasible set gives ||w_f - w*||^2 / 2 <= f(w_f) - f*; hence
    ||W - W^mm||_F <= sqrt(2 (f(w_f) - g(lam))) = dist_bound. By Weyl's inequality every singular
    value of W above dist_bound belongs to a nonzero singular value of W^mm (`certified_rank`).
    """
    import clarabel
    import scipy.sparse as sparse
    X, Z, alpha = np.asarray(X, np.float64), np.asarray(Z, np.float64), np.asarray(alpha)
    n, T, d = X.shape
    M = features(X, Z, alpha)                                          # (m, d^2)
    m, p = M.shape
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    settings.tol_gap_abs = settings.tol_gap_rel = 1e-12
    try:
        solver = clarabel.DefaultSolver(sparse.identity(p, format="csc"), np.zeros(p), sparse.csc_matrix(-M),
                                        -np.ones(m), [clarabel.NonnegativeConeT(m)], settings)
        out = solver.solve()
    except Exception as e:                                             # a solver crash is data, not a bug here
        return PrimalSolution(None, f"solver_error: {e}", np.nan, np.inf, None)
    status = str(out.status)
    if status != "Solved":
        return PrimalSolution(None, status, np.nan, np.inf, None)
    w, lam = np.asarray(out.x), np.maximum(np.asarray(out.z), 0.0)
    w = w / min(1.0, float((M @ w).min()))                             # exactly feasible
    upper = 0.5 * float(w @ w)
    lower = float(lam.sum() - 0.5 * np.sum((M.T @ lam) ** 2))
    return PrimalSolution(w.reshape(d, d), status, float(np.linalg.norm(w)),
                          float(np.sqrt(2.0 * max(upper - lower, 0.0))), (M @ w).reshape(n, T - 1))


def certified_rank(W: np.ndarray, dist_bound: float) -> int:
    """#{j : sigma_j(W) > dist_bound}: a lower bound on rank W* for any W* with ||W - W*||_2 <= dist_bound
    (Weyl: sigma_j(W*) >= sigma_j(W) - ||W - W*||_2 > 0)."""
    return int(np.sum(np.linalg.svd(np.asarray(W, np.float64), compute_uv=False) > dist_bound))


def active_sequences(sol: SVMSolution, tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Per sequence: (some margin within `tol` of 1, some multiplier > 0), two (n,) bool arrays.

    Complementary slackness gives lam_it > 0 => margin_it = 1, so the second set is contained in
    the first; they differ only at a degenerate vertex (an active constraint with lam_it = 0)."""
    return np.any(support(sol, tol), axis=1), np.any(sol.lam > 0, axis=1)


def kkt_residuals(sol: SVMSolution, X, Z, alpha) -> dict:
    """Max violations of the four KKT conditions of the Frobenius Att-SVM (all ~0 at optimum)."""
    M = features(np.asarray(X), np.asarray(Z), np.asarray(alpha))
    lam, w = sol.lam.reshape(-1), sol.W.reshape(-1)
    marg = M @ w
    return {"stationarity": float(np.max(np.abs(w - M.T @ lam)) / max(np.abs(w).max(), 1e-300)),
            "dual_feasibility": float(max(0.0, -lam.min())),
            "primal_feasibility": float(max(0.0, (1 - marg).max())),
            "complementary_slackness": float(np.max(np.abs(lam * (marg - 1))))}


def solve_nuclear(X, Z, alpha) -> SVMSolution:
    """Att-SVM* (nuclear norm) with cvxpy + Clarabel, with a primal-dual optimality certificate."""
    import cvxpy as cp
    X, Z, alpha = np.asarray(X, np.float64), np.asarray(Z, np.float64), np.asarray(alpha)
    n, T, d = X.shape
    D = differences(X, alpha)                                          # (n, T-1, d)
    W = cp.Variable((d, d))
    cons = [D[i] @ W @ Z[i] >= 1 for i in range(n)]
    prob = cp.Problem(cp.Minimize(cp.normNuc(W)), cons)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prob.solve(solver=cp.CLARABEL)
    except cp.error.SolverError as e:
        return SVMSolution(None, f"solver_error: {e}", np.nan, None, None)
    if prob.status in ("infeasible", "infeasible_inaccurate"):
        return SVMSolution(None, "infeasible", np.nan, None, None)
    if prob.status != "optimal" or W.value is None:
        return SVMSolution(None, f"solver_error: status {prob.status}", np.nan, None, None)
    Wv = np.asarray(W.value)
    margins = np.einsum("ntd,de,ne->nt", D, Wv, Z)                     # (n, T-1)
    lam = np.maximum(np.stack([np.asarray(c.dual_value).reshape(-1) for c in cons]), 0.0)
    Wv_feas = Wv / min(margins.min(), 1.0)                             # exactly feasible
    upper = float(np.linalg.norm(Wv_feas, "nuc"))
    Mdual = np.einsum("nt,ntd,ne->de", lam, D, Z)                      # sum lam_k A_k
    lower = float(lam.sum() / np.linalg.norm(Mdual, 2))
    gap = (upper - lower) / upper
    return SVMSolution(Wv_feas, "optimal", upper, lam, margins / min(margins.min(), 1.0), gap)


def solve_nuclear_burer_monteiro(X, Z, alpha, key_seed_matrix: np.ndarray, m: int | None = None
                                 ) -> tuple[np.ndarray, float, bool]:
    """min (||K||^2 + ||Q||^2)/2 s.t. (x_ia - x_it)^T K Q^T z_i >= 1 by SLSQP from a given start.

    `key_seed_matrix` is the (2, d, m) starting (K, Q), drawn by the caller from a JAX key.
    Returns (K Q^T, objective, success). The objective equals ||K Q^T||_* at a global optimum.
    """
    X, Z = np.asarray(X, np.float64), np.asarray(Z, np.float64)
    n, T, d = X.shape
    m = m or d
    D = differences(X, np.asarray(alpha))                             # (n, T-1, d)

    def split(p):
        return p[: d * m].reshape(d, m), p[d * m:].reshape(d, m)

    def cons(p):
        K, Q = split(p)
        return np.einsum("ntd,de,ne->nt", D, K @ Q.T, Z).reshape(-1) - 1.0

    def cons_jac(p):
        K, Q = split(p)
        KtZ = Z @ Q                                                    # (n, m)  Q^T z_i
        DK = np.einsum("ntd,dm->ntm", D, K)                            # (n, T-1, m)
        gK = np.einsum("ntd,nm->ntdm", D, KtZ)                         # d/dK of D K Q^T z
        gQ = np.einsum("ne,ntm->ntem", Z, DK)                          # d/dQ
        return np.concatenate([gK.reshape(n * (T - 1), -1), gQ.reshape(n * (T - 1), -1)], axis=1)

    p0 = np.asarray(key_seed_matrix, np.float64).reshape(-1)
    res = scipy.optimize.minimize(lambda p: 0.5 * p @ p, p0, jac=lambda p: p, method="SLSQP",
                                  constraints=[{"type": "ineq", "fun": cons, "jac": cons_jac}],
                                  options={"maxiter": 2000, "ftol": 1e-12})
    K, Q = split(res.x)
    ok = bool(res.success) and cons(res.x).min() > -1e-7
    return K @ Q.T, float(res.fun), ok


def support(sol: SVMSolution, tol: float = 1e-6) -> np.ndarray:
    """(n, T-1) mask of support constraints: margin within `tol` of 1."""
    return sol.margins <= 1 + tol


def is_locally_optimal(sol: SVMSolution, gamma: np.ndarray, alpha: np.ndarray) -> bool:
    """Every support token scores strictly below the selected token (Tarzanagh et al., Def. of LOO)."""
    gamma, alpha = np.asarray(gamma), np.asarray(alpha)
    n, T = gamma.shape
    sup = support(sol)
    for i in range(n):
        others = [t for t in range(T) if t != int(alpha[i])]
        if np.any(gamma[i, others][sup[i]] >= gamma[i, alpha[i]]):
            return False
    return True


def nuclear_over_margin(W: np.ndarray, X, Z, alpha) -> float:
    """||W||_* / min_it <A_it, W>: the nuclear norm of W rescaled to margin exactly 1."""
    D = differences(np.asarray(X), np.asarray(alpha))
    marg = np.einsum("ntd,de,ne->nt", D, np.asarray(W), np.asarray(Z))
    return float(np.linalg.norm(W, "nuc") / marg.min()) if marg.min() > 0 else np.inf


@dataclasses.dataclass(frozen=True)
class PathConfig:
    radii: tuple[float, ...]   # Frobenius radii R of the ball constraint
    steps: int                 # projected normalized GD steps per radius and start
    theta0: float = 0.05       # first step length as a fraction of R
    theta1: float = 1e-5       # last step length as a fraction of R (geometric decay)
    kick: float = 0.0          # rank-one kick length as a fraction of R (0: no kick round)


def kick_directions(inst):
    """The n T unit rank-one directions E_it = x_it q_i^T / ||x_it q_i^T||, shape (n T, d, d) (JAX).

    q_i is column i of pinv(Z) (Z: (n, d) the queries as rows), so z_j^T q_i = delta_ij when the
    queries are independent (d >= n): adding c E_it to W changes the logits of sequence i alone, by
    c x_is^T x_it / ||q_i|| for token s, largest for s = t (unit tokens). A kick along E_it pushes
    sequence i toward selecting token t and leaves the other sequences' logits unchanged. Built
    from the instance's data only (tokens and queries), not from any SVM solution."""
    import jax.numpy as jnp

    n, T, d = inst.X.shape
    Q = jnp.linalg.pinv(inst.Z)                                        # (d, n) z_j^T q_i = delta_ij
    E = inst.X[:, :, :, None] * Q.T[:, None, None, :]                  # (n, T, d, d) x_it q_i^T
    E = E / jnp.linalg.norm(E, axis=(-2, -1), keepdims=True)
    return E.reshape(n * T, d, d)


def regularization_path(inst, starts, cfg: PathConfig):
    """W_R = argmin_{||W||_F <= R} L(W) for each R in cfg.radii, for one instance (JAX, jit-able).

    Projected normalized GD inside the ball from several starting points: the previous radius's
    solution (path following, from W = 0 at the first radius) and R times each unit direction in
    `starts` (shape (S, d, d), the same at every radius, or (len(radii), S, d, d), one set per
    radius). With cfg.kick > 0 a second round follows at every radius (basin hopping along every
    query / token pair): from the best W of the first round, the n T starts
        W + cfg.kick R E_it,        E_it from `kick_directions`,
    each descended the same way; the kick's norm is cfg.kick times the ball's radius (as large as W
    itself at cfg.kick = 1; the kicked start is projected back onto the ball). The start of lowest
    final loss over both rounds is kept and carried to the next radius. Returns (W_R for each
    radius (len(radii), d, d), the final loss of every start (len(radii), 1 + S [+ n T]): start 0
    path following, 1..S `starts`, then the kicks in (i, t) order).
    """
    import jax
    import jax.numpy as jnp

    from theory.models import single_attention as sa

    vg = jax.value_and_grad(lambda W: sa.loss(sa.WParams(W), inst))
    k = jnp.arange(cfg.steps, dtype=jnp.result_type(float))
    thetas = cfg.theta0 * (cfg.theta1 / cfg.theta0) ** (k / max(cfg.steps - 1, 1))
    E = kick_directions(inst)                                          # (n T, d, d)

    def descend(W0, R):
        def step(W, th):
            _, g = vg(W)
            gn = jnp.linalg.norm(g / jnp.max(jnp.abs(g)))
            W = W - th * R * (g / jnp.max(jnp.abs(g))) / jnp.where(gn > 0, gn, 1.0)
            nrm = jnp.linalg.norm(W)
            return W * jnp.minimum(1.0, R / nrm), None
        W, _ = jax.lax.scan(step, W0 * jnp.minimum(1.0, R / jnp.linalg.norm(W0)), thetas)
        return W, vg(W)[0]

    def per_radius(prev, R_starts):
        R, st = R_starts
        cands = jnp.concatenate([prev[None], R * st], axis=0)          # (S+1, d, d)
        Ws, Ls = jax.vmap(lambda W0: descend(W0, R))(cands)
        if cfg.kick > 0:
            kicked = Ws[jnp.argmin(Ls)][None] + cfg.kick * R * E       # (n T, d, d)
            Wk, Lk = jax.vmap(lambda W0: descend(W0, R))(kicked)
            Ws, Ls = jnp.concatenate([Ws, Wk]), jnp.concatenate([Ls, Lk])
        best = jnp.argmin(Ls)
        return Ws[best], (Ws[best], Ls)

    radii = jnp.asarray(cfg.radii, dtype=jnp.result_type(float))
    starts = jnp.asarray(starts)
    if starts.ndim == 3:                                               # one set for every radius
        starts = jnp.broadcast_to(starts, (len(cfg.radii),) + starts.shape)
    prev0 = jnp.zeros(starts.shape[2:], starts.dtype)                 # path following from W = 0
    _, (Ws, Ls) = jax.lax.scan(per_radius, prev0, (radii, starts))
    return Ws, Ls
