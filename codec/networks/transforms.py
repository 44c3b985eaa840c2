"""Analysis and synthesis transforms g_a, g_s (Ballé et al. 2018; Minnen & Singh 2020).

    y = g_a(x):  [conv5x5/2, GDN] x 3, conv5x5/2          RGB -> M channels at 1/16 resolution
    x̂ = g_s(ŷ):  [deconv5x5/2, IGDN] x 3, deconv5x5/2     M channels -> RGB

GDN (Ballé, Laparra & Simoncelli 2016): y_i = x_i / sqrt(β_i + Σ_j γ_ij x_j²), see ``gdn.py``.
These transforms only shape the latent and the reconstruction; nothing they compute feeds the
range coder's probabilities, so they stay in float and may run on any device.
"""

from __future__ import annotations

import torch.nn as nn

from .gdn import GDN

__all__ = ["AnalysisTransform", "SynthesisTransform", "conv", "deconv"]


def conv(in_ch: int, out_ch: int, kernel_size: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=kernel_size // 2)


def deconv(in_ch: int, out_ch: int, kernel_size: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(
        in_ch, out_ch, kernel_size, stride=stride,
        padding=kernel_size // 2, output_padding=stride - 1,
    )


class AnalysisTransform(nn.Sequential):
    """g_a: x (B,3,H,W) in [0,1] -> y (B,M,H/16,W/16), four stride-2 5x5 convs with GDN."""

    def __init__(self, N: int, M: int):
        super().__init__(
            conv(3, N), GDN(N),
            conv(N, N), GDN(N),
            conv(N, N), GDN(N),
            conv(N, M),
        )


class SynthesisTransform(nn.Sequential):
    """g_s: ŷ (B,M,h,w) -> x̂ (B,3,16h,16w), the mirror of g_a with inverse GDN."""

    def __init__(self, N: int, M: int):
        super().__init__(
            deconv(M, N), GDN(N, inverse=True),
            deconv(N, N), GDN(N, inverse=True),
            deconv(N, N), GDN(N, inverse=True),
            deconv(N, 3),
        )
        # Start at mid-grey rather than black: the first steps then learn detail, not the DC.
        nn.init.constant_(self[-1].bias, 0.5)
