"""The training objective, and its estimate on held-out crops.

Per sample with quality q (Ballé et al. 2018; CompressAI's RateDistortionLoss):

    J = R + λ(q)·255²·D,   R = −Σ log2 p(ỹ) − Σ log2 p(z̃)  over all latents, divided by H·W (bpp)
                           D = mean over pixels and channels of (x̂ − x)²,  x in [0, 1]

``codec.quality.rd_cost`` is the formula; ``RateDistortion`` is the one place that applies it to a
model, for the trainer and for every probe of the lab.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn

from codec.metrics import psnr_from_mse
from codec.networks.integer import Arithmetic
from codec.networks.model import LicModel
from codec.quality import QUALITY_LAMBDAS, rd_cost

__all__ = ["RateDistortion", "RDOutput", "estimate"]


class RDOutput(NamedTuple):
    """Per-sample values of one batch."""

    loss: torch.Tensor  # J = bpp + λ(q)·255²·mse
    bpp: torch.Tensor
    mse: torch.Tensor  # on [0, 1]
    x_hat: torch.Tensor


class RateDistortion(nn.Module):
    """J(x, q) = R + λ(q)·255²·D of ``model`` on a batch, per sample: the training face of
    ``LicModel.forward``.

    In training mode x̂ is the synthesis' raw output (clamping would stop its gradient).  In eval
    mode the latents are rounded and x̂ is clamped to [0, 1]: the decoder's output, so D is what the
    codec delivers and R the coded rate up to the σ table.  ``amp_dtype`` autocasts the float
    transforms g_a and g_s only; ``arithmetic``: how the integer entropy path trains
    (``codec.networks.integer.Arithmetic``); ``rate_proxy``: what R sees in training, the dithered latents
    ("noise") or the rounded ones with a straight-through gradient ("ste").
    """

    def __init__(self, model: LicModel, amp_dtype: torch.dtype | None = None,
                 arithmetic: Arithmetic = Arithmetic.FAKE, rate_proxy: str = "noise"):
        super().__init__()
        if rate_proxy not in ("noise", "ste"):
            raise ValueError(f"rate_proxy must be 'noise' or 'ste', not {rate_proxy!r}")
        self.model = model
        self.amp_dtype = amp_dtype
        self.arithmetic = arithmetic
        self.rate_ste = rate_proxy == "ste"

    def forward(self, x: torch.Tensor, quality: torch.Tensor, ste: bool = True) -> RDOutput:
        h, w = x.shape[-2:]
        x_hat, y_lik, z_lik = self.model(x, quality, ste=ste, amp_dtype=self.amp_dtype, arithmetic=self.arithmetic,
                                         rate_ste=self.rate_ste)
        if not self.model.training:
            x_hat = x_hat.clamp(0, 1)
        bits = -(torch.log2(y_lik).sum((1, 2, 3)) + torch.log2(z_lik).sum((1, 2, 3)))
        bpp = bits / (h * w)
        mse = (x_hat - x).pow(2).mean((1, 2, 3))
        return RDOutput(rd_cost(bpp, mse, quality), bpp, mse, x_hat)


@torch.no_grad()
def estimate(rd: RateDistortion, images: torch.Tensor, batch: int = 8) -> dict[str, float]:
    """Per quality level, the mean estimated bpp and PSNR of the model on ``images`` (uint8 crops),
    in eval mode.  RNG-neutral: the noise it draws does not shift a training run's random stream."""
    model = rd.model
    was_training = model.training
    model.eval()
    cpu_state = torch.get_rng_state()
    cuda_state = torch.cuda.get_rng_state(images.device) if images.device.type == "cuda" else None
    torch.manual_seed(1234)
    out = {}
    for level in range(1, len(QUALITY_LAMBDAS) + 1):
        bpps, psnrs = [], []
        for i in range(0, len(images), batch):
            x = images[i : i + batch].float() / 255
            x = x.contiguous(memory_format=torch.channels_last)
            r = rd(x, torch.full((len(x),), float(level), device=x.device))
            bpps.append(r.bpp)
            psnrs.append(psnr_from_mse(r.mse.clamp_min(1e-10), peak=1.0))
        out[f"bpp_q{level}"] = torch.cat(bpps).mean().item()
        out[f"psnr_q{level}"] = torch.cat(psnrs).mean().item()
    torch.set_rng_state(cpu_state)
    if cuda_state is not None:
        torch.cuda.set_rng_state(cuda_state, images.device)
    model.train(was_training)
    return out
