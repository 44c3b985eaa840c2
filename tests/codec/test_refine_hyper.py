"""Claims about refining ẑ jointly with the latents (``codec.refine.refine_jointly``), on a tiny model."""

import copy

import numpy as np
import pytest
import torch

import codec.coding as coding
import codec.refine as refine
from codec import effort
from codec.coding import _encode, decode_rgb, encode_rgb
from codec.effort import RefineConfig
from codec.networks.integer import Arithmetic
from codec.quality import lambda_for_quality
from codec.weights import fingerprint

JOINT = RefineConfig(steps=10, lr=0.03, relaxation="sga", check_every=2, hyper_lr=0.05)


@pytest.fixture(scope="module")
def model(active_tiny_model):
    """The active tiny model with h_a widened, so that ẑ is not all zeros."""
    widened = copy.deepcopy(active_tiny_model)
    with torch.no_grad():
        widened.hyper.h_a[-1].weight.mul_(8)
    return widened.eval()


def _analysed(model, rgb, quality):
    coder = model.coder()
    x_padded, y, z = coder.analyse(coding.rgb_to_input(rgb, padded=True), quality)
    return coder, torch.from_numpy(x_padded), torch.from_numpy(y), z


def test_the_hyper_path_takes_the_coders_features_and_the_hard_cost_counts_z(model, make_image):
    """The joint cost's ψ from integer ẑ is the exact path's, and its hard cost is the fixed-ẑ one plus ẑ's bits."""
    rgb, quality = make_image(64, 96, 3, seed=1), 4.0
    coder, x_padded, y, z = _analysed(model, rgb, quality)
    assert np.abs(z).max() > 0
    exact = torch.from_numpy(coder.entropy.features(z)).float()
    with torch.no_grad():
        fake = model.hyper.h_s(torch.from_numpy(z).float(), Arithmetic.FAKE)
    assert torch.allclose(fake, exact, atol=1e-4)
    (_, _, window), = refine._windows(x_padded, (64, 96), y, exact)
    z_bits = -torch.log2(model.hyper.density.likelihood(torch.from_numpy(z).float())).sum().item()
    with refine._fitting(model):
        fixed = refine._hard_cost(model, window, y, quality)
        joint = refine._hard_cost(model, window, y, quality, torch.from_numpy(z).float() + 0.3)
    assert joint == pytest.approx(fixed + z_bits, rel=1e-4)


@pytest.mark.parametrize("relaxation", ["ste", "sga"])
def test_fitting_z_alone_lowers_the_cost_and_moves_symbols(model, make_image, relaxation):
    """y held (lr 0): any gain is ẑ's, through its own bits and through ψ on every latent's rate."""
    rgb, quality = make_image(64, 96, 3, seed=2), 4.0
    coder, x_padded, y, z = _analysed(model, rgb, quality)
    config = RefineConfig(steps=12, lr=0.0, relaxation=relaxation, check_every=2, hyper_lr=0.3)
    seen = []
    refined_y, refined_z = refine.refine_jointly(model, x_padded, (64, 96), y, torch.from_numpy(z), quality, config,
                                                 observer=seen.append)
    assert torch.equal(refined_y, y)
    assert refined_z.dtype == torch.int32 and refined_z.shape == z.shape
    costs = [s.hard_cost for s in seen if s.hard_cost is not None]
    assert min(costs) < costs[0] and not np.array_equal(refined_z.numpy(), z)
    assert all(s.hyper_latents is not None for s in seen)


def test_joint_refinement_is_deterministic_and_never_worse_by_its_own_measure(model, make_image):
    rgb, quality = make_image(64, 96, 3, seed=3), 5.0
    coder, x_padded, y, z = _analysed(model, rgb, quality)
    runs = []
    for _ in range(2):
        seen = []
        runs.append(refine.refine_jointly(model, x_padded, (64, 96), y, torch.from_numpy(z), quality, JOINT,
                                          observer=seen.append))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    (_, _, window), = refine._windows(x_padded, (64, 96), runs[0][0], runs[0][0])
    with refine._fitting(model):
        start = refine._hard_cost(model, window, y, quality, torch.from_numpy(z).float())
        end = refine._hard_cost(model, window, runs[0][0], quality, runs[0][1].float())
    assert end <= start


def _file_cost(data: bytes, decoded: np.ndarray, rgb: np.ndarray, quality: float) -> float:
    se = float(((decoded.astype(np.float64) - rgb) ** 2).sum())
    return len(data) * 8 + lambda_for_quality(quality) * se / 3


def test_a_refined_z_file_decodes_to_the_encoders_image_and_never_costs_more(model, make_image, monkeypatch):
    monkeypatch.setitem(effort.EFFORTS, 3, JOINT)
    digest = fingerprint(model)
    moved = 0
    for seed, quality in [(4, 3.0), (5, 6.0)]:
        rgb = make_image(48, 80, 3, seed=seed)
        coder = model.coder()
        one_pass = coder.analyse(coding.rgb_to_input(rgb, padded=True), quality)[2]
        data, y_hat = _encode(coder, rgb, quality, effort=3, model_hash=digest)
        decoded, header, _ = decode_rgb(coder, data, model_hash=digest)
        assert np.array_equal(decoded, coding.output_to_rgb(coder.reconstruct(y_hat, header.quality, (48, 80))))
        assert np.array_equal(decode_rgb(model.coder(), data, model_hash=digest)[0], decoded)  # a fresh decoder
        coded_z = coding.bitstream.unpack(data)[1][0]
        moved += coded_z != coding.bitstream.encode_categorical(
            one_pass[0].reshape(one_pass.shape[1], -1), coder.entropy.z_pmf, coder.entropy.z_offset)
        effort0 = encode_rgb(coder, rgb, quality, effort=0, model_hash=digest)
        assert _file_cost(data, decoded, rgb, quality) <= _file_cost(effort0, decode_rgb(coder, effort0,
                                                                                         model_hash=digest)[0],
                                                                     rgb, quality)
    assert moved  # ẑ was refined in at least one of the files


def test_the_one_pass_file_stays_the_fallback(model, make_image, monkeypatch):
    monkeypatch.setitem(effort.EFFORTS, 3, JOINT)
    rgb, quality = make_image(48, 80, 3, seed=6), 4.0
    coder = model.coder()
    effort0 = encode_rgb(coder, rgb, quality, effort=0)
    scored = []
    reconstruct = coder.reconstruct
    monkeypatch.setattr(coder, "reconstruct", lambda *a, **k: scored.append(1) or reconstruct(*a, **k))
    with monkeypatch.context() as unmoved:
        # latents and ẑ the refinement did not move: the one-pass file itself, coded once and not scored
        unmoved.setattr(refine, "refine_jointly", lambda model, x, size, y, z, *a, **k: (y.clone(), z.clone()))
        assert encode_rgb(coder, rgb, quality, effort=3) == effort0 and scored == []
    trusted = encode_rgb(coder, rgb, quality, effort=3)  # a clear gain: the refined file alone
    assert trusted != effort0 and scored == []
    monkeypatch.setattr(coding, "SCORE_BELOW", float("inf"))  # no gain trusted: both files scored, cheaper kept
    assert encode_rgb(coder, rgb, quality, effort=3) in (trusted, effort0) and len(scored) == 2


def test_z_moves_only_on_one_refinement_tile(model, make_image, monkeypatch):
    assert refine.refines_hyper(JOINT, refine.REFINE_TILE, refine.REFINE_TILE)
    assert not refine.refines_hyper(JOINT, refine.REFINE_TILE + 1, 4)
    assert not refine.refines_hyper(RefineConfig(steps=10), 4, 4)
    monkeypatch.setattr(refine, "REFINE_TILE", 4)  # a 4 x 6 latent grid: two tiles
    rgb, quality = make_image(64, 96, 3, seed=7), 4.0
    coder, x_padded, y, z = _analysed(model, rgb, quality)
    with pytest.raises(ValueError, match="one refinement tile"):
        refine.refine_jointly(model, x_padded, (64, 96), y, torch.from_numpy(z), quality, JOINT)
    monkeypatch.setitem(effort.EFFORTS, 3, JOINT)
    data, _ = _encode(coder, rgb, quality, effort=3)  # falls back to y alone under the coded ẑ
    assert coding.bitstream.unpack(data)[1][0] == coding.bitstream.unpack(encode_rgb(coder, rgb, quality))[1][0]


def test_bad_hyper_steps_are_value_errors():
    with pytest.raises(ValueError, match="hyper_lr"):
        RefineConfig(steps=10, hyper_lr=-0.01)
    assert RefineConfig(steps=10, hyper_lr=0.01).moves_hyper
    assert RefineConfig(steps=10, then=RefineConfig(steps=5, hyper_lr=0.01)).moves_hyper
    assert not effort.effort_config(0).moves_hyper
