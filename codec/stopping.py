"""When a tile's refinement is done: a watched value whose minimum has stopped falling.

ES-EMV (Wang, Li, Zhuang, Chen, Liang & Sun, "Early Stopping for Deep Image Prior", TMLR 2023,
Algorithm 2) watches how much an iterate still moves: with an exponential moving average of the
reconstruction x and an exponential moving variance of its change,

    EMV(k+1) = (1 − α)·EMV(k) + α(1 − α)·‖x(k+1) − EMA(k)‖²,    EMA(k+1) = (1 − α)·EMA(k) + α·x(k+1),

it stops when the minimum of EMV has not fallen for P steps (the patience).  The same plateau rule
applies to any watched value; ``codec.refine`` watches either EMV or the tile's hard-rounded
rate-distortion cost, as ``RefineConfig.stop_on`` says.

Three choices for runs of tens of steps rather than DIP's thousands: EMA starts at the first
reconstruction (not at 0); EMV is divided by 1 − (1 − α)^k, as Adam corrects its moments, so the
first steps' variance is not mistaken for a small one (an uncorrected EMV starts near 0 and its
minimum would be the first step); and the minimum is looked for only once EMV has begun to fall.
While the iterate moves steadily, the lagging average makes EMV rise for about 1/α steps whatever
the moves' size; a minimum taken in that rise would stop a tile at its start.  ‖·‖² is the mean
over the pixels, which leaves the rule unchanged and makes values comparable across tile sizes.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch

__all__ = ["Plateau", "MovingVariance", "EsEmv", "ema_variance"]


class Plateau:
    """Stop once the minimum of a watched value has not fallen for ``patience`` steps.

    ``update(step, value)`` is called with increasing steps (not necessarily every step: a value
    watched every few steps waits in steps, not in calls); it answers whether to stop now.  A
    patience of 0 never stops."""

    def __init__(self, patience: int):
        if patience < 0:
            raise ValueError("patience must be >= 0")
        self.patience, self.minimum, self.minimum_step = patience, math.inf, 0

    def update(self, step: int, value: float) -> bool:
        if value < self.minimum:
            self.minimum, self.minimum_step = value, step
        return self.patience > 0 and step - self.minimum_step >= self.patience


class MovingVariance:
    """ES-EMV's statistic: the bias-corrected exponential moving variance of a sequence of tensors.

    ``update(x)`` takes the next reconstruction and returns EMV after it (None for the first, which
    only starts the average)."""

    def __init__(self, alpha: float):
        if not 0 < alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        self.alpha, self.ema, self.emv, self.count = alpha, None, 0.0, 0

    def update(self, x: torch.Tensor) -> float | None:
        x = x.detach().float()
        if self.ema is None:
            self.ema = x.clone()
            return None
        a = self.alpha
        self.emv = (1 - a) * self.emv + a * (1 - a) * float((x - self.ema).pow(2).mean())
        self.ema.mul_(1 - a).add_(x, alpha=a)
        self.count += 1
        return self.emv / (1 - (1 - a) ** self.count)


def ema_variance(xs: Iterable[torch.Tensor], alpha: float) -> list[float | None]:
    """``MovingVariance(alpha)`` over a whole sequence: EMV after each of its items."""
    watch = MovingVariance(alpha)
    return [watch.update(x) for x in xs]


class EsEmv:
    """ES-EMV's stopping rule: ``update(step, x)`` with the next reconstruction answers whether to
    stop; ``watch(step, emv)`` is the same rule on a variance already computed (replays)."""

    def __init__(self, alpha: float, patience: int):
        self.variance, self.plateau = MovingVariance(alpha), Plateau(patience)
        self.previous, self.falling = None, False

    def update(self, step: int, x: torch.Tensor) -> bool:
        return self.watch(step, self.variance.update(x))

    def watch(self, step: int, emv: float | None) -> bool:
        if emv is None:
            return False
        self.falling = self.falling or (self.previous is not None and emv < self.previous)
        self.previous = emv
        return self.falling and self.plateau.update(step, emv)
