"""Lossless and near-lossless: lic at K = 0, 1, 2, 4 against JPEG-LS (NEAR = K), JPEG XL lossless,
JPEG 2000 reversible and PNG (all from imagecodecs: CharLS, libjxl effort 7, OpenJPEG, zlib 9).

    python -m benchmarks.lossless [--sets medical,kodak] [--limit N] [--out benchmarks/results]
    python -m benchmarks.lossless --lossy-layer 1 [--sets kodak] [--limit N]

``--lossy-layer Q`` measures instead what a lossy layer under the residual layer (Bai et al. 2021)
would save: for each 8-bit image and K, the residual stream with the shipped model's reconstruction
at quality Q as one more predictor (``encode_residual(..., hint=)``), plus the lossy file that sends
it, against the residual stream alone.  Writes ``lossy_layer.md``.

Bits per pixel are whole files over width x height (all channels); times are one encode and one
decode per image (lic: ``codec.compress_exact`` / ``decompress_exact``, one thread: the residual
layer's compiled loop, ``codec/lossless/exact2.c``).  Every lic file is decoded and checked: each sample within K of the original.
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
# The residual coders measured besides the default (lossless only), by their column: lic-exact-4 and -5
# are API-selectable (codec.lossless.near_lossless.encode_exact(..., coder=)).
OTHER_CODERS = {"lic4-0": "lic-exact-4", "lic5-0": "lic-exact-5"}


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
    # The coders that are not the default, lossless only.
    from codec.images import to_exact
    from codec.lossless.near_lossless import encode_exact

    for name, coder in OTHER_CODERS.items():
        data, t_enc = _timed(encode_exact, to_exact(image), 0, coder=coder)
        out, t_dec = _timed(codec.decompress_exact, data)
        if np.any(np.asarray(out).astype(np.int64).reshape(pixels.shape) != pixels):
            raise RuntimeError(f"{coder}: not lossless")
        results[name] = (len(data), t_enc, t_dec)
    return results


def lossy_layer(sets: list[str], limit: int | None, quality: float) -> str:
    """Mean bpp over each set's 8-bit images: residual alone, residual with x̂, lossy file, total."""
    import codec
    from codec.images import to_exact
    from codec.lossless.residual import encode_residual

    model = codec.Codec(device="cpu")
    lines = [f"lossy layer at quality {quality:g} (shipped model), mean bits per pixel:", "",
             "| set | K | residual alone | residual given x̂ | lossy layer | total with the lossy layer |",
             "|---|---|---|---|---|---|"]
    for set_name in sets:
        cells = {k: [] for k in ERRORS}
        for path in sorted(SETS[set_name].glob("*.png"))[:limit]:
            exact = to_exact(str(path))
            if exact.bits != 8:
                continue
            lossy = model.compress(str(path), quality)
            hint = np.asarray(codec.decompress(lossy)).astype(np.int64)
            hint = hint[..., None] if hint.ndim == 2 else hint[..., :exact.samples.shape[2]]
            samples = np.moveaxis(exact.samples, -1, 0)
            pixels = samples.shape[1] * samples.shape[2]
            for k in ERRORS:
                alone, _ = encode_residual(samples, 255, k)
                given, _ = encode_residual(samples, 255, k, hint=np.moveaxis(hint, -1, 0))
                cells[k].append((len(alone) * 8 / pixels, len(given) * 8 / pixels, len(lossy) * 8 / pixels))
            print(path.name, cells[0][-1], cells[ERRORS[-1]][-1], flush=True)
        for k in ERRORS:
            a, g, lossy_bpp = np.mean(cells[k], axis=0)
            lines.append(f"| {set_name} ({len(cells[k])}) | {k} | {a:.3f} | {g:.3f} | {lossy_bpp:.3f} | "
                         f"{g + lossy_bpp:.3f} |")
    return "\n".join(lines) + "\n"


def table(rows: list[dict]) -> str:
    names = [f"lic-{k}" for k in ERRORS] + list(OTHER_CODERS) + [f"jpegls-{k}" for k in ERRORS] + ["jpegxl", "jpeg2000", "png"]
    lines = ["| set | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    times = ["| set (enc / dec s, mean) | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for name in sorted({r["set"] for r in rows}):
        sub = [r for r in rows if r["set"] == name]
        bpp = [np.mean([r["codecs"][c][0] * 8 / r["pixels"] for r in sub]) for c in names]
        lines.append(f"| {name} ({len(sub)}) | " + " | ".join(f"{b:.3f}" for b in bpp) + " |")
        t = [(np.mean([r["codecs"][c][1] for r in sub]), np.mean([r["codecs"][c][2] for r in sub])) for c in names]
        times.append(f"| {name} | " + " | ".join(f"{e:.2f} / {d:.2f}" for e, d in t) + " |")
    return "Written by `python -m benchmarks.lossless`, which overwrites it; experiments, profiles and dated notes " \
        "are in `lossless-log.md`.\n\nbits per pixel (mean over images, all channels):\n\n" + "\n".join(lines) + \
        "\n\ntimes:\n\n" + "\n".join(times) + "\n\n" + targets(rows)


def targets(rows: list[dict]) -> str:
    """Issue 26's ratios per set: lic lossless against JPEG XL effort 7 (mean bpp, median encode and
    decode time), and at each K > 0 the images where lic is smaller than JPEG-LS NEAR = K."""
    lines = ["targets (lic-0 / JPEG XL e7: below 1 is better; lic-K < JPEG-LS-K: images; "
             + "; ".join(f"{name[:-2]}: {coder} lossless / JPEG XL e7" for name, coder in OTHER_CODERS.items()) + "):", "",
             "| set | bpp | median encode | median decode | " + " | ".join(f"K = {k} < JPEG-LS" for k in ERRORS[1:])
             + "".join(f" | {name[:-2]} bpp | {name[:-2]} median encode | {name[:-2]} median decode"
                       for name in OTHER_CODERS) + " |",
             "|---" * (4 + len(ERRORS) - 1 + 3 * len(OTHER_CODERS)) + "|"]
    for name in sorted({r["set"] for r in rows}):
        sub = [r for r in rows if r["set"] == name]
        bpp = np.mean([r["codecs"]["lic-0"][0] / r["pixels"] for r in sub]) / \
            np.mean([r["codecs"]["jpegxl"][0] / r["pixels"] for r in sub])
        enc, dec = (np.median([r["codecs"]["lic-0"][i] for r in sub]) / np.median([r["codecs"]["jpegxl"][i] for r in sub])
                    for i in (1, 2))
        wins = [sum(r["codecs"][f"lic-{k}"][0] < r["codecs"][f"jpegls-{k}"][0] for r in sub) for k in ERRORS[1:]]
        other = ""
        for coder in OTHER_CODERS:
            bpp_c = np.mean([r["codecs"][coder][0] / r["pixels"] for r in sub]) / \
                np.mean([r["codecs"]["jpegxl"][0] / r["pixels"] for r in sub])
            enc_c, dec_c = (np.median([r["codecs"][coder][i] for r in sub])
                            / np.median([r["codecs"]["jpegxl"][i] for r in sub]) for i in (1, 2))
            other += f" | {bpp_c:.3f} | {enc_c:.2f} | {dec_c:.2f}"
        lines.append(f"| {name} ({len(sub)}) | {bpp:.3f} | {enc:.2f} | {dec:.2f} | "
                     + " | ".join(f"{w} of {len(sub)}" for w in wins) + other + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.lossless", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", default="medical,kodak")
    p.add_argument("--limit", type=int, default=None, help="first N images of each set")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--lossy-layer", type=float, default=None, metavar="Q",
                   help="measure a lossy layer at quality Q under the residual layer instead")
    args = p.parse_args(argv)
    if args.lossy_layer is not None:
        text = lossy_layer(args.sets.split(","), args.limit, args.lossy_layer)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "lossy_layer.md.tmp").write_text(text)
        (args.out / "lossy_layer.md.tmp").replace(args.out / "lossy_layer.md")
        print(text)
        return 0
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
