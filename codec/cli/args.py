"""The ``lic`` command line: its parser, and the values people write in it.

``build_parser()`` makes the parser of ``lic encode | decode | info | demo``.  A usage error is a
``CliError`` with status 2 (one line), never argparse's exit.  Values are parsed where they are
written: sizes (``20k``, ``1.5M``, ``64KiB``), pixel counts (``100,000,000``) and qualities, whose
check belongs to ``codec.quality`` (the one check of a quality the command passes on).
"""

from __future__ import annotations

import argparse
import math
import re

from bitstream import InputError

from ..effort import DEFAULT_EFFORT, MAX_EFFORT
from ..engines.runtime import RUNTIMES
from ..limits import decode_limit
from ..quality import MAX_QUALITY, MIN_QUALITY, default_quality, quantize_quality
from .errors import USAGE, CliError

__all__ = ["STDIO", "SIZE_UNITS", "build_parser", "parse_size"]

STDIO = "-"  # an input or output of "-" is stdin or stdout
# Size units of --target-size: SI multiples of 1000 and binary ones of 1024.
SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
              "kib": 2**10, "mib": 2**20, "gib": 2**30}
_SIZE = re.compile(r"\s*((?:\d[\d,_]*)?\.?\d*(?:e[+-]?\d+)?)\s*([a-z]*)\s*")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message):
        raise CliError(message, USAGE)


class _Version(argparse.Action):
    """``--version``: looked up only when asked (importlib.metadata is not free)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"lic {version('lic-codec')}")
        except PackageNotFoundError:
            print("lic (not installed; run from a source tree)")
        parser.exit()


def _quality(text: str) -> float:
    """``-q``: a number, then the stored quality ``codec.quality`` makes of it.  That is the one
    check of the command's quality: the API takes the ``StoredQuality`` as it is."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"quality must be a number, got {text!r}") from None
    try:
        return quantize_quality(value)
    except InputError as e:  # out of range: the one message every entry point gives
        raise argparse.ArgumentTypeError(str(e)) from None


def _max_error(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"max error must be an integer >= 0, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"max error must be in 0..65535, got {text}")
    return value


def _pixels(text: str) -> int:
    try:
        value = int(text.replace(",", "").replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of pixels (100000000, 100,000,000), got {text!r}")
    return value


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
        if not value > 0 or (isinstance(value, float) and not math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value
    return parse


def parse_size(text: str) -> int:
    """Bytes from what people write: 20000, 20,000, 2e4, 20k, 20KB, 1.5M, 64KiB (rounded down)."""
    match = _SIZE.fullmatch(text.lower())
    number = match.group(1).replace(",", "").replace("_", "") if match else ""
    try:
        if match is None or match.group(2) not in SIZE_UNITS:
            raise ValueError
        value = float(number) * SIZE_UNITS[match.group(2)]
        size = math.floor(value)
    except (ValueError, OverflowError):
        size = 0
    if size < 1:
        raise argparse.ArgumentTypeError(
            f"expected a positive size in bytes (20000, 2e4, 20k, 20KB, 1.5M, 64KiB), got {text!r}")
    return size


def build_parser() -> argparse.ArgumentParser:
    """The parser of the whole command; ``parse_args`` raises ``CliError`` (status 2) for a bad line."""
    parser = _Parser(prog="lic", description="lic: a learned image codec.")
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", metavar="{encode,decode,info,demo}")
    _add_encode(sub)
    _add_decode(sub)
    info = sub.add_parser("info", help="describe a .lic file without decoding it")
    info.add_argument("input", metavar="FILE", help=".lic file, or -")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    demo = sub.add_parser("demo", help="compress and decompress one image, print bpp, PSNR, times")
    demo.add_argument("image", nargs="?", help="image (default: Kodak kodim23, or a built-in sample)")
    demo.add_argument("-q", "--quality", type=_quality, default=None)
    _add_model(demo)
    return parser


def _add_model(command: argparse.ArgumentParser) -> None:
    """The options of the commands that run the networks."""
    command.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                         help="where the networks run (the bits are the same on any device; cuda: torch)")
    command.add_argument("--runtime", default="auto", choices=RUNTIMES,
                         help="what runs the float networks: onnx (ONNX Runtime), torch, or auto (onnx where "
                              "installed; torch for --effort above 0 and cuda). Files are the same either way")
    command.add_argument("--weights", metavar="DIR",
                         help="directory of safetensors weights (default: $LIC_WEIGHTS, else shipped)")


def _add_encode(sub) -> None:
    enc = sub.add_parser("encode", help="images -> .lic files")
    enc.add_argument("inputs", nargs="+", metavar="IN", help="image files, folders of images, or -")
    out = enc.add_mutually_exclusive_group()
    out.add_argument("-o", "--output", metavar="OUT", help="output file (one input), or - for stdout")
    out.add_argument("-d", "--dir", metavar="DIR", help="write the .lic files into DIR (created if needed)")
    enc.add_argument("-r", "--recursive", action="store_true",
                     help="also code the images in subfolders, keeping the tree under -d")
    target = enc.add_mutually_exclusive_group()
    target.add_argument("-q", "--quality", type=_quality, default=None,
                        help=f"real number in [{MIN_QUALITY:g}, {MAX_QUALITY:g}] (default {default_quality():g}), "
                             "stored in steps of 1/256: 4.3 is kept as 4.30078")
    target.add_argument("--target-bpp", type=_positive(float), metavar="X",
                        help="highest quality with at most X bits per pixel")
    target.add_argument("--target-size", type=parse_size, metavar="SIZE",
                        help="highest quality with at most SIZE bytes: 20000, 2e4, 20k, 20KB, 1.5M, 64KiB "
                             "(error if impossible)")
    target.add_argument("--target-psnr", type=_positive(float), metavar="DB",
                        help="lowest quality with PSNR of at least DB")
    target.add_argument("--max-error", type=_max_error, metavar="K",
                        help="every decoded sample within K of the input, at its bit depth: 8 bits, or 16 for "
                             "16-bit gray, RGB and RGBA (PNG, TIFF)")
    target.add_argument("--lossless", dest="max_error", action="store_const", const=0,
                        help="the same as --max-error 0")
    enc.add_argument("-e", "--effort", type=int, choices=range(MAX_EFFORT + 1), default=DEFAULT_EFFORT,
                     metavar="N", help=f"0-{MAX_EFFORT} (default {DEFAULT_EFFORT}): spend encode time fitting the "
                                       "latents to each image for smaller files at the same quality; "
                                       "decoding is unchanged")
    existing = enc.add_mutually_exclusive_group()
    existing.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    existing.add_argument("--skip-existing", action="store_true",
                          help="leave existing outputs alone and code the rest (resumes a batch)")
    _add_model(enc)


def _add_decode(sub) -> None:
    dec = sub.add_parser("decode", help=".lic file -> image (PNG, JPEG, WebP, TIFF, PPM by extension)")
    dec.add_argument("input", metavar="IN", help=".lic file, or -")
    dec.add_argument("-o", "--output", metavar="OUT", help="output image (default IN with .png), or -")
    dec.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    dec.add_argument("--max-pixels", type=_pixels, metavar="N",
                     help="refuse, before decoding, a file of more than N pixels (default: Pillow's "
                          f"decompression-bomb limit, {decode_limit():,})")
    _add_model(dec)
