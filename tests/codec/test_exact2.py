"""lic-exact-2, -3, -4 and -5, the compiled scanline coders: exact round trips at every K and bit
depth, what they exploit, and streams that cannot be their own refused in one line."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bitstream import LicFormatError
from codec.lossless import _exact2
from codec.lossless.exact2 import FEW_COLOURS, VERSIONS, decode_residual, encode_residual

from residual_samples import ramp_with_noise

CODERS = sorted(VERSIONS)
WITH_OPTIONS = ["lic-exact-4", "lic-exact-5"]  # an options byte before the range coder's stream


@pytest.mark.parametrize("coder", CODERS)
@pytest.mark.parametrize("max_error", [0, 1, 2, 4])
@pytest.mark.parametrize("shape,maxval", [((1, 9, 13), 255), ((3, 7, 11), 255), ((1, 6, 10), 65535),
                                          ((3, 6, 10), 65535), ((1, 1, 1), 255), ((3, 1, 17), 255),
                                          ((1, 19, 1), 65535), ((3, 5, 4), 15)])
def test_round_trip_within_max_error(shape, maxval, max_error, coder):
    samples = ramp_with_noise(shape, maxval)
    data, rec = encode_residual(samples, maxval, max_error, coder)
    assert np.abs(rec.astype(np.int64) - samples).max() <= max_error and rec.max() <= maxval
    if max_error == 0:
        assert np.array_equal(rec, samples)
    assert np.array_equal(decode_residual(data, shape, maxval, max_error, coder), rec)


@settings(max_examples=60, deadline=None)
@given(samples=arrays(np.int64, st.tuples(st.sampled_from([1, 3]), st.integers(1, 9), st.integers(1, 9)),
                      elements=st.integers(0, 65535)),
       bits=st.sampled_from([1, 8, 16]), max_error=st.integers(0, 3), coder=st.sampled_from(CODERS))
def test_any_samples_round_trip(samples, bits, max_error, coder):
    maxval = (1 << bits) - 1
    samples = samples % (maxval + 1)
    max_error = min(max_error, maxval)
    data, rec = encode_residual(samples, maxval, max_error, coder)
    assert np.abs(rec.astype(np.int64) - samples).max() <= max_error
    assert np.array_equal(decode_residual(data, samples.shape, maxval, max_error, coder), rec)


def test_smooth_images_and_equal_channels_cost_little():
    y, x = np.mgrid[0:64, 0:64]
    smooth = ((x * 3 + y * 2) // 2)[None].astype(np.int64)
    assert len(encode_residual(smooth, 255)[0]) * 8 / smooth.size < 0.5  # a plane: the blend predicts it
    noisy = ramp_with_noise((1, 64, 64), 255, seed=2)
    gray = len(encode_residual(noisy, 255)[0])
    assert len(encode_residual(np.repeat(noisy, 3, axis=0), 255)[0]) < 1.25 * gray  # R and B from G
    assert len(encode_residual(noisy, 255, 4)[0]) < 0.6 * gray
    uniform = np.random.default_rng(0).integers(0, 256, (1, 64, 64))
    # Noise costs its 8 bits and a little more: q spans -255..255 (no reduction modulo 256).
    assert 8 * 64 * 64 < 8 * len(encode_residual(uniform, 255)[0]) < 9 * 64 * 64


@pytest.mark.parametrize("coder", CODERS)
@pytest.mark.parametrize("max_error", [0, 1, 2])
def test_mostly_gray_colour_round_trips_and_costs_less_in_lic_exact_3(coder, max_error):
    gray = ramp_with_noise((1, 40, 52), 255, seed=5)
    rgb = np.repeat(gray, 3, axis=0)
    rgb[0, 10:20, 5:30] = 255 - rgb[0, 10:20, 5:30]  # a coloured patch: R and B leave G there
    rgb[2, 25:, 40:] //= 2
    data, rec = encode_residual(rgb, 255, max_error, coder)
    assert np.abs(rec.astype(np.int64) - rgb).max() <= max_error
    assert np.array_equal(decode_residual(data, rgb.shape, 255, max_error, coder), rec)
    if coder != "lic-exact-2":  # R and B are G's wherever they were next door: fewer bits than lic-exact-2's
        assert len(data) < 0.95 * len(encode_residual(rgb, 255, max_error, "lic-exact-2")[0])


def test_the_same_samples_give_the_same_bytes():
    samples = ramp_with_noise((3, 17, 23), 255, seed=3)
    assert encode_residual(samples, 255, 1)[0] == encode_residual(samples.copy(), 255, 1)[0]


@pytest.mark.parametrize("coder", CODERS)
def test_truncated_or_padded_streams_are_refused(coder):
    samples = ramp_with_noise((3, 12, 11), 255, seed=2)
    data, _ = encode_residual(samples, 255, 0, coder)
    head = int(coder in WITH_OPTIONS)  # the options byte comes before the range coder's stream
    for bad, message in ((data[:-1], "ends early"), (data[: len(data) // 2], "ends early|outside"),
                         (data + b"\0", "left over"), (b"", "too short|options"), (data[:head], "too short|options"),
                         (data[:head] + b"\1" + data[head + 1:], "leading zero")):
        with pytest.raises(LicFormatError, match=message):
            decode_residual(bad, samples.shape, 255, 0, coder)


def _colour_overlay(height=48, width=64, seed=6):
    """A gray ramp with noise and a patch of a few colours over it (a Doppler overlay, say), (3, H, W)."""
    gray = ramp_with_noise((1, height, width), 255, seed=seed)
    rgb = np.repeat(gray, 3, axis=0)
    rng = np.random.default_rng(seed)
    palette = np.array([[255, g, g // 4] for g in range(0, 256, 16)])  # R, G, B: yellow to red
    patch = palette[rng.integers(0, len(palette), (height // 2, width // 2))]
    rgb[:, height // 4:height // 4 + height // 2, width // 4:width // 4 + width // 2] = np.moveaxis(patch, -1, 0)
    return rgb


def _text(height=40, width=56, seed=9):
    """Two gray levels in blocks and strokes (text or graphics on a flat ground), (1, H, W)."""
    rng = np.random.default_rng(seed)
    strokes = rng.random((height // 4, width // 2)) < 0.3
    return np.where(np.kron(strokes, np.ones((4, 2), dtype=bool)), 250, 12)[None].astype(np.int64)


@pytest.mark.parametrize("coder", WITH_OPTIONS)
@pytest.mark.parametrize("max_error", [0, 1, 2, 4])
@pytest.mark.parametrize("image", [_colour_overlay, _text])
def test_lic_exact_4_tools_for_few_colours_round_trip_and_pay(image, max_error, coder):
    samples = image()
    order = [1, 0, 2] if samples.shape[0] == 3 else [0]  # coding order: G, R, B
    source = np.ascontiguousarray(samples[order], dtype=np.uint16)
    rec = np.empty_like(source)
    version = VERSIONS[coder]
    few = _exact2.encode(source, rec, *samples.shape, 255, max_error, version, FEW_COLOURS)
    assert few[0] == FEW_COLOURS and np.abs(rec.astype(np.int64) - source).max() <= max_error
    assert np.array_equal(decode_residual(few, samples.shape, 255, max_error, coder), rec[np.argsort(order)])
    data, best = encode_residual(samples, 255, max_error, coder)  # the smaller of the two streams
    plain = _exact2.encode(source, np.empty_like(source), *samples.shape, 255, max_error, version)
    assert plain[0] == 0 and len(data) == min(len(few), len(plain))
    assert np.array_equal(decode_residual(data, samples.shape, 255, max_error, coder), best)
    if max_error == 0:  # few colours: the tools pay
        assert data == few and len(few) < 0.97 * len(plain)


@pytest.mark.parametrize("coder", WITH_OPTIONS)
def test_lic_exact_4_photographs_do_not_use_the_tools_for_few_colours(coder):
    samples = ramp_with_noise((3, 40, 40), 255, seed=7)
    assert encode_residual(samples, 255, 0, coder)[0][0] == 0


@pytest.mark.parametrize("coder", WITH_OPTIONS)
@pytest.mark.parametrize("options", [2, 3, 128, 255])
@pytest.mark.parametrize("channels", [1, 3])
def test_lic_exact_4_options_that_a_stream_cannot_have_are_refused(options, channels, coder):
    samples = ramp_with_noise((channels, 9, 8), 255, seed=8)
    data, _ = encode_residual(samples, 255, 0, coder)
    with pytest.raises(LicFormatError, match="options"):
        decode_residual(bytes([options]) + data[1:], samples.shape, 255, 0, coder)
    with pytest.raises(ValueError, match="option"):
        _exact2.encode(samples.astype(np.uint16), np.empty(samples.shape, np.uint16), channels, 9, 8, 255, 0,
                       VERSIONS[coder], options)


@settings(max_examples=80, deadline=None)
@given(data=st.binary(max_size=200), shape=st.tuples(st.sampled_from([1, 3]), st.integers(1, 12),
                                                       st.integers(1, 12)), bits=st.sampled_from([8, 16]),
       coder=st.sampled_from(CODERS))
def test_any_bytes_decode_or_raise_a_format_error(data, shape, bits, coder):
    try:
        out = decode_residual(data, shape, (1 << bits) - 1, 0, coder)
    except LicFormatError:
        return
    assert out.shape == shape and out.max() < 1 << bits


def test_bad_arguments_are_value_errors():
    samples = ramp_with_noise((1, 4, 4), 255)
    with pytest.raises(ValueError, match="0..maxval"):
        encode_residual(samples, 100)
    with pytest.raises(ValueError, match="C = 1 or 3"):
        encode_residual(samples[:, :, :, None], 255)
    with pytest.raises(ValueError, match="max_error"):
        encode_residual(samples, 255, 256)
    with pytest.raises(ValueError, match="C = 1 or 3"):
        decode_residual(b"\0" * 8, (2, 4, 4), 255)
    with pytest.raises(ValueError, match="unknown residual coder 'lic-exact-1'"):
        encode_residual(samples, 255, 0, "lic-exact-1")  # codec.lossless.residual's, not this module's


def test_lic_exact_3_is_smaller_than_lic_exact_2_on_a_noisy_ramp():
    samples = ramp_with_noise((3, 48, 64), 255, seed=4)
    assert len(encode_residual(samples, 255, 0, "lic-exact-3")[0]) < len(encode_residual(samples, 255, 0, "lic-exact-2")[0])


def _slope_colour(height=64, width=64, seed=10):
    """(3, H, W) in coding order G, R, B: a textured G, R at half G's contrast and B at a quarter, each
    with noise of +-1: R and B follow G at slopes other than 1."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    g = 128 + 60 * np.sin(x / 5.0) * np.cos(y / 7.0) + rng.normal(0, 6, (height, width))
    planes = [g, 64 + g / 2, 160 - g / 4]
    return np.clip(np.rint([p + rng.integers(-1, 2, (height, width)) for p in planes]), 0, 255).astype(np.int64)


def test_lic_exact_4_learns_how_r_and_b_follow_g():
    """lic-exact-4's adaptive linear sub-prediction learns the slopes: R and B cost less than in
    lic-exact-3, whose predictions from G assume a slope of 1 (13 % less when written)."""
    samples = _slope_colour()[[1, 0, 2]]  # given as R, G, B
    v3, v4 = (len(encode_residual(samples, 255, 0, coder)[0]) for coder in ("lic-exact-3", "lic-exact-4"))
    g3, g4 = (len(encode_residual(samples[1:2], 255, 0, coder)[0]) for coder in ("lic-exact-3", "lic-exact-4"))
    assert v4 - g4 < 0.92 * (v3 - g3)


@pytest.mark.parametrize("coder", WITH_OPTIONS)
@pytest.mark.parametrize("max_error", [0, 3])
@pytest.mark.parametrize("channels", [1, 3])
def test_lic_exact_4_extreme_16_bit_samples_round_trip(channels, max_error, coder):
    """Samples that jump between 0 and 65535 drive the adaptive linear prediction's weights to their
    bounds (and lic-exact-5's error to its 32-bit clamp): the arithmetic stays exact and both sides agree."""
    rng = np.random.default_rng(11)
    samples = np.where(rng.random((channels, 48, 40)) < 0.5, 0, 65535).astype(np.int64)
    samples[:, ::7] = rng.integers(0, 65536, (channels, 7, 40))
    data, rec = encode_residual(samples, 65535, max_error, coder)
    assert np.abs(rec.astype(np.int64) - samples).max() <= max_error
    assert np.array_equal(decode_residual(data, samples.shape, 65535, max_error, coder), rec)


def test_lic_exact_5_is_smaller_than_lic_exact_4_on_textured_colour():
    """lic-exact-5's secondary estimation of the size and sign bits pays on a textured colour image
    (about 0.3 % on Kodak photographs; here a synthetic texture of the same kind)."""
    samples = _slope_colour(96, 96, seed=12)[[1, 0, 2]]
    v4, v5 = (len(encode_residual(samples, 255, 0, coder)[0]) for coder in ("lic-exact-4", "lic-exact-5"))
    assert v5 < v4
