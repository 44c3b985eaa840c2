"""Bjøntegaard delta rate and delta PSNR (VCEG-M33), with PCHIP interpolation.

Each rate-distortion curve is a set of (rate, PSNR) points. BD-rate fits log(rate) as a function of PSNR for both
curves with a piecewise cubic Hermite interpolant (PCHIP, Fritsch & Carlson 1980; monotone, so no overshoot
between points), integrates both fits over the PSNR interval where the curves overlap, and turns the mean
log-rate difference into a percentage:

    BD-rate = (exp( (∫ log r_b − ∫ log r_a) / (p_max − p_min) ) − 1) × 100

This is the "pchip" variant used by CompressAI and by JVET's common test conditions (JVET-K0491 / the CTC
spreadsheet), in place of the original cubic polynomial fit. BD-PSNR swaps the axes: PSNR as a function of
log(rate), averaged over the overlapping log-rate interval.

Conventions: ``bd_rate(rate_a, psnr_a, rate_b, psnr_b)`` is the rate change of **b relative to a** (anchor a), in
percent; negative means b needs fewer bits for the same quality. The rate unit cancels (bpp, bytes, ...).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.interpolate import PchipInterpolator

__all__ = ["bd_rate", "bd_psnr"]


def _sorted_unique(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort points by x and merge points with equal x (mean of y), as PCHIP needs strictly increasing x."""
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    ux, inverse = np.unique(x, return_inverse=True)
    uy = np.bincount(inverse, weights=y) / np.bincount(inverse)
    return ux, uy


def _mean_gap(x_a: np.ndarray, y_a: np.ndarray, x_b: np.ndarray, y_b: np.ndarray) -> float:
    """Mean of (fit_b − fit_a) over the overlap of the two x ranges; the fits are PCHIPs of y over x."""
    x_a, y_a = _sorted_unique(x_a, y_a)
    x_b, y_b = _sorted_unique(x_b, y_b)
    if len(x_a) < 2 or len(x_b) < 2:
        raise ValueError("each curve needs at least two distinct points")
    lo, hi = max(x_a[0], x_b[0]), min(x_a[-1], x_b[-1])
    if not hi > lo:
        raise ValueError(f"curves do not overlap (common range [{lo:.4g}, {hi:.4g}])")
    fit_a, fit_b = PchipInterpolator(x_a, y_a), PchipInterpolator(x_b, y_b)
    return float((fit_b.integrate(lo, hi) - fit_a.integrate(lo, hi)) / (hi - lo))


def _check(rate: Sequence[float], psnr: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    r, p = np.asarray(rate, dtype=np.float64), np.asarray(psnr, dtype=np.float64)
    if r.shape != p.shape or r.ndim != 1:
        raise ValueError(f"rate and PSNR must be 1-D and of equal length, got {r.shape} and {p.shape}")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(p))):
        raise ValueError("rates and PSNRs must be finite")
    if np.any(r <= 0):
        raise ValueError("rates must be positive")
    return r, p


def bd_rate(rate_a: Sequence[float], psnr_a: Sequence[float],
            rate_b: Sequence[float], psnr_b: Sequence[float]) -> float:
    """Average rate difference of curve b against anchor a at equal PSNR, in percent (negative: b is cheaper)."""
    r_a, p_a = _check(rate_a, psnr_a)
    r_b, p_b = _check(rate_b, psnr_b)
    return (float(np.exp(_mean_gap(p_a, np.log(r_a), p_b, np.log(r_b)))) - 1.0) * 100.0


def bd_psnr(rate_a: Sequence[float], psnr_a: Sequence[float],
            rate_b: Sequence[float], psnr_b: Sequence[float]) -> float:
    """Average PSNR difference of curve b against anchor a at equal rate, in dB (positive: b is better)."""
    r_a, p_a = _check(rate_a, psnr_a)
    r_b, p_b = _check(rate_b, psnr_b)
    return _mean_gap(np.log(r_a), p_a, np.log(r_b), p_b)
