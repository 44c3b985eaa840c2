"""Equal-CPU-time training comparisons: lic against a reference, one difference at a time.

    python -m train.lab.compare --model ref --minutes 8 --out runs/compare/ref.json
    python -m train.lab.compare --model lic --size medium --minutes 8 --variant noise --out ...
    python -m train.lab.compare report runs/compare/*.json --at 4,8     # the Markdown table

One plain loop for every contender: the trainer's crop bank and batch stream (same seed: the same
crops in the same order), Adam, gradient clipping, one λ, and a clock that counts training steps
only.  Every ``--eval-every`` training seconds the model is scored on the first ``--eval-images``
Kodak images by its forward pass in eval mode (latents rounded, so the rate is the coded one up to
table effects):  J = bpp + λ·255²·MSE.  Kodak is only looked at, never trained on.

``--model ref`` is CompressAI's ``ScaleHyperprior(N, M)`` (Ballé et al. 2018), the yardstick the
campaign issue names.  ``--variant`` switches one training-time difference of lic at a time (they
combine with commas); see ``VARIANTS``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from codec.metrics import psnr_from_mse
from codec.networks.config import ModelConfig
from codec.networks.integer import Arithmetic
from codec.networks.model import LicModel
from codec.quality import lambda_for_quality, rd_cost

from ..config import PRESETS
from ..data import build_bank, get_batch, list_images
from ..objective import RateDistortion, RDOutput

VARIANTS = {
    "noise": "g_s and the slice networks see y + U(-½,½) instead of STE-rounded latents",
    "float": "the entropy path trains in float (Arithmetic.FLOAT: no rounding of weights/activations)",
    "nogain": "gain units frozen at 1 (no variable-rate scaling)",
    "multi": "qualities drawn from U[1, 8] per sample (the campaign's variable-rate training)",
}


def _eval_images(folder: str, count: int) -> list[torch.Tensor]:
    from PIL import Image

    files = sorted(Path(folder).glob("*.png"))[:count]
    return [torch.from_numpy(np.asarray(Image.open(f).convert("RGB"))).permute(2, 0, 1) for f in files]


class Reference(torch.nn.Module):
    """CompressAI ScaleHyperprior, trained as its examples/train.py does (aux loss on the side)."""

    def __init__(self, N: int, M: int):
        super().__init__()
        from compressai.models import ScaleHyperprior

        self.net = ScaleHyperprior(N, M)

    def forward(self, x, quality) -> RDOutput:
        out = self.net(x)
        h, w = x.shape[-2:]
        bits = sum(-torch.log2(lik).sum((1, 2, 3)) for lik in out["likelihoods"].values())
        x_hat = out["x_hat"] if self.training else out["x_hat"].clamp(0, 1)
        bpp, mse = bits / (h * w), (x_hat - x).pow(2).mean((1, 2, 3))
        return RDOutput(rd_cost(bpp, mse, quality), bpp, mse, x_hat)

    def aux_loss(self):
        return self.net.aux_loss()


class Lic(torch.nn.Module):
    def __init__(self, config: ModelConfig, variants: set[str], amp: bool):
        super().__init__()
        self.model = LicModel(config)
        mode = Arithmetic.FLOAT if "float" in variants else Arithmetic.FAKE
        self.rd = RateDistortion(self.model, torch.bfloat16 if amp else None, mode)
        self.ste = "noise" not in variants
        if "nogain" in variants:
            g = self.model.gain
            with torch.no_grad():
                g.log_gain_first.zero_()
                g.gain_steps.fill_(-40.0)
                g.log_inverse.zero_()
            for p in g.parameters():
                p.requires_grad_(False)

    def forward(self, x, quality):
        return self.rd(x, quality, self.ste if self.training else True)


@torch.no_grad()
def score(net, images: list[torch.Tensor], quality: float) -> dict:
    """Mean bpp, PSNR and J of ``net`` in eval mode (latents rounded, x̂ clamped) on ``images``."""
    net.eval()
    bpps, mses = [], []
    for img in images:
        x = (img[None].float() / 255).contiguous(memory_format=torch.channels_last)
        out = net(x, torch.full((1,), quality))
        bpps.append(out.bpp.item())
        mses.append(out.mse.item())
    net.train()
    bpp, mse = float(np.mean(bpps)), float(np.mean(mses))
    psnr = float(np.mean([psnr_from_mse(max(m, 1e-10), peak=1.0) for m in mses]))
    return {"bpp": bpp, "psnr": psnr, "J": rd_cost(bpp, mse, quality)}


def _at(curve: list[dict], minutes: float, key: str) -> float:
    """``key`` at ``minutes`` of training: the mean of the scores within ±1 minute (they are noisy)."""
    near = [p[key] for p in curve if abs(p["seconds"] / 60 - minutes) <= 1.0]
    return float(np.mean(near)) if near else float("nan")


def _at_step(curve: list[dict], step: int, key: str) -> float:
    """``key`` at ``step``, linearly interpolated (equal work, whatever the machine's load was)."""
    steps = [p["step"] for p in curve]
    return float(np.interp(step, steps, [p[key] for p in curve])) if steps[-1] >= step else float("nan")


def extrapolate(curve: list[dict], minutes: float) -> float:
    """J at ``minutes`` from a power law J(t) = a + b·t^-c fitted to the curve after 2 minutes.

    A rough guide for choosing among sizes, not a prediction to quote: early curves are noisy."""
    from scipy.optimize import curve_fit

    t = np.array([p["seconds"] / 60 for p in curve if p["seconds"] >= 120])
    j = np.array([p["J"] for p in curve if p["seconds"] >= 120])
    if len(t) < 4:
        return float("nan")
    law = lambda t, a, b, c: a + b * np.power(t, -c)  # noqa: E731
    try:
        (a, b, c), _ = curve_fit(law, t, j, p0=(j[-1] * 0.7, j[0], 0.5), bounds=([0, 0, 0.05], [50, 500, 3]),
                                 maxfev=20000)
    except RuntimeError:
        return float("nan")
    return float(law(minutes, a, b, c))


def report(paths: list[str], at: list[float], horizon: float, at_steps: list[int] = ()) -> str:
    """A Markdown table of runs: J at the given minutes and steps, bpp and PSNR, J extrapolated."""
    head = "| run | steps | " + " | ".join(f"J @ {m:g} min" for m in at) + "".join(
        f" | J @ {n} steps" for n in at_steps) + f" | bpp / PSNR at the end | J @ {horizon:g} min (extrapolated) |"
    rows = [head, "|" + "---|" * (4 + len(at) + len(at_steps))]
    for path in paths:
        d = json.loads(Path(path).read_text())
        c = d["curve"]
        name = Path(path).stem
        cells = " | ".join([f"{_at(c, m, 'J'):.2f}" for m in at] + [f"{_at_step(c, n, 'J'):.2f}" for n in at_steps])
        rows.append(f"| {name} | {c[-1]['step']} | {cells} | {c[-1]['bpp']:.3f} / {c[-1]['psnr']:.2f} | "
                    f"{extrapolate(c, horizon):.2f} |")
    return "\n".join(rows)


def main(argv=None) -> None:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "report":
        r = argparse.ArgumentParser(prog="python -m train.lab.compare report")
        r.add_argument("runs", nargs="+")
        r.add_argument("--at", default="8", help="comma-separated minutes")
        r.add_argument("--at-steps", default="", help="comma-separated step counts")
        r.add_argument("--horizon", type=float, default=1400.0)
        a = r.parse_args(sys.argv[2:])
        steps = [int(n) for n in a.at_steps.split(",") if n]
        print(report(a.runs, [float(m) for m in a.at.split(",")], a.horizon, steps))
        return
    p = argparse.ArgumentParser(prog="python -m train.lab.compare", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("ref", "lic"), required=True)
    p.add_argument("--size", choices=sorted(PRESETS), default="medium", help="lic's size (a train preset)")
    p.add_argument("--ref-size", default="128,192", help="N,M of the reference")
    p.add_argument("--variant", default="", help="comma-separated: " + ", ".join(VARIANTS))
    p.add_argument("--minutes", type=float, default=8.0)
    p.add_argument("--quality", type=float, default=4.0, help="λ = λ(quality); 4 -> 0.013")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--gain-lr-scale", type=float, default=1.0, help="lic's gain units: LR x this")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--patch", type=int, default=128)
    p.add_argument("--amp", choices=("bf16", "off"), default="bf16")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data", default="../shared/data/train")
    p.add_argument("--kodak", default="../shared/data/kodak")
    p.add_argument("--eval-images", type=int, default=4)
    p.add_argument("--eval-every", type=float, default=60.0, help="training seconds between scores")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    variants = {v for v in a.variant.split(",") if v}
    if variants - set(VARIANTS):
        p.error(f"unknown variant(s) {sorted(variants - set(VARIANTS))}; known: {', '.join(VARIANTS)}")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    bank = build_bank(list_images(a.data), 256, 2, a.seed)
    images = _eval_images(a.kodak, a.eval_images)
    lam = lambda_for_quality(a.quality)
    if a.model == "ref":
        n, m = (int(v) for v in a.ref_size.split(","))
        net = Reference(n, m)
        main_params = [p for n_, p in net.named_parameters() if not n_.endswith(".quantiles")]
        aux_params = [p for n_, p in net.named_parameters() if n_.endswith(".quantiles")]
        aux_opt = torch.optim.Adam(aux_params, lr=1e-3)
    else:
        net = Lic(PRESETS[a.size](), variants, a.amp == "bf16")
        main_params = [p for p in net.parameters() if p.requires_grad]
        aux_opt = None
        gains = [p for n, p in net.named_parameters() if ".gain." in n and p.requires_grad]
        groups = [{"params": [p for p in main_params if all(p is not g for g in gains)]},
                  {"params": gains, "lr": a.lr * a.gain_lr_scale}]
    net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(groups if a.model == "lic" else main_params, lr=a.lr)
    gen = torch.Generator().manual_seed(a.seed * 1000 + 1)
    n_params = sum(p.numel() for p in net.parameters())
    print(f"{a.model} {a.size if a.model == 'lic' else a.ref_size} {sorted(variants)}: "
          f"{n_params / 1e6:.2f} M parameters, λ {lam:.4f}", flush=True)

    curve, step, train_s, next_eval = [], 0, 0.0, a.eval_every
    while train_s < 60 * a.minutes:
        t0 = time.perf_counter()
        x = get_batch(bank, a.batch_size, a.patch, gen).contiguous(memory_format=torch.channels_last)
        if "multi" in variants:
            q = 1 + 7 * torch.rand(a.batch_size, generator=gen)
        else:
            q = torch.full((a.batch_size,), a.quality)
        loss = net(x, q).loss.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(main_params, 1.0)
        opt.step()
        if aux_opt is not None:
            aux_opt.zero_grad(set_to_none=True)
            net.aux_loss().backward()
            aux_opt.step()
        step += 1
        train_s += time.perf_counter() - t0
        if train_s >= next_eval or train_s >= 60 * a.minutes:
            s = score(net, images, a.quality)
            curve.append({"step": step, "seconds": round(train_s, 1), **{k: round(v, 4) for k, v in s.items()}})
            print(f"step {step} {train_s:.0f} s: bpp {s['bpp']:.3f} PSNR {s['psnr']:.2f} J {s['J']:.3f}", flush=True)
            next_eval += a.eval_every
    result = {"args": vars(a), "parameters": n_params, "curve": curve}
    if isinstance(net, Lic) and net.rd.arithmetic is Arithmetic.FLOAT:
        # What the float-trained entropy path is worth with the rounding it will be coded with.
        net.rd.arithmetic = Arithmetic.FAKE
        result["coded_arithmetic"] = {k: round(v, 4) for k, v in score(net, images, a.quality).items()}
        print(f"with the coded (rounded) arithmetic: {result['coded_arithmetic']}", flush=True)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
