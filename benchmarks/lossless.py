"""Lossless and near-lossless: lic at K = 0, 1, 2, 4 against JPEG-LS (NEAR = K), JPEG XL lossless,
JPEG 2000 reversible and PNG (all from imagecodecs: CharLS, libjxl effort 7, OpenJPEG, zlib 9).

    python -m benchmarks.lossless [--sets medical,kodak] [--limit N] [--out benchmarks/results]

Bits per pixel are whole files over width x height (all channels); times are one encode and one
decode per image (lic: ``codec.compress_exact`` / ``decompress_exact``, one thread: the residual
layer is numpy and constriction).  Every lic file is decoded and checked: each sample within K of the original.
Writes ``lossless.json`` (per image) and ``lossless.md`` (means per set) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SETS = {"medical": ROOT / ".." / "shared" / "data" / "medical", "kodak": ROOT / ".." / "shared" / "data" / "kodak"}
ERRORS = (0, 1, 2, 4)


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def anchors(pixels: np.ndarray) -> dict[str, tuple[int, float, float]]:
    """{codec: (bytes, encode s, decode s)} for the classical codecs; each decode is checked."""
    import imagecodecs as ic

    results = {}
    codecs = {f"jpegls-{k}": (lambda a, k=k: ic.jpegls_encode(a, level=k), ic.jpegls_decode, k) for k in ERRORS}
    codecs["jpegxl"] = (lambda a: ic.jpegxl_encode(a, lossless=True, effort=7), ic.jpegxl_decode, 0)
    codecs["jpeg2000"] = (lambda a: ic.jpeg2k_encode(a, level=0, reversible=True), ic.jpeg2k_decode, 0)
    codecs["png"] = (lambda a: ic.png_encode(a, level=9), ic.png_decode, 0)
    for name, (enc, dec, k) in codecs.items():
        data, t_enc = _timed(enc, pixels)
        back, t_dec = _timed(dec, data)
        error = np.abs(np.asarray(back).astype(np.int64).reshape(pixels.shape) - pixels.astype(np.int64)).max()
        if error > k:
            raise RuntimeError(f"{name}: error {error} > {k}")
        results[name] = (len(data), t_enc, t_dec)
    return results


def lic(image: Image.Image, pixels: np.ndarray) -> dict[str, tuple[int, float, float]]:
    import codec

    results = {}
    for k in ERRORS:
        data, t_enc = _timed(codec.compress_exact, image, k)
        out, t_dec = _timed(codec.decompress_exact, data)
        error = np.abs(np.asarray(out).astype(np.int64) - pixels.astype(np.int64)).max()
        if error > k:
            raise RuntimeError(f"lic: error {error} > {k}")
        results[f"lic-{k}"] = (len(data), t_enc, t_dec)
    return results


def table(rows: list[dict]) -> str:
    names = [f"lic-{k}" for k in ERRORS] + [f"jpegls-{k}" for k in ERRORS] + ["jpegxl", "jpeg2000", "png"]
    lines = ["| set | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    times = ["| set (enc / dec s, mean) | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for name in sorted({r["set"] for r in rows}):
        sub = [r for r in rows if r["set"] == name]
        bpp = [np.mean([r["codecs"][c][0] * 8 / r["pixels"] for r in sub]) for c in names]
        lines.append(f"| {name} ({len(sub)}) | " + " | ".join(f"{b:.3f}" for b in bpp) + " |")
        t = [(np.mean([r["codecs"][c][1] for r in sub]), np.mean([r["codecs"][c][2] for r in sub])) for c in names]
        times.append(f"| {name} | " + " | ".join(f"{e:.2f} / {d:.2f}" for e, d in t) + " |")
    return "bits per pixel (mean over images, all channels):\n\n" + "\n".join(lines) + \
        "\n\ntimes:\n\n" + "\n".join(times) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.lossless", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", default="medical,kodak")
    p.add_argument("--limit", type=int, default=None, help="first N images of each set")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args(argv)
    rows = []
    for set_name in args.sets.split(","):
        files = sorted(SETS[set_name].glob("*.png"))[:args.limit]
        for path in files:
            image = Image.open(path)
            image.load()
            pixels = np.asarray(image)
            row = {"set": set_name, "image": path.name, "pixels": pixels.shape[0] * pixels.shape[1],
                   "codecs": {**lic(image, pixels), **anchors(pixels)}}
            rows.append(row)
            print(path.name, " ".join(f"{c}={v[0] * 8 / row['pixels']:.3f}" for c, v in row["codecs"].items()),
                  flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in (("lossless.json", json.dumps(rows, indent=1)), ("lossless.md", table(rows))):
        tmp = args.out / (name + ".tmp")
        tmp.write_text(text)
        tmp.replace(args.out / name)
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
