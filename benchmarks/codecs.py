"""The interface every measured codec has, and the codecs reached through Pillow.

Every codec is a ``Codec``: ``encode(img, quality) -> bytes`` returns the complete file a user would store (so
``len`` of it is the rate), ``decode(data) -> PIL RGB image`` inverts it, ``qualities`` is the sweep, and
``available()`` says whether the library or tool is installed (``(False, reason)`` makes the runner skip the
codec with a note rather than fail). ``mid_quality`` is the setting used by the speed table (about 0.5–1 bpp on
Kodak).

Codecs here: JPEG 4:2:0 and 4:4:4, WebP, JPEG 2000 (all Pillow), AVIF (Pillow's AVIF plugin), JPEG XL
(pillow-jxl-plugin). HEVC 4:4:4 (the BPG stand-in) lives in ``hevc.py`` and lic's adapter in ``lic_codec.py``;
``registry.py`` lists them all by name.
"""

from __future__ import annotations

import abc
import io
from dataclasses import dataclass, field
from typing import Sequence

from PIL import Image, features

__all__ = ["Codec", "PillowCodec", "Jpeg2000Codec", "pillow_codecs"]


class Codec(abc.ABC):
    """Interface of a measured codec; subclasses set the class attributes and implement encode/decode."""

    name: str
    description: str
    qualities: Sequence[float]
    mid_quality: float

    def available(self) -> tuple[bool, str]:
        return True, ""

    @abc.abstractmethod
    def encode(self, img: Image.Image, quality: float) -> bytes:
        """The codec's file for ``img`` at ``quality`` (one of ``qualities``)."""

    @abc.abstractmethod
    def decode(self, data: bytes) -> Image.Image:
        """The RGB image a file decodes to."""

    def file_size(self, data: bytes) -> int:
        """Bytes that count as the rate; the encoded bytes themselves unless the codec says otherwise."""
        return len(data)

    def timings(self) -> dict[str, float]:
        """Optional break-down of the last encode/decode time in seconds (e.g. network vs entropy coding)."""
        return {}

    def provenance(self) -> dict[str, str]:
        """What the measured curve depends on besides the codec's name (e.g. a learned codec's weights),
        recorded beside its results so that a report never compares curves of different weights."""
        return {}


@dataclass
class PillowCodec(Codec):
    """A codec reached through ``PIL.Image.save`` / ``Image.open``.

    ``quality_option`` names the save() keyword that carries the sweep value; ``options`` are fixed save()
    keywords. ``feature`` is the Pillow feature or plugin module that must be present.
    """

    name: str
    description: str
    format: str
    qualities: Sequence[float]
    mid_quality: float
    quality_option: str = "quality"
    options: dict = field(default_factory=dict)
    feature: str = ""
    plugin_module: str = ""

    def available(self) -> tuple[bool, str]:
        if self.plugin_module:
            try:
                __import__(self.plugin_module)
            except ImportError as exc:
                return False, f"Python module {self.plugin_module!r} not installed ({exc})"
        if self.feature and not features.check(self.feature):
            return False, f"Pillow was built without {self.feature!r} support"
        return True, ""

    def save_options(self, quality: float) -> dict:
        return {**self.options, self.quality_option: int(quality)}

    def _load_plugin(self) -> None:
        """Plugins register their format with Pillow on import; a fresh worker process must import them too."""
        if self.plugin_module:
            __import__(self.plugin_module)

    def encode(self, img: Image.Image, quality: float) -> bytes:
        self._load_plugin()
        buf = io.BytesIO()
        img.convert("RGB").save(buf, format=self.format, **self.save_options(quality))
        return buf.getvalue()

    def decode(self, data: bytes) -> Image.Image:
        self._load_plugin()
        with Image.open(io.BytesIO(data)) as im:
            return im.convert("RGB")


@dataclass
class Jpeg2000Codec(PillowCodec):
    """JPEG 2000 through OpenJPEG, rate-controlled: the sweep values are target bits per pixel, turned into the
    compression ratio 24 / bpp that ``quality_mode="rates"`` expects (24 bits per uncompressed RGB pixel).
    Lossy 9/7 wavelet (``irreversible=True``) with the RGB→YCbCr transform (``mct=1``; Pillow's default 0 codes
    R, G and B separately and costs about 3 dB), raw codestream (no JP2 boxes)."""

    def save_options(self, quality: float) -> dict:
        return {**self.options, "quality_mode": "rates", "quality_layers": [24.0 / quality]}


def pillow_codecs() -> list[Codec]:
    """The codecs reached through Pillow, in plotting order."""
    jpeg_q = list(range(5, 100, 5))
    return [
        PillowCodec("jpeg", "JPEG 4:2:0, Pillow/libjpeg-turbo, optimized Huffman tables", "JPEG", jpeg_q, 75,
                    options={"subsampling": 2, "optimize": True}, feature="jpg"),
        PillowCodec("jpeg444", "JPEG 4:4:4, Pillow/libjpeg-turbo, optimized Huffman tables", "JPEG", jpeg_q, 75,
                    options={"subsampling": 0, "optimize": True}, feature="jpg"),
        PillowCodec("webp", "WebP lossy, Pillow/libwebp, method 6", "WEBP", list(range(5, 100, 10)) + [98], 75,
                    options={"method": 6, "lossless": False}, feature="webp"),
        Jpeg2000Codec("jpeg2000", "JPEG 2000, Pillow/OpenJPEG, 9/7 wavelet, rate-controlled (ratio = 24/bpp)",
                      "JPEG2000", [0.0625, 0.125, 0.25, 0.375, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0], 0.75,
                      options={"irreversible": True, "mct": 1, "no_jp2": True}, feature="jpg_2000"),
        PillowCodec("avif", "AVIF 4:4:4, Pillow/libavif (default AV1 encoder), speed 6, 1 thread", "AVIF",
                    [10, 20, 30, 40, 50, 60, 70, 80, 90, 95], 60,
                    options={"subsampling": "4:4:4", "speed": 6, "max_threads": 1}, feature="avif"),
        PillowCodec("jxl", "JPEG XL, pillow-jxl-plugin (libjxl), effort 7", "JXL",
                    [10, 20, 30, 40, 50, 60, 70, 80, 90, 95], 70,
                    options={"effort": 7, "lossless": False}, plugin_module="pillow_jxl"),
    ]
