"""Incremental range coding of residual symbols with discretised Laplace densities.

The residual layer's model is sequential (each sample's density depends on samples decoded
before it), so its symbols cannot be handed to the coder in one batch as the lossy layer's are.
``LaplaceEncoder`` / ``LaplaceDecoder`` code one *group* of symbols at a time, in the same
order on both sides, into a single ``stream.queue`` range-coder message; each symbol comes
with a scale index into ``SCALES``.  Knows symbols and probabilities, never images.

Scale index i means a zero-mean Laplace of mean absolute value ``SCALES[i]``
(log-spaced, 1/16 .. 32768).  Scales up to ``TABLE_MAX_SCALE`` use an integer table of
``tables.laplace_tables``; a larger scale b codes ``v >> s`` with the table of b / 2**s and the
low s bits uniformly, where s is the smallest shift with b / 2**s <= ``TABLE_MAX_SCALE``.
The uniform low bits cost at most log2(e) * 2**s / (2 b) <= 1/90 bit over the ideal.

Per group, in this order: the table symbols of the whole group (in the given order, grouped
by table: for each table index in increasing order, its symbols in order), then the low bits
of the shifted ones (in order), then the escape tails of the escaped ones (``range_coder``'s
layout, in order).  A decoder that runs out of data, or reads a symbol its table cannot
produce, raises ``LicFormatError``.
"""

from __future__ import annotations

import functools

import constriction
import numpy as np

from .errors import LicFormatError
from .range_coder import _coder_errors, _decode_escapes, _decoder, _encode_escapes, _to_bytes, _UNIFORM
from .tables import laplace_tables

__all__ = ["SCALES", "scale_index", "LaplaceEncoder", "LaplaceDecoder"]

# 8 scales per octave from 1/16 to 2**15.
SCALES = 2.0 ** (np.arange(-4 * 8, 15 * 8 + 1) / 8.0)
TABLE_MAX_SCALE = 64.0
_N_TABLES = int(np.sum(SCALES <= TABLE_MAX_SCALE))
# Scale index -> (table index, shift).
_SHIFT = np.maximum(0, np.arange(SCALES.size) - (_N_TABLES - 1) + 7) // 8
_TABLE = np.arange(SCALES.size) - 8 * _SHIFT
# Integer thresholds on 16 x mean |v|: index i is chosen when the mean lies between the geometric
# midpoints of SCALES[i - 1] and SCALES[i] (computed once; exact integers from here on).
_THRESHOLDS16 = np.ceil(16.0 * SCALES[:-1] * 2.0 ** (1 / 16)).astype(np.int64)


def scale_index(sum_abs: np.ndarray, count: np.ndarray) -> np.ndarray:
    """The scale index for a mean absolute value ``sum_abs / count`` (integer arrays; exact)."""
    return np.searchsorted(_THRESHOLDS16, (np.asarray(sum_abs, np.int64) * 16) // np.maximum(count, 1),
                           side="right").astype(np.int64)


class _Tables:
    def __init__(self):
        radius, weights = laplace_tables(SCALES[:_N_TABLES])
        self.radius = radius
        self.models = [constriction.stream.model.Categorical(w.astype(np.float64), perfect=False)
                       for w in weights]


@functools.lru_cache(maxsize=1)
def _tables() -> _Tables:
    return _Tables()


def _split(indexes: np.ndarray):
    indexes = np.asarray(indexes, dtype=np.int64)
    if indexes.size and (indexes.min() < 0 or indexes.max() >= SCALES.size):
        raise ValueError(f"scale indexes must be in [0, {SCALES.size})")
    table, shift = _TABLE[indexes], _SHIFT[indexes]
    order = np.argsort(table, kind="stable")
    bounds = np.flatnonzero(np.diff(table[order])) + 1
    starts = np.concatenate([[0], bounds]).tolist()
    ends = np.concatenate([bounds, [table.size]]).tolist()
    return table, shift, order, list(zip(starts, ends))


class LaplaceEncoder:
    """Collects groups of symbols; ``finish()`` returns the stream's bytes."""

    def __init__(self):
        self._tables = _tables()
        self._encoder = constriction.stream.queue.RangeEncoder()

    def encode(self, values: np.ndarray, indexes: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.int64)
        if values.shape != np.shape(indexes) or values.ndim != 1:
            raise ValueError("values and indexes must be 1-D arrays of the same length")
        if values.size == 0:
            return
        table, shift, order, groups = _split(indexes)
        high = values >> shift
        radius = self._tables.radius[table]
        escaped = (high > radius) | (high < -radius)
        local = np.where(escaped, 2 * radius + 1, high + radius).astype(np.int32)[order]
        sorted_table = table[order]
        for start, end in groups:
            self._encoder.encode(local[start:end], self._tables.models[sorted_table[start]])
        shifted = shift > 0
        if shifted.any():
            low = values[shifted] & ((1 << shift[shifted]) - 1)
            self._encoder.encode(low.astype(np.int32), _UNIFORM, (1 << shift[shifted]).astype(np.int32))
        r = radius[escaped]
        _encode_escapes(self._encoder, high[escaped], -r, r)

    def finish(self) -> bytes:
        return _to_bytes(self._encoder)


class LaplaceDecoder:
    """Decodes the groups of a ``LaplaceEncoder`` stream, given the same scale indexes."""

    def __init__(self, data: bytes):
        self._tables = _tables()
        with _coder_errors():
            self._decoder = _decoder(data)

    def decode(self, indexes: np.ndarray) -> np.ndarray:
        indexes = np.asarray(indexes, dtype=np.int64)
        if indexes.size == 0:
            return np.zeros(0, dtype=np.int64)
        table, shift, order, groups = _split(indexes)
        radius = self._tables.radius[table]
        with _coder_errors():
            local_sorted = np.empty(table.size, dtype=np.int64)
            sorted_table = table[order]
            for start, end in groups:
                local_sorted[start:end] = self._decoder.decode(self._tables.models[sorted_table[start]], end - start)
            local = np.empty_like(local_sorted)
            local[order] = local_sorted
            high = local - radius
            escaped = high > radius
            shifted = shift > 0
            low = np.zeros(table.size, dtype=np.int64)
            if shifted.any():
                low[shifted] = self._decoder.decode(_UNIFORM, (1 << shift[shifted]).astype(np.int32))
            if escaped.any():
                r = radius[escaped]
                high[escaped] = _decode_escapes(self._decoder, -r, r)
        return (high << shift) + low

    def finish(self) -> None:
        """Refuse a stream with data left over."""
        if not self._decoder.maybe_exhausted():
            raise LicFormatError("corrupt: residual stream has data left over")
