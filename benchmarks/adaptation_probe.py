"""Decoder adaptation, probed: a few of g_s's parameters fitted to one image, net of their own bits.

Instance-adaptive coding (van Rozendaal, Huijben & Cohen, ICLR 2021, "Overfitting for fun and profit";
Lam et al., ACM MM 2020; Tsubota & Aizawa 2023) sends, beside the latents, a small update θ of the
decoder fitted to the image.  With the latents ŷ held (effort 0's, or those effort 3 keeps), θ solves

    θ* = argmin_θ  R(θ) + λ(q)·255²·D(x, g_s(ŷ ⊙ g⁻¹(q); θ))          (R(ŷ) does not depend on θ)

over one of three sets (identity at θ = 0):
  "bias": the last layer's bias, c ↦ c + θ (3 values);
  "last": after the last inverse GDN, h_c ↦ (1 + a_c)·h_c + b_c per channel, and the last bias (2N + 3);
  "all":  the same after each of the three inverse GDNs, and the last bias (6N + 3).

θ is sent as integers k = ⌊θ/Δ⌉, each coded with a discretised Laplace prior (constriction's
QuantizedLaplace, range coded: its exact 32-bit words) whose scale the encoder picks from ``PRIOR_SCALES``,
plus a 2-byte section header;
those bits are added to the real file's.  Signed exp-Golomb bits are printed beside them.  While fitting,
R(θ) is a Laplace density of scale σ (``--sigma``), −log2 p(θ) = |θ|·log2(e)/σ + const: an L1 penalty.  Adam, ``--steps``
steps, on the float32 synthesis; the activations before the first adapted layer are computed once.
The adapted file is kept only where its real cost R + λD is below the unadapted file's (as the encoder
keeps the cheaper of the refined and one-pass files).

Effort 3's latents come from recorded trajectories (``benchmarks.effort_trace --cap 100``) replayed under
effort 3's rule (cost plateau, patience 24, checked every 4 steps), with the CPU time that replay charges;
the trajectories and ``--weights`` must be of the same model.  Reported: BD-rate against effort 0 and
against effort 3 without adaptation (mean curves, ``benchmarks.sweep``'s convention), with and without
θ's bits, and CPU seconds (``time.process_time``; one torch thread).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import constriction
import numpy as np
import torch

from benchmarks.bd import bd_rate
from benchmarks.effort_replay import _on_cost
from benchmarks.effort_trace import CHECK, KODAK, crop, image_names, real_cost
from codec.coding import rgb_to_input
from codec.quality import rd_cost

SETS = ("bias", "last", "all")
ADAPTED = {"bias": (), "last": (5,), "all": (1, 3, 5)}  # g_s layers followed by a per-channel affine
HEADER_BITS = 16  # section header: which set, which Δ, which prior scale
PRIOR_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)  # the Laplace priors the encoder picks from, in steps of Δ
RANGE = 255  # |k| at most: the prior's support


class Adaptation(torch.nn.Module):
    """θ of one set for g_s: per-channel (scale delta, bias) after the adapted layers, last bias delta."""

    def __init__(self, g_s: torch.nn.Sequential, kind: str):
        super().__init__()
        self.g_s, self.layers = g_s, ADAPTED[kind]
        channels = g_s[0].out_channels
        self.scale = torch.nn.Parameter(torch.zeros(len(self.layers), channels))
        self.shift = torch.nn.Parameter(torch.zeros(len(self.layers), channels))
        self.last = torch.nn.Parameter(torch.zeros(3))
        self.start = self.layers[0] + 1 if self.layers else len(g_s) - 1  # layers before run once

    def flat(self) -> torch.Tensor:
        return torch.cat([self.scale.flatten(), self.shift.flatten(), self.last])

    def load_flat(self, theta: torch.Tensor) -> None:
        n = self.scale.numel()
        with torch.no_grad():
            self.scale.copy_(theta[:n].view_as(self.scale))
            self.shift.copy_(theta[n:2 * n].view_as(self.shift))
            self.last.copy_(theta[2 * n:])

    def prefix(self, s: torch.Tensor) -> torch.Tensor:
        """g_s's layers before the first adapted one (fixed while θ is fitted)."""
        with torch.no_grad():
            for i in range(self.start):
                s = self.g_s[i](s)
        return s

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """The rest of g_s from ``prefix``'s output, with θ applied."""
        if self.layers:
            h = self._affine(0, h)
        for i in range(self.start, len(self.g_s)):
            h = self.g_s[i](h)
            if i in self.layers:
                h = self._affine(self.layers.index(i), h)
        return h + self.last[None, :, None, None]

    def _affine(self, j: int, h: torch.Tensor) -> torch.Tensor:
        return h * (1 + self.scale[j])[None, :, None, None] + self.shift[j][None, :, None, None]


def theta_bits(k: np.ndarray) -> tuple[int, int]:
    """(range-coded bits of ``k`` under the best of the ``PRIOR_SCALES`` Laplace priors, signed
    exp-Golomb bits), each with the section header."""
    coded = []
    for scale in PRIOR_SCALES:
        encoder = constriction.stream.queue.RangeEncoder()
        model = constriction.stream.model.QuantizedLaplace(-RANGE, RANGE)
        encoder.encode(k.astype(np.int32), model, np.zeros(k.size), np.full(k.size, scale))
        coded.append(32 * len(encoder.get_compressed()))
    zigzag = np.where(k > 0, 2 * k - 1, -2 * k)
    golomb = int((2 * np.floor(np.log2(zigzag + 1)) + 1).sum())
    return min(coded) + HEADER_BITS, golomb + HEADER_BITS


def adapt(model, y_hat: np.ndarray, rgb: np.ndarray, quality: float, kind: str, args):
    """θ fitted for latents ``y_hat`` (gains applied); yields, for each Δ of ``args.deltas``, the
    quantised θ's squared error (8-bit scale, summed), its bits and the CPU s spent."""
    target = torch.from_numpy(rgb_to_input(rgb))
    h, w = rgb.shape[:2]
    lam = rd_cost(0.0, 1.0, quality)  # λ·255², the weight of the squared error on [0, 1]
    start = time.process_time()
    theta = Adaptation(model.g_s, kind)
    s = torch.from_numpy(y_hat).float() * model.gain.inverse_gain(torch.tensor([quality]))
    prefix = theta.prefix(s)
    optimizer = torch.optim.Adam(theta.parameters(), lr=args.lr)
    for _ in range(args.steps):
        x_hat = theta(prefix)[..., :h, :w].clamp(0, 1)
        se = (x_hat - target).pow(2).sum() / 3
        penalty = theta.flat().abs().sum() * math.log2(math.e) / args.sigma
        (lam * se + penalty).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    se_float = se.item() * 3 * 255**2  # the last step's, before quantisation (8-bit scale)
    fitted = theta.flat().detach().clone()
    fit_time = time.process_time() - start
    for delta in args.deltas:
        start = time.process_time()
        k = torch.clamp(torch.round(fitted / delta), -RANGE, RANGE)
        theta.load_flat(k * delta)
        with torch.no_grad():
            x_hat = theta(prefix)[..., :h, :w].clamp(0, 1)
        decoded = np.round(x_hat[0].numpy().transpose(1, 2, 0) * 255).astype(np.float64)
        bits, golomb = theta_bits(k.numpy().astype(np.int64))
        point = {"delta": delta, "se": float(((decoded - rgb) ** 2).sum()), "theta_bits": bits,
                 "golomb_bits": golomb, "se_float": se_float, "nonzero": int((k != 0).sum()), "count": k.numel(),
                 "time": fit_time + time.process_time() - start}
        yield point


def effort3_latents(trace: Path, name: str, quality: float) -> tuple[np.ndarray, float]:
    """The latents effort 3 keeps on this trajectory, and the refinement CPU s its replay charges."""
    run = json.loads(trace.joinpath(f"sga100-{name}-q{quality:g}.json").read_text())
    steps, checked = _on_cost(run, 100, 4, 24)
    kept = min(checked, key=lambda k: (run["hard"][k // CHECK], k))
    latents = np.load(trace.joinpath(f"sga100-{name}-q{quality:g}.npz"))["latents"][kept // CHECK][None]
    return latents, steps * run["step_time"] + len(set(checked)) * run["check_time"]


def probe(args) -> dict:
    from codec.engines.runtime import load

    torch.set_num_threads(1)
    coder = load(Path(args.weights) if args.weights else None, "torch", "cpu").coder
    model = coder.transforms.model
    for p in model.parameters():
        p.requires_grad_(False)
    results = {}
    for name in image_names(args.images):
        rgb = crop(KODAK / f"{name}.png", args.crop)
        pixels = rgb.shape[0] * rgb.shape[1]
        for q in (float(v) for v in args.qualities.split(",")):
            _, y0, z = coder.analyse(rgb_to_input(rgb), q)
            bases = {"e0": (y0, 0.0)} if "e0" in args.bases else {}
            if "e3" in args.bases:
                bases["e3"] = effort3_latents(Path(args.trace), name, q)
            for base, (y, seconds) in bases.items():
                code = coder.code_latents(y, z)
                file = real_cost(coder, y, z, rgb, q)
                results[f"{name} {q:g} {base}"] = {"bits": file["bits"], "psnr": file["psnr"], "time": seconds,
                                                   "pixels": pixels}
                for kind in args.sets.split(","):
                    for point in adapt(model, code.y_hat, rgb, q, kind, args):
                        key = f"{name} {q:g} {base}+{kind} {point['delta']:g}"
                        point.update(bits=file["bits"], pixels=pixels, quality=q, base_time=seconds)
                        results[key] = point
                        print(key, {k: round(v, 3) if isinstance(v, float) else v for k, v in point.items()},
                              flush=True)
    return results


FULL_KODAK = 768 * 512  # pixels of a whole Kodak image


def _psnr(se: float, pixels: int) -> float:
    return 10 * math.log10(255**2 * 3 * pixels / se)


def _curve(points: dict, qualities: list[float]) -> tuple[list[float], list[float]]:
    """Mean bpp and mean PSNR per quality over the images (``benchmarks.sweep``'s curves)."""
    return ([float(np.mean([b for (n, q), (b, _) in points.items() if q == qq])) for qq in qualities],
            [float(np.mean([p for (n, q), (_, p) in points.items() if q == qq])) for qq in qualities])


def report(results: dict, trace: str | None) -> str:
    """BD-rates of every adapted curve against effort 0 and against its unadapted base, four ways:
    θ's bits counted ("net"), not counted ("gross"), divided by the ratio of a whole Kodak image's
    pixels to the crop's ("amortised": the same gain per pixel with θ sent once per 768 × 512), and the
    fitted θ before quantisation, sent for free ("bound": the gain of this fit before any coding of θ)."""
    base, adapted = {}, {}
    for key, point in results.items():
        name, q, what = key.split(" ")[:3]
        if "+" in what:
            adapted.setdefault((what, float(key.split(" ")[3])), {})[name, float(q)] = point
        else:
            se = 255**2 * 3 * point["pixels"] / 10 ** (point["psnr"] / 10)
            base.setdefault(what, {})[name, float(q)] = dict(point, se=se)
    if "e0" not in base and trace:  # the recording's own effort-0 file
        base["e0"] = {k: {"bits": run["bits"], "psnr": run["psnr"], "time": 0.0, "pixels": v["pixels"],
                          "se": 255**2 * 3 * v["pixels"] / 10 ** (run["psnr"] / 10)}
                      for k, v in base["e3"].items()
                      for run in [json.loads(Path(trace, f"sga100-{k[0]}-q{k[1]:g}.json").read_text())["effort0"]]}
    qualities = sorted({q for _, q in base["e0"]})
    curve = {b: _curve({k: (v["bits"] / v["pixels"], v["psnr"]) for k, v in pts.items()}, qualities)
             for b, pts in base.items()}
    lines = ["| latents + set | Δ | BD vs effort 0: net / gross / amortised / bound | BD vs its base: net / gross "
             "/ amortised / bound | adapted points (net) | θ bits (mean) | nonzero / count | CPU s (base + adaptation) |",
             "|---|---|---|---|---|---|---|---|"]
    for (what, delta), pts in sorted(adapted.items()):
        b = what.split("+")[0]
        bds = {}
        for mode, share in (("net", 1.0), ("gross", 0.0), ("amortised", None), ("bound", 0.0)):
            chosen, used = {}, 0
            for (name, q), a in pts.items():
                ref = base[b][name, q]
                ratio = share if share is not None else a["pixels"] / FULL_KODAK
                bits = a["bits"] + ratio * a["theta_bits"]
                # bound: θ unquantised and free; its error plus 8-bit rounding's (1/12 per sample)
                se = a["se_float"] + a["pixels"] * 3 / 12 if mode == "bound" else a["se"]
                if rd_cost(bits, se / 3 / 255**2, q) < rd_cost(ref["bits"], ref["se"] / 3 / 255**2, q):
                    chosen[name, q], used = (bits / a["pixels"], _psnr(se, a["pixels"])), used + (mode == "net")
                else:
                    chosen[name, q] = (ref["bits"] / ref["pixels"], ref["psnr"])
            rate, psnr = _curve(chosen, qualities)
            bds[mode] = (bd_rate(*curve["e0"], rate, psnr), bd_rate(*curve[b], rate, psnr), used)
        seconds = np.mean([base[b][k]["time"] for k in pts]), np.mean([a["time"] for a in pts.values()])
        lines.append(f"| {what} | 1/{1 / delta:g} | " + " / ".join(f"{bds[m][0]:+.2f} %" for m in bds)
                     + " | " + " / ".join(f"{bds[m][1]:+.2f} %" for m in bds) + f" | {bds['net'][2]} of {len(pts)} | "
                     f"{np.mean([a['theta_bits'] for a in pts.values()]):.0f} (exp-Golomb "
                     f"{np.mean([a['golomb_bits'] for a in pts.values()]):.0f}) | "
                     f"{np.mean([a['nonzero'] for a in pts.values()]):.0f} / {next(iter(pts.values()))['count']} | "
                     f"{seconds[0]:.2f} + {seconds[1]:.2f} |")
    for b in base:
        if b != "e0":
            lines.append(f"\n{b} without adaptation: BD vs effort 0 {bd_rate(*curve['e0'], *curve[b]):+.2f} %, "
                         f"CPU s {np.mean([v['time'] for v in base[b].values()]):.2f}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="JSON of every point")
    p.add_argument("--weights", help="weights directory (default: the shipped model)")
    p.add_argument("--trace", help="effort_trace directory of cap-100 SGA trajectories (effort 3's latents)")
    p.add_argument("--images", default="kodim01,kodim05,kodim12,kodim23")
    p.add_argument("--qualities", default="2,4,6,8")
    p.add_argument("--crop", type=int, default=192, help="central square of this side (0: whole image)")
    p.add_argument("--sets", default="bias,last,all")
    p.add_argument("--bases", default="e0,e3", help="latents adapted to: e0 (one pass), e3 (effort 3's)")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--lr", type=float, default=0.003)
    p.add_argument("--sigma", type=float, default=0.05, help="the prior's Laplace scale, in θ's units")
    p.add_argument("--deltas", type=lambda s: [float(v) for v in s.split(",")], default=[1 / 32, 1 / 64, 1 / 128])
    p.add_argument("--report", action="store_true", help="only print the report of an existing --out")
    args = p.parse_args()
    args.crop = args.crop or None
    if not args.report:
        Path(args.out).write_text(json.dumps(probe(args), indent=1))
    print(report(json.loads(Path(args.out).read_text()), args.trace))


if __name__ == "__main__":
    main()
