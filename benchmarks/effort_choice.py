"""Refinement budgets, and whether the one-pass file can still win, measured on real files.

``python -m benchmarks.effort_choice --out FILE --configs ste3,ste6,e2`` refines each image and quality under
each budget (``steN``: N straight-through steps at effort 1's step size; ``sgaN``: N SGA steps; ``eK``:
effort K's budget; options in ``budget``), and for the refined latents and the one-pass ones records, one JSON line per point:

- the real file's bits and the squared error of its decoded samples (the decoder's float32 g_s), so its
  real cost ``rd_cost``; and
- the refinement's own view of the same two latents: the sum over its tiles of the hard-rounded cost at
  the tile's start (the one-pass latents) and the least it found (bf16 g_s where native, the model's rate);
- the CPU seconds (``time.process_time``, one torch thread) of the analysis, the refinement, and coding and
  scoring one file.

``--report`` reads the lines back and prints, per budget, the BD-rate against effort 0 of the mean curves
(bpp and PSNR averaged per quality) when the encoder keeps the cheaper real file (today's rule), when it
keeps the refined file unscored, and when it scores only where the refinement's own gain is below a margin;
with the points where the one-pass file really was cheaper and the refinement's gain at each.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from benchmarks.bd import bd_rate
from benchmarks.effort_trace import KODAK, crop, image_names
from bitstream.container import MODEL_HASH_SIZE
from codec.coding import output_to_rgb, pack_file, rgb_to_input
from codec.effort import RefineConfig, effort_config
from codec.quality import rd_cost
from codec.refine import RefineStep, refine_latents

MARGINS = (0.0, 0.001, 0.002, 0.005, 0.01)


def budget(name: str) -> RefineConfig:
    """``steN``, ``sgaN`` or ``eK`` (see the module docstring), then optionally ``-ngd`` or ``-adam`` (the
    update: normalised gradient descent or Adam), ``-lrX`` (the step size at quality 1), ``-pN`` and ``-cN``
    (patience and check interval), ``-tauA:B`` (SGA's temperature from A to B): ``ste5-ngd-lr0.02``.  Phases
    join with ``+`` (``RefineConfig.then``): ``ste5-ngd+sga100-p8``."""
    first, *rest = name.split("+")
    base, *options = first.split("-")
    if base.startswith("e"):
        config = effort_config(int(base[1:]))
    else:
        relaxation, steps = base[:3], int(base[3:])
        config = RefineConfig(steps=steps, relaxation=relaxation, **({"check_every": 8} if relaxation == "sga" else {}))
    for option in options:
        if option in ("adam", "ngd"):
            config = replace(config, optimizer=option)
        elif option.startswith("tau"):
            start, end = option[3:].split(":")
            config = replace(config, tau_start=float(start), tau_end=float(end))
        else:
            field = {"lr": "lr", "p": "patience", "c": "check_every"}[option.rstrip("0123456789.")]
            value = option[len(field if field == "lr" else field[0]):]
            config = replace(config, **{field: float(value) if field == "lr" else int(value)})
    return replace(config, then=budget("+".join(rest))) if rest else config


class TileCosts:
    """An observer of ``refine_latents``: each tile's first hard-rounded cost and its least, and the descent
    steps run (their relaxed forward passes)."""

    def __init__(self):
        self.start, self.best, self.steps = {}, {}, 0

    def __call__(self, seen: RefineStep) -> None:
        self.steps += seen.reconstruction is not None
        if seen.hard_cost is not None:
            self.start.setdefault(seen.tile, seen.hard_cost)
            self.best[seen.tile] = min(self.best.get(seen.tile, np.inf), seen.hard_cost)


def scored(coder, y: np.ndarray, z: np.ndarray, rgb: np.ndarray, quality: float) -> dict:
    """The real file of latents ``y``: bits, squared error, cost; CPU seconds to code it and to decode it."""
    height, width = rgb.shape[:2]
    start = time.process_time()
    code = coder.code_latents(y, z)
    data = pack_file(coder, code, quality, width, height, "RGB", None, None, bytes(MODEL_HASH_SIZE))
    coded = time.process_time()
    decoded = output_to_rgb(coder.reconstruct(code.y_hat, quality, (height, width))).astype(np.float64)
    se = float(((decoded - rgb) ** 2).sum())
    return {"bits": len(data) * 8, "se": se, "cost": rd_cost(len(data) * 8, se / 3 / 255**2, quality),
            "code_s": coded - start, "score_s": time.process_time() - coded}


def subset_arguments(p: argparse.ArgumentParser, images_help: str) -> None:
    """The options that choose the measured points: images, qualities and the crop."""
    p.add_argument("--images", default="kodim01,kodim05,kodim12,kodim23", help=images_help)
    p.add_argument("--qualities", default="2,4,6,8")
    p.add_argument("--crop", type=int, default=192, help="central square of this side (0: whole image)")


def parse_subset(p: argparse.ArgumentParser) -> argparse.Namespace:
    """``p``'s arguments, with a crop of 0 read as the whole image (None)."""
    args = p.parse_args()
    args.crop = args.crop or None
    return args


def start_run(out: Path, key: str):
    """The shipped model on the torch runtime at one thread, and the (image, quality, ``key``) rows ``out``
    holds already (a run resumes where it stopped)."""
    from codec.engines.runtime import load

    torch.set_num_threads(1)
    coder = load(None, "torch", "cpu").coder
    done = {(r["image"], r["quality"], r[key]) for r in map(json.loads, out.read_text().splitlines())} \
        if out.exists() else set()
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # the first construction imports modules: untimed
    return coder, done


def measure(args) -> None:
    out = Path(args.out)
    coder, done = start_run(out, "config")
    model = coder.transforms.model
    for image in image_names(args.images):
        path = Path(image) if Path(image).suffix else KODAK / f"{image}.png"
        name = path.stem
        rgb = crop(path, args.crop)
        for q in (float(v) for v in args.qualities.split(",")):
            todo = [c for c in args.configs.split(",") if (name, q, c) not in done]
            if not todo:
                continue
            start = time.process_time()
            x_padded, y, z = coder.analyse(rgb_to_input(rgb), q)
            features = torch.from_numpy(coder.entropy.features(z)).float()
            analyse_s = time.process_time() - start
            base = scored(coder, y, z, rgb, q)
            for config_name in todo:
                costs = TileCosts()
                start = time.process_time()
                refined = refine_latents(model, torch.from_numpy(x_padded), rgb.shape[:2], torch.from_numpy(y),
                                         features, q, budget(config_name), observer=costs).numpy()
                refine_s = time.process_time() - start
                line = {"image": name, "quality": q, "config": config_name, "pixels": rgb.shape[0] * rgb.shape[1],
                        "analyse_s": analyse_s, "refine_s": refine_s, "steps": costs.steps,
                        "same": bool(np.array_equal(refined, y)),
                        "model_start": sum(costs.start.values()), "model_best": sum(costs.best.values()),
                        "effort0": base, "refined": scored(coder, refined, z, rgb, q)}
                with out.open("a") as f:
                    f.write(json.dumps(line) + "\n")
                print(f"{name} q{q:g} {config_name}: refine {refine_s:.2f} s, model gain "
                      f"{1 - line['model_best'] / line['model_start']:.4f}, real gain "
                      f"{1 - line['refined']['cost'] / base['cost']:.4f}", flush=True)


def _psnr(file: dict, pixels: int) -> float:
    return 10 * np.log10(255**2 / (file["se"] / (3 * pixels)))


def report(args) -> None:
    rows = [json.loads(line) for line in Path(args.out).read_text().splitlines()]
    by_config = defaultdict(list)
    for r in rows:
        by_config[r["config"]].append(r)
    lines = ["| budget | BD-rate vs effort 0: cheaper real file / refined unscored / scored below margin m | "
             "refine CPU s | mean steps | rest of encode CPU s: both scored / one file | one-pass file cheaper at (model gain) |",
             "|---|---|---|---|---|---|"]
    for config, got in by_config.items():
        qualities = sorted({r["quality"] for r in got})

        def curve(pick):
            rate, psnr = [], []
            for q in qualities:
                files = [(pick(r), r["pixels"]) for r in got if r["quality"] == q]
                rate.append(float(np.mean([f["bits"] / p for f, p in files])))
                psnr.append(float(np.mean([_psnr(f, p) for f, p in files])))
            return rate, psnr

        anchor = curve(lambda r: r["effort0"])
        gain = {id(r): 1 - r["model_best"] / r["model_start"] for r in got}

        def rule(margin):
            return lambda r: (r["effort0"] if r["same"] else r["refined"]) if gain[id(r)] >= margin and margin >= 0 \
                else min(r["effort0"], r["refined"], key=lambda f: f["cost"])

        cheaper = curve(rule(-1))
        unscored = curve(rule(0.0))
        margins = " / ".join(f"m {m:g}: {bd_rate(*anchor, *curve(rule(m))):+.2f} %" for m in MARGINS[1:])
        losses = [f"{r['image']} q{r['quality']:g} ({100 * gain[id(r)]:.2f} %, real {100 * (1 - r['refined']['cost'] / r['effort0']['cost']):+.2f} %)"
                  for r in got if r["refined"]["cost"] > r["effort0"]["cost"]]
        both = np.mean([r["analyse_s"] + r["effort0"]["code_s"] + r["refined"]["code_s"] + r["effort0"]["score_s"]
                        + r["refined"]["score_s"] for r in got])
        one = np.mean([r["analyse_s"] + r["refined"]["code_s"] for r in got])
        steps = f"{np.mean([r['steps'] for r in got]):.1f}" if all("steps" in r for r in got) else "-"
        lines.append(f"| {config} | {bd_rate(*anchor, *cheaper):+.2f} % / {bd_rate(*anchor, *unscored):+.2f} % / "
                     f"{margins} | {np.mean([r['refine_s'] for r in got]):.2f} | {steps} | {both:.2f} / {one:.2f} | "
                     f"{', '.join(losses) or 'none'} |")
    print("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="JSON lines, appended to (points already there are skipped)")
    p.add_argument("--configs", default="e1")
    subset_arguments(p, 'Kodak names, "all" (the 24), or paths of other images')
    p.add_argument("--report", action="store_true", help="read --out and print the table")
    args = parse_subset(p)
    report(args) if args.report else measure(args)


if __name__ == "__main__":
    main()
