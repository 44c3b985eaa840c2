"""The exact entropy path of coding, in numpy: ẑ -> ψ -> (μ_k, σ-index_k, LRP) for every slice.

Everything that decides a probability the range coder uses is computed here, by integer networks
(Ballé, Johnston & Minnen, ICLR 2019) whose fixed-point format is ``codec.networks.integer``'s:

    a_int = round(a · 2^ACT_FRAC),   acc = W_int ∗ a_int + b_int,   a_out = acc / 2^(W_FRAC+ACT_FRAC)

with W_int = round(clamp(W, ±W_LIMIT) · 2^W_FRAC) and b_int = round(b · 2^(W_FRAC+ACT_FRAC)).
Every product and partial sum is an integer below 2^53 (``IntConv2d.check_exact``), so float64
matrix products compute it exactly in any order, on any BLAS, thread count or machine.

This is the only implementation of that path used for coding, by every runtime (torch or not):
the hyper-synthesis h_s (``networks/hyperprior.py``) and the slice networks P_k, R_k (``networks/slices.py``) are
trained in torch, and their weights are read here from the same state dict.  It needs numpy only.
"""

from __future__ import annotations

from typing import Callable, Mapping, NamedTuple, Sequence

import numpy as np

from .fixed_point import ACT_FRAC, ACT_MAX, INPUT_LIMIT, SYMBOL_LIMIT, TANH_RANGE, W_FRAC, W_LIMIT
from .networks.config import ModelConfig

__all__ = ["ExactEntropyPath", "SliceCode"]


class SliceCode(NamedTuple):
    """What the range coder needs for one slice: symbols and the index of each one's σ."""

    symbols: np.ndarray  # int32 (1, C_k, h, w)
    indexes: np.ndarray  # int64 (1, C_k, h, w), into the σ table


def _grid(x: np.ndarray) -> np.ndarray:
    """Snap to the 2^-ACT_FRAC grid (round half to even, as torch.round)."""
    return np.round(x * 2**ACT_FRAC) / 2**ACT_FRAC


def _qrelu(x: np.ndarray) -> np.ndarray:
    """a = clamp(round(x · 2^6), 0, 2^12 − 1) / 2^6."""
    return np.clip(_grid(x), 0.0, ACT_MAX)


def _pixel_shuffle(x: np.ndarray) -> np.ndarray:
    """(B, 4C, H, W) -> (B, C, 2H, 2W): out[c, 2h+i, 2w+j] = in[4c + 2i + j, h, w]."""
    b, c4, h, w = x.shape
    return x.reshape(b, c4 // 4, 2, 2, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(b, c4 // 4, 2 * h, 2 * w)


class _IntegerConv:
    """One integer convolution (stride 1, 'same' zero padding) on real-valued float64 inputs.

    Computed as one matrix product per kernel tap on the zero-padded, channels-last image viewed
    as rows of pixels: the tap (ky, kx) of output pixel i reads padded pixel i + ky·W' + kx (W' the
    padded width), a contiguous slice, so nothing is copied; the W' − W columns that wrap around a
    row's end are computed and dropped."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray):
        # Clamping, scaling by 2^W_FRAC and rounding are exact in float32 (|w_int| <= 2^19 < 2^24), so
        # they run on the weights as stored and only the final taps are widened to float64: one float64
        # array per layer instead of five (every command builds 26 MB of taps before it codes).
        w = np.asarray(weight)
        w = np.clip(w if w.dtype in (np.float32, np.float64) else w.astype(np.float32), -W_LIMIT, W_LIMIT)
        w *= 2**W_FRAC
        np.round(w, out=w)
        self.out_ch, self.in_ch, self.k, _ = w.shape
        self.taps = np.empty((self.k, self.k, self.in_ch, self.out_ch))  # (ky, kx, C, O)
        np.copyto(self.taps, w.transpose(2, 3, 1, 0))
        self.bias = np.round(bias.astype(np.float64) * 2 ** (W_FRAC + ACT_FRAC))

    def __call__(self, x: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """x (1, C, H, W) real values, or its channels in parts -> (1, O, H, W) real accumulators
        / 2^(W_FRAC+ACT_FRAC)."""
        parts = [x] if isinstance(x, np.ndarray) else list(x)
        _, _, h, w = parts[0].shape
        c = sum(part.shape[1] for part in parts)
        if c != self.in_ch:
            raise ValueError(f"integer convolution expects {self.in_ch} channels, got {c}")
        p = self.k // 2
        wide = w + 2 * p
        # One spare row below: the last taps of the last row read past the bottom padding.
        padded = np.zeros((h + 2 * p + 1, wide, c))
        first = 0
        for part in parts:  # quantised straight into the padded image: no whole-input temporaries
            inner = padded[p : p + h, p : p + w, first : first + part.shape[1]]
            np.clip(part[0].transpose(1, 2, 0), -INPUT_LIMIT, INPUT_LIMIT, out=inner)
            inner *= 2**ACT_FRAC
            np.round(inner, out=inner)
            first += part.shape[1]
        rows = padded.reshape(-1, c)
        acc = np.empty((h * wide, self.out_ch))
        acc[:] = self.bias
        term = np.empty_like(acc)
        for ky in range(self.k):
            for kx in range(self.k):
                start = ky * wide + kx
                np.matmul(rows[start : start + h * wide], self.taps[ky, kx], out=term)
                acc += term
        acc /= 2 ** (W_FRAC + ACT_FRAC)
        return acc.reshape(h, wide, self.out_ch)[:, :w].transpose(2, 0, 1)[None]


class ExactEntropyPath:
    """h_s and the slices' P_k, R_k in exact arithmetic, with the σ table and the z tables.

    ``compress(y, ẑ)`` -> (ŷ, per-slice codes); ``decompress(ẑ, read_slice)`` -> ŷ, where
    ŷ_k = q_k + μ_k + R_k(ψ, ŷ_<k, q_k + μ_k)  (Minnen & Singh 2020, latent residual prediction).
    """

    def __init__(self, config: ModelConfig, state: Mapping[str, np.ndarray]):
        def conv(prefix: str) -> _IntegerConv:
            return _IntegerConv(state[prefix + ".weight"], state[prefix + ".bias"])

        self.slices = config.slices
        self.top = config.num_scales - 1
        self.h_s = [conv(f"hyper.h_s.{name}") for name in ("up1", "up2", "out")]
        self.params = [[conv(f"entropy.params.{k}.{n}") for n in ("conv1", "conv2", "head")]
                       for k in range(len(self.slices))]
        self.lrp = [[conv(f"entropy.lrp.{k}.{n}") for n in ("conv1", "conv2")] for k in range(len(self.slices))]
        self.tanh = [state[f"entropy.lrp.{k}.tanh.table"].astype(np.float64) / 2**ACT_FRAC
                     for k in range(len(self.slices))]
        self.scales = np.asarray(state["entropy.scales"], dtype=np.float64)
        self.z_pmf = np.asarray(state["hyper.density.table_pmf"], dtype=np.int32)
        self.z_offset = np.asarray(state["hyper.density.table_offset"], dtype=np.int32)

    # -- the networks ---------------------------------------------------------------------------
    def features(self, z_symbols: np.ndarray) -> np.ndarray:
        """ψ = q(C3(↑q(C2(↑q(C1 ẑ))))): h_s on the integer hyper-latents (1, Nz, h, w)."""
        up1, up2, out = self.h_s
        x = _qrelu(_pixel_shuffle(up1(z_symbols.astype(np.float64))))
        x = _qrelu(_pixel_shuffle(up2(x)))
        return _qrelu(out(x))

    def _parameters(self, k: int, context: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """P_k: (μ_k on the 2^-6 grid, σ index_k as int64)."""
        conv1, conv2, head = self.params[k]
        mean, index = np.split(head(_qrelu(conv2(_qrelu(conv1(context))))), 2, axis=1)
        mean = np.clip(_grid(mean), -INPUT_LIMIT, INPUT_LIMIT)
        return mean, np.clip(np.round(index), 0, self.top).astype(np.int64)

    def _correction(self, k: int, context: list[np.ndarray]) -> np.ndarray:
        """R_k = ½·tanh(v) read from the shipped table, v on the grid, clamped to ±TANH_RANGE."""
        conv1, conv2 = self.lrp[k]
        v = np.clip(_grid(conv2(_qrelu(conv1(context)))), -TANH_RANGE, TANH_RANGE)
        return self.tanh[k][(v * 2**ACT_FRAC).astype(np.int64) + int(TANH_RANGE * 2**ACT_FRAC)]

    def _run(self, features: np.ndarray, quantize: Callable[[int, np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
        decoded: list[np.ndarray] = []
        for k in range(len(self.slices)):
            context = [features, *decoded]  # the channels ψ, ŷ_<k, handed to the convolutions in parts
            mean, index = self._parameters(k, context)
            y_k = quantize(k, mean, index)
            decoded.append(y_k + self._correction(k, [*context, y_k]))
        return np.concatenate(decoded, axis=1)

    # -- the coding faces ----------------------------------------------------------------------
    def compress(self, y: np.ndarray, z_symbols: np.ndarray) -> tuple[np.ndarray, list[SliceCode]]:
        """Latents y (1, M, h, w, gains applied) and the coded ẑ -> (exact ŷ, per-slice codes)."""
        parts = np.split(y, np.cumsum(self.slices)[:-1], axis=1)  # float32 views: y_k - μ_k promotes them to float64, exactly
        codes: list[SliceCode] = []

        def quantize(k, mean, index):
            q = np.clip(np.round(parts[k] - mean), -SYMBOL_LIMIT, SYMBOL_LIMIT)
            codes.append(SliceCode(q.astype(np.int32), index))
            return q + mean

        return self._run(self.features(z_symbols), quantize), codes

    def decompress(self, z_symbols: np.ndarray,
                   read_slice: Callable[[int, np.ndarray], np.ndarray]) -> np.ndarray:
        """ẑ and ``read_slice(k, σ-indexes)`` (slice k's int symbols) -> exact ŷ (1, M, h, w)."""

        def quantize(k, mean, index):
            return np.asarray(read_slice(k, index), dtype=np.float64).reshape(mean.shape) + mean

        return self._run(self.features(z_symbols), quantize)
