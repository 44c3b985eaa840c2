"""Measure codecs over an image folder and write one CompressAI-format JSON per codec.

For each codec, quality and image: encode and decode timed with ``median_time`` (one warm-up run, then the median
of ``repeats`` runs), then bpp, RGB PSNR and MS-SSIM of the decoded image. Each quality point of the JSON is the
mean over images of these per-image values, as in CompressAI's results files; beside them, under ``images``, each
image's own values, so that medians (a speed table's) can be taken from a sweep.
"""

from __future__ import annotations

import json
import statistics
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from PIL import Image

from benchmarks import metrics
from benchmarks.codecs import Codec
from benchmarks.registry import get_codec

__all__ = ["Measurement", "list_images", "measure", "sweep_codec", "results_json", "write_json"]

RESULT_KEYS = ("bpp", "psnr-rgb", "ms-ssim", "ms-ssim-db", "encoding_time", "decoding_time")


@dataclass(frozen=True)
class Measurement:
    """One image coded at one quality. Times in seconds; ``stage_times`` is the codec's optional breakdown."""

    image: str
    quality: float
    bytes: int
    bpp: float
    psnr: float
    ms_ssim: float
    encoding_time: float
    decoding_time: float
    stage_times: tuple[tuple[str, float], ...] = ()


def list_images(folder: Path, limit: int | None = None) -> list[Path]:
    """PNG files of ``folder`` in name order, the first ``limit`` of them if given."""
    images = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() == ".png")
    if not images:
        raise FileNotFoundError(f"no PNG images in {folder}")
    return images[:limit] if limit else images


def measure(codec: Codec, image: Path, quality: float, repeats: int = 3, warmup: int = 1) -> Measurement:
    """Code ``image`` ``warmup + repeats`` times (median time of the last ``repeats``) and measure it."""
    img = Image.open(image).convert("RGB")
    data, enc_time = metrics.median_time(lambda: codec.encode(img, quality), repeats, warmup)
    stages = {f"encode_{k}": v for k, v in codec.timings().items()}
    decoded, dec_time = metrics.median_time(lambda: codec.decode(data), repeats, warmup)
    stages.update({f"decode_{k}": v for k, v in codec.timings().items()})
    if decoded.size != img.size:
        raise RuntimeError(f"{codec.name} decoded {image.name} to {decoded.size}, expected {img.size}")
    size = codec.file_size(data)
    return Measurement(
        image=image.name, quality=float(quality), bytes=size, bpp=metrics.bpp(size, *img.size),
        psnr=metrics.psnr(img, decoded), ms_ssim=metrics.ms_ssim(img, decoded),
        encoding_time=enc_time, decoding_time=dec_time, stage_times=tuple(sorted(stages.items())))


_WORKER_CODECS: dict[str, Codec] = {}


def _measure_task(task: tuple[str, dict, str, float, int, int]) -> Measurement:
    name, lic_options, image, quality, repeats, warmup = task
    if name not in _WORKER_CODECS:
        _WORKER_CODECS[name] = get_codec(name, lic_options)
    return measure(_WORKER_CODECS[name], Path(image), quality, repeats, warmup)


def sweep_codec(codec: Codec, images: Sequence[Path], qualities: Sequence[float], repeats: int = 3,
                jobs: int = 1, lic_options: dict | None = None, warmup: int = 1) -> Iterator[Measurement]:
    """Yield one ``Measurement`` per (quality, image). ``jobs > 1`` codes in worker processes (faster, but the
    times then share the CPU; timing runs should use ``jobs=1``)."""
    tasks = [(codec.name, lic_options or {}, str(img), q, repeats, warmup) for q in qualities for img in images]
    if jobs <= 1:
        for _, _, img, q, rep, warm in tasks:
            yield measure(codec, Path(img), q, rep, warm)
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        yield from pool.map(_measure_task, tasks)


def results_json(codec: Codec, measurements: Iterable[Measurement], qualities: Sequence[float]) -> dict:
    """CompressAI results format: per quality, the mean over images of each per-image value; beside it the
    codec's ``provenance()`` (lic: its weights' fingerprint)."""
    by_quality: dict[float, list[Measurement]] = {float(q): [] for q in qualities}
    measurements = list(measurements)
    for m in measurements:
        by_quality[m.quality].append(m)
    results: dict[str, list] = {key: [] for key in RESULT_KEYS}
    results["quality"] = []
    stage_names = sorted({k for ms in by_quality.values() for m in ms for k, _ in m.stage_times})
    for name in stage_names:
        results[f"{name}_time"] = []
    n_images = {len(ms) for ms in by_quality.values()}
    for q, ms in by_quality.items():
        if not ms:
            continue
        results["quality"].append(q)
        results["bpp"].append(statistics.fmean(m.bpp for m in ms))
        results["psnr-rgb"].append(statistics.fmean(m.psnr for m in ms))
        results["ms-ssim"].append(statistics.fmean(m.ms_ssim for m in ms))
        results["ms-ssim-db"].append(statistics.fmean(metrics.ms_ssim_db(m.ms_ssim) for m in ms))
        results["encoding_time"].append(statistics.fmean(m.encoding_time for m in ms))
        results["decoding_time"].append(statistics.fmean(m.decoding_time for m in ms))
        for name in stage_names:
            results[f"{name}_time"].append(statistics.fmean(dict(m.stage_times).get(name, 0.0) for m in ms))
    images = [{"image": m.image, "quality": m.quality, "bytes": m.bytes, "psnr-rgb": m.psnr,
               "encoding_time": m.encoding_time, "decoding_time": m.decoding_time} for m in measurements]
    return {"name": codec.name, "description": codec.description, "n_images": max(n_images, default=0),
            **codec.provenance(), "results": results, "images": images}


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
