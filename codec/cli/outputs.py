"""What ``lic`` writes, safely: outputs are checked before any work and never left half-written.

- ``check_output``: an existing output is kept unless ``--force`` (or skipped, ``--skip-existing``);
- ``check_writable``: a probe file proves the output's folder writable, before a long encode;
- ``atomic_output``: the bytes go to a temporary file beside the target, renamed into place on
  success and removed on any failure (Ctrl-C and terminating signals included).
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .args import STDIO
from .errors import CliError

__all__ = ["check_output", "check_writable", "make_parent", "atomic_output", "refuse_terminal"]


def check_output(path: str, force: bool, skip_existing: bool | None = None) -> bool:
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


def refuse_terminal(path: str) -> None:
    """Binary data never goes to a terminal."""
    if path == STDIO and sys.stdout.isatty():
        raise CliError("refusing to write binary data to a terminal (redirect stdout or use -o)")


def check_writable(path: str, make_parents: bool = False) -> None:
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


def make_parent(path: str) -> None:
    """Create the folders ``path`` goes in."""
    parent = Path(path).parent
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise CliError(f"{parent}: cannot create directory: {e.strerror or e}") from None


@contextmanager
def atomic_output(path: str):
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
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; an output gets the usual permissions
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
