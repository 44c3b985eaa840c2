"""Where a refined encode's CPU time goes: one refinement step split into its parts, and the rest of the encode.

``python -m benchmarks.effort_profile --images kodim23 --qualities 4`` loads the shipped model on the torch
runtime (one thread) and, on the first refinement window of each image (a whole Kodak image is one window),
times by CPU time (``time.process_time``, the best of ``--reps`` runs after one warm-up) each part of what
``codec.refine`` computes:

- the rate R(⌊y⌉ | ẑ) of the slice networks (``LicModel.rate``), forward, and forward + backward;
- g_s (``LicModel.synthesise``) in bf16 autocast and in float32, forward, and forward + backward;
- SGA's relaxed rounding (``refine.sga_round``) on the window's latents;
- a whole STE step and a whole SGA step (``refine._tile_cost``, backward, Adam), and a hard-rounded check;

and the parts of ``codec.coding._encode`` around the refinement: the analysis (g_a, h_a), the exact
entropy path (``Coder.code_latents``), range coding and packing (``pack_file``), and the decoder's float32
g_s (``Coder.reconstruct``), which today's encoder runs twice to pick between its two files.
Wall times are meaningless on a shared machine; these are CPU seconds of one thread.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from benchmarks.effort_trace import KODAK, crop
from codec.coding import pack_file, rgb_to_input
from codec.effort import RefineConfig
from codec.networks.integer import round_ste
from codec.refine import _Descent, _fitting, _hard_cost, _rounding, _tile_cost, _windows, sga_round


def cpu(fn, reps: int) -> float:
    """The least CPU seconds of ``reps`` runs of ``fn()``, after one untimed run."""
    fn()
    best = np.inf
    for _ in range(reps):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return float(best)


def profile(coder, rgb: np.ndarray, quality: float, reps: int) -> dict:
    model = coder.transforms.model
    out = {}
    out["analyse"] = cpu(lambda: coder.analyse(rgb_to_input(rgb), quality), reps)
    x_padded, y, z = coder.analyse(rgb_to_input(rgb), quality)
    out["code_latents"] = cpu(lambda: coder.code_latents(y, z), reps)
    code = coder.code_latents(y, z)
    h, w = rgb.shape[:2]
    out["pack_file"] = cpu(lambda: pack_file(coder, code, quality, w, h, "RGB", None, None, None), reps)
    out["reconstruct_fp32"] = cpu(lambda: coder.reconstruct(code.y_hat, quality, (h, w)), reps)
    features = torch.from_numpy(coder.entropy.features(z)).float()
    out["features"] = cpu(lambda: coder.entropy.features(z), reps)
    y_t = torch.from_numpy(y)
    _, _, window = next(_windows(torch.from_numpy(x_padded), (h, w), y_t, features))
    with _fitting(model):
        leaf = window.y.clone().requires_grad_(True)

        def rate(backward: bool, rounding=round_ste):
            y_hat, lik = model.rate(leaf, window.features, rounding=rounding)
            if backward:
                torch.autograd.backward([-torch.log2(lik).sum(), y_hat], [None, torch.ones_like(y_hat)])
                leaf.grad = None

        y_hat = model.rate(window.y, window.features, rounding=round_ste)[0].detach().requires_grad_(True)

        def synth(backward: bool, dtype):
            x_hat = model.synthesise(y_hat, quality, dtype)
            if backward:
                x_hat.pow(2).sum().backward()
                y_hat.grad = None

        out["rate_fwd"] = cpu(lambda: rate(False), reps)
        out["rate_fwd_bwd"] = cpu(lambda: rate(True), reps)
        gen = torch.Generator().manual_seed(0)
        out["sga_round"] = cpu(lambda: sga_round(leaf, 0.3, gen), reps)
        out["rate_fwd_bwd_sga"] = cpu(lambda: rate(True, lambda v: sga_round(v, 0.3, gen)), reps)
        for name, dtype in (("bf16", torch.bfloat16), ("fp32", None)):
            out[f"gs_{name}_fwd"] = cpu(lambda: synth(False, dtype), reps)
            with torch.no_grad():
                out[f"gs_{name}_fwd_nograd"] = cpu(lambda: synth(False, dtype), reps)
            out[f"gs_{name}_fwd_bwd"] = cpu(lambda: synth(True, dtype), reps)
        out["hard_check"] = cpu(lambda: _hard_cost(model, window, window.y, quality), reps)
        for relaxation in ("ste", "sga"):
            config = RefineConfig(steps=100, relaxation=relaxation)
            descent = _Descent(window, quality, config)

            def step():
                cost, _ = _tile_cost(model, window, descent.current(), quality, _rounding(config, 1, gen))
                descent.step(1, cost, None)

            out[f"step_{relaxation}"] = cpu(step, reps)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", default="kodim23")
    p.add_argument("--qualities", default="4")
    p.add_argument("--crop", type=int, default=0, help="central square of this side (0: whole image)")
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    from codec.engines.runtime import load

    torch.set_num_threads(1)
    coder = load(None, "torch", "cpu").coder
    for name in args.images.split(","):
        rgb = crop(KODAK / f"{name}.png", args.crop or None)
        for q in (float(v) for v in args.qualities.split(",")):
            result = profile(coder, rgb, q, args.reps)
            print(json.dumps({"image": name, "crop": args.crop, "quality": q,
                              **{k: round(v, 4) for k, v in result.items()}}), flush=True)


if __name__ == "__main__":
    main()
