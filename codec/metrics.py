"""Distortion as lic measures it: PSNR, the one definition every part of the project imports.

    PSNR = 10 · log10(peak² / MSE)   dB, +inf when MSE = 0

``psnr_from_mse`` is the formula (a float, or a torch tensor elementwise, for training, where
samples are on [0, 1] and ``peak`` is 1).  ``psnr`` compares two images over the colour samples
the decoder returns: gray for "L" images, RGB otherwise; alpha is lossless and not counted.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["psnr", "psnr_from_mse"]


def psnr_from_mse(mse, peak: float = 255.0):
    """PSNR in dB of a mean squared error on the scale whose largest value is ``peak``.

    A float gives a float (+inf for 0); a torch tensor gives a tensor, elementwise."""
    if hasattr(mse, "detach"):
        return 10 * (peak**2 / mse).log10()
    mse = float(mse)
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)


def psnr(a, b) -> float:
    """PSNR in dB between two images on the 8-bit scale (+inf when their samples are equal).

    Each is anything ``codec.compress`` takes (a PIL image, a path, an array, a tensor) or what
    ``decompress`` returned; both are seen as lic codes them (EXIF orientation applied, gray
    compared as gray, alpha left out).  ``ValueError`` if their sizes or channel layouts differ.
    """
    x, y = _samples(a), _samples(b)
    if x.shape != y.shape:
        raise ValueError(f"cannot compare images of different shapes: {x.shape} and {y.shape}")
    return psnr_from_mse(np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2))


def _samples(image) -> np.ndarray:
    from .images import decoded_pixels, to_coded

    coded = to_coded(image)
    return decoded_pixels(coded.rgb, coded.channels)
