import numpy as np
import pytest

from bitstream import LicFormatError
from bitstream.residual_coder import SCALES, LaplaceDecoder, LaplaceEncoder, scale_index


def _groups(seed=0, count=60):
    rng = np.random.default_rng(seed)
    groups = []
    for _ in range(count):
        n = int(rng.integers(0, 40))
        idx = rng.integers(0, SCALES.size, n)
        values = np.round(rng.laplace(0, SCALES[idx])).astype(np.int64)
        if n:
            values[0] = values[0] * 997 + 3  # far outside some tables: escapes
        groups.append((values, idx))
    return groups


def test_groups_round_trip_with_escapes_and_shifts():
    encoder = LaplaceEncoder()
    for values, idx in _groups():
        encoder.encode(values, idx)
    data = encoder.finish()
    decoder = LaplaceDecoder(data)
    for values, idx in _groups():
        assert np.array_equal(decoder.decode(idx), values)
    decoder.finish()


def test_rate_is_close_to_the_laplace_entropy():
    rng = np.random.default_rng(1)
    for i in (40, 100, 140):  # a table, the largest tables, shifted
        b = SCALES[i]
        values = np.round(rng.laplace(0, b, 50_000)).astype(np.int64)
        encoder = LaplaceEncoder()
        encoder.encode(values, np.full(values.size, i))
        bits = len(encoder.finish()) * 8 / values.size
        a = np.abs(values)
        p = np.where(a == 0, 1 - np.exp(-0.5 / b), 0.5 * (np.exp(-(a - 0.5) / b) - np.exp(-(a + 0.5) / b)))
        assert bits <= -np.log2(p).mean() + 0.02  # the ideal code length under the true density


def test_scale_index_is_monotone_and_exact():
    sums = np.arange(0, 5000, 7)
    idx = scale_index(sums, np.full(sums.size, 10))
    assert (np.diff(idx) >= 0).all() and idx[0] == 0
    assert scale_index(np.array([10 * 1024]), np.array([10]))[0] == np.argmin(np.abs(SCALES - 1024))


@pytest.mark.parametrize("cut", [4, 8, 40])
def test_truncated_or_extended_stream_raises_nothing_but_format_errors(cut):
    """The range coder cannot always tell (the container's CRCs do); it never raises anything else."""
    encoder = LaplaceEncoder()
    for values, idx in _groups(2):
        encoder.encode(values, idx)
    data = encoder.finish()
    for bad in (data[:-cut], data + b"\x01" * cut, data[:-cut] + b"\xff" * cut):
        try:
            decoder = LaplaceDecoder(bad)
            for _, idx in _groups(2):
                decoder.decode(idx)
            decoder.finish()
        except LicFormatError:
            pass
