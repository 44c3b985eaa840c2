"""How many pixels lic agrees to open: images to encode, and .lic files to decode.

Inputs.  Pillow refuses an image of more than twice ``Image.MAX_IMAGE_PIXELS`` (89,478,485 by
default) as a possible decompression bomb.  lic codes every image its format can hold
(``bitstream.MAX_PIXELS``, 2^28 pixels), so ``pixel_limit`` raises Pillow's limit to that while lic
opens an image, and restores it after.

Decoding.  A .lic file of a few dozen bytes can declare 2^28 pixels, whose decoding would take
minutes and gigabytes.  lic's decoders (``codec.decompress``, ``Codec.decompress``,
``decompress_exact``, ``lic decode``) call ``check_pixels`` right after parsing the header, before
any stream is decoded: a file that declares more pixels than ``max_pixels`` is a one-line
``LicFormatError`` that says how to raise the limit.  By default the limit is Pillow's
decompression-bomb limit, ``Image.MAX_IMAGE_PIXELS`` as it stands when the file is decoded, so an
application that moved it for its images moves it for .lic files too (89,478,485 when nobody did;
an application that turned Pillow's off with None gets every image the format can hold).
``max_pixels=N`` and ``lic decode --max-pixels N`` set it.  Pillow's plugin leaves the limit to
Pillow, which applies its own rule (a warning above the limit, ``DecompressionBombError`` above
twice the limit) when ``Image.open`` opens a .lic file, as for any format.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from PIL import Image

from bitstream import MAX_PIXELS, InputError, LicFormatError

__all__ = ["pixel_limit", "decode_limit", "check_pixels"]


@contextmanager
def pixel_limit() -> Iterator[None]:
    """Within the block, Pillow opens every image a .lic file can hold (``bitstream.MAX_PIXELS``),
    unless its decompression-bomb limit is already higher or off; the limit is restored after."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit is None or limit >= MAX_PIXELS:
        yield
        return
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        yield
    finally:
        if Image.MAX_IMAGE_PIXELS == MAX_PIXELS:  # unless someone set another limit meanwhile
            Image.MAX_IMAGE_PIXELS = limit


def decode_limit(max_pixels: int | None = None) -> int:
    """The most pixels a decoder accepts: ``max_pixels`` (a positive integer), else Pillow's
    decompression-bomb limit, else (Pillow's turned off) the format's own ``MAX_PIXELS``."""
    if max_pixels is None:
        max_pixels = Image.MAX_IMAGE_PIXELS
        return MAX_PIXELS if max_pixels is None else int(max_pixels)
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise InputError(f"max_pixels must be a positive integer or None, got {max_pixels!r}")
    return max_pixels


def check_pixels(header, max_pixels: int | None = None, raise_with: str = "max_pixels=") -> None:
    """``LicFormatError`` if ``header`` (a parsed .lic header) declares more pixels than
    ``decode_limit(max_pixels)``; ``raise_with`` is how the message tells the caller to raise it."""
    limit = decode_limit(max_pixels)
    pixels = header.width * header.height
    if pixels > limit:
        raise LicFormatError(f"image of {header.width}x{header.height} = {pixels:,} pixels is over the decoding "
                             f"limit of {limit:,} pixels (raise it with {raise_with})")
