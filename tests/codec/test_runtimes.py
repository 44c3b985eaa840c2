"""Claims about the two runtimes (codec/engines/runtime.py): ONNX Runtime without torch, and torch.

Files are the same either way: the exact entropy path is one implementation, so a file made by
one runtime decodes on the other to the same symbols (the symbol checksum proves it), and the float
engines' pixels agree within one level.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from codec.coding import decode_rgb, encode_rgb
from codec.engines.onnx_transforms import GRAPHS, graph_path
from codec.engines.runtime import load
from codec.shards import read_metadata
from codec.weights import default_weights_dir, load_model, save_model

DATA = Path(__file__).parents[1] / "data"
REPO = Path(__file__).parents[2]

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def runtimes():
    return {name: load(runtime=name) for name in ("onnx", "torch")}


@pytest.fixture(scope="module")
def sample():
    return np.asarray(Image.open(DATA / "sample.png").convert("RGB"))


def test_both_runtimes_hold_the_same_weights(runtimes):
    assert runtimes["onnx"].model_hash == runtimes["torch"].model_hash
    assert {r.runtime for r in runtimes.values()} == {"onnx", "torch"}


def test_the_golden_file_decodes_alike_on_both(runtimes):
    data = (DATA / "golden.lic").read_bytes()
    pixels = [decode_rgb(r.coder, data, model_hash=r.model_hash)[0].astype(int) for r in runtimes.values()]
    assert np.abs(pixels[0] - pixels[1]).max() <= 1


@pytest.mark.parametrize("maker", ["onnx", "torch"])
def test_a_file_from_either_runtime_decodes_on_the_other(runtimes, sample, maker):
    other = "torch" if maker == "onnx" else "onnx"
    a, b = runtimes[maker], runtimes[other]
    data = encode_rgb(a.coder, sample, 3.0, model_hash=a.model_hash)
    mine = decode_rgb(a.coder, data, model_hash=a.model_hash)[0].astype(int)
    theirs = decode_rgb(b.coder, data, model_hash=b.model_hash)[0].astype(int)  # checksum: symbols
    assert np.abs(mine - theirs).max() <= 1


def test_the_shipped_graphs_compute_the_shipped_weights_transforms(runtimes, sample):
    """h_a and g_s in float32; g_a on the image and weights rounded to bf16 as torch's bf16 autocast rounds them,
    which training used (bf16_autocast.py, graph_export.BF16_ACTIVATIONS)."""
    model = load_model()
    onnx = runtimes["onnx"].coder.transforms
    rng = np.random.default_rng(0)
    x = np.ascontiguousarray(sample[None].transpose(0, 3, 1, 2), dtype=np.float32) / 255
    y = rng.standard_normal((1, model.config.M, 4, 8)).astype(np.float32)
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16_y = model.g_a(torch.from_numpy(x)).float().numpy()
        fp32_y = model.g_a(torch.from_numpy(x)).numpy()
        ref_z = model.hyper.h_a(torch.from_numpy(y)).numpy()
        ref_x = model.g_s(torch.from_numpy(y)).numpy()
    onnx_y = onnx.analyse(x)
    # The activations stay float32, so few latents are torch's bf16 ones to the bit, but the rounded input and
    # weights take them about halfway from float32's towards them (0.51 of float32's RMS distance on this
    # sample, 0.56 on Kodak: benchmarks/results/runtime.md); a float32 graph stays at float32's distance.
    assert np.sqrt(np.mean((onnx_y - bf16_y) ** 2)) < 0.7 * np.sqrt(np.mean((fp32_y - bf16_y) ** 2))
    assert np.abs(onnx.hyper_analyse(y) - ref_z).max() < 1e-3 * np.abs(ref_z).max()
    assert np.abs(onnx.synthesise(y) - ref_x).max() < 1e-3


def test_the_shipped_weights_list_every_graph_with_its_digest():
    listed = json.loads(read_metadata(default_weights_dir())["graphs"])
    names = {graph_path(default_weights_dir(), "lic-medium", g).name for g in GRAPHS}
    assert set(listed) == names and all(len(v["sha256"]) == 64 and v["tensors"] for v in listed.values())


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory, active_tiny_model):
    path = tmp_path_factory.mktemp("tiny")
    save_model(active_tiny_model, path)
    return path


def test_export_writes_graphs_that_the_onnx_runtime_runs(tiny_weights, sample):
    onnx, torch_rt = load(tiny_weights, "onnx"), load(tiny_weights, "torch")
    data = encode_rgb(onnx.coder, sample, 5.0, model_hash=onnx.model_hash)
    a = decode_rgb(onnx.coder, data, model_hash=onnx.model_hash)[0].astype(int)
    b = decode_rgb(torch_rt.coder, data, model_hash=torch_rt.model_hash)[0].astype(int)
    assert np.abs(a - b).max() <= 1


def test_onnx_sessions_run_without_a_memory_pattern_or_spinning_workers(tiny_weights):
    """A memory pattern makes the second run at a new image size pay again; spinning workers burn CPU
    (benchmarks/results/runtime.md)."""
    options = load(tiny_weights, "onnx").coder.transforms._session("g_s")[0].get_session_options()
    assert options.enable_mem_pattern is False
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"

@pytest.mark.parametrize("kernel,stride", [(5, 2), (3, 2), (7, 2), (9, 4), (5, 3)])
def test_the_sub_pixel_form_of_a_transposed_convolution_computes_the_same(kernel, stride):
    from codec.engines.graph_export import SubPixelDeconv

    torch.manual_seed(kernel * stride)
    deconv = torch.nn.ConvTranspose2d(6, 5, kernel, stride=stride, padding=kernel // 2, output_padding=stride - 1)
    x = torch.randn(2, 6, 7, 4)
    with torch.no_grad():
        assert torch.allclose(SubPixelDeconv(deconv)(x), deconv(x), atol=1e-5)
    with pytest.raises(ValueError, match="no sub-pixel form"):
        SubPixelDeconv(torch.nn.ConvTranspose2d(6, 5, kernel, stride=stride, padding=kernel // 2))


@pytest.mark.parametrize("damage", ["flip", "missing", "swap"])
def test_a_damaged_or_foreign_graph_is_one_line_naming_it(tiny_weights, tmp_path, damage):
    import shutil

    weights = tmp_path / "w"
    shutil.copytree(tiny_weights, weights)
    g_s, g_a = weights / "lic-tiny-g_s.onnx", weights / "lic-tiny-g_a.onnx"
    if damage == "flip":
        data = bytearray(g_s.read_bytes())
        data[len(data) // 2] ^= 0x40
        g_s.write_bytes(bytes(data))
    elif damage == "missing":
        g_s.unlink()
    else:
        g_s.write_bytes(g_a.read_bytes())
    with pytest.raises(ValueError) as info:
        load(weights, "onnx")
    message = str(info.value)
    assert "lic-tiny-g_s.onnx" in message and "\n" not in message


_CODING = """
import io, sys
import numpy as np
from PIL import Image
import codec
rgb = (np.arange(48 * 80 * 3) % 251).astype(np.uint8).reshape(48, 80, 3)
data = codec.compress(Image.fromarray(rgb), quality=3)
back = codec.decompress(data)
assert back.size == (80, 48)
exact = codec.compress(Image.fromarray(rgb), max_error=0)
assert np.array_equal(np.asarray(codec.decompress(exact)), rgb)
opened = Image.open(io.BytesIO(data)); opened.load()
try:
    codec.compress(Image.fromarray(rgb), effort=1)
    raise SystemExit("effort 1 ran without torch")
except codec.InputError as e:
    assert "torch" in str(e), e
print("torch" in sys.modules, codec.default_codec().runtime)
"""


def test_coding_never_imports_torch_on_the_onnx_runtime(without_torch):
    out = subprocess.run([sys.executable, "-c", without_torch + _CODING], capture_output=True, text=True, cwd=REPO,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "onnx"]


def test_large_onnx_runs_go_to_a_session_without_an_arena_and_compute_the_same(tiny_weights):
    """ONNX Runtime's arena fragments across a large image's tiles and keeps buffers resident under the
    entropy path's peak (benchmarks/results/runtime.md): runs above ARENA_UP_TO_PIXELS image pixels
    go to a session without one; small runs keep theirs.  The allocator changes no number."""
    from codec.engines.onnx_transforms import ARENA_UP_TO_PIXELS

    transforms = load(tiny_weights, "onnx").coder.transforms
    channels = transforms._session("g_s")[0].get_inputs()[0].shape[1]
    side = int((ARENA_UP_TO_PIXELS / 256) ** 0.5)  # y's pixels are 16 × 16 image pixels
    rng = np.random.default_rng(0)
    small = rng.standard_normal((1, channels, side // 2, side)).astype(np.float32)
    transforms.synthesise(small)
    assert set(transforms._sessions) == {("g_s", True)}
    large = rng.standard_normal((1, channels, side + 1, side)).astype(np.float32)
    out = transforms.synthesise(large)
    assert set(transforms._sessions) == {("g_s", True), ("g_s", False)}
    for arena in (True, False):
        session, input_name, _ = transforms._sessions["g_s", arena]
        assert session.get_session_options().enable_cpu_mem_arena is arena
    session, input_name, _ = transforms._sessions["g_s", True]
    assert np.array_equal(out, session.run(None, {input_name: large})[0])
