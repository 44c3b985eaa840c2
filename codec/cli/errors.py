"""The failures ``lic`` reports: one line each, with the exit status it ends with.

``CliError`` is raised wherever the command finds something wrong; the process entry
(``codec.cli.entry``) prints it as ``lic: error: ...`` and exits with its status.
"""

from __future__ import annotations

import re

from PIL import UnidentifiedImageError

__all__ = ["CliError", "USAGE", "RUNTIME", "reason"]

# Exit statuses: a bad command line, and anything that goes wrong while running.
USAGE, RUNTIME = 2, 1


class CliError(Exception):
    """A failure to report as one line; ``status`` 1 (runtime) or 2 (usage)."""

    def __init__(self, message: str, status: int = RUNTIME):
        super().__init__(message)
        self.status = status


def reason(error: BaseException) -> str:
    """One line of why Pillow refused a file, without Python object reprs."""
    if isinstance(error, UnidentifiedImageError):
        return "unknown format"
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return re.sub(r"<[\w.]+ object at 0x[0-9a-fA-F]+>", "the data", text)
