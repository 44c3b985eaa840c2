"""The one place where the model's hyperparameters live.

``ModelConfig`` is frozen, validated, and saved next to the weights (as JSON in the
safetensors metadata), so a checkpoint always says what it is; hyperparameters are never
inferred from weight shapes.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

__all__ = ["ModelConfig"]


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
    lrp_width: int = 128  # hidden width of each slice's latent correction network (LRP)
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
