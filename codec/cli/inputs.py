"""What ``lic`` reads: files and stdin, images, the images of a folder, and the model's weights.

Each input is read once and decoded once, and whatever is wrong with it is a one-line
``CliError`` that names it.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

from PIL import Image

import bitstream
from bitstream import InputError

from .. import open_image as decode_image
from ..images import Image16
from .args import STDIO
from .errors import USAGE, CliError, reason

__all__ = ["shown", "read_input", "open_image", "image_files", "load_codec"]


def shown(name: str) -> str:
    """How a message names the input ``name``."""
    return "stdin" if name == STDIO else name


def read_input(path: str) -> bytes:
    """The bytes of a file, or of stdin for ``-``; refused when there are none."""
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


def open_image(name: str, data: bytes, exact: bool = False) -> Image.Image | Image16:
    """The image in ``data``, decoded (the one time it is; a 16-bit colour file twice, for the exact
    modes, see ``codec.colour16``), with ``name`` for its warnings."""
    if bitstream.is_lic(data):
        raise CliError(f"{shown(name)}: is already a .lic file (decode it first)")
    try:
        return decode_image(io.BytesIO(data), name=shown(name), exact=exact)
    except Image.DecompressionBombError as e:
        raise CliError(f"{shown(name)}: {e}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise CliError(f"{shown(name)}: not an image Pillow can read ({reason(e)})") from None


def image_files(folder: Path, recursive: bool) -> list[Path]:
    """Images in ``folder`` (and its subfolders), sorted; hidden files and folders are skipped."""
    extensions = {ext for ext in Image.registered_extensions() if ext != ".lic"}
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        found += [Path(root) / f for f in sorted(files)
                  if not f.startswith(".") and Path(f).suffix.lower() in extensions and (Path(root) / f).is_file()]
    return found


def load_codec(args):
    """The model, loaded once per command, on the runtime the options ask for.

    Weights come from the user (``--weights``, ``LIC_WEIGHTS``), so whatever loading them raises
    is reported as one line about them; ``LIC_DEBUG=1`` shows the traceback instead.  Asking for
    what this install cannot run (``--effort`` above 0 or cuda without torch) is a usage error."""
    from .. import Codec

    try:
        return Codec(device=args.device, weights=args.weights, effort=getattr(args, "effort", 0),
                     runtime=args.runtime)
    except InputError as e:
        raise CliError(str(e), USAGE) from None
    except FileNotFoundError as e:
        if os.environ.get("LIC_DEBUG"):
            raise
        raise CliError(f"{e} (set --weights DIR or LIC_WEIGHTS)") from None
    except (RuntimeError, ValueError, OSError) as e:
        if os.environ.get("LIC_DEBUG"):
            raise
        raise CliError(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
