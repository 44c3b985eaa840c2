"""Trajectories of latent refinement, recorded once and replayed under any stopping rule.

``python -m benchmarks.effort_trace --out DIR`` runs the refinement of ``codec.refine`` at a fixed
number of steps (the cap) on each image and quality, with the hard-rounded cost evaluated every ``CHECK``
steps, and keeps for each of those steps k: the latents L_k and their hard-rounded cost; and for every step,
the exponential moving variance of the reconstruction (ES-EMV, ``codec.stopping``) for several α.
``python -m benchmarks.effort_replay --out DIR`` then plays every stopping rule (fixed steps, a plateau of the
cost, a plateau of the EMV; each with a patience) over those trajectories, codes the latents each rule keeps
as a real file, and prints BD-rates against effort 0 beside the CPU seconds each rule would have spent.

Why a replay is exact: at an equal cap, the step size and SGA's temperature follow the same schedule and
the Gumbel draws come from the same seeded generator whether or not a rule watches, so an early-stopped
run is a prefix of the fixed-step one.  Only the choice of the kept latents and the time change.  The time
of a rule is the measured CPU time of its descent steps and of its cost checks (``time.process_time``); the
CPU time of the rest of the encode (analysis, coding both files, reconstructing both) is reported beside it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bitstream.container import MODEL_HASH_SIZE
from codec.coding import output_to_rgb, pack_file, rgb_to_input
from codec.effort import RefineConfig
from codec.quality import rd_cost
from codec.refine import RefineStep, refine_latents
from codec.stopping import ema_variance

KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kodak"
ALPHAS = (0.05, 0.1, 0.2, 0.3, 0.5)
CHECK = 2  # steps between recorded hard-rounded costs: replays may check every 2, 4, 8, ... steps


def crop(path: Path, size: int | None) -> np.ndarray:
    """The image as (H, W, 3) uint8, cut to its central ``size`` x ``size`` square (None: whole)."""
    rgb = np.asarray(Image.open(path).convert("RGB"))
    if size is None:
        return rgb
    top, left = (rgb.shape[0] - size) // 2, (rgb.shape[1] - size) // 2
    return np.ascontiguousarray(rgb[top:top + size, left:left + size])


def image_names(images: str) -> list[str]:
    """``--images``: Kodak names separated by commas, or "all" (the 24)."""
    return sorted(p.stem for p in KODAK.glob("*.png")) if images == "all" else images.split(",")


class _Recorder:
    """An observer of ``refine_latents`` (``codec.refine.RefineStep``): keeps each check's hard cost and
    latents, each descent step's relaxed reconstruction, and the CPU time of the checks.

    A check's time runs from the end of what came before it (the previous descent step, which ends at
    ``progress()``, or the previous observation) to its observation, less this recorder's own time."""

    def __init__(self):
        self.hard, self.relaxed, self.latents, self.hard_time = [], [], [], 0.0
        self.mark = time.process_time()

    def progress(self) -> None:
        self.mark = time.process_time()

    def __call__(self, seen: RefineStep) -> None:
        if seen.hard_cost is not None:
            self.hard_time += time.process_time() - self.mark
            self.hard.append(seen.hard_cost)
            self.latents.append(seen.latents.detach().clone())
        if seen.reconstruction is not None:
            self.relaxed.append(seen.reconstruction.detach().clone())
        self.mark = time.process_time()


def real_cost(coder, y: np.ndarray, z: np.ndarray, rgb: np.ndarray, quality: float) -> dict:
    """Bits of the real file of latents ``y`` and ẑ ``z``, its PSNR, and its ``rd_cost``."""
    code = coder.code_latents(y, z)
    height, width = rgb.shape[:2]
    data = pack_file(coder, code, quality, width, height, "RGB", None, None, bytes(MODEL_HASH_SIZE))
    decoded = output_to_rgb(coder.reconstruct(code.y_hat, quality, (height, width))).astype(np.float64)
    se = float(((decoded - rgb) ** 2).sum())
    mse = se / rgb.size
    return {"bits": len(data) * 8, "psnr": 10 * np.log10(255**2 / mse),
            "cost": rd_cost(len(data) * 8, se / 3 / 255**2, quality)}


def record_one(coder, rgb: np.ndarray, quality: float, config: RefineConfig) -> dict:
    """One trajectory: per step its hard cost and latents; the EMV curves; the CPU seconds spent."""
    model = coder.transforms.model
    start = time.process_time()
    x_padded, y, z = coder.analyse(rgb_to_input(rgb), quality)
    analyse_time = time.process_time() - start
    features = torch.from_numpy(coder.entropy.features(z)).float()
    start = time.process_time()
    rec = _Recorder()
    refine_latents(model, torch.from_numpy(x_padded), rgb.shape[:2], torch.from_numpy(y), features, quality, config,
                   rec.progress, rec)
    loop_time = time.process_time() - start
    steps = config.steps
    assert len(rec.hard) == steps // CHECK + 1 and len(rec.relaxed) == steps, (len(rec.hard), len(rec.relaxed))
    start = time.process_time()
    base = real_cost(coder, y, z, rgb, quality)
    code_time = time.process_time() - start
    emv = {f"{a}": ema_variance(rec.relaxed, a) for a in ALPHAS}
    return {"hard": rec.hard, "emv": emv, "latents": torch.cat(rec.latents).numpy(), "z": z,
            "step_time": (loop_time - rec.hard_time) / steps, "check_time": rec.hard_time / len(rec.hard),
            "analyse_time": analyse_time, "code_time": code_time, "effort0": base}


def record(args) -> None:
    from codec.engines.runtime import load

    torch.set_num_threads(1)
    coder = load(None, "torch", "cpu").coder
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = RefineConfig(steps=args.cap, relaxation=args.relaxation, check_every=CHECK)
    names = image_names(args.images)
    # The first refinement in a process pays one-time costs (the optimiser's first construction imports
    # modules: about a second of CPU), which are not what a step or a check costs: pay them untimed.
    record_one(coder, crop(KODAK / f"{names[0]}.png", 32), 4.0,
               RefineConfig(steps=CHECK, relaxation="sga", check_every=CHECK))
    for name in names:
        rgb = crop(KODAK / f"{name}.png", args.crop)
        for q in (float(v) for v in args.qualities.split(",")):
            stem = out / f"{args.relaxation}{args.cap}-{name}-q{q:g}"
            if stem.with_suffix(".json").exists():
                continue
            run = record_one(coder, rgb, q, config)
            np.savez_compressed(stem.with_suffix(".npz"), latents=run.pop("latents"), z=run.pop("z"))
            stem.with_suffix(".json").write_text(json.dumps(run))
            print(f"{stem.name}: step {run['step_time']:.3f} s, check {run['check_time']:.3f} s, "
                  f"hard {run['hard'][0]:.0f} -> {min(run['hard']):.0f}", flush=True)


def arguments(description: str) -> argparse.Namespace:
    """The options of a recording, which its replay (``benchmarks.effort_replay``) takes again."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--out", required=True)
    p.add_argument("--images", default="kodim01,kodim05,kodim12,kodim23", help='Kodak names, or "all"')
    p.add_argument("--qualities", default="2,4,6,8")
    p.add_argument("--crop", type=int, default=192, help="central square of this side (0: whole image)")
    p.add_argument("--cap", type=int, default=40)
    p.add_argument("--relaxation", default="sga")
    args = p.parse_args()
    args.crop = args.crop or None
    return args


if __name__ == "__main__":
    record(arguments(__doc__.splitlines()[0]))
