"""The alpha plane of an RGBA image, coded losslessly beside the colour streams.

The blob is one tag byte, then the payload (bitstream/FORMAT.md, "The alpha blob"); the encoder
tries each form and keeps the smallest:

    0x00  zlib (level 9) of the raw H*W plane            best for noise-like or tiny planes
    0x01  a PNG of the plane (mode L, Pillow optimize)    best for smooth masks (PNG filters)
    0x02  one byte: the plane is constant                 fully opaque images cost 2 bytes
"""

from __future__ import annotations

import io
import zlib

import numpy as np
from PIL import Image

from bitstream import LicFormatError

from .images import pixel_limit

__all__ = ["encode_alpha", "decode_alpha"]

_ZLIB, _PNG, _CONSTANT = 0, 1, 2


def encode_alpha(alpha: np.ndarray) -> bytes:
    """Lossless blob for an (H, W) uint8 alpha plane: the smallest of the forms above."""
    alpha = np.ascontiguousarray(alpha, dtype=np.uint8)
    if (alpha == alpha.flat[0]).all():
        return bytes([_CONSTANT, int(alpha.flat[0])])
    candidates = [bytes([_ZLIB]) + zlib.compress(alpha.tobytes(), 9)]
    png = io.BytesIO()
    Image.fromarray(alpha, "L").save(png, format="PNG", optimize=True)
    candidates.append(bytes([_PNG]) + png.getvalue())
    return min(candidates, key=len)


def decode_alpha(blob: bytes, width: int, height: int) -> np.ndarray:
    """Inverse of ``encode_alpha``; ``LicFormatError`` if the blob is not a plane of that size."""
    if not blob:
        raise LicFormatError("corrupt: empty alpha plane")
    tag, payload = blob[0], blob[1:]
    if tag == _CONSTANT and len(payload) == 1:
        return np.full((height, width), payload[0], dtype=np.uint8)
    if tag == _ZLIB:
        return _inflate(payload, width, height)
    if tag == _PNG:
        return _read_png(payload, width, height)
    raise LicFormatError(f"corrupt: unknown alpha plane format {tag}")


def _inflate(payload: bytes, width: int, height: int) -> np.ndarray:
    d = zlib.decompressobj()
    try:
        raw = d.decompress(payload, width * height + 1)  # never more than one byte past the plane
    except zlib.error:
        raise LicFormatError("corrupt: alpha plane does not decompress") from None
    if len(raw) != width * height or not d.eof:
        raise LicFormatError("corrupt: alpha plane has the wrong size")
    return np.frombuffer(raw, dtype=np.uint8).reshape(height, width)


def _read_png(payload: bytes, width: int, height: int) -> np.ndarray:
    try:
        with pixel_limit(), Image.open(io.BytesIO(payload), formats=["PNG"]) as img:
            if img.size != (width, height) or img.mode != "L":
                raise LicFormatError("corrupt: alpha plane has the wrong size")
            return np.asarray(img).copy()
    except (OSError, ValueError, SyntaxError) as e:
        if isinstance(e, LicFormatError):
            raise
        raise LicFormatError("corrupt: alpha plane is not a valid PNG") from None
