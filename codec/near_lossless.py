"""Lossless and near-lossless files: the lossy layer plus the residual layer.

    samples (8 or 16 bits) ─► 8-bit rendition of low..high ─► lossy layer (lic model) ─► x̂8
    x̂ = low + round(x̂8 (high - low) / 255)       (back to sample units, integers only)
    samples, x̂ ─► codec.residual ─► residual stream ─┐
    lossy streams ─────────────────────────────────┴─► version-2 .lic file

The encoder obtains x̂ by running the decoder on the lossy file it just made, so both sides start
from the same x̂ (the residual layer's probabilities depend on it).  ``sample_crc`` in the header
(CRC32 of the decoded samples, uint16 little-endian, channel-major) checks the end result: a
damaged stream, or a lossy layer that decodes differently on another machine, is a
``LicFormatError``, never a wrong image.

The lossy layer runs at ``RESIDUAL_QUALITY`` unless the caller picks another: the total size is
smallest at the lowest quality on the images measured (README, "Lossless and near-lossless").
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np

import bitstream
from bitstream import LicFormatError, Residual

from .coding import decode_rgb, encode_rgb
from .images import ExactImage, decoded_pixels, encode_alpha
from .residual import decode_residual, encode_residual, lossy_step

__all__ = ["RESIDUAL_QUALITY", "encode_exact", "decode_exact"]

RESIDUAL_QUALITY = 1.0


def _rendition(samples: np.ndarray, low: int, high: int) -> np.ndarray:
    """Samples in low..high -> uint8 0..255, rounded (integers only)."""
    if high == low:
        return np.zeros(samples.shape, np.uint8)
    s = samples.astype(np.int64) - low
    return ((s * 510 + (high - low)) // (2 * (high - low))).astype(np.uint8)


def _lossy_samples(rgb_hat: np.ndarray, channels: str, low: int, high: int) -> np.ndarray:
    """The decoder's RGB -> (C, H, W) x̂ in sample units."""
    pixels = decoded_pixels(rgb_hat, channels)
    pixels = pixels[..., None] if pixels.ndim == 2 else pixels
    x8 = np.moveaxis(pixels, -1, 0).astype(np.int64)
    return low + (x8 * (high - low) * 2 + 255) // 510


def _sample_crc(samples: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(samples, dtype="<u2").tobytes())


def encode_exact(model, image: ExactImage, max_error: int, quality: float = RESIDUAL_QUALITY, *,
                 model_hash: bytes | None = None, timings=None) -> bytes:
    """A version-2 ``.lic`` file whose every sample is within ``max_error`` of ``image``'s."""
    maxval = (1 << image.bits) - 1
    if not (isinstance(max_error, (int, np.integer)) and 0 <= max_error <= maxval):
        raise ValueError(f"max_error must be an integer in 0..{maxval}, got {max_error!r}")
    samples = np.moveaxis(image.samples, -1, 0).astype(np.int64)
    low, high = (0, 255) if image.bits == 8 else (int(samples.min()), int(samples.max()))
    eight = _rendition(samples, low, high)
    rgb = np.repeat(eight[0][..., None], 3, axis=2) if eight.shape[0] == 1 else np.moveaxis(eight, 0, -1)
    alpha = encode_alpha(image.alpha) if image.alpha is not None else None
    lossy = encode_rgb(model, np.ascontiguousarray(rgb), quality, channels=image.channels, icc=image.icc,
                       alpha=alpha, timings=timings, model_hash=model_hash)
    rgb_hat, header, _ = decode_rgb(model, lossy, model_hash=model_hash)
    x_hat = _lossy_samples(rgb_hat, image.channels, low, high)
    stream, rec = encode_residual(samples, x_hat, maxval, int(max_error), lossy_step(low, high))
    residual = Residual(image.bits, int(max_error), low, high, _sample_crc(rec))
    container = bitstream.unpack(lossy)
    return bitstream.pack(dataclasses.replace(header, residual=residual), container.streams + [stream], alpha)


def decode_exact(model, data, *, model_hash: bytes | None = None, timings=None):
    """Decode a version-2 file (bytes or a parsed ``bitstream.Container``): ((C, H, W) samples,
    header, alpha blob or None)."""
    container = data if isinstance(data, bitstream.Container) else bitstream.unpack(data)
    res = container.header.residual
    if res is None:
        raise LicFormatError("corrupt: not a lossless or near-lossless file")
    lossy = bitstream.pack(dataclasses.replace(container.header, residual=None), container.streams[:-1],
                           container.alpha)
    rgb_hat, header, alpha = decode_rgb(model, lossy, timings=timings, model_hash=model_hash)
    n_channels = 1 if header.channels == "L" else 3
    if res.bits > 8 and n_channels != 1:
        raise LicFormatError("corrupt: samples wider than 8 bits are gray only")
    if res.high > res.low and lossy_step(res.low, res.high) > (1 << res.bits):
        raise LicFormatError("corrupt: sample range")
    x_hat = _lossy_samples(rgb_hat, header.channels, res.low, res.high)
    samples = decode_residual(container.streams[-1], x_hat, res.maxval, res.max_error,
                              lossy_step(res.low, res.high))
    if _sample_crc(samples) != res.sample_crc:
        raise LicFormatError("corrupt: decoded samples do not match the encoder's checksum")
    return samples, container.header, alpha
