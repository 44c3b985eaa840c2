"""Which engine runs the float transforms: ONNX Runtime (no torch) or torch.

    onnx   g_a, h_a, g_s as ONNX graphs on ONNX Runtime; torch is never imported
    torch  the training model's networks on torch, on a CPU or a CUDA device; needed for
           ``--effort`` > 0 (latent refinement descends through g_s) and for training
    auto   onnx where onnxruntime is installed and the weights carry graphs, else torch

Either way the exact entropy path is ``codec/exact_entropy.py`` and the coding face ``coder.Coder``, so
a file made by one runtime decodes on the other to the same symbols; their pixels differ by at
most one level (float32 engines round differently).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import NamedTuple

from bitstream import InputError

from ..coder import Coder
from ..networks.config import ModelConfig
from ..shards import SHIPPED_WEIGHTS, read_metadata, read_state, state_fingerprint

__all__ = ["RUNTIMES", "LoadedModel", "load", "resolve_runtime", "TORCH_MISSING"]

RUNTIMES = ("auto", "onnx", "torch")
TORCH_MISSING = ("the torch runtime (effort above 0, CUDA devices) needs torch, which this install lacks: "
                 "pip install 'lic-codec[torch]'")


class LoadedModel(NamedTuple):
    coder: Coder  # the coding face
    model_hash: bytes  # the fingerprint every header records
    runtime: str  # "onnx" or "torch"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # an import hook that refuses it, a None in sys.modules
        return False


def resolve_runtime(runtime: str, weights: Path | None = None) -> str:
    """"onnx" or "torch" for a requested ``runtime``; ``InputError`` for one that cannot run here."""
    if runtime not in RUNTIMES:
        raise InputError(f"unknown runtime {runtime!r} (use {', '.join(RUNTIMES)})")
    if runtime == "auto":
        has_graphs = "graphs" in read_metadata(weights or SHIPPED_WEIGHTS)
        runtime = "onnx" if has_graphs and _installed("onnxruntime") else "torch"
    if runtime == "torch" and not _installed("torch"):
        raise InputError(TORCH_MISSING)
    if runtime == "onnx" and not _installed("onnxruntime"):
        raise InputError("the onnx runtime needs onnxruntime: pip install onnxruntime")
    return runtime


def load(weights: Path | None = None, runtime: str = "auto", device: str = "cpu",
         threads: int | None = None) -> LoadedModel:
    """The model in ``weights`` (None: the shipped one) on ``runtime``; ``device`` is torch's."""
    runtime = resolve_runtime(runtime, weights)
    directory = Path(weights) if weights is not None else SHIPPED_WEIGHTS
    if runtime == "torch":
        from ..weights import fingerprint, load_model

        model = load_model(directory, device=device)
        return LoadedModel(model.coder(), fingerprint(model), runtime)
    from .onnx_transforms import OnnxTransforms

    if device != "cpu":
        raise InputError(f"device {device!r} needs the torch runtime")
    config_json, state = read_state(directory)
    config = ModelConfig.from_json(config_json)
    transforms = OnnxTransforms(directory, config.model_id, read_metadata(directory), state, threads)
    return LoadedModel(Coder(config, state, transforms), state_fingerprint(config.to_json(), state), runtime)
