"""Distortion, rate and timing measurements shared by every codec.

All quality numbers are computed on 8-bit RGB, per image; the sweep then averages them over images, as
CompressAI's ``compressai.utils.eval_model`` does (mean of per-image PSNR, not PSNR of the mean MSE).

- ``bpp = 8 * len(data) / (W * H)``: bits per pixel of the real encoded bytes (headers included).
- ``PSNR = 10 * log10(255**2 / MSE)`` with the MSE taken over all pixels and all three channels.
- ``MS-SSIM`` (Wang, Simoncelli & Bovik 2003) with pytorch-msssim on the 0..255 scale (``data_range=255``), and
  ``MS-SSIM dB = -10 * log10(1 - MS-SSIM)``.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Callable, TypeVar

import numpy as np
from PIL import Image

from codec.metrics import psnr_from_mse

__all__ = ["bpp", "mse", "psnr", "ms_ssim", "ms_ssim_db", "median_time"]

T = TypeVar("T")

# pytorch-msssim downsamples 4 times and asserts min(H, W) > (win_size - 1) * 16, i.e. > 160 px for the
# standard 11-tap window. Smaller images (only the tests use them) get the largest odd window that fits.
_STANDARD_WINDOW = 11
_DOWNSAMPLINGS = 4


def _as_array(img: Image.Image | np.ndarray) -> np.ndarray:
    arr = np.asarray(img.convert("RGB") if isinstance(img, Image.Image) else img)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 RGB image, got shape {arr.shape}")
    return arr.astype(np.float64)


def bpp(data: bytes | int, width: int, height: int) -> float:
    """Bits per pixel of an encoded file: 8 * bytes / (width * height). ``data`` is the bytes or their count."""
    n_bytes = data if isinstance(data, int) else len(data)
    return 8.0 * n_bytes / (width * height)


def mse(a: Image.Image | np.ndarray, b: Image.Image | np.ndarray) -> float:
    """Mean squared error over all pixels and channels, on the 0..255 scale."""
    x, y = _as_array(a), _as_array(b)
    if x.shape != y.shape:
        raise ValueError(f"image shapes differ: {x.shape} vs {y.shape}")
    return float(np.mean((x - y) ** 2))


def psnr(a: Image.Image | np.ndarray, b: Image.Image | np.ndarray, max_value: float = 255.0) -> float:
    """RGB PSNR in dB, 10 * log10(MAX^2 / MSE) (lic's one definition, ``codec.metrics``); +inf for
    identical images."""
    return psnr_from_mse(mse(a, b), max_value)


def ms_ssim(a: Image.Image | np.ndarray, b: Image.Image | np.ndarray) -> float:
    """MS-SSIM in [0, 1] of two RGB images, computed on the 0..255 scale (data_range=255)."""
    import torch
    from pytorch_msssim import ms_ssim as _ms_ssim

    x, y = (torch.from_numpy(_as_array(img)).permute(2, 0, 1)[None].float() for img in (a, b))
    side = min(x.shape[-2:])
    win_size = _STANDARD_WINDOW
    while (win_size - 1) * 2**_DOWNSAMPLINGS >= side and win_size > 1:
        win_size -= 2
    if win_size <= 1:
        raise ValueError(f"image too small for MS-SSIM ({side} px)")
    # One thread: the metric is small, and torch's thread pool thrashes when other processes share the CPU.
    # The caller's setting (lic's --threads) is restored afterwards.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            return float(_ms_ssim(x, y, data_range=255, win_size=win_size))
    finally:
        torch.set_num_threads(threads)


def ms_ssim_db(value: float) -> float:
    """MS-SSIM on a dB scale, -10 * log10(1 - MS-SSIM); +inf for a perfect score."""
    return math.inf if value >= 1.0 else -10.0 * math.log10(1.0 - value)


def median_time(fn: Callable[[], T], repeats: int = 3, warmup: int = 1) -> tuple[T, float]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times; return its last result and the median wall
    time in seconds (``time.perf_counter``)."""
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    result = None
    for _ in range(warmup):
        result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)
