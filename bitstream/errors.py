"""The exceptions that mean "bad input", as opposed to a bug.

``InputError`` is what a caller did wrong (a quality outside [1, 8], an image too large for the
format, float samples outside [0, 1], ...); ``LicFormatError`` is its kind for ``.lic`` data that
is malformed.  Both carry a one-line reason meant for a person, so the ``lic`` command prints
them as one line; any other exception escaping the codec is a bug and is reported as one.
"""

__all__ = ["InputError", "LicFormatError"]


class InputError(ValueError):
    """Input that cannot be coded or decoded, with a one-line reason meant for a person.

    Subclassing ``ValueError`` lets callers that already catch ``ValueError`` keep working.
    """


class LicFormatError(InputError):
    """Bad input data: truncated, corrupt, foreign or from an unsupported version.

    The message is a one-line reason meant for a person, e.g. ``"truncated file"`` or
    ``"corrupt: CRC mismatch"``.
    """
