"""Parameter count and multiply-accumulates per pixel of lic's encoder, decoder and entropy path.

    python -m benchmarks.complexity [--weights DIR | --config default|tiny] [--size 512x768]

MACs are counted with forward hooks while the model's forward pass runs on one image in eval mode
(the same layers, at the same sizes, as coding runs; coding computes the entropy path in numpy,
where hooks cannot see it): Conv2d = out_elems·C_in·k², ConvTranspose2d = in_elems·C_out·k², GDN = out_elems·C
(its C×C 1x1 convolution), integer convs like Conv2d.  Element-wise work (GDN's sqrt, gains,
pixel shuffle, clamps) is left out, as is usual for MAC counts.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import torch
import torch.nn as nn

from codec.networks.config import ModelConfig
from codec.networks.integer import IntConv2d
from codec.networks.model import LicModel
from codec.networks.transforms import GDN

# Which part of the model each top-level module belongs to.
PARTS = {
    "g_a": "analysis g_a",
    "hyper.h_a": "hyper-analysis h_a",
    "hyper.h_s": "hyper-synthesis h_s",
    "entropy.params": "slice mean/scale nets",
    "entropy.lrp": "slice LRP nets",
    "g_s": "synthesis g_s",
}
ENTROPY_PATH = ("hyper.h_s", "entropy.params", "entropy.lrp")


def _macs(module: nn.Module, inputs, output) -> int:
    x = inputs[0]
    if isinstance(module, (nn.Conv2d, IntConv2d)) and not isinstance(module, nn.ConvTranspose2d):
        w = module.weight
        return output.numel() * w.shape[1] * w.shape[2] * w.shape[3]
    if isinstance(module, nn.ConvTranspose2d):
        w = module.weight  # (C_in, C_out, k, k)
        return x.numel() * w.shape[1] * w.shape[2] * w.shape[3]
    if isinstance(module, GDN):
        return output.numel() * output.shape[1]
    return 0


def _part(name: str) -> str | None:
    for prefix in PARTS:
        if name == prefix or name.startswith(prefix + "."):
            return prefix
    return None


def count(model: LicModel, height: int = 512, width: int = 768) -> dict:
    """MACs per pixel of every part and of encoder/decoder/entropy path, plus parameters."""
    totals: dict[str, int] = defaultdict(int)
    hooks = []
    for name, module in model.named_modules():
        part = _part(name)
        if part and isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, IntConv2d, GDN)):
            hooks.append(module.register_forward_hook(
                lambda m, i, o, part=part: totals.__setitem__(part, totals[part] + _macs(m, i, o))
            ))
    x = torch.rand(1, 3, height, width)
    try:
        model.eval()(x, 4.0)
    finally:
        for h in hooks:
            h.remove()
    pixels = height * width
    per_part = {PARTS[p]: totals[p] / pixels for p in PARTS}
    params = {PARTS[p]: sum(t.numel() for t in model.get_submodule(p).parameters()) for p in PARTS}
    params["other (density, gains)"] = sum(t.numel() for t in model.parameters()) - sum(params.values())
    return {
        "encoder": sum(v for p, v in totals.items() if p != "g_s") / pixels,
        "decoder": sum(v for p, v in totals.items() if p not in ("g_a", "hyper.h_a")) / pixels,
        "entropy_parameters": sum(totals[p] for p in ENTROPY_PATH) / pixels,
        "parts": per_part,
        "parameters": params,
        "parameters_total": sum(t.numel() for t in model.parameters()),
    }


def mac_per_pixel(weights: str | None = None, config: ModelConfig | None = None) -> dict:
    """MAC/pixel of the shipped model (or ``weights``/``config``) on a 768x512 image."""
    if config is not None:
        model = LicModel(config).eval()
    else:
        from codec.weights import load_model

        model = load_model(weights)
    with torch.no_grad():
        return count(model)


def time_coding(model: LicModel, repeats: int = 3, height: int = 512, width: int = 768) -> dict:
    """Median encode/decode wall time (network and entropy coding) of a real file, after a warm-up."""
    import statistics

    import numpy as np

    from codec.coding import decode_rgb, encode_rgb
    from codec.timings import Timings
    from codec.weights import fingerprint

    digest = fingerprint(model)
    rng = np.random.default_rng(0)  # smooth noise: a plausible number of non-zero symbols
    rgb = (np.kron(rng.integers(0, 256, (height // 8, width // 8, 3)), np.ones((8, 8, 1)))).astype(np.uint8)
    runs = []
    for _ in range(repeats + 1):
        enc, dec = Timings(), Timings()
        data = encode_rgb(model, rgb, 4.0, timings=enc, model_hash=digest)
        decode_rgb(model, data, timings=dec, model_hash=digest)
        runs.append((enc.network, enc.coding, dec.network, dec.coding))
    keys = ("encode_network", "encode_coding", "decode_network", "decode_coding")
    return {k: statistics.median(r[i] for r in runs[1:]) for i, k in enumerate(keys)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="weights directory (default: the shipped model)")
    parser.add_argument("--config", choices=["default", "tiny"], help="count a fresh model of this config")
    parser.add_argument("--time", action="store_true", help="also time real encode/decode of a 768x512 image")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for --time")
    args = parser.parse_args()
    config = {"default": ModelConfig(), "tiny": ModelConfig.tiny()}.get(args.config) if args.config else None
    result = mac_per_pixel(args.weights, config)
    print("| part | MAC/pixel | parameters |\n|---|---:|---:|")
    for part, macs in result["parts"].items():
        print(f"| {part} | {macs:,.0f} | {result['parameters'][part]:,} |")
    print(f"| other (density, gains) | - | {result['parameters']['other (density, gains)']:,} |")
    print(f"| **encoder** | **{result['encoder']:,.0f}** | |")
    print(f"| **decoder** | **{result['decoder']:,.0f}** | |")
    print(f"| **entropy-parameter path** | **{result['entropy_parameters']:,.0f}** | |")
    print(f"| **total parameters** | | **{result['parameters_total']:,}** |")
    if args.time:
        from codec.weights import load_model

        torch.set_num_threads(args.threads)
        model = LicModel(config).eval() if config is not None else load_model(args.weights)
        t = time_coding(model)
        print(f"\n768x512, {args.threads} CPU threads, median of 3 after a warm-up (seconds):")
        print(f"encode {t['encode_network'] + t['encode_coding']:.3f} (network {t['encode_network']:.3f}, "
              f"entropy coding {t['encode_coding']:.3f}); decode {t['decode_network'] + t['decode_coding']:.3f} "
              f"(network {t['decode_network']:.3f}, entropy coding {t['decode_coding']:.3f})")


if __name__ == "__main__":
    main()
