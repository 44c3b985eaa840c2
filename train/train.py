"""Train a lic model: one file, read top to bottom (after nanoGPT's train.py).

    python -m train --data ../shared/data/train --run runs/a --minutes 20 [--config small]
    torchrun --nproc_per_node=K -m train --run-dir runs/a ...   (DistributedDataParallel; under
                                                               torchrun, --run is taken for --run-path)

Objective, per sample with quality q (Ballé et al. 2018; CompressAI's RateDistortionLoss):

    L = R + λ(q)·255²·D,   R = −Σ log2 p(ỹ) − Σ log2 p(z̃)  over all latents, divided by H·W (bpp)
                           D = mean over pixels and channels of (x̂ − x)²,  x in [0, 1]

q is drawn per sample *continuously* from U[1, 8] and λ(q) is interpolated geometrically between the
table's levels (``codec.config.lambda_for_quality``).  Why continuous: the gain units interpolate
exponentially between levels and the bitstream stores real qualities, so the model is used between
levels; training there costs nothing and spreads every table entry's gradient over its neighbours.
``--quality-sampling levels`` draws only the eight table levels instead.

Quantization (Minnen & Singh 2020, "mixed"): the rate uses the noisy proxy ỹ = y + U(−½, ½); the
slice networks and g_s see round(y − μ) + μ with a straight-through gradient (the model's ``ste``
flag).  ``--noise-frac f`` feeds g_s the noisy ỹ for the first fraction f of the steps and switches to
STE after (a cheap step towards the annealing of Agustsson & Theis 2020); the default 0 trains with
STE from the start, which is what CompressAI and TFC do (noise into g_s measured 60 % worse after 8
minutes on this CPU, train/README.md).

The integer entropy path (h_s, the slice networks) trains in float by default (``--arithmetic
float``: no rounding of its weights, activations, means or σ indexes, the clamps kept), which learns
faster than training under its fixed-point arithmetic from the first step; ``--qat-frac f`` turns
the fixed-point rounding on (straight-through) for the last fraction f of the planned steps, and
``--arithmetic fake`` for all of them (``codec.integer.Arithmetic``).

Speed: the training set is decoded once into a bank of fixed-size uint8 crops on the device; each step
draws random sub-crops, flips and qualities there (no DataLoader).  On CUDA g_a and g_s run under bf16
autocast; everything that feeds a likelihood (h_a, h_s, the slice networks) and the rate itself stay
in fp32.  ``torch.compile`` is on by default on CUDA.

Checkpoints (``RUN_DIR/checkpoint.pt``) hold plain state dicts, numbers, strings and tensors only, no
pickled classes of ours, so they load with ``torch.load(weights_only=True)`` on another machine, another
Python or another torch.  The LR schedule is in steps; in time-budgeted runs the total step count is
planned once from the measured step rate and stored, so a resumed run finishes the same schedule.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn

from codec.config import QUALITY_LAMBDAS, ModelConfig, lambda_for_quality
from codec.precision import cpu_has_native_bf16
from codec.integer import Arithmetic
from codec.metrics import psnr_from_mse
from codec.model import LicModel

from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .data import build_bank, build_bank_center, get_batch, list_images, sample_quality, split_heldout
from .schedule import decay_start, get_lr

__all__ = ["TrainConfig", "PRESETS", "model_config", "parse_args", "RateDistortion", "evaluate", "train", "main"]

# -----------------------------------------------------------------------------------------------
# Configuration


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
    max_images: int = 0  # 0: all
    exclude: str = ""  # a text file of photo names (one per line) never trained on: the gate's set
    val_images: int = 8  # held out from training for the in-training evaluation
    # optimization
    lr: float = 1e-4
    min_lr: float = 1e-5
    lr_tau: float = 0.0  # > 0: lr·(1 + t/τ)^-½ after warm-up (a slow decay over a campaign); 0: constant
    warmup_steps: int = 500
    decay_frac: float = 0.2  # the last fraction of the planned steps decays the LR (cosine)
    grad_clip: float = 1.0
    slow_lr_scale: float = 1.0  # the LR of the --slow-params relative to --lr
    slow_params: str = "gain."  # comma-separated parameter-name prefixes trained at --slow-lr-scale
    frozen_params: str = ""  # comma-separated parameter-name prefixes not trained at all
    quality_sampling: str = "continuous"  # continuous | levels
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
    eval_dir: str = ""  # evaluate real coding on these images at the end (e.g. Kodak)
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
        if self.quality_sampling not in ("continuous", "levels"):
            raise ValueError("quality_sampling must be continuous or levels")
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
    # Between the two: the size the CPU campaign trains (train/README.md, "Choosing the size").
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
    p = argparse.ArgumentParser(prog="python -m train", description=__doc__.split("\n\n")[0],
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
        stored = load_checkpoint(ckpt_path)["train_config"]
        base = {k: v for k, v in stored.items() if k in names and k not in ("stop_at", "minutes")}
    return TrainConfig(**{**base, **given})


# -----------------------------------------------------------------------------------------------
# The objective


class RateDistortion(nn.Module):
    """Per-sample bpp and MSE of ``model`` on a batch: the training face of ``LicModel.forward``.

    ``amp_dtype`` (bf16 on CUDA) autocasts the float transforms g_a and g_s only; the entropy
    path (h_a, h_s, slices) and the rate stay in fp32.  ``arithmetic``: how the integer entropy
    path trains (``codec.integer.Arithmetic``: FAKE quantization or FLOAT).
    """

    def __init__(self, model: LicModel, amp_dtype: torch.dtype | None = None,
                 arithmetic: Arithmetic = Arithmetic.FAKE):
        super().__init__()
        self.model = model
        self.amp_dtype = amp_dtype
        self.arithmetic = arithmetic

    def forward(self, x: torch.Tensor, quality: torch.Tensor, ste: bool = True):
        h, w = x.shape[-2:]
        x_hat, y_lik, z_lik = self.model(x, quality, ste=ste, amp_dtype=self.amp_dtype, arithmetic=self.arithmetic)
        # Rate in bits per pixel, per sample: −Σ log2 p over every latent of y and z.
        bits = -(torch.log2(y_lik).sum((1, 2, 3)) + torch.log2(z_lik).sum((1, 2, 3)))
        bpp = bits / (h * w)
        mse = (x_hat - x).pow(2).mean((1, 2, 3))  # on [0, 1]; ×255² for the 8-bit scale
        return bpp, mse, x_hat


# -----------------------------------------------------------------------------------------------
# Evaluation (held-out crops, training face: estimated bpp, PSNR of the clamped x̂)


@torch.no_grad()
def evaluate(rd: RateDistortion, images: torch.Tensor, batch: int = 8) -> dict[str, float]:
    """Per quality level: mean estimated bpp and PSNR over ``images``.  RNG-neutral (the noise it
    draws does not shift the training run's random stream)."""
    model = rd.model
    was_training = model.training
    model.eval()
    cpu_state = torch.get_rng_state()
    cuda_state = torch.cuda.get_rng_state(images.device) if images.device.type == "cuda" else None
    torch.manual_seed(1234)
    out = {}
    for level in range(1, len(QUALITY_LAMBDAS) + 1):
        bpps, psnrs = [], []
        for i in range(0, len(images), batch):
            x = images[i : i + batch].float() / 255
            x = x.contiguous(memory_format=torch.channels_last)
            q = torch.full((len(x),), float(level), device=x.device)
            bpp, _, x_hat = rd(x, q)
            mse = (x_hat.clamp(0, 1) - x).pow(2).mean((1, 2, 3))
            bpps.append(bpp)
            psnrs.append(psnr_from_mse(mse.clamp_min(1e-10), peak=1.0))
        out[f"bpp_q{level}"] = torch.cat(bpps).mean().item()
        out[f"psnr_q{level}"] = torch.cat(psnrs).mean().item()
    torch.set_rng_state(cpu_state)
    if cuda_state is not None:
        torch.cuda.set_rng_state(cuda_state, images.device)
    model.train(was_training)
    return out


# -----------------------------------------------------------------------------------------------
# The run


def _setup(cfg: TrainConfig):
    """Device, distributed world, rank.  Under torchrun RANK/WORLD_SIZE/LOCAL_RANK are set."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    want_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda", local) if want_cuda else torch.device("cpu")
    if want_cuda:
        torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group("nccl" if want_cuda else "gloo")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    return device, rank, world


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


def _broadcast(values: list[float], device: torch.device, world: int) -> list[float]:
    """Rank 0's decisions (stop, checkpoint, planned steps) for every rank."""
    if world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.broadcast(t, 0)
    return t.tolist()


LOG_FIELDS = ["step", "seconds", "loss", "bpp", "psnr", "lr", "images_per_s", "skipped"] + [
    f"{k}_q{q}" for q in range(1, len(QUALITY_LAMBDAS) + 1) for k in ("psnr", "bpp")]


def _diverged(window: dict, cfg: TrainConfig) -> bool:
    """Whether the steps since the last checkpoint look like divergence (see ``max_skips``)."""
    if window["skipped"] > cfg.max_skips:
        return True
    if window["count"] == 0:
        return window["skipped"] > 0
    mean, last = window["loss"] / window["count"], window["last_loss"]
    return last is not None and mean > cfg.diverge_factor * last


def _nonfinite_report(model: torch.nn.Module, bpp: torch.Tensor, mse: torch.Tensor, q: torch.Tensor) -> str:
    """Which samples (and their qualities) and which parameters' gradients went non-finite: the
    divergences of campaign legs 3 and 4 have no known cause yet, and this is where to start."""
    bad = ~(torch.isfinite(bpp.detach()) & torch.isfinite(mse.detach()))
    grads = [name for name, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    return (f"{int(bad.sum())} of {bad.numel()} samples non-finite (q {[round(float(v), 2) for v in q[bad]]}), "
            f"largest finite bpp {float(bpp.detach().nan_to_num(nan=0.0, posinf=0.0).max()):.3g}; non-finite "
            f"gradients in {len(grads)} tensors: {', '.join(grads[:4])}")


def _reset_window(window: dict, keep_loss: bool) -> None:
    """Start a new window; the closed window's mean loss is the next one's reference."""
    if not keep_loss and window["count"]:
        window["last_loss"] = window["loss"] / window["count"]
    window.update(skipped=0, loss=0.0, count=0)


def train(cfg: TrainConfig) -> dict:
    """Run (or continue) a training run; returns a summary.  See the module docstring."""
    t_start = time.time()
    device, rank, world = _setup(cfg)
    master = rank == 0
    run_dir = Path(cfg.run)
    ckpt_path = run_dir / "checkpoint.pt"
    if master:
        run_dir.mkdir(parents=True, exist_ok=True)
    say = (lambda *a: print(*a, flush=True)) if master else (lambda *a: None)
    cuda = device.type == "cuda"
    if cuda:  # TF32 for the fp32 parts: the integer path is fake-quantized in training anyway
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True

    ckpt = load_checkpoint(ckpt_path) if cfg.resume and ckpt_path.exists() else None
    if cfg.resume and ckpt is None:
        say(f"no checkpoint in {run_dir}: starting fresh")
    mcfg = ModelConfig(**ckpt["model_config"]) if ckpt else model_config(cfg)

    # -- data: decoded once; val_images random files are held out for evaluation -----------------
    files = list_images(cfg.data)
    if cfg.exclude:
        excluded = set(Path(cfg.exclude).read_text().split())
        files = [f for f in files if f.name not in excluded]
    if cfg.max_images:
        files = files[: cfg.max_images]
    val_files, train_files = split_heldout(files, cfg.val_images, cfg.seed)
    t0 = time.time()
    bank = build_bank(train_files, cfg.bank_size, cfg.crops_per_image, cfg.seed, cfg.bank_width).to(device)
    val_images = build_bank_center(val_files, cfg.patch).to(device) if val_files else None
    say(f"data: {len(train_files)} images -> {len(bank)} crops {bank.shape[2]}x{bank.shape[3]} "
        f"({bank.numel() / 2**20:.0f} MiB), {len(val_files)} held out, {time.time() - t0:.1f} s")

    # -- model, optimizer, RNG ----------------------------------------------------------------
    torch.manual_seed(cfg.seed)
    model = LicModel(mcfg).to(device)  # the same init on every rank (DDP also broadcasts rank 0's)
    torch.manual_seed(cfg.seed + rank)  # the model's quantization noise: its own stream per rank
    if ckpt:
        model.load_state_dict(ckpt["model"])
    model = model.to(memory_format=torch.channels_last)
    amp = cfg.amp == "bf16" or (cfg.amp == "auto" and (cuda or cpu_has_native_bf16()))
    rd = RateDistortion(model, torch.bfloat16 if amp else None)
    # Adam moves every weight by ~lr per step whatever its gradient, so a weight's effective step is
    # set by what it multiplies: the gain units scale whole latent channels, and h_a's first layer
    # sees the gained latents (up to ±200), where a step of lr moves z by about a quantization bin.
    # Both get a smaller share of the LR (--slow-params, --slow-lr-scale; train/README.md).
    # Frozen parameters (--frozen-params) are left out of the optimizer altogether (train/README.md,
    # issue 30: g_a's gradient at the shipped weights points uphill on the coded loss).
    slow_prefixes = tuple(p for p in cfg.slow_params.split(",") if p)
    frozen_prefixes = tuple(p for p in cfg.frozen_params.split(",") if p)
    trained = [(n, p) for n, p in model.named_parameters() if not n.startswith(frozen_prefixes)]
    for n, p in model.named_parameters():
        p.requires_grad_(not n.startswith(frozen_prefixes))
    slow = [p for n, p in trained if n.startswith(slow_prefixes)]
    rest = [p for n, p in trained if not n.startswith(slow_prefixes)]
    optimizer = torch.optim.Adam([{"params": rest, "lr_scale": 1.0},
                                  {"params": slow, "lr_scale": cfg.slow_lr_scale}], lr=cfg.lr)
    if ckpt:
        optimizer.load_state_dict(ckpt["optimizer"])
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg.seed * 1000 + rank + 1)  # per-rank data stream
    step, total_steps, train_seconds = 0, (cfg.steps or None), 0.0
    ema_state = ckpt.get("ema") if ckpt else None
    if not ckpt and cfg.init_from:  # the campaign on a fresh machine: the committed weights
        from codec.weights import load_metadata, load_model

        model.load_state_dict(load_model(cfg.init_from).state_dict())
        meta = load_metadata(cfg.init_from)
        step, train_seconds = int(meta.get("steps", 0)), float(meta.get("train_seconds", 0.0))
        if not cfg.steps and meta.get("total_steps", "None") != "None":  # the campaign's planned schedule
            total_steps = int(meta["total_steps"])
        say(f"initialised from {cfg.init_from} (step {step}, {train_seconds / 60:.0f} min trained; fresh optimizer)")
    if ckpt:
        step, train_seconds = ckpt["step"], ckpt["train_seconds"]
        total_steps = ckpt["total_steps"] or total_steps
        if cfg.replan and total_steps and step < decay_start(total_steps, cfg.warmup_steps, cfg.decay_frac):
            total_steps = None  # plan the end again, from this invocation's budget
        states = ckpt["rng"]
        if len(states) == world:  # same world size: continue every stream exactly
            set_rng_state(states[rank], gen, device)
        else:  # another world size: fresh, but distinct, streams
            torch.manual_seed(cfg.seed + rank + 7919 * step)
            gen.manual_seed(cfg.seed * 1000 + rank + 1 + 7919 * step)
    # A fresh Adam's first updates are ±lr on every weight whatever its gradient: warm it up again
    # from wherever it starts (the campaign's fresh-optimizer legs diverged within ~300 steps without).
    rewarm_from = step if step and not optimizer.state else None
    ema_start = int(ckpt.get("ema_start", 0)) if ckpt else step
    ema = WeightAverage(model, cfg.ema, ema_state, ema_start) if cfg.ema else None
    lr_backoff = float(ckpt.get("lr_backoff", 1.0)) if ckpt else 1.0  # halved at each rollback
    n_params = sum(p.numel() for p in model.parameters())
    say(f"model {mcfg.model_id}: {n_params / 1e6:.2f} M parameters; device {device}, world {world}, "
        f"amp {'bf16' if amp else 'off'}; step {step}, total {total_steps}")

    use_compile = cfg.compile == "on" or (cfg.compile == "auto" and cuda)

    def wrap(module: nn.Module) -> nn.Module:
        if world == 1:
            return module
        # Buffers are constants here (σ table, tanh table, coding tables built at export): no
        # per-step broadcast; gloo cannot broadcast the int16 tanh table at all, so skip those.
        ignore = [n for n, b in module.named_buffers() if b.dtype == torch.int16]
        nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, ignore)
        return nn.parallel.DistributedDataParallel(
            module, device_ids=[device.index] if cuda else None, broadcast_buffers=False)

    step_fn = wrap(torch.compile(rd) if use_compile else rd)
    compile_checked = not use_compile

    # -- bookkeeping --------------------------------------------------------------------------
    log_path = run_dir / "log.csv"
    if master and not log_path.exists():
        with open(log_path, "w", newline="") as f:
            csv.writer(f).writerow(LOG_FIELDS)

    def log(row: dict) -> None:
        with open(log_path, "a", newline="") as f:
            csv.DictWriter(f, LOG_FIELDS).writerow({k: row.get(k, "") for k in LOG_FIELDS})

    def checkpoint() -> None:
        states = [rng_state(gen, device)]
        if world > 1:
            states = [None] * world
            dist.all_gather_object(states, rng_state(gen, device))
            states = [{k: (v.cpu() if torch.is_tensor(v) else v) for k, v in s.items()} for s in states]
        if master:
            save_checkpoint(
                ckpt_path, model=model.state_dict(), optimizer=optimizer.state_dict(), step=step,
                ema=ema.state if ema else None, ema_start=ema.start if ema else 0,
                total_steps=total_steps, train_seconds=train_seconds + (time.time() - t_loop),
                model_config=dataclasses.asdict(mcfg), train_config=dataclasses.asdict(cfg),
                rng=states, torch_version=str(torch.__version__), lr_backoff=lr_backoff,
            )

    deadline = t_start + 60 * cfg.minutes - cfg.reserve_seconds
    plan_from = None  # (step, time) where the step-rate measurement began
    plan_after = step + min(20, max(1, cfg.warmup_steps // 4))  # skip compilation and cold caches
    last_ckpt = time.time()
    stop_at = cfg.stop_at or None
    acc = torch.zeros(4, device=device)  # loss, bpp, psnr, count since the last log
    skipped = 0  # steps skipped for a non-finite loss or gradient
    window = {"skipped": 0, "loss": 0.0, "count": 0, "last_loss": None}  # since the last checkpoint
    t_loop = t_log = time.time()
    step_log = step
    if ckpt is None:  # so that the divergence guard always has a healthy state to go back to
        checkpoint()
    summary = {}

    # -- the loop -----------------------------------------------------------------------------
    model.train()
    while True:
        done = total_steps is not None and step >= total_steps
        if done or (stop_at is not None and step >= stop_at):
            break

        # LR for this step; the first noise_frac of the plan feeds g_s noisy latents
        lr = get_lr(step, total_steps, lr=cfg.lr, min_lr=cfg.min_lr, warmup_steps=cfg.warmup_steps,
                    decay_frac=cfg.decay_frac, lr_tau=cfg.lr_tau)
        if rewarm_from is not None:
            lr *= min(1.0, (step - rewarm_from + 1) / cfg.warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr * lr_backoff * group["lr_scale"]
        ste = not (cfg.noise_frac and total_steps and step < cfg.noise_frac * total_steps)
        qat = cfg.arithmetic == "fake" or bool(total_steps and step >= (1 - cfg.qat_frac) * total_steps)
        rd.arithmetic = Arithmetic.FAKE if qat else Arithmetic.FLOAT

        # a batch: random crops and flips of the bank, per-sample qualities and their λ
        x = get_batch(bank, cfg.batch_size, cfg.patch, gen).contiguous(memory_format=torch.channels_last)
        q = sample_quality(cfg.batch_size, cfg.quality_sampling, gen, device)
        lam = lambda_for_quality(q)

        # forward, R + λ·255²·D, backward, clip, step
        optimizer.zero_grad(set_to_none=True)
        try:
            bpp, mse, _ = step_fn(x, q, ste)
            loss = (bpp + lam * 255**2 * mse).mean()
            loss.backward()
        except Exception as e:  # a torch.compile failure on another torch: go on in eager mode
            if compile_checked:
                raise
            say(f"torch.compile failed, continuing without it: {type(e).__name__}: {str(e)[:300]}")
            step_fn = wrap(rd)
            optimizer.zero_grad(set_to_none=True)
            bpp, mse, _ = step_fn(x, q, ste)
            loss = (bpp + lam * 255**2 * mse).mean()
            loss.backward()
        compile_checked = True
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        # One non-finite gradient would turn every weight into NaN through the clip's scale and
        # Adam's moments: skip that step (counted in the log) instead of ending the run.
        finite = bool(torch.isfinite(grad_norm)) and bool(torch.isfinite(loss))
        if finite:
            optimizer.step()
            if ema:
                ema.update(step)
            window["loss"] += float(loss.detach())
            window["count"] += 1
        else:
            skipped += 1
            window["skipped"] += 1
            if skipped <= cfg.max_skips:  # enough to tell where it starts, without flooding the log
                say(f"non-finite step {step}: {_nonfinite_report(model, bpp, mse, q)}")
        step += 1
        if finite:
            with torch.no_grad():
                psnr = psnr_from_mse(mse.detach().clamp_min(1e-10), peak=1.0).mean()
                acc += torch.stack([loss.detach(), bpp.detach().mean(), psnr, torch.ones((), device=device)])

        # every log_every steps: log, and rank 0 takes the time-based decisions for all ranks
        at_eval = cfg.eval_every and step % cfg.eval_every == 0
        if step % cfg.log_every == 0 or at_eval or step == total_steps or step == stop_at:
            now = time.time()
            ips = (step - step_log) * cfg.batch_size * world / max(1e-9, now - t_log)
            a = (acc / acc[3].clamp_min(1)).tolist()
            acc.zero_()
            row = {"step": step, "seconds": round(train_seconds + now - t_loop, 1), "skipped": skipped,
                   "loss": f"{a[0]:.4f}",
                   "bpp": f"{a[1]:.4f}", "psnr": f"{a[2]:.3f}", "lr": f"{lr * lr_backoff:.3g}",
                   "images_per_s": f"{ips:.1f}"}
            if at_eval and master and val_images is not None:
                row.update({k: f"{v:.4f}" for k, v in evaluate(rd, val_images).items()})
            if master:
                log(row)
                say(" ".join(f"{k} {v}" for k, v in row.items() if k in LOG_FIELDS[:8])
                    + (f" | eval psnr q1 {row['psnr_q1']} q8 {row['psnr_q8']}" if "psnr_q1" in row else ""))
            t_log, step_log = time.time(), step
            # plan total_steps from the measured rate (time-budgeted runs only)
            # (--replan: again over each plan_seconds window, until the decay begins)
            planned = total_steps or 0
            may_plan = total_steps is None or (
                cfg.replan and not cfg.steps and step < decay_start(total_steps, cfg.warmup_steps, cfg.decay_frac))
            if may_plan and master:
                if plan_from is None:
                    if step >= plan_after:
                        plan_from = (step, now)
                elif now - plan_from[1] >= cfg.plan_seconds:
                    rate = (step - plan_from[0]) / (now - plan_from[1])
                    if cfg.campaign_minutes:  # the whole campaign's remaining training time
                        left = 60 * cfg.campaign_minutes - (train_seconds + now - t_loop)
                    else:
                        left = deadline - now
                    planned = step + int(rate * max(0.0, left))
                    say(f"planned {planned} steps ({rate:.2f} steps/s over {now - plan_from[1]:.0f} s)")
                    plan_from = (step, now) if cfg.replan else plan_from
            stop = now >= deadline
            save = now - last_ckpt >= 60 * cfg.checkpoint_minutes
            diverged = save and _diverged(window, cfg)
            stop, save, planned, diverged = _broadcast(
                [float(stop), float(save), float(planned), float(diverged)], device, world)
            if planned:
                total_steps = int(planned)
            if diverged and not ckpt_path.exists():  # nothing to go back to; never save this
                say(f"diverging at step {step} with no checkpoint to go back to")
                _reset_window(window, keep_loss=True)
            elif diverged:
                # Back to the last healthy checkpoint (weights, Adam, average, step), at half the LR,
                # on other batches than the ones that led here.
                state = load_checkpoint(ckpt_path)
                model.load_state_dict(state["model"])
                optimizer.load_state_dict(state["optimizer"])
                if ema:
                    ema = WeightAverage(model, cfg.ema, state["ema"], int(state.get("ema_start", 0)))
                say(f"diverged at step {step} ({window['skipped']} non-finite steps, mean loss "
                    f"{window['loss'] / max(1, window['count']):.3f}): back to step {state['step']}, LR x{lr_backoff / 2:g}")
                step, lr_backoff = state["step"], lr_backoff / 2
                step_log = step  # the rate of the next log line counts from here
                gen.manual_seed(cfg.seed * 1000 + rank + 1 + 7919 * step + int(1 / lr_backoff))
                _reset_window(window, keep_loss=True)
                last_ckpt = time.time()
            elif save:
                checkpoint()
                _reset_window(window, keep_loss=False)
                last_ckpt = time.time()
            if stop:
                say(f"time budget reached at step {step}")
                break

    # -- end: checkpoint (unless it diverged since the last one), final evaluation, real coding ---
    if _diverged(window, cfg):
        say(f"diverged since the last checkpoint ({window['skipped']} non-finite steps): not saving")
        if ckpt_path.exists():
            state = load_checkpoint(ckpt_path)
            model.load_state_dict(state["model"])
            step = state["step"]
    else:
        checkpoint()
    if master:
        summary = {"step": step, "total_steps": total_steps,
                   "train_seconds": train_seconds + time.time() - t_loop}
        if val_images is not None:
            summary.update(evaluate(rd, val_images))
            say("held-out: " + " ".join(f"q{q} {summary[f'bpp_q{q}']:.3f} bpp {summary[f'psnr_q{q}']:.2f} dB"
                                        for q in range(1, len(QUALITY_LAMBDAS) + 1)))
        if cfg.eval_dir and not (stop_at and step >= stop_at):  # the run's end, not a staged stop
            from .evaluate import evaluate_weights
            from .export import export

            weights = run_dir / "weights"
            export(run_dir, weights)
            results = evaluate_weights(weights, cfg.eval_dir, limit=cfg.eval_limit,
                                       out=weights / f"{mcfg.model_id}-{Path(cfg.eval_dir).name}.json")
            say(f"real coding: {results['results']}")
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return summary


def main(argv=None) -> None:
    """``python -m train``: a bad flag, configuration or data folder is one line and exit status 2."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        cfg = parse_args(argv)
        if not cfg.data:
            raise ValueError("--data is required")
        list_images(cfg.data)  # before any work: a missing folder, no images, Kodak
        if cfg.init_from and not Path(cfg.init_from).exists():
            raise FileNotFoundError(f"--init-from {cfg.init_from}: no such weights")
        if cfg.exclude and not Path(cfg.exclude).is_file():
            raise FileNotFoundError(f"--exclude {cfg.exclude}: no such list of photos")
    except (ValueError, FileNotFoundError) as e:
        print(f"train: error: {e}", file=sys.stderr)
        sys.exit(2)
    train(cfg)
