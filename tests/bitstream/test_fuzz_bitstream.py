"""Fuzz claims: on any bytes, unpack and the decoders return or raise LicFormatError.

CI runs 300 examples per test. For a long run set ``LIC_FUZZ_EXAMPLES``, e.g.
``LIC_FUZZ_EXAMPLES=100000 python -m pytest tests/bitstream/test_fuzz_bitstream.py``.
"""

import os
import zlib

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bitstream import (Header, LicFormatError, decode_categorical, decode_gaussian,
                       encode_categorical, encode_gaussian, pack, unpack)

FUZZ = settings(max_examples=int(os.environ.get("LIC_FUZZ_EXAMPLES", "300")), deadline=None,
                suppress_health_check=list(HealthCheck), derandomize="LIC_FUZZ_EXAMPLES" not in os.environ)

SCALES = np.geomspace(0.11, 256.0, 64)
_rng = np.random.default_rng(7)
INDEXES = _rng.integers(0, 64, size=(4, 9, 11))
SYMBOLS = np.round(_rng.laplace(0.0, SCALES[INDEXES])).astype(np.int32)
SYMBOLS.flat[::50] = np.iinfo(np.int32).max  # exercise the escape tail too
PMF = _rng.integers(1, 100, size=(5, 12))
OFFSET = np.array([-6, -3, 0, 2, 1000])
Z = _rng.integers(-8, 10, size=(5, 17))
Z[2, 3] = np.iinfo(np.int32).min

GAUSSIAN_STREAM = encode_gaussian(SYMBOLS, INDEXES, SCALES)
CATEGORICAL_STREAM = encode_categorical(Z, PMF, OFFSET)
HEADER = Header("lic-cc-v1", b"abcd", 3.5, 768, 512, "RGBA", 12345, icc=b"icc-profile")
VALID = pack(HEADER, [CATEGORICAL_STREAM, GAUSSIAN_STREAM, b"\x00" * 9], alpha=b"alpha-blob")


@st.composite
def mutated(draw, base: bytes):
    """``base`` with random byte edits, then maybe truncated or extended."""
    data = bytearray(base)
    for _ in range(draw(st.integers(0, 4))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    if draw(st.booleans()):
        data = data[:cut]
    if draw(st.booleans()):
        data += draw(st.binary(max_size=16))
    return bytes(data)


def with_fixed_crc(data: bytes) -> bytes:
    """Recompute the trailer so the field checks after the CRC get fuzzed too."""
    return data[:-4] + zlib.crc32(data[:-4]).to_bytes(4, "little") if len(data) >= 4 else data


def only_format_errors(fn, data):
    try:
        fn(data)
    except LicFormatError:
        pass


@FUZZ
@given(st.one_of(mutated(VALID), mutated(VALID).map(with_fixed_crc), st.binary(max_size=200)))
def test_unpack_only_returns_or_raises_format_error(data):
    only_format_errors(unpack, data)


@FUZZ
@given(st.one_of(mutated(GAUSSIAN_STREAM), st.binary(max_size=400)))
def test_gaussian_decoder_only_returns_or_raises_format_error(data):
    only_format_errors(lambda d: decode_gaussian(d, INDEXES, SCALES), data)


@FUZZ
@given(st.one_of(mutated(CATEGORICAL_STREAM), st.binary(max_size=200)))
def test_categorical_decoder_only_returns_or_raises_format_error(data):
    only_format_errors(lambda d: decode_categorical(d, PMF, OFFSET, Z.shape[1]), data)


def test_fuzz_inputs_are_valid_before_mutation():
    assert unpack(VALID)[1][1] == GAUSSIAN_STREAM
    np.testing.assert_array_equal(decode_gaussian(GAUSSIAN_STREAM, INDEXES, SCALES), SYMBOLS)
    np.testing.assert_array_equal(decode_categorical(CATEGORICAL_STREAM, PMF, OFFSET, 17), Z)
