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

import bitstream
from bitstream import Container, Header, InputError, LicFormatError

from .coder import Coder, Compressed, hyper_latent_size, latent_size, pad_to_align, tile_count
from .effort import SCORE_BELOW, effort_config
from .quality import rd_cost
from .timings import Timings

__all__ = ["Timings", "Progress", "encode_rgb", "decode_rgb", "reconstruct_rgb", "as_coder", "rgb_to_input",
           "output_to_rgb", "pack_file"]

# ``progress(done, total)``: one coding pass's units of work, done so far and in all (``_counting``).
Progress = Callable[[int, int], object]


def as_coder(model) -> Coder:
    """A ``Coder`` as it is, or a torch ``LicModel``'s (its coding face on torch)."""
    return model if isinstance(model, Coder) else model.coder()


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


def rgb_to_input(rgb: np.ndarray, padded: bool = False) -> np.ndarray:
    """(H, W, 3) uint8 -> the model's input, (1, 3, H, W) float32 in [0, 1]; ``padded``: the
    samples padded as g_a needs them first (``coder.pad_to_align``), so that an encoder holds its
    input in float32 once, not also unpadded."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 array, got {rgb.shape} {rgb.dtype}")
    if padded:
        rgb = pad_to_align(rgb, axes=(0, 1))
    return (rgb.transpose(2, 0, 1)[None].astype(np.float32) / np.float32(255))


def output_to_rgb(x_hat: np.ndarray) -> np.ndarray:
    """The model's output (1, 3, H, W) in [0, 1] -> the decoder's (H, W, 3) uint8 samples."""
    return np.round(x_hat[0].transpose(1, 2, 0) * np.float32(255)).astype(np.uint8)


@contextmanager
def _counting(progress: Progress | None, size: tuple[int, int], effort: int = 0) -> Iterator[Callable[[], None] | None]:
    """Report one coding pass of an image of ``size`` (H, W) to ``progress(done, total)``: (0, total)
    first, then once after each unit of work, ending at (total, total).  Yields the per-unit
    callback (None without ``progress``).

    The units are what the pass's time grows with: the refinement's descent steps at ``effort`` > 0
    (the callback goes to ``refine_latents``), else the tiles that g_a or g_s runs in (it goes to
    the coder)."""
    if progress is None:
        yield None
        return
    if effort:
        from .refine import steps_for  # torch: only the torch runtime refines

        total = steps_for(effort, *latent_size(*size))
    else:
        total = tile_count(*size)
    done = 0

    def unit() -> None:
        nonlocal done
        done += 1
        progress(done, total)

    progress(0, total)
    yield unit


def encode_rgb(model, rgb: np.ndarray, quality: float, *, channels: str = "RGB",
               icc: bytes | None = None, alpha: bytes | None = None, effort: int = 0,
               progress: Progress | None = None,
               timings: Timings | None = None, model_hash: bytes | None = None) -> bytes:
    """Compress an (H, W, 3) uint8 RGB array into a complete ``.lic`` file.

    ``model``: a ``Coder`` (``codec.engines.runtime.load``) or a torch ``LicModel``.
    ``quality`` must be a stored value (``codec.quality.quantize_quality``): the header holds it.
    ``progress(done, total)`` follows the pass (``_counting``: g_a's tiles, or the refinement's
    steps).  ``effort`` > 0 (the torch runtime) refines the latents for this image first
    (``refine.py``), which never makes them worse than effort 0's by its own measure of the cost.  Where
    that measure's gain is below ``effort.SCORE_BELOW``, both files are made and the one with the lower
    real cost (``rd_cost`` of its size and of its decoded samples' error) is returned."""
    return _encode(model, rgb, quality, channels, icc, alpha, effort, progress, timings, model_hash)[0]


def _encode(model, rgb, quality, channels="RGB", icc=None, alpha=None, effort=0, progress=None,
            timings=None, model_hash=None) -> tuple[bytes, np.ndarray]:
    """``encode_rgb``, also returning the chosen file's ŷ (its decoded image, for PSNR targets)."""
    coder = as_coder(model)
    timings = timings if timings is not None else Timings()
    height, width = rgb.shape[:2]
    config = effort_config(effort)
    start = time.perf_counter()
    with _counting(progress, (height, width), effort) as unit:
        x_padded, y, z_symbols = coder.analyse(rgb_to_input(rgb, padded=True), quality, None if config.steps else unit)
        candidates = [y]
        if config.steps:
            refined, gain = _refined(coder, x_padded, (height, width), y, z_symbols, quality, config, unit)
            if not np.array_equal(refined, y):  # else it is the one-pass file itself
                # The refinement kept, tile by tile, its best latents starting from these: by its own
                # measure they cannot lose.  Its measure (bf16 g_s, the model's rate) is not the file's,
                # so where it gained little the real files decide.
                candidates = [refined] if gain >= SCORE_BELOW else [y, refined]
        del x_padded  # the entropy path needs only the latents (the image in float32 is 4 bytes a sample)
        codes = [coder.code_latents(latents, z_symbols) for latents in candidates]
    timings.network = time.perf_counter() - start

    start = time.perf_counter()
    files = [pack_file(coder, code, quality, width, height, channels, icc, alpha, model_hash) for code in codes]
    timings.coding = time.perf_counter() - start
    if len(files) == 1:
        return files[0], codes[0].y_hat
    start = time.perf_counter()
    costs = []
    for data, code in zip(files, codes):  # the whole image's cost: bits, and the squared error on [0, 1]
        decoded = output_to_rgb(coder.reconstruct(code.y_hat, quality, (height, width))).astype(np.float64)
        costs.append(rd_cost(len(data) * 8, float(((decoded - rgb) ** 2).sum()) / 3 / 255**2, quality))
    best = int(np.argmin(costs))  # ties keep the one-pass file
    timings.network += time.perf_counter() - start
    return files[best], codes[best].y_hat


class _OwnCost:
    """An observer of ``refine_latents``: each tile's hard-rounded cost at its start and the least it
    reached, as the refinement measured them (what it computes anyway)."""

    def __init__(self):
        self.start: dict[int, float] = {}
        self.best: dict[int, float] = {}

    def __call__(self, seen) -> None:
        if seen.hard_cost is not None:
            self.start.setdefault(seen.tile, seen.hard_cost)
            self.best[seen.tile] = min(self.best.get(seen.tile, seen.hard_cost), seen.hard_cost)

    def gain(self) -> float:
        """The fall of the summed cost, as a fraction of where it started (0: nothing was measured)."""
        start = sum(self.start.values())
        return (start - sum(self.best.values())) / start if start > 0 else 0.0


def _refined(coder: Coder, x_padded, size, y, z_symbols, quality, config, progress) -> tuple[np.ndarray, float]:
    """The latents refined for this image (``refine.py``, a descent through the torch model), and the
    fraction of its own hard-rounded cost that the refinement took off (``_OwnCost``)."""
    model = getattr(coder.transforms, "model", None)
    if model is None:
        raise InputError("--effort above 0 needs the torch runtime")
    import torch

    from .refine import refine_latents

    device = model.device
    features = torch.from_numpy(coder.entropy.features(z_symbols)).float().to(device)
    own = _OwnCost()
    refined = refine_latents(model, torch.from_numpy(x_padded).to(device), size, torch.from_numpy(y).to(device),
                             features, quality, config, progress, own)
    return refined.cpu().numpy(), own.gain()


def pack_file(coder: Coder, code: Compressed, quality: float, width: int, height: int, channels: str,
          icc: bytes | None, alpha: bytes | None, model_hash: bytes | None) -> bytes:
    """The ``.lic`` file of one image's coded latents ``code`` (``Coder.code_latents``): its symbols
    range coded and wrapped in the container, with the header fields given (``model_hash`` None:
    the coder's own fingerprint)."""
    z = code.z_symbols[0].reshape(code.z_symbols.shape[1], -1)
    slices = [(s.symbols, s.indexes) for s in code.slices]
    entropy = coder.entropy
    checksum = _SymbolChecksum(quality, width, height, channels, icc, alpha)
    checksum.update(z)
    streams = [bitstream.encode_categorical(z, entropy.z_pmf, entropy.z_offset)]
    for symbols, indexes in slices:
        checksum.update(symbols)
        streams.append(bitstream.encode_gaussian(symbols, indexes, entropy.scales))
    header = Header(
        model_id=coder.config.model_id, model_hash=model_hash or coder.fingerprint(),
        quality=quality, width=width, height=height, channels=channels,
        symbol_crc=checksum.value, icc=icc,
    )
    return bitstream.pack(header, streams, alpha)


def check_model(coder: Coder, header: Header, model_hash: bytes | None = None) -> None:
    """Refuse a file that another model made: its symbols would decode to garbage."""
    expected = model_hash or coder.fingerprint()
    if header.model_id != coder.config.model_id or header.model_hash != expected:
        raise LicFormatError(
            f"made by another model ({header.model_id}, {header.model_hash.hex()}); "
            f"this decoder has {coder.config.model_id}, {expected.hex()}"
        )


def decode_rgb(model, data: bytes | Container, *, timings: Timings | None = None,
               model_hash: bytes | None = None, progress: Progress | None = None
               ) -> tuple[np.ndarray, Header, bytes | None]:
    """Decode a ``.lic`` file to an (H, W, 3) uint8 RGB array, its header and its alpha blob.
    ``progress(done, total)`` follows the tiles g_s runs in (``_counting``).

    ``data``: the file's bytes, or what ``bitstream.unpack`` made of them (not parsed again)."""
    coder = as_coder(model)
    timings = timings if timings is not None else Timings()
    header, streams, alpha = data if isinstance(data, Container) else bitstream.unpack(data)
    if not isinstance(header, Header):
        raise LicFormatError("a lossless or near-lossless file: it decodes without a model (decompress_exact)")
    check_model(coder, header, model_hash)
    n_slices = len(coder.config.slices)
    if len(streams) != 1 + n_slices:
        raise LicFormatError(f"corrupt: {len(streams)} streams, this model codes {1 + n_slices}")
    coding = 0.0
    start = time.perf_counter()

    entropy = coder.entropy
    hz, wz = hyper_latent_size(header.height, header.width)
    checksum = _SymbolChecksum(header.quality, header.width, header.height, header.channels,
                               header.icc, alpha)
    z = bitstream.decode_categorical(streams[0], entropy.z_pmf, entropy.z_offset, hz * wz)
    checksum.update(z)
    coding += time.perf_counter() - start

    def read_slice(k: int, indexes: np.ndarray) -> np.ndarray:
        nonlocal coding
        t = time.perf_counter()
        symbols = bitstream.decode_gaussian(streams[k + 1], indexes, entropy.scales)
        checksum.update(symbols)
        coding += time.perf_counter() - t
        return symbols

    size = (header.height, header.width)
    with _counting(progress, size) as unit:
        x_hat = coder.decompress(z.reshape(1, -1, hz, wz), read_slice, header.quality, size, unit)
    if checksum.value != header.symbol_crc:
        raise LicFormatError("corrupt: decoded content does not match the encoder's checksum")
    rgb = output_to_rgb(x_hat)
    timings.coding = coding
    timings.network = time.perf_counter() - start - coding
    return rgb, header, alpha


def reconstruct_rgb(model, rgb: np.ndarray, quality: float, effort: int = 0,
                    progress: Progress | None = None) -> np.ndarray:
    """The (H, W, 3) uint8 samples that decoding ``encode_rgb(model, rgb, quality, effort=...)``
    returns: the encoder's ŷ is exactly what the decoder rebuilds (what a PSNR target search
    scores).  At effort 0 without entropy coding; above it, the encoder's choice of file needs
    the coded sizes.  ``quality``: a stored value; ``progress`` as in ``encode_rgb``."""
    coder = as_coder(model)
    if effort:
        y_hat = _encode(coder, rgb, quality, effort=effort, progress=progress)[1]
    else:
        with _counting(progress, rgb.shape[:2]) as unit:
            y, z_symbols = coder.analyse(rgb_to_input(rgb, padded=True), quality, unit)[1:]
            y_hat = coder.code_latents(y, z_symbols).y_hat
    return output_to_rgb(coder.reconstruct(y_hat, quality, rgb.shape[:2]))
