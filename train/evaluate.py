"""Real-coding evaluation: encode and decode every image at every quality, as shipped.

    python -m train.evaluate --weights DIR [--images ../shared/data/kodak] [--qualities 1..8] [--out JSON]

bpp is 8·len(file)/(H·W) of the complete ``.lic`` file (header included) from
``codec.coding.encode_rgb``; PSNR is on the 8-bit RGB that ``decode_rgb`` returns.  The JSON follows
CompressAI's results format: ``{"name", "description", "results": {"bpp": [...], "psnr-rgb": [...],
...}}``, each list one value per quality (mean over images).  Default output: next to the weights,
``<model_id>-<images folder>.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from codec.metrics import psnr as psnr_of
from codec.weights import fingerprint, load_model

__all__ = ["evaluate_weights", "parse_qualities", "main"]

_SUFFIXES = (".png", ".jpg", ".jpeg", ".ppm", ".bmp")


def parse_qualities(text: str) -> list[float]:
    """"1..8" -> [1, ..., 8]; "1,3,5.5" -> [1, 3, 5.5]."""
    if ".." in text:
        lo, hi = text.split("..")
        return [float(q) for q in range(int(lo), int(hi) + 1)]
    return [float(q) for q in text.split(",")]


def evaluate_weights(weights: str | Path, images: str | Path | list, qualities=tuple(range(1, 9)),
                     out: str | Path | None = None, limit: int = 0, device: str = "cpu") -> dict:
    from PIL import Image

    from codec.coding import decode_rgb, encode_rgb

    model = load_model(weights, device=device)
    digest = fingerprint(model)  # once: hashing every tensor per call would pollute the timings
    if isinstance(images, (list, tuple)):  # a list of files (the gate's set)
        files = [Path(p) for p in images]
        images = Path(files[0]).parent if files else Path(".")
    else:
        files = sorted(p for p in Path(images).iterdir() if p.suffix.lower() in _SUFFIXES)
    if limit:
        files = files[:limit]
    if not files:
        raise FileNotFoundError(f"no images in {images}")
    rows = {k: [] for k in ("quality", "bpp", "psnr-rgb", "encoding_time", "decoding_time")}
    for q in qualities:
        bpp, psnr, enc, dec = [], [], [], []
        for path in files:
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB"))
            t0 = time.perf_counter()
            data = encode_rgb(model, rgb, q, model_hash=digest)
            t1 = time.perf_counter()
            out_rgb, _, _ = decode_rgb(model, data, model_hash=digest)
            t2 = time.perf_counter()
            bpp.append(8 * len(data) / (rgb.shape[0] * rgb.shape[1]))
            psnr.append(psnr_of(out_rgb, rgb))
            enc.append(t1 - t0)
            dec.append(t2 - t1)
        for k, v in zip(rows, (q, np.mean(bpp), np.mean(psnr), np.mean(enc), np.mean(dec))):
            rows[k].append(round(float(v), 6))
        print(f"q {q:g}: {rows['bpp'][-1]:.4f} bpp, {rows['psnr-rgb'][-1]:.3f} dB "
              f"(enc {rows['encoding_time'][-1]:.2f} s, dec {rows['decoding_time'][-1]:.2f} s)", flush=True)
    result = {
        "name": model.config.model_id,
        "description": f"lic {model.config.model_id}: real encode/decode of {len(files)} images of "
                       f"{Path(images).name}, {device}, torch {torch.__version__}; bpp from file size",
        "results": rows,
    }
    if out is None:
        out = Path(weights) / f"{model.config.model_id}-{Path(images).name}.json"
    Path(out).write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m train.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", required=True)
    p.add_argument("--images", default=str(Path(__file__).resolve().parents[2] / "shared/data/kodak"))
    p.add_argument("--qualities", default="1..8")
    p.add_argument("--out", default=None)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    evaluate_weights(a.weights, a.images, parse_qualities(a.qualities), a.out, a.limit, a.device)


if __name__ == "__main__":
    main()
