"""Adaptive context coding of residual symbols: signed integers, each with a context number.

The residual layer's model is sequential (a sample's context depends on samples decoded before
it), so its symbols reach the coder one *group* at a time, in the same order on both sides, and
go into a single ``stream.queue`` range-coder message.  Knows symbols, contexts and counts, never
images.

Binarisation (the hybrid integer tokens of JPEG XL's entropy coder, with 4 direct bits):

    u = 2v for v >= 0, -2v - 1 for v < 0                   (zigzag)
    u < 16:  token u, nothing else
    u >= 16: token 16 + 2 (L - 5) + b, with L the bit length of u and b its second-highest bit;
             then the L - 2 bits below b, uniformly

Each context keeps integer counts of its ``N_TOKENS`` tokens, starting from a prior (``prior``:
a discretised Laplace density of a given mean |v|, from ``tables.laplace_tables``, so identical
on every machine) and adapting as it codes: +``INCREMENT`` per token seen (applied every ``REFRESH`` groups), all counts of a
context halved (never below 1) once its total exceeds ``LIMIT``.  A token's probability is its
count over the context's total, quantised by constriction's ``Categorical``; the counts are
integers, so both sides build the same tables.  Counts are updated after each group.

Per group, in this order: the tokens, context by context in increasing context number (each
context's in group order); then the low bits of the tokens that have them, in group order.
"""

from __future__ import annotations

import constriction
import numpy as np

from .errors import LicFormatError
from .stream import UNIFORM, check_exhausted, decoding_errors, open_decoder, to_bytes
from .tables import laplace_tables

__all__ = ["N_TOKENS", "INCREMENT", "LIMIT", "prior", "tokenize", "ContextEncoder", "ContextDecoder"]

DIRECT = 16
MAX_BITS = 24  # |v| < 2**23
N_TOKENS = DIRECT + 2 * (MAX_BITS - 4)
INCREMENT = 32
LIMIT = 1 << 16
PRIOR_TOTAL = 24 * INCREMENT
REFRESH = 4  # groups between count updates: tables are rebuilt 4x less often, adaptation barely slower  # the prior weighs as much as 24 symbols


def tokenize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tokens, number of low bits, low bits) of int64 ``values``."""
    u = np.where(values >= 0, 2 * values, -2 * values - 1)
    length = np.frexp(u.astype(np.float64))[1].astype(np.int64)  # exact: u < 2**53
    big = u >= DIRECT
    n_low = np.where(big, length - 2, 0)
    tokens = np.where(big, DIRECT + 2 * (length - 5) + ((u >> np.maximum(n_low, 0)) & 1), u)
    return tokens, n_low, u & ((1 << n_low) - 1)


def _low_bits(tokens: np.ndarray) -> np.ndarray:
    return np.where(tokens >= DIRECT, (tokens - DIRECT) // 2 + 3, 0)


def _untokenize(tokens: np.ndarray, low: np.ndarray) -> np.ndarray:
    u = np.where(tokens >= DIRECT, ((2 + (tokens - DIRECT) % 2) << _low_bits(tokens)) + low, tokens)
    return np.where(u % 2 == 0, u // 2, -(u + 1) // 2)


def prior(mean_abs: np.ndarray) -> np.ndarray:
    """(len(mean_abs), N_TOKENS) int64 starting counts: a discretised Laplace of each mean |v|."""
    mean_abs = np.asarray(mean_abs, dtype=np.float64)
    radius, weights = laplace_tables(mean_abs)
    out = np.zeros((mean_abs.size, N_TOKENS), np.int64)
    for row, (r, w) in enumerate(zip(radius.tolist(), weights)):
        tokens = tokenize(np.arange(-r, r + 1, dtype=np.int64))[0]
        mass = np.bincount(tokens, w[:-1], N_TOKENS)  # float64 sums of integers < 2**53: exact
        out[row] = np.maximum(mass.astype(np.int64) * PRIOR_TOTAL >> 24, 1)
    return out


class _Counts:
    def __init__(self, counts: np.ndarray):
        counts = np.asarray(counts, dtype=np.int64)
        if counts.ndim != 2 or counts.shape[1] != N_TOKENS or counts.size == 0 or counts.min() < 1:
            raise ValueError(f"counts must be a non-empty (contexts, {N_TOKENS}) array of positive integers")
        self.counts = counts.copy()
        self.total = self.counts.sum(1)
        self.pending = np.zeros(counts.size, dtype=np.int64)
        self.calls = 0
        self.models = {}

    def groups(self, contexts: np.ndarray):
        contexts = np.asarray(contexts, dtype=np.int64)
        if contexts.size and (contexts.min() < 0 or contexts.max() >= self.counts.shape[0]):
            raise ValueError("context out of range")
        order = np.argsort(contexts, kind="stable")
        sorted_ctx = contexts[order]
        starts = np.flatnonzero(np.diff(sorted_ctx, prepend=-1))
        ends = np.append(starts[1:], sorted_ctx.size)
        return order, [(int(sorted_ctx[s]), int(s), int(e)) for s, e in zip(starts, ends)]

    def model(self, context: int):
        model = self.models.get(context)
        if model is None:
            model = constriction.stream.model.Categorical(self.counts[context].astype(np.float64), perfect=False)
            self.models[context] = model
        return model

    def update(self, contexts: np.ndarray, tokens: np.ndarray) -> None:
        """Count the group's tokens; every ``REFRESH`` groups the counts (and tables) change."""
        self.pending += np.bincount(contexts * N_TOKENS + tokens, minlength=self.pending.size)
        self.calls += 1
        if self.calls % REFRESH:
            return
        n_ctx = self.counts.shape[0]
        seen = self.pending.reshape(n_ctx, N_TOKENS)
        changed = np.flatnonzero(seen.any(axis=1))
        self.counts[changed] += INCREMENT * seen[changed]
        self.total[changed] = self.counts[changed].sum(1)
        full = changed[self.total[changed] > LIMIT]
        if full.size:
            self.counts[full] = np.maximum(self.counts[full] >> 1, 1)
            self.total[full] = self.counts[full].sum(1)
        for ctx in changed.tolist():
            self.models.pop(ctx, None)
        self.pending[:] = 0


class ContextEncoder:
    """Collects groups of (value, context) symbols; ``finish()`` returns the stream's bytes."""

    def __init__(self, counts: np.ndarray):
        self._counts = _Counts(counts)
        self._encoder = constriction.stream.queue.RangeEncoder()

    def encode(self, values: np.ndarray, contexts: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.int64)
        if values.shape != np.shape(contexts) or values.ndim != 1:
            raise ValueError("values and contexts must be 1-D arrays of the same length")
        if values.size == 0:
            return
        if np.abs(values).max() >= 1 << (MAX_BITS - 1):
            raise ValueError(f"|value| must be below 2**{MAX_BITS - 1}")
        contexts = np.asarray(contexts, dtype=np.int64)
        tokens, n_low, low = tokenize(values)
        order, groups = self._counts.groups(contexts)
        sorted_tokens = tokens[order].astype(np.int32)
        for ctx, start, end in groups:
            self._encoder.encode(sorted_tokens[start:end], self._counts.model(ctx))
        has_low = n_low > 0
        if has_low.any():
            self._encoder.encode(low[has_low].astype(np.int32), UNIFORM, (1 << n_low[has_low]).astype(np.int32))
        self._counts.update(contexts, tokens)

    def finish(self) -> bytes:
        return to_bytes(self._encoder)


class ContextDecoder:
    """Decodes the groups of a ``ContextEncoder`` stream, given the same contexts and counts."""

    def __init__(self, data: bytes, counts: np.ndarray):
        self._counts = _Counts(counts)
        with decoding_errors():
            self._decoder = open_decoder(data)

    def decode(self, contexts: np.ndarray) -> np.ndarray:
        contexts = np.asarray(contexts, dtype=np.int64)
        if contexts.size == 0:
            return np.zeros(0, dtype=np.int64)
        order, groups = self._counts.groups(contexts)
        sorted_tokens = np.empty(contexts.size, dtype=np.int64)
        with decoding_errors():
            for ctx, start, end in groups:
                sorted_tokens[start:end] = self._decoder.decode(self._counts.model(ctx), end - start)
            tokens = np.empty_like(sorted_tokens)
            tokens[order] = sorted_tokens
            n_low = _low_bits(tokens)
            low = np.zeros(tokens.size, dtype=np.int64)
            has_low = n_low > 0
            if has_low.any():
                low[has_low] = self._decoder.decode(UNIFORM, (1 << n_low[has_low]).astype(np.int32))
        if tokens.min() < 0 or tokens.max() >= N_TOKENS:
            raise LicFormatError("corrupt: residual token out of range")
        self._counts.update(contexts, tokens)
        return _untokenize(tokens, low)

    def finish(self) -> None:
        """Refuse a stream with data left over."""
        check_exhausted(self._decoder, "residual stream")
