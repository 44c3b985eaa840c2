"""Integer symbols and entropy parameters to bytes and back; the ``.lic`` container.

Knows symbols and probabilities, never neural networks: numpy in, numpy out.
Any malformed input data raises ``LicFormatError``. The byte layout is in FORMAT.md; the header's
quality field bounds a quality to [1, 8] in steps of 1/256 (``MIN_QUALITY``, ``MAX_QUALITY``,
``QUALITY_STEPS``), and ``codec.quality`` owns what a quality means.
"""

from .container import (FORMAT_VERSION, MAGIC, MAX_PIXELS, MAX_QUALITY, MAX_SIDE, MIN_QUALITY, QUALITY_STEPS,
                        RESIDUAL_CODER, RESIDUAL_VERSION, Container, Header, Residual, ResidualHeader, is_lic, pack,
                        read_header, unpack)
from .errors import InputError, LicFormatError
from .range_coder import decode_categorical, decode_gaussian, encode_categorical, encode_gaussian

__all__ = [
    "InputError", "LicFormatError", "Header", "ResidualHeader", "Residual", "Container", "FORMAT_VERSION", "RESIDUAL_VERSION", "RESIDUAL_CODER", "MAGIC", "MAX_SIDE", "MAX_PIXELS",
    "pack", "unpack", "read_header", "is_lic",
    "MIN_QUALITY", "MAX_QUALITY", "QUALITY_STEPS",
    "encode_gaussian", "decode_gaussian", "encode_categorical", "decode_categorical",
]
