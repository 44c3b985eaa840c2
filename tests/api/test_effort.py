"""``effort``: refined encodes decode with the unchanged decoder and never cost more than effort 0."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import codec
from codec import InputError
from codec.coding import decode_rgb, encode_rgb, reconstruct_rgb
from codec.quality import lambda_for_quality
from codec.weights import fingerprint


def _cost(data: bytes, decoded: np.ndarray, rgb: np.ndarray, quality: float) -> float:
    """What the encoder minimises: bits of the real file + λ(q)·(squared error of its samples)/3."""
    se = float(((decoded.astype(np.float64) - rgb) ** 2).sum())
    return len(data) * 8 + lambda_for_quality(quality) * se / 3


def test_refined_files_decode_unchanged_and_cost_less(active_tiny_model, make_image):
    model = active_tiny_model
    digest = fingerprint(model)
    gains = []
    for seed, quality in [(0, 3.0), (1, 5.0), (2, 7.0)]:
        rgb = make_image(48, 80, 3, seed=seed)
        costs = []
        for effort in (0, 1, 2) if seed == 0 else (0, 1):  # 2: a budget whose tiles stop early
            data = encode_rgb(model, rgb, quality, effort=effort, model_hash=digest)
            decoded, header, _ = decode_rgb(model, data, model_hash=digest)  # the decoder knows no effort
            assert (header.width, header.height) == (80, 48)
            assert np.array_equal(decoded, reconstruct_rgb(model, rgb, header.quality, effort))
            costs.append(_cost(data, decoded, rgb, header.quality))
        assert max(costs[1:]) <= costs[0]  # never worse: effort 0 is the fallback
        gains.append(costs[0] - min(costs[1:]))
    assert max(gains) > 0  # and it does find cheaper latents


@pytest.mark.usefixtures("use_tiny_weights")
def test_api_takes_effort_and_refuses_bad_values(make_image):
    image = Image.fromarray(make_image(40, 56, 3))
    out = codec.decompress(codec.compress(image, 4, effort=1))
    assert out.size == (56, 40)
    for bad in (-1, 4, 1.0, True, "1"):
        with pytest.raises(InputError, match="effort must be an integer from 0 to 3"):
            codec.compress(image, 4, effort=bad)
    with pytest.raises(InputError, match="effort"):
        codec.Codec(device="cpu", effort=7)


@pytest.mark.usefixtures("use_tiny_weights")
def test_targets_search_at_the_same_effort(make_image):
    image = Image.fromarray(make_image(40, 56, 3, seed=4))
    refined = codec.Codec(device="cpu", effort=1)
    steps = []
    size = len(refined.compress(image, 5.0))
    result = refined.compress_to_size(image, size, progress=lambda done, total: steps.append(1))
    assert result.met and len(result.data) <= size and result.quality >= 5.0
    assert steps  # every candidate was refined
    assert result.data == refined.compress(image, result.quality)


def _scored_files(model, monkeypatch) -> tuple:
    """A coder of ``model``, and a list that gets one entry per file ``encode_rgb`` decodes to score it."""
    coder = model.coder()
    scored = []
    reconstruct = coder.reconstruct
    monkeypatch.setattr(coder, "reconstruct", lambda *a, **k: scored.append(1) or reconstruct(*a, **k))
    return coder, scored


def test_a_clear_gain_codes_one_file_and_a_small_one_keeps_the_cheaper_real_file(active_tiny_model, make_image,
                                                                                  monkeypatch):
    import codec.coding as coding

    rgb, quality = make_image(48, 80, 3, seed=0), 5.0
    coder, scored = _scored_files(active_tiny_model, monkeypatch)
    monkeypatch.setattr(coding, "SCORE_BELOW", 0.0)  # any gain is trusted: the one-pass file is not made
    trusted = encode_rgb(coder, rgb, quality, effort=1)
    assert scored == []
    monkeypatch.setattr(coding, "SCORE_BELOW", float("inf"))  # no gain is trusted: both files are scored
    checked = encode_rgb(coder, rgb, quality, effort=1)
    assert len(scored) == 2
    effort0 = encode_rgb(coder, rgb, quality, effort=0)
    assert checked in (trusted, effort0)


def test_latents_the_refinement_did_not_move_give_the_one_pass_file_unscored(active_tiny_model, make_image,
                                                                              monkeypatch):
    import codec.refine as refine

    rgb, quality = make_image(48, 80, 3, seed=1), 3.0
    coder, scored = _scored_files(active_tiny_model, monkeypatch)
    monkeypatch.setattr(refine, "refine_latents", lambda model, x, size, y, *a, **k: y.clone())
    assert encode_rgb(coder, rgb, quality, effort=2) == encode_rgb(coder, rgb, quality, effort=0)
    assert scored == []
