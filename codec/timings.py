"""Where the time of one encode or decode went (torch-free, so ``import codec`` stays light)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Timings"]


@dataclass
class Timings:
    """Wall time of the last call (seconds): network (transforms, entropy path) and entropy coding."""

    network: float = 0.0
    coding: float = 0.0

    @property
    def total(self) -> float:
        return self.network + self.coding
