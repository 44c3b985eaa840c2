"""Paired short runs from a set of weights: which parameters does training help, and which hurt?

    python -m train.lab.paired --lr 1e-9 > frozen.log                    # the reference: no training
    python -m train.lab.paired --lr 3e-5 --freeze "" > all.log           # everything trained (issue 30's fault)
    python -m train.lab.paired --lr 3e-5 > recipe.log                    # the campaign's recipe: g_a frozen
    python -m train.lab.paired --lr 1.15e-4 --freeze g_a.,g_s.,entropy.,gain.,hyper.density.,hyper.h_s. > h_a.log

Every run starts from the same weights (``--weights``, the shipped ones by default) with a fresh Adam
warmed up over ``--warmup`` steps, and sees the same batches, qualities and quantization noise (one
seed), so runs differ only in what they train: their logs compare window by window, which a single
noisy loss curve cannot.  Each ``--every`` steps a line gives the window's mean training loss
(bpp + λ·255²·MSE), bpp and PSNR, the tensors that moved most (‖θ − θ₀‖ / ‖θ₀‖), and what decides:
the coded loss J (latents rounded, ``train.lab.heldout.rd_loss``) on ``--eval-crops`` fixed crops of training
photos, mean over six qualities, against the same J before the first step.
Campaign leg 5 found with it why the campaign kept diverging (train/lab/log.md).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from codec.networks.integer import Arithmetic

from ..data import build_bank, get_batch, list_images, sample_quality
from ..objective import RateDistortion

from .campaign import CAMPAIGN
from .heldout import mean_coded_loss
from .paths import DATA, WEIGHTS


def _prefixes(text: str) -> tuple[str, ...]:
    return tuple(p for p in text.split(",") if p)


def main(argv=None) -> torch.nn.Module:
    """Runs the paired run; returns the trained model."""
    p = argparse.ArgumentParser(prog="python -m train.lab.paired", description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default=str(WEIGHTS))
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--steps", type=int, default=250)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--every", type=int, default=50)
    p.add_argument("--freeze", default=CAMPAIGN.frozen_params,
                   help="comma-separated parameter-name prefixes not trained (default: the campaign's)")
    p.add_argument("--patch", type=int, default=CAMPAIGN.patch)
    p.add_argument("--batch", type=int, default=CAMPAIGN.batch_size)
    p.add_argument("--eval-crops", type=int, default=12, help="fixed crops the coded loss J is measured on")
    p.add_argument("--slow-params", default=CAMPAIGN.slow_params)
    p.add_argument("--slow-lr-scale", type=float, default=CAMPAIGN.slow_lr_scale)
    p.add_argument("--clip", type=float, default=CAMPAIGN.grad_clip)
    p.add_argument("--rate-proxy", default=CAMPAIGN.rate_proxy, choices=("noise", "ste"))
    p.add_argument("--compile", action="store_true")
    p.add_argument("--threads", type=int, default=1, help="1: two runs share the two cores evenly")
    p.add_argument("--file-stride", type=int, default=3, help="bank from every n-th training photo")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)

    from codec.weights import load_model

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = load_model(a.weights).train().to(memory_format=torch.channels_last)
    rd = RateDistortion(model, torch.bfloat16, Arithmetic.FLOAT, a.rate_proxy)
    step_fn = torch.compile(rd) if a.compile else rd
    excluded = set(Path(CAMPAIGN.exclude).read_text().split()) if CAMPAIGN.exclude else set()
    files = [f for f in list_images(a.data) if f.name not in excluded]  # never the gate's photos
    bank = build_bank(files[:: a.file_stride], CAMPAIGN.bank_size, CAMPAIGN.crops_per_image, a.seed)
    crops = build_bank(files[3::50] or files, a.patch, 1, a.seed + 1)[: a.eval_crops]

    j0 = mean_coded_loss(model, crops)
    print(f"step 0 coded J {j0:.4f}", flush=True)

    frozen, slow = _prefixes(a.freeze), _prefixes(a.slow_params)
    for n, q in model.named_parameters():
        q.requires_grad_(not n.startswith(frozen))
    named = [(n, q) for n, q in model.named_parameters() if q.requires_grad]
    trained = [q for _, q in named]
    optimizer = torch.optim.Adam(
        [{"params": [q for n, q in named if not n.startswith(slow)], "lr_scale": 1.0},
         {"params": [q for n, q in named if n.startswith(slow)], "lr_scale": a.slow_lr_scale}], lr=a.lr)
    start = {n: q.detach().clone() for n, q in named}
    gen = torch.Generator().manual_seed(a.seed * 1000 + 1)
    window = torch.zeros(4)  # loss, bpp, PSNR, count
    t0 = time.time()
    for step in range(1, a.steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = a.lr * min(1.0, step / a.warmup) * group["lr_scale"]
        x = get_batch(bank, a.batch, a.patch, gen).contiguous(memory_format=torch.channels_last)
        q = sample_quality(a.batch, CAMPAIGN.quality_sampling, gen, "cpu")
        optimizer.zero_grad(set_to_none=True)
        out = step_fn(x, q, True)
        loss = out.loss.mean()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(trained, a.clip)
        if torch.isfinite(norm) and torch.isfinite(loss):
            optimizer.step()
            window += torch.tensor([loss.item(), out.bpp.mean().item(), (-10 * torch.log10(out.mse)).mean().item(), 1.0])
        if step % a.every == 0:
            loss_, bpp_, psnr, _ = (window / window[3].clamp_min(1)).tolist()
            moved = sorted(((float((q.detach() - start[n]).norm() / start[n].norm().clamp_min(1e-12)), n)
                            for n, q in named), reverse=True)[:4]
            j = mean_coded_loss(model, crops)
            print(f"step {step} {time.time() - t0:.0f}s loss {loss_:.3f} bpp {bpp_:.3f} psnr {psnr:.2f} | coded J "
                  f"{j:.4f} ({100 * (j / j0 - 1):+.2f} %) | moved most: "
                  + ", ".join(f"{n} {r:.3f}" for r, n in moved), flush=True)
            window.zero_()
    return model


if __name__ == "__main__":
    main()
