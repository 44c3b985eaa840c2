"""The ``lic`` command line: encode, decode, info, demo.

    lic encode IN [IN ...] [-o OUT | -d DIR] [-r] [-f | --skip-existing]
               [-q Q | --target-bpp X | --target-size SIZE | --target-psnr DB]
    lic decode IN.lic [-o OUT] [--max-pixels N]   # output format from the extension; PNG by default
    lic info FILE.lic [--json]
    lic demo [IMAGE]

``-`` is stdin or stdout.  Every failure of the input or the system is one line on stderr,
``lic: error: ...``, with exit status 2 for a bad command line and 1 for anything that goes wrong
while running; a bug in lic is one line ``lic: internal error: ...`` with status 1
(``LIC_DEBUG=1`` shows its traceback).  Outputs are written to a temporary file beside the
target and renamed into place, so an interrupted or failed run never leaves a partial file:
SIGINT, SIGTERM and SIGHUP unwind (removing the temporary file) and exit with 128 + the signal
number.  Usage errors, bad inputs and outputs that cannot be written are found before torch
loads, so they answer quickly.

Folders: ``encode DIR`` codes the images in DIR (``-r``: and in its subfolders, keeping the tree
under ``-d``), skipping hidden files.  A bad file in a batch is reported and skipped; the summary
names it and the exit status is 1.  ``--skip-existing`` resumes a batch that was cut short.
Progress bars are drawn on a terminal only: over the images of a batch, and over the units of
work that ``Codec`` reports (a large image's tiles, the refinement's steps) while one image codes.

Decoding a 16-bit file (lossless or near-lossless, gray or colour) writes 16 bits to PNG, TIFF
and PPM (PPM without alpha); JPEG and WebP hold 8 bits, so the samples are reduced to 8 bits
(rounded) with a one-line warning, as alpha is dropped with one for a format without it.  A file
that declares more pixels than ``--max-pixels`` (default: Pillow's decompression-bomb limit) is
refused in one line before anything is decoded.

The command drives lic through its face, never the networks: ``codec.Codec`` (whose progress
callback counts the work), ``compress_exact``, ``decompress_exact``, ``open_image``, ``Image16``,
and the torch-free ``codec.quality``, ``effort``, ``limits``, ``images``, ``colour16`` and
``bitstream``.  It reads, decodes or parses each input once.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import re
import signal
import sys
import tempfile
import threading
import time
import warnings
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

import bitstream
from bitstream import InputError, LicFormatError

from . import colour16, open_image
from .effort import DEFAULT_EFFORT, MAX_EFFORT
from .images import Image16, to_8bit
from .limits import check_pixels, decode_limit
from .quality import MAX_QUALITY, MIN_QUALITY, default_quality, quantize_quality

__all__ = ["main"]

# Output formats of `lic decode`, by extension.
DECODE_FORMATS = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
    ".tif": "TIFF", ".tiff": "TIFF", ".ppm": "PPM", ".pgm": "PPM", ".pnm": "PPM",
}
_NO_ALPHA = {"JPEG", "PPM"}
STDIO = "-"
# Size units of --target-size: SI multiples of 1000 and binary ones of 1024.
SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
              "kib": 2**10, "mib": 2**20, "gib": 2**30}
_SIZE = re.compile(r"\s*((?:\d[\d,_]*)?\.?\d*(?:e[+-]?\d+)?)\s*([a-z]*)\s*")
# Signals that end the process normally; each unwinds like Ctrl-C (SIGINT, KeyboardInterrupt) does.
TERMINATING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class CliError(Exception):
    """A failure to report as one line; ``status`` 1 (runtime) or 2 (usage)."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


class Terminated(BaseException):
    """A terminating signal arrived.  A BaseException, like KeyboardInterrupt, so that only
    cleanup (``finally``, ``except BaseException``) sees it on the way out."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message):
        raise CliError(message, 2)


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
    parser = _Parser(prog="lic", description="lic: a learned image codec.")
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", metavar="{encode,decode,info,demo}")

    def common(p):
        p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                       help="where the networks run (the bits are the same on any device)")
        p.add_argument("--weights", metavar="DIR",
                       help="directory of safetensors weights (default: $LIC_WEIGHTS, else shipped)")

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
    common(enc)

    dec = sub.add_parser("decode", help=".lic file -> image (PNG, JPEG, WebP, TIFF, PPM by extension)")
    dec.add_argument("input", metavar="IN", help=".lic file, or -")
    dec.add_argument("-o", "--output", metavar="OUT", help="output image (default IN with .png), or -")
    dec.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    dec.add_argument("--max-pixels", type=_pixels, metavar="N",
                     help="refuse, before decoding, a file of more than N pixels (default: Pillow's "
                          f"decompression-bomb limit, {decode_limit():,})")
    common(dec)

    info = sub.add_parser("info", help="describe a .lic file without decoding it")
    info.add_argument("input", metavar="FILE", help=".lic file, or -")
    info.add_argument("--json", action="store_true", help="print one JSON object")

    demo = sub.add_parser("demo", help="compress and decompress one image, print bpp, PSNR, times")
    demo.add_argument("image", nargs="?", help="image (default: Kodak kodim23, or a built-in sample)")
    demo.add_argument("-q", "--quality", type=_quality, default=None)
    common(demo)
    return parser


# -- files -------------------------------------------------------------------------------------------

def _shown(name: str) -> str:
    return "stdin" if name == STDIO else name


def _reason(error: BaseException) -> str:
    """One line of why Pillow refused a file, without Python object reprs."""
    if isinstance(error, UnidentifiedImageError):
        return "unknown format"
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return re.sub(r"<[\w.]+ object at 0x[0-9a-fA-F]+>", "the data", text)


def _read_input(path: str) -> bytes:
    if path == STDIO:
        if sys.stdin.isatty():
            raise CliError("refusing to read from a terminal (pipe a file into -)")
        data = sys.stdin.buffer.read()
        if not data:
            raise CliError("stdin is empty (nothing was piped in)")
        return data
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"{path}: is a directory") from None
    except OSError as e:
        raise CliError(f"{path}: cannot read: {e.strerror or e}") from None
    if not data:
        raise CliError(f"{path}: empty file")
    return data


def _check_output(path: str, force: bool, skip_existing: bool | None = None) -> bool:
    """Refuse an output that exists, unless ``force``; True: it exists and ``skip_existing`` keeps
    it (None: the command has no --skip-existing)."""
    if path == STDIO or not os.path.lexists(path):
        return False
    if skip_existing:
        return True
    if not force:
        also = "" if skip_existing is None else ", or --skip-existing to keep it"
        raise CliError(f"{path}: output exists (use --force to overwrite{also})")
    return False


def _check_writable(path: str, make_parents: bool = False) -> None:
    """Fail now, not after a long encode, if ``path`` cannot be written.

    Its folder must exist (or, with ``make_parents``, be creatable), and a file must be
    creatable there: a probe file is made and removed, the only test that also holds for root,
    read-only mounts and ACLs.
    """
    if path == STDIO:
        return
    parent = Path(path).parent
    existing = parent
    while not os.path.lexists(existing):
        if not make_parents:
            raise CliError(f"{path}: directory '{parent}' does not exist")
        existing = existing.parent
    if not existing.is_dir():
        raise CliError(f"{path}: '{existing}' is not a directory")
    probe = None
    try:
        fd, probe = tempfile.mkstemp(prefix=".lic-probe.", dir=existing)
        os.close(fd)
    except OSError as e:
        reason = e.strerror or str(e)
        if existing == parent:
            raise CliError(f"{path}: cannot write in '{parent}': {reason}") from None
        raise CliError(f"{parent}: cannot create directory in '{existing}': {reason}") from None
    finally:
        if probe is not None:
            os.unlink(probe)


def _make_parent(path: str) -> None:
    parent = Path(path).parent
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise CliError(f"{parent}: cannot create directory: {e.strerror or e}") from None


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
        raise CliError(f"{path}: directory '{directory}' does not exist")
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
    except BaseException:  # also KeyboardInterrupt and Terminated
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _image_extensions() -> set[str]:
    return {ext for ext in Image.registered_extensions() if ext != ".lic"}


def _image_files(folder: Path, recursive: bool) -> list[Path]:
    """Images in ``folder`` (and its subfolders), sorted; hidden files and folders are skipped."""
    extensions = _image_extensions()
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        found += [Path(root) / f for f in sorted(files)
                  if not f.startswith(".") and Path(f).suffix.lower() in extensions and (Path(root) / f).is_file()]
    return found


def _stdout_is_terminal(path: str) -> None:
    if path == STDIO and sys.stdout.isatty():
        raise CliError("refusing to write binary data to a terminal (redirect stdout or use -o)")


def _load_codec(args):
    """The model, loaded once per command (imports torch).

    Weights come from the user (``--weights``, ``LIC_WEIGHTS``), so whatever loading them raises
    is reported as one line about them; ``LIC_DEBUG=1`` shows the traceback instead."""
    from . import Codec

    weights = args.weights
    try:
        return Codec(device=args.device, weights=weights)
    except FileNotFoundError as e:
        if os.environ.get("LIC_DEBUG"):
            raise
        raise CliError(f"{e} (set --weights DIR or LIC_WEIGHTS)") from None
    except (RuntimeError, ValueError, OSError) as e:
        if os.environ.get("LIC_DEBUG"):
            raise
        raise CliError(str(e).splitlines()[0] if str(e) else type(e).__name__) from None


class _NoBar:
    """A progress bar that is not drawn."""

    def update(self, n: int = 1) -> None:
        pass

    def write(self, line: str, file=None) -> None:
        print(line, file=file or sys.stderr)

    def close(self) -> None:
        pass


class _Console:
    """stderr lines that keep out of the way of a progress bar, and the bars themselves,
    which are drawn on a terminal only."""

    def __init__(self):
        self.bar = None

    @staticmethod
    def terminal() -> bool:
        return sys.stderr.isatty()

    def say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    @contextmanager
    def progress(self, disable: bool = False, **options):
        if disable:  # tqdm costs 40 ms to import: not for a bar that is never drawn
            bar = _NoBar()
        else:
            from tqdm import tqdm

            bar = tqdm(file=sys.stderr, leave=False, dynamic_ncols=True, **options)
        outer, self.bar = self.bar, bar
        try:
            yield bar
        finally:
            self.bar = outer
            bar.close()


@contextmanager
def _coding_bar(console: _Console, desc: str, unit: str, known_total: bool = True, least: int = 1,
                delay: float = 0.0):
    """Yields the ``progress(done, total)`` callback of one image's coding (None off a terminal):
    a bar over its units of work, drawn once a pass reports ``least`` units or more in all.

    ``known_total`` False (a target search codes several candidates, each a pass of its own)
    shows a bare count of the units, all passes together.  ``delay``: seconds before the bar
    appears, so that quick work never flickers one up."""
    if not console.terminal():
        yield None
        return
    with ExitStack() as bars:
        bar, counted = None, 0

        def progress(done: int, total: int) -> None:
            nonlocal bar, counted
            if bar is None:
                if total < least:  # one piece: quick enough without a bar
                    return
                bar = bars.enter_context(console.progress(total=total if known_total else None, desc=desc,
                                                          unit=unit, delay=delay))
            if done == 0:  # a new pass: a search's next candidate
                counted = 0
            bar.update(done - counted)
            counted = done

        yield progress


# -- encode ------------------------------------------------------------------------------------------

@dataclass
class _Job:
    input: str
    output: str
    skip: bool = False  # the output exists and --skip-existing keeps it


def _encode_jobs(args) -> tuple[list[_Job], bool]:
    """(jobs, batch): every input with its output, folders expanded; batch when several inputs
    or a folder was given (then a bad file is skipped, not fatal)."""
    jobs: list[_Job] = []
    batch = len(args.inputs) > 1
    for name in args.inputs:
        if name == STDIO:
            jobs.append(_Job(STDIO, args.output or STDIO))
        elif os.path.isdir(name):
            batch = True
            found = _image_files(Path(name), args.recursive)
            if not found:
                walk = "" if args.recursive else " (-r walks subfolders)"
                raise CliError(f"{name}: no images in this directory{walk}")
            for path in found:
                lic = path.with_suffix(".lic")
                jobs.append(_Job(str(path), str(Path(args.dir) / lic.relative_to(name)) if args.dir else str(lic)))
        elif not os.path.exists(name):
            raise CliError(f"{name}: no such file")
        else:
            lic = Path(name).with_suffix(".lic")
            out = args.output if args.output is not None else str(Path(args.dir) / lic.name) if args.dir else str(lic)
            jobs.append(_Job(name, out))
    if sum(job.input == STDIO for job in jobs) > 1:
        raise CliError("stdin (-) can be read only once", 2)
    if args.output is not None and len(jobs) > 1:
        raise CliError("-o/--output takes one input; use -d DIR for several", 2)
    if sum(job.output == STDIO for job in jobs) > 1:
        raise CliError("only one output can go to stdout", 2)
    writers: dict[str, str] = {}
    for job in jobs:
        if job.output == STDIO:
            continue
        key = os.path.normcase(os.path.abspath(job.output))
        if key in writers:
            raise CliError(f"{writers[key]} and {job.input} would both write {job.output}", 2)
        writers[key] = job.input
    return jobs, batch


def _open_image(name: str, data: bytes, exact: bool = False) -> Image.Image | Image16:
    """The image in ``data``, decoded (the one time it is; a 16-bit colour file twice, for the exact
    modes, see ``codec.colour16``), with ``name`` for its warnings."""
    if bitstream.is_lic(data):
        raise CliError(f"{_shown(name)}: is already a .lic file (decode it first)")
    try:
        return open_image(io.BytesIO(data), name=_shown(name), exact=exact)
    except Image.DecompressionBombError as e:
        raise CliError(f"{_shown(name)}: {e}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise CliError(f"{_shown(name)}: not an image Pillow can read ({_reason(e)})") from None


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


@dataclass
class _Tally:
    """What a run of ``lic encode`` did, for its one-line summary."""

    done: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    bpp_sum: float = 0.0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)

    def summary(self, elapsed: float) -> str:
        attempted = self.done + len(self.failed)
        done = f"{self.done} of {_files(attempted)}" if self.failed else _files(self.done)
        line = f"lic: encoded {done}"
        if self.done:
            line += f", {self.bytes_in:,} -> {self.bytes_out:,} bytes, mean {self.bpp_sum / self.done:.4f} bpp"
        line += f", {elapsed:.2f} s"
        if self.skipped:
            line += f"; skipped {self.skipped} existing"
        if self.failed:
            names = ", ".join(self.failed[:5]) + (f" and {len(self.failed) - 5} more" if len(self.failed) > 5 else "")
            line += f"; {len(self.failed)} failed: {names}"
        return line


def cmd_encode(args) -> int:
    if args.dir == STDIO:
        raise CliError("-d -: a folder cannot be stdout (use -o - for one input)", 2)
    if args.dir and os.path.exists(args.dir) and not os.path.isdir(args.dir):
        raise CliError(f"{args.dir}: not a directory")
    if args.output is not None and args.output != STDIO and os.path.isdir(args.output):
        raise CliError(f"{args.output}: is a directory (use -d {args.output} to write into it)")
    if args.output is not None and args.output != STDIO and Path(args.output).suffix.lower() != ".lic":
        raise CliError(f"{args.output}: encode writes .lic files "
                       f"(unknown extension {Path(args.output).suffix!r})", 2)
    jobs, batch = _encode_jobs(args)
    for job in jobs:
        if job.output != STDIO and os.path.isdir(job.output):
            raise CliError(f"{job.output}: is a directory (use -d DIR to write into a folder)")
        job.skip = _check_output(job.output, args.force, args.skip_existing)
        _stdout_is_terminal(job.output)
    todo = [job for job in jobs if not job.skip]
    checked = set()
    for job in todo:  # one probe per output folder
        if job.output != STDIO and Path(job.output).parent not in checked:
            _check_writable(job.output, make_parents=bool(args.dir))
            checked.add(Path(job.output).parent)

    console, tally = _Console(), _Tally(skipped=len(jobs) - len(todo))
    # Each input is read and decoded once, just before it is coded, so a folder of large photos
    # never sits in memory at once.  The model loads after the first input that opens: a single
    # bad input (or a batch of them) is reported before torch loads, and answers quickly.
    codec, load_s = None, 0.0
    start = time.perf_counter()
    with console.progress(total=len(todo), unit="image", disable=not (batch and console.terminal())):
        for job in todo:
            try:
                data_in = _read_input(job.input)
                size_in, image = len(data_in), _open_image(job.input, data_in, exact=args.max_error is not None)
                del data_in  # the decoded image is what coding needs
                if codec is None and args.max_error is None:  # exact files need no weights
                    t = time.perf_counter()
                    codec = _load_codec(args)
                    load_s = time.perf_counter() - t
                _encode_file(codec, job, image, size_in, args, console, tally, bars=not batch)
            except (CliError, InputError, OSError, MemoryError) as e:  # this file's fault: next one
                if not batch:
                    raise
                console.say(f"lic: error: {_about(job.input, e)}")
                tally.failed.append(_shown(job.input))
            console.bar.update(1)
    print(tally.summary(time.perf_counter() - start - load_s), file=sys.stderr)
    return 1 if tally.failed else 0


def _about(name: str, error: Exception) -> str:
    """The one-line reason ``name`` failed, named once."""
    reason = str(error) if isinstance(error, CliError) else _reason(error)
    shown = _shown(name)
    return reason if isinstance(error, CliError) or reason.startswith(f"{shown}: ") else f"{shown}: {reason}"


def _encode_file(codec, job: _Job, image: Image.Image, size_in: int, args, console: _Console, tally: _Tally,
                 bars: bool) -> None:
    """Code one image (``codec`` None: lossless or near-lossless, no model) and write its file;
    ``bars``: draw the image's own progress bar (a batch has one over the images instead)."""
    with warnings.catch_warnings(record=True) as caught:  # bit depth, frames: said once, by name
        warnings.simplefilter("always")
        with _bar(console, image.size, args) if bars and codec is not None else nullcontext() as progress:
            data = _encode_one(codec, image, job.input, args, console, caught, progress)
    if args.dir and job.output != STDIO:
        _make_parent(job.output)  # -d folders appear only once there is something to put in them
    with _atomic_output(job.output) as f:
        f.write(data)
    width, height = image.size
    tally.done += 1
    tally.bytes_in += size_in
    tally.bytes_out += len(data)
    tally.bpp_sum += len(data) * 8 / (width * height)


def _bar(console: _Console, size: tuple[int, int], args):
    """One image's bar: over the refinement's steps at effort > 0, drawn once the encode has
    taken 2 s (a quick one never flickers one up); else over the transform's tiles, for an image
    large enough to be tiled.  A target search codes several times: a bare count then."""
    width, height = size
    search = args.target_size is not None or args.target_bpp is not None or args.target_psnr is not None
    if args.effort:
        return _coding_bar(console, f"refining {width}x{height}", "step", known_total=not search, delay=2.0)
    return _coding_bar(console, f"encoding {width}x{height}", "tile", known_total=not search, least=2)


def _encode_one(codec, image: Image.Image, name: str, args, console: _Console, caught: list,
                progress=None) -> bytes:
    """Code one image at a quality or a target; after a target, say what it chose and reached.
    The image's warnings (``caught``) are said before anything about its result."""
    width, height = image.size
    name = _shown(name)

    def say(line: str) -> None:
        for w in caught:
            console.say(f"lic: warning: {w.message}")
        caught.clear()
        if line:
            console.say(line)

    def reached(result, target: str, psnr: bool = False) -> None:
        bpp = len(result.data) * 8 / (width * height)
        db = f"{result.psnr:.2f} dB, " if psnr else ""
        say(f"lic: {name}: target {target} -> quality {result.quality:g}, {db}"
            f"{len(result.data):,} bytes, {bpp:.4f} bpp")

    try:
        if args.max_error is not None:
            from .api import compress_exact

            return compress_exact(image, args.max_error)
        if args.target_size is not None:
            result = codec.compress_to_size(image, args.target_size, effort=args.effort, progress=progress)
            if not result.met:
                raise CliError(f"{name}: cannot fit in {args.target_size:,} bytes: "
                               f"the smallest file (quality {MIN_QUALITY:g}) is {len(result.data):,} bytes")
            reached(result, f"{args.target_size:,} bytes")
            return result.data
        if args.target_bpp is not None:
            result = codec.compress_to_bpp(image, args.target_bpp, effort=args.effort, progress=progress)
            if not result.met:
                say(f"lic: warning: {name}: cannot reach {args.target_bpp:g} bpp; using quality "
                    f"{MIN_QUALITY:g} ({len(result.data) * 8 / (width * height):.4f} bpp)")
            else:
                reached(result, f"{args.target_bpp:g} bpp")
            return result.data
        if args.target_psnr is not None:
            result = codec.compress_to_psnr(image, args.target_psnr, effort=args.effort, progress=progress)
            if not result.met:
                say(f"lic: warning: {name}: cannot reach {args.target_psnr:g} dB; using quality "
                    f"{MAX_QUALITY:g} ({result.psnr:.2f} dB)")
            else:
                reached(result, f"{args.target_psnr:g} dB", psnr=True)
            return result.data
        return codec.compress(image, args.quality, effort=args.effort, progress=progress)  # None: the default
    finally:
        say("")


# -- decode ------------------------------------------------------------------------------------------

def cmd_decode(args) -> int:
    if args.output is None:
        out = STDIO if args.input == STDIO else str(Path(args.input).with_suffix(".png"))
    else:
        out = args.output
    if out != STDIO and os.path.isdir(out):
        raise CliError(f"{out}: is a directory (name the image file to write)")
    fmt = "PNG" if out == STDIO else DECODE_FORMATS.get(Path(out).suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(DECODE_FORMATS))
        raise CliError(f"{out}: unknown output extension {Path(out).suffix or '(none)'!r} (use {known})", 2)
    _check_output(out, args.force)
    _stdout_is_terminal(out)
    _check_writable(out)
    data = _read_input(args.input)
    try:
        container = bitstream.unpack(data)  # parsed once; a bad file is reported before the model loads
        check_pixels(container.header, args.max_pixels, "--max-pixels N")  # and one too large, at once
    except LicFormatError as e:
        raise CliError(f"{_shown(args.input)}: {e}") from None
    del data
    header = container.header
    try:
        if isinstance(header, bitstream.ResidualHeader):  # lossless or near-lossless: no weights needed
            from .api import decompress_exact

            img = decompress_exact(container, max_pixels=args.max_pixels)
        else:
            codec = _load_codec(args)
            size = f"{header.width}x{header.height}"
            with _coding_bar(_Console(), f"decoding {size}", "tile", least=2) as progress:
                img = codec.decompress(container, max_pixels=args.max_pixels, progress=progress)
    except LicFormatError as e:
        raise CliError(f"{_shown(args.input)}: {e}") from None
    img = _fit_format(img, fmt, out)
    with _atomic_output(out) as f:
        if isinstance(img, Image16):
            img.save(f, format=fmt)
            return 0
        options = {"icc_profile": img.info["icc_profile"]} if img.info.get("icc_profile") and fmt != "PPM" else {}
        if fmt == "JPEG":
            options["quality"] = 95
        if fmt == "WEBP":
            options["lossless"] = True  # the decoded pixels, exactly
        img.save(f, format=fmt, **options)
    return 0


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


# -- info ----------------------------------------------------------------------------------------------

def cmd_info(args) -> int:
    data = _read_input(args.input)
    try:
        header, streams, alpha = bitstream.unpack(data)
    except LicFormatError as e:
        raise CliError(f"{_shown(args.input)}: {e}") from None
    pixels = header.width * header.height
    exact = isinstance(header, bitstream.ResidualHeader)  # lossless or near-lossless: no quality, no model
    report = {
        "file": args.input, "width": header.width, "height": header.height,
        "channels": header.channels, "quality": None if exact else header.quality,
        "model_id": header.model_id, "model_hash": None if exact else header.model_hash.hex(),
        "bytes": len(data), "bpp": len(data) * 8 / pixels,
        "icc_bytes": len(header.icc) if header.icc else 0,
        "alpha_bytes": len(alpha) if alpha is not None else 0,
        "streams": len(streams),
    }
    if exact:
        report.update(bits=header.residual.bits, max_error=header.residual.max_error)
    if args.json:
        print(json.dumps(report))
    else:
        coder = (f"{header.residual.bits}-bit samples, max error {header.residual.max_error}, coder {header.model_id}"
                 if exact else f"quality {header.quality:g}, model {header.model_id} ({report['model_hash']})")
        print(f"{args.input}: {header.width}x{header.height} {header.channels}, {coder}, "
              f"{len(data):,} bytes, {report['bpp']:.4f} bpp"
              + (f", ICC {report['icc_bytes']:,} bytes" if header.icc else "")
              + (f", alpha {report['alpha_bytes']:,} bytes" if alpha is not None else ""))
    return 0


def cmd_demo(args) -> int:
    from .demo import run

    image = None
    if args.image is not None:  # opened here, once, for one-line errors about a bad file
        image = _open_image(args.image, _read_input(args.image))
    try:
        run(image, quality=args.quality, device=args.device, weights=args.weights, name=args.image)
    except FileNotFoundError as e:
        raise CliError(f"{e} (set --weights DIR or LIC_WEIGHTS)") from None
    return 0


# -- entry point -----------------------------------------------------------------------------------

COMMANDS = {"encode": cmd_encode, "decode": cmd_decode, "info": cmd_info, "demo": cmd_demo}


@contextmanager
def _terminating_signals():
    """SIGTERM and SIGHUP raise ``Terminated`` (as SIGINT raises KeyboardInterrupt), so the
    temporary file of an output being written is removed on the way out.  Restored after."""
    def terminate(signum, frame):
        for sig in TERMINATING:  # one is enough: let the unwinding finish
            signal.signal(sig, signal.SIG_IGN)
        raise Terminated(signum)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, terminate) for sig in TERMINATING}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    """Run ``lic``; returns the exit status (the console script exits with it).

    Without ``argv`` this is the process's entry point (the ``lic`` script, ``python -m codec``):
    once torch is loaded it ends the process itself, see ``_exit_now``.
    """
    try:
        with _terminating_signals():
            status = _main(argv)
    except Terminated as e:
        print(f"lic: error: terminated by {signal.Signals(e.signum).name}", file=sys.stderr)
        status = 128 + e.signum
    if argv is None and "torch" in sys.modules:
        _exit_now(status)
    return status


def _exit_now(status: int) -> None:
    """End the process without the interpreter's teardown, which with torch loaded costs about
    0.5 s (a fifth of a whole ``lic encode``) and has nothing left to do: every output is
    closed and renamed into place, and stdout and stderr are flushed here."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away, a closed stream
            status = status or 1
    os._exit(status)


def _main(argv: list[str] | None) -> int:
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help, --version: printed, done
            return e.code if isinstance(e.code, int) else 0
        if args.command is None:
            sys.stderr.write(parser.format_usage())
            print("lic: a command is needed: encode, decode, info or demo (lic --help; lic COMMAND --help)",
                  file=sys.stderr)
            return 2
        if getattr(args, "weights", None) and not os.path.isdir(args.weights):
            raise CliError(f"--weights {args.weights}: not a directory", 2)
        return COMMANDS[args.command](args)
    except CliError as e:
        print(f"lic: error: {e}", file=sys.stderr)
        return e.status
    except InputError as e:  # bad input (LicFormatError included): the reason is for the user
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
    except (OSError, MemoryError) as e:  # the system said no (disk full, no memory): not lic's bug
        if os.environ.get("LIC_DEBUG"):
            raise
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"lic: error: {message}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - a bug in lic (a plain ValueError included): one line
        if os.environ.get("LIC_DEBUG"):
            raise
        message = str(e).splitlines()[0] if str(e) else ""
        print(f"lic: internal error: {type(e).__name__}: {message} "
              "(please report; LIC_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
