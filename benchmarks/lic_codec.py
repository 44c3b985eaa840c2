"""Adapter from lic's public API to the benchmark's ``Codec`` interface.

lic exposes ``codec.compress(pil_image, quality=q, effort=e) -> bytes`` and ``codec.decompress(data) -> PIL
image`` with ``q`` a real number in [1, 8] and ``e`` the encoder effort (0: one pass; 1-3 refine the latents, same
decoder). The sweep is q = 1..8, or 1, 1.5, ..., 8 with ``fine=True`` (``--lic-fine``), or the ``qualities``
given (``--lic-qualities``: fewer points for the slow high efforts); effort ``e`` > 0 is the codec
``lic-effort<e>`` (``--effort``).

Optional hooks, used only when lic offers them (checked with ``hasattr``, never required):
- ``codec.set_num_threads(n)``: how many CPU threads lic may use (``--threads``); otherwise the adapter calls
  ``torch.set_num_threads(n)`` before coding, since lic runs on torch.
- ``last_timings`` on ``codec`` itself or on ``codec.default_codec()`` (the shared codec object behind
  ``compress``): the stage times in seconds of the most recent compress/decompress call, as a mapping or a
  dataclass (lic's ``Timings(network, coding)``); recorded next to the total wall time.

If ``codec.compress`` does not exist (lic is still being written), or fails on a small test image (e.g. no
trained weights yet), the codec reports itself unavailable and the benchmark skips it with a note.
"""

from __future__ import annotations

import dataclasses
import importlib

from PIL import Image

from benchmarks.codecs import Codec

__all__ = ["LicCodec", "lic_name"]

LIC_QUALITIES = tuple(float(q) for q in range(1, 9))
LIC_FINE_QUALITIES = tuple(1.0 + 0.5 * k for k in range(15))
_PROBE_SIZE = 64


def lic_name(effort: int) -> str:
    """The benchmark's name for lic at an encoder effort."""
    return "lic" if effort == 0 else f"lic-effort{effort}"


class LicCodec(Codec):
    description = "lic learned image codec (codec.compress / codec.decompress)"
    mid_quality = 4.0

    def __init__(self, fine: bool = False, threads: int = 2, effort: int = 0,
                 qualities: tuple[float, ...] | None = None) -> None:
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self.qualities = tuple(qualities) if qualities else LIC_FINE_QUALITIES if fine else LIC_QUALITIES
        self.threads = threads
        self.effort = effort
        self.name = lic_name(effort)
        if effort:
            self.description = f"lic, encoder effort {effort} (latents refined per image; same decoder)"
        self._module = None
        self._threads_set = False

    def _api(self):
        if self._module is None:
            self._module = importlib.import_module("codec")
        return self._module

    def available(self) -> tuple[bool, str]:
        try:
            api = self._api()
        except Exception as exc:  # an import error inside lic is lic's, report it and carry on
            return False, f"cannot import lic's 'codec' package ({type(exc).__name__}: {exc})"
        missing = [fn for fn in ("compress", "decompress") if not callable(getattr(api, fn, None))]
        if missing:
            return False, f"lic's API is not there yet (codec.{' / codec.'.join(missing)} missing)"
        # The API can exist before it works (e.g. no trained weights yet): code one small image to find out.
        probe = Image.new("RGB", (_PROBE_SIZE, _PROBE_SIZE), (120, 140, 160))
        try:
            self.decode(self.encode(probe, self.mid_quality))
        except Exception as exc:
            return False, f"lic's API fails on a test image ({type(exc).__name__}: {exc})"
        return True, ""

    def _set_threads(self) -> None:
        if self._threads_set:
            return
        api = self._api()
        if hasattr(api, "set_num_threads"):
            api.set_num_threads(self.threads)
        else:
            import torch

            torch.set_num_threads(self.threads)
        self._threads_set = True

    def encode(self, img: Image.Image, quality: float) -> bytes:
        self._set_threads()
        options = {"effort": self.effort} if self.effort else {}  # effort 0 works with any lic version
        return bytes(self._api().compress(img.convert("RGB"), quality=float(quality), **options))

    def decode(self, data: bytes) -> Image.Image:
        self._set_threads()
        return self._api().decompress(data).convert("RGB")

    def timings(self) -> dict[str, float]:
        api = self._api()
        stages = getattr(api, "last_timings", None)
        if stages is None and callable(getattr(api, "default_codec", None)):
            stages = getattr(api.default_codec(), "last_timings", None)
        if dataclasses.is_dataclass(stages) and not isinstance(stages, type):
            stages = dataclasses.asdict(stages)
        if not isinstance(stages, dict):
            return {}
        return {str(k): float(v) for k, v in stages.items() if isinstance(v, (int, float))}
