"""Channel-conditional entropy model with latent corrections (LRP, Minnen & Singh 2020).

The latent y is split along channels into slices y_1..y_K (uneven sizes after ELIC, He et al.
2022).  Slice k is coded with a zero-mean quantized Gaussian after its mean is shifted out:

    (μ_k, s_k) = P_k(ψ, ŷ_<k)                 mean on the 2^-6 grid, s_k an index into σ-table
    q_k        = round(y_k − μ_k)             integer symbols, p(q) = Φ((q+½)/σ) − Φ((q−½)/σ)
    ŷ_k        = q_k + μ_k + R_k(ψ, ŷ_<k, q_k + μ_k),  R_k = ½·tanh(·) ∈ [−½, ½]  (LRP, sec. 3)

R_k is the paper's latent residual prediction (LRP): a correction of the quantisation error of
slice k, called a correction here (``residual`` in lic is the lossless layer, ``codec.lossless.residual``).

P_k and R_k are integer networks (``integer.py``): everything that decides a probability, the
LRP corrections of earlier slices included, is computed exactly when coding
(``codec.exact_entropy``, which reads these modules' weights), so encoder and decoder agree bit
for bit on any device.  This module is the training face: the rate of y under the model.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn

from .gdn import LowerBound
from .integer import INPUT_LIMIT, Arithmetic, BoundedTanh, IntConv2d, QReLU, round_ste, to_grid

__all__ = ["ChannelConditional", "scale_table"]


def scale_table(num_scales: int, scale_min: float, scale_max: float) -> torch.Tensor:
    """σ_i = exp(log σ_min + i·(log σ_max − log σ_min)/(L−1)), i = 0..L−1, float64."""
    return torch.exp(torch.linspace(math.log(scale_min), math.log(scale_max), num_scales, dtype=torch.float64))


class _BoundSTE(torch.autograd.Function):
    """clamp(x, lo, hi), but let gradients through when they push x back into range."""

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return x.clamp(lo, hi)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        inside = (x >= ctx.lo) & (x <= ctx.hi)
        inward = ((x < ctx.lo) & (grad < 0)) | ((x > ctx.hi) & (grad > 0))
        return grad * (inside | inward), None, None


class SliceParameters(nn.Module):
    """P_k: (ψ, ŷ_<k) -> (μ_k, s_k); conv3x3, QReLU, conv3x3, QReLU, conv1x1 (integer)."""

    def __init__(self, in_ch: int, width: int, out_ch: int, num_scales: int, init_index: float):
        super().__init__()
        self.conv1 = IntConv2d(in_ch, width, 3)
        self.conv2 = IntConv2d(width, width, 3)
        self.head = IntConv2d(width, 2 * out_ch, 1)
        self.act = QReLU()
        self.num_scales = num_scales
        with torch.no_grad():  # start inside the table (informative index gradient), near σ = 1
            self.head.bias[out_ch:] = init_index

    def forward(self, x: torch.Tensor, mode: Arithmetic) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.act(self.conv1(x, mode), mode)
        x = self.act(self.conv2(x, mode), mode)
        mean, index = self.head(x, mode).chunk(2, dim=1)
        mean = to_grid(mean, mode).clamp(-INPUT_LIMIT, INPUT_LIMIT)
        top = self.num_scales - 1
        index = _BoundSTE.apply(index, 0.0, float(top))
        return mean, (index if mode is Arithmetic.FLOAT else round_ste(index))


class LatentCorrection(nn.Module):
    """R_k: (ψ, ŷ_≤k) -> ½·tanh(·); conv3x3, QReLU, conv3x3, bounded tanh (integer)."""

    def __init__(self, in_ch: int, width: int, out_ch: int):
        super().__init__()
        self.conv1 = IntConv2d(in_ch, width, 3)
        self.conv2 = IntConv2d(width, out_ch, 3)
        self.act = QReLU()
        self.tanh = BoundedTanh()

    def forward(self, x: torch.Tensor, mode: Arithmetic) -> torch.Tensor:
        return self.tanh(self.conv2(self.act(self.conv1(x, mode), mode), mode), mode)


# A slice quantizer: (k, μ_k, σ-index_k) -> q_k + μ_k, the slice before its LRP correction.
Quantizer = Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor]


class ChannelConditional(nn.Module):
    """p(ŷ | ψ) = Π_k p(ŷ_k | ψ, ŷ_<k): the slice networks and the σ table."""

    def __init__(self, slices: tuple[int, ...], hyper_channels: int, param_width: int,
                 lrp_width: int, num_scales: int, scale_min: float, scale_max: float):
        super().__init__()
        self.slices = tuple(slices)
        self.params = nn.ModuleList()
        self.lrp = nn.ModuleList()
        # The index of σ = 1: latents start small, and a σ near 1 costs few bits on them.
        init_index = (num_scales - 1) * math.log(1 / scale_min) / math.log(scale_max / scale_min)
        init_index = min(max(init_index, 0.0), num_scales - 1.0)
        seen = 0
        for size in self.slices:
            self.params.append(SliceParameters(hyper_channels + seen, param_width, size, num_scales, init_index))
            self.lrp.append(LatentCorrection(hyper_channels + seen + size, lrp_width, size))
            seen += size
        self.register_buffer("scales", scale_table(num_scales, scale_min, scale_max))
        self.likelihood_bound = LowerBound(1e-9)

    def _run(self, features: torch.Tensor, quantize: Quantizer, mode: Arithmetic) -> torch.Tensor:
        decoded: list[torch.Tensor] = []
        for k in range(len(self.slices)):
            context = torch.cat([features, *decoded], dim=1)
            mean, index = self.params[k](context, mode)
            y_k = quantize(k, mean, index)
            y_k = y_k + self.lrp[k](torch.cat([context, y_k], dim=1), mode)
            decoded.append(y_k)
        return torch.cat(decoded, dim=1)

    def _split(self, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.split(y, self.slices, dim=1)

    def forward(self, y: torch.Tensor, features: torch.Tensor, ste: bool = True,
                mode: Arithmetic = Arithmetic.FAKE, rounding: Callable[[torch.Tensor], torch.Tensor] | None = None,
                rate_ste: bool = False):
        """Training face: returns (ŷ, likelihoods of y).

        The rate uses the noisy proxy ỹ = y + U(−½, ½) (dithered quantization), or with ``rate_ste``
        the rounded latents with a straight-through gradient (the rate the coder spends; what the
        encoder side learns from differs, Guo et al. 2021).  What P_k, R_k and g_s see is
        round(y − μ) + μ with a straight-through gradient if ``ste``, else ỹ.
        In eval mode the rate is that of the rounded centred latents (what the coder spends, up to the
        σ table), so estimates are deterministic.  ``rounding`` (latent refinement, ``codec/refine.py``)
        replaces both: rate and ŷ use rounding(y − μ), a relaxed rounding of the centred latents.
        """
        parts = self._split(y)
        likelihoods: list[torch.Tensor] = [None] * len(parts)  # type: ignore[list-item]
        log_scales = torch.log(self.scales).to(y.dtype)

        def quantize(k, mean, index):
            centred = parts[k] - mean
            sigma = torch.exp(_interp(log_scales, index))
            if rounding is not None:
                relaxed = rounding(centred)
                likelihoods[k] = self._likelihood(relaxed, sigma)
                return relaxed + mean
            if self.training and rate_ste:
                noisy = round_ste(centred)
            elif self.training:
                noisy = centred + torch.empty_like(centred).uniform_(-0.5, 0.5)
            else:
                noisy = torch.round(centred)
            likelihoods[k] = self._likelihood(noisy, sigma)
            return (round_ste(centred) if ste else noisy) + mean

        y_hat = self._run(features, quantize, mode)
        return y_hat, torch.cat(likelihoods, dim=1)

    def _likelihood(self, centred: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        # Mass of the unit bin around the centred latent; evaluated on the lower tail for precision.
        v = centred.abs()
        normal = torch.distributions.Normal(0.0, 1.0)
        upper = normal.cdf((0.5 - v) / sigma)
        lower = normal.cdf((-0.5 - v) / sigma)
        return self.likelihood_bound(upper - lower)


def _interp(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """table[index] for an integer-valued ``index``, differentiable (linear between entries)."""
    top = table.numel() - 1
    low = torch.nan_to_num(index.detach()).floor().clamp(0, top - 1)  # NaN: a finite lookup, NaN result
    frac = index - low
    low = low.long()
    return table[low] * (1 - frac) + table[low + 1] * frac

