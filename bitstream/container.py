"""The ``.lic`` file: a small header, opaque streams, and a trailing CRC32.

The byte layout, the limits and the measured header size are in FORMAT.md. ``unpack``
validates in a fixed order (length and magic, version, CRC over the whole file, then
every field) and refuses absurd sizes before allocating anything, so a hostile file
costs at most one pass of ``zlib.crc32``.
"""

import functools
import numbers
import zlib
from dataclasses import dataclass
from typing import Callable, ClassVar, NamedTuple, Sequence

from .errors import InputError, LicFormatError

__all__ = ["MAGIC", "FORMAT_VERSION", "RESIDUAL_VERSION", "RESIDUAL_CODER", "MAX_SIDE", "MAX_PIXELS",
           "MIN_QUALITY", "MAX_QUALITY", "QUALITY_STEPS", "Header", "ResidualHeader", "Residual", "Container", "pack", "unpack",
           "read_header", "is_lic"]

MAGIC = b"LIC1"  # the first four bytes of every .lic file (is_lic; Pillow's plugin sniffs them)
FORMAT_VERSION = 1  # lossy files; written byte for byte as before the residual layer existed
RESIDUAL_VERSION = 2  # lossless and near-lossless files: the residual stream only, no lossy layer (FORMAT.md)
RESIDUAL_CODER = "lic-exact-3"  # the residual coder of new version-2 files (codec/lossless/exact2.py; codec/lossless/near_lossless.py reads older ones)
MAX_BITS = 16

MAX_MODEL_ID = 32
MODEL_HASH_SIZE = 4
MAX_SIDE = 1 << 16
MAX_PIXELS = 1 << 28  # also Pillow's decompression-bomb limit while lic opens an image (codec.images)
MAX_STREAMS = 64
# The quality field of a version-1 header: a uint16 holding q * QUALITY_STEPS for a quality q in
# [MIN_QUALITY, MAX_QUALITY].  The field is what bounds a quality; codec.quality owns what it means.
MIN_QUALITY = 1.0
MAX_QUALITY = 8.0
QUALITY_STEPS = 256

CHANNEL_LAYOUTS = ("L", "RGB", "RGBA")
_FLAG_LAYOUT_MASK = 0x03
_FLAG_ICC = 0x04
_FLAG_ALPHA = 0x08
_FLAG_KNOWN = _FLAG_LAYOUT_MASK | _FLAG_ICC | _FLAG_ALPHA

_CRC_SIZE = 4
_MAX_VARINT_BYTES = 5  # 35 bits: more than any length a valid file can hold
# magic, version, flags, id length, 1-char id, hash, quality, width, height, symbol CRC,
# stream count, file CRC
_MIN_FILE_SIZE = 4 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + _CRC_SIZE  # version 2: no hash, quality, symbol CRC


def is_lic(data: bytes) -> bool:
    """Whether ``data`` starts like a .lic file (the magic only; ``unpack`` validates the rest)."""
    return bytes(data[:len(MAGIC)]) == MAGIC


@dataclass(frozen=True)
class Residual:
    """The residual section of a version-2 file: lossless or near-lossless samples.

    ``bits``: bits per stored sample (8 or 16 as written by lic; 1..16 accepted);
    ``max_error``: K, every sample within K of the original (0: lossless); ``sample_crc``:
    CRC32 of the decoded samples (codec.lossless.near_lossless says which bytes).
    """

    bits: int
    max_error: int
    sample_crc: int

    def __post_init__(self):
        maxval = (1 << self.bits) - 1 if 1 <= self.bits <= MAX_BITS else 0
        if not maxval:
            raise ValueError(f"bits stored must be in 1..{MAX_BITS}, got {self.bits}")
        if not 0 <= self.max_error <= maxval:
            raise ValueError(f"max error {self.max_error} outside 0..{maxval}")
        if not 0 <= self.sample_crc < 1 << 32:
            raise ValueError("sample CRC must be an unsigned 32-bit value")

    @property
    def maxval(self) -> int:
        return (1 << self.bits) - 1


@dataclass(frozen=True)
class Header:
    """The header of a lossy file (version 1): the model that coded it, the quality, the image.

    ``residual`` is always None: a lossy file has no residual section (``ResidualHeader`` has one).
    """

    model_id: str  # short ASCII id of the model, e.g. "lic-cc-v1"
    model_hash: bytes  # 4-byte short hash of the weights
    quality: float  # a stored value: a multiple of 1/256 in [1, 8] (codec.quality.quantize_quality)
    width: int
    height: int
    channels: str  # "RGB", "L" or "RGBA"
    symbol_crc: int  # CRC32 over all coded symbols, computed by the encoder
    icc: bytes | None = None

    version: ClassVar[int] = FORMAT_VERSION
    residual: ClassVar[None] = None

    def __post_init__(self):
        if not isinstance(self.model_hash, bytes) or len(self.model_hash) != MODEL_HASH_SIZE:
            raise ValueError(f"model_hash must be {MODEL_HASH_SIZE} bytes")
        _check_quality_field(self.quality)
        if not 0 <= self.symbol_crc < 1 << 32:
            raise ValueError("symbol_crc must be an unsigned 32-bit value")
        _check_image(self)


@dataclass(frozen=True)
class ResidualHeader:
    """The header of a lossless or near-lossless file (version 2): its residual coder, the image,
    and the residual section."""

    width: int
    height: int
    channels: str  # "RGB", "L" or "RGBA"
    residual: Residual
    icc: bytes | None = None
    model_id: str = RESIDUAL_CODER  # the residual coder that made the stream

    version: ClassVar[int] = RESIDUAL_VERSION

    def __post_init__(self):
        if not isinstance(self.residual, Residual):
            raise ValueError("residual must be a Residual section")
        _check_image(self)


def _check_image(header: "Header | ResidualHeader") -> None:
    """The fields both versions share: the model or coder id, the image's size, layout and profile."""
    if not (1 <= len(header.model_id) <= MAX_MODEL_ID and header.model_id.isascii()
            and header.model_id.isprintable()):
        raise ValueError(f"model_id must be 1..{MAX_MODEL_ID} printable ASCII characters")
    _check_size(header.width, header.height, InputError)  # an image too large is the caller's input
    if header.channels not in CHANNEL_LAYOUTS:
        raise ValueError(f"channels must be one of {CHANNEL_LAYOUTS}, got {header.channels!r}")
    if header.icc is not None and not isinstance(header.icc, bytes):
        raise ValueError("icc must be bytes or None")


class Container(NamedTuple):
    """A parsed and validated ``.lic`` file: what ``unpack`` returns."""

    header: Header | ResidualHeader
    streams: list[bytes]  # the coded streams, in coding order
    alpha: bytes | None  # the alpha plane's blob (FORMAT.md), for RGBA files only


def _check_quality_field(quality) -> None:
    """``ValueError`` unless the quality field can hold ``quality`` exactly (a stored value)."""
    stored = (not isinstance(quality, bool) and isinstance(quality, numbers.Real)
              and MIN_QUALITY <= quality <= MAX_QUALITY and round(quality * QUALITY_STEPS) / QUALITY_STEPS == quality)
    if not stored:
        raise ValueError(f"quality must be a stored value (a multiple of 1/{QUALITY_STEPS} in "
                         f"[{MIN_QUALITY:g}, {MAX_QUALITY:g}]), got {quality!r}")


def _check_size(width: int, height: int, error: type[Exception]) -> None:
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise error(f"image size {width}x{height} outside 1..{MAX_SIDE} per side")
    if width * height > MAX_PIXELS:
        raise error(f"image size {width}x{height} exceeds {MAX_PIXELS} pixels")


# ---------------------------------------------------------------------------------------
# Writing


def _varint(value: int) -> bytes:
    """Unsigned LEB128: 7 bits per byte, low group first, high bit set on all but the last."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def pack(header: Header | ResidualHeader, streams: Sequence[bytes], alpha: bytes | None = None) -> bytes:
    """Serialize a header, its streams and an optional alpha blob into a ``.lic`` file."""
    streams = [bytes(s) for s in streams]
    if len(streams) > MAX_STREAMS:
        raise ValueError(f"at most {MAX_STREAMS} streams, got {len(streams)}")
    if (alpha is not None) != (header.channels == "RGBA"):
        raise ValueError("an alpha blob is required for RGBA and not allowed otherwise")
    if isinstance(header, ResidualHeader) and len(streams) != 1:
        raise ValueError("a residual file has exactly one stream, the residual stream")
    flags = CHANNEL_LAYOUTS.index(header.channels)
    flags |= _FLAG_ICC if header.icc is not None else 0
    flags |= _FLAG_ALPHA if alpha is not None else 0
    model_id = header.model_id.encode("ascii")
    out = bytearray(MAGIC) + bytes([header.version, flags, len(model_id)]) + model_id + _section(header)
    out += _varint(len(streams))
    blobs = ([header.icc] if header.icc is not None else []) + ([alpha] if alpha is not None else [])
    for blob in blobs + streams:
        out += _varint(len(blob))
    for blob in blobs + streams:
        out += blob
    out += zlib.crc32(out).to_bytes(_CRC_SIZE, "little")
    return bytes(out)


def _section(header: Header | ResidualHeader) -> bytes:
    """The fields of the header's version, after the model id (FORMAT.md)."""
    size = _varint(header.width - 1) + _varint(header.height - 1)
    if isinstance(header, ResidualHeader):
        res = header.residual
        return size + bytes([res.bits]) + _varint(res.max_error) + res.sample_crc.to_bytes(4, "little")
    quality = round(header.quality * QUALITY_STEPS).to_bytes(2, "little")  # a stored value: exact
    return header.model_hash + quality + size + header.symbol_crc.to_bytes(4, "little")


# ---------------------------------------------------------------------------------------
# Reading


class _Reader:
    """Bounds-checked cursor over the CRC-covered part of a file."""

    def __init__(self, data: bytes, end: int):
        self.data, self.pos, self.end = data, 0, end

    def take(self, n: int) -> bytes:
        if n > self.end - self.pos:
            raise LicFormatError("truncated file")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def varint(self) -> int:
        value = 0
        for i in range(_MAX_VARINT_BYTES):
            byte = self.byte()
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                if byte == 0 and i > 0:
                    raise LicFormatError("corrupt: over-long varint")
                return value
        raise LicFormatError("corrupt: varint longer than 5 bytes")


def _declared_size(data: bytes) -> int | None:
    """The file size the header announces, read without trusting it; None if it cannot be read.

    Only used to tell a truncated file from a corrupt one once the CRC has failed.
    """
    try:
        r = _Reader(data, len(data))
        r.take(len(MAGIC))
        version = r.byte()
        flags = r.byte()
        if version == RESIDUAL_VERSION:
            r.take(r.byte())  # model id
            r.varint(), r.varint()
            r.byte(), r.varint(), r.take(4)  # bits, max error, sample CRC
        else:
            r.take(r.byte() + MODEL_HASH_SIZE + 2)  # model id, hash, quality
            r.varint(), r.varint()
            r.take(4)
        n_streams = r.varint()
        if n_streams > MAX_STREAMS:
            return None
        count = n_streams + bool(flags & _FLAG_ICC) + bool(flags & _FLAG_ALPHA)
        lengths = [r.varint() for _ in range(count)]
        return r.pos + sum(lengths) + _CRC_SIZE
    except LicFormatError:
        return None


def _parse(data: bytes) -> Container:
    data = bytes(data)
    if data[:len(MAGIC)] != MAGIC[:len(data)]:
        raise LicFormatError("not a lic file (bad magic)")
    if len(data) <= len(MAGIC):
        raise LicFormatError("truncated file")
    version = data[len(MAGIC)]
    if version not in (FORMAT_VERSION, RESIDUAL_VERSION):
        raise LicFormatError(f"unsupported format version {version}")
    if len(data) < _MIN_FILE_SIZE:
        raise LicFormatError("truncated file")
    body_end = len(data) - _CRC_SIZE
    if zlib.crc32(data[:body_end]) != int.from_bytes(data[body_end:], "little"):
        declared = _declared_size(data)
        if declared is not None and declared > len(data):
            raise LicFormatError(f"truncated file ({len(data):,} of {declared:,} bytes)")
        raise LicFormatError("corrupt: CRC mismatch")

    r = _Reader(data, body_end)
    r.take(len(MAGIC) + 1)
    channels, has_icc, has_alpha = _read_flags(r.byte())
    model_id = _read_model_id(r)
    read_section = _read_lossy if version == FORMAT_VERSION else _read_residual
    make_header = read_section(r, model_id, channels)

    n_streams = r.varint()
    if n_streams > MAX_STREAMS:
        raise LicFormatError(f"corrupt: {n_streams} streams (limit {MAX_STREAMS})")
    lengths = [r.varint() for _ in range(has_icc + has_alpha + n_streams)]
    if sum(lengths) > body_end - r.pos:
        raise LicFormatError("truncated file: stream lengths run past the end")
    if sum(lengths) < body_end - r.pos:
        raise LicFormatError("corrupt: trailing bytes after the last stream")
    blobs = [r.take(n) for n in lengths]
    if version == RESIDUAL_VERSION and n_streams != 1:
        raise LicFormatError(f"corrupt: a residual file has 1 stream, not {n_streams}")

    icc = blobs.pop(0) if has_icc else None
    alpha = blobs.pop(0) if has_alpha else None
    return Container(make_header(icc=icc), blobs, alpha)


def _read_flags(flags: int) -> tuple[str, bool, bool]:
    """(channel layout, has ICC, has alpha) from the flags byte."""
    if flags & ~_FLAG_KNOWN:
        raise LicFormatError(f"corrupt: unknown flags 0x{flags:02x}")
    layout = flags & _FLAG_LAYOUT_MASK
    if layout >= len(CHANNEL_LAYOUTS):
        raise LicFormatError(f"corrupt: unknown channel layout {layout}")
    channels = CHANNEL_LAYOUTS[layout]
    has_alpha = bool(flags & _FLAG_ALPHA)
    if has_alpha != (channels == "RGBA"):
        raise LicFormatError("corrupt: alpha flag disagrees with channel layout")
    return channels, bool(flags & _FLAG_ICC), has_alpha


def _read_model_id(r: _Reader) -> str:
    id_len = r.byte()
    if not 1 <= id_len <= MAX_MODEL_ID:
        raise LicFormatError(f"corrupt: model id length {id_len}")
    raw = r.take(id_len)
    if not all(0x20 <= b < 0x7F for b in raw):
        raise LicFormatError("corrupt: model id is not printable ASCII")
    return raw.decode("ascii")


def _read_size(r: _Reader) -> tuple[int, int]:
    width, height = r.varint() + 1, r.varint() + 1
    _check_size(width, height, LicFormatError)
    return width, height


def _read_lossy(r: _Reader, model_id: str, channels: str) -> Callable[..., Header]:
    """Read a version-1 section; returns the ``Header``'s maker, which takes the ICC profile."""
    model_hash = r.take(MODEL_HASH_SIZE)
    quality = int.from_bytes(r.take(2), "little") / QUALITY_STEPS  # exact: a multiple of 1/256
    if not MIN_QUALITY <= quality <= MAX_QUALITY:
        raise LicFormatError(f"corrupt: quality must be in [{MIN_QUALITY:g}, {MAX_QUALITY:g}], got {quality:g}")
    width, height = _read_size(r)
    symbol_crc = int.from_bytes(r.take(4), "little")
    return functools.partial(Header, model_id, model_hash, quality, width, height, channels, symbol_crc)


def _read_residual(r: _Reader, model_id: str, channels: str) -> Callable[..., ResidualHeader]:
    """Read a version-2 section; returns the ``ResidualHeader``'s maker, which takes the ICC profile."""
    width, height = _read_size(r)
    bits, max_error = r.byte(), r.varint()
    sample_crc = int.from_bytes(r.take(4), "little")
    try:
        residual = Residual(bits, max_error, sample_crc)
    except ValueError as e:
        raise LicFormatError(f"corrupt: {e}") from None
    return functools.partial(ResidualHeader, width, height, channels, residual, model_id=model_id)


def unpack(data: bytes) -> Container:
    """Parse and validate a ``.lic`` file into (header, streams, alpha blob or None).

    The result can be handed on (``codec.Codec.decompress`` takes it) so that nothing parses
    and CRC-checks the same file twice."""
    return _parse(data)


def read_header(data: bytes) -> Header:
    """The header of a ``.lic`` file, after the same validation as ``unpack``."""
    return _parse(data).header
