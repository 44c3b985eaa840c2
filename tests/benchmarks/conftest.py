"""Small synthetic images (odd sizes, smooth content plus noise) written as PNGs into a temporary folder."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


def synthetic_image(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([128 + 90 * np.sin(x / 7.0 + c) * np.cos(y / 9.0 - c) for c in range(3)], axis=-1)
    noisy = base + rng.normal(0, 8, base.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    synthetic_image(65, 49, seed=0).save(folder / "a.png")
    synthetic_image(64, 48, seed=1).save(folder / "b.png")
    return folder
