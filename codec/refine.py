"""Encoder-side latent refinement (``--effort``): latents fitted to this image, decoder unchanged.

g_a's latents are an amortised guess.  For one image x at quality q, the best latents under the
frozen decoder and entropy model solve (Yang, Bamler & Mandt, NeurIPS 2020, "Improving inference
for neural image compression", eq. 3)

    y* = argmin_y  R(⌊y⌉ | ẑ) + λ(q)·255²·D(x, g_s(⌊y⌉ ⊙ g⁻¹(q)))          (R in bits, D the SE / 3)

with ẑ = ⌊h_a(g_a(x))⌉ kept fixed (the hyper-latents cost ~2 % of the bits here; keeping them fixed
lets large images be refined tile by tile), and ⌊·⌉ the rounding of each slice's residual y − μ.
Rounding has no useful gradient, so the descent sees a relaxation of it:

- ``sga``: stochastic Gumbel annealing (Yang et al., sec. 4.2): ⌊v⌋ or ⌈v⌉ drawn by a Gumbel-softmax
  whose logits grow with closeness, at a temperature annealed towards hard rounding;
- ``ste``: hard rounding with the identity gradient (what training uses for g_s's input).

Every few steps the hard-rounded cost is evaluated and the best latents so far are kept (early
stopping on the cost the coder will see); with STE, whose forward pass is that cost, a step that
made it worse is taken back and retried at half the size (backtracking).  The caller codes both
the refined and the one-pass latents, and keeps the cheaper real file (``codec.coding``).

g_s runs in bf16 where the hardware has it (``precision.py``) and on channels-last tensors (twice
as fast again on this CPU): the search only needs good gradients, and the file chosen is then
scored exactly.  So refined files may differ between machines; each decodes the same everywhere.

Memory stays bounded on any image size: the latents are refined in tiles of ``TILE`` latents
(each seen with a ``HALO`` of neighbours, which are read but not changed), so one backward pass
never holds more than one tile's activations.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from .effort import RefineConfig, effort_config
from .integer import Arithmetic
from .precision import native_bf16
from .quality import rd_cost

__all__ = ["lr_at", "refine_latents", "sga_round", "ste_round", "steps_for"]
TILE = 48  # latents per tile side (768 pixels: a Kodak image is one tile); one backward stays < 1 GB
HALO = 4  # latents of context around a tile: covers g_s's and the slice networks' reach


def lr_at(config: RefineConfig, quality: float) -> float:
    """The first step's size at ``quality``: lr · 2^((q − 1) / lr_doubling).

    Measured on Kodak (4 STE steps): the best step grows with quality, from about 0.01 at q 1 to
    0.08 or more at q 8.  At low quality a latent's rounding flip moves the image a lot (the
    inverse gain is large) and flipping many at once overshoots; at high quality each flip is
    small and many are worth making."""
    return config.lr * 2 ** ((quality - 1) / config.lr_doubling)


def ste_round(v: torch.Tensor, tau: float, generator: torch.Generator | None) -> torch.Tensor:
    """⌊v⌉ forward, identity backward."""
    return v + (torch.round(v) - v).detach()


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


_RELAXATIONS: dict[str, Callable] = {"ste": ste_round, "sga": sga_round}


@contextmanager
def _frozen(model) -> Iterator[None]:
    """No parameter gradients while the latents are fitted: they would cost a third of each backward."""
    flags = [p.requires_grad for p in model.parameters()]
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)


def _tiles(height: int, width: int) -> Iterator[tuple[slice, slice, slice, slice]]:
    """(core rows, core cols, window rows, window cols) over a latent grid of height x width."""
    for r0 in range(0, height, TILE):
        for c0 in range(0, width, TILE):
            r1, c1 = min(height, r0 + TILE), min(width, c0 + TILE)
            a, b = max(0, r0 - HALO), max(0, c0 - HALO)
            yield slice(r0, r1), slice(c0, c1), slice(a, min(height, r1 + HALO)), slice(b, min(width, c1 + HALO))


def _tile_cost(model, y_win, features, x_win, quality, rounding, core, pixels):
    """The cost ``rd_cost`` of one window's core, as totals: the bits of the core latents, and the
    squared error of the core's pixels (``pixels``: the part of them inside the image, not its
    padding) over the three channels.  ``quality``: a float."""
    q = torch.tensor([quality], dtype=torch.float32, device=y_win.device)
    y_hat, likelihoods = model.entropy(y_win, features, mode=Arithmetic.FAKE, rounding=rounding)
    with torch.autocast(y_win.device.type, dtype=torch.bfloat16, enabled=native_bf16(y_win.device.type)):
        x_hat = model.g_s((y_hat * model.gain.inverse_gain(q)).contiguous(memory_format=torch.channels_last)).float()
    bits = -torch.log2(likelihoods[..., core[0], core[1]]).sum()
    se = (x_hat[..., pixels[0], pixels[1]].clamp(0, 1) - x_win[..., pixels[0], pixels[1]]).pow(2).sum() / 3
    return rd_cost(bits, se, quality)


def refine_latents(model, x_padded: torch.Tensor, size: tuple[int, int], y: torch.Tensor, features: torch.Tensor,
                   quality: float, config: RefineConfig,
                   progress: Callable[[], object] | None = None) -> torch.Tensor:
    """Latents ``y`` (1, M, h, w, gains applied) refined for the image of ``size`` (H, W) held in
    ``x_padded`` (1, 3, 16h, 16w), given the hyper features ψ of the fixed ẑ.  Returns a new
    tensor, never worse than ``y`` on each tile's hard-rounded cost (as its window sees it).
    ``progress()`` after each step."""
    if config.steps == 0:
        return y
    stride = x_padded.shape[-1] // y.shape[-1]
    relax = _RELAXATIONS[config.relaxation]
    generator = torch.Generator(device=y.device).manual_seed(config.seed)
    y = y.detach().clone()
    was_training = model.training
    model.eval()  # eval mode: the rate of ⌊y⌉ when no rounding is passed, no training noise
    try:
        with _frozen(model), torch.enable_grad():
            for rows, cols, wrows, wcols in _tiles(*y.shape[-2:]):
                core = (slice(rows.start - wrows.start, rows.stop - wrows.start),
                        slice(cols.start - wcols.start, cols.stop - wcols.start))
                window = y[..., wrows, wcols]
                feats = features[..., wrows, wcols]
                x_win = x_padded[..., wrows.start * stride : wrows.stop * stride, wcols.start * stride : wcols.stop * stride]
                pixels = (slice(core[0].start * stride, min(rows.stop * stride, size[0]) - wrows.start * stride),
                          slice(core[1].start * stride, min(cols.stop * stride, size[1]) - wcols.start * stride))
                mask = torch.zeros_like(window)
                mask[..., core[0], core[1]] = 1
                best = window[..., core[0], core[1]].clone()
                hard_forward = config.relaxation == "ste"  # its forward pass is the hard cost itself
                best_cost = math.inf  # STE: step 0's forward scores g_a's latents
                if not hard_forward:
                    with torch.no_grad():
                        best_cost = float(_tile_cost(model, window, feats, x_win, quality, None, core, pixels))
                free = window.clone().requires_grad_(True)
                lr = lr_at(config, quality)
                optimizer = torch.optim.Adam([free], lr=lr)
                lr_scale, good_grad = 1.0, None
                for step in range(config.steps + 1):
                    current = window + (free - window) * mask  # halo latents stay as they are
                    last = step == config.steps
                    worse = False
                    if last or (not hard_forward and step > 0 and step % config.check_every == 0):
                        with torch.no_grad():
                            hard = float(_tile_cost(model, current, feats, x_win, quality, None, core, pixels))
                        if hard < best_cost:
                            best_cost, best = hard, current[..., core[0], core[1]].detach().clone()
                    if last:
                        break
                    frac = step / config.steps
                    tau = config.tau_start * (config.tau_end / config.tau_start) ** frac
                    rounding = lambda v: relax(v, tau, generator)  # noqa: E731
                    optimizer.zero_grad(set_to_none=True)
                    cost = None
                    if not worse:
                        cost = _tile_cost(model, current, feats, x_win, quality, rounding, core, pixels)
                        if hard_forward:
                            if cost.item() < best_cost:
                                best_cost, best = cost.item(), current[..., core[0], core[1]].detach().clone()
                            elif step > 0:
                                worse = True
                    if worse and good_grad is not None:
                        # Backtrack: the step overshot (too many latents crossed a rounding boundary
                        # at once, which the gradient does not foresee).  Return to the best latents
                        # and take the last good gradient's step again at half the size.
                        lr_scale *= 0.5
                        with torch.no_grad():
                            free[..., core[0], core[1]] = best
                        free.grad = good_grad.clone()
                    else:
                        if cost is None:
                            cost = _tile_cost(model, current, feats, x_win, quality, rounding, core, pixels)
                        cost.backward()
                        good_grad = free.grad.detach().clone()
                    for group in optimizer.param_groups:  # linear decay: big moves first, then settle
                        group["lr"] = lr * lr_scale * (1 - frac)
                    optimizer.step()
                    if progress is not None:
                        progress()
                y[..., rows, cols] = best.detach()
    finally:
        model.train(was_training)
    return y


def steps_for(effort: int, latent_height: int, latent_width: int) -> int:
    """Total descent steps (for a progress bar) at ``effort`` on a latent grid of this size."""
    tiles = math.ceil(latent_height / TILE) * math.ceil(latent_width / TILE)
    return effort_config(effort).steps * tiles
