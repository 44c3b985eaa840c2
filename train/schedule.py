"""The schedule of a training run: its learning rate as a pure function of the step, and the step
count a time-budgeted run plans from its measured step rate."""

from __future__ import annotations

import math

__all__ = ["get_lr", "decay_start", "StepPlan"]


def get_lr(step: int, total_steps: int | None, *, lr: float = 1e-4, min_lr: float = 1e-5,
           warmup_steps: int = 500, decay_frac: float = 0.2, lr_tau: float = 0.0, decay_from: int = 0) -> float:
    """LR at ``step`` (0-based): linear warm-up; then ``lr``, or with ``lr_tau`` > 0 the slow
    inverse-square-root decay lr·(1 + (step − warm-up)/τ)^−½; cosine decay to ``min_lr`` over the
    last ``decay_frac`` of ``total_steps`` (or from step ``decay_from`` > 0 on), then ``min_lr``.
    ``total_steps=None``: not planned yet (no final decay).

    Why the slow decay: a campaign's length is planned but its end may come early (its targets
    met), so every session's weights should already be those of a cooling run.  On this CPU a
    constant LR learns fastest at first, then stalls at a noisy level."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps

    def base(s: int) -> float:
        return lr / math.sqrt(1 + (s - warmup_steps) / lr_tau) if lr_tau > 0 else lr

    if total_steps is None:
        return base(step)
    start = decay_start(total_steps, warmup_steps, decay_frac, decay_from)
    if step < start:
        return base(step)
    if step >= total_steps:
        return min_lr
    t = (step - start) / max(1, total_steps - start)
    top = base(start)
    return min_lr + 0.5 * (top - min_lr) * (1 + math.cos(math.pi * t))


def decay_start(total_steps: int, warmup_steps: int, decay_frac: float, decay_from: int = 0) -> int:
    """First step of the LR decay: ``decay_from`` where given, else the last ``decay_frac`` of the plan."""
    return max(warmup_steps, decay_from or int(total_steps * (1 - decay_frac)))


class StepPlan:
    """The total step count of a time-budgeted run: measured once the step rate has settled.

        total = step + rate · (time left),   rate = steps / seconds over ``seconds`` of training

    The time left is this invocation's (``deadline``), or with ``campaign_minutes`` the whole
    campaign's, so that one schedule spans many legs.  The rate is measured only after ``skip``
    steps (compilation, cold caches).  ``replan``: measure again over each window until the decay
    begins (a leg that must end its schedule within its own budget; a decay from a fixed step is
    planned once, so that its LR falls at every step).  A run with a fixed step
    count or a stored plan never plans, unless it re-plans."""

    def __init__(self, step: int, deadline: float, *, seconds: float, skip: int, campaign_minutes: float = 0.0,
                 replan: bool = False, fixed: bool = False, warmup_steps: int = 0, decay_frac: float = 0.0,
                 decay_from: int = 0):
        self.deadline = deadline
        self.seconds = seconds
        self.after = step + skip
        self.campaign_minutes = campaign_minutes
        self.replan = replan and not fixed
        self.warmup_steps, self.decay_frac, self.decay_from = warmup_steps, decay_frac, decay_from
        self.since: tuple[int, float] | None = None  # (step, time) where the measurement began
        self.measured = (0.0, 0.0)  # (steps/s, seconds) of the last measurement

    def update(self, step: int, now: float, total_steps: int | None, trained_seconds: float) -> int | None:
        """The new total step count, or None to keep ``total_steps``; ``trained_seconds``: the run's
        training time so far, resumes included."""
        may_plan = total_steps is None or (
            self.replan and step < decay_start(total_steps, self.warmup_steps, self.decay_frac, self.decay_from))
        if not may_plan:
            return None
        if self.since is None:
            if step >= self.after:
                self.since = (step, now)
            return None
        if now - self.since[1] < self.seconds:
            return None
        rate = (step - self.since[0]) / (now - self.since[1])
        left = 60 * self.campaign_minutes - trained_seconds if self.campaign_minutes else self.deadline - now
        self.measured = (rate, now - self.since[1])
        if self.replan:
            self.since = (step, now)
        return step + int(rate * max(0.0, left))
