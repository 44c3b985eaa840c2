"""The single exception type that malformed ``.lic`` data raises."""

__all__ = ["LicFormatError"]


class LicFormatError(ValueError):
    """Bad input data: truncated, corrupt, foreign or from an unsupported version.

    The message is a one-line reason meant for a person, e.g. ``"truncated file"`` or
    ``"corrupt: CRC mismatch"``. Subclassing ``ValueError`` lets callers that already
    catch ``ValueError`` keep working.
    """
