"""Polyak averaging of the weights: what a run ships."""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["WeightAverage"]


class WeightAverage:
    """Exponential moving average of the weights, θ̄ ← θ̄ + (1 − d)(θ − θ̄), with d warmed up as
    min(d, (1 + t)/(10 + t)) (Polyak averaging; the weights a constant-LR run ships), t counted
    from ``start``, the step where this average began: an average begun late in a schedule (a
    leg from shipped weights) must still forget its starting point."""

    def __init__(self, model: nn.Module, decay: float, state: dict | None = None, start: int = 0):
        self.decay = decay
        self.start = start
        self.model = model
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if state is not None:
            self.state.update({k: v.to(self.state[k].device) for k, v in state.items()})
        self.names = [n for n, p in model.named_parameters()]

    @torch.no_grad()
    def update(self, step: int) -> None:
        t = max(0, step - self.start)
        d = min(self.decay, (1 + t) / (10 + t))
        params = dict(self.model.named_parameters())
        torch._foreach_lerp_([self.state[n] for n in self.names], [params[n].detach() for n in self.names], 1 - d)
