"""Claims about the codec core, on tiny models (CPU, seconds)."""

from contextlib import contextmanager

import numpy as np
import pytest
import torch

from codec.networks.config import ModelConfig
from codec.networks.integer import IntConv2d
from codec.networks.model import LicModel
from codec.quality import QUALITY_LAMBDAS, lambda_for_quality


@pytest.fixture(scope="module")
def model(active_tiny_model):
    return active_tiny_model


def _image(h=70, w=90, seed=1, batch=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, h, w, generator=g)


def _array(h=70, w=90, seed=1):
    """An image as the coder takes it: (1, 3, h, w) float32 in [0, 1]."""
    return _image(h, w, seed).numpy()


@pytest.fixture(scope="module")
def coder(model):
    return model.coder()


def _decode(coder, code, quality, size):
    return coder.decompress(code.z_symbols, lambda k, idx: code.slices[k].symbols, quality, size)


def test_forward_shapes_and_likelihoods_in_unit_interval(model):
    x = _image(70, 90, batch=2)
    out = model(x, torch.tensor([1.0, 7.5]))
    assert out.x_hat.shape == x.shape
    assert out.y_likelihoods.shape == (2, 16, 8, 8)
    assert out.z_likelihoods.shape == (2, 8, 2, 2)
    for lik in (out.y_likelihoods, out.z_likelihoods):
        assert torch.all(lik > 0) and torch.all(lik <= 1)


def test_forward_gradients_reach_every_trainable_part():
    m = LicModel(ModelConfig.tiny()).train()
    out = m(_image(64, 64, batch=2), 3.0)
    bits = -(out.y_likelihoods.log2().sum() + out.z_likelihoods.log2().sum())
    (bits + 100 * (out.x_hat - 0.5).pow(2).mean()).backward()
    for name in ("g_a", "g_s", "hyper.h_a", "hyper.h_s", "hyper.density", "entropy.params", "entropy.lrp", "gain"):
        module = m.get_submodule(name)
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), name



def test_a_hyper_latent_far_in_the_tail_has_a_finite_rate_and_gradient():
    # Campaign legs 3-5 diverged on samples whose z mass underflowed to 0: an infinite rate.
    m = LicModel(ModelConfig.tiny()).train()
    y = torch.zeros(1, m.config.M, 8, 8)
    y[:, :, 2:6, 2:6] = 1e7  # drives z millions of units out
    y.requires_grad_(True)
    out = m.hyper(y)
    assert m.hyper.density.likelihood(m.hyper.h_a(y)).min() == 0  # the float32 mass does underflow
    bits = -out.z_likelihoods.log2().sum()
    bits.backward()
    assert torch.isfinite(bits) and torch.isfinite(y.grad).all()

def test_decompress_rebuilds_the_encoders_symbols_and_reconstruction(coder):
    code = coder.compress(_array(), 5.0)
    assert sum(int(np.abs(s.symbols).sum()) for s in code.slices) > 0, "test needs non-zero symbols"
    seen = []

    def read_slice(k, indexes):
        assert np.array_equal(indexes, code.slices[k].indexes)  # decoder derives the same σ indexes
        seen.append(k)
        return code.slices[k].symbols

    x_dec = coder.decompress(code.z_symbols, read_slice, 5.0, (70, 90))
    assert seen == list(range(len(coder.config.slices)))
    assert np.array_equal(x_dec, coder.reconstruct(code.y_hat, 5.0, (70, 90)))


def test_compress_is_deterministic(coder):
    a, b = coder.compress(_array(), 3.3), coder.compress(_array(), 3.3)
    assert np.array_equal(a.z_symbols, b.z_symbols)
    for sa, sb in zip(a.slices, b.slices):
        assert np.array_equal(sa.symbols, sb.symbols) and np.array_equal(sa.indexes, sb.indexes)


@contextmanager
def _threads(n):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _decode_recording(coder, code, quality, size):
    """Decode a code; returns the image and the σ indexes the decoder derived."""
    seen = []

    def read_slice(k, indexes):
        seen.append(indexes)
        return code.slices[k].symbols

    return coder.decompress(code.z_symbols, read_slice, quality, size), seen


def _pixels(x):
    return np.round(np.clip(x, 0, 1) * 255).astype(np.int16)


def test_symbols_identical_and_pixels_within_one_across_threads(coder):
    # What is exact: every symbol and σ index (so every file decodes anywhere).  What is not:
    # the float synthesis g_s, whose pixels may move by one level with the thread count.
    x = _array()
    with _threads(1):
        code1 = coder.compress(x, 4.0)
        x1, seen1 = _decode_recording(coder, code1, 4.0, (70, 90))
    with _threads(2):
        code2 = coder.compress(x, 4.0)
        x2, seen2 = _decode_recording(coder, code1, 4.0, (70, 90))
    assert np.array_equal(code1.z_symbols, code2.z_symbols) and np.array_equal(code1.y_hat, code2.y_hat)
    assert sum(int(np.abs(s.symbols).sum()) for s in code1.slices) > 0, "test needs non-zero symbols"
    for k, (s1, s2) in enumerate(zip(code1.slices, code2.slices)):
        assert np.array_equal(s1.symbols, s2.symbols) and np.array_equal(s1.indexes, s2.indexes)
        assert np.array_equal(seen1[k], s1.indexes) and np.array_equal(seen2[k], s1.indexes)
    assert np.abs(_pixels(x2) - _pixels(x1)).max() <= 1


def test_slice_means_and_scale_indexes_lie_on_the_fixed_point_grid(coder):
    from codec.fixed_point import ACT_FRAC

    code = coder.compress(_array(), 4.0)
    offset = 0
    for s in code.slices:
        channels = s.symbols.shape[1]
        mean = code.y_hat[:, offset : offset + channels] - s.symbols  # ŷ = q + μ
        offset += channels
        assert np.array_equal(mean * 2**ACT_FRAC, np.round(mean * 2**ACT_FRAC))
        assert s.indexes.min() >= 0 and s.indexes.max() < coder.config.num_scales


@pytest.mark.parametrize("size", [(1, 1), (17, 300), (64, 64), (65, 129)])
def test_any_image_size_round_trips_to_its_own_size(coder, size):
    code = coder.compress(_array(*size), 2.0)
    decoded = _decode(coder, code, 2.0, size)
    assert decoded.shape == (1, 3, *size)
    assert np.array_equal(decoded, coder.reconstruct(code.y_hat, 2.0, size))


def test_tiled_transforms_match_the_untiled_ones(coder, monkeypatch):
    import codec.coder as coder_module

    x = _array(256, 192)
    transforms = coder.transforms
    full = transforms.analyse(x)
    monkeypatch.setattr(coder_module, "TRANSFORM_TILE", 64)
    monkeypatch.setattr(coder_module, "TRANSFORM_HALO", 64)
    tiles = []
    tiled = coder_module._tiled(transforms.analyse, x, 16, lambda: tiles.append(1))
    assert len(tiles) == coder_module.tile_count(256, 192) == 12
    assert np.allclose(full, tiled, atol=1e-2)  # g_a runs in bf16 where the CPU has it
    y = np.random.default_rng(0).standard_normal((1, 16, 16, 12)).astype(np.float32)
    monkeypatch.setattr(coder_module, "TRANSFORM_TILE", 4 * 16)
    assert np.allclose(transforms.synthesise(y), coder_module._tiled(transforms.synthesise, y, 1 / 16, None),
                       atol=1e-5)


def test_gains_grow_strictly_with_quality(model):
    q = torch.linspace(1, 8, 29)
    gains = model.gain.gain(q)[:, :, 0, 0]
    assert torch.all(gains[1:] > gains[:-1])


def test_integer_layer_refuses_weights_that_could_overflow_float64():
    layer = IntConv2d(65536, 1, 3)
    with torch.no_grad():
        layer.weight.fill_(8.0)
    with pytest.raises(ValueError, match="2\\^53"):
        layer.check_exact()


def test_lambda_table_interpolates_between_levels():
    assert lambda_for_quality(1) == pytest.approx(QUALITY_LAMBDAS[0])
    assert lambda_for_quality(8) == pytest.approx(QUALITY_LAMBDAS[7])
    assert QUALITY_LAMBDAS[2] < lambda_for_quality(3.5) < QUALITY_LAMBDAS[3]
    with pytest.raises(ValueError):
        lambda_for_quality(8.5)


def test_config_validates_and_round_trips_json():
    with pytest.raises(ValueError):
        ModelConfig(M=10, slices=(4, 4))
    c = ModelConfig.tiny()
    assert ModelConfig.from_json(c.to_json()) == c


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_coding_is_bit_identical_on_cpu_and_gpu(model, coder):
    import copy

    gpu = copy.deepcopy(model).cuda().coder()
    code = coder.compress(_array(), 4.0)
    gpu_code = gpu.compress(_array(), 4.0)
    assert np.array_equal(gpu_code.z_symbols, code.z_symbols)
    for s_cpu, s_gpu in zip(code.slices, gpu_code.slices):
        assert np.array_equal(s_gpu.symbols, s_cpu.symbols) and np.array_equal(s_gpu.indexes, s_cpu.indexes)
    # A file made on the GPU decodes on the CPU: the decoder derives the encoder's σ indexes.
    x_cpu, seen = _decode_recording(coder, gpu_code, 4.0, (70, 90))
    for k, s_gpu in enumerate(gpu_code.slices):
        assert np.array_equal(seen[k], s_gpu.indexes)
    x_gpu = gpu.decompress(gpu_code.z_symbols, lambda k, i: gpu_code.slices[k].symbols, 4.0, (70, 90))
    assert np.abs(_pixels(x_gpu) - _pixels(x_cpu)).max() <= 1


def test_float_training_arithmetic_is_the_fake_quantized_one_without_rounding(model, coder):
    from codec.networks.integer import ACT_FRAC, Arithmetic

    g = torch.Generator().manual_seed(3)
    z = torch.randint(-4, 5, (1, model.config.Nz, 3, 5), generator=g).float()
    fake = model.hyper.h_s(z, Arithmetic.FAKE)
    exact = coder.entropy.features(z.numpy().astype(np.int32))
    flt = model.hyper.h_s(z, Arithmetic.FLOAT)
    assert np.allclose(fake.detach().double().numpy(), exact, atol=1e-6)  # FAKE is what the coder computes
    assert not torch.equal(flt, fake)  # FLOAT does not round ...
    assert torch.equal(fake * 2**ACT_FRAC, torch.round(fake * 2**ACT_FRAC))
    # ... and differs from it only by the rounding: a few grid steps after three layers
    assert (flt - fake).abs().max() < 8 * 2**-ACT_FRAC
    x = _image()
    out_float = model(x, 4.0, arithmetic=Arithmetic.FLOAT)
    out_fake = model(x, 4.0, arithmetic=Arithmetic.FAKE)
    assert out_float.y_likelihoods.shape == out_fake.y_likelihoods.shape
    loss = out_float.y_likelihoods.log().sum() + out_float.x_hat.sum()
    loss.backward()
    grads = [p.grad for p in model.entropy.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    model.zero_grad(set_to_none=True)
