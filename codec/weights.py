"""Saving, loading and fingerprinting model weights (safetensors shards, config in metadata).

Float transforms are stored in fp16 where that is harmless, but the integer entropy path is
stored exactly: its weights are snapped to the 2^-W_FRAC grid first, so the integers the coder
uses are the same on every machine that loads the file.  The fingerprint that the bitstream
header records is a hash of the loaded tensors, so a file made by other weights is refused.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .networks.config import ModelConfig
from .networks.integer import ACT_FRAC, W_FRAC, W_LIMIT, IntConv2d
from .networks.model import LicModel
from .shards import SHIPPED_WEIGHTS, read_metadata, shard_files, state_fingerprint

__all__ = ["save_model", "load_model", "load_metadata", "set_metadata", "default_weights_dir", "fingerprint",
           "snap_integer_weights"]

SHARD_BYTES = 15 * 2**20  # every file stays under 16 MiB
# Plain conv kernels of the float transforms tolerate fp16; small reparametrized tensors
# (GDN's β/γ, the factorized density, gains) keep float32.
_FP16_SUFFIXES = (".weight",)
_FP16_PREFIXES = ("g_a.", "g_s.", "hyper.h_a.")


def default_weights_dir() -> Path:
    """The directory of the weights that ship with lic."""
    return SHIPPED_WEIGHTS


@torch.no_grad()
def snap_integer_weights(model: LicModel) -> None:
    """Round every integer layer's float weights onto the grid its coder uses (idempotent)."""
    for module in model.modules():
        if isinstance(module, IntConv2d):
            module.weight.copy_(torch.round(module.weight.clamp(-W_LIMIT, W_LIMIT) * 2**W_FRAC) / 2**W_FRAC)
            module.bias.copy_(torch.round(module.bias * 2 ** (W_FRAC + ACT_FRAC)) / 2 ** (W_FRAC + ACT_FRAC))


def _storage_dtype(name: str, tensor: torch.Tensor) -> torch.dtype:
    if tensor.dtype == torch.float32 and name.endswith(_FP16_SUFFIXES) and name.startswith(_FP16_PREFIXES):
        return torch.float16
    return tensor.dtype


def save_model(model: LicModel, directory: str | Path, metadata: dict | None = None,
               graphs: bool = True) -> list[Path]:
    """Write ``model`` as ``<model_id>-NN.safetensors`` shards, with the ONNX graphs of its float
    transforms beside them (``engines/graph_export.py``, unless not ``graphs``); returns the shards' paths.

    Builds the coding tables first (on a copy), so what ships is always consistent with the
    weights.  Encode with the *loaded* model: fp16 storage changes the float weights, hence
    the fingerprint.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(model).cpu()  # snapping and table building must not touch a live model
    snap_integer_weights(model)
    model.build_tables()
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    state = {k: v.to(_storage_dtype(k, v)) for k, v in state.items()}
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name in sorted(state):
        nbytes = state[name].numel() * state[name].element_size()
        if size + nbytes > SHARD_BYTES and shards[-1]:
            shards.append({})
            size = 0
        shards[-1][name] = state[name]
        size += nbytes
    from .engines.graph_export import export_graphs

    meta = {"config": model.config.to_json(), "shards": str(len(shards))}
    if graphs:
        meta["graphs"] = json.dumps(export_graphs(model, directory), sort_keys=True)
    meta.update({k: str(v) for k, v in (metadata or {}).items()})
    stem = model.config.model_id
    for old in directory.glob(f"{stem}-*.safetensors"):
        old.unlink()
    paths = []
    for i, shard in enumerate(shards):
        path = directory / f"{stem}-{i:02d}.safetensors"
        save_file(shard, str(path), metadata=meta)
        paths.append(path)
    return paths


def load_metadata(path: str | Path | None = None) -> dict[str, str]:
    """The metadata of a model's shards (config JSON, run facts such as steps), as strings."""
    return read_metadata(Path(path) if path is not None else default_weights_dir())


def set_metadata(path: str | Path, **values) -> None:
    """Add facts measured after export (e.g. the default quality) to every shard's metadata.

    Tensors are rewritten unchanged, so the fingerprint (config and tensors) stays the same."""
    for file in shard_files(Path(path)):
        with safe_open(str(file), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta.update({k: str(v) for k, v in values.items()})
        tmp = file.with_name(file.name + ".tmp")
        save_file(tensors, str(tmp), metadata=meta)
        tmp.replace(file)


def load_model(path: str | Path | None = None, device: str | torch.device = "cpu") -> LicModel:
    """Load a model from a directory of shards (default: the weights that ship with lic)."""
    path = Path(path) if path is not None else default_weights_dir()
    files = shard_files(path)
    state, config_json = {}, None
    for file in files:
        with safe_open(str(file), framework="pt") as f:
            meta = f.metadata() or {}
            if config_json is None:
                config_json = meta.get("config")
            elif meta.get("config") != config_json:
                raise ValueError(f"{file} belongs to another model than {files[0]}")
            for key in f.keys():
                state[key] = f.get_tensor(key)
    if config_json is None:
        raise ValueError(f"{files[0]} has no model config in its metadata")
    # The shipped tables come with the weights; building them again would only cost start-up.
    model = LicModel(ModelConfig.from_json(config_json), build_tables=False)
    expected = model.state_dict()
    state = {k: v.to(expected[k].dtype) if k in expected else v for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    model.check_exact()
    return model.to(device).eval()


def add_graphs(directory: str | Path) -> None:
    """Export the ONNX graphs of the weights in ``directory`` beside them and list them in the
    shards' metadata (the tensors, hence the fingerprint, are unchanged)."""
    from .engines.graph_export import export_graphs

    graphs = export_graphs(load_model(directory), directory)
    set_metadata(directory, graphs=json.dumps(graphs, sort_keys=True))


def fingerprint(model: LicModel) -> bytes:
    """4-byte hash of the model's config and tensors (as loaded), recorded in every header
    (``codec.shards.state_fingerprint``: a torch-free runtime computes the same from the shards)."""
    return state_fingerprint(model.config.to_json(), {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()})


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3 or sys.argv[1] != "add-graphs":
        raise SystemExit("usage: python -m codec.weights add-graphs WEIGHTS_DIR")
    add_graphs(sys.argv[2])
