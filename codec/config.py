"""The one place where the model's hyperparameters live.

``ModelConfig`` is frozen, validated, and saved next to the weights (as JSON in the
safetensors metadata), so a checkpoint always says what it is; hyperparameters are never
inferred from weight shapes.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

from bitstream.quality import MAX_QUALITY, MIN_QUALITY, check_quality

__all__ = ["ModelConfig", "QUALITY_LAMBDAS", "MIN_QUALITY", "MAX_QUALITY", "lambda_for_quality", "rd_cost", "level_position",
           "MAX_EFFORT", "DEFAULT_EFFORT", "check_effort"]

# The quality range [1, 8] and its 1/256 step are the file format's (bitstream.quality: the header
# field defines them, and bitstream must not import codec).  The model has one λ per integer quality
# of that range (tests/codec/test_quality.py checks they agree).
# Rate-distortion trade-off per integer quality level 1..8 (CompressAI's zoo, MSE on 0..255).
QUALITY_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800)


# Encoder effort: 0 codes g_a's latents as they are; 1..MAX_EFFORT refine them for the image
# (codec/refine.py holds what each level runs).  The decoder and the format do not depend on it.
MAX_EFFORT = 3
DEFAULT_EFFORT = 0


def check_effort(effort) -> int:
    """``effort`` as an int in [0, MAX_EFFORT]; ``InputError`` (a ``ValueError``) otherwise."""
    from bitstream import InputError

    if isinstance(effort, bool) or not isinstance(effort, int) or not 0 <= effort <= MAX_EFFORT:
        raise InputError(f"effort must be an integer from 0 to {MAX_EFFORT}, got {effort!r}")
    return effort


def level_position(quality, dtype=None):
    """Where tensor qualities fall between the integer levels: ``(low, t)`` with ``low`` the
    0-based index of the level below (long) and ``t`` in [0, 1] the way to the next, so that a
    per-level table interpolates as ``(1 − t)·table[low] + t·table[low + 1]``.  Clamped to the
    range; computed in ``dtype`` (default: the quality's).  Shared by λ(q) and the gain units."""
    q = (quality if dtype is None else quality.to(dtype)).clamp(MIN_QUALITY, MAX_QUALITY) - MIN_QUALITY
    low = q.floor().clamp(max=len(QUALITY_LAMBDAS) - 2)
    return low.long(), q - low


def lambda_for_quality(quality):
    """λ for a real quality in [1, 8], interpolated geometrically between the table's levels:
    log λ(l + t) = (1 − t)·log λ_l + t·log λ_{l+1}.

    ``quality`` is a float (checked against the range), or a torch tensor of qualities (the
    training form: elementwise, float32 out, clamped to the range; torch is imported only then).
    """
    if hasattr(quality, "detach"):
        import torch

        table = torch.tensor([math.log(v) for v in QUALITY_LAMBDAS], dtype=torch.float64, device=quality.device)
        low, t = level_position(quality, torch.float64)
        return torch.exp((1 - t) * table[low] + t * table[low + 1]).float()
    quality = check_quality(quality)
    level = min(int(math.floor(quality)), int(MAX_QUALITY) - 1)  # the integer level at or below
    t = quality - level
    a = math.log(QUALITY_LAMBDAS[level - int(MIN_QUALITY)])
    b = math.log(QUALITY_LAMBDAS[level - int(MIN_QUALITY) + 1])
    return math.exp((1 - t) * a + t * b)


def rd_cost(bpp, mse, quality):
    """The objective every part of lic minimises: J = R + λ(q)·255²·D, with R in bits per pixel
    and D the mean squared error on [0, 1] (×255² puts it on the 8-bit scale λ was tuned for;
    Ballé et al. 2018).  Floats or tensors, elementwise; ``quality`` as for ``lambda_for_quality``."""
    return bpp + lambda_for_quality(quality) * 255**2 * mse


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a lic model (defaults: the shipped size, after Minnen & Singh 2020)."""

    model_id: str = "lic-cc"
    N: int = 192  # channels inside g_a / g_s
    M: int = 320  # latent channels (y)
    Nz: int = 192  # hyper-latent channels (z)
    hyper_channels: int = 192  # features h_s hands to the slice networks
    # Uneven slices (ELIC, He et al. 2022): small first slices are cheap context for the rest.
    slices: tuple[int, ...] = (16, 16, 32, 64, 192)
    param_width: int = 192  # hidden width of each slice's mean/scale network
    lrp_width: int = 128  # hidden width of each slice's latent-residual-prediction network
    # Gaussian scale table: num_scales stds on a log grid (CompressAI/TFC use 64 over 0.11..256).
    num_scales: int = 64
    scale_min: float = 0.11
    scale_max: float = 256.0
    # z is coded with per-channel tables over 2*radius+1 values around each channel's median.
    z_table_radius: int = 64
    # Precision (bits) of the integer probability tables shipped for z.
    table_precision: int = 16

    def __post_init__(self):
        object.__setattr__(self, "slices", tuple(int(s) for s in self.slices))
        for name in ("N", "M", "Nz", "hyper_channels", "param_width", "lrp_width"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.slices or min(self.slices) < 1 or sum(self.slices) != self.M:
            raise ValueError(f"slices {self.slices} must be positive and sum to M={self.M}")
        if not 2 <= self.num_scales <= 256:
            raise ValueError("num_scales must be in [2, 256]")
        if not 0 < self.scale_min < self.scale_max:
            raise ValueError("need 0 < scale_min < scale_max")
        if not 1 <= self.z_table_radius <= 1024:
            raise ValueError("z_table_radius must be in [1, 1024]")
        if not 8 <= self.table_precision <= 16:
            raise ValueError("table_precision must be in [8, 16]")
        if not self.model_id.isascii() or not 0 < len(self.model_id) <= 32:
            raise ValueError("model_id must be 1..32 ASCII characters")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        data = json.loads(text)
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"unknown model config fields: {sorted(unknown)}")
        return cls(**data)

    @classmethod
    def tiny(cls, **overrides) -> "ModelConfig":
        """A few-thousand-parameter model for tests."""
        base = dict(
            model_id="lic-tiny", N=16, M=16, Nz=8, hyper_channels=16, slices=(2, 2, 4, 8),
            param_width=16, lrp_width=8, z_table_radius=16,
        )
        base.update(overrides)
        return cls(**base)
