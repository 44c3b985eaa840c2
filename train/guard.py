"""The divergence guard: a run never saves weights that have gone bad.

Judged over the steps since the last checkpoint (a window): more non-finite steps than
``max_skips``, or a mean loss above ``diverge_factor`` × the previous window's, is divergence.  The
run then goes back to its last checkpoint at half the LR instead of overwriting it; a single
non-finite step is only skipped (one NaN gradient would turn every weight into NaN through the clip's
scale and Adam's moments).
"""

from __future__ import annotations

import torch

from .state import RunState

__all__ = ["DivergenceGuard"]


class DivergenceGuard:
    def __init__(self, max_skips: int, factor: float):
        self.max_skips, self.factor = max_skips, factor
        self.skipped = 0  # non-finite steps of the whole invocation (the log's column)
        self.window_skipped, self.loss, self.count = 0, 0.0, 0
        self.last_loss: float | None = None  # the previous window's mean loss

    def record(self, loss: torch.Tensor, finite: bool) -> bool:
        """Count one step; returns whether a non-finite step should be reported (the first few)."""
        if finite:
            self.loss += float(loss.detach())
            self.count += 1
            return False
        self.skipped += 1
        self.window_skipped += 1
        return self.skipped <= self.max_skips  # enough to tell where it starts, without flooding the log

    def diverged(self) -> bool:
        """Whether the steps since the last checkpoint look like divergence."""
        if self.window_skipped > self.max_skips:
            return True
        if self.count == 0:
            return self.window_skipped > 0
        return self.last_loss is not None and self.loss / self.count > self.factor * self.last_loss

    def close_window(self, healthy: bool) -> None:
        """Start a new window; a healthy window's mean loss is the next one's reference."""
        if healthy and self.count:
            self.last_loss = self.loss / self.count
        self.window_skipped, self.loss, self.count = 0, 0.0, 0

    def roll_back(self, state: RunState) -> None:
        """Return ``state`` to its last checkpoint at half the LR (or, with none, only say so)."""
        say = state.world.say
        if not state.path.exists():  # nothing to go back to; never save this
            say(f"diverging at step {state.step} with no checkpoint to go back to")
        else:
            mean = self.loss / max(1, self.count)
            at = state.roll_back()
            say(f"diverged at step {at} ({self.window_skipped} non-finite steps, mean loss {mean:.3f}): "
                f"back to step {state.step}, LR x{state.lr_backoff:g}")
        self.close_window(healthy=False)

    @staticmethod
    def report(model: torch.nn.Module, bpp: torch.Tensor, mse: torch.Tensor, q: torch.Tensor) -> str:
        """Which samples (and their qualities) and which parameters' gradients went non-finite."""
        bad = ~(torch.isfinite(bpp.detach()) & torch.isfinite(mse.detach()))
        grads = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
        return (f"{int(bad.sum())} of {bad.numel()} samples non-finite (q {[round(float(v), 2) for v in q[bad]]}), "
                f"largest finite bpp {float(bpp.detach().nan_to_num(nan=0.0, posinf=0.0).max()):.3g}; non-finite "
                f"gradients in {len(grads)} tensors: {', '.join(grads[:4])}")
