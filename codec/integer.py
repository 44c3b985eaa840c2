"""Integer networks for the entropy-parameter path (Ballé, Johnston & Minnen, ICLR 2019).

The range coder fails if encoder and decoder disagree on a single probability, so every value
that reaches it (the scale index and mean of each latent, and everything they depend on) is
computed here in fixed point:

    a_out = clamp(round((W_q * a_in + b_q) / 2^W_FRAC), 0, 2^ACT_BITS - 1)

with integer kernels W_q = round(W * 2^W_FRAC), integer biases and integer activations.  Tensors
keep their *real* value (an integer times 2^-ACT_FRAC, a dyadic rational), so in float64 every
product and every partial sum is an integer multiple of one power of two below 2^53 and is
computed exactly, in any order, on any device, with any thread count or batch size.  The
convolutions therefore run as plain ``unfold`` + ``matmul`` (no Winograd/FFT algorithms, no TF32:
those produce non-integer intermediates).

Each layer takes an ``Arithmetic``: ``EXACT`` for coding; in training either ``FAKE`` (the same
rounding with straight-through gradients, "fake quantization": the model learns under the arithmetic
it is coded with) or ``FLOAT`` (the same network, clamps kept, no rounding: it learns faster, and
the rounding it will be coded with is a perturbation of 2^-7 at most per activation).
"""

from __future__ import annotations

import enum
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .fixed_point import ACT_FRAC, ACT_MAX, EXACT_LIMIT, INPUT_LIMIT, TANH_RANGE, W_FRAC, W_LIMIT

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

# Row bands for the exact convolution: bound the unfold buffer (elements) for huge images.
_UNFOLD_BUDGET = 2**23


class Arithmetic(str, enum.Enum):
    """How the integer layers compute (see the module docstring)."""

    EXACT = "exact"  # coding: integers in float64, bit-identical on every machine
    FAKE = "fake"  # training: the exact path's rounding, straight-through gradients
    FLOAT = "float"  # training: no rounding at all, clamps kept


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """round(x) in the forward pass, identity gradient in the backward pass."""
    return x + (torch.round(x) - x).detach()


def to_grid(x: torch.Tensor, mode: Arithmetic) -> torch.Tensor:
    """Snap ``x`` to the 2^-ACT_FRAC grid (straight-through when FAKE, not at all when FLOAT)."""
    if mode is Arithmetic.FLOAT:
        return x
    scaled = x * 2**ACT_FRAC
    return (torch.round(scaled) if mode is Arithmetic.EXACT else round_ste(scaled)) / 2**ACT_FRAC


def _exact_conv2d(x: torch.Tensor, w_int: torch.Tensor, b_int: torch.Tensor, padding: int):
    """Integer convolution as unfold + matmul in float64, in row bands to bound memory.

    ``x`` holds integers (float64); returns integer-valued float64 accumulators.
    """
    out_ch, in_ch, kh, kw = w_int.shape
    batch, _, height, width = x.shape
    x = F.pad(x, (padding, padding, padding, padding))
    out_h = height + 2 * padding - kh + 1
    out_w = width + 2 * padding - kw + 1
    kernel = w_int.reshape(out_ch, -1)
    rows = max(1, _UNFOLD_BUDGET // max(1, batch * in_ch * kh * kw * out_w))
    bands = []
    for r0 in range(0, out_h, rows):
        r1 = min(out_h, r0 + rows)
        cols = F.unfold(x[:, :, r0 : r1 + kh - 1, :], (kh, kw))  # (B, C*kh*kw, L)
        acc = torch.matmul(kernel, cols) + b_int[:, None]
        bands.append(acc.reshape(batch, out_ch, r1 - r0, out_w))
    return torch.cat(bands, dim=2)


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

    def quantized(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Integer weight and bias in float64, as the coder uses them."""
        w = torch.round(self.weight.detach().double().clamp(-W_LIMIT, W_LIMIT) * 2**W_FRAC)
        b = torch.round(self.bias.detach().double() * 2 ** (W_FRAC + ACT_FRAC))
        return w, b

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
        if mode is Arithmetic.EXACT:
            w, b = self.quantized()
            w, b = w.to(x.device), b.to(x.device)
            x_int = torch.round(x.double() * 2**ACT_FRAC)
            acc = _exact_conv2d(x_int, w, b, self.padding)
            return acc / 2 ** (W_FRAC + ACT_FRAC)
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
        if mode is Arithmetic.EXACT:
            return hard
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
        if mode is Arithmetic.EXACT:
            index = (v * 2**ACT_FRAC).long() + int(self.RANGE * 2**ACT_FRAC)
            return self.table.to(v.device)[index].double() / 2**ACT_FRAC
        if mode is Arithmetic.FLOAT:
            return 0.5 * torch.tanh(v)
        return round_ste(0.5 * torch.tanh(v) * 2**ACT_FRAC) / 2**ACT_FRAC
