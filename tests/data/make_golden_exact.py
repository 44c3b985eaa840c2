"""Write the golden files of the residual coder of new files, ``bitstream.RESIDUAL_CODER``, or of the
coder named (run only for a new coder id: files written before must keep decoding).

    python tests/data/make_golden_exact.py [lic-exact-5]

``golden-<coder>-rgb.lic``: ``sample.png`` (RGB, 8-bit), lossless; ``golden-<coder>-16.lic``: the
16-bit gray image of ``gray16()`` at max error 1; ``<coder>`` is ``exact`` for ``lic-exact-1`` (whose
files stay, to be decoded), ``exact2`` for ``lic-exact-2`` (likewise), ``exact3`` for ``lic-exact-3``, ``exact5`` for ``lic-exact-5`` (an
API-selectable coder, pinned all the same).
None needs model weights.
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import codec  # noqa: E402

HERE = Path(__file__).parent


def gray16() -> np.ndarray:
    """A 16-bit gray test image made from sample.png: G * 251 plus a fine pattern."""
    g = np.asarray(Image.open(HERE / "sample.png").convert("RGB"))[..., 1].astype(np.uint32)
    y, x = np.mgrid[0:g.shape[0], 0:g.shape[1]]
    return (g * 251 + (x * y) % 97).astype(np.uint16)


def names(coder: str) -> tuple[str, str]:
    """The golden files (RGB, 16-bit gray) of the residual coder ``coder``."""
    stem = "exact" if coder == "lic-exact-1" else coder.removeprefix("lic-").replace("-", "")
    return f"golden-{stem}-rgb.lic", f"golden-{stem}-16.lic"


def main() -> None:
    from bitstream import RESIDUAL_CODER
    from codec.images import to_exact
    from codec.lossless.near_lossless import encode_exact

    coder = sys.argv[1] if len(sys.argv) > 1 else RESIDUAL_CODER
    rgb = Image.open(HERE / "sample.png").convert("RGB")
    files = (encode_exact(to_exact(rgb), 0, coder=coder), encode_exact(to_exact(gray16()), 1, coder=coder))
    for name, data in zip(names(coder), files):
        (HERE / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
