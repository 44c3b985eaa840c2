"""Tiny 16-bit test content, and 16-bit PNG and TIFF files written without lic's writers (PNG
without filters, TIFF uncompressed: Pillow's plain paths), for the 16-bit colour tests."""

from __future__ import annotations

import struct
import zlib

import numpy as np


def pixels16(channels: int, height: int = 9, width: int = 12, seed: int = 0) -> np.ndarray:
    """Tiny 16-bit content: a smooth ramp with noise in the low bits, the extremes 0 and 65535."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    planes = [9000 + 4000 * x + 2500 * y + 1500 * c + rng.integers(0, 256, x.shape) for c in range(channels)]
    out = np.clip(np.stack(planes, axis=-1), 0, 65535).astype(np.uint16)
    out[0, 0, 0], out[-1, -1, 0] = 0, 65535
    if channels == 4:
        out[..., 3] = rng.integers(0, 65536, (height, width))  # alpha: every bit matters
    return out


def plain_png(pixels: np.ndarray) -> bytes:
    height, width, channels = pixels.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    raw = b"".join(b"\0" + pixels[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def plain_tiff(pixels: np.ndarray, order: str = "<", extra: int | None = None, orientation: int | None = None) -> bytes:
    """Uncompressed, one strip, byte ``order`` "<" or ">"; ``extra``: the ExtraSamples value of a
    fourth sample; ``orientation``: an EXIF orientation tag."""
    height, width, channels = pixels.shape
    strip = pixels.astype(f"{order}u2").tobytes()
    n_tags = 10 + (orientation is not None) + (extra is not None)
    bits_at = 8 + 2 + 12 * n_tags + 4  # the BitsPerSample values follow the IFD, then the strip
    strip_at = bits_at + 2 * channels
    tags = [(256, 4, [width]), (257, 4, [height]), (258, 3, [16] * channels), (259, 3, [1]), (262, 3, [2]),
            (273, 4, [strip_at]), (274, 3, [orientation]), (277, 3, [channels]), (278, 4, [height]),
            (279, 4, [len(strip)]), (284, 3, [1]), (338, 3, [extra])]
    ifd = struct.pack(f"{order}H", n_tags)
    for tag, kind, values in tags:
        if values == [None]:
            continue
        packed = struct.pack(f"{order}{len(values)}{'H' if kind == 3 else 'I'}", *values)
        field = struct.pack(f"{order}I", bits_at) if len(packed) > 4 else packed.ljust(4, b"\0")
        ifd += struct.pack(f"{order}HHI", tag, kind, len(values)) + field
    header = (b"II*\0" if order == "<" else b"MM\0*") + struct.pack(f"{order}I", 8)
    return header + ifd + b"\0\0\0\0" + struct.pack(f"{order}{channels}H", *[16] * channels) + strip


def plain_ppm(pixels: np.ndarray, maxval: int = 65535) -> bytes:
    """Binary PPM (P6), with a comment in its header as netpbm allows."""
    height, width, _ = pixels.shape
    return b"P6\n# made by the tests\n%d %d\n%d\n" % (width, height, maxval) + pixels.astype(">u2").tobytes()
