"""lic-exact-2, -3, -4 and -5: the residual layer's scanline coders, compiled (``codec/lossless/exact2.c``).

The same quantisation in the loop as lic-exact-1 (``codec.lossless.residual``; JPEG-LS near-lossless):

    q  = sign(x - p) floor((|x - p| + K) / (2K + 1)),   x' = clip(p + (2K + 1) q),   |x' - x| <= K

and the same prediction p: the blend of lic-exact-1's sub-predictions, each weighted by 1 / S_k^2
with S_k its error summed over W, N, NW, NE (and WW, NN at half weight), plus CALIC's bias
correction in its texture and energy context; G first, then R and B with predictors borrowed
from G (and R); in near-lossless colour R' and B' snap to G' where they equalled it next door.
What changes is the order and the coding:

- **Raster order**, pixel by pixel and channel by channel, with no tiles, so every statistic is
  updated after every sample (lic-exact-1 updated them once per anti-diagonal pass of 512 x 512
  tiles, to vectorise with numpy).
- **Modelled bits instead of token counts.** q, sign-flipped towards the side the unrounded
  prediction lies on (CALIC), is coded as: is it zero; its sign; the bit length b of |q| - 1 in
  unary; the two bits below that length's top bit; the rest at even chances. Each modelled bit
  has its own adaptive probability (``bitstream/binary_coder.h``) in the context of the expected
  error E = sum_k S_k / S_k^2 / sum_k 1 / S_k^2 (4 classes per octave) and, for R and B, the size
  of G's q at the same pixel; the probabilities start from a two-sided geometric law of mean
  E / 5.
- **Weights by table.** 1 / S^2 from a table of S's top 8 bits, so a blend costs one division.

**lic-exact-3** is lic-exact-2 with three changes that cut its work per sample:

- **Fewer sub-predictions.** lic-exact-2 blends 12 (gray) or 9, 9, 11 (G, R, B), among them N
  twice; lic-exact-3 blends 7 (gray) or 4, 5, 7, those that pay for their place in the blend
  (``codec/lossless/exact2.c``, ``predictors``; ``bitstream/FORMAT.md``).  In colour this makes files
  smaller as well as the loop shorter: a blend of many similar predictions dilutes the best
  one's weight.  In gray it costs a little (0.1 %) for the time saved.
- **q's size from the likeliest size.** The size token t (0 for q = 0, else 1 + the bit length of
  |q| - 1) is coded as: is t above t0, the median token of the context class's starting law; then
  unary upwards or downwards from t0, each step its own adaptive bit.  lic-exact-2 coded "q != 0"
  and then the bit length in unary from zero: more coded bits wherever errors are large.
- **Gray content in colour.** Where R (or B) equals G at W, N, NW and NE, G' is the prediction,
  with no blend or bias correction, and q has a context class of its own, nearly always zero.
  Mostly gray colour images (ultrasound, scanned documents) code faster and smaller.

**lic-exact-4** is lic-exact-3 with better contexts and one option (``benchmarks/results/lossless-log.md``
has the measurements, including what did not pay):

- **The sign in a richer context.** Besides the flip, the signs of q at W, N, NW and NE (lic-exact-3:
  W and N), E's class / 16, how far the unrounded prediction lies from the rounded one (within 1/4,
  1/2, or more: far from it the sign is nearly known, CALIC's reason for the flip) and whether
  |q| = 1, the size being coded first.
- **An adaptive linear sub-prediction** in every channel's blend: normalised LMS (Widrow and Hoff
  1960; Nagumo and Noda 1967) over the neighbours' differences to (W + N) / 2 and, for R and B, the
  channels coded before them at the pixel and next door, its weights updated after every sample
  (all integer; a power-of-two normalisation, so no division).  It learns what the fixed
  sub-predictions cannot: how far R and B follow G (a slope other than 1), and the image's own
  spatial weights.  G in colour also blends 2W - WW, W + NE - N and 2N - NN.
- **Sharper contexts.** The expected-error class mixes E 3 : 1 with the final errors q next door;
  B's second context is R's |q| at the pixel rather than G's; bias statistics halve at 128
  samples; and every modelled bit weighs its slow estimate three times the fast one.
- **A second bias correction**, pooled with CALIC's: the mean error of the blend in the context of
  the signs of q at W and N and the error energy, C = (sum_1 + sum_2) / (n_1 + n_2) over the two
  contexts' statistics (one division; errors of one sign come in patches).
- **Tools for few colours** (an option of the stream, chosen by the encoder), for images of text,
  graphics or a colour overlay on gray (Doppler ultrasound with its captions):

  - *match mode*: where W, N, NE and NW show fewer than four distinct values, bits say whether the
    sample is the first, second, ... of them (in the context of their pattern of equalities), so a
    sharp edge between two levels costs a bit or two instead of a large q with its direct bits;
  - *gray bit* (R and B): where the neighbours are not all gray, one bit says whether the sample is
    G' all the same (the edges of a colour overlay);
  - *colour map* (R and B): R and B are predicted by the last value they took, not gray, with the
    same value of G, wherever that map predicted them exactly at W and N; such samples have a class
    of their own, no blend.

  On photographs the match mode costs (its bits say little where values are rarely equal), so the
  encoder codes images with few colours (or few gray levels) both ways and keeps the smaller stream.

**lic-exact-5** is lic-exact-4 made faster, and smaller by a secondary estimation of its bits:

- **The LMS's update in 32-bit lanes.** The error is brought to 32 bits once per sample, so each
  weight's step is a 32-bit product (lic-exact-4: 64-bit); with the inputs padded to whole vectors
  of 8, the update, the dot product and the inputs' power are a few AVX2 instructions (the coding
  loops are built twice with gcc on x86-64, and the AVX2 build taken where the processor has it;
  both write and read the same streams).
- **Secondary estimation of q's size** (SSE / APM, as in the PAQ family, Mahoney): each token bit's
  probability is stretched (the logit), located between two of 33 nodes of a table that learns how
  the adaptive estimate is off, and the nodes' interpolated probability averaged with it.  The
  table has one row per token bit and per context of how far the LMS sub-prediction lies from the
  blend, against the expected error: where the two disagree the blend is less sure than its
  errors next door say, which the primary contexts cannot see.

All integer, as lic-exact-1: encoder and decoder agree on every machine.  lic-exact-1's files
still decode (``codec.lossless.residual``), and lic-exact-2's and -3's (this module, ``coder=``); new
files use ``bitstream.RESIDUAL_CODER``.
"""

from __future__ import annotations

import numpy as np

from bitstream import RESIDUAL_CODER, LicFormatError

from . import _exact2
from .residual import channel_order

__all__ = ["encode_residual", "decode_residual", "VERSIONS"]

# The coders of this module, by the id a file's header names them with.
VERSIONS = {"lic-exact-2": 2, "lic-exact-3": 3, "lic-exact-4": 4, "lic-exact-5": 5}

# lic-exact-4's and -5's options (the first byte of their streams): the tools for few colours.
FEW_COLOURS = 1
# The encoder tries them on images whose sampled pixels (at most FEW_SAMPLE of them, evenly spaced)
# show at most FEW_COLOURS_MAX colours (gray levels): photographs show thousands.
FEW_SAMPLE, FEW_COLOURS_MAX = 1 << 16, 1024


def _version(coder: str) -> int:
    if coder not in VERSIONS:
        raise ValueError(f"unknown residual coder {coder!r} (this module codes {', '.join(VERSIONS)})")
    return VERSIONS[coder]


def _check(shape, maxval: int, max_error: int) -> tuple[int, int, int]:
    if len(shape) != 3 or 0 in shape or shape[0] not in (1, 3):
        raise ValueError(f"expected (C, H, W) samples with C = 1 or 3, got shape {tuple(shape)}")
    if not (1 <= maxval < 1 << 16 and 0 <= max_error <= maxval):
        raise ValueError("maxval must be in 1..65535 and max_error in 0..maxval")
    return tuple(int(v) for v in shape)


def _few_colours(samples: np.ndarray) -> bool:
    """Whether (C, H, W) samples show few colours (gray levels), from a sample of pixels."""
    pixels = samples.reshape(samples.shape[0], -1)
    step = max(1, pixels.shape[1] // FEW_SAMPLE)
    packed = np.zeros(pixels[0, ::step].shape, dtype=np.uint64)
    for plane in pixels:
        packed = (packed << np.uint64(16)) | plane[::step]
    return len(np.unique(packed)) <= FEW_COLOURS_MAX


def encode_residual(samples: np.ndarray, maxval: int, max_error: int = 0,
                    coder: str = RESIDUAL_CODER) -> tuple[bytes, np.ndarray]:
    """Code (C, H, W) integer ``samples`` in 0..maxval, every one within ``max_error``, with ``coder``.

    Returns the stream and the decoder's reconstruction, (C, H, W) uint16 (``samples`` itself
    for ``max_error`` 0).  lic-exact-4 and -5 code an image of few colours twice, with and without its
    tools for few colours, and keeps the smaller stream."""
    samples = np.asarray(samples)
    version = _version(coder)
    channels, height, width = _check(samples.shape, maxval, max_error)
    if samples.min() < 0 or samples.max() > maxval:
        raise ValueError("samples must lie in 0..maxval")
    order = channel_order(channels)
    source = np.ascontiguousarray(samples[order], dtype=np.uint16)
    rec = np.empty_like(source)
    data = _exact2.encode(source, rec, channels, height, width, int(maxval), int(max_error), version)
    if version >= 4 and _few_colours(source):
        rec_few = np.empty_like(source)
        few = _exact2.encode(source, rec_few, channels, height, width, int(maxval), int(max_error), version,
                             FEW_COLOURS)
        if len(few) < len(data):
            data, rec = few, rec_few
    return data, rec[np.argsort(order)]


def decode_residual(data: bytes, shape: tuple[int, int, int], maxval: int, max_error: int = 0,
                    coder: str = RESIDUAL_CODER) -> np.ndarray:
    """Inverse of ``encode_residual`` with the same ``coder``: the (C, H, W) uint16 reconstruction.

    ``LicFormatError`` for a stream that decodes to a sample outside [-K, maxval + K], ends early,
    has data left over or (lic-exact-4, -5) names options it does not have."""
    version = _version(coder)
    channels, height, width = _check(shape, maxval, max_error)
    out = np.empty((channels, height, width), dtype=np.uint16)
    try:
        _exact2.decode(data, out, channels, height, width, int(maxval), int(max_error), version)
    except _exact2.StreamError as e:
        raise LicFormatError(str(e)) from None
    return out[np.argsort(channel_order(channels))]
