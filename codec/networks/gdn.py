"""Generalized divisive normalization (Ballé, Laparra & Simoncelli, ICLR 2016).

    GDN:   y_i = x_i / sqrt(β_i + Σ_j γ_ij x_j²)        IGDN:  y_i = x_i · sqrt(β_i + Σ_j γ_ij x_j²)

β and γ are kept non-negative by the reparametrization of Ballé et al. 2018 (store
sqrt(v + ε²), read max(·, bound)² − ε², ε = 2^-18), with a lower bound whose gradient still
pushes values back up.  The parameter and buffer names follow compressai's ``GDN`` so weights
move freely between the two; we keep our own copy because importing compressai costs several
seconds of start-up (it loads torch_geometric), which every ``lic`` call would pay.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["GDN", "LowerBound"]


class _LowerBoundFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, bound):
        ctx.save_for_backward(x, bound)
        return torch.max(x, bound)

    @staticmethod
    def backward(ctx, grad):
        x, bound = ctx.saved_tensors
        # Pass the gradient where x is above the bound, or where descent would raise x.
        return grad * ((x >= bound) | (grad < 0)).to(grad.dtype), None


class LowerBound(nn.Module):
    """max(x, bound), with the identity gradient whenever it moves x towards the feasible side."""

    def __init__(self, bound: float, persistent: bool = True):
        super().__init__()
        # ``persistent=False`` where the bound came after weights had shipped without it.
        self.register_buffer("bound", torch.tensor([float(bound)]), persistent=persistent)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _LowerBoundFunction.apply(x, self.bound.to(x.dtype))


class _NonNegative(nn.Module):
    """v = max(p, sqrt(minimum + ε²))² − ε² for a stored parameter p."""

    def __init__(self, minimum: float = 0.0, offset: float = 2**-18):
        super().__init__()
        self.offset = offset
        self.register_buffer("pedestal", torch.tensor([offset**2]))
        self.lower_bound = LowerBound((minimum + offset**2) ** 0.5)

    def init(self, v: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(torch.clamp(v + self.pedestal, min=self.offset**2))

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        return self.lower_bound(p) ** 2 - self.pedestal


class GDN(nn.Module):
    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1):
        super().__init__()
        self.inverse = inverse
        self.beta_reparam = _NonNegative(beta_min)
        self.gamma_reparam = _NonNegative()
        self.beta = nn.Parameter(self.beta_reparam.init(torch.ones(channels)))
        self.gamma = nn.Parameter(self.gamma_reparam.init(gamma_init * torch.eye(channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        beta = self.beta_reparam(self.beta)
        gamma = self.gamma_reparam(self.gamma).reshape(channels, channels, 1, 1)
        norm = F.conv2d(x * x, gamma, beta)
        return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))
