"""Quality as a ``.lic`` file stores it: a real number in [1, 8] in steps of 1/256.

This is the one owner of the quality range and its step.  It lives in ``bitstream``, the lower
layer, because the header field is where the range and the step are facts: a uint16 holding
``round(q * 256)`` in 256..2048 (FORMAT.md), which ``unpack`` must check without knowing any
model.  ``codec.config`` takes the range from here and keeps one λ per integer quality in it;
the CLI, the API and the container all validate with ``check_quality``, so a bad quality gets
one message wherever it comes from.
"""

from __future__ import annotations

import numbers

from .errors import InputError

__all__ = ["MIN_QUALITY", "MAX_QUALITY", "QUALITY_STEPS", "check_quality", "quantize_quality"]

MIN_QUALITY = 1.0
MAX_QUALITY = 8.0
QUALITY_STEPS = 256  # stored steps per unit of quality: the header holds round(q * 256)


def check_quality(quality) -> float:
    """``quality`` as a float in [MIN_QUALITY, MAX_QUALITY].

    ``TypeError`` for what is not a real number (a bool or a string included); ``InputError``
    (a ``ValueError``) outside the range, NaN included.
    """
    if isinstance(quality, bool) or not isinstance(quality, numbers.Real):
        raise TypeError(f"quality must be a number in [{MIN_QUALITY:g}, {MAX_QUALITY:g}], got {quality!r}")
    value = float(quality)
    if not MIN_QUALITY <= value <= MAX_QUALITY:  # also refuses NaN
        raise InputError(f"quality must be in [{MIN_QUALITY:g}, {MAX_QUALITY:g}], got {value:g}")
    return value


def quantize_quality(quality) -> float:
    """The quality a header stores for ``quality``: the nearest multiple of 1/256 (checked)."""
    return round(check_quality(quality) * QUALITY_STEPS) / QUALITY_STEPS
