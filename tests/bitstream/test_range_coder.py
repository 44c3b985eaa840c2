"""Claims about bitstream.range_coder and bitstream.tables."""

import numpy as np
import pytest

from bitstream import (LicFormatError, decode_categorical, decode_gaussian, encode_categorical,
                       encode_gaussian)
from bitstream.tables import MAX_RADIUS, PRECISION, gaussian_tables

SCALES = np.geomspace(0.11, 256.0, 64)
I32 = np.iinfo(np.int32)


def roundtrip_gaussian(symbols, indexes, scales=SCALES):
    data = encode_gaussian(symbols, indexes, scales)
    decoded = decode_gaussian(data, indexes, scales)
    assert decoded.dtype == np.int32 and decoded.shape == np.shape(indexes)
    np.testing.assert_array_equal(decoded, symbols)
    return data


def roundtrip_categorical(symbols, pmf, offset):
    data = encode_categorical(symbols, pmf, offset)
    decoded = decode_categorical(data, pmf, offset, symbols.shape[1])
    assert decoded.dtype == np.int32 and decoded.shape == symbols.shape
    np.testing.assert_array_equal(decoded, symbols)
    return data


@pytest.mark.parametrize("dist", ["gaussian", "laplace"])
def test_gaussian_roundtrip_random_latents_is_exact(dist):
    rng = np.random.default_rng(1)
    indexes = rng.integers(0, 64, size=(13, 65, 7))
    draw = rng.normal if dist == "gaussian" else rng.laplace
    symbols = np.round(draw(0.0, 1.5 * SCALES[indexes])).astype(np.int32)
    roundtrip_gaussian(symbols, indexes)


def test_gaussian_roundtrip_extreme_values_escape_losslessly():
    rng = np.random.default_rng(2)
    extremes = [I32.max, I32.min, I32.max - 1, I32.min + 1, 0, 1, -1, MAX_RADIUS + 1, -(1 << 16),
                (1 << 16) + 1, 1 << 30, -(1 << 30)]
    symbols = np.array(extremes * 64, dtype=np.int32)
    indexes = rng.integers(0, 64, size=symbols.size)
    roundtrip_gaussian(symbols, indexes)


def test_gaussian_roundtrip_every_scale_index_at_and_beyond_the_table_edge():
    radius, _ = gaussian_tables(SCALES)
    r = radius
    symbols = np.stack([r, -r, r + 1, -r - 1, np.zeros_like(r), r // 2], axis=1).reshape(-1)
    roundtrip_gaussian(symbols.astype(np.int32), np.repeat(np.arange(64), 6))


@pytest.mark.parametrize("shape", [(0,), (0, 5), (3, 0, 2)])
def test_gaussian_empty_arrays_roundtrip(shape):
    data = roundtrip_gaussian(np.zeros(shape, np.int32), np.zeros(shape, np.int64))
    assert len(data) <= 4


def test_categorical_roundtrip_with_out_of_range_values():
    rng = np.random.default_rng(3)
    pmf = rng.integers(1, 1000, size=(6, 21))
    offset = rng.integers(-12, 0, size=6)
    symbols = rng.integers(-20, 20, size=(6, 77))
    symbols[0, :4] = [I32.max, I32.min, 0, -13]
    roundtrip_categorical(symbols.astype(np.int32), pmf, offset)


def test_categorical_roundtrip_table_at_the_int32_edges():
    pmf = np.array([[5, 1, 1], [1, 1, 5]])
    offset = np.array([I32.min, I32.max - 2])
    symbols = np.array([[I32.min, I32.min + 2, I32.max], [I32.max, I32.min, 0]], dtype=np.int32)
    roundtrip_categorical(symbols, pmf, offset)


@pytest.mark.parametrize("shape", [(4, 0), (0, 0)])
def test_categorical_empty_roundtrip(shape):
    pmf = np.ones((shape[0], 3), np.int64)
    roundtrip_categorical(np.zeros(shape, np.int32), pmf, np.zeros(shape[0], np.int64))


def test_encoding_is_deterministic():
    rng = np.random.default_rng(4)
    indexes = rng.integers(0, 64, size=999)
    symbols = np.round(rng.laplace(0.0, SCALES[indexes])).astype(np.int32)
    assert encode_gaussian(symbols, indexes, SCALES) == encode_gaussian(symbols, indexes, SCALES.copy())


def test_golden_bytes_pin_the_format():
    symbols = np.array([0, 1, -1, 3, 0, -7, 100000, 0], dtype=np.int32)
    indexes = np.array([0, 10, 20, 30, 40, 50, 63, 5])
    assert encode_gaussian(symbols, indexes, SCALES).hex() == "e968bded1738849b"
    z = np.array([[0, 1, 2], [5, -3, 99]])
    pmf, offset = np.array([[1, 2, 3, 4], [4, 3, 2, 1]]), np.array([0, -3])
    assert encode_categorical(z, pmf, offset).hex() == "79bba1058494067e"


def test_tables_are_exact_integer_distributions():
    radius, weights = gaussian_tables(SCALES)
    for r, w in zip(radius, weights):
        assert len(w) == 2 * r + 2
        assert w.min() >= 0 and w.sum() + len(w) == 1 << PRECISION
        np.testing.assert_array_equal(w[:r], w[r + 1:2 * r + 1][::-1])  # symmetric
        assert w[-1] >= (1 << PRECISION) >> 16  # escape is always available


def test_information_bounds():
    """In-range symbols cost within 1 % of their ideal -log2 p under the coder's own tables."""
    rng = np.random.default_rng(5)
    indexes = rng.integers(0, 48, size=200_000)
    radius, weights = gaussian_tables(SCALES)
    symbols = np.round(rng.normal(0.0, SCALES[indexes])).astype(np.int64)
    symbols = np.clip(symbols, -radius[indexes], radius[indexes])
    prob = np.array([weights[i][s + radius[i]] + 1 for i, s in zip(indexes, symbols)]) / 2.0**PRECISION
    ideal_bits = -np.log2(prob).sum()
    actual_bits = 8 * len(encode_gaussian(symbols, indexes, SCALES))
    assert ideal_bits <= actual_bits <= 1.01 * ideal_bits + 64


def test_gaussian_tables_are_close_to_the_true_gaussian():
    from math import erf, sqrt
    radius, weights = gaussian_tables(SCALES)
    for i in (0, 20, 40, 63):
        s, r = SCALES[i], radius[i]
        x = np.arange(-r, r + 1)
        cdf = np.array([0.5 * (1 + erf(v / (s * sqrt(2)))) for v in np.append(x - 0.5, r + 0.5)])
        true_p = np.diff(cdf)
        table_p = (weights[i][:-1] + 1) / 2.0**PRECISION
        big = true_p > 1e-4
        np.testing.assert_allclose(table_p[big], true_p[big], rtol=2e-3)


def test_decoding_with_wrong_stream_length_raises_format_error():
    with pytest.raises(LicFormatError):
        decode_gaussian(b"abc", np.zeros(3, np.int64), SCALES)


def test_garbage_never_raises_anything_but_format_error():
    rng = np.random.default_rng(6)
    indexes = rng.integers(0, 64, size=500)
    pmf, offset = rng.integers(1, 50, size=(3, 9)), np.array([-4, 0, 7])
    for n in range(0, 200):
        data = rng.integers(0, 256, size=4 * (n % 40)).astype(np.uint8).tobytes()
        for decode in (lambda d: decode_gaussian(d, indexes, SCALES),
                       lambda d: decode_categorical(d, pmf, offset, 50)):
            try:
                decode(data)
            except LicFormatError:
                pass


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError):
        encode_gaussian(np.zeros(3, np.int32), np.array([0, 1, 64]), SCALES)
    with pytest.raises(ValueError):
        encode_gaussian(np.array([1 << 31]), np.array([0]), SCALES)
    with pytest.raises(ValueError):
        encode_categorical(np.zeros((2, 3), np.int32), np.array([[1, 0], [1, 1]]), np.zeros(2, int))


def test_bad_decoder_arguments_are_value_errors_not_format_errors():
    with pytest.raises(ValueError) as info:
        decode_gaussian(b"", np.array([64]), SCALES)
    assert not isinstance(info.value, LicFormatError)
