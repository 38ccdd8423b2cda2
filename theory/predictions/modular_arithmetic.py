"""Predictions for `modular_arithmetic`: Gromov's closed-form network for a + b mod p and the
Gaussian model of its accuracy against width. Nothing here trains.

Gromov 2023 ("Grokking modular arithmetic", arXiv 2301.02679, Sec. 3): the quadratic MLP
f(a, b) = W2 (W1 [e_a; e_b])^2 (theory/models/quadratic_mlp.py) with N neurons, neuron i carrying a
frequency sigma_i and phases phi1_i, phi2_i, phi3_i = phi1_i + phi2_i (omega = 2 pi / p):

    U[i, n] = cos(omega sigma_i n + phi1_i)     (a-block of W1)
    V[i, n] = cos(omega sigma_i n + phi2_i)     (b-block of W1)
    W[q, i] = cos(-omega sigma_i q - phi3_i)    (= cos(omega sigma_i q + phi3_i), the output row)

Product to sum (proofs/modular_arithmetic.py, prove_product_to_sum). With alpha = omega sigma a + phi1,
beta = omega sigma b + phi2, gamma = omega sigma q + phi3, a neuron contributes

    (cos alpha + cos beta)^2 cos gamma = 1/2 cos(alpha + beta - gamma) + noise,
    noise = cos gamma + 1/4 [cos(2 alpha - gamma) + cos(2 alpha + gamma) + cos(2 beta - gamma)
            + cos(2 beta + gamma)] + 1/2 [cos(alpha + beta + gamma) + cos(alpha - beta - gamma)
            + cos(alpha - beta + gamma)],

and alpha + beta - gamma = omega sigma (a + b - q) carries no phase: the coherent part of the
network is C(m) = sum_i 1/2 cos(omega sigma_i m), m = a + b - q mod p. With "balanced"
frequencies (sigma cycled over 1..(p-1)/2, N a multiple of (p-1)/2) and
sum_{sigma=1}^{(p-1)/2} cos(omega sigma m) = -1/2 for m != 0 mod p (prove_balanced_sum):

    C(0) = N/2 (the correct class q = a + b mod p),   C(m != 0) = -N/(2(p-1)).

Noise variance (phases uniform and independent). Each noise term has a phase c1 phi1 + c2 phi2 with
(c1, c2) in {(1,1), (1,-1), (3,1), (-1,1), (1,3), (2,2), (0,-2), (2,0)}; only cos(2 alpha - gamma)
and cos(2 beta - gamma) share a phase (up to sign), so per neuron

    Var = 1/2 + 2/32 + (1/16)(1 + cos(2 omega sigma m)) + 3/8 = 1 + cos(2 omega sigma m)/16,

which with balanced frequencies averages to exactly 1 over the p classes (1 + 1/16 for the correct
class, 1 - 1/(16(p-1)) for each other). Phase averaging: shifting every neuron's phases by
(theta1, theta2) = 2 pi k (1, 3) / 7 multiplies a noise term of phase vector c by
exp(2 pi i k (c1 + 3 c2) / 7), and c1 + 3 c2 in {4, -2, 6, 2, 10, 8, -6, 2} is never 0 mod 7, so the
mean of the network over k = 0..6 is exactly C(m): this is how the coherent part is measured
(experiments/modular_arithmetic/parts/closed_form.py; the lattice is checked in tests).

Gaussian accuracy model. Treat the noise of the p logits of a pair as independent N(0, N). The pair
is correct iff xi_q - xi_c < N/2 + N/(2(p-1)) = N p / (2(p-1)) for every wrong class q; conditioning
on xi_c = sqrt(N) Z,

    acc(p, N) = E_Z[ Phi(Z + sqrt(N) p / (2(p-1)))^(p-1) ],   Z ~ N(0, 1),

integrated here by Gauss-Hermite quadrature (probabilists' weight e^{-z^2/2}, GH_NODES nodes; the
integrand is smooth and bounded, and the tests compare with scipy.integrate.quad to 1e-10).

Any width (the accuracy-against-width check). Below (p-1)/2 neurons, or between multiples of it, the
coherent part of the wrong classes is not constant: class q = c - m scores C(m) + xi_q, C(m) as above
with the config's deterministic frequency cycle sigma_i = 1 + (i mod (p-1)/2). Keep the independent
noise model xi_q = sqrt(N v) eps_q, eps_q iid N(0, 1), v = 1 (the per-neuron variance
1 + cos(2 omega sigma m)/16 averaged over the p offsets is exactly 1 at every N, since
sum_m cos(2 omega sigma m) = 0 for sigma != 0 mod p). The pair is correct iff
sqrt(N) eps_0 + C(0) > sqrt(N) eps_m + C(m) for every m != 0, i.e. eps_m < eps_0 + (C(0) - C(m)) / sqrt(N);
conditioning on eps_0 = Z,

    acc(p, N) = E_Z[ prod_{m=1}^{p-1} Phi(Z + (C(0) - C(m)) / sqrt(N)) ]       (coherent_accuracy)

which is the balanced formula when (p-1)/2 divides N (C(0) - C(m) = N p / (2(p-1)) for every m). At
p = 97, N = 25 (frequencies 1..25 only) it gives 0.451 where the balanced formula gives 0.515; 60
constructions average 0.454 +- 0.006. Keeping v per offset (v_0 = 17/16 on the correct class) moves
it by <= 0.006 at the widths checked, downwards, away from the measurements; the remaining bias (the
model is low by up to ~0.05 at N = 50, p = 97) is the noise's correlation across the classes of one
pair (the same neuron phases enter every class), which the independent model leaves out.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import log_ndtr, ndtr

from theory.models.quadratic_mlp import QuadraticMLP

GH_NODES = 300                 # Gauss-Hermite nodes: 1e-15 of quad at p = 97 (120 nodes: 7e-10)
PHASE_SHIFTS = 7               # shifts (phi1, phi2) += 2 pi k (1, 3) / 7, k = 0..6: kill every noise phase


def half(p: int) -> int:
    """(p - 1) / 2, the number of distinct frequencies of a real Fourier basis mod p (p odd)."""
    return (p - 1) // 2


def balanced_frequencies(p: int, N: int) -> np.ndarray:
    """sigma_i = 1 + (i mod (p-1)/2), i = 0..N-1: every frequency equally often when (p-1)/2 | N."""
    return 1 + np.arange(N) % half(p)


def balanced_width(p: int, near: int) -> int:
    """The multiple of (p-1)/2 nearest `near` (at least (p-1)/2): 297 at p = 23, 288 at 97, 280 at 113."""
    h = half(p)
    return h * max(1, int(round(near / h)))


def balanced_width_at_least(p: int, n: int) -> int:
    """The smallest multiple of (p-1)/2 that is >= n."""
    h = half(p)
    return h * max(1, -(-n // h))


MAX_NEURONS = 4096             # phases are drawn for this many neurons; a width-N network takes the first N


@jax.jit
def _phases(key: jax.Array) -> jax.Array:
    """(2, MAX_NEURONS) phases phi1, phi2 ~ U[0, 2 pi) (one draw shape: one compile)."""
    return jax.random.uniform(key, (2, MAX_NEURONS), maxval=2 * jnp.pi)


def construct_gromov(p: int, N: int, key: jax.Array, shift1: float = 0.0, shift2: float = 0.0) -> QuadraticMLP:
    """Gromov's network with balanced frequencies and phases phi1, phi2 ~ U[0, 2 pi) from `key`,
    phi3 = phi1 + phi2, as float64 numpy arrays. Neuron i takes entry i of two phase draws of length
    MAX_NEURONS, so the width-N network of a key is the first N neurons of every wider one.
    `shift1`, `shift2` add a common shift to every phi1, phi2 (phi3 follows): the phase average of
    the coherent part (the frequencies stay the same)."""
    if not 0 < N <= MAX_NEURONS:
        raise ValueError(f"width {N} outside 1..{MAX_NEURONS}")
    phi = np.asarray(_phases(key), dtype=np.float64)[:, :N]
    return construct_from_phases(p, phi[0] + shift1, phi[1] + shift2)


def construct_from_phases(p: int, phi1: np.ndarray, phi2: np.ndarray) -> QuadraticMLP:
    """The closed-form weights for phases phi1, phi2 of shape (..., N) (leading axes: networks):
    U (..., N, p), V (..., N, p), W (..., p, N), frequencies balanced over the N neurons."""
    N = phi1.shape[-1]
    ws = 2 * np.pi / p * balanced_frequencies(p, N)                                # (N,)
    n = np.arange(p)                                                               # (p,)
    U = np.cos(ws[:, None] * n[None, :] + phi1[..., :, None])                      # (..., N, p)
    V = np.cos(ws[:, None] * n[None, :] + phi2[..., :, None])                      # (..., N, p)
    W = np.cos(-ws[None, :] * n[:, None] - (phi1 + phi2)[..., None, :])            # (..., p, N)
    return QuadraticMLP(U, V, W)


def phases_batch(keys: jax.Array, N: int) -> tuple[np.ndarray, np.ndarray]:
    """(phi1, phi2), each (R, N): the phases construct_gromov draws from each of R keys."""
    phi = np.asarray(jax.vmap(_phases)(keys), dtype=np.float64)[:, :, :N]
    return phi[:, 0], phi[:, 1]


def coherent_by_offset(p: int, N: int) -> np.ndarray:
    """C(m) = sum_i 1/2 cos(omega sigma_i m) for m = 0..p-1 (balanced frequency cycle, any N)."""
    m = np.arange(p)
    ws = 2 * np.pi / p * balanced_frequencies(p, N)
    return 0.5 * np.cos(np.outer(m, ws)).sum(axis=1)                               # (p,)


def coherent_balanced(p: int, N: int) -> np.ndarray:
    """The closed form of C(m) when (p-1)/2 divides N: N/2 at m = 0, -N/(2(p-1)) elsewhere."""
    out = np.full(p, -N / (2.0 * (p - 1)))
    out[0] = N / 2.0
    return out


def noise_variance_per_neuron(p: int, N: int) -> np.ndarray:
    """Var of one neuron's noise, averaged over the N neurons, at offset m = 0..p-1:
    mean_i [1 + cos(2 omega sigma_i m) / 16]."""
    m = np.arange(p)
    ws = 2 * np.pi / p * balanced_frequencies(p, N)
    return 1.0 + np.cos(2 * np.outer(m, ws)).mean(axis=1) / 16.0                  # (p,)


def noise_variance_mean(p: int, N: int) -> float:
    """Noise variance / N averaged over the p classes (exactly 1 at balanced widths)."""
    return float(noise_variance_per_neuron(p, N).mean())


def margin(p: int, N: int) -> float:
    """sqrt(N) p / (2(p-1)): the coherent gap N p / (2(p-1)) in units of the noise s.d. sqrt(N)."""
    return math.sqrt(N) * p / (2.0 * (p - 1))


@functools.lru_cache(maxsize=None)
def gauss_hermite(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilists' Gauss-Hermite nodes and weights / sqrt(2 pi) (weights sum to 1), computed once per
    node count (numpy's eigen-solver takes ~0.1-2 s at 300 nodes; the figure evaluates ~500 widths)."""
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    z.flags.writeable = False
    w = w / math.sqrt(2 * math.pi)
    w.flags.writeable = False
    return z, w


def gaussian_accuracy(p: int, N: int, nodes: int = GH_NODES) -> float:
    """acc(p, N) = E_Z[Phi(Z + margin)^(p-1)] by Gauss-Hermite quadrature (weight e^{-z^2/2})."""
    z, w = gauss_hermite(nodes)
    return float(np.sum(w * ndtr(z + margin(p, N)) ** (p - 1)))


def coherent_accuracy(p: int, N: int, nodes: int = GH_NODES) -> float:
    """acc(p, N) = E_Z[prod_{m != 0} Phi(Z + (C(0) - C(m)) / sqrt(N))] with the exact coherent part
    C(m) of the balanced frequency cycle at width N (any N; equals gaussian_accuracy when (p-1)/2 | N)."""
    z, w = gauss_hermite(nodes)
    C = coherent_by_offset(p, N)                                                   # (p,)
    gap = (C[0] - C[1:]) / math.sqrt(N)                                            # (p-1,)
    log_prod = log_ndtr(z[:, None] + gap[None, :]).sum(axis=1)                     # (nodes,)
    return float(np.sum(w * np.exp(log_prod)))


def expected_errors(p: int, N: int) -> float:
    """p^2 (1 - acc(p, N)): the Gaussian model's expected number of wrong pairs."""
    return p * p * (1.0 - gaussian_accuracy(p, N))
