"""Per-part gradient norms and update-to-weight ratios, logged as a run goes (``RUN/layers.csv``).

For each part of the model (g_a, g_s, h_a, h_s, the density, the slice networks, the gains), at
every log step:

    ‖∇θ‖ (after clipping),   ‖Δθ‖ / ‖θ‖ of that step,   and the tensor of the part with the largest ‖Δθ‖ / ‖θ‖

so that what grows before a divergence can be read off a run that diverged rather than guessed.
"""

from __future__ import annotations

import csv
from pathlib import Path

import torch
import torch.nn as nn

__all__ = ["LayerProbe", "PARTS"]

PARTS = {"g_a": "g_a.", "g_s": "g_s.", "h_a": "hyper.h_a.", "h_s": "hyper.h_s.", "density": "hyper.density.",
         "slices": "entropy.", "gains": "gain."}
FIELDS = ["step", "part", "grad_norm", "update_ratio", "top_tensor", "top_ratio"]


class LayerProbe:
    def __init__(self, model: nn.Module, path: Path, enabled: bool = True):
        self.path, self.enabled = path, enabled
        self.named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.before: list[torch.Tensor] | None = None
        if enabled and not path.exists():
            with open(path, "w", newline="") as f:
                csv.writer(f).writerow(FIELDS)

    @torch.no_grad()
    def snapshot(self) -> None:
        """Before the optimizer's step: the weights and gradients to compare the step with."""
        if self.enabled:
            self.before = [p.detach().clone() for _, p in self.named]
            self.grads = [p.grad.detach().norm() if p.grad is not None else torch.zeros(()) for _, p in self.named]

    @torch.no_grad()
    def record(self, step: int) -> None:
        """After the step: one row per part."""
        if self.before is None:
            return
        rows = []
        for part, prefix in PARTS.items():
            idx = [i for i, (n, _) in enumerate(self.named) if n.startswith(prefix)]
            if not idx:
                continue
            ratios = {self.named[i][0]: float((self.named[i][1] - self.before[i]).norm()
                                              / self.before[i].norm().clamp_min(1e-12)) for i in idx}
            update = torch.sqrt(sum((self.named[i][1] - self.before[i]).pow(2).sum() for i in idx))
            weight = torch.sqrt(sum(self.before[i].pow(2).sum() for i in idx))
            grad = torch.sqrt(sum(self.grads[i].pow(2) for i in idx))
            top = max(ratios, key=ratios.get)
            rows.append([step, part, f"{float(grad):.4g}", f"{float(update / weight.clamp_min(1e-12)):.4g}",
                         top, f"{ratios[top]:.4g}"])
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerows(rows)
        self.before = None
