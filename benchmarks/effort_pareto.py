"""``python -m benchmarks.effort_pareto``: issue 25's Pareto table from the sweeps' per-image records.

    python -m benchmarks.effort_pareto 0=runs/effort-sweep/lic.json 1=runs/effort-sweep/lic-effort1.json \
        3=runs/effort3-sweep/lic-effort3.json+runs/effort3b-sweep/lic-effort3.json [--split 2:1:5]

Each ``EFFORT=JSON[+JSON...]`` names the sweep JSONs of one effort (``sweep.results_json``'s ``images``; several
sweeps of one effort over other images are joined).  For the images every effort has, and again over all the
images effort 0 has, it prints each effort's BD-rate against effort 0 of the mean curves (bpp and PSNR averaged
per quality over those images), and its median and mean encode time per point.  ``--split A:B:Q`` adds a level
replayed from the records: effort A's files below quality Q and effort B's at Q and above (the files such a
level writes are exactly these: the refinement is seeded).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.bd import bd_rate
from benchmarks.effort_trace import KODAK

__all__ = ["load_records", "curve", "pareto_rows", "main"]


def load_records(paths: str) -> list[dict]:
    """One effort's per-image records from ``a.json+b.json``."""
    return [m for path in paths.split("+") for m in json.loads(Path(path).read_text())["images"]]


def curve(records: list[dict], names: set[str], pixels: dict[str, int]) -> tuple[list[float], list[float]]:
    """Mean bpp and PSNR per quality over the images ``names`` (each must be there at every quality)."""
    bpp, psnr = [], []
    for q in sorted({m["quality"] for m in records}):
        ms = [m for m in records if m["quality"] == q and m["image"] in names]
        if len(ms) != len(names):
            raise ValueError(f"quality {q}: {len(ms)} of the {len(names)} images")
        bpp.append(float(np.mean([m["bytes"] * 8 / pixels[m["image"]] for m in ms])))
        psnr.append(float(np.mean([m["psnr-rgb"] for m in ms])))
    return bpp, psnr


def _images_at_every_quality(records: list[dict]) -> set[str]:
    qualities = {m["quality"] for m in records}
    return set.intersection(*({m["image"] for m in records if m["quality"] == q} for q in qualities))


def pareto_rows(runs: dict[str, list[dict]], names: set[str], pixels: dict[str, int]) -> list[str]:
    """A Markdown row per effort that has every image of ``names``."""
    base = curve(runs["0"], names, pixels)
    rows = []
    for effort, records in runs.items():
        if not names <= _images_at_every_quality(records):
            continue
        mine = [m for m in records if m["image"] in names]
        bd = "—" if effort == "0" else f"{bd_rate(*base, *curve(mine, names, pixels)):+.2f} %"
        times = [m["encoding_time"] for m in mine]
        rows.append(f"| {effort} | {len(names)} | {bd} | {np.median(times):.2f} s | {np.mean(times):.2f} s |")
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", metavar="EFFORT=JSON[+JSON...]")
    p.add_argument("--images", type=Path, default=KODAK, help="the sweeps' image folder (for pixel counts)")
    p.add_argument("--split", metavar="A:B:Q", help="replay effort A below quality Q and effort B from Q on")
    args = p.parse_args(argv)
    runs = dict(arg.split("=", 1) for arg in args.runs)
    if "0" not in runs:
        p.error("effort 0's JSON is needed (0=...)")
    runs = {effort: load_records(paths) for effort, paths in runs.items()}
    if args.split:
        below, above, q = args.split.split(":")
        runs[f"{below} below q {q}, {above} from it"] = (
            [m for m in runs[below] if m["quality"] < float(q)] + [m for m in runs[above] if m["quality"] >= float(q)])
    every = {m["image"] for m in runs["0"]}
    pixels = {name: int(np.prod(Image.open(args.images / name).size)) for name in every}
    common = set.intersection(*(_images_at_every_quality(records) for records in runs.values()))
    header = ["| effort | images | BD-rate vs effort 0 | median encode | mean encode |", "|---|---|---|---|---|"]
    for title, names in (("every image of effort 0", every), ("the images every effort has", common)):
        print(f"\n{title} ({len(names)}):\n")
        print("\n".join(header + pareto_rows(runs, names, pixels)))


if __name__ == "__main__":
    main()
