"""The coding face of a lic model, in numpy: pixels -> integer symbols -> pixels.

    x ─pad─► g_a ─► y ─⊙g(q)─► y' ─► h_a ─► ẑ = round(z)
    ẑ, y' ─► exact entropy path (h_s, P_k, R_k) ─► symbols and σ indexes, ŷ'
    ŷ' ─⊙g⁻¹(q)─► g_s ─crop, clamp─► x̂

The float transforms g_a, h_a and g_s (``FloatTransforms``) run on whichever engine the runtime
chose: ONNX Runtime (``engines/onnx_transforms.py``, no torch) or torch (``engines/torch_transforms.py``).  Nothing
they compute reaches a probability, so engines may differ in the last bits of a float and files
still decode everywhere.  Everything that does reach one is ``exact_entropy.py``, shared by every
engine.  The gains g(q), g⁻¹(q) (``networks/gain.py``, Cui et al. 2021) are evaluated here from the same
weights.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, NamedTuple, Protocol

import numpy as np

from .exact_entropy import ExactEntropyPath, SliceCode
from .fixed_point import INPUT_LIMIT
from .networks.config import ModelConfig
from .quality import MAX_QUALITY, MIN_QUALITY
from .shards import state_fingerprint

__all__ = ["Coder", "Compressed", "FloatTransforms", "ALIGN", "Y_STRIDE", "latent_size", "hyper_latent_size",
           "tile_count", "pad_to_align"]

# g_a has four stride-2 stages (y is 1/16 of the image), h_a two more (z is 1/4 of y): inputs are
# padded to a multiple of 64.
Y_STRIDE = 16
Z_STRIDE = 4
ALIGN = Y_STRIDE * Z_STRIDE
# g_a / g_s run in overlapping tiles of this many pixels a side above it, to bound memory on huge
# images; the halo (pixels) covers the transforms' receptive field, so tiling leaves no seams.
TRANSFORM_TILE = 1024
TRANSFORM_HALO = 64


class FloatTransforms(Protocol):
    """The float networks on (1, C, H, W) float32 arrays: an engine implements these three."""

    def analyse(self, x: np.ndarray) -> np.ndarray: ...  # g_a: image in [0, 1] -> y

    def hyper_analyse(self, y: np.ndarray) -> np.ndarray: ...  # h_a: y' -> z

    def synthesise(self, y_hat: np.ndarray) -> np.ndarray: ...  # g_s: ŷ' ⊙ g⁻¹(q) -> x̂


class Compressed(NamedTuple):
    z_symbols: np.ndarray  # int32 (1, Nz, h/4, w/4)
    slices: list[SliceCode]  # per slice: int32 symbols and their σ indexes
    y_hat: np.ndarray  # float64 (1, M, h, w): exactly the ŷ' the decoder will rebuild


def latent_size(height: int, width: int) -> tuple[int, int]:
    """Size of y for an image of height x width (after padding to a multiple of 64)."""
    return -(-height // ALIGN) * ALIGN // Y_STRIDE, -(-width // ALIGN) * ALIGN // Y_STRIDE


def hyper_latent_size(height: int, width: int) -> tuple[int, int]:
    """Size of z (the symbols coded first) for an image of height x width."""
    h, w = latent_size(height, width)
    return h // Z_STRIDE, w // Z_STRIDE


def tile_count(height: int, width: int) -> int:
    """How many tiles g_a (and g_s) run in for an image of height x width; 1 when untiled."""
    h, w = -(-height // ALIGN) * ALIGN, -(-width // ALIGN) * ALIGN
    if h <= TRANSFORM_TILE + 2 * TRANSFORM_HALO and w <= TRANSFORM_TILE + 2 * TRANSFORM_HALO:
        return 1
    return -(-h // TRANSFORM_TILE) * -(-w // TRANSFORM_TILE)


def pad_to_align(x: np.ndarray, axes: tuple[int, int] = (-2, -1)) -> np.ndarray:
    """x with its height and width ``axes`` padded to a multiple of ALIGN: a copy, or x itself
    where they already are.  Padding commutes with any per-sample map: the 8-bit samples may be
    padded before they become floats."""
    widths = [(0, 0)] * x.ndim
    for axis in axes:
        widths[axis] = (0, -x.shape[axis] % ALIGN)
    if not any(after for _, after in widths):
        return x
    # Replicate, not zeros: a flat border costs almost no bits and has no edge to ring.
    return np.pad(x, widths, mode="edge")


def _tiled(transform: Callable[[np.ndarray], np.ndarray], x: np.ndarray, factor: float,
           tile_done: Callable[[], object] | None) -> np.ndarray:
    """transform(x) in overlapping tiles; ``factor`` = input pixels per output pixel."""
    h, w = x.shape[-2:]
    tile, halo = TRANSFORM_TILE, TRANSFORM_HALO  # in pixels: g_a's input, g_s's output
    if factor < 1:
        tile, halo = tile // Y_STRIDE, halo // Y_STRIDE
    if h <= tile + 2 * halo and w <= tile + 2 * halo:
        out = transform(x)
        if tile_done:
            tile_done()
        return out
    rows = []
    for r0 in range(0, h, tile):
        cols = []
        for c0 in range(0, w, tile):
            r1, c1 = min(h, r0 + tile), min(w, c0 + tile)
            a, b = max(0, r0 - halo), max(0, c0 - halo)
            out = transform(np.ascontiguousarray(x[..., a : min(h, r1 + halo), b : min(w, c1 + halo)]))
            ta, tb = round((r0 - a) / factor), round((c0 - b) / factor)
            cols.append(out[..., ta : ta + round((r1 - r0) / factor), tb : tb + round((c1 - c0) / factor)])
            if tile_done:
                tile_done()
        rows.append(np.concatenate(cols, axis=-1))
    return np.concatenate(rows, axis=-2)


class _Gains:
    """g(q) and g⁻¹(q) per channel: exponential interpolation between the 8 levels' vectors."""

    def __init__(self, state: Mapping[str, np.ndarray]):
        first = state["gain.log_gain_first"].astype(np.float64)
        steps = np.logaddexp(0.0, state["gain.gain_steps"].astype(np.float64))  # softplus
        self.log_gain = np.concatenate([first[None], first[None] + np.cumsum(steps, axis=0)])
        self.log_inverse = state["gain.log_inverse"].astype(np.float64)

    @staticmethod
    def _at(table: np.ndarray, quality: float) -> np.ndarray:
        q = min(max(quality, MIN_QUALITY), MAX_QUALITY) - MIN_QUALITY
        low = min(math.floor(q), len(table) - 2)
        t = q - low
        return np.exp((1 - t) * table[low] + t * table[low + 1]).astype(np.float32)[None, :, None, None]

    def gain(self, quality: float) -> np.ndarray:
        return self._at(self.log_gain, quality)

    def inverse(self, quality: float) -> np.ndarray:
        return self._at(self.log_inverse, quality)


class Coder:
    """A model's coding face: ``compress`` (image -> symbols, exact ŷ) and ``decompress``.

    ``state``: the model's tensors as numpy arrays (``shards.read_state``); ``transforms``: the
    engine that runs g_a, h_a and g_s.  ``tile_done()``, where given, is called after each tile
    of g_a or g_s: progress over a large image.
    """

    def __init__(self, config: ModelConfig, state: Mapping[str, np.ndarray], transforms: FloatTransforms):
        self.config = config
        self.state = state
        self.transforms = transforms
        self.entropy = ExactEntropyPath(config, state)
        self.gains = _Gains(state)

    def fingerprint(self) -> bytes:
        """The 4-byte hash of the weights that every header records (``shards.state_fingerprint``)."""
        return state_fingerprint(self.config.to_json(), self.state)

    # -- encoder -----------------------------------------------------------------------------------
    def analyse(self, x: np.ndarray, quality: float, tile_done: Callable[[], object] | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The encoder's first half: (x padded, y' = g_a(x) ⊙ g(q), the coded ẑ as int32).

        Split from ``code_latents`` so an encoder may replace y' by better latents for the same
        ẑ (``refine.py``) before coding."""
        if x.ndim != 4 or x.shape[0] != 1 or x.shape[1] != 3:
            raise ValueError(f"compress expects one RGB image (1,3,H,W), got {tuple(x.shape)}")
        x_padded = pad_to_align(np.asarray(x, dtype=np.float32))
        y = _tiled(self.transforms.analyse, x_padded, Y_STRIDE, tile_done) * self.gains.gain(quality)
        z = np.clip(np.round(self.transforms.hyper_analyse(y)), -INPUT_LIMIT, INPUT_LIMIT)
        return x_padded, y, z.astype(np.int32)

    def code_latents(self, y: np.ndarray, z_symbols: np.ndarray) -> Compressed:
        """The encoder's second half: latents y' and the coded ẑ -> integer symbols."""
        y_hat, codes = self.entropy.compress(y, z_symbols)
        return Compressed(z_symbols, codes, y_hat)

    def compress(self, x: np.ndarray, quality: float) -> Compressed:
        """x (1,3,H,W) in [0,1] -> integer symbols.  ``quality`` must be the value the header stores."""
        _, y, z_symbols = self.analyse(x, quality)
        return self.code_latents(y, z_symbols)

    # -- decoder -----------------------------------------------------------------------------------
    def decompress(self, z_symbols: np.ndarray, read_slice: Callable[[int, np.ndarray], np.ndarray],
                   quality: float, size: tuple[int, int], tile_done: Callable[[], object] | None = None
                   ) -> np.ndarray:
        """Rebuild x̂ (1,3,H,W) in [0,1]; ``read_slice(k, σ-indexes)`` returns slice k's symbols."""
        y_hat = self.entropy.decompress(z_symbols, read_slice)
        return self.reconstruct(y_hat, quality, size, tile_done)

    def reconstruct(self, y_hat: np.ndarray, quality: float, size: tuple[int, int],
                    tile_done: Callable[[], object] | None = None) -> np.ndarray:
        """The decoder's image: g_s(ŷ' ⊙ g⁻¹(q)), cropped to ``size`` and clamped to [0, 1]."""
        scaled = (y_hat * self.gains.inverse(quality)).astype(np.float32)
        x_hat = _tiled(self.transforms.synthesise, scaled, 1 / Y_STRIDE, tile_done)
        return np.clip(x_hat[..., : size[0], : size[1]], 0.0, 1.0)
