"""Train a lic model: the loop, read top to bottom (after nanoGPT's train.py).

    python -m train --data ../shared/data/train --run runs/a --minutes 20 [--config small]
    torchrun --nproc_per_node=K -m train --run-dir runs/a ...   (DistributedDataParallel; under
                                                               torchrun, --run is taken for --run-path)

Each step minimises J = R + λ(q)·255²·D (``objective.py``) on a batch of random crops, q drawn per
sample *continuously* from U[1, 8] and λ(q) interpolated geometrically between the table's levels
(``codec.quality.lambda_for_quality``): the gain units interpolate between levels and the bitstream
stores real qualities, so the model is used between levels; training there costs nothing and spreads
every level's gradient over its neighbours.  ``--quality-sampling levels`` draws the eight levels only.

Quantization (Minnen & Singh 2020, "mixed"): the rate uses the noisy proxy ỹ = y + U(−½, ½); the slice
networks and g_s see round(y − μ) + μ with a straight-through gradient.  ``--noise-frac f`` feeds g_s
the noisy ỹ for the first fraction f of the steps (towards the annealing of Agustsson & Theis 2020).
The integer entropy path (h_s, the slice networks) trains in float (``--arithmetic float``: no
rounding of its weights, activations, means or σ indexes, the clamps kept), which learns faster;
``--qat-frac f`` turns the fixed-point rounding on (straight-through) for the last fraction f of the
planned steps, ``--arithmetic fake`` for all of them (``codec.networks.integer.Arithmetic``).

Speed: the training set is decoded once into a bank of uint8 crops on the device; each step draws
random sub-crops, flips and qualities there (no DataLoader).  g_a and g_s run under bf16 autocast where
bf16 is native; everything that feeds a likelihood stays in fp32.  ``--compile`` (on by default on
CUDA) falls back to eager mode if compiling fails.

The pieces: ``config.py`` (the flags), ``state.py`` (model, Adam, weight average, RNG, counters:
checkpointed whole), ``schedule.py`` (LR and the planned step count), ``guard.py`` (divergence),
``world.py`` (DDP), ``probe.py`` (per-part gradient norms and update ratios in ``layers.csv``).
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import torch
import torch.nn as nn

from codec.metrics import psnr_from_mse
from codec.networks.integer import Arithmetic
from codec.networks.precision import cpu_has_native_bf16
from codec.quality import QUALITY_LAMBDAS

from .config import TrainConfig
from .data import build_bank, build_bank_center, get_batch, list_images, sample_quality, split_heldout
from .guard import DivergenceGuard
from .objective import RateDistortion, estimate
from .probe import LayerProbe
from .schedule import StepPlan
from .state import RunState
from .world import World

__all__ = ["train", "LOG_FIELDS"]

LOG_FIELDS = ["step", "seconds", "loss", "bpp", "psnr", "lr", "images_per_s", "skipped"] + [
    f"{k}_q{q}" for q in range(1, len(QUALITY_LAMBDAS) + 1) for k in ("psnr", "bpp")]


def load_data(cfg: TrainConfig, world: World) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(training bank, held-out center crops): decoded once; ``val_images`` random photos held out."""
    files = list_images(cfg.data)
    if cfg.exclude:
        excluded = set(Path(cfg.exclude).read_text().split())
        files = [f for f in files if f.name not in excluded]
    if cfg.max_images:
        files = files[: cfg.max_images]
    val_files, train_files = split_heldout(files, cfg.val_images, cfg.seed)
    t0 = time.time()
    bank = build_bank(train_files, cfg.bank_size, cfg.crops_per_image, cfg.seed, cfg.bank_width,
                      cfg.downscale).to(world.device)
    val = build_bank_center(val_files, cfg.patch).to(world.device) if val_files else None
    world.say(f"data: {len(train_files)} images -> {len(bank)} crops {bank.shape[2]}x{bank.shape[3]} "
              f"({bank.numel() / 2**20:.0f} MiB), {len(val_files)} held out, {time.time() - t0:.1f} s")
    return bank, val


def forward_backward(rd: nn.Module, compile_: bool, world: World):
    """(x, q, ste) -> (RDOutput, mean loss) with the gradient computed, through ``torch.compile(rd)``;
    if compiling fails at the first call (another torch), on in eager mode for the rest of the run."""
    fn, checked = (world.wrap(torch.compile(rd)), False) if compile_ else (world.wrap(rd), True)

    def run(x, q, ste):
        nonlocal fn, checked
        try:
            out = fn(x, q, ste)
            loss = out.loss.mean()
            loss.backward()
        except Exception as e:
            if checked:
                raise
            world.say(f"torch.compile failed, continuing without it: {type(e).__name__}: {str(e)[:300]}")
            fn, checked = world.wrap(rd), True
            for p in rd.parameters():
                p.grad = None
            return run(x, q, ste)
        checked = True
        return out, loss

    return run


CONSOLE = ("step", "seconds", "skipped", "loss", "bpp", "psnr", "lr", "images_per_s")  # a log row's line


class RunLog:
    """``log.csv`` (one row per ``log_every`` steps) and the console, on rank 0."""

    def __init__(self, run_dir: Path, world: World):
        self.path, self.world = run_dir / "log.csv", world
        self.sums = torch.zeros(4, device=world.device)  # loss, bpp, PSNR, count since the last row
        if world.master and not self.path.exists():
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(LOG_FIELDS)

    def add(self, loss: torch.Tensor, out) -> None:
        with torch.no_grad():
            psnr = psnr_from_mse(out.mse.detach().clamp_min(1e-10), peak=1.0).mean()
            self.sums += torch.stack([loss.detach(), out.bpp.detach().mean(), psnr, torch.ones_like(psnr)])

    def row(self, **row) -> None:
        a = (self.sums / self.sums[3].clamp_min(1)).tolist()
        self.sums.zero_()
        row.update(loss=f"{a[0]:.4f}", bpp=f"{a[1]:.4f}", psnr=f"{a[2]:.3f}")
        if not self.world.master:
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, LOG_FIELDS).writerow({k: row.get(k, "") for k in LOG_FIELDS})
        self.world.say(" ".join(f"{k} {row[k]}" for k in CONSOLE if k in row)
                       + (f" | eval psnr q1 {row['psnr_q1']} q8 {row['psnr_q8']}" if "psnr_q1" in row else ""))


def end_run(state: RunState, guard: DivergenceGuard, rd: RateDistortion, val_images) -> dict:
    """A last checkpoint (unless the run diverged since the one before: it ends there) and the
    summary, with the held-out estimate, on rank 0."""
    world = state.world
    if guard.diverged():
        world.say(f"diverged since the last checkpoint ({guard.window_skipped} non-finite steps): not saving")
        state.restore_weights()
    else:
        state.save()
    if not world.master:
        return {}
    summary = {"step": state.step, "total_steps": state.total_steps, "train_seconds": state.trained_seconds}
    if val_images is not None:
        summary.update(estimate(rd, val_images))
        world.say("held-out: " + " ".join(f"q{q} {summary[f'bpp_q{q}']:.3f} bpp {summary[f'psnr_q{q}']:.2f} dB"
                                          for q in range(1, len(QUALITY_LAMBDAS) + 1)))
    return summary


def train(cfg: TrainConfig) -> dict:
    """Run (or continue) a training run; returns a summary.  See the module docstring."""
    t_start = time.time()
    world = World.setup(cfg.device, cfg.threads)
    run_dir = Path(cfg.run)
    if world.master:
        run_dir.mkdir(parents=True, exist_ok=True)
    bank, val_images = load_data(cfg, world)
    state = RunState(cfg, world)
    model, optimizer = state.model, state.optimizer
    amp = cfg.amp == "bf16" or (cfg.amp == "auto" and (world.cuda or cpu_has_native_bf16()))
    rd = RateDistortion(model, torch.bfloat16 if amp else None, rate_proxy=cfg.rate_proxy)
    world.say(f"model {state.model_config.model_id}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M "
              f"parameters; device {world.device}, world {world.size}, amp {'bf16' if amp else 'off'}; "
              f"step {state.step}, total {state.total_steps}")
    step_fn = forward_backward(rd, cfg.compile == "on" or (cfg.compile == "auto" and world.cuda), world)
    deadline = t_start + 60 * cfg.minutes - cfg.reserve_seconds
    plan = StepPlan(state.step, deadline, seconds=cfg.plan_seconds, skip=min(20, max(1, cfg.warmup_steps // 4)),
                    campaign_minutes=cfg.campaign_minutes, replan=cfg.replan, fixed=bool(cfg.steps),
                    warmup_steps=cfg.warmup_steps, decay_frac=cfg.decay_frac, decay_from=cfg.decay_from)
    guard = DivergenceGuard(cfg.max_skips, cfg.diverge_factor)
    log = RunLog(run_dir, world)
    probe = LayerProbe(model, run_dir / "layers.csv", world.master)
    stop_at = cfg.stop_at or None
    state.started = t_log = last_ckpt = time.time()
    step_log = state.step
    if not state.resumed:  # so that the guard always has a healthy state to go back to
        state.save()

    model.train()
    while not ((state.total_steps is not None and state.step >= state.total_steps)
               or (stop_at is not None and state.step >= stop_at)):
        # this step's LR, quantization and integer arithmetic
        lr = state.lr()
        for group in optimizer.param_groups:
            group["lr"] = lr * state.lr_backoff * group["lr_scale"]
        total = state.total_steps
        ste = not (cfg.noise_frac and total and state.step < cfg.noise_frac * total)
        qat = cfg.arithmetic == "fake" or bool(total and state.step >= (1 - cfg.qat_frac) * total)
        rd.arithmetic = Arithmetic.FAKE if qat else Arithmetic.FLOAT

        # a batch of random crops and flips of the bank at per-sample qualities; J, its gradient, a step
        x = get_batch(bank, cfg.batch_size, cfg.patch, state.gen).contiguous(memory_format=torch.channels_last)
        q = sample_quality(cfg.batch_size, cfg.quality_sampling, state.gen, world.device)
        optimizer.zero_grad(set_to_none=True)
        out, loss = step_fn(x, q, ste)
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        finite = bool(torch.isfinite(grad_norm)) and bool(torch.isfinite(loss))
        if finite:
            if (state.step + 1) % cfg.log_every == 0:
                probe.snapshot()
            optimizer.step()
            probe.record(state.step + 1)
            if state.ema:
                state.ema.update(state.step)
        if guard.record(loss, finite):
            world.say(f"non-finite step {state.step}: {guard.report(model, out.bpp, out.mse, q)}")
        state.step += 1
        if finite:
            log.add(loss, out)

        # every log_every steps: a log row; rank 0 takes the time-based decisions for all ranks
        step = state.step
        at_eval = cfg.eval_every and step % cfg.eval_every == 0
        if not (step % cfg.log_every == 0 or at_eval or step == state.total_steps or step == stop_at):
            continue
        now = time.time()
        row = {"step": step, "seconds": round(state.trained_seconds, 1), "skipped": guard.skipped,
               "lr": f"{lr * state.lr_backoff:.3g}",
               "images_per_s": f"{(step - step_log) * cfg.batch_size * world.size / max(1e-9, now - t_log):.1f}"}
        if at_eval and world.master and val_images is not None:
            row.update({k: f"{v:.4f}" for k, v in estimate(rd, val_images).items()})
        log.row(**row)
        t_log, step_log = time.time(), step
        planned = plan.update(step, now, state.total_steps, state.trained_seconds) if world.master else None
        if planned is not None:
            world.say(f"planned {planned} steps ({plan.measured[0]:.2f} steps/s over {plan.measured[1]:.0f} s)")
        save = now - last_ckpt >= 60 * cfg.checkpoint_minutes
        stop, save, planned, diverged = world.broadcast(
            [float(now >= deadline), float(save), float(planned or 0), float(save and guard.diverged())])
        if planned:
            state.total_steps = int(planned)
        if diverged:
            guard.roll_back(state)
            step_log, last_ckpt = state.step, time.time()
        elif save:
            state.save()
            guard.close_window(healthy=True)
            last_ckpt = time.time()
        if stop:
            world.say(f"time budget reached at step {step}")
            break

    summary = end_run(state, guard, rd, val_images)
    world.close()
    return summary
