"""The Python API: ``compress(image) -> bytes`` and ``decompress(bytes) -> PIL image``.

    >>> import codec
    >>> data = codec.compress("photo.png", quality=4)   # a complete .lic file
    >>> codec.decompress(data).save("photo-lic.png")

``Codec`` holds one loaded model (and its fingerprint, which every header records); the module
functions use a default ``Codec`` per device, made on first use.  torch is imported only then,
so ``import codec`` stays cheap.  Weights: ``weights=`` argument, else the ``LIC_WEIGHTS``
environment variable, else the shards shipped in ``codec/weights``.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

import bitstream

from .config import MAX_QUALITY, MIN_QUALITY
from .images import CodedImage, decode_alpha, decoded_pixels, encode_alpha, from_decoded, to_coded
from .timings import Timings

__all__ = [
    "DEFAULT_QUALITY", "MIN_QUALITY", "MAX_QUALITY", "Codec", "Timings", "TargetResult",
    "compress", "decompress", "resolve_device", "weights_dir",
]



def _shipped_default_quality() -> float:
    """The default quality of the shipped weights: measured when they were exported
    (``python -m train.campaign finish``) as the stored quality whose mean over the 24 Kodak images
    is closest to 0.5 bpp, and kept in their metadata.  Single images land far above or below
    the mean; what each quality costs is in codec/weights/<model id>-kodak.json."""
    from .metadata import read_metadata

    try:
        return float(read_metadata(Path(__file__).parent / "weights")["default_quality"])
    except (OSError, ValueError, KeyError):  # weights without a measured default: mid-range
        return 4.0


DEFAULT_QUALITY = _shipped_default_quality()
# Bisection steps of a target search over quality in [1, 8]: 7 / 2**10 < one stored step of 1/256 * 2.
SEARCH_STEPS = 10


@dataclass
class TargetResult:
    """Outcome of a target search: the file, its quality, and whether the target was met."""

    data: bytes
    quality: float
    met: bool
    psnr: float | None = None  # dB over the decoded samples, for PSNR targets

    def __repr__(self) -> str:  # the file's size, not its bytes
        psnr = "" if self.psnr is None else f", psnr={self.psnr:.2f}"
        return f"TargetResult(quality={self.quality:g}, met={self.met}, {len(self.data):,} bytes{psnr})"


def weights_dir(weights: str | os.PathLike | None = None) -> Path | None:
    """Where the weights come from: the argument, else ``$LIC_WEIGHTS``, else None (shipped)."""
    if weights is not None:
        return Path(weights)
    env = os.environ.get("LIC_WEIGHTS")
    return Path(env) if env else None


def resolve_device(device: str = "auto") -> str:
    """"auto" -> "cuda" when available, else "cpu"; "cuda" without CUDA is a ``RuntimeError``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: CUDA is not available on this machine")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"unknown device {device!r} (use auto, cpu or cuda)")
    return device


def _check_quality(quality: float | None) -> float:
    """A quality in [1, 8] as a float; None is ``DEFAULT_QUALITY``.  Not a bool, not a string."""
    if quality is None:
        return DEFAULT_QUALITY
    if isinstance(quality, bool) or not isinstance(quality, numbers.Real):
        raise TypeError(f"quality must be a number in [{MIN_QUALITY:g}, {MAX_QUALITY:g}], got {quality!r}")
    quality = float(quality)
    if not (MIN_QUALITY <= quality <= MAX_QUALITY):  # also refuses NaN
        raise ValueError(f"quality must be in [{MIN_QUALITY:g}, {MAX_QUALITY:g}], got {quality:g}")
    return quality


def _lic_bytes(data) -> bytes:
    """The bytes of a .lic file: bytes-like, or read from a path."""
    if isinstance(data, (str, os.PathLike)):
        return Path(data).read_bytes()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"expected the bytes of a .lic file or a path to one, got {type(data).__name__}")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 arrays of the same shape (inf when equal)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


class Codec:
    """A loaded model that compresses images to ``.lic`` bytes and back.

    ``device``: "auto" (CUDA when available, else the CPU), "cpu" or "cuda"; ``quality``: the
    default for ``compress``, a real number in [1, 8], stored in steps of 1/256 (4.3 is kept as
    4.30078); ``weights``: a directory of safetensors shards (default as in the module doc).
    The bits do not depend on the device: a file made on a GPU decodes on a CPU.
    """

    def __init__(self, device: str = "auto", quality: float | None = DEFAULT_QUALITY,
                 weights: str | os.PathLike | None = None):
        self.quality = _check_quality(quality)
        self.device = resolve_device(device)  # before the model imports: a bad device fails fast

        from .weights import fingerprint, load_model

        self.weights = weights_dir(weights)
        self.model = load_model(self.weights, device=self.device)
        self.model_hash = fingerprint(self.model)  # hashes every tensor: once per Codec
        self.last_timings = Timings()

    # -- coding ----------------------------------------------------------------------------------
    def compress(self, image, quality: float | None = None) -> bytes:
        """Encode ``image`` (PIL image, path, numpy array or tensor) into a ``.lic`` file."""
        coded = to_coded(image)
        return self._encode(coded, self.quality if quality is None else quality)

    def decompress(self, data) -> Image.Image:
        """Decode a ``.lic`` file (bytes or a path); ``LicFormatError`` for anything that is not a valid one."""
        from .coding import decode_rgb

        t = Timings()  # decode_rgb validates the whole container before any network runs
        rgb, header, alpha_blob = decode_rgb(self.model, _lic_bytes(data), timings=t, model_hash=self.model_hash)
        alpha = decode_alpha(alpha_blob, header.width, header.height) if alpha_blob is not None else None
        self.last_timings = t
        return from_decoded(rgb, header.channels, alpha, header.icc)

    def _encode(self, coded: CodedImage, quality: float) -> bytes:
        from .coding import encode_rgb

        quality = _check_quality(quality)
        t = Timings()
        alpha = encode_alpha(coded.alpha) if coded.alpha is not None else None
        data = encode_rgb(self.model, coded.rgb, quality, channels=coded.channels, icc=coded.icc,
                          alpha=alpha, timings=t, model_hash=self.model_hash)
        self.last_timings = t
        return data

    # -- targets ---------------------------------------------------------------------------------
    def compress_to_size(self, image, max_bytes: int) -> TargetResult:
        """The highest-quality file of at most ``max_bytes`` bytes (each candidate really coded).

        If even quality 1 is larger, returns that file with ``met=False``.
        """
        coded = to_coded(image)
        encode = functools.lru_cache(maxsize=None)(lambda q: self._encode(coded, q))
        return self._bisect(lambda q: len(encode(q)) <= max_bytes, encode, prefer_high=True)

    def compress_to_bpp(self, image, bpp: float) -> TargetResult:
        """The highest-quality file at or under ``bpp`` bits per pixel (file bytes * 8 / pixels)."""
        coded = to_coded(image)
        width, height = coded.size
        return self.compress_to_size(coded, math.floor(bpp * width * height / 8))

    def compress_to_psnr(self, image, min_psnr: float) -> TargetResult:
        """The lowest-quality file whose decoded image has PSNR >= ``min_psnr`` dB.

        Candidates are scored without entropy coding: ``model.reconstruct`` of the encoder's ŷ is
        exactly what the decoder will output.  PSNR is over the decoded samples (gray for "L"
        images, RGB otherwise; alpha is lossless and not counted).  If even quality 8 falls
        short, returns that file with ``met=False``.
        """
        import torch

        coded = to_coded(image)
        original = decoded_pixels(coded.rgb, coded.channels)
        x = torch.from_numpy(coded.rgb).to(self.device).permute(2, 0, 1)[None].float() / 255

        @functools.lru_cache(maxsize=None)
        def score(q: float) -> float:
            q = bitstream.quantize_quality(q)
            code = self.model.compress(x, q)
            x_hat = self.model.reconstruct(code.y_hat, q, coded.rgb.shape[:2])
            rgb = torch.round(x_hat[0].permute(1, 2, 0) * 255).to(torch.uint8).cpu().numpy()
            return psnr(original, decoded_pixels(rgb, coded.channels))

        result = self._bisect(lambda q: score(q) >= min_psnr, lambda q: self._encode(coded, q),
                              prefer_high=False)
        result.psnr = score(result.quality)
        return result

    def _bisect(self, ok, encode, prefer_high: bool) -> TargetResult:
        """Search quality for the boundary of ``ok`` (monotone: true at low q for sizes, high q for PSNR).

        ``prefer_high``: the answer is the largest q where ok holds (size targets), else the smallest.
        Works on stored qualities (multiples of 1/256), so the file has exactly the quality tested.
        """
        q_bad, q_good = (MAX_QUALITY, MIN_QUALITY) if prefer_high else (MIN_QUALITY, MAX_QUALITY)
        if ok(q_bad):
            return TargetResult(encode(q_bad), q_bad, True)
        if not ok(q_good):
            return TargetResult(encode(q_good), q_good, False)
        for _ in range(SEARCH_STEPS):
            mid = bitstream.quantize_quality((q_bad + q_good) / 2)
            if mid in (q_bad, q_good):
                break
            if ok(mid):
                q_good = mid
            else:
                q_bad = mid
        return TargetResult(encode(q_good), q_good, True)


@functools.lru_cache(maxsize=4)
def _default_codec(device: str, weights: str | None) -> Codec:
    return Codec(device=device, weights=weights)


def default_codec(device: str = "auto") -> Codec:
    """The shared ``Codec`` for ``device`` and the current ``$LIC_WEIGHTS`` (made once)."""
    return _default_codec(device, os.environ.get("LIC_WEIGHTS") or None)


def compress(image, quality: float | None = DEFAULT_QUALITY, *, device: str = "auto") -> bytes:
    """Encode an image (PIL image, path, numpy array or torch tensor) into ``.lic`` bytes.

    ``quality``: a real number in [1, 8] (None: ``DEFAULT_QUALITY``), stored in steps of 1/256.
    Arrays and tensors hold uint8 or wider integers, bool, or floats in [0, 1]
    (``codec.images`` has the rule; anything else is a ``ValueError``).
    """
    quality = _check_quality(quality)
    return default_codec(device).compress(image, quality)


def decompress(data, *, device: str = "auto") -> Image.Image:
    """Decode a ``.lic`` file (bytes or a path) into a PIL image: mode "L", "RGB" or "RGBA" as encoded."""
    data = _lic_bytes(data)
    bitstream.unpack(data)  # a bad file fails before the model loads
    return default_codec(device).decompress(data)
