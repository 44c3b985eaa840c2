"""The fixed-point format of the exact entropy path: one place, read by training and coding.

Activations, means and LRP offsets live on a grid of 2^-ACT_FRAC, weights on a grid of 2^-W_FRAC;
the bounds below keep every accumulator of an integer convolution under 2^53, where float64 holds
integers exactly (``codec.networks.integer`` trains under this format, ``codec.exact_entropy`` codes with it).
"""

__all__ = ["ACT_FRAC", "ACT_MAX", "INPUT_LIMIT", "W_FRAC", "W_LIMIT", "EXACT_LIMIT", "TANH_RANGE",
           "SYMBOL_LIMIT"]

ACT_FRAC = 6  # activations, means and LRP offsets live on a grid of 2^-6
ACT_MAX = (2**12 - 1) / 2**ACT_FRAC  # QReLU ceiling: 12-bit unsigned activations
INPUT_LIMIT = 2.0**9  # inputs (latents, hyper-latents) are clamped to +-512 -> |int| <= 2^15
W_FRAC = 16  # weights on a grid of 2^-16
W_LIMIT = 8.0  # |w| <= 8 -> |w_int| <= 2^19
EXACT_LIMIT = 2.0**53  # the largest integer float64 holds exactly; every accumulator stays below it
TANH_RANGE = 8.0  # LRP's ½·tanh(v) is tabulated for |v| <= 8, where it has saturated
SYMBOL_LIMIT = 2**30  # symbols are int32 on the wire; keep |q| well inside it
