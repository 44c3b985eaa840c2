"""The residual layer's model: exact round trips at every K, edges and tiles, what it exploits."""

import numpy as np
import pytest

from bitstream import LicFormatError
from codec.lossless.residual import RESIDUAL_TILE, decode_residual, encode_residual

from residual_samples import ramp_with_noise


@pytest.mark.parametrize("max_error", [0, 1, 2, 4])
@pytest.mark.parametrize("shape,maxval", [((1, 9, 13), 255), ((3, 7, 11), 255), ((1, 6, 10), 65535),
                                          ((1, 1, 1), 255), ((3, 1, 17), 255), ((1, 19, 1), 65535)])
def test_round_trip_within_max_error(shape, maxval, max_error):
    samples = ramp_with_noise(shape, maxval)
    data, rec = encode_residual(samples, maxval, max_error)
    assert np.abs(rec - samples).max() <= max_error and rec.min() >= 0 and rec.max() <= maxval
    if max_error == 0:
        assert np.array_equal(rec, samples)
    assert np.array_equal(decode_residual(data, shape, maxval, max_error), rec)


def test_tiles_in_lock_step_round_trip():
    samples = ramp_with_noise((3, 5, RESIDUAL_TILE + 37), 255, seed=1)  # two tiles across, the second one narrow
    data, rec = encode_residual(samples, 255, 0)
    assert np.array_equal(rec, samples)
    assert np.array_equal(decode_residual(data, samples.shape, 255, 0), samples)


def test_smooth_images_and_equal_channels_cost_little():
    y, x = np.mgrid[0:64, 0:64]
    smooth = ((x * 3 + y * 2) // 2)[None].astype(np.int64)
    data, _ = encode_residual(smooth, 255)
    assert len(data) * 8 / smooth.size < 0.5  # a plane: the blend predicts it exactly
    noisy = ramp_with_noise((1, 64, 64), 255, seed=2)
    gray, _ = encode_residual(noisy, 255)
    rgb, _ = encode_residual(np.repeat(noisy, 3, axis=0), 255)
    assert len(rgb) < 1.25 * len(gray)  # R and B predicted from G
    wide, _ = encode_residual(noisy, 255, 4)
    assert len(wide) < 0.6 * len(gray)


def test_a_stream_for_another_image_is_refused_or_caught():
    samples = ramp_with_noise((1, 12, 12), 255)
    data, _ = encode_residual(samples, 255)
    with pytest.raises(LicFormatError):
        decode_residual(data, (1, 12, 11), 255, 0)  # leftover data or samples out of range
    with pytest.raises(ValueError):
        encode_residual(samples, 100)  # samples above maxval


def test_a_hint_both_sides_have_round_trips_and_helps_when_it_is_good():
    samples = ramp_with_noise((3, 20, 30), 255, seed=4)
    rng = np.random.default_rng(5)
    hint = np.clip(samples + rng.integers(-1, 2, samples.shape), 0, 255)
    plain, _ = encode_residual(samples, 255, 0)
    data, rec = encode_residual(samples, 255, 0, hint=hint)
    assert np.array_equal(decode_residual(data, samples.shape, 255, 0, hint=hint), samples)
    assert len(data) < 0.8 * len(plain)
    with pytest.raises(ValueError, match="hint"):
        encode_residual(samples, 255, 0, hint=hint[:, :-1])
