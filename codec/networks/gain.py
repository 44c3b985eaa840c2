"""Variable rate in one model: per-channel gain units (Cui et al., CVPR 2021, "AG-VAE").

    y' = y ⊙ g(q),    ŷ → ŷ ⊙ g⁻¹(q) before g_s

with one gain vector g_l and one inverse-gain vector g⁻¹_l per quality level l = 1..8, and
exponential interpolation for a real quality q = l + t:  g(q) = g_l^(1−t) ⊙ g_{l+1}^t.
The forward gains are parametrized as a cumulative sum of softplus steps in log space, so each
channel's gain grows strictly with quality: finer quantization, hence more bits, at higher q.
Gains act before quantization and after decoding only, so the entropy path never sees q.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..quality import QUALITY_LAMBDAS, level_position

__all__ = ["GainUnits"]


class GainUnits(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        lambdas = QUALITY_LAMBDAS  # one gain per quality level, started from that level's λ
        # Initialize at the high-rate optimum, quantizer step ∝ 1/sqrt(λ), i.e. gain ∝ sqrt(λ), with
        # gain 1 at the middle of the range (the geometric mean λ): g_a and g_s then start at the
        # scale they would have in a single-rate model of the middle quality, which trains fastest
        # (a gain far from 1 there makes the transforms first learn to undo it).
        middle = sum(math.log(lam) for lam in lambdas) / len(lambdas)
        log_gain = torch.tensor([0.5 * (math.log(lam) - middle) for lam in lambdas])
        steps = log_gain[1:] - log_gain[:-1]
        self.log_gain_first = nn.Parameter(log_gain[0].repeat(channels))
        self.gain_steps = nn.Parameter(torch.log(torch.expm1(steps))[:, None].repeat(1, channels))
        self.log_inverse = nn.Parameter(-log_gain[:, None].repeat(1, channels))

    def _log_gains(self) -> torch.Tensor:
        steps = F.softplus(self.gain_steps)
        return torch.cat([self.log_gain_first[None], self.log_gain_first[None] + steps.cumsum(0)], 0)

    def _interpolate(self, table: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        low, t = level_position(quality, table.dtype)  # where q falls between levels, as λ(q) does
        t = t[:, None]
        log_g = (1 - t) * table[low] + t * table[low + 1]
        return torch.exp(log_g)[:, :, None, None]

    def gain(self, quality: torch.Tensor) -> torch.Tensor:
        """g(q) as (B, C, 1, 1) for qualities (B,)."""
        return self._interpolate(self._log_gains(), quality)

    def inverse_gain(self, quality: torch.Tensor) -> torch.Tensor:
        return self._interpolate(self.log_inverse, quality)
