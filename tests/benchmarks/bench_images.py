"""Synthetic test images for the benchmark tests (a uniquely named module: other test folders have their own
conftest.py, so ``from conftest import ...`` would be ambiguous)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def synthetic_image(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([128 + 90 * np.sin(x / 7.0 + c) * np.cos(y / 9.0 - c) for c in range(3)], axis=-1)
    noisy = base + rng.normal(0, 8, base.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
