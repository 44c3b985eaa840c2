"""Target searches (``codec.target``) bisect quality for real and return the best quality that
meets the target, or the closest valid end with ``met=False``.

The synthetic tests know the answer exactly; the shipped-model tests pick targets between what
quality 1 and quality 8 reach, so the search must take real bisection steps, and check the answer
against every quality the search tried (no monotonicity assumed beyond what the search uses).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import bitstream
import codec
from codec import coding
from codec.images import CodedImage
from codec.quality import quantize_quality
import codec.target
from codec.target import SEARCH_STEPS, fit_psnr, fit_size

STEP = 1 / bitstream.QUALITY_STEPS
# After SEARCH_STEPS halvings of [1, 8], each midpoint rounded to a stored quality (at most half a
# step off), the bracket is narrower than 7 / 2**SEARCH_STEPS + STEP.
RESOLUTION = 7 / 2**SEARCH_STEPS + STEP


def _steps(q: float) -> int:
    return round(q * bitstream.QUALITY_STEPS)


# -- synthetic: monotone functions with a known boundary ------------------------------------------

@pytest.mark.parametrize("boundary", [1.0, 1.7, 4.321, 6.01171875, 7.999, 8.0])
def test_size_search_finds_the_highest_quality_under_the_limit(boundary):
    tried = []

    def encode(q):
        tried.append(q)
        return bytes(_steps(q))  # one byte per stored step: size grows with quality

    limit = math.floor(boundary * bitstream.QUALITY_STEPS)
    best = limit / bitstream.QUALITY_STEPS  # the highest stored quality whose file fits
    result = fit_size(encode, limit)
    assert result.met and len(result.data) <= limit
    assert best - RESOLUTION <= result.quality <= best
    assert result.quality in tried and all(q == quantize_quality(q) for q in tried)
    assert len(set(tried)) <= SEARCH_STEPS + 2  # the two ends, then one candidate per step
    if 1.0 < boundary < 8.0:
        assert len(set(tried)) > 2  # it bisected
        failed_above = [q for q in tried if q > result.quality]
        assert failed_above and min(failed_above) - result.quality <= RESOLUTION


def test_size_search_reports_an_unreachable_limit_with_the_smallest_file():
    result = fit_size(lambda q: bytes(_steps(q)), 255)
    assert not result.met and result.quality == codec.MIN_QUALITY and len(result.data) == 256


@pytest.mark.parametrize("boundary", [1.0, 2.2, 5.5, 7.9, 8.0])
def test_psnr_search_finds_the_lowest_quality_reaching_the_target(boundary):
    encoded = []

    def encode(q):
        encoded.append(q)
        return b"x" * int(q * 10)

    result = fit_psnr(encode, lambda q: 20 + q, 20 + boundary)  # PSNR grows with quality
    assert result.met and result.psnr == 20 + result.quality >= 20 + boundary
    lowest = math.ceil(boundary * bitstream.QUALITY_STEPS) / bitstream.QUALITY_STEPS
    assert lowest <= result.quality <= lowest + RESOLUTION
    assert encoded == [result.quality]  # candidates are scored, only the answer is coded


def test_psnr_search_reports_an_unreachable_target_with_the_best_file():
    result = fit_psnr(lambda q: b"x" * int(q * 10), lambda q: 20 + q, 28.5)
    assert not result.met and result.quality == codec.MAX_QUALITY and result.psnr == 28.0
    assert len(result.data) == 80


# -- the shipped model: targets inside the range force real steps ------------------------------------

@pytest.fixture(scope="module")
def shipped(make_image):
    """A Codec with the weights that ship with lic (whatever LIC_WEIGHTS says), and a small image."""
    from codec.weights import default_weights_dir

    return codec.Codec(device="cpu", weights=default_weights_dir()), make_image(40, 56, 3, seed=7)


def _spy(monkeypatch, name):
    """Record the quality of every call to ``codec.coding.<name>`` (how the Codec scores/encodes)."""
    calls = {}
    real = getattr(coding, name)

    def spy(model, rgb, quality, **kwargs):
        out = real(model, rgb, quality, **kwargs)
        calls[quantize_quality(quality)] = out
        return out

    monkeypatch.setattr(coding, name, spy)
    return calls


def test_psnr_target_inside_the_range_is_the_lowest_tried_quality_that_meets_it(shipped, monkeypatch):
    c, image = shipped
    low, high = (codec.psnr(image, c.decompress(c.compress(image, q))) for q in (1, 8))
    assert high > low + 1, "the shipped model's PSNR should grow with quality"
    target = (low + high) / 2
    scored = _spy(monkeypatch, "reconstruct_rgb")
    result = c.compress_to_psnr(image, target)
    assert result.met and codec.MIN_QUALITY < result.quality < codec.MAX_QUALITY
    assert len(scored) > 3  # both ends and real bisection steps
    scores = {q: codec.psnr(image, CodedImage(rgb, "RGB")) for q, rgb in scored.items()}
    assert result.psnr == scores[result.quality] >= target
    # the answer is the lowest tried quality that meets the target, and the failing candidate
    # just below it is within the search's resolution
    assert result.quality == min(q for q, s in scores.items() if s >= target)
    below = max(q for q in scores if q < result.quality)
    assert scores[below] < target and result.quality - below <= RESOLUTION
    # the file holds that quality and decodes to exactly the scored PSNR
    assert bitstream.read_header(result.data).quality == result.quality
    assert codec.psnr(image, c.decompress(result.data)) == pytest.approx(result.psnr, abs=1e-9)


def test_size_target_inside_the_range_is_the_highest_tried_quality_that_fits(shipped, monkeypatch):
    c, image = shipped
    smallest, largest = len(c.compress(image, 1)), len(c.compress(image, 8))
    assert largest > smallest + 20
    limit = (smallest + largest) // 2
    coded = _spy(monkeypatch, "encode_rgb")
    result = c.compress_to_size(image, limit)
    assert result.met and codec.MIN_QUALITY < result.quality < codec.MAX_QUALITY
    assert len(coded) > 3
    sizes = {q: len(data) for q, data in coded.items()}
    assert len(result.data) == sizes[result.quality] <= limit
    assert result.quality == max(q for q, n in sizes.items() if n <= limit)
    above = min(q for q in sizes if q > result.quality)
    assert sizes[above] > limit and above - result.quality <= RESOLUTION


def test_unreachable_targets_on_the_shipped_model_say_not_met(shipped):
    c, image = shipped
    best = c.compress_to_psnr(image, 99.0)
    assert not best.met and best.quality == codec.MAX_QUALITY
    assert best.psnr == pytest.approx(codec.psnr(image, c.decompress(best.data)), abs=1e-9) and best.psnr < 99
    smallest = c.compress_to_size(image, 10)
    assert not smallest.met and smallest.quality == codec.MIN_QUALITY and len(smallest.data) > 10
    assert np.array_equal(np.asarray(c.decompress(smallest.data)), np.asarray(c.decompress(c.compress(image, 1))))


@pytest.mark.parametrize("target", [0.3, 1.0, 2.5, 4.321, 8.0, 9.0])
def test_closest_quality_is_the_stored_quality_whose_measure_is_nearest_the_target(target):
    measured = []

    def measure(q):  # grows with quality, as a mean bit rate does
        measured.append(q)
        return q

    q = codec.target.closest_quality(measure, target)
    assert q == quantize_quality(q) and abs(q - min(max(target, 1.0), 8.0)) <= RESOLUTION
    assert len(measured) == len(set(measured)) <= SEARCH_STEPS + 2  # each quality measured once
