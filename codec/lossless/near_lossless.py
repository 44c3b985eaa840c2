"""Lossless and near-lossless files: the samples, coded exactly by the residual layer.

    samples (8 or 16 bits, C = 1 or 3) ─► codec.lossless.exact2 (causal prediction, error quantised in
    the loop, adaptive context coding) ─► residual stream ─► version-2 .lic file

The residual coder is named in the header (``bitstream.RESIDUAL_CODER``): new files are
``lic-exact-3`` (``codec.lossless.exact2``, compiled) unless ``encode_exact(..., coder=)`` names
``lic-exact-4`` or ``lic-exact-5`` (smaller, decode slower; not the default, see
``benchmarks/results/lossless.md``); ``lic-exact-2`` files (the same module) and ``lic-exact-1``
files (``codec.lossless.residual``) still decode.

No lossy layer goes under the residual layer.  Bai et al. (CVPR 2021) code the residual left by a
lossy reconstruction x̂; measured here with the shipped model (README, "Lossless and
near-lossless"; ``python -m benchmarks.lossless --lossy-layer 1``), x̂ at quality 1 as one more
predictor of the residual layer saved 0.03-0.04 bpp on Kodak at K = 0..4 and cost 0.36 bpp to send,
so the total is smallest without it.  It
would also tie the exact samples to the float synthesis transform, which does not compute the
same x̂ on every machine.  Without it a file decodes without the model's weights.

``sample_crc`` in the header (CRC32 of the decoded samples, uint16 little-endian, channel-major,
then in lic-exact-2 and lic-exact-3 files the alpha plane's) checks the end result: a damaged stream is a
``LicFormatError``, never a wrong image.
"""

from __future__ import annotations

import dataclasses
import functools
import zlib

import numpy as np

import bitstream
from bitstream import InputError, LicFormatError, Residual, ResidualHeader

from ..alpha import decode_alpha, encode_alpha
from ..images import ExactImage
from . import exact2, residual

__all__ = ["encode_exact", "decode_exact"]

# The decoder of each residual coder a file may name; new files use bitstream.RESIDUAL_CODER.
DECODERS = {"lic-exact-1": residual.decode_residual,
            **{coder: functools.partial(exact2.decode_residual, coder=coder) for coder in exact2.VERSIONS}}


def _sample_crc(samples: np.ndarray, alpha: np.ndarray | None = None) -> int:
    """CRC32 of the samples as uint16 LE, channel by channel, continued over the alpha plane if given."""
    crc = zlib.crc32(np.ascontiguousarray(samples, dtype="<u2").tobytes())
    return crc if alpha is None else zlib.crc32(np.ascontiguousarray(alpha, dtype="<u2").tobytes(), crc)


def encode_exact(image: ExactImage, max_error: int, *, timings=None, coder: str = bitstream.RESIDUAL_CODER) -> bytes:
    """A version-2 ``.lic`` file whose every sample is within ``max_error`` of ``image``'s (alpha exact),
    its residual stream by ``coder`` (one of ``codec.lossless.exact2.VERSIONS``).

    ``InputError`` for a ``max_error`` outside 0..2^bits - 1 or an image the format cannot hold,
    before anything is coded."""
    maxval = (1 << image.bits) - 1
    if isinstance(max_error, bool) or not isinstance(max_error, (int, np.integer)) or not 0 <= max_error <= maxval:
        raise InputError(f"max error must be in 0..{maxval} for {image.bits}-bit samples, got {max_error!r}")
    samples = np.moveaxis(image.samples, -1, 0)
    height, width = samples.shape[1:]
    # The header first: an image too large for the format is refused before minutes of coding.
    if coder not in exact2.VERSIONS:
        raise ValueError(f"unknown residual coder {coder!r} (new files use {', '.join(exact2.VERSIONS)})")
    header = ResidualHeader(width, height, image.channels, Residual(image.bits, int(max_error), 0), icc=image.icc,
                            model_id=coder)
    alpha = encode_alpha(image.alpha, image.bits) if image.alpha is not None else None
    stream, rec = exact2.encode_residual(samples, maxval, int(max_error), coder)
    crc = _sample_crc(rec, image.alpha)
    header = dataclasses.replace(header, residual=dataclasses.replace(header.residual, sample_crc=crc))
    return bitstream.pack(header, [stream], alpha)


def decode_exact(data):
    """Decode a version-2 file (bytes or a parsed ``bitstream.Container``): ((C, H, W) samples,
    header, the (H, W) alpha plane or None)."""
    container = data if isinstance(data, bitstream.Container) else bitstream.unpack(data)
    header = container.header
    if not isinstance(header, ResidualHeader):
        raise LicFormatError("corrupt: not a lossless or near-lossless file")
    res = header.residual
    decode_residual = DECODERS.get(header.model_id)
    if decode_residual is None:
        raise LicFormatError(f"unsupported residual coder {header.model_id!r} (this lic reads "
                             f"{', '.join(map(repr, DECODERS))})")
    n_channels = 1 if header.channels == "L" else 3
    samples = decode_residual(container.streams[0], (n_channels, header.height, header.width), res.maxval,
                              res.max_error)
    alpha = None
    if container.alpha is not None:
        alpha = decode_alpha(container.alpha, header.width, header.height, res.bits)
    # lic-exact-1's checksum left the alpha plane out (its zlib and PNG forms carry their own).
    if _sample_crc(samples, alpha if header.model_id != "lic-exact-1" else None) != res.sample_crc:
        raise LicFormatError("corrupt: decoded samples do not match the encoder's checksum")
    return samples, header, alpha
