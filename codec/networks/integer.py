"""Integer networks for the entropy-parameter path (Ballé, Johnston & Minnen, ICLR 2019).

The range coder fails if encoder and decoder disagree on a single probability, so every value
that reaches it (the scale index and mean of each latent, and everything they depend on) is
computed here in fixed point:

    a_out = clamp(round((W_q * a_in + b_q) / 2^W_FRAC), 0, 2^ACT_BITS - 1)

with integer kernels W_q = round(W * 2^W_FRAC), integer biases and integer activations.  Tensors
keep their *real* value (an integer times 2^-ACT_FRAC, a dyadic rational), so in float64 every
product and every partial sum is an integer multiple of one power of two below 2^53 and is
computed exactly, in any order, on any device, with any thread count or batch size.

These torch layers are the training face: each takes an ``Arithmetic``, either ``FAKE`` (the
coder's rounding with straight-through gradients, "fake quantization": the model learns under the
arithmetic it is coded with) or ``FLOAT`` (the same network, clamps kept, no rounding: it learns
faster, and the rounding it will be coded with is a perturbation of 2^-7 at most per activation).
Coding computes the same networks exactly in ``codec.exact_entropy`` (numpy, shared by every runtime);
in eval mode ``FAKE`` computes what it computes, up to float32 rounding.
"""

from __future__ import annotations

import enum
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..fixed_point import ACT_FRAC, ACT_MAX, EXACT_LIMIT, INPUT_LIMIT, TANH_RANGE, W_FRAC, W_LIMIT

__all__ = [
    "Arithmetic",
    "ACT_FRAC",
    "ACT_MAX",
    "INPUT_LIMIT",
    "W_FRAC",
    "W_LIMIT",
    "round_ste",
    "to_grid",
    "IntConv2d",
    "QReLU",
    "BoundedTanh",
]

class Arithmetic(str, enum.Enum):
    """How the integer layers compute (see the module docstring)."""

    FAKE = "fake"  # training: the exact path's rounding, straight-through gradients
    FLOAT = "float"  # training: no rounding at all, clamps kept


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """round(x) in the forward pass, identity gradient in the backward pass."""
    return x + (torch.round(x) - x).detach()


def to_grid(x: torch.Tensor, mode: Arithmetic) -> torch.Tensor:
    """Snap ``x`` to the 2^-ACT_FRAC grid (straight-through when FAKE, not at all when FLOAT)."""
    if mode is Arithmetic.FLOAT:
        return x
    return round_ste(x * 2**ACT_FRAC) / 2**ACT_FRAC


class IntConv2d(nn.Module):
    """Convolution with integer kernel and bias: acc = W_q * a + b_q (Ballé et al. 2019, eq. 1).

    Returns the real value ``acc / 2^(W_FRAC + ACT_FRAC)``; the nonlinearity that follows
    (QReLU, a head) does the rounding.  Inputs are snapped to the activation grid and clamped
    to +-INPUT_LIMIT, which bounds every partial sum (checked by ``check_exact``).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int):
        super().__init__()
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.empty(out_ch, in_ch, kernel_size, kernel_size))
        # A small positive bias keeps the quantized ReLUs after it alive at initialization.
        self.bias = nn.Parameter(torch.full((out_ch,), 0.1))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def check_exact(self) -> None:
        """Raise if some accumulator could leave float64's exact integer range."""
        # An upper bound without materialising the integers: rounding adds at most 1/2 per term.
        w = self.weight.detach().clamp(-W_LIMIT, W_LIMIT).abs().flatten(1)
        w_int = w.sum(1, dtype=torch.float64) * 2**W_FRAC + 0.5 * w.shape[1]
        b_int = self.bias.detach().double().abs() * 2 ** (W_FRAC + ACT_FRAC) + 0.5
        bound = w_int * INPUT_LIMIT * 2**ACT_FRAC + b_int
        if bound.max().item() >= EXACT_LIMIT:
            raise ValueError("integer convolution may exceed 2^53: weights too large")

    def forward(self, x: torch.Tensor, mode: Arithmetic) -> torch.Tensor:
        x = x.clamp(-INPUT_LIMIT, INPUT_LIMIT)
        if mode is Arithmetic.FLOAT:
            return F.conv2d(x, self.weight.clamp(-W_LIMIT, W_LIMIT), self.bias, padding=self.padding)
        w = round_ste(self.weight.clamp(-W_LIMIT, W_LIMIT) * 2**W_FRAC) / 2**W_FRAC
        b = round_ste(self.bias * 2 ** (W_FRAC + ACT_FRAC)) / 2 ** (W_FRAC + ACT_FRAC)
        return F.conv2d(to_grid(x, mode), w, b, padding=self.padding)


class QReLU(nn.Module):
    """Quantized bounded ReLU: a = clamp(round(x * 2^6), 0, 2^12 - 1) / 2^6 (Ballé et al. 2019).

    In training the gradient leaks (slope LEAK) outside [0, max]: quantized zero inputs and zero
    biases would otherwise give exactly-zero pre-activations whose units never wake up.
    """

    LEAK = 0.05

    def forward(self, x: torch.Tensor, mode: Arithmetic) -> torch.Tensor:
        hard = to_grid(x, mode).clamp(0.0, ACT_MAX)
        inside = (x >= 0) & (x <= ACT_MAX)
        slope = x * torch.where(inside, 1.0, self.LEAK).to(x.dtype)
        return hard.detach() + slope - slope.detach()


class BoundedTanh(nn.Module):
    """r = 0.5 * tanh(v) on the 2^-6 grid, through a lookup table so it is exact everywhere.

    Latent residual prediction (Minnen & Singh 2020, sec. 3) bounds its correction with
    0.5*tanh; tanh itself differs between math libraries, so the decoder reads the table that
    ships with the weights instead.  v is clamped to +-8, where 0.5*tanh has saturated.
    """

    RANGE = TANH_RANGE

    def __init__(self):
        super().__init__()
        steps = int(self.RANGE * 2**ACT_FRAC)
        v = torch.arange(-steps, steps + 1, dtype=torch.float64) / 2**ACT_FRAC
        table = torch.round(0.5 * torch.tanh(v) * 2**ACT_FRAC)
        self.register_buffer("table", table.to(torch.int32))  # int32: DDP/gloo broadcasts it

    def forward(self, v: torch.Tensor, mode: Arithmetic) -> torch.Tensor:
        v = to_grid(v, mode).clamp(-self.RANGE, self.RANGE)
        if mode is Arithmetic.FLOAT:
            return 0.5 * torch.tanh(v)
        return round_ste(0.5 * torch.tanh(v) * 2**ACT_FRAC) / 2**ACT_FRAC
