import math

import numpy as np
import pytest
from PIL import Image

from benchmarks import metrics


def test_bpp_counts_eight_bits_per_byte_over_pixels():
    assert metrics.bpp(b"\x00" * 300, 40, 30) == pytest.approx(2.0)
    assert metrics.bpp(1200, 40, 30) == pytest.approx(8.0)


@pytest.mark.parametrize("offset", [1, 3, 10])
def test_psnr_of_a_constant_offset(offset):
    # Values kept in 20..200 so adding the offset never clips: MSE is exactly offset².
    rng = np.random.default_rng(offset)
    img = rng.integers(20, 200, size=(33, 47, 3), dtype=np.uint8)
    shifted = img + np.uint8(offset)
    expected = 10 * math.log10(255**2 / offset**2)
    assert metrics.psnr(Image.fromarray(img), Image.fromarray(shifted)) == pytest.approx(expected, abs=1e-9)


def test_psnr_uses_mse_over_all_channels():
    img = np.full((8, 8, 3), 100, dtype=np.uint8)
    other = img.copy()
    other[..., 0] += 6  # one channel off by 6: MSE = 36 / 3 = 12
    assert metrics.psnr(img, other) == pytest.approx(10 * math.log10(255**2 / 12), abs=1e-9)


def test_identical_images_have_infinite_psnr_and_unit_ms_ssim(image_dir):
    img = Image.open(image_dir / "a.png")
    assert metrics.psnr(img, img) == math.inf
    assert metrics.ms_ssim(img, img) == pytest.approx(1.0, abs=1e-6)
    assert metrics.ms_ssim_db(1.0) == math.inf


def test_ms_ssim_db_scale():
    assert metrics.ms_ssim_db(0.99) == pytest.approx(20.0)


def test_ms_ssim_drops_with_noise(image_dir):
    img = np.asarray(Image.open(image_dir / "a.png"))
    noisy = np.clip(img + np.random.default_rng(0).normal(0, 20, img.shape), 0, 255).astype(np.uint8)
    assert 0.0 < metrics.ms_ssim(img, noisy) < 0.99


def test_median_time_returns_result_and_runs_warmup_plus_repeats():
    calls = []
    result, seconds = metrics.median_time(lambda: calls.append(1) or len(calls), repeats=3)
    assert result == 4 and len(calls) == 4 and seconds >= 0
