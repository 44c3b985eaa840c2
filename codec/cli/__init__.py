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
``bitstream``.  It reads, decodes or parses each input once.  Its parts, one concern each:

- ``args``: the parser and the values written on the command line;
- ``inputs``, ``outputs``: files, images and weights read once; outputs checked before any work
  and written atomically;
- ``console``: stderr lines and progress bars;
- ``encode``, ``decode``, ``info``, ``demo``: the commands;
- ``errors``: the one-line failure and its exit status; ``entry``: the process (signals, every
  failure mapped to one line).
"""

from .args import build_parser
from .entry import main
from .errors import CliError

__all__ = ["main", "build_parser", "CliError"]
