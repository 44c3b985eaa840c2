"""``lic decode``: a ``.lic`` file to an image, in the format its output's extension names.

The file is parsed once, and refused (too many pixels, not a lic file, corrupt) before the model
loads.  16-bit samples go to PNG, TIFF and PPM as 16 bits; JPEG and WebP hold 8, so the samples
are reduced with a one-line warning, as alpha is dropped with one for a format without it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PIL import Image

import bitstream
from bitstream import LicFormatError

from .. import colour16, decompress_exact
from ..images import Image16, to_8bit
from ..limits import check_pixels
from .args import STDIO
from .console import Console, coding_bar
from .errors import USAGE, CliError
from .inputs import load_codec, read_input, shown
from .outputs import atomic_output, check_output, check_writable, refuse_terminal

__all__ = ["DECODE_FORMATS", "cmd_decode"]

# Output formats of `lic decode`, by extension.
DECODE_FORMATS = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
    ".tif": "TIFF", ".tiff": "TIFF", ".ppm": "PPM", ".pgm": "PPM", ".pnm": "PPM",
}
_NO_ALPHA = {"JPEG", "PPM"}
# How written PNGs are compressed: zlib's run-length strategy (Z_RLE, 3), which zlib designs for filtered PNG
# rows.  On decoded Kodak images it spends 0.025 s of CPU where level 4 of the default strategy spends 0.06 s
# and Pillow's default level 6 0.12 s, for files 0.5 % larger than level 4's (benchmarks/results/runtime.md).
PNG_OPTIONS = {"compress_type": 3}


def cmd_decode(args) -> int:
    out, fmt = _output(args)
    data = read_input(args.input)
    try:
        container = bitstream.unpack(data)  # parsed once; a bad file is reported before the model loads
        check_pixels(container.header, args.max_pixels, "--max-pixels N")  # and one too large, at once
    except LicFormatError as e:
        raise CliError(f"{shown(args.input)}: {e}") from None
    del data
    header = container.header
    try:
        if isinstance(header, bitstream.ResidualHeader):  # lossless or near-lossless: no weights needed
            img = decompress_exact(container, max_pixels=args.max_pixels)
        else:
            codec = load_codec(args)
            size = f"{header.width}x{header.height}"
            with coding_bar(Console(), f"decoding {size}", "tile", least=2) as progress:
                img = codec.decompress(container, max_pixels=args.max_pixels, progress=progress)
    except LicFormatError as e:
        raise CliError(f"{shown(args.input)}: {e}") from None
    _write(_fit_format(img, fmt, out), fmt, out)
    return 0


def _output(args) -> tuple[str, str]:
    """The output's path and format, checked before anything is read."""
    if args.output is None:
        out = STDIO if args.input == STDIO else str(Path(args.input).with_suffix(".png"))
    else:
        out = args.output
    if out != STDIO and os.path.isdir(out):
        raise CliError(f"{out}: is a directory (name the image file to write)")
    fmt = "PNG" if out == STDIO else DECODE_FORMATS.get(Path(out).suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(DECODE_FORMATS))
        raise CliError(f"{out}: unknown output extension {Path(out).suffix or '(none)'!r} (use {known})", USAGE)
    check_output(out, args.force)
    refuse_terminal(out)
    check_writable(out)
    return out, fmt


def _write(img: Image.Image | Image16, fmt: str, out: str) -> None:
    with atomic_output(out) as f:
        if isinstance(img, Image16):
            img.save(f, format=fmt)
            return
        options = {"icc_profile": img.info["icc_profile"]} if img.info.get("icc_profile") and fmt != "PPM" else {}
        if fmt == "JPEG":
            options["quality"] = 95
        if fmt == "WEBP":
            options["lossless"] = True  # the decoded pixels, exactly
        if fmt == "PNG":
            options.update(PNG_OPTIONS)
        img.save(f, format=fmt, **options)


def _fit_format(img: Image.Image | Image16, fmt: str, out: str) -> Image.Image | Image16:
    """The decoded image as ``fmt`` can hold it: 16-bit samples reduced to 8 bits for JPEG and WebP,
    alpha dropped for JPEG and PPM, each with a one-line warning."""
    sixteen = isinstance(img, Image16) or img.mode == "I;16"
    if sixteen and fmt not in colour16.WRITERS:  # 16-bit colour's writers; Pillow writes 16-bit gray to the same
        print(f"lic: warning: {out}: {fmt} holds 8 bits per sample; 16-bit samples reduced to 8 bits", file=sys.stderr)
        img = to_8bit(img)
    if fmt in _NO_ALPHA and img.mode in ("RGBA", "RGBA;16"):
        print(f"lic: warning: {out}: {fmt} has no alpha channel; alpha dropped", file=sys.stderr)
        if isinstance(img, Image16):
            img = Image16(img.pixels[..., :3], img.info.get("icc_profile"))
        else:
            img = img.convert("RGB")
    return img
