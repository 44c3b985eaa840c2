"""Pack a training set small enough to travel with one device call (64 MiB carry in all).

    python train/lab/device/pack_data.py [--data ../shared/data/train] [--out .devdata]

Each image is downscaled (area-averaging, which also removes most JPEG blocking) so that its short
side is at most ``--short`` and its long side at most ``--max-long`` (center crop), then re-encoded as
JPEG at ``--quality`` into ``OUT/shard-00``, ``OUT/shard-01``, ... each under ``--shard-mib``.  One
shard travels per call (``carry: [".devdata/shard-00"]``); with the defaults the 1,351 training
images fit one shard.  Kodak is refused (lic never trains on it).
"""

from __future__ import annotations

import argparse
import io
import shutil
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def pack(data: Path, out: Path, short: int, max_long: int, quality: int, shard_mib: float,
         max_images: int = 0) -> list[Path]:
    files = sorted(p for p in data.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if any("kodim" in p.name.lower() for p in files):
        raise SystemExit("refusing to pack Kodak: it is the evaluation set")
    if max_images:
        files = files[:max_images]
    if out.exists():
        shutil.rmtree(out)
    shards, size, count = [], 0, 0
    for path in files:
        with Image.open(path) as im:
            img = im.convert("RGB")
        w, h = img.size
        s = min(1.0, short / min(w, h))
        if s < 1:
            img = img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BOX)
        w, h = img.size
        cw, ch = min(w, max_long), min(h, max_long)
        left, top = (w - cw) // 2, (h - ch) // 2
        img = img.crop((left, top, left + cw, top + ch))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=quality, subsampling=0)
        data_bytes = buf.getvalue()
        if not shards or size + len(data_bytes) > shard_mib * 2**20:
            shards.append(out / f"shard-{len(shards):02d}")
            shards[-1].mkdir(parents=True)
            size = 0
        (shards[-1] / (path.stem + ".jpg")).write_bytes(data_bytes)
        size += len(data_bytes)
        count += 1
    for shard in shards:
        mib = sum(f.stat().st_size for f in shard.iterdir()) / 2**20
        print(f"{shard}: {len(list(shard.iterdir()))} images, {mib:.1f} MiB")
    print(f"{count} images packed into {len(shards)} shard(s)")
    return shards


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared/data/train")
    p.add_argument("--out", type=Path, default=REPO / ".devdata")
    p.add_argument("--short", type=int, default=256)
    p.add_argument("--max-long", type=int, default=384)
    p.add_argument("--quality", type=int, default=90)
    p.add_argument("--shard-mib", type=float, default=58.0)
    p.add_argument("--max-images", type=int, default=0)
    a = p.parse_args(argv)
    pack(a.data, a.out, a.short, a.max_long, a.quality, a.shard_mib, a.max_images)


if __name__ == "__main__":
    main()
