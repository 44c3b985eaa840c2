"""A model's safetensors shards read without torch: metadata, tensors and fingerprint.

A safetensors file starts with an 8-byte little-endian header length and a JSON header whose
``__metadata__`` holds string pairs; ``save_model`` puts the model config and the run's facts
there, and the campaign adds what it measured on the exported model (``default_quality``).
Reading it costs a few hundred bytes and no torch, so ``codec.quality`` knows the shipped model's
default quality without loading the model.  ``read_state`` loads the tensors as numpy arrays in
the dtypes the model holds them (weights stored in fp16 come back as float32, exactly), and
``state_fingerprint`` hashes them: the same 4 bytes whichever runtime loaded them.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np

__all__ = ["SHIPPED_WEIGHTS", "read_metadata", "read_state", "shard_files", "state_fingerprint"]

SHIPPED_WEIGHTS = Path(__file__).parent / "weights"  # the shards that ship with lic

_MAX_HEADER = 100 * 2**20  # the format's own limit on the JSON header


def shard_files(path: Path) -> list[Path]:
    """The shards of the model in ``path`` (a directory of them, or one file)."""
    files = sorted(path.glob("*.safetensors")) if path.is_dir() else [path]
    if not files or not files[0].exists():
        raise FileNotFoundError(f"no .safetensors weights in {path}")
    return files


def read_metadata(path: Path) -> dict[str, str]:
    """``__metadata__`` of the first shard in ``path``; ``ValueError`` if it is not safetensors."""
    with open(shard_files(Path(path))[0], "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{path}: not a safetensors file")
        (size,) = struct.unpack("<Q", head)
        if size > _MAX_HEADER:
            raise ValueError(f"{path}: not a safetensors file")
        try:
            header = json.loads(f.read(size))
        except ValueError:
            raise ValueError(f"{path}: not a safetensors file") from None
    return dict(header.get("__metadata__") or {})


def read_state(path: Path) -> tuple[str, dict[str, np.ndarray]]:
    """(config JSON, every tensor as a numpy array) of the model in ``path``; ``ValueError`` for
    shards of different models or without a config.  fp16 storage is widened to float32, the dtype
    the model computes in."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    files = shard_files(Path(path))
    config, state = None, {}
    for file in files:
        meta = read_metadata(file)
        if config is None:
            config = meta.get("config")
        elif meta.get("config") != config:
            raise ValueError(f"{file} belongs to another model than {files[0]}")
        try:
            tensors = load_file(str(file))
        except (SafetensorError, OSError) as error:
            raise ValueError(f"{file}: damaged weights ({error})") from None
        state.update({k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in tensors.items()})
    if config is None:
        raise ValueError(f"{files[0]} has no model config in its metadata")
    return config, state


def state_fingerprint(config_json: str, state: dict[str, np.ndarray]) -> bytes:
    """4-byte hash of a model's config and tensors (as loaded), recorded in every header."""
    h = hashlib.sha256(config_json.encode())
    for name in sorted(state):
        h.update(name.encode())
        h.update(np.ascontiguousarray(state[name]).reshape(-1).view(np.uint8))  # the bytes, without a copy
    return h.digest()[:4]
