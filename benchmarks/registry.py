"""Every codec the benchmark measures, by name: lic at each encoder effort and on the torch runtime, then
the others."""

from __future__ import annotations

from benchmarks.codecs import Codec, pillow_codecs
from benchmarks.hevc import HevcCodec
from benchmarks.lic_codec import TORCH_RUNTIME, LicCodec, lic_efforts

__all__ = ["registry", "get_codec"]


def registry(lic_options: dict | None = None) -> dict[str, Codec]:
    """All codecs by name, in plotting order: lic at each encoder effort ("lic", "lic-effort1", ...), lic
    on torch ("lic-torch"), then the others. ``lic_options`` go to lic's adapter (``fine``, ``threads``,
    ``qualities``)."""
    lic = [LicCodec(**(lic_options or {}), effort=e) for e in lic_efforts()]
    lic.append(LicCodec(**(lic_options or {}), runtime="torch"))
    codecs: list[Codec] = lic + pillow_codecs() + [HevcCodec()]
    return {c.name: c for c in codecs}


def get_codec(name: str, lic_options: dict | None = None) -> Codec:
    codecs = registry(lic_options)
    if name not in codecs:
        raise KeyError(f"unknown codec {name!r}; known: {', '.join(codecs)}")
    return codecs[name]
