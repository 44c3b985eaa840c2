"""The lic model: transforms, scale hyperprior and channel-conditional entropy model.

    x ─pad─► g_a ─► y ─⊙g(q)─► y' ──────────────► slices (P_k, R_k) ─► ŷ' ─⊙g⁻¹(q)─► g_s ─crop─► x̂
                             └─► h_a ─► ẑ ─► h_s ─► ψ ─┘

Two faces, as in CompressAI's latent codecs:
- ``forward(x, quality)`` for training: noisy latents, likelihoods of y and z, x̂.
- ``compress`` / ``decompress`` for coding: integer symbols and σ indexes in, exact ŷ out.  The
  model never touches bytes; ``codec.coding`` hands the symbols to ``bitstream``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig
from .gain import GainUnits
from .hyperprior import Hyperprior, HyperOutput
from .integer import Arithmetic, IntConv2d
from .precision import native_bf16
from .slices import ChannelConditional, SliceCode
from .transforms import AnalysisTransform, SynthesisTransform

__all__ = ["LicModel", "ForwardOutput", "Compressed", "CodingTables", "ALIGN"]

# g_a has four stride-2 stages (y is 1/16 of the image), h_a two more (z is 1/4 of y): inputs are
# padded to a multiple of 64.
Y_STRIDE = 16
Z_STRIDE = 4
ALIGN = Y_STRIDE * Z_STRIDE
# g_a / g_s run in overlapping tiles of this many pixels a side above it, to bound memory on huge
# images; the halo (pixels) covers the transforms' receptive field, so tiling leaves no seams.
TRANSFORM_TILE = 1024
TRANSFORM_HALO = 64


def _channels_last(transform: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """transform(x) on NHWC data, returned in the usual layout: oneDNN's convolutions run about
    twice as fast on channels-last tensors on CPU (the training loop uses it throughout)."""
    return transform(x.contiguous(memory_format=torch.channels_last)).contiguous()


class ForwardOutput(NamedTuple):
    x_hat: torch.Tensor  # (B, 3, H, W), not clamped
    y_likelihoods: torch.Tensor  # (B, M, H/16, W/16), in (0, 1]
    z_likelihoods: torch.Tensor  # (B, Nz, H/64, W/64), in (0, 1]


class Compressed(NamedTuple):
    z_symbols: torch.Tensor  # int32 (1, Nz, h/4, w/4)
    slices: list[SliceCode]  # per slice: int32 symbols and their σ indexes
    y_hat: torch.Tensor  # float64 (1, M, h, w): exactly the ŷ' the decoder will rebuild


class CodingTables(NamedTuple):
    """What the range coder needs besides the symbols: built once from the weights, shipped."""

    z_pmf: torch.Tensor  # int32 (Nz, 2r+1): integer frequencies of ẑ per channel
    z_offset: torch.Tensor  # int32 (Nz,): the value of each row's first frequency
    scales: torch.Tensor  # float64 (L,): the σ table that the slices' indexes point into


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

    # -- geometry ---------------------------------------------------------------------------
    @staticmethod
    def latent_size(height: int, width: int) -> tuple[int, int]:
        """Size of y for an image of height x width (after padding to a multiple of 64)."""
        return -(-height // ALIGN) * ALIGN // Y_STRIDE, -(-width // ALIGN) * ALIGN // Y_STRIDE

    @classmethod
    def hyper_latent_size(cls, height: int, width: int) -> tuple[int, int]:
        """Size of z (the symbols coded first) for an image of height x width."""
        h, w = cls.latent_size(height, width)
        return h // Z_STRIDE, w // Z_STRIDE

    @staticmethod
    def tile_count(height: int, width: int) -> int:
        """How many tiles g_a (and g_s) run in for an image of height x width; 1 when untiled."""
        h, w = -(-height // ALIGN) * ALIGN, -(-width // ALIGN) * ALIGN
        if h <= TRANSFORM_TILE + 2 * TRANSFORM_HALO and w <= TRANSFORM_TILE + 2 * TRANSFORM_HALO:
            return 1
        return -(-h // TRANSFORM_TILE) * -(-w // TRANSFORM_TILE)

    @contextmanager
    def counting_tiles(self, callback: Callable[[], object], encoding: bool):
        """Within the block, ``callback()`` runs after each tile of g_a (``encoding``) or g_s:
        progress over a large image.  A forward hook, so the computation is untouched."""
        def hook(module, inputs, output) -> None:  # returning None keeps the output
            callback()

        handle = (self.g_a if encoding else self.g_s).register_forward_hook(hook)
        try:
            yield
        finally:
            handle.remove()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @staticmethod
    def _pad(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = -h % ALIGN, -w % ALIGN
        # Replicate, not zeros: a flat border costs almost no bits and has no edge to ring.
        return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x

    # -- training face --------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, quality, ste: bool = True,
                amp_dtype: torch.dtype | None = None, arithmetic: Arithmetic = Arithmetic.FAKE) -> ForwardOutput:
        """x (B,3,H,W) in [0,1], quality a float or (B,) tensor in [1, 8].

        ``amp_dtype`` (e.g. bfloat16) autocasts the float transforms g_a and g_s only: the
        entropy path and the likelihoods always run in float32.  ``arithmetic`` is how the
        integer entropy path trains: FAKE (quantization-aware) or FLOAT (``integer.py``).
        """
        h, w = x.shape[-2:]
        q = _as_quality(quality, x.shape[0], x.device)
        with _autocast(x.device.type, amp_dtype):
            y = self.g_a(self._pad(x))
        y = y.float() * self.gain.gain(q)
        hyper = self.hyper(y, arithmetic)
        y_hat, y_likelihoods = self.rate(y, hyper.features, ste=ste, arithmetic=arithmetic)
        x_hat = self.synthesise(y_hat, q, amp_dtype)
        return ForwardOutput(x_hat[..., :h, :w], y_likelihoods, hyper.z_likelihoods)

    def rate(self, y: torch.Tensor, features: torch.Tensor, *, ste: bool = True,
             arithmetic: Arithmetic = Arithmetic.FAKE,
             rounding: Callable[[torch.Tensor], torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The differentiable rate of latents y (gains applied) given the hyper features ψ:
        ``(ŷ', likelihoods)``, the likelihood of each latent in (0, 1] (its rate is −log2 of it, in
        bits, summed over whatever region is being costed).  Training sees the noisy proxy (eval
        mode: the rounded latents); ``rounding`` replaces the rounding of each slice's centred
        latents by a relaxation (``refine.py``).  Shared by ``forward`` and latent refinement."""
        return self.entropy(y, features, ste=ste, mode=arithmetic, rounding=rounding)

    def synthesise(self, y_hat: torch.Tensor, quality, amp_dtype: torch.dtype | None = None) -> torch.Tensor:
        """x̂ = g_s(ŷ' ⊙ g⁻¹(q)) as float32 at the padded size, neither cropped nor clamped: the one
        synthesis of training (``forward``), decoding (``reconstruct``) and latent refinement.

        ``quality``: a float or (B,) tensor; ``amp_dtype`` autocasts g_s (None: float32).  g_s runs
        on channels-last tensors, in overlapping tiles on large latents (``_tiled``)."""
        q = _as_quality(quality, y_hat.shape[0], y_hat.device)
        with _autocast(y_hat.device.type, amp_dtype):
            x_hat = self._tiled(self.g_s, y_hat.float() * self.gain.inverse_gain(q), 1 / Y_STRIDE)
        return x_hat.float()

    # -- coding face ----------------------------------------------------------------------------
    @torch.no_grad()
    def compress(self, x: torch.Tensor, quality: float) -> Compressed:
        """x (1,3,H,W) in [0,1] -> integer symbols.  ``quality`` must be the value the header stores."""
        return self.code_latents(*self.analyse(x, quality)[1:])

    @torch.no_grad()
    def analyse(self, x: torch.Tensor, quality: float) -> tuple[torch.Tensor, torch.Tensor, HyperOutput]:
        """The encoder's first half: (x padded, y = g_a(x) ⊙ g(q), the coded ẑ with its ψ).

        Split from ``code_latents`` so an encoder may replace y by better latents for the same
        ẑ (``refine.py``) before coding."""
        if x.ndim != 4 or x.shape[0] != 1 or x.shape[1] != 3:
            raise ValueError(f"compress expects one RGB image (1,3,H,W), got {tuple(x.shape)}")
        q = _as_quality(quality, 1, x.device)
        x_padded = self._pad(x)
        # g_a trains under bf16 autocast and only picks the latents (the file is exact whatever it
        # computes), so it runs in bf16 where that is native: faster, at the rate-distortion that
        # training reached with it.
        with _autocast(x.device.type, torch.bfloat16 if native_bf16(x.device.type) else None):
            y = self._tiled(self.g_a, x_padded, Y_STRIDE)
        y = y.float() * self.gain.gain(q)
        return x_padded, y, self.hyper.compress(y)

    @torch.no_grad()
    def code_latents(self, y: torch.Tensor, hyper: HyperOutput) -> Compressed:
        """The encoder's second half: latents y and the coded ẑ -> integer symbols."""
        y_hat, codes = self.entropy.compress(y, hyper.features)
        return Compressed(hyper.z_symbols, codes, y_hat)

    @torch.no_grad()
    def decompress(self, z_symbols: torch.Tensor, read_slice: Callable[[int, torch.Tensor], torch.Tensor],
                   quality: float, size: tuple[int, int]) -> torch.Tensor:
        """Rebuild x̂ (1,3,H,W) in [0,1]; ``read_slice(k, σ-indexes)`` returns slice k's symbols."""
        hyper = self.hyper.decompress(z_symbols.to(self.device))
        y_hat = self.entropy.decompress(hyper.features, read_slice)
        return self.reconstruct(y_hat, quality, size)

    @torch.no_grad()
    def reconstruct(self, y_hat: torch.Tensor, quality: float, size: tuple[int, int]) -> torch.Tensor:
        """The decoder's image: ``synthesise`` in float32, cropped to ``size`` and clamped to [0, 1]."""
        return self.synthesise(y_hat, quality)[..., : size[0], : size[1]].clamp(0, 1)

    def _tiled(self, transform: nn.Module, x: torch.Tensor, factor: float) -> torch.Tensor:
        """transform(x) in overlapping tiles; ``factor`` = input pixels per output pixel."""
        h, w = x.shape[-2:]
        in_tile, in_halo = TRANSFORM_TILE, TRANSFORM_HALO  # in pixels: g_a's input, g_s's output
        if factor < 1:
            in_tile, in_halo = in_tile // Y_STRIDE, in_halo // Y_STRIDE
        if h <= in_tile + 2 * in_halo and w <= in_tile + 2 * in_halo:
            return _channels_last(transform, x)
        rows = []
        for r0 in range(0, h, in_tile):
            cols = []
            for c0 in range(0, w, in_tile):
                r1, c1 = min(h, r0 + in_tile), min(w, c0 + in_tile)
                a, b = max(0, r0 - in_halo), max(0, c0 - in_halo)
                out = _channels_last(transform, x[..., a : min(h, r1 + in_halo), b : min(w, c1 + in_halo)])
                ta, tb = round((r0 - a) / factor), round((c0 - b) / factor)
                cols.append(out[..., ta : ta + round((r1 - r0) / factor), tb : tb + round((c1 - c0) / factor)])
            rows.append(torch.cat(cols, dim=-1))
        return torch.cat(rows, dim=-2)

    # -- tables -----------------------------------------------------------------------------------
    @property
    def coding_tables(self) -> CodingTables:
        """The shipped tables the range coder codes with (on the model's device)."""
        density = self.hyper.density
        return CodingTables(density.table_pmf, density.table_offset, self.entropy.scales)

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
