"""Entropy coding speed on a synthetic 768x512 latent (M=320 channels at 1/16 resolution).

Compares the two ways of range coding zero-mean quantized Gaussians with constriction:
``tables``: bitstream.range_coder (one fixed categorical table per scale index, escapes);
``quantized_gaussian``: constriction's QuantizedGaussian family with a per-symbol std
(symbols clipped to its range, no escapes: a lower bound on that approach's cost).

Prints the median of several runs after a warm-up, on one CPU core.
Run: python -m benchmarks.entropy_coding_speed
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import statistics
import time

import constriction
import numpy as np

from bitstream import decode_gaussian, encode_gaussian

CHANNELS, HEIGHT, WIDTH = 320, 512 // 16, 768 // 16
SCALES = np.geomspace(0.11, 256.0, 64)
RUNS = 15
QG_RADIUS = 1 << 15


def synthetic_latent(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Symbols and scale indexes: stds log-distributed, mostly small, about 1 bit/symbol."""
    rng = np.random.default_rng(seed)
    u = rng.random((CHANNELS, HEIGHT, WIDTH))
    std = 0.11 * (20.0 / 0.11) ** (u**4.5)
    indexes = np.clip(np.rint(np.log(std / SCALES[0]) / np.log(SCALES[1] / SCALES[0])), 0, 63).astype(np.int64)
    symbols = np.rint(rng.normal(0.0, SCALES[indexes])).astype(np.int32)
    return symbols, indexes


def median_ms(fn) -> tuple[float, object]:
    result = fn()  # warm-up (also builds and caches the tables)
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times), result


def bench_tables(symbols, indexes):
    enc_ms, data = median_ms(lambda: encode_gaussian(symbols, indexes, SCALES))
    dec_ms, decoded = median_ms(lambda: decode_gaussian(data, indexes, SCALES))
    assert np.array_equal(decoded, symbols)
    return enc_ms, dec_ms, len(data)


def bench_quantized_gaussian(symbols, indexes):
    model = constriction.stream.model.QuantizedGaussian(-QG_RADIUS, QG_RADIUS)
    flat = np.clip(symbols.reshape(-1), -QG_RADIUS, QG_RADIUS).astype(np.int32)
    means = np.zeros(flat.size)
    stds = SCALES[indexes.reshape(-1)]

    def encode():
        encoder = constriction.stream.queue.RangeEncoder()
        encoder.encode(flat, model, means, stds)
        return encoder.get_compressed()

    def decode(words):
        return constriction.stream.queue.RangeDecoder(words).decode(model, means, stds)

    enc_ms, words = median_ms(encode)
    dec_ms, decoded = median_ms(lambda: decode(words))
    assert np.array_equal(decoded, flat)
    return enc_ms, dec_ms, 4 * len(words)


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    symbols, indexes = synthetic_latent()
    n = symbols.size
    print(f"{n} symbols ({CHANNELS}x{HEIGHT}x{WIDTH}), {RUNS} runs, median, 1 core, constriction "
          f"{constriction.__version__ if hasattr(constriction, '__version__') else '0.5.0'}")
    print(f"{'approach':<20}{'bytes':>9}{'bits/sym':>10}{'bpp':>7}{'enc ms':>9}{'dec ms':>9}"
          f"{'enc Msym/s':>12}{'dec Msym/s':>12}")
    for name, bench in (("tables", bench_tables), ("quantized_gaussian", bench_quantized_gaussian)):
        enc_ms, dec_ms, size = bench(symbols, indexes)
        print(f"{name:<20}{size:>9}{8 * size / n:>10.3f}{8 * size / (768 * 512):>7.3f}"
              f"{enc_ms:>9.1f}{dec_ms:>9.1f}{n / enc_ms / 1e3:>12.1f}{n / dec_ms / 1e3:>12.1f}")


if __name__ == "__main__":
    main()
