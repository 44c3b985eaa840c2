"""lic: a learned image codec.

    import codec
    data = codec.compress("photo.png", quality=4)    # bytes of a .lic file
    image = codec.decompress(data)                   # a PIL image ("L", "RGB" or "RGBA")

``compress`` takes a PIL image, a path, a numpy array or a tensor (floats in [0, 1]; see
``codec.images``); ``decompress`` takes bytes or a path.  ``import codec`` also registers the
Pillow plugin (``Image.open("x.lic")``, ``img.save("x.lic", quality=5)``).  torch loads on the
first call that needs the model.
"""

from bitstream import LicFormatError

from . import pillow_plugin as _pillow_plugin
from .api import (DEFAULT_QUALITY, MAX_QUALITY, MIN_QUALITY, Codec, TargetResult, Timings, compress, decompress,
                  default_codec)

__all__ = [
    "compress", "decompress", "Codec", "Timings", "TargetResult", "LicFormatError", "default_codec",
    "DEFAULT_QUALITY", "MIN_QUALITY", "MAX_QUALITY",
]

_pillow_plugin.register()
