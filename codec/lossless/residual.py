"""The residual layer: exact lossless and near-lossless coding of integer samples.

Every sample x is coded as q, its prediction error quantised in the loop (JPEG-LS's near-lossless
scheme, Weinberger, Seroussi & Sapiro, IEEE TIP 2000):

    q  = sign(x - p) floor((|x - p| + K) / (2K + 1)),   x' = clip(p + (2K + 1) q),   |x' - x| <= K

so the decoder, which forms p from samples it already has, rebuilds x' exactly; K = 0 is lossless.

Prediction (p).  A blend of simple predictors, each weighted by how wrong it was next door, after
JPEG XL's self-correcting predictor and Meyer & Tischer's TMW blending:

    p_k   in {W + NE - N, N, W, W + N - NW, (W + NE) / 2, MED(W, N, NW), NE, (W + N) / 2, ...}
    S_k   = |err_k| summed over W, N, NW, NE (and WW, NN at half weight)
    p     = sum_k p_k / S_k^2 / sum_k 1 / S_k^2,   then + the mean error of p in its context
    coded: q, its sign flipped where the unrounded p lies below the rounded one

For the second and third colour channels (G is coded first, then R and B) three more predictors
carry G's structure across: G' + MED of the differences (W - W_G, ...), G' + mean of the W and N
differences, G' + the NE difference; B gets the first two from R as well.  Where the channels
move together these win the blend.

The bias correction is CALIC's error feedback (Wu & Memon, IEEE TCOM 1997): the mean error of p over
a context of 8 texture bits (is N, W, NW, NE, NN, WW, 2N - NN, 2W - WW above p?) and the
error-energy class, each error clipped to about the local error level so that edges do not drag it.

Near-lossless colour: where R' (or B') and G' agree at W and N to within K / 2 and the prediction
is within K of G', the prediction is G' itself, so that gray content stays exactly gray instead of
drifting by the quantisation noise (US1 at K = 2: 1.73 bpp instead of 2.43; Kodak unchanged).

Probability of q.  Context = (channel, 4-per-octave class of the blend's expected error
E = sum_k S_k / S_k^2 / sum_k 1 / S_k^2, and for R and B the size of G's q at the same pixel);
``bitstream.residual_coder`` codes q with adaptive token counts per context.

Order and speed.  The image is cut into square tiles of ``RESIDUAL_TILE`` pixels a side, each
coded as if it were a whole image (its edges predicted from inside it), all tiles in lock step:
pass t codes every pixel with 2i + j = t in its tile (local coordinates), channel after channel, so
a pass's samples depend only on earlier passes and are computed with one numpy operation each;
there are at most 3 RESIDUAL_TILE - 2 passes whatever the image size.  Statistics (bias, counts)
are shared by all tiles and updated after each pass on both sides, with integer arithmetic only:
encoder and decoder compute identical predictions and contexts on any machine.
"""

from __future__ import annotations

import numpy as np

from bitstream import LicFormatError
from bitstream.residual_coder import ContextDecoder, ContextEncoder, prior

__all__ = ["RESIDUAL_TILE", "encode_residual", "decode_residual"]

RESIDUAL_TILE = 512  # vs 256: 0.2-1.1 % fewer bits (fewer tile edges), 1.4x the passes
SHIFT = 3  # predictions carry 3 fraction bits
ONE = 1 << SHIFT
N_SCALE = 64  # classes of the expected error (4 per octave)
N_REF = 6  # classes of G's |q| for R and B
BIAS_RESET = 64  # halve a bias context's statistics at this count
_PAD = 2  # padding rows above and columns left of each tile; one column right (+1 spare)


def _bit_length(v: np.ndarray) -> np.ndarray:
    """Bit length of non-negative int64 v (< 2**53, so the float is exact)."""
    return np.frexp(v.astype(np.float64))[1].astype(np.int64)


def _log_class(v: np.ndarray) -> np.ndarray:
    """0..3 for v = 0..3, then 4 classes per octave: 4(L - 3) + (top 3 bits), capped."""
    length = _bit_length(v)
    top = v >> np.maximum(length - 3, 0)
    return np.minimum(np.where(length <= 3, v, 4 * (length - 3) + top), N_SCALE - 1)


def _class_value(c: np.ndarray) -> np.ndarray:
    """A representative value of each ``_log_class`` class (its lower edge)."""
    c = np.asarray(c, dtype=np.int64)
    return np.where(c < 4, c, (4 + c % 4) << np.maximum(c // 4 - 1, 0))


def _priors(n_channels: int) -> np.ndarray:
    """Starting token counts per context: Laplace densities of the class's typical |q|."""
    # E sums about five neighbours' errors in ONE units; |q| is about E / (5 ONE).
    mean = np.maximum(_class_value(np.arange(N_SCALE)) / (5.0 * ONE), 1 / 16)
    scale = prior(mean)
    return np.tile(np.repeat(scale, N_REF, axis=0), (n_channels, 1))


class _Layout:
    """Where each tile's samples live in the padded per-tile buffers, and the passes."""

    def __init__(self, height: int, width: int):
        self.height, self.width = height, width
        self.tiles_y, self.tiles_x = -(-height // RESIDUAL_TILE), -(-width // RESIDUAL_TILE)
        self.row = RESIDUAL_TILE + _PAD + 2  # columns -2 .. RESIDUAL_TILE + 1
        self.block = (RESIDUAL_TILE + _PAD) * self.row
        tiles = np.arange(self.tiles_y * self.tiles_x)
        self.tile_y, self.tile_x = tiles // self.tiles_x, tiles % self.tiles_x
        self.tile_h = np.minimum(RESIDUAL_TILE, height - self.tile_y * RESIDUAL_TILE)
        self.tile_w = np.minimum(RESIDUAL_TILE, width - self.tile_x * RESIDUAL_TILE)
        self.size = tiles.size * self.block
        self.n_passes = int(2 * (self.tile_h.max() - 1) + self.tile_w.max())

    def pass_positions(self, t: int):
        """(buffer positions, flat image indexes, local i, local j, tile h, tile w) of pass t."""
        i = np.arange(max(0, (t - RESIDUAL_TILE + 2) // 2), min(RESIDUAL_TILE - 1, t // 2) + 1, dtype=np.int64)
        j = t - 2 * i
        keep = j < RESIDUAL_TILE
        i, j = i[keep], j[keep]
        tiles = np.arange(self.tile_y.size)
        tt = np.repeat(tiles, i.size)
        ii, jj = np.tile(i, tiles.size), np.tile(j, tiles.size)
        th, tw = self.tile_h[tt], self.tile_w[tt]
        inside = (ii < th) & (jj < tw)
        tt, ii, jj, th, tw = tt[inside], ii[inside], jj[inside], th[inside], tw[inside]
        buffer = tt * self.block + (ii + _PAD) * self.row + jj + _PAD
        image = (self.tile_y[tt] * RESIDUAL_TILE + ii) * self.width + self.tile_x[tt] * RESIDUAL_TILE + jj
        return buffer, image, ii, jj, th, tw


def _n_predictors(n_channels: int, c: int) -> int:
    return 12 if n_channels == 1 else (9, 9, 11)[c]


def _inter(w, n, nw, ne, ref: np.ndarray, p: np.ndarray, row: int):
    """Predictors from an earlier channel X' at the same pixel: X' + MED of the differences,
    X' + the mean of the W and N differences (doubled: the caller halves), X' + the NE difference."""
    x = ref[p].astype(np.int64)
    dw, dn, dnw, dne = w - ref[p - 1], n - ref[p - row], nw - ref[p - row - 1], ne - ref[p - row + 1]
    lo, hi = np.minimum(dw, dn), np.maximum(dw, dn)
    dmed = np.where(dnw >= hi, lo, np.where(dnw <= lo, hi, dw + dn - dnw))
    return x + dmed, 2 * x + dw + dn, x + dne


def _predictors(r: np.ndarray, p: np.ndarray, row: int, refs: list[np.ndarray], gray: bool) -> np.ndarray:
    """(n, k) sub-predictions in ONE units at buffer positions ``p`` of reconstruction ``r``.

    ``refs``: the channels coded before this one (G for R; G and R for B, whose two more
    predictors from R save 2.4-2.6 % on Kodak); ``gray``: a one-channel image, which gets three
    more predictors (2N - NN, 2W - WW, (N + NE) / 2): 0.1-2.4 % fewer bits on the medical images,
    while for colour images they cost 0.6 % on Kodak (the blend dilutes).
    """
    w, n = r[p - 1].astype(np.int64), r[p - row].astype(np.int64)
    nw, ne = r[p - row - 1].astype(np.int64), r[p - row + 1].astype(np.int64)
    lo, hi = np.minimum(w, n), np.maximum(w, n)
    med = np.where(nw >= hi, lo, np.where(nw <= lo, hi, w + n - nw))
    full = [w + ne - n, n, w, w + n - nw, med]  # in sample units
    half = [w + ne]  # in half samples
    if not refs:
        full += [n, ne]
        half += [w + n]
    else:
        g_med, g_mean2, g_ne = _inter(w, n, nw, ne, refs[0], p, row)
        full += [g_med, g_ne]
        half += [g_mean2]
        for ref in refs[1:]:
            x_med, x_mean2, _ = _inter(w, n, nw, ne, ref, p, row)
            full += [x_med]
            half += [x_mean2]
    if gray:
        full += [2 * n - r[p - 2 * row], 2 * w - r[p - 2]]
        half += [n + ne]
    out = np.empty((p.size, len(full) + len(half)), dtype=np.int64)
    for k, v in enumerate(full):
        out[:, k] = ONE * v
    for k, v in enumerate(half):
        out[:, len(full) + k] = (ONE // 2) * v
    return out


def _scan(layout: _Layout, n_channels: int, maxval: int, max_error: int, init: int, code,
          hint: np.ndarray | None = None) -> np.ndarray:
    """The shared coding loop; ``code(c, image_index, pred, contexts, sign) -> q`` codes (or decodes)
    ``sign * q`` for one pass and channel."""
    unit = 2 * max_error + 1
    row = layout.row
    rec = np.full((n_channels, layout.size), init, dtype=np.int32)
    n_pred = [_n_predictors(n_channels, c) + (hint is not None) for c in range(n_channels)]
    errors = [np.zeros((layout.size, n), dtype=np.uint16) for n in n_pred]
    bias_sum = np.zeros((n_channels, 256 * 8), dtype=np.int64)
    bias_count = np.zeros((n_channels, 256 * 8), dtype=np.int64)
    out = np.empty((n_channels, layout.height * layout.width), dtype=np.int64)
    weight_one = np.int64(1 << 16)
    for t in range(layout.n_passes):
        p, image, i, j, th, tw = layout.pass_positions(t)
        if p.size == 0:
            continue
        q_ref = None
        for c in range(n_channels):
            r = rec[c]
            preds = _predictors(r, p, row, [rec[k] for k in range(c)], n_channels == 1)
            if hint is not None:
                preds = np.concatenate([preds, ONE * hint[c, image][:, None]], axis=1)
            e = errors[c]
            s = (e[p - 1].astype(np.int64) + e[p - row] + e[p - row - 1] + e[p - row + 1]
                 + (e[p - 2] >> 1) + (e[p - 2 * row] >> 1)) + ONE
            s2 = s * s
            base = s2.min(axis=1, keepdims=True)
            weight = (weight_one * base) // s2
            total = weight.sum(axis=1)
            blend = (weight * preds).sum(axis=1) // total
            expected = (weight * s).sum(axis=1) // total - ONE

            # CALIC error feedback: mean error of the blend in its texture/energy context.
            n8, w8 = ONE * r[p - row].astype(np.int64), ONE * r[p - 1].astype(np.int64)
            nn8, ww8 = ONE * r[p - 2 * row].astype(np.int64), ONE * r[p - 2].astype(np.int64)
            texture = ((n8 > blend).astype(np.int64) | (w8 > blend) << 1
                       | (ONE * r[p - row - 1].astype(np.int64) > blend) << 2
                       | (ONE * r[p - row + 1].astype(np.int64) > blend) << 3
                       | (nn8 > blend) << 4 | (ww8 > blend) << 5
                       | (2 * n8 - nn8 > blend) << 6 | (2 * w8 - ww8 > blend) << 7)
            energy = np.minimum(_bit_length(expected // (ONE * unit)), 7)
            bctx = texture * 8 + energy
            count = bias_count[c, bctx]
            correction = np.where(count > 0, (2 * bias_sum[c, bctx] + count) // (2 * np.maximum(count, 1)), 0)
            pred = np.clip((blend + correction + ONE // 2) >> SHIFT, 0, maxval)
            if c > 0 and max_error:
                # Snap to G' when within K of it and W and N are equal to G' already: where the
                # channels are equal (gray content), R' and B' then stay locked onto G' instead of
                # drifting around it by the quantisation noise.
                ref = rec[0]
                g = ref[p]
                gray = np.abs(r[p - 1] - ref[p - 1]) + np.abs(r[p - row] - ref[p - row]) <= (max_error + 1) // 2
                pred = np.where(gray & (np.abs(pred - g) <= max_error), g, pred)

            context = _log_class(expected // unit) * N_REF
            if c > 0:
                context += np.minimum(_bit_length(np.abs(q_ref)), N_REF - 1)
            context += c * N_SCALE * N_REF
            # Sign flipping (CALIC): q's likelier sign is the side the unrounded prediction lies on;
            # coding sign * q lets each context's counts learn one asymmetry (-0.5 to -0.8 % bits).
            sign = np.where(blend + correction < pred << SHIFT, -1, 1)
            q = code(c, image, pred, context, sign)
            value = pred + q * unit
            if value.min() < -max_error or value.max() > maxval + max_error:
                raise LicFormatError("corrupt: residual decodes to a sample outside the stored range")
            value = np.clip(value, 0, maxval)
            if c == 0:
                q_ref = q

            r[p] = value
            out[c, image] = value
            e[p] = np.minimum(np.abs(ONE * value[:, None] - preds), 0xFFFF)
            limit = expected // 5 + ONE
            # float64 sums of small integers are exact
            bias_sum[c] += np.bincount(bctx, np.clip(ONE * value - blend, -limit, limit),
                                       bias_sum.shape[1]).astype(np.int64)
            bias_count[c] += np.bincount(bctx, minlength=bias_count.shape[1])
            full = bias_count[c] >= BIAS_RESET
            if full.any():
                bias_sum[c, full] //= 2
                bias_count[c, full] //= 2

            _fill_tile_edges(r, p, value, i, j, th, tw, row)
    return out.reshape(n_channels, layout.height, layout.width)


def _fill_tile_edges(r: np.ndarray, p: np.ndarray, value: np.ndarray, i: np.ndarray, j: np.ndarray,
                     th: np.ndarray, tw: np.ndarray, row: int) -> None:
    """Tile edges: outside neighbours repeat the nearest sample already coded, so a tile codes as a
    whole image would (first column: W = N; last column: NE = N; first row: N = NE = NW = W)."""
    first_col = (j == 0) & (i + 1 < th)
    if first_col.any():
        below = p[first_col] + row
        r[below - 1] = value[first_col]
        r[below - 2] = value[first_col]
    last_col = j == tw - 1
    r[p[last_col] + 1] = value[last_col]
    first_row = i == 0
    if first_row.any():
        top, v = p[first_row], value[first_row]
        for d in (1, 2):
            r[top - row + d] = v
            r[top - 2 * row + d] = v


def _check(samples_shape, maxval: int, max_error: int) -> _Layout:
    if len(samples_shape) != 3 or 0 in samples_shape or samples_shape[0] not in (1, 3):
        raise ValueError(f"expected (C, H, W) samples with C = 1 or 3, got shape {samples_shape}")
    if not (1 <= maxval < 1 << 16 and 0 <= max_error < 1 << 16):
        raise ValueError("maxval must be in 1..65535 and max_error in 0..65535")
    return _Layout(samples_shape[1], samples_shape[2])


def channel_order(n_channels: int) -> list[int]:
    return [1, 0, 2] if n_channels == 3 else [0]  # G first: R and B borrow its structure


def _hint(hint, shape, order):
    """The optional side-information predictor, in coding order (see ``encode_residual``)."""
    if hint is None:
        return None
    hint = np.asarray(hint)
    if hint.shape != tuple(shape):
        raise ValueError(f"hint must have the samples' shape {tuple(shape)}, got {hint.shape}")
    return hint[order].reshape(len(order), -1).astype(np.int64)


def encode_residual(samples: np.ndarray, maxval: int, max_error: int = 0,
                    hint: np.ndarray | None = None) -> tuple[bytes, np.ndarray]:
    """Code (C, H, W) integer ``samples`` in 0..maxval, every one within ``max_error``.

    Returns the stream and the decoder's reconstruction (equal to ``samples`` for
    ``max_error`` 0, within ``max_error`` of it otherwise).  ``hint``: integer samples of the
    same shape that the decoder will have too (a lossy layer's reconstruction), blended in as one
    more predictor.  lic's files use none (``codec.lossless.near_lossless`` says why);
    ``benchmarks.lossless --lossy-layer`` measures what one would save.
    """
    samples = np.asarray(samples)
    layout = _check(samples.shape, maxval, max_error)
    if samples.min() < 0 or samples.max() > maxval:
        raise ValueError("samples must lie in 0..maxval")
    order = channel_order(samples.shape[0])
    source = samples[order].reshape(len(order), -1).astype(np.int64)
    encoder = ContextEncoder(_priors(len(order)))
    unit = 2 * max_error + 1

    def code(c, image, pred, contexts, sign):
        diff = source[c, image] - pred
        q = np.sign(diff) * ((np.abs(diff) + max_error) // unit)
        encoder.encode(sign * q, contexts)
        return q

    rec = _scan(layout, len(order), maxval, max_error, (maxval + 1) // 2, code, _hint(hint, samples.shape, order))
    return encoder.finish(), rec[np.argsort(order)]


def decode_residual(data: bytes, shape: tuple[int, int, int], maxval: int, max_error: int = 0,
                    hint: np.ndarray | None = None) -> np.ndarray:
    """Inverse of ``encode_residual`` (given the same ``hint``): the (C, H, W) int64 reconstruction.

    ``LicFormatError`` for a stream that decodes to a sample outside [-K, maxval + K], runs
    out of data or has data left over.
    """
    layout = _check(tuple(shape), maxval, max_error)
    order = channel_order(shape[0])
    decoder = ContextDecoder(data, _priors(len(order)))

    def code(c, image, pred, contexts, sign):
        return sign * decoder.decode(contexts)

    rec = _scan(layout, len(order), maxval, max_error, (maxval + 1) // 2, code, _hint(hint, shape, order))
    decoder.finish()
    return rec[np.argsort(order)]
