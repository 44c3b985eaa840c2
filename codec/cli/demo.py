"""``lic demo``: round trip one image and report what the codec does.

Compresses the image, decompresses it, and prints size, bits per pixel, PSNR and the encode and
decode times (network and entropy coding apart).  Without an image it uses Kodak kodim23 from
``../shared/data/kodak`` beside the repository when present, else a built-in synthetic sample.
``python -m codec.demo [IMAGE]`` is the same command.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from .. import Codec, psnr
from .. import open_image as decode_image
from ..quality import default_quality
from .errors import CliError
from .inputs import open_image, read_input

__all__ = ["run", "sample_image", "cmd_demo"]

# The Kodak image the demo prefers: in ../shared beside the repository or the working directory.
KODAK_CANDIDATES = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "kodak" / "kodim23.png",
    Path.cwd().parent / "shared" / "data" / "kodak" / "kodim23.png",
)


def sample_image(width: int = 384, height: int = 256) -> Image.Image:
    """A deterministic test card: smooth gradients, hard-edged discs, stripes and mild noise."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 0.5 + 0.5 * np.sin(xx / 37.0)
    g = yy / height
    b = 0.5 + 0.5 * np.cos((xx + yy) / 53.0)
    img = np.stack([r, g, b], axis=-1)
    for cx, cy, rad, color in [(0.3, 0.4, 0.18, (0.9, 0.2, 0.1)), (0.7, 0.6, 0.22, (0.1, 0.3, 0.8))]:
        inside = (xx - cx * width) ** 2 + (yy - cy * height) ** 2 < (rad * height) ** 2
        img[inside] = color
    stripes = (xx > 0.8 * width) & ((yy // 4) % 2 == 0)
    img[stripes] = 0.95
    noise = np.random.default_rng(23).normal(0, 0.02, img.shape)
    return Image.fromarray(np.clip((img + noise) * 255 + 0.5, 0, 255).astype(np.uint8), "RGB")


def run(image=None, quality: float | None = None, device: str = "auto",
        weights: str | None = None, out=sys.stdout, name: str | None = None) -> dict:
    """Round trip ``image`` (a path, a PIL image, or None for the default); prints a small report
    to ``out`` and returns its numbers.  ``name``: how the report calls the image."""
    quality = default_quality() if quality is None else quality
    if image is None:
        image = next((str(p) for p in KODAK_CANDIDATES if p.is_file()), None)
    if image is None:
        image, name = sample_image(), "built-in sample (Kodak not found)"
    elif not isinstance(image, Image.Image):
        name = name or str(image)
        image = decode_image(image)  # decoded once, before any timing
    name = name or "image"

    t = time.perf_counter()
    codec = Codec(device=device, weights=weights)
    load = time.perf_counter() - t
    # The first call at a new image size pays one-time set-up (oneDNN builds kernels per shape);
    # time it apart, then report the steady state of a second run.
    t = time.perf_counter()
    codec.decompress(codec.compress(image, quality))
    first = time.perf_counter() - t

    t = time.perf_counter()
    data = codec.compress(image, quality)
    encode, enc_t = time.perf_counter() - t, codec.last_timings
    t = time.perf_counter()
    decoded = codec.decompress(data)
    decode, dec_t = time.perf_counter() - t, codec.last_timings

    width, height = decoded.size
    channels = decoded.mode  # "L", "RGB" or "RGBA": the coded layout
    report = {
        "image": name, "width": width, "height": height, "channels": channels,
        "model_id": codec.coder.config.model_id, "model_hash": codec.model_hash.hex(),
        "device": codec.device, "runtime": codec.runtime, "quality": quality, "bytes": len(data),
        "bpp": len(data) * 8 / (width * height), "psnr": psnr(image, decoded),
        "encode_s": encode, "decode_s": decode, "load_s": load, "first_call_s": first,
    }
    print(f"image    {name}  {width}x{height} {channels}", file=out)
    print(f"model    {report['model_id']} ({report['model_hash']}) on {codec.runtime}, {codec.device}, "
          f"quality {quality:g}, loaded in {load:.2f} s", file=out)
    print(f"size     {len(data):,} bytes  {report['bpp']:.4f} bpp", file=out)
    print(f"PSNR     {report['psnr']:.2f} dB", file=out)
    print(f"encode   {encode:.3f} s  (network {enc_t.network:.3f} s, entropy coding {enc_t.coding:.3f} s)", file=out)
    print(f"decode   {decode:.3f} s  (network {dec_t.network:.3f} s, entropy coding {dec_t.coding:.3f} s)", file=out)
    print(f"         steady state; the first encode+decode at this size took {first:.3f} s (one-time set-up)", file=out)
    return report


def cmd_demo(args) -> int:
    image = None
    if args.image is not None:  # opened here, once, for one-line errors about a bad file
        image = open_image(args.image, read_input(args.image))
    try:
        run(image, quality=args.quality, device=args.device, weights=args.weights, name=args.image)
    except FileNotFoundError as e:
        raise CliError(f"{e} (set --weights DIR or LIC_WEIGHTS)") from None
    return 0
