"""Which way does each part of the model's training gradient point on the coded loss?

    python -m train.lab.direction                       # the shipped weights, the campaign's crops
    python -m train.lab.direction --weights W --patch 128

The training gradient is what the surrogates give: rate from y + U(−½, ½), straight-through rounding into
g_s.  Whether a step along it lowers the loss the codec pays is a measurement, not a given: this script takes
the mean gradient of ``--batches`` training batches, moves one parameter group at a time by a small step
against it, and reports the change of the coded loss J (latents rounded, ``train.lab.heldout.rd_loss``, mean over
six qualities) on fixed crops, for three steps:

- ``sign``: −ε·sign(g) on every weight, what a fresh Adam's first updates are;
- ``random``: the same size with random signs, the control (what any step of that size costs);
- ``descent``: −η·g/‖g‖, plain gradient descent with a step of norm η.

It also splits the gradient of g_a's first layer into its rate and distortion parts.  Issue 30 found with
it that g_a's gradient points uphill at the shipped weights (train/lab/log.md).
"""

from __future__ import annotations

import argparse

import torch

from codec.networks.integer import Arithmetic

from ..data import build_bank, get_batch, list_images, sample_quality
from ..objective import RateDistortion

from .campaign import CAMPAIGN
from .heldout import mean_coded_loss
from .paths import DATA, WEIGHTS

GROUPS = {
    "g_a": ("g_a.",), "g_a first layer": ("g_a.0.",), "g_s": ("g_s.",), "h_a": ("hyper.h_a.",),
    "h_s": ("hyper.h_s.",), "density": ("hyper.density.",), "slices": ("entropy.",), "gains": ("gain.",),
}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m train.lab.direction", description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default=str(WEIGHTS))
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--patch", type=int, default=CAMPAIGN.patch)
    p.add_argument("--batches", type=int, default=16)
    p.add_argument("--eval-crops", type=int, default=12)
    p.add_argument("--sign-step", type=float, default=1e-5)
    p.add_argument("--descent-step", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)

    from codec.weights import load_model

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = load_model(a.weights).train().to(memory_format=torch.channels_last)
    rd = RateDistortion(model, torch.bfloat16, Arithmetic.FLOAT)
    files = list_images(a.data)
    bank = build_bank(files[::8], CAMPAIGN.bank_size, 2, 0)
    crops = build_bank(files[3::50] or files, a.patch, 1, 1)[: a.eval_crops]

    params = dict(model.named_parameters())
    parts = {}
    for term in ("rate", "distortion"):  # the same batches and noise for both terms
        model.zero_grad(set_to_none=True)
        gen = torch.Generator().manual_seed(1)
        for i in range(a.batches):
            x = get_batch(bank, 8, a.patch, gen).contiguous(memory_format=torch.channels_last)
            q = sample_quality(8, "continuous", gen, "cpu")
            torch.manual_seed(100 + i)
            out = rd(x, q, True)
            loss = out.bpp if term == "rate" else out.loss - out.bpp
            (loss.mean() / a.batches).backward()
        parts[term] = {n: (t.grad.clone() if t.grad is not None else torch.zeros_like(t)) for n, t in params.items()}
    grads = {n: parts["rate"][n] + parts["distortion"][n] for n in params}
    total = torch.sqrt(sum(g.pow(2).sum() for g in grads.values())).item()
    print(f"gradient norm {total:.2f}; g_a's first layer: rate {parts['rate']['g_a.0.weight'].norm():.2f}, "
          f"distortion {parts['distortion']['g_a.0.weight'].norm():.2f}", flush=True)

    j0 = mean_coded_loss(model, crops)
    print(f"coded J {j0:.4f} on {len(crops)} crops of {a.patch}²", flush=True)
    start = {n: t.detach().clone() for n, t in params.items()}
    gen = torch.Generator().manual_seed(5)
    for name, prefixes in GROUPS.items():
        names = [n for n in params if n.startswith(prefixes)]
        norm = torch.sqrt(sum(grads[n].pow(2).sum() for n in names)).item()
        row = []
        for kind in ("sign", "random", "descent"):
            with torch.no_grad():
                for n in names:
                    g = grads[n]
                    if kind == "sign":
                        step = a.sign_step * g.sign()
                    elif kind == "random":
                        step = a.sign_step * (torch.randint(0, 2, g.shape, generator=gen) * 2 - 1).to(g.dtype)
                    else:
                        step = a.descent_step * g / max(norm, 1e-30)
                    params[n].sub_(step)
            row.append(f"{kind} {100 * (mean_coded_loss(model, crops) / j0 - 1):+.3f} %")
            with torch.no_grad():
                for n in names:
                    params[n].copy_(start[n])
        print(f"{name:16s} |g| {norm:8.2f}  " + "  ".join(row), flush=True)


if __name__ == "__main__":
    main()
