"""ONNX graphs of the float transforms g_a, h_a and g_s, for the torch-free runtime.

Run when weights are exported (``weights.save_model``), or on a folder of weights made without
them (``python -m codec.weights add-graphs DIR``): torch traces each transform and ONNX
records it with dynamic height and width.  g_s's transposed convolutions are recorded as their four
sub-pixel convolutions (``SubPixelDeconv``), which ONNX Runtime runs faster.  g_a's graph rounds its input and
weights to bfloat16 as torch's bf16 autocast does (``bf16_autocast.py``), so that both runtimes encode at the
rate-distortion that training tuned; h_a and g_s stay float32, as the torch runtime runs them.  The graphs keep no tensors: every initializer that is
one of the model's tensors is declared as external data, and ``onnx_transforms.py`` supplies it from
the loaded shards, so the weights exist once, in the safetensors files.  Needs torch and onnx
(the ``torch`` extra); the runtime that reads the graphs needs neither.
"""

from __future__ import annotations

import copy
import hashlib
import io
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from ..networks.model import LicModel
from .bf16_autocast import round_as_bf16_autocast
from .onnx_transforms import EXTERNAL_LOCATION, GRAPHS, graph_path

__all__ = ["export_graphs", "SubPixelDeconv", "BF16_AUTOCAST"]

OPSET = 17
BF16_AUTOCAST = ("g_a",)  # trained under bf16 autocast, and so run by the torch runtime (torch_transforms.py)
# Whether those graphs also round their activations, not only their input and weights (bf16_autocast.py).
# Both are within 0.1 % BD-rate of the torch runtime on Kodak-24; the activations' roundings cost g_a a
# sixth more time (benchmarks/results/runtime.md).
BF16_ACTIVATIONS = False


class SubPixelDeconv(nn.Module):
    """A stride-s transposed convolution as s² convolutions, one per output phase, interleaved
    (the sub-pixel view of Shi et al. 2016).  With kernel size k = 2p + 1, padding p and output
    padding s − 1, and F = W flipped into a correlation kernel:

        out[s·i + a, s·j + b] = Σ_t,u x[i + d_a + t, j + d_b + u] · F[r_a + s·t, r_b + s·u]

    with r_a = (p − a) mod s and d_a = (a − p + r_a) / s.  Each phase takes only its own taps of
    W, so the arithmetic is the transposed convolution's; ONNX Runtime's direct convolutions run
    it ~1.2× faster than its ConvTranspose (768×512, one thread, AMD Zen 4).  Holds the
    transposed convolution's own weight and bias, so a graph traced through it names them as the
    model does."""

    def __init__(self, deconv: nn.ConvTranspose2d):
        super().__init__()
        (k, k2), (s, s2), (p, _) = deconv.kernel_size, deconv.stride, deconv.padding
        if (k, s) != (k2, s2) or k != 2 * p + 1 or p < s - 1 or deconv.padding != (p, p) \
                or deconv.output_padding != (s - 1, s - 1) or deconv.groups != 1 or deconv.dilation != (1, 1):
            raise ValueError(f"no sub-pixel form for {deconv}")
        self.weight, self.bias, self.stride, self.padding = deconv.weight, deconv.bias, s, p

    def _taps(self, a: int) -> tuple[int, int, int]:
        """Phase a's first tap r_a in F, and its padding before and after."""
        s, p = self.stride, self.padding
        r = (p - a) % s
        count = len(range(r, 2 * p + 1, s))
        d = (a - p + r) // s
        return r, -d, d + count - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride
        flipped = self.weight.flip(2, 3).transpose(0, 1)  # (out, in, k, k)
        phases = []
        for a in range(s):
            r_a, top, bottom = self._taps(a)
            for b in range(s):
                r_b, left, right = self._taps(b)
                phases.append(_PaddedConv.apply(x, flipped[:, :, r_a::s, r_b::s], self.bias, (top, left, bottom, right)))
        return _DepthToSpace.apply(torch.cat(phases, 1), s)  # channel (a·s + b)·C + c


class _PaddedConv(torch.autograd.Function):
    """conv2d with its own (top, left, bottom, right) zero padding: one ONNX Conv, where a separate
    Pad would take ONNX Runtime's blocked-layout convolutions back to plain NCHW."""

    @staticmethod
    def forward(ctx, x, weight, bias, pads):
        top, left, bottom, right = pads
        return nn.functional.conv2d(nn.functional.pad(x, (left, right, top, bottom)), weight, bias)

    @staticmethod
    def symbolic(g, x, weight, bias, pads):
        return g.op("Conv", x, weight, bias, pads_i=list(pads))


class _DepthToSpace(torch.autograd.Function):
    """out[c, s·i + a, s·j + b] = x[(a·s + b)·C + c, i, j]: ONNX's DepthToSpace in DCR order."""

    @staticmethod
    def forward(ctx, x, s):
        n, channels, h, w = x.shape
        c = channels // (s * s)
        return x.view(n, s, s, c, h, w).permute(0, 3, 4, 1, 5, 2).reshape(n, c, h * s, w * s)

    @staticmethod
    def symbolic(g, x, s):
        return g.op("DepthToSpace", x, blocksize_i=s, mode_s="DCR")


def _sub_pixel(network: nn.Sequential) -> nn.Sequential:
    """``network`` with its transposed convolutions of 16 or more outputs in sub-pixel form, sharing
    their tensors.  (A few outputs leave ONNX Runtime's blocks of 16 channels mostly empty: those
    stay transposed convolutions.)"""
    return nn.Sequential(*(SubPixelDeconv(m) if isinstance(m, nn.ConvTranspose2d) and m.out_channels >= 16 else m
                           for m in network))


class _Transform(nn.Module):
    """One transform of ``model`` under its own name, so the graph's initializers carry the
    state-dict names of the model (``g_a.0.weight``, ``hyper.h_a.0.weight``, ...)."""

    def __init__(self, model: LicModel, name: str):
        super().__init__()
        self.model = model
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return {"g_a": self.model.g_a, "h_a": self.model.hyper.h_a, "g_s": self.model.g_s}[self.name](x)


def _graph(model: LicModel, name: str) -> tuple[bytes, list[str]]:
    """The graph of transform ``name`` and the names of the model's tensors it takes."""
    import onnx
    from onnx import TensorProto

    channels = {"g_a": 3, "h_a": model.config.M, "g_s": model.config.M}[name]
    example = torch.zeros(1, channels, 8, 8)
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated, and 20× faster here
        warnings.simplefilter("ignore")
        torch.onnx.export(_Transform(model, name), (example,), buffer, dynamo=False, opset_version=OPSET,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": {2: "h", 3: "w"}},
                          do_constant_folding=False)
    graph = onnx.load_from_string(buffer.getvalue())
    state = model.state_dict()
    external = []
    for init in graph.graph.initializer:
        init.name = init.name.removeprefix("model.")
        if init.name not in state:
            continue  # a constant of the trace, not a tensor of the model: it stays in the graph
        external.append(init.name)
        init.ClearField("raw_data")
        init.data_location = TensorProto.EXTERNAL
        for key, value in (("location", EXTERNAL_LOCATION), ("offset", "0"), ("length", "0")):
            entry = init.external_data.add()
            entry.key, entry.value = key, value
    for node in graph.graph.node:  # the trace's own names for the model's tensors, as initializers'
        node.input[:] = [n.removeprefix("model.") for n in node.input]
        node.output[:] = [n.removeprefix("model.") for n in node.output]
    if name in BF16_AUTOCAST:
        round_as_bf16_autocast(graph, activations=BF16_ACTIVATIONS)
    graph.producer_name = "lic"
    return graph.SerializeToString(), external


@torch.no_grad()
def export_graphs(model: LicModel, directory: str | Path) -> dict[str, dict]:
    """Write ``<model id>-{g_a,h_a,g_s}.onnx`` into ``directory``; returns, per file name, its
    SHA-256 and the tensors it takes (``onnx_transforms.OnnxTransforms`` reads both)."""
    model = copy.deepcopy(model).float().cpu().eval()
    model.g_s = _sub_pixel(model.g_s)  # on the copy: the same tensors, the form ONNX Runtime runs fastest
    digests = {}
    for name in GRAPHS:
        data, tensors = _graph(model, name)
        path = graph_path(Path(directory), model.config.model_id, name)
        path.write_bytes(data)
        digests[path.name] = {"sha256": hashlib.sha256(data).hexdigest(), "tensors": tensors}
    return digests
