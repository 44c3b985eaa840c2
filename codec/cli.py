"""The ``lic`` command line: encode, decode, info, demo.

    lic encode IN [IN ...] [-o OUT | -d DIR] [-q Q | --target-bpp X | --target-size B | --target-psnr DB]
    lic decode IN.lic [-o OUT]        # output format from the extension; PNG by default
    lic info FILE.lic [--json]
    lic demo [IMAGE]

``-`` is stdin or stdout.  Every failure is one line on stderr, ``lic: error: ...``, with exit
status 2 for a bad command line and 1 for anything that goes wrong while running.  Outputs are
written to a temporary file beside the target and renamed into place, so an interrupted or
failed run never leaves a partial file.  Usage errors and bad inputs are found before torch
loads, so they answer quickly.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

import bitstream
from bitstream import LicFormatError

from .api import DEFAULT_QUALITY, MAX_QUALITY, MIN_QUALITY

__all__ = ["main"]

# Output formats of `lic decode`, by extension.
DECODE_FORMATS = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
    ".tif": "TIFF", ".tiff": "TIFF", ".ppm": "PPM", ".pgm": "PPM", ".pnm": "PPM",
}
_NO_ALPHA = {"JPEG", "PPM"}
STDIO = "-"


class CliError(Exception):
    """A failure to report as one line; ``status`` 1 (runtime) or 2 (usage)."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message):
        raise CliError(message, 2)


def _quality(text: str) -> float:
    try:
        q = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"quality must be a number, got {text!r}") from None
    if not MIN_QUALITY <= q <= MAX_QUALITY:
        raise argparse.ArgumentTypeError(f"quality must be in [{MIN_QUALITY:g}, {MAX_QUALITY:g}], got {text}")
    return q


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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lic", description="lic: a learned image codec.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{encode,decode,info,demo}")

    def common(p):
        p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                       help="where the networks run (the bits are the same on any device)")
        p.add_argument("--weights", metavar="DIR",
                       help="directory of safetensors weights (default: $LIC_WEIGHTS, else shipped)")

    enc = sub.add_parser("encode", help="images -> .lic files")
    enc.add_argument("inputs", nargs="+", metavar="IN", help="image files, directories of images, or -")
    out = enc.add_mutually_exclusive_group()
    out.add_argument("-o", "--output", metavar="OUT", help="output file (one input), or - for stdout")
    out.add_argument("-d", "--dir", metavar="DIR", help="write IN.lic files into DIR")
    target = enc.add_mutually_exclusive_group()
    target.add_argument("-q", "--quality", type=_quality, default=None,
                        help=f"real number in [{MIN_QUALITY:g}, {MAX_QUALITY:g}] (default {DEFAULT_QUALITY:g})")
    target.add_argument("--target-bpp", type=_positive(float), metavar="X",
                        help="highest quality with at most X bits per pixel")
    target.add_argument("--target-size", type=_positive(int), metavar="BYTES",
                        help="highest quality with at most BYTES bytes (error if impossible)")
    target.add_argument("--target-psnr", type=_positive(float), metavar="DB",
                        help="lowest quality with PSNR of at least DB")
    enc.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    common(enc)

    dec = sub.add_parser("decode", help=".lic file -> image (PNG, JPEG, WebP, TIFF, PPM by extension)")
    dec.add_argument("input", metavar="IN", help=".lic file, or -")
    dec.add_argument("-o", "--output", metavar="OUT", help="output image (default IN with .png), or -")
    dec.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    common(dec)

    info = sub.add_parser("info", help="describe a .lic file without decoding it")
    info.add_argument("input", metavar="FILE", help=".lic file, or -")
    info.add_argument("--json", action="store_true", help="print one JSON object")

    demo = sub.add_parser("demo", help="compress and decompress one image, print bpp, PSNR, times")
    demo.add_argument("image", nargs="?", help="image (default: Kodak kodim23, or a built-in sample)")
    demo.add_argument("-q", "--quality", type=_quality, default=DEFAULT_QUALITY)
    common(demo)
    return parser


# -- files -------------------------------------------------------------------------------------------

def _read_input(path: str) -> bytes:
    if path == STDIO:
        if sys.stdin.isatty():
            raise CliError("refusing to read from a terminal (pipe a file into -)")
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"{path}: is a directory") from None
    except OSError as e:
        raise CliError(f"{path}: cannot read: {e.strerror or e}") from None


def _check_output(path: str, force: bool) -> None:
    if path != STDIO and os.path.lexists(path) and not force:
        raise CliError(f"{path}: output exists (use --force to overwrite)")
    if path != STDIO and os.path.isdir(path):
        raise CliError(f"{path}: output is a directory")


@contextmanager
def _atomic_output(path: str):
    """Yield a binary file; on success it replaces ``path``, on any failure it vanishes."""
    if path == STDIO:
        buffer = io.BytesIO()
        yield buffer
        sys.stdout.buffer.write(buffer.getvalue())
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    directory = target.parent
    if not directory.is_dir():
        raise CliError(f"{path}: directory {str(directory)!r} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as e:
        raise CliError(f"{path}: cannot write: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _image_files(directory: Path) -> list[Path]:
    extensions = {ext for ext in Image.registered_extensions() if ext != ".lic"}
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in extensions)


def _stdout_is_terminal(path: str) -> None:
    if path == STDIO and sys.stdout.isatty():
        raise CliError("refusing to write binary data to a terminal (redirect stdout or use -o)")


def _load_codec(args):
    """The model, loaded once per command (imports torch)."""
    from .api import Codec

    weights = args.weights
    try:
        return Codec(device=args.device, weights=weights)
    except FileNotFoundError as e:
        raise CliError(f"{e} (set --weights DIR or LIC_WEIGHTS)") from None
    except (RuntimeError, ValueError, OSError) as e:
        raise CliError(str(e).splitlines()[0] if str(e) else type(e).__name__) from None


# -- encode ------------------------------------------------------------------------------------------

def _encode_jobs(args) -> list[tuple[str, str]]:
    """(input, output) pairs, after expanding directories and checking every output up front."""
    inputs: list[str] = []
    for name in args.inputs:
        if name != STDIO and os.path.isdir(name):
            found = _image_files(Path(name))
            if not found:
                raise CliError(f"{name}: no images in this directory")
            inputs += [str(p) for p in found]
        elif name != STDIO and not os.path.exists(name):
            raise CliError(f"{name}: no such file")
        else:
            inputs.append(name)
    if inputs.count(STDIO) > 1:
        raise CliError("stdin (-) can be read only once", 2)
    if args.output is not None and len(inputs) > 1:
        raise CliError("-o/--output takes one input; use -d DIR for several", 2)
    jobs = []
    for name in inputs:
        if args.output is not None:
            out = args.output
            if out != STDIO and Path(out).suffix.lower() != ".lic":
                raise CliError(f"{out}: encode writes .lic files (unknown extension {Path(out).suffix!r})", 2)
        elif name == STDIO:
            out = STDIO
        else:
            stem = Path(name).with_suffix(".lic").name
            out = str(Path(args.dir) / stem) if args.dir else str(Path(name).with_suffix(".lic"))
        jobs.append((name, out))
    outputs = [out for _, out in jobs if out != STDIO]
    if len(set(outputs)) != len(outputs):
        raise CliError("two inputs would write the same output file", 2)
    if sum(out == STDIO for _, out in jobs) > 1:
        raise CliError("only one output can go to stdout", 2)
    for _, out in jobs:
        _check_output(out, args.force)
        _stdout_is_terminal(out)
    return jobs


def _open_image(name: str, data: bytes) -> Image.Image:
    if data[:4] == b"LIC1":
        raise CliError(f"{name}: is already a .lic file (decode it first)")
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Image.DecompressionBombError as e:
        raise CliError(f"{name}: {e}") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise CliError(f"{name}: not an image Pillow can read ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    return img


def _check_image(name: str) -> None:
    """Fail now if ``name`` is not an image Pillow recognises (reads only its header)."""
    try:
        with open(name, "rb") as f:
            if f.read(4) == b"LIC1":
                raise CliError(f"{name}: is already a .lic file (decode it first)")
        with Image.open(name):
            pass
    except CliError:
        raise
    except (IsADirectoryError, PermissionError) as e:
        raise CliError(f"{name}: cannot read: {e.strerror}") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise CliError(f"{name}: not an image Pillow can read ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def cmd_encode(args) -> int:
    from .images import to_coded

    if args.dir:
        if os.path.exists(args.dir) and not os.path.isdir(args.dir):
            raise CliError(f"{args.dir}: not a directory")
    jobs = _encode_jobs(args)
    # Check every input before the model loads, so a bad one fails fast; pixels are read one
    # image at a time below (a folder of large photos must not sit in memory at once).
    stdin_data = None
    for name, _ in jobs:
        if name == STDIO:
            stdin_data = _read_input(name)
            _open_image(name, stdin_data)
        else:
            _check_image(name)
    if args.dir:
        os.makedirs(args.dir, exist_ok=True)
    codec = _load_codec(args)
    quality = args.quality if args.quality is not None else DEFAULT_QUALITY

    from tqdm import tqdm

    start = time.perf_counter()
    total_in = total_out = 0
    bpps = []
    progress = tqdm(total=len(jobs), unit="image", file=sys.stderr, disable=len(jobs) < 2, leave=False)
    for name, out in jobs:
        data_in = stdin_data if name == STDIO else _read_input(name)
        size_in, img = len(data_in), _open_image(name, data_in)
        del data_in
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            coded = to_coded(img)
        for w in caught:
            print(f"lic: warning: {name}: {w.message}", file=sys.stderr)
        data = _encode_one(codec, coded, name, args)
        with _atomic_output(out) as f:
            f.write(data)
        width, height = coded.size
        bpps.append(len(data) * 8 / (width * height))
        total_in += size_in
        total_out += len(data)
        progress.update(1)
    progress.close()
    elapsed = time.perf_counter() - start
    files = "file" if len(jobs) == 1 else "files"
    print(f"lic: encoded {len(jobs)} {files}, {total_in:,} -> {total_out:,} bytes, "
          f"mean {sum(bpps) / len(bpps):.4f} bpp, {elapsed:.2f} s", file=sys.stderr)
    return 0


def _encode_one(codec, coded, name: str, args) -> bytes:
    if args.target_size is not None:
        result = codec.compress_to_size(coded, args.target_size)
        if not result.met:
            raise CliError(f"{name}: cannot fit in {args.target_size:,} bytes: "
                           f"the smallest file (quality {MIN_QUALITY:g}) is {len(result.data):,} bytes")
        return result.data
    if args.target_bpp is not None:
        result = codec.compress_to_bpp(coded, args.target_bpp)
        if not result.met:
            width, height = coded.size
            print(f"lic: warning: {name}: cannot reach {args.target_bpp:g} bpp; using quality "
                  f"{MIN_QUALITY:g} ({len(result.data) * 8 / (width * height):.4f} bpp)", file=sys.stderr)
        return result.data
    if args.target_psnr is not None:
        result = codec.compress_to_psnr(coded, args.target_psnr)
        if not result.met:
            print(f"lic: warning: {name}: cannot reach {args.target_psnr:g} dB; using quality "
                  f"{MAX_QUALITY:g} ({result.psnr:.2f} dB)", file=sys.stderr)
        return result.data
    return codec._encode(coded, args.quality if args.quality is not None else DEFAULT_QUALITY)


# -- decode ------------------------------------------------------------------------------------------

def cmd_decode(args) -> int:
    if args.output is None:
        out = STDIO if args.input == STDIO else str(Path(args.input).with_suffix(".png"))
    else:
        out = args.output
    fmt = "PNG" if out == STDIO else DECODE_FORMATS.get(Path(out).suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(DECODE_FORMATS))
        raise CliError(f"{out}: unknown output extension {Path(out).suffix or '(none)'!r} (use {known})", 2)
    _check_output(out, args.force)
    _stdout_is_terminal(out)
    data = _read_input(args.input)
    try:
        bitstream.unpack(data)  # a bad file is reported before the model loads
    except LicFormatError as e:
        raise CliError(f"{args.input}: {e}") from None
    codec = _load_codec(args)
    try:
        img = codec.decompress(data)
    except LicFormatError as e:
        raise CliError(f"{args.input}: {e}") from None
    if fmt in _NO_ALPHA and img.mode == "RGBA":
        print(f"lic: warning: {out}: {fmt} has no alpha channel; alpha dropped", file=sys.stderr)
        img = img.convert("RGB")
    options = {"icc_profile": img.info["icc_profile"]} if img.info.get("icc_profile") and fmt != "PPM" else {}
    if fmt == "JPEG":
        options["quality"] = 95
    if fmt == "WEBP":
        options["lossless"] = True  # the decoded pixels, exactly
    with _atomic_output(out) as f:
        img.save(f, format=fmt, **options)
    return 0


# -- info ----------------------------------------------------------------------------------------------

def cmd_info(args) -> int:
    data = _read_input(args.input)
    try:
        header, streams, alpha = bitstream.unpack(data)
    except LicFormatError as e:
        raise CliError(f"{args.input}: {e}") from None
    pixels = header.width * header.height
    report = {
        "file": args.input, "width": header.width, "height": header.height,
        "channels": header.channels, "quality": header.quality,
        "model_id": header.model_id, "model_hash": header.model_hash.hex(),
        "bytes": len(data), "bpp": len(data) * 8 / pixels,
        "icc_bytes": len(header.icc) if header.icc else 0,
        "alpha_bytes": len(alpha) if alpha is not None else 0,
        "streams": len(streams),
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{args.input}: {header.width}x{header.height} {header.channels}, quality {header.quality:g}, "
              f"model {header.model_id} ({report['model_hash']}), {len(data):,} bytes, {report['bpp']:.4f} bpp"
              + (f", ICC {report['icc_bytes']:,} bytes" if header.icc else "")
              + (f", alpha {report['alpha_bytes']:,} bytes" if alpha is not None else ""))
    return 0


def cmd_demo(args) -> int:
    from .demo import run

    if args.image is not None:
        _read_input(args.image)  # one-line errors for a missing or unreadable file
        _open_image(args.image, Path(args.image).read_bytes())
    try:
        run(args.image, quality=args.quality, device=args.device, weights=args.weights)
    except FileNotFoundError as e:
        raise CliError(f"{e} (set --weights DIR or LIC_WEIGHTS)") from None
    return 0


# -- entry point -----------------------------------------------------------------------------------

COMMANDS = {"encode": cmd_encode, "decode": cmd_decode, "info": cmd_info, "demo": cmd_demo}


def main(argv: list[str] | None = None) -> int:
    """Run ``lic``; returns the exit status (the console script exits with it)."""
    # Pillow's decompression-bomb guard, raised to what a .lic file can hold.
    Image.MAX_IMAGE_PIXELS = bitstream.container.MAX_PIXELS
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "weights", None) and not os.path.isdir(args.weights):
            raise CliError(f"--weights {args.weights}: not a directory", 2)
        return COMMANDS[args.command](args)
    except CliError as e:
        print(f"lic: error: {e}", file=sys.stderr)
        return e.status
    except LicFormatError as e:
        print(f"lic: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lic: error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `lic decode x.lic -o - | head`): stop quietly, and keep
        # Python from failing again while flushing stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (OSError, ValueError, MemoryError) as e:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"lic: error: {message}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - a bug still gets one line, with LIC_DEBUG=1 a traceback
        if os.environ.get("LIC_DEBUG"):
            raise
        print(f"lic: error: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
