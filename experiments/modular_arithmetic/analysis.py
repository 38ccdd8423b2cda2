"""Host-side Fourier analysis of trained quadratic MLPs (numpy in, numpy out).

A neuron's weights on the residues, x_n (n = 0..p-1: a row of U or V, or a column of W as a
function of the class q), have the real FFT F_k = sum_n x_n e^{-i omega k n}, k = 0..(p-1)/2. For
x_n = A cos(omega sigma n + phi), F_sigma = (A p / 2) e^{i phi}: the dominant frequency is
argmax_{k >= 1} |F_k|, its phase angle(F_k), and its power fraction |F_k|^2 / sum_{k >= 1} |F_k|^2
(the DC term k = 0 excluded). IPR_r = sum_k (|F_k| / ||F||)^(2r) with the DC term included, r = 2
(d-doshi/Grokking, utils/data_processing.py `calculate_ipr`, on np.fft.rfft magnitudes).
"""
from __future__ import annotations

import numpy as np


def spectrum(X: np.ndarray) -> np.ndarray:
    """rfft over the last axis (the residues): (..., p) -> (..., p//2 + 1) complex."""
    return np.fft.rfft(np.asarray(X, dtype=np.float64), axis=-1)


def dominant(F: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frequency >= 1, its power fraction with DC excluded, its phase) of each spectrum (..., K)."""
    P = np.abs(F[..., 1:]) ** 2
    k = np.argmax(P, axis=-1)
    frac = np.take_along_axis(P, k[..., None], -1)[..., 0] / np.maximum(P.sum(-1), 1e-300)
    phase = np.angle(np.take_along_axis(F[..., 1:], k[..., None], -1)[..., 0])
    return k + 1, frac, phase


def ipr(F: np.ndarray, r: int = 2) -> np.ndarray:
    """Inverse participation ratio sum_k (|F_k| / ||F||)^(2r) of each spectrum (DC included)."""
    A = np.abs(F)
    return np.sum((A / np.maximum(np.sqrt((A ** 2).sum(-1, keepdims=True)), 1e-300)) ** (2 * r), axis=-1)


def wrap(x: np.ndarray) -> np.ndarray:
    """Angle in (-pi, pi]."""
    return np.angle(np.exp(1j * np.asarray(x)))


def project(X: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Each row of X (R, p) replaced by its projection on frequency k_row (cos and sin of omega k n)."""
    p = X.shape[-1]
    F = spectrum(X)
    keep = np.zeros_like(F)
    rows = np.arange(X.shape[0])
    keep[rows, k] = F[rows, k]
    return np.fft.irfft(keep, n=p, axis=-1)


def neuron_analysis(U: np.ndarray, V: np.ndarray, W: np.ndarray) -> dict:
    """Per neuron of one network (U, V (N, p), W (p, N)): dominant frequency of the a-block, b-block
    and output column, the a-block's power fraction and IPR, and phase error
    wrap(phi_out - phi_a - phi_b) (each phase of its own dominant frequency)."""
    Fu, Fv, Fw = spectrum(U), spectrum(V), spectrum(np.asarray(W).T)
    ku, fu, pu = dominant(Fu)
    kv, fv, pv = dominant(Fv)
    kw, fw, pw = dominant(Fw)
    return {"freq_u": ku, "freq_v": kv, "freq_w": kw, "power_u": fu, "power_v": fv, "power_w": fw,
            "ipr_u": ipr(Fu), "phase_a": pu, "phase_b": pv, "phase_out": pw,
            "phase_err": wrap(pw - pu - pv)}


def single_frequency(U: np.ndarray, V: np.ndarray, W: np.ndarray, k: np.ndarray):
    """Every neuron replaced by its projection on its frequency k (N,): (U', V', W')."""
    return project(U, k), project(V, k), project(np.asarray(W).T, k).T
