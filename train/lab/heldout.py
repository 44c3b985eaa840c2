"""Held-out comparison of two models: BD-rate over qualities 1..8 on the training run's held-out crops.

    python -m train.lab.heldout runs/campaign/checkpoint.pt                 # its average and last iterate vs codec/weights
    python -m train.lab.heldout some/weights --against codec/weights
    python -m train.lab.heldout codec/weights --spread 160                  # overfitting: held-out vs training photos

The crops are the center crops of the ``--val-images`` photos every training run holds out (same
seed, same draw), scored by the training face in eval mode (latents rounded: the coded rate up to
the σ table), so a checkpoint can be judged against the shipped weights in a minute, without an
export or Kodak.  BD-rate: negative means fewer bits than ``--against`` at equal PSNR.  The campaign's
legs 5 and 6 were judged this way (train/lab/log.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from codec.networks.integer import Arithmetic
from codec.networks.model import LicModel

from ..data import build_bank_center, list_images, split_heldout
from ..objective import RateDistortion, estimate

from .campaign import CAMPAIGN
from .paths import DATA, WEIGHTS

__all__ = ["heldout_curve", "load_models", "rd_loss", "mean_coded_loss", "EVAL_QUALITIES", "spread", "main"]

# The qualities a probe scores the coded loss at: both ends of the range and four between.
EVAL_QUALITIES = (1.0, 2.5, 4.0, 5.5, 7.0, 8.0)


def load_models(path: str | Path) -> dict[str, LicModel]:
    """{"weights": model} for shipped weights; {"average": ..., "last": ...} for a training checkpoint."""
    path = Path(path)
    if path.suffix != ".pt":
        from codec.weights import load_model

        return {"weights": load_model(path)}
    from ..checkpoint import checkpoint_model, load_checkpoint

    ckpt = load_checkpoint(path)
    return {f"step {ckpt['step']} {name}": checkpoint_model(ckpt, key, build_tables=False)
            for name, key in (("average", "ema"), ("last", "model")) if ckpt.get(key) is not None}


def heldout_curve(model: LicModel, crops: torch.Tensor) -> tuple[list[float], list[float]]:
    """(bpp, PSNR) per quality 1..8 on ``crops`` (uint8), as the training run's evaluation computes them."""
    r = estimate(RateDistortion(model, torch.bfloat16, Arithmetic.FLOAT), crops)
    levels = sorted(int(k[len("bpp_q"):]) for k in r if k.startswith("bpp_q"))
    return [r[f"bpp_q{q}"] for q in levels], [r[f"psnr_q{q}"] for q in levels]


def rd_loss(model: LicModel, crops: torch.Tensor, quality: float, batch: int = 8) -> torch.Tensor:
    """Per crop J = bpp + λ(q)·255²·MSE (eval mode: the coded rate up to the σ table), float64."""
    rd = RateDistortion(model.eval(), torch.bfloat16, Arithmetic.FLOAT)
    out = []
    with torch.no_grad():
        for i in range(0, len(crops), batch):
            x = crops[i : i + batch].float() / 255
            q = torch.full((len(x),), quality)
            out.append(rd(x, q).loss)
    return torch.cat(out).double()


def mean_coded_loss(model: LicModel, crops: torch.Tensor, qualities=EVAL_QUALITIES) -> float:
    """Mean over ``qualities`` of the crops' mean J (``rd_loss``); leaves the model in training mode."""
    j = sum(rd_loss(model, crops, q).mean() for q in qualities) / len(qualities)
    model.train()
    return float(j)


def spread(model: LicModel, held: list[Path], training: list[Path], size: int, draws: int = 5000) -> None:
    """Where the held-out photos' mean J falls among random equally large sets of training photos:
    far above the middle would mean the model fits its training photos better than new ones."""
    import numpy as np

    held_crops, train_crops = build_bank_center(held, size), build_bank_center(training, size)
    rng = np.random.default_rng(1)
    for q in (1.0, 4.0, 8.0):
        h, t = rd_loss(model, held_crops, q).numpy(), rd_loss(model, train_crops, q).numpy()
        means = np.array([rng.choice(t, len(h), replace=False).mean() for _ in range(draws)])
        print(f"q{q:.0f}: held-out J {h.mean():.3f}, training photos J {t.mean():.3f} (sets of {len(h)}: 5-95 % "
              f"{np.percentile(means, 5):.3f}-{np.percentile(means, 95):.3f}); held-out percentile "
              f"{(means < h.mean()).mean() * 100:.0f}", flush=True)


def main(argv=None) -> None:
    from benchmarks.bd import bd_rate

    p = argparse.ArgumentParser(prog="python -m train.lab.heldout", description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a training checkpoint (.pt) or a weights folder")
    p.add_argument("--against", default=str(WEIGHTS), help="the anchor weights (default: the shipped ones)")
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--val-images", type=int, default=CAMPAIGN.val_images)
    p.add_argument("--patch", type=int, default=CAMPAIGN.patch)
    p.add_argument("--seed", type=int, default=CAMPAIGN.seed)
    p.add_argument("--spread", type=int, default=0, metavar="N",
                   help="instead: the held-out photos' RD loss against N training photos' (256² center crops)")
    a = p.parse_args(argv)
    torch.manual_seed(0)
    held, training = split_heldout(list_images(a.data), a.val_images, a.seed)
    if a.spread:
        for name, model in load_models(a.model).items():
            print(name, flush=True)
            spread(model, held, training[: a.spread], 256)
        return
    crops = build_bank_center(held, a.patch)
    anchor = heldout_curve(load_models(a.against)["weights"], crops)
    for name, model in load_models(a.model).items():
        bpp, psnr = heldout_curve(model, crops)
        print(f"{name}: BD-rate {bd_rate(*anchor, bpp, psnr):+.2f} % against {a.against} | "
              + " ".join(f"q{q} {bpp[q - 1]:.3f} bpp {psnr[q - 1]:.2f} dB" for q in (1, 4, 8)), flush=True)


if __name__ == "__main__":
    main()
