"""Everything a training run carries from step to step, checkpointed whole.

A run starts in one of three ways: resumed from its own checkpoint (weights, Adam, weight average,
every RNG: it continues bit for bit), initialised from shipped weights (their step and schedule, a
fresh Adam), or from scratch.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch
import torch.nn as nn

from codec.networks.config import ModelConfig
from codec.networks.model import LicModel

from .average import WeightAverage
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import TrainConfig, model_config
from .schedule import decay_start, get_lr
from .world import World

__all__ = ["RunState", "prefixes"]


def prefixes(text: str) -> tuple[str, ...]:
    """"g_a.,gain." -> ("g_a.", "gain."): a comma-separated list of parameter-name prefixes."""
    return tuple(p for p in text.split(",") if p)


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam (or SOAP) over the trained parameters, in two groups: the rest at the LR, ``slow_params``
    at ``slow_lr_scale`` of it; ``frozen_params`` are left out and stop needing gradients.

    Why slow groups: Adam moves every weight by about the LR per step whatever its gradient, so a
    weight's effective step is set by what it multiplies.  The gain units scale whole latent
    channels, and h_a's first layer sees the gained latents (up to ±200), where a step of the LR
    moves z by about a quantization bin."""
    slow, frozen = prefixes(cfg.slow_params), prefixes(cfg.frozen_params)
    for n, p in model.named_parameters():
        p.requires_grad_(not n.startswith(frozen))
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in trained if not n.startswith(slow)], "lr_scale": 1.0},
              {"params": [p for n, p in trained if n.startswith(slow)], "lr_scale": cfg.slow_lr_scale}]
    if cfg.optimizer == "soap":
        # SOAP (Vyas et al. 2024): Adam run in the eigenbasis of Shampoo's preconditioner, refreshed
        # every 10 steps; Adam's betas and no weight decay, so that only the basis differs.
        from pytorch_optimizer import SOAP

        return SOAP(groups, lr=cfg.lr, betas=(0.9, 0.999), weight_decay=0.0, precondition_frequency=10)
    return torch.optim.Adam(groups, lr=cfg.lr)


class RunState:
    """Model, optimizer, weight average, data RNG and the run's counters."""

    def __init__(self, cfg: TrainConfig, world: World):
        self.cfg, self.world = cfg, world
        self.path = Path(cfg.run) / "checkpoint.pt"
        ckpt = load_checkpoint(self.path) if cfg.resume and self.path.exists() else None
        if cfg.resume and ckpt is None:
            world.say(f"no checkpoint in {Path(cfg.run)}: starting fresh")
        self.resumed = ckpt is not None
        self.model_config = ModelConfig(**ckpt["model_config"]) if ckpt else model_config(cfg)
        torch.manual_seed(cfg.seed)
        model = LicModel(self.model_config).to(world.device)  # the same init on every rank
        torch.manual_seed(cfg.seed + world.rank)  # the model's quantization noise: its own stream per rank
        if ckpt:
            model.load_state_dict(ckpt["model"])
        self.model = model.to(memory_format=torch.channels_last)
        self.optimizer = build_optimizer(self.model, cfg)
        if ckpt:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        self.gen = torch.Generator(device=world.device)
        self.gen.manual_seed(cfg.seed * 1000 + world.rank + 1)  # per-rank data stream
        self.step, self.total_steps, self.trained_before = 0, (cfg.steps or None), 0.0
        if not ckpt and cfg.init_from:
            self._init_from_weights(cfg.init_from)
        if ckpt:
            self._resume(ckpt)
        if cfg.replan and self.total_steps and self.step <= decay_start(self.total_steps, cfg.warmup_steps,
                                                                       cfg.decay_frac, cfg.decay_from):
            self.total_steps = None  # plan the end again, from this invocation's budget
        # A fresh Adam's first updates are ±lr on every weight whatever its gradient: warm it up
        # again from wherever it starts.
        self.rewarm_from = self.step if self.step and not self.optimizer.state else None
        ema_start = int(ckpt.get("ema_start", 0)) if ckpt else self.step
        self.ema = WeightAverage(self.model, cfg.ema, ckpt.get("ema") if ckpt else None, ema_start) if cfg.ema else None
        self.lr_backoff = float(ckpt.get("lr_backoff", 1.0)) if ckpt else 1.0  # halved at each rollback
        self.started = time.time()

    def _init_from_weights(self, weights: str) -> None:
        from codec.weights import load_metadata, load_model

        self.model.load_state_dict(load_model(weights).state_dict())
        meta = load_metadata(weights)
        self.step, self.trained_before = int(meta.get("steps", 0)), float(meta.get("train_seconds", 0.0))
        if not self.cfg.steps and meta.get("total_steps", "None") != "None":  # the campaign's planned schedule
            self.total_steps = int(meta["total_steps"])
        self.world.say(f"initialised from {weights} (step {self.step}, {self.trained_before / 60:.0f} min "
                       "trained; fresh optimizer)")

    def _resume(self, ckpt: dict) -> None:
        cfg, world = self.cfg, self.world
        self.step, self.trained_before = ckpt["step"], ckpt["train_seconds"]
        self.total_steps = ckpt["total_steps"] or self.total_steps
        states = ckpt["rng"]
        if len(states) == world.size:  # same world size: continue every stream exactly
            set_rng_state(states[world.rank], self.gen, world.device)
        else:  # another world size: fresh, but distinct, streams
            torch.manual_seed(cfg.seed + world.rank + 7919 * self.step)
            self.gen.manual_seed(cfg.seed * 1000 + world.rank + 1 + 7919 * self.step)

    @property
    def trained_seconds(self) -> float:
        """Training time of the run so far, resumes included."""
        return self.trained_before + time.time() - self.started

    def lr(self) -> float:
        """This step's LR, before the rollback back-off and the groups' shares."""
        cfg = self.cfg
        lr = get_lr(self.step, self.total_steps, lr=cfg.lr, min_lr=cfg.min_lr, warmup_steps=cfg.warmup_steps,
                    decay_frac=cfg.decay_frac, lr_tau=cfg.lr_tau, decay_from=cfg.decay_from)
        if self.rewarm_from is not None:
            lr *= min(1.0, (self.step - self.rewarm_from + 1) / cfg.warmup_steps)
        return lr

    def save(self) -> None:
        """Checkpoint the whole state (every rank's RNG; written by rank 0, atomically)."""
        states = self.world.gather(rng_state(self.gen, self.world.device))
        if self.world.size > 1:
            states = [{k: (v.cpu() if torch.is_tensor(v) else v) for k, v in s.items()} for s in states]
        if self.world.master:
            ema = self.ema
            save_checkpoint(
                self.path, model=self.model.state_dict(), optimizer=self.optimizer.state_dict(), step=self.step,
                ema=ema.state if ema else None, ema_start=ema.start if ema else 0,
                total_steps=self.total_steps, train_seconds=self.trained_seconds,
                model_config=dataclasses.asdict(self.model_config), train_config=dataclasses.asdict(self.cfg),
                rng=states, torch_version=str(torch.__version__), lr_backoff=self.lr_backoff,
            )

    def roll_back(self) -> int:
        """Back to the last checkpoint (weights, Adam, average, step) at half the LR, on other
        batches than the ones that led here; returns the step it diverged at."""
        state = load_checkpoint(self.path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema:
            self.ema = WeightAverage(self.model, self.cfg.ema, state["ema"], int(state.get("ema_start", 0)))
        diverged_at, self.step, self.lr_backoff = self.step, state["step"], self.lr_backoff / 2
        self.gen.manual_seed(self.cfg.seed * 1000 + self.world.rank + 1 + 7919 * self.step + int(1 / self.lr_backoff))
        return diverged_at

    def restore_weights(self) -> None:
        """The last checkpoint's weights and step (a run that diverged after it ends there)."""
        if self.path.exists():
            state = load_checkpoint(self.path)
            self.model.load_state_dict(state["model"])
            self.step = state["step"]
