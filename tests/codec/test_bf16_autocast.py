"""Claims about g_a's graph computing as torch's bf16 autocast does (codec/engines/bf16_autocast.py)."""

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper
from onnx.numpy_helper import to_array as onnx_numpy

from codec.engines.bf16_autocast import round_as_bf16_autocast
from codec.engines.runtime import load
from codec.weights import load_model, save_model

ort = pytest.importorskip("onnxruntime")


def _run(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _graph(nodes, initializers=()):
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 2, 4, 4]) for n in ("x", "y")]
    return helper.make_model(helper.make_graph(nodes, "g", io[:1], io[1:], list(initializers)),
                             opset_imports=[helper.make_opsetid("", 17)])


def test_an_exported_g_a_matches_torch_under_bf16_autocast(tmp_path, active_tiny_model, make_image, monkeypatch):
    from codec.engines import graph_export

    monkeypatch.setattr(graph_export, "BF16_ACTIVATIONS", True)  # the full emulation (the shipped graph rounds less)
    save_model(active_tiny_model, tmp_path)
    model = load_model(tmp_path)  # the stored weights (fp16 where the shards keep fp16), as the graph takes them
    x = make_image(64, 128, 3).transpose(2, 0, 1)[None].astype(np.float32) / 255
    y = load(tmp_path, "onnx").coder.transforms.analyse(np.ascontiguousarray(x))
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = model.g_a(torch.from_numpy(x)).float().numpy()
        fp32 = model.g_a(torch.from_numpy(x)).numpy()
    assert (y.view(np.uint32) & 0xFFFF == 0).all()  # every latent is a bf16 number
    assert np.mean(y == bf16) > 0.8 and np.mean(fp32 == bf16) < 0.5


def test_values_are_rounded_to_nearest_even_bf16_where_autocast_rounds():
    # y = (x · x) · r with r = 1 / sqrt(x · x + 1): autocast rounds x·x, r and the product.
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    nodes = [helper.make_node("Mul", ["x", "x"], ["sq"]),
             helper.make_node("Add", ["sq", "one"], ["n"]),
             helper.make_node("Sqrt", ["n"], ["s"]),
             helper.make_node("Constant", [], ["c1"], value=helper.make_tensor("c1", TensorProto.FLOAT, [], [1.0])),
             helper.make_node("Div", ["c1", "s"], ["r"]),
             helper.make_node("Mul", ["sq", "r"], ["y"])]
    with pytest.raises(ValueError, match="no rule for Add"):
        round_as_bf16_autocast(_graph(nodes, [one]))
    nodes[1] = helper.make_node("Mul", ["sq", "one"], ["n"])
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 4)).astype(np.float32)
    y = _run(round_as_bf16_autocast(_graph(nodes, [one])), x)

    def bf16(v):
        return torch.from_numpy(np.asarray(v, np.float32)).bfloat16().float().numpy()

    sq = bf16(x * x)
    assert np.array_equal(y, bf16(sq * bf16(np.float32(1) / np.sqrt(sq))))


def test_without_activations_only_the_input_and_the_weights_are_rounded():
    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 2, 1, 1], [0.1, 0.2, 0.3, 0.7])
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Mul", ["c", "c"], ["y"])]
    x = np.random.default_rng(1).standard_normal((1, 2, 4, 4)).astype(np.float32)
    y = _run(round_as_bf16_autocast(_graph(nodes, [w]), activations=False), x)

    def bf16(v):
        return torch.from_numpy(np.asarray(v, np.float32)).bfloat16().float()

    c = torch.nn.functional.conv2d(bf16(x), bf16(onnx_numpy(w)))
    assert torch.allclose(torch.from_numpy(y), c * c, rtol=1e-6) and not torch.equal(torch.from_numpy(y), bf16(c * c))


def test_a_product_with_a_tensor_of_weights_has_no_rule():
    # Under autocast bf16 · float32 tensor is float32, not bf16.
    w = helper.make_tensor("w", TensorProto.FLOAT, [1, 2, 1, 1], [2.0, 3.0])
    with pytest.raises(ValueError, match="tensor of weights"):
        round_as_bf16_autocast(_graph([helper.make_node("Mul", ["x", "w"], ["y"])], [w]))


def test_a_square_root_outside_rsqrt_has_no_rule():
    nodes = [helper.make_node("Sqrt", ["x"], ["y"])]
    with pytest.raises(ValueError, match="square root outside rsqrt"):
        round_as_bf16_autocast(_graph(nodes))
