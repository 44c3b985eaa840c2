"""A range-coded stream as bytes: the plumbing that every coder in ``bitstream`` shares.

constriction's ``stream.queue`` coders work on uint32 words; a stream in a .lic file is those words
in little-endian order on every host, so its length is a multiple of 4 and an empty message is 0
bytes.  Decoding untrusted bytes raises ``LicFormatError`` and nothing else, and a decoder must use
up its whole message: a stream with data left over is corrupt.
"""

import contextlib

import constriction
import numpy as np

from .errors import LicFormatError

__all__ = ["UNIFORM", "to_bytes", "open_decoder", "decoding_errors", "check_exhausted"]

# Uniform over 0 .. size - 1, with the size given per symbol: raw bits and escape tails.
UNIFORM = constriction.stream.model.Uniform()


def to_bytes(encoder) -> bytes:
    """The message of a ``RangeEncoder`` as a stream's bytes."""
    return encoder.get_compressed().astype("<u4").tobytes()


def open_decoder(data: bytes):
    """A ``RangeDecoder`` over a stream's bytes; ``LicFormatError`` if they cannot be one."""
    if len(data) % 4:
        raise LicFormatError("corrupt: range-coded stream length is not a multiple of 4")
    words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
    return constriction.stream.queue.RangeDecoder(words)


def check_exhausted(decoder, what: str = "range-coded stream") -> None:
    """Refuse a stream with data left over once everything was decoded."""
    if not decoder.maybe_exhausted():
        raise LicFormatError(f"corrupt: {what} has data left over")


@contextlib.contextmanager
def decoding_errors():
    """Turn whatever constriction raises on invalid compressed data into LicFormatError."""
    try:
        yield
    except LicFormatError:
        raise
    except (AssertionError, ValueError, KeyError, IndexError, OverflowError, RuntimeError) as e:
        raise LicFormatError(f"corrupt: range decoder failed ({type(e).__name__})") from None
    except BaseException as e:
        # Rust panics surface as pyo3's PanicException, a BaseException.
        if type(e).__name__ == "PanicException":
            raise LicFormatError("corrupt: range decoder failed (panic)") from None
        raise
