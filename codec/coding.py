"""Where the model meets the bitstream: RGB pixels <-> symbols <-> a ``.lic`` file.

The one place that drives the model's coding face (``compress``, ``decompress``, ``reconstruct``)
and the one place that turns pixels into the model's tensors and back.  The model turns pixels
into integer symbols and σ indexes (tensors); ``bitstream`` turns symbols and probabilities
into bytes.  This module passes one to the other, slice by slice, so
decoding is sequential over slices with one device transfer each: the networks may run on a GPU
while the range coder runs on the CPU.  It also guards the decoder: a file from another model,
a stream count that does not match, or symbols whose checksum differs from the encoder's are
all reported as ``LicFormatError``, never returned as an image.
"""

from __future__ import annotations

import struct
import time
import zlib
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch

import bitstream
from bitstream import Container, Header, LicFormatError

from .effort import effort_config
from .model import LicModel
from .quality import rd_cost
from .refine import refine_latents, steps_for
from .timings import Timings
from .weights import fingerprint

__all__ = ["Timings", "Progress", "encode_rgb", "decode_rgb", "reconstruct_rgb"]

# ``progress(done, total)``: one coding pass's units of work, done so far and in all (``_counting``).
Progress = Callable[[int, int], object]


class _SymbolChecksum:
    """CRC32 over everything that decides the decoded image: the header fields the decoder uses
    (quality, size, channel layout, ICC, alpha), then all symbols in coding order as int32 LE.

    The file CRC catches accidental damage; this one also catches a header or stream that was
    changed and re-CRC'd, since a different quality or size would otherwise decode "validly".
    """

    def __init__(self, quality: float, width: int, height: int, channels: str,
                 icc: bytes | None, alpha: bytes | None):
        fields = struct.pack("<dII", quality, width, height) + channels.encode("ascii")
        self.value = zlib.crc32(fields)
        for blob in (icc, alpha):
            self.value = zlib.crc32(struct.pack("<I", len(blob or b"")) + (blob or b""), self.value)

    def update(self, symbols: np.ndarray) -> None:
        self.value = zlib.crc32(np.ascontiguousarray(symbols, dtype="<i4").tobytes(), self.value)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _to_tensor(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    """(H, W, 3) uint8 -> the model's input, (1, 3, H, W) float in [0, 1]."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 array, got {rgb.shape} {rgb.dtype}")
    return torch.from_numpy(np.array(rgb)).to(device).permute(2, 0, 1)[None].float() / 255


def _to_rgb(x_hat: torch.Tensor) -> np.ndarray:
    """The model's output (1, 3, H, W) in [0, 1] -> the decoder's (H, W, 3) uint8 samples."""
    return torch.round(x_hat[0].permute(1, 2, 0) * 255).to(torch.uint8).cpu().numpy()


@contextmanager
def _counting(model: LicModel, progress: Progress | None, size: tuple[int, int], effort: int = 0,
              encoding: bool = True) -> Iterator[Callable[[], None] | None]:
    """Report one coding pass of an image of ``size`` (H, W) to ``progress(done, total)``: (0, total)
    first, then once after each unit of work, ending at (total, total).

    The units are what the pass's time grows with: the refinement's descent steps at ``effort`` > 0
    (this yields their per-step callback for ``refine_latents``), else the tiles that g_a
    (``encoding``) or g_s runs in, counted as they finish (this yields None).  Nothing without
    ``progress``."""
    if progress is None:
        yield None
        return
    height, width = size
    total = steps_for(effort, *model.latent_size(height, width)) if effort else model.tile_count(height, width)
    done = 0

    def unit() -> None:
        nonlocal done
        done += 1
        progress(done, total)

    progress(0, total)
    if effort:
        yield unit
    else:
        with model.counting_tiles(unit, encoding):
            yield None


def _tables(model: LicModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tables = model.coding_tables
    return tables.z_pmf.cpu().numpy(), tables.z_offset.cpu().numpy(), tables.scales.cpu().numpy()


def encode_rgb(model: LicModel, rgb: np.ndarray, quality: float, *, channels: str = "RGB",
               icc: bytes | None = None, alpha: bytes | None = None, effort: int = 0,
               progress: Progress | None = None,
               timings: Timings | None = None, model_hash: bytes | None = None) -> bytes:
    """Compress an (H, W, 3) uint8 RGB array into a complete ``.lic`` file.

    ``quality`` must be a stored value (``codec.quality.quantize_quality``): the header holds it.
    ``progress(done, total)`` follows the pass (``_counting``: g_a's tiles, or the refinement's
    steps).  ``effort`` > 0 refines the latents for this image first (``refine.py``) and never does
    worse than effort 0: both files are made, and the one with the lower
    real cost (``rd_cost`` of its size and of its decoded samples' error) is returned."""
    return _encode(model, rgb, quality, channels, icc, alpha, effort, progress, timings, model_hash)[0]


def _encode(model, rgb, quality, channels="RGB", icc=None, alpha=None, effort=0, progress=None,
            timings=None, model_hash=None) -> tuple[bytes, torch.Tensor]:
    """``encode_rgb``, also returning the chosen file's ŷ (its decoded image, for PSNR targets)."""
    timings = timings if timings is not None else Timings()
    height, width = rgb.shape[:2]
    config = effort_config(effort)
    device = model.device
    start = time.perf_counter()
    x = _to_tensor(rgb, device)
    with _counting(model, progress, (height, width), effort) as step:
        x_padded, y, hyper = model.analyse(x, quality)
        codes = [model.code_latents(y, hyper)]
        if config.steps:
            refined = refine_latents(model, x_padded, (height, width), y, hyper.features.float(), quality,
                                     config, step)
            codes.append(model.code_latents(refined, hyper))
    _sync(device)
    timings.network = time.perf_counter() - start

    start = time.perf_counter()
    files = [_pack(model, code, quality, width, height, channels, icc, alpha, model_hash) for code in codes]
    timings.coding = time.perf_counter() - start
    if len(files) == 1:
        return files[0], codes[0].y_hat
    start = time.perf_counter()
    costs = []
    for data, code in zip(files, codes):  # the whole image's cost: bits, and the squared error on [0, 1]
        decoded = _to_rgb(model.reconstruct(code.y_hat, quality, (height, width))).astype(np.float64)
        costs.append(rd_cost(len(data) * 8, float(((decoded - rgb) ** 2).sum()) / 3 / 255**2, quality))
    best = int(np.argmin(costs))  # ties keep the one-pass file
    timings.network += time.perf_counter() - start
    return files[best], codes[best].y_hat


def _pack(model: LicModel, code, quality: float, width: int, height: int, channels: str,
          icc: bytes | None, alpha: bytes | None, model_hash: bytes | None) -> bytes:
    """Range code one image's symbols and wrap them in the container."""
    z = code.z_symbols[0].reshape(code.z_symbols.shape[1], -1).cpu().numpy()
    slices = [(s.symbols.cpu().numpy(), s.indexes.cpu().numpy()) for s in code.slices]
    pmf, offset, scales = _tables(model)
    checksum = _SymbolChecksum(quality, width, height, channels, icc, alpha)
    checksum.update(z)
    streams = [bitstream.encode_categorical(z, pmf, offset)]
    for symbols, indexes in slices:
        checksum.update(symbols)
        streams.append(bitstream.encode_gaussian(symbols, indexes, scales))
    header = Header(
        model_id=model.config.model_id, model_hash=model_hash or fingerprint(model),
        quality=quality, width=width, height=height, channels=channels,
        symbol_crc=checksum.value, icc=icc,
    )
    return bitstream.pack(header, streams, alpha)


def check_model(model: LicModel, header: Header, model_hash: bytes | None = None) -> None:
    """Refuse a file that another model made: its symbols would decode to garbage."""
    expected = model_hash or fingerprint(model)
    if header.model_id != model.config.model_id or header.model_hash != expected:
        raise LicFormatError(
            f"made by another model ({header.model_id}, {header.model_hash.hex()}); "
            f"this decoder has {model.config.model_id}, {expected.hex()}"
        )


def decode_rgb(model: LicModel, data: bytes | Container, *, timings: Timings | None = None,
               model_hash: bytes | None = None,
               progress: Progress | None = None) -> tuple[np.ndarray, Header, bytes | None]:
    """Decode a ``.lic`` file to an (H, W, 3) uint8 RGB array, its header and its alpha blob.

    ``data``: the file's bytes, or what ``bitstream.unpack`` made of them (not parsed again).
    ``progress(done, total)`` follows the tiles g_s runs in (``_counting``)."""
    timings = timings if timings is not None else Timings()
    header, streams, alpha = data if isinstance(data, Container) else bitstream.unpack(data)
    if not isinstance(header, Header):
        raise LicFormatError("a lossless or near-lossless file: it decodes without a model (decompress_exact)")
    check_model(model, header, model_hash)
    n_slices = len(model.config.slices)
    if len(streams) != 1 + n_slices:
        raise LicFormatError(f"corrupt: {len(streams)} streams, this model codes {1 + n_slices}")
    device = model.device
    coding = 0.0
    start = time.perf_counter()

    pmf, offset, scales = _tables(model)
    hz, wz = model.hyper_latent_size(header.height, header.width)
    checksum = _SymbolChecksum(header.quality, header.width, header.height, header.channels,
                               header.icc, alpha)
    z = bitstream.decode_categorical(streams[0], pmf, offset, hz * wz)
    checksum.update(z)
    z_symbols = torch.from_numpy(z.reshape(1, -1, hz, wz))
    coding += time.perf_counter() - start

    def read_slice(k: int, indexes: torch.Tensor) -> torch.Tensor:
        nonlocal coding
        indexes = indexes.cpu().numpy()
        t = time.perf_counter()
        symbols = bitstream.decode_gaussian(streams[k + 1], indexes, scales)
        checksum.update(symbols)
        coding += time.perf_counter() - t
        return torch.from_numpy(symbols).to(device)

    size = (header.height, header.width)
    with _counting(model, progress, size, encoding=False):
        x_hat = model.decompress(z_symbols, read_slice, header.quality, size)
    if checksum.value != header.symbol_crc:
        raise LicFormatError("corrupt: decoded content does not match the encoder's checksum")
    rgb = _to_rgb(x_hat)
    _sync(device)
    timings.coding = coding
    timings.network = time.perf_counter() - start - coding
    return rgb, header, alpha


def reconstruct_rgb(model: LicModel, rgb: np.ndarray, quality: float, effort: int = 0,
                    progress: Progress | None = None) -> np.ndarray:
    """The (H, W, 3) uint8 samples that decoding ``encode_rgb(model, rgb, quality, effort=...)``
    returns: the encoder's ŷ is exactly what the decoder rebuilds (what a PSNR target search
    scores).  At effort 0 without entropy coding; above it, the encoder's choice of file needs
    the coded sizes.  ``quality``: a stored value; ``progress`` as in ``encode_rgb``."""
    if effort:
        y_hat = _encode(model, rgb, quality, effort=effort, progress=progress)[1]
    else:
        with _counting(model, progress, rgb.shape[:2]):
            y_hat = model.compress(_to_tensor(rgb, model.device), quality).y_hat
    return _to_rgb(model.reconstruct(y_hat, quality, rgb.shape[:2]))
