"""Pillow plugin: ``Image.open("x.lic")`` and ``img.save("x.lic", quality=5)``.

Registered by ``import codec``.  Opening parses and checks the file (size, mode, ICC profile);
pixels are decoded, whole, on ``load()`` by the default ``Codec`` (``$LIC_WEIGHTS`` or the shipped
weights), from what opening parsed.  Saving takes ``quality=``
(a real number in [1, 8], default ``DEFAULT_QUALITY``), and ``lossless=True`` or ``max_error=K``
for a file whose every sample is within K of the image's.  A 16-bit gray file opens as mode
``I;16``; a 16-bit RGB or RGBA file opens as "RGB" or "RGBA" with its samples reduced to 8 bits
(rounded), as Pillow opens a 16-bit colour PNG, since Pillow has no 16-bit colour mode
(``codec.decompress`` gives all 16 bits, as a ``codec.Image16``).

A file that starts like a .lic file but is damaged raises ``UnidentifiedImageError`` (what
``Image.open`` raises for any unreadable file) with the reason in its message, e.g.
``x.lic: not a valid lic file: truncated file (10 of 200 bytes)``.  ``Image.open`` applies the
caller's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) to a .lic file as to any other (a
``DecompressionBombWarning`` above it, ``DecompressionBombError`` above twice it), from the
header, before any decoding; the decoder then adds no limit of its own (``codec.limits``).
"""

from __future__ import annotations

from PIL import Image, ImageFile, UnidentifiedImageError

import bitstream
from bitstream import LicFormatError

__all__ = ["LicImageFile", "register"]

FORMAT = "LIC"


def _accept(prefix: bytes) -> bool:
    return bitstream.is_lic(prefix)


class LicImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = "lic learned image codec"

    def _open(self) -> None:
        data = self.fp.read()
        try:
            container = bitstream.unpack(data)
        except LicFormatError as e:
            # Not SyntaxError: Pillow would swallow it, try every other format and lose the reason.
            name = f"{self.filename}: " if isinstance(self.filename, str) and self.filename else ""
            raise UnidentifiedImageError(f"{name}not a valid lic file: {e}") from None
        header = container.header
        exact = isinstance(header, bitstream.ResidualHeader)
        self._size = (header.width, header.height)
        self._mode = "I;16" if exact and header.residual.bits > 8 and header.channels == "L" else header.channels
        if exact:
            self.info["max_error"] = header.residual.max_error
        if header.icc:
            self.info["icc_profile"] = header.icc
        if not exact:
            self.info["quality"] = header.quality
        # The decoder gets the parsed file as its argument: nothing parses or CRC-checks it twice.
        self.tile = [ImageFile._Tile("lic", (0, 0) + self.size, 0, (container,))]


class LicDecoder(ImageFile.PyDecoder):
    """Decodes the whole file at once: a .lic file has no independently decodable rows."""

    _pulls_fd = True  # everything was read and parsed by ``_open``; Pillow must not feed us bytes

    def decode(self, buffer):
        from .api import decompress
        from .images import Image16

        (container,) = self.args
        img = decompress(container, max_pixels=bitstream.MAX_PIXELS)  # Image.open applied Pillow's limit
        if isinstance(img, Image16):
            img = img.to_8bit()
        if img.mode != self.mode or img.size != (self.state.xsize, self.state.ysize):
            raise ValueError("decoded image does not match its header")
        self.set_as_raw(img.tobytes(), img.mode)
        return -1, 0


def _save(im: Image.Image, fp, filename) -> None:
    from .api import compress

    quality = im.encoderinfo.get("quality")
    max_error = im.encoderinfo.get("max_error")
    if im.encoderinfo.get("lossless"):
        max_error = 0
    icc = im.encoderinfo.get("icc_profile")
    if icc and im.info.get("icc_profile") != icc:
        im = im.copy()
        im.info["icc_profile"] = icc
    if max_error is not None:
        fp.write(compress(im, quality, max_error=max_error))
        return
    fp.write(compress(im, quality))  # None: the default quality


def register() -> None:
    """Register the plugin with Pillow: opening, decoding, saving, the extension and the MIME type."""
    Image.register_open(FORMAT, LicImageFile, _accept)
    Image.register_decoder("lic", LicDecoder)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, ".lic")
    Image.register_mime(FORMAT, "image/x-lic")
