"""HEVC intra 4:4:4 with the x265 command-line encoder, measured the way bpgenc (libbpg 0.9.8) would: the BPG
stand-in, as bpgenc itself is not packaged.

Pipeline (one image):

    RGB 8-bit ──BPG fixed-point BT.601 full range──▶ YCbCr 4:4:4 8-bit (raw yuv444p file)
        ──x265 --preset veryslow --tune ssim --qp QP --keyint 1 --frames 1 --no-info──▶ HEVC Annex-B stream
        ──ffmpeg -f rawvideo -pix_fmt yuv444p──▶ YCbCr ──fixed-point inverse──▶ RGB

Colour conversion: as bpgenc's ``convert_init``/``rgb24_to_ycc`` for full-range YCbCr (K_R = 0.299,
K_B = 0.114): the nine coefficients of the RGB→YCbCr matrix are scaled by 2^23 (``c_shift = 31 − bit_depth``)
and rounded to integers; each output is ``(Σ c·x + 2^22) >> 23`` (+128 for chroma), clipped to 0..255.
The inverse is the exact inverse matrix in the same fixed point with 2^14 scaling and rounding.

Size: bpgenc does not store the x265 stream as is (``build_modified_hevc``): it drops the VPS and SPS NAL units,
replaces the SPS by a compact one (``build_modified_sps``: five ue(v) values and four flags, 3 bytes for these x265
settings, preceded by its 1-byte length), writes the remaining NAL units (PPS, slice) dropping only the first
start code, and prefixes its own header: magic (4 bytes), 2 bytes of format flags, then ue7 (7 bits per byte)
width, height and picture data length. So

    bpg_bytes = stream_bytes − |VPS| − |SPS| − |first start code after them| + 6 + ue7(W) + ue7(H)
                + ue7(picture data length) + 1 + 3

(NAL sizes include their start codes). For 768×512 Kodak images this is the stream minus 56 bytes (57 when the
picture data is under 16 384 bytes, whose length then fits in 2 ue7 bytes), which matches the
``file_minus_bpg_equiv_bytes`` (56–57) of the reference ``measured-hevc444-x265-bpgsize.json``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.codecs import Codec

__all__ = ["HevcCodec", "rgb_to_ycbcr", "ycbcr_to_rgb", "bpg_size", "split_nal_units"]

_KR, _KB = 0.299, 0.114
_FORWARD_SHIFT = 23  # bpgenc: c_shift = 31 - output bit depth
_INVERSE_SHIFT = 14
_NAL_VPS, _NAL_SPS = 32, 33
_BPG_FIXED_HEADER = 6  # magic 'BPG\xfb' + pixel format/alpha/bit depth byte + colour space/flags byte
_BPG_COMPACT_SPS = 3  # bpgenc's modified SPS for x265's intra settings (19 bits), see module docstring
_BPG_COMPACT_SPS_LENGTH = 1  # its ue7 length field
_PAD = 8  # bpgenc's coding block size (cb_size)

X265_ARGS = ("--input-csp", "i444", "--fps", "25", "--preset", "veryslow", "--tune", "ssim", "--keyint", "1",
             "--frames", "1", "--input-depth", "8", "--output-depth", "8", "--no-info", "--log-level", "error",
             "--pools", "1", "--frame-threads", "1")


def _matrix() -> np.ndarray:
    kg = 1.0 - _KR - _KB
    return np.array([
        [_KR, kg, _KB],
        [-0.5 * _KR / (1 - _KB), -0.5 * kg / (1 - _KB), 0.5],
        [0.5, -0.5 * kg / (1 - _KR), -0.5 * _KB / (1 - _KR)],
    ])


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 RGB → 3×H×W uint8 planes Y, Cb, Cr, with bpgenc's 2^23 fixed-point full-range BT.601."""
    coeffs = np.rint(_matrix() * (1 << _FORWARD_SHIFT)).astype(np.int64)
    x = rgb.astype(np.int64).reshape(-1, 3).T
    acc = (coeffs @ x + (1 << (_FORWARD_SHIFT - 1))) >> _FORWARD_SHIFT
    acc[1:] += 128
    return np.clip(acc, 0, 255).astype(np.uint8).reshape(3, *rgb.shape[:2])


def ycbcr_to_rgb(planes: np.ndarray) -> np.ndarray:
    """3×H×W uint8 Y, Cb, Cr → H×W×3 uint8 RGB, inverse matrix in 2^14 fixed point with rounding."""
    coeffs = np.rint(np.linalg.inv(_matrix()) * (1 << _INVERSE_SHIFT)).astype(np.int64)
    x = planes.astype(np.int64).reshape(3, -1)
    x[1:] -= 128
    acc = (coeffs @ x + (1 << (_INVERSE_SHIFT - 1))) >> _INVERSE_SHIFT
    return np.clip(acc, 0, 255).astype(np.uint8).T.reshape(*planes.shape[1:], 3)


def split_nal_units(stream: bytes) -> list[tuple[int, bytes]]:
    """Annex-B stream → [(nal_unit_type, bytes including the start code)]; 3- or 4-byte start codes."""
    starts = []
    i = stream.find(b"\x00\x00\x01")
    while i >= 0:
        begin = i - 1 if i > 0 and stream[i - 1] == 0 else i
        starts.append((begin, i + 3))
        i = stream.find(b"\x00\x00\x01", i + 3)
    units = []
    for k, (begin, payload) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else len(stream)
        units.append(((stream[payload] >> 1) & 0x3F, stream[begin:end]))
    return units


def _ue7_len(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


def bpg_size(stream: bytes, width: int, height: int) -> int:
    """Bytes of the .bpg file bpgenc would write for this x265 stream (rule in the module docstring)."""
    units = split_nal_units(stream)
    kept = [u for t, u in units if t not in (_NAL_VPS, _NAL_SPS)]
    if len(kept) == len(units) or not kept:
        raise ValueError("expected VPS/SPS parameter sets followed by other NAL units")
    first = kept[0]
    first_start_code = 4 if first.startswith(b"\x00\x00\x00\x01") else 3
    picture_data = _BPG_COMPACT_SPS_LENGTH + _BPG_COMPACT_SPS + sum(map(len, kept)) - first_start_code
    header = _BPG_FIXED_HEADER + _ue7_len(width) + _ue7_len(height) + _ue7_len(picture_data)
    return header + picture_data


class HevcCodec(Codec):
    """HEVC intra 4:4:4 (x265 CLI + ffmpeg), sized as BPG. The encoded bytes are the raw x265 stream prefixed by
    a 4-byte width/height header (needed to decode); the rate reported is ``bpg_size`` of the stream."""

    name = "hevc444"
    description = ("HEVC intra 4:4:4 (x265 CLI 3.5, preset veryslow, tune ssim, --no-info), BPG fixed-point "
                   "full-range BT.601 colour conversion; bpp = size bpgenc would write for the same stream")
    qualities = (47, 42, 37, 32, 27, 22, 17, 12)
    mid_quality = 32

    def available(self) -> tuple[bool, str]:
        missing = [tool for tool in ("x265", "ffmpeg") if shutil.which(tool) is None]
        if missing:
            return False, f"{' and '.join(missing)} not installed (apt-get install x265 ffmpeg)"
        return True, ""

    def encode(self, img: Image.Image, quality: float) -> bytes:
        rgb = np.asarray(img.convert("RGB"))
        height, width = rgb.shape[:2]
        # bpgenc pads to a multiple of its 8-pixel coding block by repeating the last row and column, and
        # stores the true size in its header; x265 rejects sizes that are not multiples of 8 in 4:4:4.
        padded = np.pad(rgb, ((0, -height % _PAD), (0, -width % _PAD), (0, 0)), mode="edge")
        with tempfile.TemporaryDirectory() as tmp:
            src, out = Path(tmp) / "in.yuv", Path(tmp) / "out.hevc"
            src.write_bytes(rgb_to_ycbcr(padded).tobytes())
            res = f"{padded.shape[1]}x{padded.shape[0]}"
            subprocess.run(["x265", "--input", str(src), "--input-res", res, *X265_ARGS,
                            "--qp", str(int(quality)), "--output", str(out)],
                           check=True, capture_output=True)
            stream = out.read_bytes()
        return width.to_bytes(2, "big") + height.to_bytes(2, "big") + stream

    def file_size(self, data: bytes) -> int:
        width, height = int.from_bytes(data[:2], "big"), int.from_bytes(data[2:4], "big")
        return bpg_size(data[4:], width, height)

    def decode(self, data: bytes) -> Image.Image:
        width, height = int.from_bytes(data[:2], "big"), int.from_bytes(data[2:4], "big")
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "in.hevc"
            src.write_bytes(data[4:])
            raw = subprocess.run(["ffmpeg", "-v", "error", "-threads", "1", "-f", "hevc", "-i", str(src),
                                  "-f", "rawvideo", "-pix_fmt", "yuv444p", "-"],
                                 check=True, capture_output=True).stdout
        padded_w, padded_h = width + (-width % _PAD), height + (-height % _PAD)
        planes = np.frombuffer(raw, dtype=np.uint8)[: 3 * padded_w * padded_h].reshape(3, padded_h, padded_w)
        return Image.fromarray(ycbcr_to_rgb(np.ascontiguousarray(planes[:, :height, :width])))
