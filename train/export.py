"""Export a run's checkpoint as shipped weights.

    python -m train.export RUN_DIR [--out codec/weights] [--model-id ID] [--replace]

Loads ``RUN_DIR/checkpoint.pt`` (plain state dicts, ``weights_only``), rebuilds the model from the
config stored there, and writes it with ``codec.weights.save_model``: fp16/exact safetensors shards
under 16 MiB, coding tables built, the model config plus the run's facts (steps, training time,
data) in the metadata.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from codec.networks.config import ModelConfig
from codec.weights import fingerprint, load_model, save_model

from .checkpoint import checkpoint_model, load_checkpoint

__all__ = ["export", "main"]


def export(run_dir: str | Path, out: str | Path, model_id: str | None = None,
           replace: bool = False, raw: bool = False, graphs: bool = True) -> list[Path]:
    """Write the checkpoint's model into ``out``; returns the shard paths.

    The weight average (``--ema``) is what ships when the run kept one, unless ``raw``.  ``graphs``:
    also the ONNX graphs of the float transforms (they need the onnx package; weights without them
    get them later from ``python -m codec.weights add-graphs DIR``).

    ``replace`` first removes every other model's ``*.safetensors``, ``*-kodak.json`` and ``*-gate.json`` from
    ``out`` (the package loads all shards in ``codec/weights`` as one model).
    """
    ckpt = load_checkpoint(Path(run_dir) / "checkpoint.pt")
    config = ModelConfig(**ckpt["model_config"])
    if model_id:
        config = dataclasses.replace(config, model_id=model_id)
    averaged = ckpt.get("ema") is not None and not raw
    model = checkpoint_model(ckpt, "ema" if averaged else "model", config)
    out = Path(out)
    if replace and out.is_dir():
        for old in [*out.glob("*.safetensors"), *out.glob("*.onnx"), *out.glob("*-kodak.json"),
                    *out.glob("*-gate.json")]:
            if not old.name.startswith(f"{config.model_id}-"):
                old.unlink()
    tc = ckpt["train_config"]
    metadata = {
        "steps": ckpt["step"], "total_steps": ckpt["total_steps"],
        "images_seen": ckpt["step"] * tc["batch_size"], "weights": f"ema {tc['ema']}" if averaged else "raw",
        "train_seconds": round(ckpt["train_seconds"], 1), "data": Path(tc["data"]).name,
        "batch_size": tc["batch_size"], "patch": tc["patch"], "lr": tc["lr"],
        "quality_sampling": tc["quality_sampling"], "trained_with": f"torch {ckpt.get('torch_version', '?')}",
    }
    paths = save_model(model, out, metadata, graphs=graphs)
    loaded = load_model(out if not any(p.parent != out for p in paths) else paths[0].parent)
    print(f"exported {config.model_id} step {ckpt['step']} -> {', '.join(str(p) for p in paths)} "
          f"(fingerprint {fingerprint(loaded).hex()})")
    return paths


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m train.export", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir")
    p.add_argument("--out", default=None, help="default: RUN_DIR/weights")
    p.add_argument("--model-id", default=None)
    p.add_argument("--replace", action="store_true", help="remove other models' shards from --out")
    p.add_argument("--raw", action="store_true", help="the last weights, not the run's weight average")
    a = p.parse_args(argv)
    export(a.run_dir, a.out or Path(a.run_dir) / "weights", a.model_id, a.replace, a.raw)


if __name__ == "__main__":
    main()
