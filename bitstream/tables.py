"""Integer probability tables of zero-mean quantized Gaussians, one per scale index.

For a scale table ``scales`` (L standard deviations, float64, shipped with the model) this
builds, for each index i, the integer weights of the symbols ``-R_i .. R_i`` followed by
one escape slot:

    p_i(x) = Phi((x + 1/2) / s_i) - Phi((x - 1/2) / s_i),     |x| <= R_i
    R_i    = min(ceil(TAIL_SIGMAS * s_i), MAX_RADIUS)
    p_i(escape) >= 2**-16, and also >= the Gaussian mass beyond +-R_i

The weights of one table sum to ``WEIGHT_TOTAL - (2 R_i + 2)``; constriction's
``Categorical(perfect=False)`` adds one to each weight, so its fixed-point model is then
exactly ``(w + 1) / 2**24`` (its fast quantizer scales by ``free / sum(w)`` = 1.0 exactly,
since all of these integers are exact in float64).

Why everything here is hand-rolled: encoder and decoder each build these tables from the
scale table, so the weights must be bit-identical on every machine. ``exp``/``erfc``
from libm or numpy's SIMD paths may differ by an ulp between platforms, and an ulp can
move a ``floor`` to the next integer. So this module uses only IEEE-754 ``+ - * /`` and
``ldexp`` (correctly rounded everywhere, no fused multiply-add in numpy ufuncs), and
integer arithmetic after that. Accuracy of the erfc fit (relative error < 1.2e-7) only
affects compression efficiency, never correctness.
"""

import numpy as np

__all__ = ["TAIL_SIGMAS", "MAX_RADIUS", "PRECISION", "gaussian_tables", "laplace_tables"]

PRECISION = 24
WEIGHT_TOTAL = 1 << PRECISION
# A symbol beyond 6 sigma has Gaussian probability < 2e-9, far below the escape's 2**-16,
# so widening the table further would cost table size without saving bits.
TAIL_SIGMAS = 6.0
# Caps a table at 2049 symbols + escape; only scales above ~170 reach it, and their
# (small) extra tail mass goes to the escape slot.
MAX_RADIUS = 1024
MIN_ESCAPE_WEIGHT = WEIGHT_TOTAL >> 16

_LN2_HI = 6.93147180369123816490e-01  # trailing zero bits: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_SQRT1_2 = 0.70710678118654752440


def _exp(x: np.ndarray) -> np.ndarray:
    """exp(x) for x in [-745, 1] using only correctly rounded operations."""
    x = np.maximum(x, -745.0)
    k = np.rint(x * _INV_LN2)
    r = (x - k * _LN2_HI) - k * _LN2_LO  # |r| <= 0.35
    poly = np.ones_like(r)
    for n in range(14, 0, -1):  # Taylor series in Horner form; remainder < 1e-17
        poly = 1.0 + poly * r / n
    return np.ldexp(poly, k.astype(np.int32))


def _erfc(z: np.ndarray) -> np.ndarray:
    """erfc(z) for z >= 0: Chebyshev fit of Press et al., Numerical Recipes 2nd ed., §6.2."""
    t = 1.0 / (1.0 + 0.5 * z)
    coeffs = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806,
              0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277)
    acc = np.zeros_like(z)
    for c in coeffs[:0:-1]:
        acc = t * (c + acc)
    return t * _exp(-z * z + (coeffs[0] + acc))


def _upper_tail(x: np.ndarray) -> np.ndarray:
    """P(N(0, 1) > x) for x >= 0."""
    return 0.5 * _erfc(x * _SQRT1_2)


def radii(scales: np.ndarray) -> np.ndarray:
    """R_i per scale index: the table covers the integers -R_i .. R_i."""
    return np.minimum(np.ceil(TAIL_SIGMAS * scales), MAX_RADIUS).astype(np.int64)


def _weights(tail: np.ndarray) -> np.ndarray:
    """Integer weights of a symmetric density over -R..R, then the escape, from its upper tail
    ``tail[x]`` = P(X > x + 1/2) for x = 0..R: each symbol's mass times the free total, rounded;
    the escape max(2**-16, the mass beyond R)."""
    r = tail.size - 1
    free = WEIGHT_TOTAL - (2 * r + 2)
    mass = np.empty(r + 1)
    mass[0] = 1.0 - 2.0 * tail[0]
    mass[1:] = tail[:-1] - tail[1:]
    half = np.rint(np.maximum(mass, 0.0) * free).astype(np.int64)
    w = np.concatenate([half[:0:-1], half, [0]])
    w[-1] = max(MIN_ESCAPE_WEIGHT, int(np.rint(2.0 * tail[-1] * free)))
    # The few units of rounding slack (or deficit) go to the mode, whose relative change is smallest.
    w[r] += free - int(w.sum())
    return w


def gaussian_tables(scales: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Radii and integer weights (length 2 R_i + 2, escape last) for every scale index."""
    scales = np.asarray(scales, dtype=np.float64)
    radius = radii(scales)
    weights = []
    for s, r in zip(scales.tolist(), radius.tolist()):
        x = np.arange(r + 1, dtype=np.float64)  # non-negative half; the Gaussian is symmetric
        weights.append(_weights(_upper_tail((x + 0.5) / s)))
    return radius, weights


# Laplace tables cover |x| <= LAPLACE_TAIL * b: beyond it the mass exp(-LAPLACE_TAIL) < 2**-24.
LAPLACE_TAIL = 17.0


def laplace_tables(scales: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Radii and integer weights of zero-mean discretised Laplace densities, escape last.

    For scale b (the mean absolute value), the integer x has probability

        p(0) = 1 - exp(-1/(2b)),   p(x) = (exp(-(|x| - 1/2)/b) - exp(-(|x| + 1/2)/b)) / 2,

    over -R..R with R = min(ceil(LAPLACE_TAIL * b), MAX_RADIUS), and an escape slot holds
    max(2**-16, the mass beyond R). Built like ``gaussian_tables`` (same weight total, same
    rounding slack to the mode) with the correctly rounded ``_exp``, so bit-identical everywhere.
    """
    scales = np.asarray(scales, dtype=np.float64)
    radius = np.minimum(np.ceil(LAPLACE_TAIL * scales), MAX_RADIUS).astype(np.int64)
    weights = []
    for b, r in zip(scales.tolist(), radius.tolist()):
        x = np.arange(r + 1, dtype=np.float64)
        weights.append(_weights(0.5 * _exp(-(x + 0.5) / b)))  # P(X > x + 1/2)
    return radius, weights
