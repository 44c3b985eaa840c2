"""``lic encode``: images to ``.lic`` files, one or a batch, at a quality or a target.

Every input is paired with its output and every output checked before any coding (``_jobs``),
so a bad command line or an unwritable folder answers at once.  Then each input is read, decoded,
coded and written in turn; in a batch (several inputs, or a folder) a bad file is reported and
skipped, and a one-line summary ends the run.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from bitstream import InputError

from .. import compress_exact
from ..quality import MAX_QUALITY, MIN_QUALITY
from .args import STDIO
from .console import Console, coding_bar
from .errors import RUNTIME, USAGE, CliError, reason
from .inputs import image_files, load_codec, open_image, read_input, shown
from .outputs import atomic_output, check_output, check_writable, make_parent, refuse_terminal

__all__ = ["cmd_encode"]


@dataclass
class _Job:
    input: str
    output: str
    skip: bool = False  # the output exists and --skip-existing keeps it


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
    jobs, batch = _jobs(args)
    todo = [job for job in jobs if not job.skip]
    console, tally = Console(), _Tally(skipped=len(jobs) - len(todo))
    # Each input is read and decoded once, just before it is coded, so a folder of large photos
    # never sits in memory at once.  The model loads after the first input that opens: a single
    # bad input (or a batch of them) is reported before torch loads, and answers quickly.
    codec, load_s = None, 0.0
    start = time.perf_counter()
    with console.progress(total=len(todo), unit="image", disable=not (batch and console.terminal())):
        for job in todo:
            try:
                data_in = read_input(job.input)
                size_in, image = len(data_in), open_image(job.input, data_in, exact=args.max_error is not None)
                del data_in  # the decoded image is what coding needs
                if codec is None and args.max_error is None:  # exact files need no weights
                    t = time.perf_counter()
                    codec = load_codec(args)
                    load_s = time.perf_counter() - t
                _encode_file(codec, job, image, size_in, args, console, tally, bars=not batch)
            except (CliError, InputError, OSError, MemoryError) as e:  # this file's fault: next one
                if not batch:
                    raise
                console.say(f"lic: error: {_about(job.input, e)}")
                tally.failed.append(shown(job.input))
            console.bar.update(1)
    print(tally.summary(time.perf_counter() - start - load_s), file=sys.stderr)
    return RUNTIME if tally.failed else 0


def _jobs(args) -> tuple[list[_Job], bool]:
    """(jobs, batch): every input with its output, the outputs checked (existing ones marked to
    skip with --skip-existing) and their folders probed; batch when several inputs or a folder
    were given (then a bad file is skipped, not fatal)."""
    if args.dir == STDIO:
        raise CliError("-d -: a folder cannot be stdout (use -o - for one input)", USAGE)
    if args.dir and os.path.exists(args.dir) and not os.path.isdir(args.dir):
        raise CliError(f"{args.dir}: not a directory")
    if args.output is not None and args.output != STDIO and os.path.isdir(args.output):
        raise CliError(f"{args.output}: is a directory (use -d {args.output} to write into it)")
    if args.output is not None and args.output != STDIO and Path(args.output).suffix.lower() != ".lic":
        raise CliError(f"{args.output}: encode writes .lic files "
                       f"(unknown extension {Path(args.output).suffix!r})", USAGE)
    jobs, batch = _pair(args)
    for job in jobs:
        if job.output != STDIO and os.path.isdir(job.output):
            raise CliError(f"{job.output}: is a directory (use -d DIR to write into a folder)")
        job.skip = check_output(job.output, args.force, args.skip_existing)
        refuse_terminal(job.output)
    checked = set()
    for job in jobs:  # one probe per output folder
        if not job.skip and job.output != STDIO and Path(job.output).parent not in checked:
            check_writable(job.output, make_parents=bool(args.dir))
            checked.add(Path(job.output).parent)
    return jobs, batch


def _pair(args) -> tuple[list[_Job], bool]:
    """Every input with its output, folders expanded (see ``_jobs``); two inputs for one output,
    or two for stdout, are refused."""
    jobs: list[_Job] = []
    batch = len(args.inputs) > 1
    for name in args.inputs:
        if name == STDIO:
            jobs.append(_Job(STDIO, args.output or STDIO))
        elif os.path.isdir(name):
            batch = True
            found = image_files(Path(name), args.recursive)
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
        raise CliError("stdin (-) can be read only once", USAGE)
    if args.output is not None and len(jobs) > 1:
        raise CliError("-o/--output takes one input; use -d DIR for several", USAGE)
    if sum(job.output == STDIO for job in jobs) > 1:
        raise CliError("only one output can go to stdout", USAGE)
    writers: dict[str, str] = {}
    for job in jobs:
        if job.output == STDIO:
            continue
        key = os.path.normcase(os.path.abspath(job.output))
        if key in writers:
            raise CliError(f"{writers[key]} and {job.input} would both write {job.output}", USAGE)
        writers[key] = job.input
    return jobs, batch


def _about(name: str, error: Exception) -> str:
    """The one-line reason ``name`` failed, named once."""
    why = str(error) if isinstance(error, CliError) else reason(error)
    named = shown(name)
    return why if isinstance(error, CliError) or why.startswith(f"{named}: ") else f"{named}: {why}"


def _encode_file(codec, job: _Job, image: Image.Image, size_in: int, args, console: Console, tally: _Tally,
                 bars: bool) -> None:
    """Code one image (``codec`` None: lossless or near-lossless, no model) and write its file;
    ``bars``: draw the image's own progress bar (a batch has one over the images instead)."""
    with warnings.catch_warnings(record=True) as caught:  # bit depth, frames: said once, by name
        warnings.simplefilter("always")
        with _bar(console, image.size, args) if bars and codec is not None else nullcontext() as progress:
            data = _encode_one(codec, image, job.input, args, console, caught, progress)
    if args.dir and job.output != STDIO:
        make_parent(job.output)  # -d folders appear only once there is something to put in them
    with atomic_output(job.output) as f:
        f.write(data)
    width, height = image.size
    tally.done += 1
    tally.bytes_in += size_in
    tally.bytes_out += len(data)
    tally.bpp_sum += len(data) * 8 / (width * height)


def _bar(console: Console, size: tuple[int, int], args):
    """One image's bar: over the refinement's steps at effort > 0, drawn once the encode has
    taken 2 s (a quick one never flickers one up); else over the transform's tiles, for an image
    large enough to be tiled.  A target search codes several times: a bare count then."""
    width, height = size
    search = args.target_size is not None or args.target_bpp is not None or args.target_psnr is not None
    if args.effort:
        return coding_bar(console, f"refining {width}x{height}", "step", known_total=not search, delay=2.0)
    return coding_bar(console, f"encoding {width}x{height}", "tile", known_total=not search, least=2)


def _encode_one(codec, image: Image.Image, name: str, args, console: Console, caught: list,
                progress=None) -> bytes:
    """Code one image at a quality or a target; after a target, say what it chose and reached.
    The image's warnings (``caught``) are said before anything about its result."""
    width, height = image.size
    name = shown(name)

    def say(line: str) -> None:
        for w in caught:
            console.say(f"lic: warning: {w.message}")
        caught.clear()
        if line:
            console.say(line)

    try:
        if args.max_error is not None:
            return compress_exact(image, args.max_error)
        if args.target_size is not None:
            result = codec.compress_to_size(image, args.target_size, effort=args.effort, progress=progress)
            if not result.met:
                raise CliError(f"{name}: cannot fit in {args.target_size:,} bytes: "
                               f"the smallest file (quality {MIN_QUALITY:g}) is {len(result.data):,} bytes")
            target = f"{args.target_size:,} bytes"
        elif args.target_bpp is not None:
            result = codec.compress_to_bpp(image, args.target_bpp, effort=args.effort, progress=progress)
            target = f"{args.target_bpp:g} bpp"
            closest = f"quality {MIN_QUALITY:g} ({len(result.data) * 8 / (width * height):.4f} bpp)"
        elif args.target_psnr is not None:
            result = codec.compress_to_psnr(image, args.target_psnr, effort=args.effort, progress=progress)
            target, closest = f"{args.target_psnr:g} dB", f"quality {MAX_QUALITY:g} ({result.psnr:.2f} dB)"
        else:
            return codec.compress(image, args.quality, effort=args.effort, progress=progress)  # None: the default
        if not result.met:  # the closest end, with a warning (an unreachable size is an error, above)
            say(f"lic: warning: {name}: cannot reach {target}; using {closest}")
            return result.data
        db = "" if result.psnr is None else f"{result.psnr:.2f} dB, "  # a PSNR target's PSNR
        say(f"lic: {name}: target {target} -> quality {result.quality:g}, {db}"
            f"{len(result.data):,} bytes, {len(result.data) * 8 / (width * height):.4f} bpp")
        return result.data
    finally:
        say("")
