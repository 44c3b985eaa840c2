"""``python -m codec.demo [IMAGE]``: the ``lic demo`` command (``codec.cli.demo``), options included.

Round trips one image and reports size, bits per pixel, PSNR and times: Kodak kodim23 from
``../shared/data/kodak`` beside the repository when present, else a built-in synthetic sample.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    from .cli import main as lic

    return lic(["demo", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
