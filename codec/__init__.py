"""lic: a learned image codec.

    import codec
    data = codec.compress("photo.png", quality=4)    # bytes of a .lic file
    image = codec.decompress(data)                   # a PIL image ("L", "RGB" or "RGBA"; codec.Image16 for 16-bit colour)

``compress`` takes a PIL image, a path, a numpy array or a tensor (floats in [0, 1]; see
``codec.images``); ``decompress`` takes bytes or a path.  ``import codec`` also registers the
Pillow plugin (``Image.open("x.lic")``, ``img.save("x.lic", quality=5)``) and changes nothing
else: torch loads, and the weights' metadata is read, on the first call that needs them.  Bad input
raises ``InputError`` (a ``ValueError``; ``LicFormatError`` for .lic data) with a one-line reason.
"""

from bitstream import InputError, LicFormatError

from . import pillow_plugin as _pillow_plugin
from .api import (DEFAULT_EFFORT, MAX_QUALITY, MIN_QUALITY, Codec, Image16, TargetResult, Timings, compress,
                  compress_exact, decompress, decompress_exact, default_codec)
from .images import open_image
from .metrics import psnr

__all__ = [
    "compress", "decompress", "compress_exact", "decompress_exact", "Codec", "Image16", "Timings", "TargetResult", "InputError", "LicFormatError", "default_codec",
    "open_image", "psnr", "DEFAULT_QUALITY", "DEFAULT_EFFORT", "MIN_QUALITY", "MAX_QUALITY",
]

_pillow_plugin.register()


def __getattr__(name: str):
    """``DEFAULT_QUALITY``, read from the shipped weights' metadata on first use (``codec.quality``)."""
    if name == "DEFAULT_QUALITY":
        from .quality import default_quality

        return default_quality()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
