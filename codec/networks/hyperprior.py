"""Scale hyperprior (Ballé et al. 2018): side information z that predicts the entropy parameters.

    y ──h_a──► z ──round──► ẑ ──h_s (integer network)──► ψ  (hyper features for the slices)
                              │
                              └── coded with the factorized density (FactorizedDensity)

h_a runs only in the encoder and its output is transmitted, so it is a float network.  h_s
feeds every probability the range coder uses, so it is an integer network (``integer.py``; coding
computes it exactly in ``codec.exact_entropy``):
3x3 integer convolutions with sub-pixel (pixel-shuffle) upsampling, which keeps the exact path
plain matmuls where a transposed convolution would not be.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .factorized import FactorizedDensity
from .gdn import LowerBound
from .integer import Arithmetic, IntConv2d, QReLU, round_ste
from .transforms import conv

__all__ = ["Hyperprior", "HyperAnalysis", "HyperSynthesis", "HyperOutput"]


class HyperOutput(NamedTuple):
    features: torch.Tensor  # ψ, (B, hyper_channels, H/16, W/16)
    z_likelihoods: torch.Tensor  # in (0, 1]


class HyperAnalysis(nn.Sequential):
    """h_a: y (M ch, 1/16) -> z (Nz ch, 1/64); conv3x3, ReLU, conv5x5/2, ReLU, conv5x5/2."""

    def __init__(self, M: int, N: int, Nz: int):
        super().__init__(
            conv(M, N, 3, 1), nn.ReLU(inplace=True),
            conv(N, N, 5, 2), nn.ReLU(inplace=True),
            conv(N, Nz, 5, 2),
        )


class HyperSynthesis(nn.Module):
    """h_s: ẑ -> ψ, ψ = q(C3(↑q(C2(↑q(C1 ẑ))))) with integer 3x3 convs C, pixel shuffle ↑, QReLU q."""

    def __init__(self, Nz: int, N: int, out_ch: int):
        super().__init__()
        self.up1 = IntConv2d(Nz, 4 * N, 3)
        self.up2 = IntConv2d(N, 4 * N, 3)
        self.out = IntConv2d(N, out_ch, 3)
        self.act = QReLU()

    def forward(self, z_hat: torch.Tensor, mode: Arithmetic) -> torch.Tensor:
        x = self.act(F.pixel_shuffle(self.up1(z_hat, mode), 2), mode)
        x = self.act(F.pixel_shuffle(self.up2(x, mode), 2), mode)
        return self.act(self.out(x, mode), mode)


class Hyperprior(nn.Module):
    """The side-information branch: h_a, the factorized density of ẑ, and h_s."""

    def __init__(self, M: int, N: int, Nz: int, hyper_channels: int, table_radius: int):
        super().__init__()
        self.h_a = HyperAnalysis(M, N, Nz)
        self.h_s = HyperSynthesis(Nz, N, hyper_channels)
        self.density = FactorizedDensity(Nz, table_radius)
        # A z far in a channel's tail has a mass that underflows to 0 in float32: an infinite
        # rate and NaN gradients, which end a training run (high qualities reach such z).
        self.likelihood_bound = LowerBound(1e-9, persistent=False)

    def forward(self, y: torch.Tensor, mode: Arithmetic = Arithmetic.FAKE) -> HyperOutput:
        """Training face: rate of z from the noisy proxy z + U(-½, ½) (round(z) in eval mode);
        h_s sees round(z) (STE)."""
        z = self.h_a(y)
        z_noisy = z + torch.empty_like(z).uniform_(-0.5, 0.5) if self.training else torch.round(z)
        features = self.h_s(round_ste(z), mode)
        return HyperOutput(features, self.likelihood_bound(self.density.likelihood(z_noisy)))
