"""Target searches: the quality that meets a file size, a bit rate or a PSNR.

Rate and distortion are monotone in quality (the gain units make every channel's quantizer
finer as q grows), so each search bisects the continuous quality over the stored values
(multiples of 1/256, ``codec.quality.quantize_quality``), and the returned file has exactly the
quality that was tested:

- size and bpp: the highest quality whose file is at most the target (every candidate really
  coded); if even the lowest quality is larger, that file with ``met=False``.
- PSNR: the lowest quality whose decoded image reaches the target (candidates scored by a
  ``score(q)`` that the caller computes without entropy coding); if even the highest quality
  falls short, that file with ``met=False``.

- a mean over many images (``closest_quality``): the stored quality whose ``measure(q)``, any
  quantity that grows with quality, is closest to a target; how the default quality of the shipped
  weights is chosen (mean bit rate over Kodak closest to 0.5 bpp).

The searches know nothing about models: they call ``encode(q) -> bytes``, ``score(q) -> dB`` or
``measure(q)``, each at most once per quality.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

from .quality import MAX_QUALITY, MIN_QUALITY, quantize_quality

__all__ = ["TargetResult", "SEARCH_STEPS", "fit_size", "fit_psnr", "closest_quality"]

# Bisection steps over [1, 8]: 7 / 2**10 is under two stored steps of 1/256, and the search stops
# earlier once the bracket holds no stored value between its ends.
SEARCH_STEPS = 10


@dataclass
class TargetResult:
    """Outcome of a target search: the file, its quality, and whether the target was met."""

    data: bytes
    quality: float
    met: bool
    psnr: float | None = None  # dB over the decoded samples, for PSNR targets

    def __repr__(self) -> str:  # the file's size, not its bytes
        psnr = "" if self.psnr is None else f", psnr={self.psnr:.2f}"
        return f"TargetResult(quality={self.quality:g}, met={self.met}, {len(self.data):,} bytes{psnr})"


def fit_size(encode: Callable[[float], bytes], max_bytes: int) -> TargetResult:
    """The highest quality whose file ``encode(q)`` is at most ``max_bytes`` bytes."""
    encode = functools.lru_cache(maxsize=None)(encode)  # the answer was coded while searching
    return _bisect(lambda q: len(encode(q)) <= max_bytes, encode, prefer_high=True)


def fit_psnr(encode: Callable[[float], bytes], score: Callable[[float], float], min_psnr: float) -> TargetResult:
    """The lowest quality whose ``score(q)`` (PSNR in dB) is at least ``min_psnr``; only the
    answer is encoded."""
    score = functools.lru_cache(maxsize=None)(score)
    result = _bisect(lambda q: score(q) >= min_psnr, encode, prefer_high=False)
    result.psnr = score(result.quality)
    return result


def closest_quality(measure: Callable[[float], float], target: float) -> float:
    """The stored quality whose ``measure(q)`` is closest to ``target``, for a ``measure`` that
    grows with quality (e.g. the mean bits per pixel of a set of images at q): the qualities either
    side of where it crosses the target are the candidates."""
    measure = functools.lru_cache(maxsize=None)(measure)
    below, above, _ = _boundary(lambda q: measure(q) <= target, prefer_high=True)
    return min((q for q in (below, above) if q is not None), key=lambda q: abs(measure(q) - target))


def _bisect(ok: Callable[[float], bool], encode: Callable[[float], bytes], prefer_high: bool) -> TargetResult:
    """The file at the boundary of ``ok`` (see ``_boundary``)."""
    q, _, met = _boundary(ok, prefer_high)
    return TargetResult(encode(q), q, met)


def _boundary(ok: Callable[[float], bool], prefer_high: bool) -> tuple[float, float | None, bool]:
    """Search quality for the boundary of ``ok`` (monotone: true at low q for sizes, high q for PSNR).

    Returns ``(q, across, met)``: ``q`` the largest quality where ok holds if ``prefer_high`` (size
    targets), else the smallest, and ``across`` the nearest tried quality on the other side; if ok
    holds everywhere, ``q`` is the far end and ``across`` None; if nowhere, ``q`` is the near end
    (the closest there is), ``across`` None and ``met`` False.
    """
    q_bad, q_good = (MAX_QUALITY, MIN_QUALITY) if prefer_high else (MIN_QUALITY, MAX_QUALITY)
    if ok(q_bad):
        return q_bad, None, True
    if not ok(q_good):
        return q_good, None, False
    for _ in range(SEARCH_STEPS):
        mid = quantize_quality((q_bad + q_good) / 2)
        if mid in (q_bad, q_good):
            break
        if ok(mid):
            q_good = mid
        else:
            q_bad = mid
    return q_good, q_bad, True
