"""Integer symbols and entropy parameters to bytes and back; the ``.lic`` container.

Knows symbols and probabilities, never neural networks: numpy in, numpy out.
Any malformed input data raises ``LicFormatError``. The byte layout is in FORMAT.md.
"""

from .container import FORMAT_VERSION, Header, pack, quantize_quality, read_header, unpack
from .errors import LicFormatError
from .range_coder import decode_categorical, decode_gaussian, encode_categorical, encode_gaussian

__all__ = [
    "LicFormatError", "Header", "FORMAT_VERSION", "pack", "unpack", "read_header",
    "quantize_quality", "encode_gaussian", "decode_gaussian", "encode_categorical",
    "decode_categorical",
]
