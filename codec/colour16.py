"""16-bit colour files: 16-bit RGB and RGBA PNG, TIFF and PPM read whole, and written by hand.

Reading.  Pillow has no mode for 16-bit colour: it loads such a PNG or TIFF as 8-bit "RGB" or
"RGBA".  Its decoder unpacks the samples with a *raw mode* that names their layout and byte order
("RGB;16B": three big-endian 16-bit samples a pixel) and keeps the high byte of each.  The same
decoder given the opposite byte order ("RGB;16L") keeps the low byte instead.  So two passes of
Pillow's own decoders, the second with the byte order swapped (``low_byte_tiles``), give every bit
(``join``): PNG's filters and interlacing, TIFF's strips, tiles, LZW, Deflate, PackBits and
predictors stay Pillow's and libtiff's, and lic has no decoder of its own to get wrong.  A binary
PPM with maxval 65535 (what ``write_ppm`` writes) is plain big-endian samples after its header,
which Pillow scales to 8 bits as it decodes; they are read as they are.  ``reader`` says which
way a file is read; a layout neither covers (16-bit gray with alpha, associated alpha, CMYK,
planar TIFF, another maxval, another format) gives None, and the caller decides (``codec.images``
refuses it in the exact modes).

Writing.  Pillow cannot write 16-bit colour at all, so these writers do, each a baseline file that
every reader of its format takes (libpng, libtiff, netpbm; checked against Pillow in the tests):
``write_png`` (colour type 2 or 6, bit depth 16; each row's filter chosen as libpng does, the
smallest sum of absolute filtered bytes; zlib at Pillow's default level), ``write_tiff`` (one
IFD, Deflate with the horizontal predictor, strips of about 1 MiB; alpha is unassociated) and
``write_ppm`` (P6, maxval 65535; no alpha).  An ICC profile goes into PNG's iCCP chunk and TIFF's
tag 34675.
"""

from __future__ import annotations

import os
import struct
import sys
import zlib
from typing import BinaryIO, Callable, Iterator

import numpy as np
from PIL import Image, ImageOps

__all__ = ["READABLE", "WRITERS", "reader", "low_byte_tiles", "join", "write_png", "write_tiff", "write_ppm"]

# The formats whose 16-bit colour samples ``low_byte_tiles`` reads (the two-pass reading is checked
# for their decoders only).
READABLE = ("PNG", "TIFF")
PPM_MAXVAL = 65535  # the one PPM maxval whose samples are 16-bit samples as they stand
# 16-bit colour raw modes (without the byte-order letter) whose two byte orders Pillow unpacks into
# the same mode; RGBX is TIFF's RGB with an unused extra sample, loaded as "RGB".
_SWAPPABLE = ("RGB;16", "RGBA;16", "RGBX;16")
# The byte order that reads the low byte: the other one (N is the machine's own order: libtiff
# hands Pillow native samples).
_OTHER_ORDER = {"B": "L", "L": "B", "N": "B" if sys.byteorder == "little" else "L"}

ZLIB_LEVEL = 6  # Pillow's and libpng's default: level 9 takes about 3x longer for 1-2 % smaller files
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR_TYPE = {3: 2, 4: 6}  # channels -> PNG colour type (truecolour, truecolour with alpha)
_IDAT_SIZE = 1 << 20  # bytes of compressed data per IDAT chunk
_BLOCK_BYTES = 1 << 20  # raw bytes the PNG filters are chosen for at once (bounds their memory: ~40 MB)
_STRIP_BYTES = 1 << 20  # raw bytes per TIFF strip


# -- reading -----------------------------------------------------------------------------------------

def _rawmode(args) -> str | None:
    if isinstance(args, str):
        return args
    if isinstance(args, tuple) and args and isinstance(args[0], str):
        return args[0]
    return None


def _low_byte_tile(tile):
    rawmode = _rawmode(tile[3])
    if rawmode is None or rawmode[:-1] not in _SWAPPABLE or rawmode[-1] not in _OTHER_ORDER:
        return None
    low = rawmode[:-1] + _OTHER_ORDER[rawmode[-1]]
    args = low if isinstance(tile[3], str) else (low, *tile[3][1:])
    return tile._replace(args=args) if hasattr(tile, "_replace") else (*tile[:3], args)


def low_byte_tiles(img: Image.Image) -> list | None:
    """The tiles that make Pillow decode the low byte of each sample of ``img``, a 16-bit RGB or
    RGBA PNG or TIFF opened but not loaded; None for anything else (see the module doc)."""
    if img.format not in READABLE or img.mode not in ("RGB", "RGBA") or not getattr(img, "tile", None):
        return None
    tiles = [_low_byte_tile(tile) for tile in img.tile]
    return None if any(tile is None for tile in tiles) else tiles


def join(high: Image.Image, low: Image.Image) -> np.ndarray:
    """(H, W, C) uint16 samples from the two passes: ``high`` as Pillow loads the file, ``low``
    loaded with ``low_byte_tiles``."""
    if high.mode != low.mode or high.size != low.size:
        raise ValueError("the two passes over a 16-bit image disagree")  # a bug, not the user's file
    return (np.asarray(high).astype(np.uint16) << 8) | np.asarray(low)


# ``reader(img)(loaded, source)``: the (H, W, C) uint16 samples of the file ``img`` was opened from,
# ``loaded`` being that image once loaded and ``source`` the path or file object, back where it was.
Reader = Callable[[Image.Image, object], np.ndarray]


def reader(img: Image.Image) -> Reader | None:
    """How to read every bit of ``img``, a 16-bit colour file opened but not loaded: None where
    Pillow's 8 bits are all there is to read (see the module doc)."""
    if low_byte_tiles(img) is not None:
        return _two_passes
    tile = img.tile[0] if img.format == "PPM" and img.mode == "RGB" and len(img.tile) == 1 else None
    if tile is not None and tile[0] == "ppm" and isinstance(tile[3], tuple) and tile[3][1:] == (PPM_MAXVAL,):
        width, height = img.size
        return lambda loaded, source: _ppm_samples(source, tile[2], width, height)
    return None


def _two_passes(high: Image.Image, source) -> np.ndarray:
    """The second pass, low bytes, over the file that gave ``high``; EXIF orientation applied to both."""
    with Image.open(source) as low:
        low.tile = low_byte_tiles(low)  # the same file: the same tiles, bytes swapped
        low.load()
    return join(ImageOps.exif_transpose(high), ImageOps.exif_transpose(low))


def _ppm_samples(source, offset: int, width: int, height: int) -> np.ndarray:
    size = 6 * width * height
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            f.seek(offset)
            data = f.read(size)
    else:
        source.seek(offset)  # Pillow's tile offsets count from the file object's start
        data = source.read(size)
    if len(data) != size:
        raise OSError("image file is truncated")  # as Pillow says it, had the first pass not seen it
    return np.frombuffer(data, ">u2").reshape(height, width, 3).astype(np.uint16)


# -- writing -----------------------------------------------------------------------------------------

def _check(pixels: np.ndarray, channels: tuple[int, ...]) -> np.ndarray:
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint16 or pixels.ndim != 3 or pixels.shape[2] not in channels or 0 in pixels.shape:
        raise ValueError(f"expected (H, W, C) uint16 samples with C in {channels}, got {pixels.dtype} "
                         f"{pixels.shape}")
    return pixels


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _filtered_rows(raw: np.ndarray, previous: np.ndarray, bpp: int) -> np.ndarray:
    """PNG rows ``raw`` (uint8, one row of bytes each; ``previous``: the row above the first),
    each with the filter byte that gives the smallest sum of absolute filtered bytes."""
    x = raw.astype(np.int16)
    b = np.concatenate([previous[None].astype(np.int16), x[:-1]])  # up
    a = np.zeros_like(x)
    a[:, bpp:] = x[:, :-bpp]  # left
    c = np.zeros_like(x)
    c[:, bpp:] = b[:, :-bpp]  # up-left
    pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    candidates = np.stack([x, x - a, x - b, x - (a + b) // 2, x - paeth]).astype(np.uint8)
    signed = candidates.astype(np.int8).astype(np.int16)
    best = np.abs(signed).sum(axis=2, dtype=np.int64).argmin(axis=0)
    rows = candidates[best, np.arange(x.shape[0])]
    return np.concatenate([best.astype(np.uint8)[:, None], rows], axis=1)


def _png_data(pixels: np.ndarray) -> Iterator[bytes]:
    """The filtered rows of ``pixels``, in blocks of rows."""
    height, width, channels = pixels.shape
    raw = pixels.astype(">u2").reshape(height, width * channels).view(np.uint8)
    rows = max(1, _BLOCK_BYTES // raw.shape[1])
    previous = np.zeros(raw.shape[1], np.uint8)
    for top in range(0, height, rows):
        block = raw[top:top + rows]
        yield _filtered_rows(block, previous, 2 * channels).tobytes()
        previous = block[-1]


def write_png(pixels: np.ndarray, fp: BinaryIO, icc: bytes | None = None) -> None:
    """Write (H, W, 3 or 4) uint16 ``pixels`` to ``fp`` as a 16-bit RGB or RGBA PNG."""
    pixels = _check(pixels, (3, 4))
    height, width, channels = pixels.shape
    fp.write(_PNG_SIGNATURE)
    fp.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, _PNG_COLOUR_TYPE[channels], 0, 0, 0)))
    if icc:
        fp.write(_chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc)))
    deflate, pending = zlib.compressobj(ZLIB_LEVEL), b""
    for data in _png_data(pixels):
        pending += deflate.compress(data)
        while len(pending) >= _IDAT_SIZE:
            fp.write(_chunk(b"IDAT", pending[:_IDAT_SIZE]))
            pending = pending[_IDAT_SIZE:]
    pending += deflate.flush()
    for start in range(0, len(pending), _IDAT_SIZE):
        fp.write(_chunk(b"IDAT", pending[start:start + _IDAT_SIZE]))
    fp.write(_chunk(b"IEND", b""))


_SHORT, _LONG, _UNDEFINED = 3, 4, 7
_TYPE_FORMAT = {_SHORT: "H", _LONG: "I", _UNDEFINED: "B"}


def write_tiff(pixels: np.ndarray, fp: BinaryIO, icc: bytes | None = None) -> None:
    """Write (H, W, 3 or 4) uint16 ``pixels`` to ``fp`` as a 16-bit RGB or RGBA TIFF (little-endian,
    Deflate with the horizontal predictor; alpha unassociated)."""
    pixels = _check(pixels, (3, 4))
    height, width, channels = pixels.shape
    rows = max(1, _STRIP_BYTES // (2 * width * channels))
    strips = []
    for top in range(0, height, rows):
        block = pixels[top:top + rows].astype(np.int32)
        block[:, 1:] -= pixels[top:top + rows, :-1]  # predictor 2: each sample minus its left neighbour's
        strips.append(zlib.compress((block & 0xFFFF).astype("<u2").tobytes(), ZLIB_LEVEL))

    data = bytearray(b"II*\0\0\0\0\0")  # the IFD's offset is filled in at the end
    offsets = []
    for strip in strips:
        offsets.append(len(data))
        data += strip + b"\0" * (len(strip) % 2)  # values start on word boundaries
    entries = [
        (256, _LONG, [width]), (257, _LONG, [height]), (258, _SHORT, [16] * channels),
        (259, _SHORT, [8]),  # Deflate
        (262, _SHORT, [2]),  # RGB
        (273, _LONG, offsets), (277, _SHORT, [channels]), (278, _LONG, [rows]),
        (279, _LONG, [len(s) for s in strips]), (284, _SHORT, [1]),  # samples interleaved
        (317, _SHORT, [2]),  # horizontal differencing
    ]
    if channels == 4:
        entries.append((338, _SHORT, [2]))  # the extra sample is unassociated alpha
    entries.append((339, _SHORT, [1] * channels))  # unsigned integers
    if icc:
        entries.append((34675, _UNDEFINED, list(icc)))
    ifd = bytearray(struct.pack("<H", len(entries)))
    values = bytearray()
    values_at = len(data) + 2 + 12 * len(entries) + 4
    for tag, kind, items in entries:
        packed = struct.pack(f"<{len(items)}{_TYPE_FORMAT[kind]}", *items)
        if len(packed) <= 4:
            field = packed.ljust(4, b"\0")
        else:
            field = struct.pack("<I", values_at + len(values))
            values += packed + b"\0" * (len(packed) % 2)
        ifd += struct.pack("<HHI", tag, kind, len(items)) + field
    ifd += b"\0\0\0\0"  # no next IFD
    if len(data) + len(ifd) + len(values) >= 1 << 32:
        raise ValueError("image too large for a TIFF file (4 GiB)")
    data[4:8] = struct.pack("<I", len(data))
    fp.write(bytes(data) + bytes(ifd) + bytes(values))


def write_ppm(pixels: np.ndarray, fp: BinaryIO) -> None:
    """Write (H, W, 3) uint16 ``pixels`` to ``fp`` as a binary PPM with maxval 65535 (big-endian
    samples)."""
    pixels = _check(pixels, (3,))
    height, width, _ = pixels.shape
    fp.write(b"P6\n%d %d\n65535\n" % (width, height))
    fp.write(pixels.astype(">u2").tobytes())


# The writer of each format, by Pillow's name for it (``Image16.save`` and ``lic decode`` pick by it).
WRITERS = {"PNG": write_png, "TIFF": write_tiff, "PPM": write_ppm}
