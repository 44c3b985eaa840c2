"""Two small synthetic PNGs of odd sizes in a temporary folder."""

from __future__ import annotations

import pytest
from bench_images import synthetic_image


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    synthetic_image(65, 49, seed=0).save(folder / "a.png")
    synthetic_image(64, 48, seed=1).save(folder / "b.png")
    return folder
