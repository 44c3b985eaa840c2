"""The Python API: ``compress(image) -> bytes`` and ``decompress(bytes) -> PIL image``.

    >>> import codec
    >>> data = codec.compress("photo.png", quality=4)   # a complete .lic file
    >>> codec.decompress(data).save("photo-lic.png")

``Codec`` holds one loaded model (and its fingerprint, which every header records); the module
functions use a default ``Codec`` per device, made on first use, so ``import codec`` stays cheap.
Its runtime (``codec.engines.runtime``) is ONNX Runtime where installed, which never imports torch; torch
runs ``effort`` above 0 and CUDA devices.  Weights: ``weights=`` argument, else the ``LIC_WEIGHTS``
environment variable, else the shards shipped in ``codec/weights``.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

import bitstream
from bitstream import Container

from .alpha import decode_alpha, encode_alpha
from .effort import DEFAULT_EFFORT, check_effort
from .images import CodedImage, Image16, from_decoded, from_exact, to_coded, to_exact
from .limits import check_pixels
from .metrics import psnr
from .quality import MAX_QUALITY, MIN_QUALITY, check_quality, default_quality, quantize_quality
from .target import TargetResult, fit_psnr, fit_size
from .timings import Timings

if TYPE_CHECKING:  # coding is imported on first use, so that `import codec` stays cheap
    from .coding import Progress

__all__ = [
    "DEFAULT_QUALITY", "DEFAULT_EFFORT", "MIN_QUALITY", "MAX_QUALITY", "Codec", "Image16", "Timings", "TargetResult",
    "compress", "decompress", "compress_exact", "decompress_exact", "default_codec", "resolve_device", "weights_dir",
]


def __getattr__(name: str):
    """``DEFAULT_QUALITY``: the shipped weights' default (``codec.quality.default_quality``), read
    from their metadata when first asked for, so that importing lic reads no file."""
    if name == "DEFAULT_QUALITY":
        return default_quality()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def weights_dir(weights: str | os.PathLike | None = None) -> Path | None:
    """Where the weights come from: the argument, else ``$LIC_WEIGHTS``, else None (shipped)."""
    if weights is not None:
        return Path(weights)
    env = os.environ.get("LIC_WEIGHTS")
    return Path(env) if env else None


def resolve_device(device: str = "auto") -> str:
    """"auto" -> "cuda" when available, else "cpu"; "cuda" without CUDA is a ``RuntimeError``.
    Needs torch."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: CUDA is not available on this machine")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"unknown device {device!r} (use auto, cpu or cuda)")
    return device


def _lic_file(data, max_pixels: int | None = None) -> Container:
    """A parsed .lic file from its bytes, a path, or an already parsed ``bitstream.Container``,
    refused if it declares more pixels than ``max_pixels`` (``codec.limits``), before any decoding."""
    if isinstance(data, Container):
        container = data
    elif isinstance(data, (str, os.PathLike)):
        container = bitstream.unpack(Path(data).read_bytes())
    elif isinstance(data, (bytes, bytearray, memoryview)):
        container = bitstream.unpack(bytes(data))
    else:
        raise TypeError(f"expected the bytes of a .lic file or a path to one, got {type(data).__name__}")
    check_pixels(container.header, max_pixels)
    return container


class Codec:
    """A loaded model that compresses images to ``.lic`` bytes and back.

    ``device``: "auto", "cpu" or "cuda" (the torch runtime; "auto" is the CPU on ONNX Runtime);
    ``quality``: the default for ``compress``, a real number in [1, 8] (None: ``DEFAULT_QUALITY``),
    stored in steps of 1/256 (4.3 is kept as 4.30078); ``weights``: a directory of safetensors
    shards (default as in the module doc); ``runtime``: "auto", "onnx" or "torch"
    (``codec.engines.runtime``); ``threads``: ONNX Runtime's CPU threads (None: one per core; the torch
    runtime follows ``torch.set_num_threads``).  The bits do not depend on the device or the
    runtime: a file made on a GPU decodes on a CPU, one made by torch decodes on ONNX Runtime.

    Progress: ``compress``, ``decompress`` and the target searches take ``progress``, a callable
    ``progress(done, total)`` with integers: (0, total) before a coding pass starts, then after
    each unit of work, ending at (total, total).  The units are what the pass's time grows with:
    the tiles the transform runs in (one for most images, several for a large one; encoder and
    decoder alike), or the refinement's descent steps at effort 1-3.  A target
    search makes several passes (one per candidate it codes or scores), each from 0 to its total,
    and cannot say ahead how many.  Lossless and near-lossless files (``max_error``) report
    nothing: their coder is one pass of compiled code.
    """

    def __init__(self, device: str = "auto", quality: float | None = None,
                 weights: str | os.PathLike | None = None, effort: int = DEFAULT_EFFORT, runtime: str = "auto",
                 threads: int | None = None):
        from .engines.runtime import load, resolve_runtime

        self.quality = default_quality() if quality is None else check_quality(quality)
        self.effort = check_effort(effort)
        self.weights = weights_dir(weights)
        on_gpu = device not in ("auto", "cpu")
        self.runtime = resolve_runtime("torch" if runtime == "auto" and (on_gpu or self.effort) else runtime,
                                       self.weights)
        # Before the model loads: a bad device fails fast.
        self.device = resolve_device(device) if self.runtime == "torch" else device.replace("auto", "cpu")
        loaded = load(self.weights, self.runtime, self.device, threads)
        self.coder, self.model_hash = loaded.coder, loaded.model_hash  # the hash covers every tensor: once
        self._refiner = self.coder if self.runtime == "torch" else None
        self.last_timings = Timings()

    def _coder_for(self, effort: int):
        """The coder that encodes at ``effort``: above 0, the torch runtime's (loaded once)."""
        if not effort:
            return self.coder
        if self._refiner is None:
            from .engines.runtime import load

            self._refiner = load(self.weights, "torch", "cpu").coder
        return self._refiner

    # -- coding ----------------------------------------------------------------------------------
    def compress(self, image, quality: float | None = None, *, effort: int | None = None,
                 progress: Progress | None = None, max_error: int | None = None) -> bytes:
        """Encode ``image`` (PIL image, path, numpy array or tensor) into a ``.lic`` file.

        ``effort`` (default: the Codec's): 0 codes g_a's latents as they are; 1-3 spend encode
        time refining them for this image (``codec.refine``), never making a costlier file; the
        decoder is the same.  ``progress(done, total)``: see the class doc.

        ``max_error``: None for a lossy file; an integer K >= 0 for a file whose every decoded
        sample is within K of the input (0: lossless), at the input's bit depth (8 or 16 bits);
        ``quality`` and ``effort`` then do not apply, nor do the model's weights
        (``compress_exact``).
        """
        if max_error is not None:
            return compress_exact(image, max_error)
        coded = to_coded(image)
        quality = quantize_quality(self.quality if quality is None else quality)  # the one check
        return self._encode(coded, quality, self._effort(effort), progress)

    def decompress(self, data, *, max_pixels: int | None = None,
                   progress: Progress | None = None) -> Image.Image | Image16:
        """Decode a ``.lic`` file: its bytes, a path, or what ``bitstream.unpack`` returned for it
        (then it is not parsed again).  ``LicFormatError`` for anything that is not a valid one, and
        for a file of more than ``max_pixels`` pixels (None: Pillow's decompression-bomb limit,
        ``codec.limits``), refused before any decoding.  A 16-bit colour file decodes to an
        ``Image16``.  ``progress(done, total)``: see the class doc."""
        from .coding import decode_rgb

        t = Timings()  # the whole container is validated before any network runs
        container = _lic_file(data, max_pixels)
        if isinstance(container.header, bitstream.ResidualHeader):
            return decompress_exact(container, max_pixels=max_pixels)
        rgb, header, alpha_blob = decode_rgb(self.coder, container, timings=t, model_hash=self.model_hash,
                                             progress=progress)
        alpha = decode_alpha(alpha_blob, header.width, header.height) if alpha_blob is not None else None
        self.last_timings = t
        return from_decoded(rgb, header.channels, alpha, header.icc)

    def _effort(self, effort: int | None) -> int:
        return self.effort if effort is None else check_effort(effort)

    def _encode(self, coded: CodedImage, quality: float, effort: int, progress=None) -> bytes:
        """``coded`` as a .lic file; ``quality`` a stored value and ``effort`` a level, both checked."""
        from .coding import encode_rgb

        t = Timings()
        alpha = encode_alpha(coded.alpha) if coded.alpha is not None else None
        data = encode_rgb(self._coder_for(effort), coded.rgb, quality, channels=coded.channels, icc=coded.icc,
                          alpha=alpha, effort=effort, progress=progress, timings=t, model_hash=self.model_hash)
        self.last_timings = t
        return data

    # -- targets (the searches are in codec.target) -----------------------------------------------
    def compress_to_size(self, image, max_bytes: int, *, effort: int | None = None,
                         progress: Progress | None = None) -> TargetResult:
        """The highest-quality file of at most ``max_bytes`` bytes (each candidate really coded,
        at the same ``effort``).

        If even quality 1 is larger, returns that file with ``met=False``.
        """
        coded, effort = to_coded(image), self._effort(effort)
        return fit_size(lambda q: self._encode(coded, q, effort, progress), max_bytes)

    def compress_to_bpp(self, image, bpp: float, *, effort: int | None = None,
                        progress: Progress | None = None) -> TargetResult:
        """The highest-quality file at or under ``bpp`` bits per pixel (file bytes * 8 / pixels)."""
        coded = to_coded(image)
        width, height = coded.size
        return self.compress_to_size(coded, math.floor(bpp * width * height / 8), effort=effort, progress=progress)

    def compress_to_psnr(self, image, min_psnr: float, *, effort: int | None = None,
                         progress: Progress | None = None) -> TargetResult:
        """The lowest-quality file whose decoded image has PSNR >= ``min_psnr`` dB.

        Candidates are scored without entropy coding, on exactly what the decoder will output
        (``coding.reconstruct_rgb``).  PSNR is over the decoded samples (gray for "L" images, RGB
        otherwise; alpha is lossless and not counted).  If even quality 8 falls short, returns
        that file with ``met=False``.
        """
        from .coding import reconstruct_rgb

        coded, effort = to_coded(image), self._effort(effort)

        def score(q: float) -> float:
            decoded = reconstruct_rgb(self._coder_for(effort), coded.rgb, q, effort=effort, progress=progress)
            return psnr(coded, CodedImage(decoded, coded.channels))

        return fit_psnr(lambda q: self._encode(coded, q, effort, progress), score, min_psnr)


@functools.lru_cache(maxsize=4)
def _default_codec(device: str, weights: str | None) -> Codec:
    return Codec(device=device, weights=weights)


def default_codec(device: str = "auto") -> Codec:
    """The shared ``Codec`` for ``device`` and the current ``$LIC_WEIGHTS`` (made once)."""
    return _default_codec(device, os.environ.get("LIC_WEIGHTS") or None)


def compress(image, quality: float | None = None, *, effort: int = DEFAULT_EFFORT,
             max_error: int | None = None, device: str = "auto") -> bytes:
    """Encode an image (PIL image, path, numpy array or torch tensor) into ``.lic`` bytes.

    ``quality``: a real number in [1, 8] (None: ``DEFAULT_QUALITY``), stored in steps of 1/256.
    Arrays and tensors hold uint8 or wider integers, bool, or floats in [0, 1]
    (``codec.images`` has the rule; anything else is a ``ValueError``).
    ``max_error=K`` (an integer >= 0): every decoded sample within K of the input, 0 for
    lossless; 8-bit and 16-bit images keep their bit depth (``compress_exact``).
    """
    if max_error is not None:
        return compress_exact(image, max_error)
    quality = quantize_quality(default_quality() if quality is None else quality)  # before the model loads
    effort = check_effort(effort)
    return default_codec(device)._encode(to_coded(image), quality, effort)


def decompress(data, *, device: str = "auto", max_pixels: int | None = None) -> Image.Image | Image16:
    """Decode a ``.lic`` file (bytes or a path) into a PIL image: mode "L", "RGB" or "RGBA" as encoded
    ("I;16" for a 16-bit gray lossless or near-lossless file; an ``Image16`` for a 16-bit RGB or
    RGBA one, which Pillow has no mode for).

    A file that declares more than ``max_pixels`` pixels is a ``LicFormatError`` before anything is
    decoded; None (the default) is Pillow's decompression-bomb limit, ``Image.MAX_IMAGE_PIXELS``
    (``codec.limits``)."""
    container = _lic_file(data, max_pixels)  # parsed once: a bad file fails before the model loads
    if isinstance(container.header, bitstream.ResidualHeader):
        return decompress_exact(container, max_pixels=max_pixels)
    return default_codec(device).decompress(container, max_pixels=max_pixels)


def compress_exact(image, max_error: int) -> bytes:
    """A lossless (``max_error`` 0) or near-lossless ``.lic`` file: every decoded sample within
    ``max_error`` of the input's, at its bit depth: 8-bit gray, RGB and RGBA, and 16-bit gray, RGB
    and RGBA (alpha always exact; ``codec.images.to_exact`` says which inputs are 16-bit).  Needs
    no model weights.  ``InputError`` for what cannot be kept exactly (floats, 32-bit samples)."""
    from .lossless.near_lossless import encode_exact

    return encode_exact(to_exact(image), max_error)  # checks max_error against the bit depth


def decompress_exact(data, *, max_pixels: int | None = None) -> Image.Image | Image16:
    """Decode a lossless or near-lossless file (bytes, a path or a parsed container); no weights.
    ``max_pixels`` as in ``decompress``."""
    from .lossless.near_lossless import decode_exact

    samples, header, alpha = decode_exact(_lic_file(data, max_pixels))
    return from_exact(samples, header.residual.bits, header.channels, alpha, header.icc)
