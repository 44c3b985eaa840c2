"""Integer symbols and entropy parameters to bytes and back; the ``.lic`` container.

Knows symbols and probabilities, never neural networks: numpy in, numpy out.
Any malformed input data raises ``LicFormatError``. The byte layout is in FORMAT.md; the quality
range and its 1/256 step are owned here (``quality.py``), since the header field defines them.
"""

from .container import (FORMAT_VERSION, MAGIC, MAX_PIXELS, MAX_SIDE, RESIDUAL_CODER, RESIDUAL_VERSION, Container, Header, Residual,
                        is_lic, pack, read_header, unpack)
from .errors import InputError, LicFormatError
from .quality import MAX_QUALITY, MIN_QUALITY, QUALITY_STEPS, check_quality, quantize_quality
from .range_coder import decode_categorical, decode_gaussian, encode_categorical, encode_gaussian

__all__ = [
    "InputError", "LicFormatError", "Header", "Residual", "Container", "FORMAT_VERSION", "RESIDUAL_VERSION", "RESIDUAL_CODER", "MAGIC", "MAX_SIDE", "MAX_PIXELS",
    "pack", "unpack", "read_header", "is_lic",
    "MIN_QUALITY", "MAX_QUALITY", "QUALITY_STEPS", "check_quality", "quantize_quality",
    "encode_gaussian", "decode_gaussian", "encode_categorical", "decode_categorical",
]
