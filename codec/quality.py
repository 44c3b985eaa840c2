"""Quality: the one rate-distortion knob of a lossy file, a real number in [1, 8].

Everything lic means by a quality lives here, and nothing here needs torch:

- the range and the step: a header stores ``round(q · 256)`` (``bitstream``'s quality field, which
  bounds it; FORMAT.md), so the qualities a file can hold are the multiples of 1/256 in [1, 8];
- ``check_quality`` and ``quantize_quality``: a caller's number as a stored quality, with one message
  for a bad one.  A quality is checked once, where it enters lic (``codec.api``, the ``lic`` command's
  ``-q``): ``quantize_quality`` returns a ``StoredQuality``, which it passes through unchecked when given
  one back, so the command's quality is not checked again by the API it calls; the layers below take
  stored qualities (``rd_cost`` does not check again) and the header field refuses anything else;
- the trade-off it sets: one λ per integer quality (the model's levels), interpolated geometrically
  between them (``lambda_for_quality``, float or tensor), ``level_position`` for any per-level table,
  and ``rd_cost``, the objective J = R + λ(q)·255²·D that training and the encoder minimise;
- ``default_quality``: the shipped weights' default, measured when they were exported and kept in
  their metadata (``codec.target.closest_quality`` is the measurement).
"""

from __future__ import annotations

import functools
import math
import numbers

from bitstream import MAX_QUALITY, MIN_QUALITY, QUALITY_STEPS, InputError

__all__ = ["MIN_QUALITY", "MAX_QUALITY", "QUALITY_STEPS", "QUALITY_LAMBDAS", "FALLBACK_QUALITY", "StoredQuality",
           "check_quality", "quantize_quality", "level_position", "lambda_for_quality", "rd_cost", "default_quality"]

# Rate-distortion trade-off per integer quality level 1..8 (CompressAI's zoo, MSE on 0..255).
QUALITY_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800)
assert len(QUALITY_LAMBDAS) == MAX_QUALITY - MIN_QUALITY + 1, "one λ per integer quality of the format's range"

# The default of weights whose metadata holds no measured one (a model fresh from training).
FALLBACK_QUALITY = 4.0


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


class StoredQuality(float):
    """A quality that ``quantize_quality`` checked and rounded to a stored value: a plain float in
    every use, marked so that it is not checked a second time."""

    __slots__ = ()


def quantize_quality(quality) -> StoredQuality:
    """The quality a header stores for ``quality``: the nearest multiple of 1/256 (checked, unless
    it is a ``StoredQuality`` already)."""
    if isinstance(quality, StoredQuality):
        return quality
    return StoredQuality(round(check_quality(quality) * QUALITY_STEPS) / QUALITY_STEPS)


def level_position(quality, dtype=None):
    """Where tensor qualities fall between the integer levels: ``(low, t)`` with ``low`` the
    0-based index of the level below (long) and ``t`` in [0, 1] the way to the next, so that a
    per-level table interpolates as ``(1 − t)·table[low] + t·table[low + 1]``.  Clamped to the
    range; computed in ``dtype`` (default: the quality's).  Shared by λ(q) and the gain units."""
    q = (quality if dtype is None else quality.to(dtype)).clamp(MIN_QUALITY, MAX_QUALITY) - MIN_QUALITY
    low = q.floor().clamp(max=len(QUALITY_LAMBDAS) - 2)
    return low.long(), q - low


def lambda_for_quality(quality):
    """λ for a real quality in [1, 8], interpolated geometrically between the table's levels:
    log λ(l + t) = (1 − t)·log λ_l + t·log λ_{l+1}.

    ``quality`` is a float (checked against the range), or a torch tensor of qualities (the
    training form: elementwise, float32 out, clamped to the range; torch is imported only then).
    """
    if hasattr(quality, "detach"):
        return _lambda_tensor(quality)
    return _lambda_float(check_quality(quality))


def rd_cost(bpp, mse, quality):
    """The objective every part of lic minimises: J = R + λ(q)·255²·D, with R in bits per pixel
    and D the mean squared error on [0, 1] (×255² puts it on the 8-bit scale λ was tuned for;
    Ballé et al. 2018).  Floats or tensors, elementwise; ``quality`` a float or a tensor, which is
    not checked here (qualities are checked where they enter lic) but clamped to the range.

    J is linear in R and D, so totals give totals: with R in bits and D the squared error summed
    over the pixels (and averaged over the three channels), it is N·J for an image of N pixels."""
    lam = _lambda_tensor(quality) if hasattr(quality, "detach") else _lambda_float(quality)
    return bpp + lam * 255**2 * mse


def _lambda_tensor(quality):
    import torch

    table = torch.tensor([math.log(v) for v in QUALITY_LAMBDAS], dtype=torch.float64, device=quality.device)
    low, t = level_position(quality, torch.float64)
    return torch.exp((1 - t) * table[low] + t * table[low + 1]).float()


def _lambda_float(quality: float) -> float:
    quality = min(max(float(quality), MIN_QUALITY), MAX_QUALITY)
    level = min(int(math.floor(quality)), int(MAX_QUALITY) - 1)  # the integer level at or below
    t = quality - level
    a = math.log(QUALITY_LAMBDAS[level - int(MIN_QUALITY)])
    b = math.log(QUALITY_LAMBDAS[level - int(MIN_QUALITY) + 1])
    return math.exp((1 - t) * a + t * b)


@functools.lru_cache(maxsize=None)
def default_quality() -> float:
    """The default quality of the shipped weights: the stored quality whose mean bit rate over the
    24 Kodak images is closest to 0.5 bpp, measured when they were exported and kept in their
    metadata (``FALLBACK_QUALITY`` if it is missing).  Read on first use, not on import.  Single
    images land far above or below the mean; what each quality costs is in
    codec/weights/<model id>-kodak.json."""
    from .shards import SHIPPED_WEIGHTS, read_metadata

    try:
        return float(read_metadata(SHIPPED_WEIGHTS)["default_quality"])
    except (OSError, ValueError, KeyError):
        return FALLBACK_QUALITY
