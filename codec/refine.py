"""Encoder-side latent refinement (``--effort``): latents fitted to this image, decoder unchanged.

g_a's latents are an amortised guess.  For one image x at quality q, the best latents under the
frozen decoder and entropy model solve (Yang, Bamler & Mandt, NeurIPS 2020, "Improving inference
for neural image compression", eq. 3)

    y* = argmin_y  J(R(⌊y⌉ | ẑ), D(x, g_s(⌊y⌉ ⊙ g⁻¹(q))), q)          (J: ``codec.quality.rd_cost``)

with ẑ = ⌊h_a(g_a(x))⌉ kept fixed (the hyper-latents cost a few per cent of the bits; keeping them
fixed lets large images be refined tile by tile), and ⌊·⌉ the rounding of each slice's centred
latents y − μ.  Rounding has no useful gradient, so the descent sees a relaxation of it:

- ``sga``: stochastic Gumbel annealing (Yang et al., sec. 4.2): ⌊v⌋ or ⌈v⌉ drawn by a Gumbel-softmax
  whose logits grow with closeness, at a temperature annealed towards hard rounding;
- ``ste``: hard rounding with the identity gradient (what training uses for g_s's input).

Every few steps the hard-rounded cost is evaluated and the best latents so far are kept (the cost
the coder will see); with STE, whose forward pass is that cost, a step that made it worse is taken
back and retried at half the size (backtracking).  Each tile runs at most a cap of steps and stops
sooner once it is done: when the minimum of its hard-rounded cost, or of the moving variance of its
reconstruction (ES-EMV, ``codec.stopping``), has not fallen for a patience of steps; so the time
goes to the tiles that still improve.  A budget may run in phases (``RefineConfig.then``): each
phase starts from the best latents of the phases before it, e.g. a few cheap straight-through steps
before SGA.  The caller (``codec.coding``) reads the refinement's own
gain through an observer, and where it is small codes the one-pass latents as well and keeps the
cheaper real file.  The levels of ``--effort`` are in ``codec.effort``.

The model's own rate and synthesis (``LicModel.rate``, ``LicModel.synthesise``) give the cost, with
g_s in bf16 where the hardware computes it natively (``networks/precision.py``): the search only needs good
gradients, and the file chosen is then scored exactly.  So refined files may differ between
machines; each decodes the same everywhere.

An optional observer (``refine_latents(..., observer=...)``) is told what each step computed
(``RefineStep``): benchmarks record whole trajectories with it, and replay stopping rules over them.

Memory stays bounded on any image size: the latents are refined in tiles of ``REFINE_TILE`` latents
(each seen with a ``REFINE_HALO`` of neighbours, which are read but not changed), so one backward
pass never holds more than one tile's activations.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Callable, Iterator, NamedTuple

import torch
import torch.nn.functional as F

from .effort import RefineConfig, effort_config
from .networks.integer import round_ste
from .networks.precision import native_bf16
from .quality import rd_cost
from .stopping import EsEmv, Plateau

__all__ = ["REFINE_TILE", "REFINE_HALO", "RefineStep", "RefineObserver", "lr_at", "refine_latents", "sga_round",
           "steps_for"]

REFINE_TILE = 48  # latents per tile side (768 pixels: a Kodak image is one tile); one backward stays < 1 GB
REFINE_HALO = 4  # latents of context around a tile: covers g_s's and the slice networks' reach


class RefineStep(NamedTuple):
    """What one step of a tile's refinement computed, as ``refine_latents`` tells its observer.

    Two kinds of step are told: a check, where the hard-rounded cost J(⌊y⌉) of the tile was evaluated
    (``hard_cost`` set), and a descent step, where the relaxed forward pass made the tile's
    reconstruction (``reconstruction`` set; with STE that pass is also a check, so both are set).
    Checks come at step 0 and every ``check_every`` steps (SGA), and at the step the tile ended,
    unless that step was already checked; descent steps at every step run.  The tensors are the
    refinement's own (``latents`` may be a view that later steps change): copy what you keep."""

    tile: int  # the tile's index, in the order refined (row-major over the latent grid)
    step: int  # descent steps taken before these latents
    latents: torch.Tensor  # the window's latents (1, M, h, w) that were evaluated, halo included
    hard_cost: float | None  # ``rd_cost`` of the tile with these latents hard-rounded; None: not a check
    reconstruction: torch.Tensor | None  # the tile's pixels from the relaxed rounding (what ES-EMV watches)
    stopped: bool  # the stopping rule fired on this value: the tile ends here (the final check says False)


RefineObserver = Callable[[RefineStep], object]


def lr_at(config: RefineConfig, quality: float) -> float:
    """The first step's size at ``quality``: lr · 2^((q − 1) / lr_doubling).

    Measured on Kodak (4 STE steps): the best step grows with quality, from about 0.01 at q 1 to
    0.08 or more at q 8.  At low quality a latent's rounding flip moves the image a lot (the
    inverse gain is large) and flipping many at once overshoots; at high quality each flip is
    small and many are worth making."""
    return config.lr * 2 ** ((quality - 1) / config.lr_doubling)


def sga_round(v: torch.Tensor, tau: float, generator: torch.Generator | None) -> torch.Tensor:
    """Stochastic Gumbel annealing: ⌊v⌋ + Gumbel-softmax weight of ⌈v⌉ (Yang et al. 2020, eq. 6).

    The logit of each neighbour is −atanh(distance)/τ, so the nearer integer is likelier and τ → 0
    approaches hard rounding."""
    lo = torch.floor(v.detach())
    eps = 1e-5
    d_lo = (v - lo).clamp(eps, 1 - eps)
    logits = torch.stack([-torch.atanh(d_lo), -torch.atanh(1 - d_lo)], dim=-1) / tau
    u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype, device=logits.device)
    gumbel = -torch.log(-torch.log(u.clamp(1e-12, 1 - 1e-7)))
    weights = F.softmax((logits + gumbel) / tau, dim=-1)
    return lo + weights[..., 1]


def _rounding(config: RefineConfig, step: int, generator: torch.Generator) -> Callable[[torch.Tensor], torch.Tensor]:
    """The relaxed rounding of descent step ``step``: STE, or SGA at this step's temperature."""
    if config.relaxation == "ste":
        return round_ste
    tau = config.tau_start * (config.tau_end / config.tau_start) ** (step / config.steps)
    return lambda v: sga_round(v, tau, generator)


class _Window(NamedTuple):
    """One tile of latents with its halo, and the pixels its cost is measured on."""

    y: torch.Tensor  # (1, M, h, w): the window's latents (a view of the latents being refined)
    features: torch.Tensor  # ψ over the window
    x: torch.Tensor  # the window's pixels (padded image)
    core: tuple  # index of the tile inside the window, in latents
    pixels: tuple  # index of the tile's pixels that lie inside the image, in window pixels


def _tiles(height: int, width: int) -> Iterator[tuple[slice, slice, slice, slice]]:
    """(tile rows, tile cols, window rows, window cols) over a latent grid of height x width."""
    for r0 in range(0, height, REFINE_TILE):
        for c0 in range(0, width, REFINE_TILE):
            r1, c1 = min(height, r0 + REFINE_TILE), min(width, c0 + REFINE_TILE)
            a, b = max(0, r0 - REFINE_HALO), max(0, c0 - REFINE_HALO)
            yield (slice(r0, r1), slice(c0, c1),
                   slice(a, min(height, r1 + REFINE_HALO)), slice(b, min(width, c1 + REFINE_HALO)))


def _windows(x_padded: torch.Tensor, size: tuple[int, int], y: torch.Tensor,
             features: torch.Tensor) -> Iterator[tuple[slice, slice, _Window]]:
    """(tile rows, tile cols, its window) over the latent grid of ``y``; each window is cut when it
    is reached, so that it sees the tiles refined before it."""
    stride = x_padded.shape[-1] // y.shape[-1]
    for rows, cols, wrows, wcols in _tiles(*y.shape[-2:]):
        top, left = rows.start - wrows.start, cols.start - wcols.start
        core = (..., slice(top, rows.stop - wrows.start), slice(left, cols.stop - wcols.start))
        pixels = (..., slice(top * stride, min(rows.stop * stride, size[0]) - wrows.start * stride),
                  slice(left * stride, min(cols.stop * stride, size[1]) - wcols.start * stride))
        x = x_padded[..., wrows.start * stride : wrows.stop * stride, wcols.start * stride : wcols.stop * stride]
        yield rows, cols, _Window(y[..., wrows, wcols], features[..., wrows, wcols], x, core, pixels)


def _tile_cost(model, window: _Window, y: torch.Tensor, quality: float,
               rounding: Callable[[torch.Tensor], torch.Tensor] | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``rd_cost`` of the window's tile with latents ``y``, as totals (``rd_cost`` is linear): the bits
    of the tile's latents, and the squared error of its pixels inside the image, averaged over the
    three channels; and those pixels' reconstruction (what ES-EMV watches).  ``rounding`` None: hard
    rounding (the eval-mode rate)."""
    y_hat, likelihoods = model.rate(y, window.features, rounding=rounding)
    x_hat = model.synthesise(y_hat, quality, torch.bfloat16 if native_bf16(y.device.type) else None)
    bits = -torch.log2(likelihoods[window.core]).sum()
    x_tile = x_hat[window.pixels].clamp(0, 1)
    se = (x_tile - window.x[window.pixels]).pow(2).sum() / 3
    return rd_cost(bits, se, quality), x_tile


def _hard_cost(model, window: _Window, y: torch.Tensor, quality: float) -> float:
    with torch.no_grad():
        return float(_tile_cost(model, window, y, quality, None)[0])


class _Best:
    """The best tile latents seen so far and their hard-rounded cost."""

    def __init__(self, window: _Window):
        self.core = window.core
        self.latents, self.cost = window.y[self.core].clone(), math.inf

    def offer(self, cost: float, y: torch.Tensor) -> bool:
        """Keep the tile of ``y`` if ``cost`` beats the best; whether it did."""
        if not cost < self.cost:
            return False
        self.latents, self.cost = y[self.core].detach().clone(), cost
        return True


class _Watch:
    """A tile's stopping rule (``RefineConfig.stop_on``, ``codec.stopping``): the plateau of its
    hard-rounded cost, or of the moving variance of its reconstruction (ES-EMV)."""

    def __init__(self, config: RefineConfig):
        self.on_cost = config.stop_on == "cost"
        self.plateau = Plateau(config.patience)
        self.emv = None if self.on_cost or not config.patience else EsEmv(config.emv_alpha, config.patience)

    def cost(self, step: int, cost: float) -> bool:
        """The hard-rounded cost of the latents after ``step`` steps; whether to stop there."""
        return self.on_cost and self.plateau.update(step, cost)

    def reconstruction(self, step: int, x_tile: torch.Tensor) -> bool:
        """The (relaxed) reconstruction of the latents after ``step`` steps; whether to stop there."""
        return self.emv is not None and self.emv.update(step, x_tile)


class _Adam:
    """Adam (Kingma & Ba, ICLR 2015) on the window's free latents: m ← β₁m + (1 − β₁)g,
    v ← β₂v + (1 − β₂)g², x ← x − lr · m̂ / (√v̂ + ε), with torch's defaults (β₁ 0.9, β₂ 0.999).  Its first
    steps move every latent with a gradient by about lr, whatever the gradient's size."""

    def __init__(self, free: torch.Tensor, core: tuple):
        self.optimizer = torch.optim.Adam([free], lr=1.0)  # the step size is set at every call

    def __call__(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


class _Normalised:
    """Normalised gradient descent on the tile: x ← x − lr · g / RMS(g), the RMS over the tile's latents.
    The typical move is lr, as with Adam, but each latent moves in proportion to its own gradient, so
    under hard rounding a latent whose gradient is small stays on its side of a rounding boundary."""

    def __init__(self, free: torch.Tensor, core: tuple):
        self.free, self.core = free, core

    def __call__(self, lr: float) -> None:
        with torch.no_grad():
            grad = self.free.grad[self.core]
            self.free[self.core] -= lr * grad / grad.pow(2).mean().sqrt().clamp_min(1e-30)
        self.free.grad = None


_UPDATES = {"adam": _Adam, "ngd": _Normalised}  # ``RefineConfig.optimizer``


class _Descent:
    """Descent on the tile's latents (its halo held) by the update ``RefineConfig.optimizer`` names
    (``_Adam``, ``_Normalised``), with the step size decaying linearly over the phase's cap and, for STE,
    backtracking."""

    def __init__(self, window: _Window, quality: float, config: RefineConfig):
        self.window, self.steps = window, config.steps
        self.mask = torch.zeros_like(window.y)
        self.mask[window.core] = 1
        self.free = window.y.clone().requires_grad_(True)
        self.lr, self.lr_scale, self.good_grad = lr_at(config, quality), 1.0, None
        self.update = _UPDATES[config.optimizer](self.free, window.core)

    def current(self) -> torch.Tensor:
        """The window's latents now: the tile's moved, the halo's as they are."""
        return self.window.y + (self.free - self.window.y) * self.mask

    def step(self, step: int, cost: torch.Tensor, best: _Best | None) -> None:
        """One step down ``cost``; with ``best`` (STE, the step made it no better), instead return to
        the best latents and take the last good gradient's step again at half the size: the step
        overshot (too many latents crossed a rounding boundary at once, which the gradient does not
        foresee)."""
        if best is not None and self.good_grad is not None:
            self.lr_scale *= 0.5
            with torch.no_grad():
                self.free[self.window.core] = best.latents
            self.free.grad = self.good_grad.clone()
        else:
            cost.backward()
            self.good_grad = self.free.grad.detach().clone()
        self.update(self.lr * self.lr_scale * (1 - step / self.steps))  # linear decay: big moves first, then settle


def _refine_tile(model, window: _Window, quality: float, config: RefineConfig, generator: torch.Generator,
                 progress: Callable[[], object] | None, tile: int = 0,
                 observer: RefineObserver | None = None) -> torch.Tensor:
    """The best latents found for the window's tile: never worse than its own on the hard-rounded
    cost (as the window sees it).  Each phase of ``config`` (``RefineConfig.phases``) starts from the
    best latents of the phases before it.  ``observer`` is told each step as tile ``tile``
    (``RefineStep``), numbered from the first phase's start."""
    best, offset = _Best(window), 0
    for phase in config.phases():
        _run_phase(model, window, quality, phase, generator, progress, tile, observer, best, offset)
        with torch.no_grad():
            window.y[window.core] = best.latents
        offset += phase.steps
    return best.latents


def _run_phase(model, window: _Window, quality: float, config: RefineConfig, generator: torch.Generator,
               progress: Callable[[], object] | None, tile: int, observer: RefineObserver | None,
               best: _Best, offset: int) -> None:
    """One phase's descent from the window's latents, offering every hard-rounded cost to ``best``: at
    most ``config.steps`` steps, fewer when the tile's watched value has stopped improving (``_Watch``);
    ``progress()`` counts the steps not run as well.  Steps are told to ``observer`` from ``offset``."""
    watch, descent = _Watch(config), _Descent(window, quality, config)
    hard_forward = config.relaxation == "ste"  # its forward pass is the hard-rounded cost itself
    if not hard_forward:
        # A previous phase ended on these latents and measured them: its cost is theirs.
        cost = best.cost if math.isfinite(best.cost) else _hard_cost(model, window, window.y, quality)
        best.offer(cost, window.y)
        stopped = watch.cost(0, cost)
        if observer is not None:
            observer(RefineStep(tile, offset, window.y, cost, None, stopped))
    evaluated, stopped, step = False, False, 0
    for step in range(config.steps):
        current = descent.current()
        evaluated = False
        if not hard_forward and step > 0 and step % config.check_every == 0:
            cost = _hard_cost(model, window, current, quality)
            best.offer(cost, current)
            evaluated, stopped = True, watch.cost(step, cost)
            if observer is not None:
                observer(RefineStep(tile, offset + step, current, cost, None, stopped))
            if stopped:
                break
        cost, x_tile = _tile_cost(model, window, current, quality, _rounding(config, step, generator))
        improved = True
        if hard_forward:
            improved, evaluated = best.offer(cost.item(), current) or step == 0, True
            stopped = watch.cost(step, cost.item())
        else:
            stopped = watch.reconstruction(step, x_tile)
        if observer is not None:
            observer(RefineStep(tile, offset + step, current, cost.item() if hard_forward else None, x_tile, stopped))
        if stopped:
            break
        descent.step(step, cost, None if improved else best)
        if progress is not None:
            progress()
    if not stopped:
        step, evaluated = config.steps, False
    if not evaluated:
        current = descent.current()
        cost = _hard_cost(model, window, current, quality)
        best.offer(cost, current)
        if observer is not None:
            observer(RefineStep(tile, offset + step, current, cost, None, False))
    for _ in range(config.steps - step if progress is not None else 0):
        progress()


@contextmanager
def _fitting(model) -> Iterator[None]:
    """Eval mode (the rate of ⌊y⌉ when no rounding is passed, no training noise) and no parameter
    gradients (they would cost a third of each backward) while the latents are fitted; restored after."""
    was_training, flags = model.training, [p.requires_grad for p in model.parameters()]
    model.eval()
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        with torch.enable_grad():
            yield
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)
        model.train(was_training)


def refine_latents(model, x_padded: torch.Tensor, size: tuple[int, int], y: torch.Tensor, features: torch.Tensor,
                   quality: float, config: RefineConfig,
                   progress: Callable[[], object] | None = None,
                   observer: RefineObserver | None = None) -> torch.Tensor:
    """Latents ``y`` (1, M, h, w, gains applied) refined for the image of ``size`` (H, W) held in
    ``x_padded`` (1, 3, 16h, 16w), given the hyper features ψ of the fixed ẑ.  Returns a new
    tensor, never worse than ``y`` on each tile's hard-rounded cost (as its window sees it).
    ``progress()`` after each step; a tile that stops early reports its remaining steps at once.
    ``observer(RefineStep)`` after each check and each descent step's forward pass (``RefineStep``
    says which); it sees only what the refinement computes anyway, so the result is the same with
    or without it."""
    if config.steps == 0:
        return y
    generator = torch.Generator(device=y.device)
    y = y.detach().clone()
    with _fitting(model):
        for index, (rows, cols, window) in enumerate(_windows(x_padded, size, y, features)):
            # Each tile's Gumbel draws are its own: a tile that stops early leaves the next one's alone.
            generator.manual_seed(config.seed + index)
            y[..., rows, cols] = _refine_tile(model, window, quality, config, generator, progress,
                                                index, observer).detach()
    return y


def steps_for(effort: int, latent_height: int, latent_width: int) -> int:
    """The most descent steps (for a progress bar) at ``effort`` on a latent grid of this size."""
    tiles = math.ceil(latent_height / REFINE_TILE) * math.ceil(latent_width / REFINE_TILE)
    return effort_config(effort).total_steps * tiles
