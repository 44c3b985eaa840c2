"""The alpha plane of an RGBA image, coded losslessly beside the colour streams.

The blob is one tag byte, then the payload (bitstream/FORMAT.md, "The alpha blob"); the encoder
tries each form and keeps the smallest:

    0x00  zlib (level 9) of the raw H*W plane            best for noise-like or tiny planes
    0x01  a PNG of the plane (gray, Pillow optimize)      best for smooth masks (PNG filters)
    0x02  one sample: the plane is constant               fully opaque images cost 2 bytes

Samples are as wide as the file's: one byte for 8-bit files (every lossy file), two for the
16-bit RGBA files of the exact modes (little-endian in the raw and constant forms, a 16-bit gray
PNG in the other).
"""

from __future__ import annotations

import io
import zlib

import numpy as np
from PIL import Image

from bitstream import LicFormatError

from .limits import pixel_limit

__all__ = ["encode_alpha", "decode_alpha"]

_ZLIB, _PNG, _CONSTANT = 0, 1, 2


def _sample_bytes(bits: int) -> int:
    return 1 if bits <= 8 else 2


def encode_alpha(alpha: np.ndarray, bits: int = 8) -> bytes:
    """Lossless blob for an (H, W) alpha plane of ``bits``-bit samples: the smallest of the forms above."""
    wide = _sample_bytes(bits) == 2
    alpha = np.ascontiguousarray(alpha, dtype=np.uint16 if wide else np.uint8)
    if (alpha == alpha.flat[0]).all():
        return bytes([_CONSTANT]) + int(alpha.flat[0]).to_bytes(_sample_bytes(bits), "little")
    candidates = [bytes([_ZLIB]) + zlib.compress(alpha.astype("<u2" if wide else np.uint8).tobytes(), 9)]
    png = io.BytesIO()
    Image.fromarray(alpha).save(png, format="PNG", optimize=True)  # mode "L" or "I;16"
    candidates.append(bytes([_PNG]) + png.getvalue())
    return min(candidates, key=len)


def decode_alpha(blob: bytes, width: int, height: int, bits: int = 8) -> np.ndarray:
    """Inverse of ``encode_alpha``: (H, W) uint8, or uint16 for ``bits`` > 8; ``LicFormatError`` if
    the blob is not a plane of that size."""
    if not blob:
        raise LicFormatError("corrupt: empty alpha plane")
    tag, payload = blob[0], blob[1:]
    size = _sample_bytes(bits)
    dtype = np.dtype("<u2") if size == 2 else np.dtype(np.uint8)
    if tag == _CONSTANT and len(payload) == size:
        return np.full((height, width), int.from_bytes(payload, "little"), dtype=dtype.newbyteorder("="))
    if tag == _ZLIB:
        return _inflate(payload, width, height, dtype)
    if tag == _PNG:
        return _read_png(payload, width, height, "I;16" if size == 2 else "L")
    raise LicFormatError(f"corrupt: unknown alpha plane format {tag}")


def _inflate(payload: bytes, width: int, height: int, dtype: np.dtype) -> np.ndarray:
    d = zlib.decompressobj()
    expected = width * height * dtype.itemsize
    try:
        raw = d.decompress(payload, expected + 1)  # never more than one byte past the plane
    except zlib.error:
        raise LicFormatError("corrupt: alpha plane does not decompress") from None
    if len(raw) != expected or not d.eof:
        raise LicFormatError("corrupt: alpha plane has the wrong size")
    return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("=")).reshape(height, width)


def _read_png(payload: bytes, width: int, height: int, mode: str) -> np.ndarray:
    try:
        with pixel_limit(), Image.open(io.BytesIO(payload), formats=["PNG"]) as img:
            if img.size != (width, height) or img.mode != mode:
                raise LicFormatError("corrupt: alpha plane has the wrong size")
            return np.asarray(img).copy()
    except (OSError, ValueError, SyntaxError) as e:
        if isinstance(e, LicFormatError):
            raise
        raise LicFormatError("corrupt: alpha plane is not a valid PNG") from None
