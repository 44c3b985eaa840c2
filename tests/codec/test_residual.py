import numpy as np
import pytest

from bitstream import LicFormatError
from codec.residual import decode_residual, encode_residual, lossy_step


def _image(channels, height, width, maxval, seed=0):
    """A smooth ramp with texture and noise, and a blurred 'lossy layer' of it."""
    rng = np.random.default_rng(seed)
    i, j = np.mgrid[:height, :width]
    base = (np.sin(i / 5.0) + np.cos(j / 7.0) + 2) / 4 * maxval
    x = np.stack([base * (0.6 + 0.2 * c) + rng.normal(0, maxval / 40, base.shape) for c in range(channels)])
    x = np.clip(np.round(x), 0, maxval).astype(np.int64)
    x[:, :3, :4] = maxval  # saturated corner
    x[:, -2:, -3:] = 0
    lossy = np.clip(x + rng.normal(0, maxval / 25, x.shape), 0, maxval).astype(np.int64)
    return x, lossy


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("maxval", [255, 1023, 65535])
@pytest.mark.parametrize("max_error", [0, 1, 2, 4])
def test_every_sample_is_within_max_error(channels, maxval, max_error):
    x, lossy = _image(channels, 13, 29, maxval, seed=channels + max_error)
    step = lossy_step(0, maxval)
    data, rec = encode_residual(x, lossy, maxval, max_error, step)
    out = decode_residual(data, lossy, maxval, max_error, step)
    assert np.array_equal(out, rec)
    assert np.abs(out - x).max() <= max_error
    assert out.min() >= 0 and out.max() <= maxval
    if max_error == 0:
        assert np.array_equal(out, x)


def test_residual_costs_fewer_bits_than_raw_samples():
    x, lossy = _image(1, 64, 64, 1023)
    data, _ = encode_residual(x, lossy, 1023, 0, lossy_step(0, 1023))
    assert len(data) * 8 / x.size < 8  # 10-bit samples


def test_one_pixel_and_one_row_images():
    for shape in [(1, 1, 1), (3, 1, 17), (1, 9, 1)]:
        x = np.arange(np.prod(shape)).reshape(shape) % 256
        data, _ = encode_residual(x, np.zeros(shape, np.int64), 255, 0)
        assert np.array_equal(decode_residual(data, np.zeros(shape, np.int64), 255, 0), x)


def test_a_stream_that_decodes_outside_the_stored_range_is_a_format_error():
    x, lossy = _image(1, 16, 16, 1000)
    data, _ = encode_residual(x, lossy, 1000, 0)
    with pytest.raises(LicFormatError):
        decode_residual(data, np.minimum(lossy, 100), 100, 0)


def test_damaged_streams_raise_format_errors():
    x, lossy = _image(3, 11, 17, 255)
    data, _ = encode_residual(x, lossy, 255, 1)
    rng = np.random.default_rng(0)
    for _ in range(30):
        bad = bytearray(data)
        bad[int(rng.integers(len(bad)))] ^= 1 << int(rng.integers(8))
        try:
            out = decode_residual(bytes(bad), lossy, 255, 1)
        except LicFormatError:
            continue
        assert out.min() >= 0 and out.max() <= 255  # a valid-looking decode stays in range
