"""The learning-rate schedule of a training run: a pure function of the step."""

from __future__ import annotations

import math

__all__ = ["get_lr", "decay_start"]


def get_lr(step: int, total_steps: int | None, *, lr: float = 1e-4, min_lr: float = 1e-5,
           warmup_steps: int = 500, decay_frac: float = 0.2, lr_tau: float = 0.0) -> float:
    """LR at ``step`` (0-based): linear warm-up; then ``lr``, or with ``lr_tau`` > 0 the slow
    inverse-square-root decay lr·(1 + (step − warm-up)/τ)^−½; cosine decay to ``min_lr`` over the
    last ``decay_frac`` of ``total_steps``, then ``min_lr``.  ``total_steps=None``: not planned
    yet (no final decay).

    Why the slow decay: a campaign's length is planned but its end may come early (its targets
    met), so every session's weights should already be those of a cooling run.  On this CPU a
    constant 5e-4 learns fastest for ~15 minutes, then stalls at a noisy level (train/README.md)."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps

    def base(s: int) -> float:
        return lr / math.sqrt(1 + (s - warmup_steps) / lr_tau) if lr_tau > 0 else lr

    if total_steps is None:
        return base(step)
    start = decay_start(total_steps, warmup_steps, decay_frac)
    if step < start:
        return base(step)
    if step >= total_steps:
        return min_lr
    t = (step - start) / max(1, total_steps - start)
    top = base(start)
    return min_lr + 0.5 * (top - min_lr) * (1 + math.cos(math.pi * t))


def decay_start(total_steps: int, warmup_steps: int, decay_frac: float) -> int:
    """First step of the LR decay."""
    return max(warmup_steps, int(total_steps * (1 - decay_frac)))
