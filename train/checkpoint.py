"""Checkpoints: plain data only (state dicts, numbers, strings, tensors), written atomically.

They load with ``torch.load(weights_only=True)`` on another machine, Python or torch: no pickled
classes of ours.  Every RNG a run draws from is saved, so a resumed run continues bit for bit.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_model", "rng_state", "set_rng_state"]


def rng_state(gen: torch.Generator, device: torch.device) -> dict:
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "data": gen.get_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }


def set_rng_state(state: dict, gen: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)
    gen.set_state(state["data"].cpu())
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    random.setstate((state["python"][0], tuple(state["python"][1]), state["python"][2]))


def save_checkpoint(path: Path, **payload) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)  # atomic: a crash leaves the old checkpoint or the new one


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """The checkpoint as plain data (``weights_only``: no code of ours or anyone's runs)."""
    # TorchVersion: early checkpoints stored torch.__version__ itself rather than its str().
    with torch.serialization.safe_globals([torch.torch_version.TorchVersion]):
        return torch.load(path, map_location=map_location, weights_only=True)


def checkpoint_model(ckpt: dict, key: str = "model", config=None, build_tables: bool = True):
    """The LicModel holding ``ckpt[key]`` ("model": the last iterate, "ema": the weight average),
    built from the checkpoint's own ``model_config`` unless ``config`` is given."""
    from codec.networks.config import ModelConfig
    from codec.networks.model import LicModel

    model = LicModel(config or ModelConfig(**ckpt["model_config"]), build_tables=build_tables)
    model.load_state_dict(ckpt[key])
    return model
