"""The residual layer: lossless and near-lossless coding on top of the lossy reconstruction.

Bai et al. (CVPR 2021, "Learning scalable l-infinity-constrained near-lossless image compression
via joint lossy image and residual compression") code an image as a lossy layer x̂ plus the
residual x - x̂, quantised so that no sample is off by more than K.  Here the residual is coded
with a LOCO-I / JPEG-LS style context model (Weinberger, Seroussi, Sapiro, IEEE TIP 2000) that
also sees x̂: the decoder has x̂ everywhere, including below and to the right of the sample, so
x̂ tells it where the causal predictor will be wrong.  Nothing here is trained: the model adapts
to each image as it codes (integer context statistics), so it never needs refitting when the
lossy weights change.

For sample c of pixel (i, j), with a, b, c', d the reconstructed neighbours W, N, NW, NE:

    med   = median(a, b, a + b - c')                       (LOCO-I's MED predictor)
    ctx   = (activity bin, lossy bin, channel bin)
            activity = |a - c'| + |b - c'| + |b - d| + |e_W| + |e_N|      -> bit length, 0..15
            lossy    = (x̂ - med) / step                    -> signed bit length, -4..4
            channel  = e of the previous channel, same pixel -> signed bit length, -4..4
    pred  = clip(med + round(B[ctx] / N[ctx]), 0, maxval)  (bias correction, as JPEG-LS's C[Q])
    q     = sign(x - pred) * floor((|x - pred| + K) / (2K + 1))
    x'    = clip(pred + (2K + 1) q, 0, maxval),  |x' - x| <= K  (x' = x for K = 0)
    q  ~  discretised Laplace with mean |q| = A[ctx] / N[ctx]   (bitstream.residual_coder)

e = x' - pred is the reconstructed prediction error; A, B, N are sums of |q|, of x' - med and a
count per context and channel, halved when N reaches ``RESET`` (as JPEG-LS does).  Unknown
neighbours (outside the image) are taken from x̂, edge-padded.  ``step`` is the lossy layer's
quantisation step in sample units (1 for 8-bit images, about range / 255 for 16-bit ones).

Order and speed: a sample depends on W, N, NW, NE, so all pixels with the same t = 2i + j are
independent; they are coded together, one numpy pass per anti-diagonal t and channel
(2H + W passes), channels in order within a pass.  Statistics are updated after each pass, on
both sides, with integer arithmetic only: encoder and decoder compute identical contexts, biases
and scale indexes on any machine.
"""

from __future__ import annotations

import numpy as np

from bitstream import LicFormatError
from bitstream.residual_coder import LaplaceDecoder, LaplaceEncoder, scale_index

__all__ = ["encode_residual", "decode_residual", "lossy_step", "RESET"]

RESET = 128  # halve a context's statistics when its count reaches this (JPEG-LS: 64)
_ACT_BINS, _SIGNED_BINS = 16, 9
_CONTEXTS = _ACT_BINS * _SIGNED_BINS * _SIGNED_BINS
_POW2 = (1 << np.arange(1, 32, dtype=np.int64))  # bit length of v = searchsorted(_POW2, v, 'right') + (v > 0)


def lossy_step(low: int, high: int) -> int:
    """Sample units per 8-bit level of a rendition of low..high (1 for 8-bit data)."""
    return max(1, (high - low) // 255)


def _bit_length(v: np.ndarray, cap: int) -> np.ndarray:
    """min(bit length of v, cap) for non-negative int64 v."""
    return np.minimum(np.searchsorted(_POW2, v, side="right") + (v > 0), cap)


def _signed_bin(v: np.ndarray) -> np.ndarray:
    """sign(v) * min(bit length |v|, 4) + 4, in 0..8."""
    return np.sign(v) * _bit_length(np.abs(v), 4) + 4


def _wavefronts(height: int, width: int):
    """Pixels ordered by t = 2i + j (then i): flat indexes and the start of each t."""
    i = np.arange(height, dtype=np.int64)[:, None]
    j = np.arange(width, dtype=np.int64)[None, :]
    key = (2 * i + j).ravel()
    order = np.argsort(key, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(key, minlength=2 * (height - 1) + width))])
    return order, bounds


def _scan(lossy: np.ndarray, maxval: int, max_error: int, step: int, code) -> np.ndarray:
    """The shared coding loop; ``code(c, flat, pred, indexes) -> q`` codes or decodes one pass."""
    n_channels, height, width = lossy.shape
    wp = width + 4
    rec = np.pad(lossy, ((0, 0), (2, 2), (2, 2)), mode="edge").astype(np.int64).reshape(n_channels, -1)
    err = np.zeros_like(rec)
    lossy_flat = lossy.reshape(n_channels, -1).astype(np.int64)
    order, bounds = _wavefronts(height, width)
    padded = (order // width + 2) * wp + order % width + 2
    unit = 2 * max_error + 1
    act0 = np.arange(_CONTEXTS) // (_SIGNED_BINS * _SIGNED_BINS)
    stats = []
    for _ in range(n_channels):
        a_sum = ((1 << act0) >> 2) // unit  # a first guess: |q| about activity / 4
        stats.append([a_sum.astype(np.int64), np.zeros(_CONTEXTS, np.int64), np.ones(_CONTEXTS, np.int64)])
    for t in range(bounds.size - 1):
        flat = order[bounds[t]:bounds[t + 1]]
        p = padded[bounds[t]:bounds[t + 1]]
        prev = np.zeros(flat.size, dtype=np.int64)
        for c in range(n_channels):
            r, e = rec[c], err[c]
            west, north, nw, ne = r[p - 1], r[p - wp], r[p - wp - 1], r[p - wp + 1]
            lo, hi = np.minimum(west, north), np.maximum(west, north)
            med = np.where(nw >= hi, lo, np.where(nw <= lo, hi, west + north - nw))
            activity = (np.abs(west - nw) + np.abs(north - nw) + np.abs(north - ne)
                        + np.abs(e[p - 1]) + np.abs(e[p - wp]))
            ctx = ((_bit_length(activity, _ACT_BINS - 1) * _SIGNED_BINS
                    + _signed_bin((lossy_flat[c, flat] - med) // step)) * _SIGNED_BINS + _signed_bin(prev))
            a_sum, b_sum, count = stats[c]
            n = count[ctx]
            pred = np.clip(med + (2 * b_sum[ctx] + n) // (2 * n), 0, maxval)
            q = code(c, flat, pred, scale_index(a_sum[ctx], n))
            value = pred + q * unit
            if value.size and (value.min() < -max_error or value.max() > maxval + max_error):
                raise LicFormatError("corrupt: residual decodes to a sample outside the stored range")
            value = np.clip(value, 0, maxval)
            r[p] = value
            prev = value - pred
            e[p] = prev
            a_sum += np.bincount(ctx, np.abs(q), _CONTEXTS).astype(np.int64)
            b_sum += np.bincount(ctx, value - med, _CONTEXTS).astype(np.int64)
            count += np.bincount(ctx, minlength=_CONTEXTS)
            full = count >= RESET
            if full.any():
                a_sum[full] >>= 1
                b_sum[full] //= 2
                count[full] >>= 1
    return rec.reshape(n_channels, height + 4, wp)[:, 2:-2, 2:-2]


def _check(lossy: np.ndarray, maxval: int, max_error: int, step: int) -> np.ndarray:
    lossy = np.asarray(lossy)
    if lossy.ndim != 3 or 0 in lossy.shape:
        raise ValueError(f"expected (C, H, W) samples, got shape {lossy.shape}")
    if not (1 <= maxval < 1 << 16 and 0 <= max_error < 1 << 16 and step >= 1):
        raise ValueError("maxval must be in 1..65535, max_error in 0..65535 and step >= 1")
    if lossy.min() < 0 or lossy.max() > maxval:
        raise ValueError("lossy samples outside 0..maxval")
    return lossy


def encode_residual(samples: np.ndarray, lossy: np.ndarray, maxval: int, max_error: int = 0,
                    step: int = 1) -> tuple[bytes, np.ndarray]:
    """Code (C, H, W) integer ``samples`` given the lossy layer's ``lossy`` (same shape).

    Returns the stream and the decoder's reconstruction (equal to ``samples`` for
    ``max_error`` 0, within ``max_error`` of it otherwise).
    """
    lossy = _check(lossy, maxval, max_error, step)
    samples = np.asarray(samples)
    if samples.shape != lossy.shape or samples.min() < 0 or samples.max() > maxval:
        raise ValueError("samples must have the lossy layer's shape and lie in 0..maxval")
    source = samples.reshape(samples.shape[0], -1).astype(np.int64)
    encoder = LaplaceEncoder()
    unit = 2 * max_error + 1

    def code(c, flat, pred, indexes):
        diff = source[c, flat] - pred
        q = np.sign(diff) * ((np.abs(diff) + max_error) // unit)
        encoder.encode(q, indexes)
        return q

    rec = _scan(lossy, maxval, max_error, step, code)
    return encoder.finish(), rec


def decode_residual(data: bytes, lossy: np.ndarray, maxval: int, max_error: int = 0,
                    step: int = 1) -> np.ndarray:
    """Inverse of ``encode_residual``: the (C, H, W) int64 reconstruction.

    ``LicFormatError`` for a stream that decodes to a sample outside [-K, maxval + K], runs
    out of data or has data left over.
    """
    lossy = _check(lossy, maxval, max_error, step)
    decoder = LaplaceDecoder(data)

    def code(c, flat, pred, indexes):
        return decoder.decode(indexes)

    rec = _scan(lossy, maxval, max_error, step, code)
    decoder.finish()
    return rec
