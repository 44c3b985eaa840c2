"""A training run's configuration: ``TrainConfig``, the model presets, and the command line.

Every ``TrainConfig`` field is a ``python -m train`` flag of the same name (underscores as dashes);
checkpoints store the whole config, so ``--resume`` continues a run as it was started.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path

from codec.networks.config import ModelConfig

__all__ = ["TrainConfig", "PRESETS", "model_config", "parse_args"]


@dataclass(frozen=True)
class TrainConfig:
    data: str = ""  # folder of training images (searched recursively)
    run: str = "runs/default"  # checkpoint.pt, log.csv, weights/ go here
    minutes: float = 20.0  # wall-clock budget of this invocation
    steps: int = 0  # fixed total step count (deterministic runs, tests); 0: plan it from --minutes
    stop_at: int = 0  # stop with a checkpoint after this step (staged runs, tests); 0: never
    resume: bool = False
    init_from: str = ""  # no checkpoint yet: start from these shipped weights (their step, fresh Adam)
    campaign_minutes: float = 0.0  # plan total_steps over this many training minutes in all (resumes included)
    config: str = "default"  # model size: tiny | small | default
    model_id: str = ""  # override the preset's model id
    # data
    batch_size: int = 16  # per process
    patch: int = 256  # training crop, a multiple of 64
    bank_size: int = 256  # height of the stored crops (>= patch)
    bank_width: int = 0  # width of the stored crops (0: square); portrait images are transposed
    crops_per_image: int = 4  # at most this many stored crops per image (fewer for small images)
    downscale: float = 1.0  # < 1: each photo is first downscaled by a random factor in [downscale, 1]
    max_images: int = 0  # 0: all
    exclude: str = ""  # a text file of photo names (one per line) never trained on: the gate's set
    val_images: int = 8  # held out from training for the in-training evaluation
    # optimization
    optimizer: str = "adam"  # adam | soap (Adam in Shampoo's eigenbasis, Vyas et al. 2024)
    lr: float = 1e-4
    min_lr: float = 1e-5
    lr_tau: float = 0.0  # > 0: lr·(1 + t/τ)^-½ after warm-up (a slow decay over a campaign); 0: constant
    warmup_steps: int = 500
    decay_frac: float = 0.2  # the last fraction of the planned steps decays the LR (cosine)
    decay_from: int = 0  # > 0: the decay starts at this step instead (a campaign's last leg: its first step)
    grad_clip: float = 1.0
    slow_lr_scale: float = 1.0  # the LR of the --slow-params relative to --lr
    slow_params: str = "gain."  # comma-separated parameter-name prefixes trained at --slow-lr-scale
    frozen_params: str = ""  # comma-separated parameter-name prefixes not trained at all
    quality_sampling: str = "continuous"  # continuous (uniform in [1, 8]) | low (density falling to 0 at 8) | levels
    rate_proxy: str = "noise"  # what the rate sees: noise (y + U(-½, ½)) | ste (round(y), straight-through)
    noise_frac: float = 0.0  # first fraction of steps: g_s sees noisy latents instead of STE
    arithmetic: str = "float"  # the integer entropy path trains in float | fake (quantization-aware)
    qat_frac: float = 0.0  # the last fraction of the planned steps trains it quantization-aware
    ema: float = 0.0  # decay of an exponential moving average of the weights (0: off); export uses it
    # bookkeeping
    log_every: int = 50  # also where time-based decisions (stop, checkpoint, plan) are taken
    eval_every: int = 1000
    checkpoint_minutes: float = 5.0
    # divergence guard, judged over the steps since the last checkpoint: more non-finite steps
    # than max_skips, or a mean loss above diverge_factor x the previous window's, and the run
    # goes back to that checkpoint with half the LR instead of saving (campaign leg 3 diverged
    # at step ~22,550 and its only checkpoint was overwritten with the diverged weights)
    max_skips: int = 5
    diverge_factor: float = 2.0
    plan_seconds: float = 30.0  # measure the step rate this long (after warm-up steps) to plan
    reserve_seconds: float = 20.0  # kept back from --minutes for the last eval and checkpoint
    replan: bool = False  # re-plan the end from this invocation's budget until the decay starts
    eval_dir: str = ""  # python -m train: after the run, export and code these images for real (e.g. Kodak)
    eval_limit: int = 0  # at most this many images of eval_dir (0: all)
    # machine
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    compile: str = "auto"  # auto (on for CUDA) | on | off
    amp: str = "auto"  # auto (bf16 on CUDA and on CPUs with native bf16) | bf16 | off
    threads: int = 0  # torch CPU threads (0: torch's default)

    def __post_init__(self):
        if self.patch % 64 or self.patch < 64:
            raise ValueError("patch must be a positive multiple of 64")
        if min(self.bank_size, self.bank_width or self.bank_size) < self.patch:
            raise ValueError("bank_size and bank_width must be >= patch")
        if self.quality_sampling not in ("continuous", "low", "levels"):
            raise ValueError("quality_sampling must be continuous, low or levels")
        if self.rate_proxy not in ("noise", "ste"):
            raise ValueError("rate_proxy must be noise or ste")
        if self.optimizer not in ("adam", "soap"):
            raise ValueError("optimizer must be adam or soap")
        if not 0 < self.downscale <= 1:
            raise ValueError("downscale must be in (0, 1]")
        if self.config not in PRESETS:
            raise ValueError(f"config must be one of {sorted(PRESETS)}")
        if not 0 <= self.decay_frac <= 1 or not 0 <= self.noise_frac <= 1 or not 0 <= self.qat_frac <= 1:
            raise ValueError("decay_frac, noise_frac and qat_frac must be in [0, 1]")
        if self.arithmetic not in ("float", "fake"):
            raise ValueError("arithmetic must be float or fake")
        if not 0 <= self.ema < 1:
            raise ValueError("ema must be in [0, 1)")
        if self.amp not in ("auto", "bf16", "off") or self.compile not in ("auto", "on", "off"):
            raise ValueError("amp must be auto|bf16|off and compile auto|on|off")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError("device must be auto|cpu|cuda")
        if self.minutes <= 0 or self.campaign_minutes < 0 or self.lr <= 0 or self.batch_size < 1:
            raise ValueError("minutes, lr and batch_size must be positive, campaign_minutes >= 0")
        if self.lr_tau < 0:
            raise ValueError("lr_tau must be >= 0")


PRESETS = {
    "tiny": lambda: ModelConfig.tiny(),
    # The CPU placeholder: about a tenth of the default's work per pixel.
    "small": lambda: ModelConfig(model_id="lic-placeholder-cpu", N=64, M=96, Nz=48, hyper_channels=48,
                                 slices=(8, 8, 16, 64), param_width=48, lrp_width=32),
    # Between the two: the size the CPU campaign trains (the size's reasons: train/lab/log.md, "How the recipe was chosen").
    "medium": lambda: ModelConfig(model_id="lic-medium", N=128, M=192, Nz=128, hyper_channels=128,
                                  slices=(16, 16, 32, 128), param_width=128, lrp_width=64),
    "default": lambda: ModelConfig(),
}


def model_config(cfg: TrainConfig) -> ModelConfig:
    mc = PRESETS[cfg.config]()
    return dataclasses.replace(mc, model_id=cfg.model_id) if cfg.model_id else mc


def parse_args(argv=None) -> TrainConfig:
    """Every TrainConfig field is a --flag of the same name (underscores as dashes).

    With --resume, flags not given on the command line default to the checkpoint's values, so
    ``python -m train --data D --run R --resume`` continues the run as it was started.
    """
    p = argparse.ArgumentParser(prog="python -m train", description="Train a lic model (train/README.md).",
                                argument_default=argparse.SUPPRESS)
    for f in dataclasses.fields(TrainConfig):
        flags = ["--" + f.name.replace("_", "-")]
        if f.name == "run":  # torchrun's parser takes a bare --run for its own --run-path
            flags.append("--run-dir")
        if f.type in ("bool", bool):
            p.add_argument(*flags, action="store_true", dest=f.name)
        else:
            kind = {"int": int, "float": float, "str": str}[str(f.type)]
            p.add_argument(*flags, type=kind, dest=f.name, help=f"default {f.default!r}")
    given = vars(p.parse_args(argv))
    base = {}
    ckpt_path = Path(given.get("run", TrainConfig.run)) / "checkpoint.pt"
    if given.get("resume") and ckpt_path.exists():
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        from .checkpoint import load_checkpoint

        stored = load_checkpoint(ckpt_path)["train_config"]
        base = {k: v for k, v in stored.items() if k in names and k not in ("stop_at", "minutes")}
    return TrainConfig(**{**base, **given})
