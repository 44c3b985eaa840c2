"""Speed table: per codec, at its mid quality (about 0.5–1 bpp on Kodak), the median encode and decode time per
image and the peak resident memory.

Each codec runs in its own fresh process, so the peak RSS (``getrusage``'s ``ru_maxrss``) is that codec's alone:
the Python process (interpreter, numpy and Pillow included) and, for the codec
that runs command-line tools, the largest of them (x265 or ffmpeg; ``ru_maxrss`` of children, which Linux keeps
across ``exec``, so it cannot read below the size of the Python process that forked them). lic's
MAC/pixel comes from ``benchmarks/complexity.py``.
"""

from __future__ import annotations

import multiprocessing
import resource
import statistics
from pathlib import Path
from typing import Sequence

from PIL import Image

from benchmarks import metrics
from benchmarks.registry import get_codec

__all__ = ["speed_row", "speed_table", "speed_markdown"]


def speed_row(name: str, images: Sequence[str], repeats: int, lic_options: dict, warmup: int = 1) -> dict:
    """Median over images of the per-image median times, mean bpp and PSNR, peak RSS in MiB. Runs in a fresh
    child process; computes no MS-SSIM, so torch is loaded only by codecs that need it (lic)."""
    codec = get_codec(name, lic_options)
    rows = []
    for path in images:
        img = Image.open(path).convert("RGB")
        data, enc = metrics.median_time(lambda: codec.encode(img, codec.mid_quality), repeats, warmup)
        decoded, dec = metrics.median_time(lambda: codec.decode(data), repeats, warmup)
        rows.append((metrics.bpp(codec.file_size(data), *img.size), metrics.psnr(img, decoded), enc, dec))
    bpps, psnrs, encs, decs = zip(*rows)
    return {"codec": name, "quality": codec.mid_quality, "bpp": statistics.fmean(bpps),
            "psnr": statistics.fmean(psnrs), "encode_s": statistics.median(encs),
            "decode_s": statistics.median(decs),
            "peak_rss_mib": _own_peak_rss_mib(),
            "peak_child_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def _own_peak_rss_mib() -> float:
    """This process's peak RSS. ``VmHWM`` belongs to the current memory image, whereas ``ru_maxrss`` survives
    ``exec`` on Linux and would report the parent's peak for a spawned worker."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def speed_table(names: Sequence[str], images: Sequence[str], repeats: int, lic_options: dict,
                warmup: int = 1) -> list[dict]:
    ctx = multiprocessing.get_context("spawn")
    rows = []
    for name in names:
        with ctx.Pool(1) as pool:
            rows.append(pool.apply(speed_row, (name, list(images), repeats, lic_options, warmup)))
    return rows


def speed_markdown(rows: Sequence[dict], skipped: dict[str, str], n_images: int) -> str:
    macs = {}
    if any(r["codec"] == "lic" for r in rows):
        from benchmarks.complexity import mac_per_pixel  # torch and the model: only when lic was timed

        macs = mac_per_pixel()
    lines = [f"# Speed (median per image over {n_images} images, 1 process)", "",
             "| codec | quality | bpp | PSNR [dB] | encode [s] | decode [s] | peak RSS [MiB] (process / tool) "
             "| MAC/pixel |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mac = "—"
        tool = f"{r['peak_child_rss_mib']:.0f}" if r["codec"] == "hevc444" else "—"
        if r["codec"] == "lic":
            mac = ", ".join(f"{k}: {macs[k]:,.0f}" for k in ("encoder", "decoder", "entropy_parameters"))
        lines.append(f"| {r['codec']} | {r['quality']:g} | {r['bpp']:.3f} | {r['psnr']:.2f} | {r['encode_s']:.3f} "
                     f"| {r['decode_s']:.3f} | {r['peak_rss_mib']:.0f} / {tool} | {mac} |")
    if skipped:
        lines += ["", "Skipped:"] + [f"- {name}: {why}" for name, why in skipped.items()]
    return "\n".join(lines) + "\n"
