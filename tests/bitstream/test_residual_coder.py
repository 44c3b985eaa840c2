"""Adaptive context coding of residual symbols: tokens, round trips, adaptation, bad streams."""

import numpy as np
import pytest

from bitstream import LicFormatError
from bitstream.residual_coder import N_TOKENS, ContextDecoder, ContextEncoder, prior, tokenize
from bitstream.residual_coder import _untokenize


def test_tokens_cover_every_value_and_invert():
    values = np.concatenate([np.arange(-300, 301), -np.arange(1, 23), 2 ** np.arange(4, 23), -(2 ** np.arange(4, 23)),
                             [(1 << 22) - 1, -(1 << 22) + 1]]).astype(np.int64)
    tokens, n_low, low = tokenize(values)
    assert tokens.min() >= 0 and tokens.max() < N_TOKENS
    assert np.all(low < (1 << n_low))
    assert np.array_equal(_untokenize(tokens, low), values)
    assert np.array_equal(tokens[300 - 7:300 + 8], [13, 11, 9, 7, 5, 3, 1, 0, 2, 4, 6, 8, 10, 12, 14])


def _round_trip(groups, counts):
    encoder = ContextEncoder(counts)
    for values, contexts in groups:
        encoder.encode(values, contexts)
    data = encoder.finish()
    decoder = ContextDecoder(data, counts)
    for values, contexts in groups:
        assert np.array_equal(decoder.decode(contexts), values)
    decoder.finish()
    return data


def test_groups_round_trip_with_any_values_and_contexts():
    rng = np.random.default_rng(0)
    counts = prior(np.array([0.1, 1.0, 30.0, 3000.0]))
    groups = []
    for n in (1, 7, 0, 300, 50):
        contexts = rng.integers(0, 4, n)
        scale = np.array([0.1, 1.0, 30.0, 3000.0])[contexts]
        values = np.round(rng.laplace(0, scale)).astype(np.int64)
        values[:2] = [(1 << 22) - 1, -(1 << 22) + 1][: min(n, 2)] if n else values[:2]
        groups.append((values, contexts))
    _round_trip(groups, counts)


def test_counts_adapt_to_what_a_context_sees():
    counts = prior(np.array([20.0]))  # a prior far from the data: mostly zeros
    groups = [(np.zeros(50, np.int64), np.zeros(50, np.int64)) for _ in range(200)]
    data = _round_trip(groups, counts)
    assert len(data) * 8 / 10_000 < 0.15  # bits per symbol (the prior alone: 5), the first 200 included


def test_bad_streams_and_arguments():
    counts = prior(np.array([2.0]))
    encoder = ContextEncoder(counts)
    encoder.encode(np.arange(-50, 50), np.zeros(100, np.int64))
    data = encoder.finish()
    decoder = ContextDecoder(data + b"\x12\x34\x56\x78" * 8, counts)
    decoder.decode(np.zeros(100, np.int64))
    with pytest.raises(LicFormatError):
        decoder.finish()
    with pytest.raises(LicFormatError):
        ContextDecoder(data[:-1], counts)  # not whole 32-bit words
    with pytest.raises(ValueError):
        encoder.encode(np.zeros(3, np.int64), np.array([0, 1, 0]))  # no context 1
    with pytest.raises(ValueError):
        encoder.encode(np.array([1 << 23]), np.zeros(1, np.int64))
    with pytest.raises(ValueError):
        ContextEncoder(np.zeros((1, N_TOKENS), np.int64))


def test_priors_are_integers_shaped_by_their_scale():
    small, large = prior(np.array([0.05, 100.0]))
    assert small.dtype == np.int64 and small.min() >= 1
    assert small[0] > 0.9 * small.sum()  # |v| ~ 0.05: almost always 0
    assert large[0] < 0.02 * large.sum() and large[16:].sum() > 0.5 * large.sum()
    assert np.array_equal(prior(np.array([0.05, 100.0])), np.stack([small, large]))
