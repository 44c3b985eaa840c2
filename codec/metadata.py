"""The metadata of a model's safetensors shards, read without torch.

A safetensors file starts with an 8-byte little-endian header length and a JSON header whose
``__metadata__`` holds string pairs; ``save_model`` puts the model config and the run's facts
there, and the campaign adds what it measured on the exported model (``default_quality``).
Reading it costs a few hundred bytes and no torch, so ``codec.quality`` knows the shipped model's
default quality without loading the model.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

__all__ = ["SHIPPED_WEIGHTS", "read_metadata", "shard_files"]

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
