"""Pack the training photos small enough to travel with one device call, beside the checkout.

    python -m train.lab.device.pack_data [--data ../shared/data/train] [--out .devdata]

A device call carries the working tree and its carried folders, 64 MiB in all.  Each photo is
downscaled (area averaging, which also washes out most JPEG blocking) so that its short side is at
most ``--short`` and its long side at most ``--max-long`` (center crop), and re-encoded as 4:4:4 JPEG
into ``OUT``; the quality steps down from ``--quality`` until the set fits what the checkout and the
wheels leave of the budget.  The gate's photos are left out (never trained on); Kodak is refused.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
from pathlib import Path

from PIL import Image

from ...data import list_images
from ..paths import DATA, GATE_LIST, ROOT

CARRY_MIB = 64.0  # what one device call carries, working tree included
MARGIN_MIB = 2.0


def checkout_mib(root: Path = ROOT) -> float:
    """Size of the files that travel with every call: tracked and untracked-but-not-ignored."""
    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, check=True,
                           capture_output=True).stdout.decode().split("\0")
    return sum((root / n).stat().st_size for n in names if n and (root / n).is_file()) / 2**20


def shrink(path: Path, short: int, max_long: int) -> Image.Image:
    with Image.open(path) as im:
        img = im.convert("RGB")
    w, h = img.size
    s = min(1.0, short / min(w, h))
    if s < 1:
        img = img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BOX)
    w, h = img.size
    cw, ch = min(w, max_long), min(h, max_long)
    left, top = (w - cw) // 2, (h - ch) // 2
    return img.crop((left, top, left + cw, top + ch))


def pack(data: Path, out: Path, short: int, max_long: int, quality: int, budget_mib: float) -> int:
    """Write the packed set into ``out``; returns the JPEG quality that fits ``budget_mib``."""
    gate = set(GATE_LIST.read_text().split())
    files = [p for p in list_images(data) if p.name not in gate]
    images = [shrink(p, short, max_long) for p in files]
    names = [p.stem + ".jpg" for p in files]
    for q in range(quality, 40, -5):
        blobs = []
        for img in images:
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=q, subsampling=0)
            blobs.append(buf.getvalue())
        mib = sum(map(len, blobs)) / 2**20
        if mib <= budget_mib:
            break
    else:
        raise SystemExit(f"pack_data: {len(images)} photos do not fit {budget_mib:.1f} MiB even at JPEG q {q}")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name, blob in zip(names, blobs):
        (out / name).write_bytes(blob)
    print(f"{out}: {len(blobs)} photos, JPEG q {q}, {mib:.1f} MiB of a {budget_mib:.1f} MiB budget")
    return q


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m train.lab.device.pack_data", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--out", type=Path, default=ROOT / ".devdata")
    p.add_argument("--short", type=int, default=256)
    p.add_argument("--max-long", type=int, default=384)
    p.add_argument("--quality", type=int, default=90)
    p.add_argument("--wheels", type=Path, default=ROOT / ".whl", help="carried beside the data")
    a = p.parse_args(argv)
    wheels = sum(f.stat().st_size for f in a.wheels.glob("*.whl")) / 2**20 if a.wheels.is_dir() else 0.0
    budget = CARRY_MIB - MARGIN_MIB - checkout_mib() - wheels
    pack(a.data, a.out, a.short, a.max_long, a.quality, budget)


if __name__ == "__main__":
    main()
