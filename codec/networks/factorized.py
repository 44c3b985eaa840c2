"""Factorized (non-parametric) density for the hyper-latent z (Ballé et al. 2018, appendix 6.1).

Each channel c has its own monotone cumulative c(x) = sigmoid(f_K ∘ … ∘ f_1(x)) with

    f_k(x) = H_k x + b_k + a_k ⊙ tanh(H_k x + b_k)   (last layer: no tanh term),

where the H_k are kept non-negative through a softplus and the a_k ≥ -1 through a tanh, so c is
non-decreasing.  The probability of the integer bin around ẑ is c(ẑ + ½) − c(ẑ − ½).

Coding tables are built once, from a finished model, by ``build_tables`` and stored as integer
buffers that ship with the weights: sender and receiver must never rebuild them independently,
since float evaluation of c differs between devices and one differing count breaks decoding.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["FactorizedDensity"]


class FactorizedDensity(nn.Module):
    """p(ẑ_c) = c_c(ẑ_c + ½) − c_c(ẑ_c − ½), one learned cumulative per channel."""

    def __init__(self, channels: int, table_radius: int, filters=(3, 3, 3), init_scale: float = 10.0):
        super().__init__()
        dims = (1, *filters, 1)
        scale = init_scale ** (1 / (len(dims) - 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for k in range(len(dims) - 1):
            init = math.log(math.expm1(1 / scale / dims[k + 1]))  # softplus(init) = 1/(scale·fan_out)
            self.matrices.append(nn.Parameter(torch.full((channels, dims[k + 1], dims[k]), init)))
            self.biases.append(nn.Parameter(torch.empty(channels, dims[k + 1], 1).uniform_(-0.5, 0.5)))
            if k < len(dims) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[k + 1], 1)))
        width = 2 * table_radius + 1
        # Integer coding tables (filled by build_tables): frequencies over offset .. offset+width-1.
        self.register_buffer("table_pmf", torch.ones(channels, width, dtype=torch.int32))
        self.register_buffer("table_offset", torch.full((channels,), -table_radius, dtype=torch.int32))

    def logits_cumulative(self, x: torch.Tensor) -> torch.Tensor:
        """Logit of the cumulative, x: (C, 1, n) -> (C, 1, n)."""
        for k, (matrix, bias) in enumerate(zip(self.matrices, self.biases)):
            x = torch.matmul(F.softplus(matrix), x) + bias
            if k < len(self.factors):
                x = x + torch.tanh(self.factors[k]) * torch.tanh(x)
        return x

    def likelihood(self, z: torch.Tensor) -> torch.Tensor:
        """Probability mass of the unit bin centred on each value of z (B, C, H, W)."""
        b, c, h, w = z.shape
        values = z.permute(1, 0, 2, 3).reshape(c, 1, -1)
        lower = self.logits_cumulative(values - 0.5)
        upper = self.logits_cumulative(values + 0.5)
        # Evaluate on the side of the distribution where sigmoid is far from 1 (precision).
        sign = -torch.sign(lower + upper).detach()
        p = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        return p.reshape(c, b, h, w).permute(1, 0, 2, 3)

    @torch.no_grad()
    def build_tables(self, precision: int) -> None:
        """Quantize each channel's pmf around its median into integer frequencies.

        Frequencies are >= 1 (every value in the window stays codable) and sum to at most
        2^precision; values outside the window are escaped by the range coder.
        """
        channels, width = self.table_pmf.shape
        radius = width // 2
        lo = torch.full((channels, 1, 1), -1e4, dtype=torch.float64)
        hi = torch.full((channels, 1, 1), 1e4, dtype=torch.float64)
        double = self.double_copy()
        for _ in range(60):  # bisection for the median: logits_cumulative(m) = 0
            mid = (lo + hi) / 2
            above = double.logits_cumulative(mid) > 0
            hi = torch.where(above, mid, hi)
            lo = torch.where(above, lo, mid)
        offset = torch.round(lo.reshape(-1)).to(torch.int64) - radius
        values = offset[:, None] + torch.arange(width)[None, :]
        pmf = double.likelihood(values.double()[None, :, :, None])[0, :, :, 0]  # (C, width)
        pmf = pmf / pmf.sum(dim=1, keepdim=True).clamp_min(1e-300)
        freq = torch.floor(pmf * (2**precision - width)) + 1
        self.table_pmf.copy_(freq.to(torch.int32))
        self.table_offset.copy_(offset.to(torch.int32))

    def double_copy(self) -> "FactorizedDensity":
        """A float64 CPU copy, so table building does not depend on the model's device."""
        channels, width = self.table_pmf.shape
        copy = FactorizedDensity(channels, width // 2, filters=tuple(m.shape[1] for m in self.matrices[:-1]))
        copy.load_state_dict(self.state_dict())
        return copy.double().cpu()
