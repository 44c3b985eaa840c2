"""The lic model: transforms, scale hyperprior and channel-conditional entropy model.

    x ─pad─► g_a ─► y ─⊙g(q)─► y' ──────────────► slices (P_k, R_k) ─► ŷ' ─⊙g⁻¹(q)─► g_s ─crop─► x̂
                             └─► h_a ─► ẑ ─► h_s ─► ψ ─┘

Two faces, as in CompressAI's latent codecs:
- ``forward(x, quality)`` for training: noisy latents, likelihoods of y and z, x̂.
- ``coder()`` for coding: a ``codec.coder.Coder`` on these weights, whose ``compress`` /
  ``decompress`` turn images into integer symbols and σ indexes and back (exact ŷ).  The model
  never touches bytes; ``codec.coding`` hands the symbols to ``bitstream``.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..coder import ALIGN, Coder
from .config import ModelConfig
from .gain import GainUnits
from .hyperprior import Hyperprior
from .integer import Arithmetic, IntConv2d
from .slices import ChannelConditional
from .transforms import AnalysisTransform, SynthesisTransform

__all__ = ["LicModel", "ForwardOutput"]


def _channels_last(transform: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """transform(x) on NHWC data, returned in the usual layout: oneDNN's convolutions run about
    twice as fast on channels-last tensors on CPU (the training loop uses it throughout)."""
    return transform(x.contiguous(memory_format=torch.channels_last)).contiguous()


class ForwardOutput(NamedTuple):
    x_hat: torch.Tensor  # (B, 3, H, W), not clamped
    y_likelihoods: torch.Tensor  # (B, M, H/16, W/16), in (0, 1]
    z_likelihoods: torch.Tensor  # (B, Nz, H/64, W/64), in (0, 1]


def _autocast(device_type: str, dtype: torch.dtype | None):
    """Autocast to ``dtype`` for the float transforms; None: off (float32)."""
    return torch.autocast(device_type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def _as_quality(quality, batch: int, device) -> torch.Tensor:
    q = torch.as_tensor(quality, dtype=torch.float32, device=device)
    return q.expand(batch) if q.ndim == 0 else q


class LicModel(nn.Module):
    def __init__(self, config: ModelConfig = ModelConfig(), build_tables: bool = True):
        super().__init__()
        self.config = config
        c = config
        self.g_a = AnalysisTransform(c.N, c.M)
        self.g_s = SynthesisTransform(c.N, c.M)
        self.hyper = Hyperprior(c.M, c.N, c.Nz, c.hyper_channels, c.z_table_radius)
        self.entropy = ChannelConditional(
            c.slices, c.hyper_channels, c.param_width, c.lrp_width,
            c.num_scales, c.scale_min, c.scale_max,
        )
        self.gain = GainUnits(c.M)
        if build_tables:  # loading skips this: the shipped tables come with the weights
            self.build_tables()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @staticmethod
    def _pad(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = -h % ALIGN, -w % ALIGN
        # Replicate, as the coder pads: a flat border costs almost no bits and has no edge to ring.
        return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x

    # -- training face --------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, quality, ste: bool = True,
                amp_dtype: torch.dtype | None = None, arithmetic: Arithmetic = Arithmetic.FAKE,
                rate_ste: bool = False) -> ForwardOutput:
        """x (B,3,H,W) in [0,1], quality a float or (B,) tensor in [1, 8].

        ``amp_dtype`` (e.g. bfloat16) autocasts the float transforms g_a and g_s only: the
        entropy path and the likelihoods always run in float32.  ``arithmetic`` is how the
        integer entropy path trains: FAKE (quantization-aware) or FLOAT (``integer.py``).
        ``rate_ste``: the rate of y on rounded latents, straight-through, instead of the noisy proxy.
        """
        h, w = x.shape[-2:]
        q = _as_quality(quality, x.shape[0], x.device)
        with _autocast(x.device.type, amp_dtype):
            y = self.g_a(self._pad(x))
        y = y.float() * self.gain.gain(q)
        hyper = self.hyper(y, arithmetic)
        y_hat, y_likelihoods = self.rate(y, hyper.features, ste=ste, arithmetic=arithmetic, rate_ste=rate_ste)
        x_hat = self.synthesise(y_hat, q, amp_dtype)
        return ForwardOutput(x_hat[..., :h, :w], y_likelihoods, hyper.z_likelihoods)

    def rate(self, y: torch.Tensor, features: torch.Tensor, *, ste: bool = True,
             arithmetic: Arithmetic = Arithmetic.FAKE,
             rounding: Callable[[torch.Tensor], torch.Tensor] | None = None,
             rate_ste: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The differentiable rate of latents y (gains applied) given the hyper features ψ:
        ``(ŷ', likelihoods)``, the likelihood of each latent in (0, 1] (its rate is −log2 of it, in
        bits, summed over whatever region is being costed).  Training sees the noisy proxy, or with
        ``rate_ste`` the rounded latents straight-through (eval mode: the rounded latents);
        ``rounding`` replaces the rounding of each slice's centred latents by a relaxation
        (``codec/refine.py``).  Shared by ``forward`` and latent refinement."""
        return self.entropy(y, features, ste=ste, mode=arithmetic, rounding=rounding, rate_ste=rate_ste)

    def synthesise(self, y_hat: torch.Tensor, quality, amp_dtype: torch.dtype | None = None) -> torch.Tensor:
        """x̂ = g_s(ŷ' ⊙ g⁻¹(q)) as float32 at the padded size, neither cropped nor clamped: the one
        synthesis of training (``forward``) and latent refinement.

        ``quality``: a float or (B,) tensor; ``amp_dtype`` autocasts g_s (None: float32).  g_s runs
        on channels-last tensors."""
        q = _as_quality(quality, y_hat.shape[0], y_hat.device)
        with _autocast(y_hat.device.type, amp_dtype):
            x_hat = _channels_last(self.g_s, y_hat.float() * self.gain.inverse_gain(q))
        return x_hat.float()

    # -- coding face ----------------------------------------------------------------------------
    def coder(self) -> Coder:
        """The coding face (``codec.coder``): image -> symbols -> image with these weights, the float
        transforms on torch (this model's device) and the exact entropy path shared by every runtime."""
        from ..engines.torch_transforms import TorchTransforms

        state = {k: v.detach().cpu().numpy() for k, v in self.state_dict().items()}
        return Coder(self.config, state, TorchTransforms(self))

    # -- tables -----------------------------------------------------------------------------------
    @torch.no_grad()
    def build_tables(self) -> None:
        """The one step that makes coding tables from the weights; run by export, shipped after."""
        self.hyper.density.build_tables(self.config.table_precision)
        self.check_exact()

    @torch.no_grad()
    def check_exact(self) -> None:
        """Raise if some integer layer could leave float64's exact integer range."""
        for module in self.modules():
            if isinstance(module, IntConv2d):
                module.check_exact()
