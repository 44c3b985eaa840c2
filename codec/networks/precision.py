"""Where bfloat16 pays: the float transforms g_a and g_s may run in it, never the entropy path.

bf16 halves the memory traffic of a convolution, but only hardware with bf16 arithmetic turns that
into speed: CUDA GPUs, and CPUs with AVX512_BF16 or AMX, where oneDNN has native bf16 convolutions.
Elsewhere bf16 is emulated and slower than fp32, so callers keep fp32 there.
"""

from __future__ import annotations

import functools
from pathlib import Path

__all__ = ["cpu_has_native_bf16", "native_bf16"]


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """AVX512_BF16 or AMX in /proc/cpuinfo (False where it cannot be read)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def native_bf16(device_type: str) -> bool:
    """Whether bf16 autocast on ``device_type`` ("cpu", "cuda") is expected to be faster."""
    return device_type == "cuda" or (device_type == "cpu" and cpu_has_native_bf16())
