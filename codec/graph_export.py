"""ONNX graphs of the float transforms g_a, h_a and g_s, for the torch-free runtime.

Run when weights are exported (``weights.save_model``), or on a folder of weights made without
them (``python -m codec.graph_export DIR``): torch traces each transform and ONNX
records it with dynamic height and width.  The graphs keep no tensors: every initializer that is
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

from .model import LicModel
from .onnx_transforms import EXTERNAL_LOCATION, GRAPHS, graph_path

__all__ = ["export_graphs", "add_graphs"]

OPSET = 17


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
    graph.producer_name = "lic"
    return graph.SerializeToString(), external


@torch.no_grad()
def export_graphs(model: LicModel, directory: str | Path) -> dict[str, dict]:
    """Write ``<model id>-{g_a,h_a,g_s}.onnx`` into ``directory``; returns, per file name, its
    SHA-256 and the tensors it takes (``onnx_transforms.OnnxTransforms`` reads both)."""
    model = copy.deepcopy(model).float().cpu().eval()
    digests = {}
    for name in GRAPHS:
        data, tensors = _graph(model, name)
        path = graph_path(Path(directory), model.config.model_id, name)
        path.write_bytes(data)
        digests[path.name] = {"sha256": hashlib.sha256(data).hexdigest(), "tensors": tensors}
    return digests


def add_graphs(directory: str | Path) -> None:
    """Export the graphs of the weights in ``directory`` beside them and list them in the shards'
    metadata (the tensors, hence the fingerprint, are unchanged)."""
    import json

    from .weights import load_model, set_metadata

    graphs = export_graphs(load_model(directory), directory)
    set_metadata(directory, graphs=json.dumps(graphs, sort_keys=True))


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m codec.graph_export WEIGHTS_DIR")
    add_graphs(sys.argv[1])
