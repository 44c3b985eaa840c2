"""Claims about the weights that ship with lic (codec/weights): they load, code exactly, and
spend more bits at higher quality.  The golden file pins the format and the entropy path: if it
still decodes (the symbol checksum passes), this machine computes the encoder's exact
probabilities.  After retraining, regenerate it with ``python tests/data/make_golden.py``.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from codec.coding import decode_rgb, encode_rgb
from codec.weights import default_weights_dir, fingerprint, load_model

DATA = Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def shipped():
    model = load_model()
    return model, fingerprint(model)


@pytest.fixture(scope="module")
def sample():
    return np.asarray(Image.open(DATA / "sample.png").convert("RGB"))


def test_shipped_weights_are_shards_under_16_mib():
    shards = sorted(default_weights_dir().glob("*.safetensors"))
    assert shards and all(p.stat().st_size < 16 * 2**20 for p in shards)


def test_shipped_model_loads_with_exact_integer_path(shipped):
    model, _ = shipped
    density = model.hyper.density
    assert (density.table_pmf > 0).all()
    for module in model.modules():
        if hasattr(module, "check_exact"):
            module.check_exact()


def test_shipped_tables_are_the_ones_the_weights_make(shipped):
    # load_model trusts the shipped tables instead of rebuilding them (start-up time).
    model, _ = shipped
    density = model.hyper.density
    pmf, offset = density.table_pmf.clone(), density.table_offset.clone()
    model.build_tables()
    assert torch.equal(density.table_pmf, pmf) and torch.equal(density.table_offset, offset)


def test_golden_file_decodes_on_this_machine(shipped):
    model, digest = shipped
    rgb, header, _ = decode_rgb(model, (DATA / "golden.lic").read_bytes(), model_hash=digest)
    reference = np.asarray(Image.open(DATA / "golden.png").convert("RGB"))
    # Symbols are exact (checksum verified); the float synthesis may differ by rounding.
    assert np.abs(rgb.astype(int) - reference.astype(int)).max() <= 1


def test_golden_file_gives_the_same_symbols_and_pixels_within_one_on_1_and_2_threads(shipped):
    model, digest = shipped
    data = (DATA / "golden.lic").read_bytes()
    before = torch.get_num_threads()
    decoded = {}
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            decoded[threads] = decode_rgb(model, data, model_hash=digest)[0].astype(int)  # checksum: symbols
    finally:
        torch.set_num_threads(before)
    assert np.abs(decoded[1] - decoded[2]).max() <= 1


def test_shipped_model_round_trips_bit_exactly(shipped, sample):
    model, digest = shipped
    data = encode_rgb(model, sample, 4.5, model_hash=digest)
    assert encode_rgb(model, sample, 4.5, model_hash=digest) == data
    decoded, header, _ = decode_rgb(model, data, model_hash=digest)
    assert (header.width, header.height) == (sample.shape[1], sample.shape[0])

    coder = model.coder()
    x = np.array(sample).transpose(2, 0, 1)[None].astype(np.float32) / np.float32(255)
    code = coder.compress(x, header.quality)
    expected = coder.reconstruct(code.y_hat, header.quality, sample.shape[:2])
    expected = np.round(expected[0].transpose(1, 2, 0) * np.float32(255)).astype(np.uint8)
    assert np.array_equal(decoded, expected)


def test_rate_falls_strictly_as_quality_falls(shipped, sample):
    model, digest = shipped
    qualities = [1, 1.5, 2, 3, 4, 4.5, 5, 6, 7, 8]
    sizes = [len(encode_rgb(model, sample, q, model_hash=digest)) for q in qualities]
    assert all(a < b for a, b in zip(sizes, sizes[1:])), dict(zip(qualities, sizes))
