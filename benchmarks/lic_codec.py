"""Adapter from lic's public API to the benchmark's ``Codec`` interface.

lic codes with ``codec.compress(pil_image, quality=q, effort=e) -> bytes`` and ``codec.decompress(data) -> PIL
image``, ``q`` a real number in [1, 8] and ``e`` the encoder effort (0: one pass; higher levels refine the
latents, same decoder). The sweep is q = 1..8, or 1, 1.5, ..., 8 with ``fine=True`` (``--lic-fine``), or the
``qualities`` given (``--lic-qualities``: fewer points for the slow high efforts); effort ``e`` > 0 is the codec
``lic-effort<e>`` (``--effort``). ``lic`` runs on the default runtime (ONNX Runtime), ``lic-torch`` on torch at
effort 0, for a side-by-side of the two (``codec.engines.runtime``); the adapter gives either ``--threads`` CPU threads.
The stage times of the last call (network and entropy coding, ``codec.Timings``) are recorded next to the total
wall time.
"""

from __future__ import annotations

import dataclasses

from PIL import Image

import codec
from benchmarks.codecs import Codec
from codec.effort import EFFORTS

__all__ = ["LicCodec", "lic_name", "lic_efforts", "TORCH_RUNTIME"]

TORCH_RUNTIME = "lic-torch"  # lic at effort 0 on the torch runtime

LIC_QUALITIES = tuple(float(q) for q in range(1, 9))
LIC_FINE_QUALITIES = tuple(1.0 + 0.5 * k for k in range(15))


def lic_efforts() -> tuple[int, ...]:
    """lic's encoder efforts."""
    return tuple(sorted(EFFORTS))


def lic_name(effort: int) -> str:
    """The benchmark's name for lic at an encoder effort."""
    return "lic" if effort == 0 else f"lic-effort{effort}"


class LicCodec(Codec):
    description = "lic learned image codec (codec.compress / codec.decompress)"
    mid_quality = 4.0

    def __init__(self, fine: bool = False, threads: int = 2, effort: int = 0,
                 qualities: tuple[float, ...] | None = None, runtime: str = "auto") -> None:
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self.qualities = tuple(qualities) if qualities else LIC_FINE_QUALITIES if fine else LIC_QUALITIES
        self.threads = threads
        self.effort = effort
        self.runtime = runtime
        self.name = TORCH_RUNTIME if runtime == "torch" else lic_name(effort)
        if effort:
            self.description = f"lic, encoder effort {effort} (latents refined per image; same decoder)"
        elif runtime == "torch":
            self.description = "lic on the torch runtime (same files)"
        self._codecs: dict[int, codec.Codec] = {}
        self._last: codec.Codec | None = None  # the codec of the last encode or decode, for its timings

    def _lic(self, effort: int | None = None) -> codec.Codec:
        """The adapter's ``codec.Codec`` at ``effort`` (default: its own), made on first use (a registry lists
        codecs it never runs)."""
        effort = self.effort if effort is None else effort
        if effort not in self._codecs:
            self._codecs[effort] = lic = codec.Codec(effort=effort, runtime=self.runtime, threads=self.threads)
            if lic.runtime == "torch":
                import torch

                torch.set_num_threads(self.threads)
        return self._codecs[effort]

    def encode(self, img: Image.Image, quality: float) -> bytes:
        self._last = self._lic()
        return self._last.compress(img.convert("RGB"), quality=float(quality))

    def decode(self, data: bytes) -> Image.Image:
        # Every effort's files are decoded as `lic decode` decodes them: by the effort-0 codec of the same runtime
        # (an effort above 0 makes "auto" pick torch for the encoder's refinement, not for the decoder).
        self._last = self._lic(0)
        return self._last.decompress(data).convert("RGB")

    def timings(self) -> dict[str, float]:
        """Network and entropy-coding seconds of the last call."""
        return dataclasses.asdict(self._last.last_timings) if self._last is not None else {}

    def provenance(self) -> dict[str, str]:
        """The fingerprint of the weights measured (the one every file's header records)."""
        return {"weights": self._lic().model_hash.hex()}
