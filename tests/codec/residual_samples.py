"""The test image of the residual coders' tests (lic-exact-1, lic-exact-2 and lic-exact-3)."""

import numpy as np


def ramp_with_noise(shape, maxval, seed=0):
    """(C, H, W) int64 samples: a diagonal ramp (wrapping), each channel offset, plus noise of +-3."""
    rng = np.random.default_rng(seed)
    c, h, w = shape
    y, x = np.mgrid[0:h, 0:w]
    base = (x * 37 + y * 23) % (maxval // 2 + 1) + maxval // 4
    planes = [base + k * 5 + rng.integers(-3, 4, (h, w)) for k in range(c)]
    return np.clip(np.stack(planes), 0, maxval).astype(np.int64)
