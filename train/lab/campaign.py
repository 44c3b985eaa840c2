"""The training campaign: one model trained on this 2-core CPU over many sessions.

    python -m train.lab.campaign leg --minutes 130     # start of a session: the next leg, in the background
    python -m train.lab.campaign finish                # end of a session: export, Kodak, benchmarks, log
    python -m train.lab.campaign plot                  # redraw train/lab/campaign.png from train/lab/campaign.csv
    python -m train.lab.campaign fit                   # BD-rate against CPU hours: the trend, and where it meets the targets

``CAMPAIGN`` below is the whole recipe (its reasons in train/README.md, the comparisons in train/lab/log.md); every leg
runs it unchanged.  One learning-rate schedule spans the campaign: ``campaign_minutes`` of training
in all, planned into a step count once from the measured step rate and stored with the weights, so
any later leg, on this machine or a fresh one, continues the same schedule.

A leg resumes from ``runs/campaign/checkpoint.pt`` when this machine still has it (optimizer state
and all), else from the weights committed in ``codec/weights`` (their step count, a fresh optimizer).
``finish`` exports the run's weight average and ships it into ``codec/weights`` only if it beats the
shipped weights both on the gate (``train/lab/gate.py``: 24 held-out full-size photos, real files) and on the
24 Kodak images; a shipped leg gets its default quality, ``benchmarks/results`` (effort 0 and the
``--effort`` curves) and golden file regenerated.  Every leg, shipped or not, appends a row to
``train/lab/campaign.csv``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from ..config import TrainConfig, model_config
from ..train import train

from .paths import CAMPAIGN_LOG as LOG, DATA, GATE_LIST, KODAK, ROOT, RUN, WEIGHTS

PLOT = LOG.with_suffix(".png")
ANCHORS = ("jpeg", "webp", "hevc444")  # BD-rate columns of the log
# bd_*: Kodak BD-rate (%) against each anchor; bd_gate / bd_kodak: against the weights shipped before the
# leg, on the gate's photos and on Kodak; a leg ships only when both are negative.
LOG_FIELDS = ["date", "steps", "images_seen", "cpu_minutes", "model", "bd_jpeg", "bd_webp", "bd_hevc444",
              "psnr_q8", "bd_gate", "bd_kodak", "shipped"]


# The recipe, decided by the comparisons in train/lab/log.md; every leg runs it unchanged.
CAMPAIGN = TrainConfig(
    data=str(DATA), run=str(RUN), config="medium", resume=True, init_from=str(WEIGHTS),
    campaign_minutes=1400.0,  # about 10 sessions of 140 training minutes: one LR schedule over all
    exclude=str(GATE_LIST),  # the gate's photos (gate.py)
    batch_size=8, patch=256, bank_size=256, crops_per_image=4, val_images=8,
    optimizer="soap", lr=6.5e-5, lr_tau=8000, min_lr=1e-6, warmup_steps=100, decay_frac=0.2, grad_clip=1.0,
    slow_params="gain.,hyper.h_a.", slow_lr_scale=0.05, frozen_params="g_a.",
    arithmetic="float", qat_frac=0.05, ema=0.999,
    log_every=100, eval_every=2000, checkpoint_minutes=5.0, threads=2, compile="on", diverge_factor=1.25,
)


# A final leg ends the campaign's schedule with this leg: the end is re-planned to fall at its
# budget's end (minus evaluation and checkpoint time), the decay starts at the leg's first step, so
# that it spans the whole leg whatever the campaign's length, and the peak LR is scaled so that the
# leg starts at FINAL_LR.  Why (train/lab/log.md, legs 5 and 6): at this stage's ~4.5e-5 the weights
# drift away from the shipped average (+8.6 % bits on held-out crops within 2,500 steps), so the
# decay starts lower.
FINAL_BUDGET_SHARE = 0.9
FINAL_LR = 1e-5


def progress() -> tuple[int, float]:
    """(steps, CPU minutes) the campaign has trained so far: the run's checkpoint, else the shipped weights."""
    from codec.weights import load_metadata

    if (RUN / "checkpoint.pt").exists():
        from ..checkpoint import load_checkpoint

        ckpt = load_checkpoint(RUN / "checkpoint.pt")
        return ckpt["step"], ckpt["train_seconds"] / 60
    meta = load_metadata(WEIGHTS)
    return int(meta.get("steps", 0)), float(meta.get("train_seconds", 0.0)) / 60


def final_leg(cfg: TrainConfig, step: int, trained: float) -> TrainConfig:
    """``cfg`` (a leg of ``cfg.minutes``) as the campaign's last, ``step`` steps and ``trained`` CPU
    minutes in: the schedule's end re-planned to this leg's end, its decay spanning the leg from
    FINAL_LR (the slow decay lr·(1 + t/τ)^−½ rescaled to pass through it at ``step``) to ``min_lr``."""
    lr = FINAL_LR * math.sqrt(1 + max(0, step - cfg.warmup_steps) / cfg.lr_tau) if cfg.lr_tau else FINAL_LR
    return replace(cfg, replan=True, decay_from=max(step, cfg.warmup_steps), lr=lr,
                   campaign_minutes=trained + FINAL_BUDGET_SHARE * cfg.minutes)


AUTOGROUP = Path("/proc/sys/kernel/sched_autogroup_enabled")


def autogroup_warning() -> str | None:
    """Linux's autogroup scheduling shares the CPU equally between sessions whatever their nice
    values, so a leg at nice 5 loses half the machine to any test run from another shell; say so."""
    try:
        on = AUTOGROUP.read_text().strip() == "1"
    except OSError:
        return None
    return (f"campaign: warning: autogroup scheduling is on, so nice does not protect this leg from other "
            f"sessions' work; as root: echo 0 > {AUTOGROUP}") if on else None


def leg(minutes: float, final: bool = False) -> None:
    from codec.weights import load_metadata

    warning = autogroup_warning()
    if warning:
        print(warning, flush=True)
    cfg = replace(CAMPAIGN, minutes=minutes)
    if final:
        cfg = final_leg(cfg, *progress())
    if not (RUN / "checkpoint.pt").exists():
        # The committed weights continue the campaign only if they are the campaign's model.
        shipped = json.loads(load_metadata(WEIGHTS)["config"])["model_id"]
        if shipped != model_config(cfg).model_id:
            print(f"campaign: shipped weights are {shipped}, not {model_config(cfg).model_id}: "
                  "starting the campaign from scratch", flush=True)
            cfg = replace(cfg, init_from="")
    train(cfg)


def _bd_rates(lic: dict) -> dict[str, float | None]:
    """BD-rate (%) of an RD curve ({"bpp": [...], "psnr-rgb": [...]}) against each anchor's Kodak curve."""
    from benchmarks.bd import bd_rate

    out = {}
    for name in ANCHORS:
        anchor = json.loads((ROOT / "benchmarks" / "results" / f"{name}.json").read_text())["results"]
        try:
            out[name] = bd_rate(anchor["bpp"], anchor["psnr-rgb"], lic["bpp"], lic["psnr-rgb"])
        except ValueError:  # the curves do not overlap
            out[name] = None
    return out


def _run(*args: str) -> None:
    print("$", " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True)


def default_quality(weights: Path, images: Path, target_bpp: float = 0.5) -> tuple[float, float]:
    """The stored quality whose mean bpp over ``images`` (real files) is closest to ``target_bpp``
    (``codec.target.closest_quality``: rate grows with quality); returns (quality, mean bpp).  What
    ``lic encode`` uses when no quality is given."""
    import functools

    import numpy as np
    from PIL import Image

    from codec.coding import encode_rgb
    from codec.target import closest_quality
    from codec.weights import fingerprint, load_model

    model = load_model(weights)
    digest = fingerprint(model)
    rgbs = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(images.glob("*.png"))]

    @functools.lru_cache(maxsize=None)
    def mean_bpp(q: float) -> float:
        bpp = float(np.mean([8 * len(encode_rgb(model, rgb, q, model_hash=digest)) / (rgb.shape[0] * rgb.shape[1])
                             for rgb in rgbs]))
        print(f"default quality: q {q:.5f} -> {bpp:.4f} bpp", flush=True)
        return bpp

    best = closest_quality(mean_bpp, target_bpp)
    return best, mean_bpp(best)


# The --effort curves re-measured with every shipped model (issue 12): the encoder's gain depends on
# the weights.  Five qualities and two 1-thread workers: about 80 minutes on 2 cores, most of it effort 2.
EFFORT_SWEEP = ("--codecs", "lic", "--effort", "1,2", "--lic-qualities", "1,2,4,6,8", "--repeats", "1",
                "--warmup", "0", "--jobs", "2", "--threads", "1")


def finish(efforts: bool = True, run: Path = RUN) -> bool:
    """Export the weight average of ``run`` (the campaign's, or a recipe arm's), gate it, and ship it
    only if it beats the shipped weights on both the gate and Kodak (real files); a row goes to
    ``campaign.csv`` either way.  Returns shipped."""
    import shutil

    from codec.weights import load_metadata, set_metadata

    from benchmarks.bd import bd_rate

    from ..evaluate import evaluate_weights
    from ..export import export
    from .gate import gate

    candidate = run / "weights"
    export(run, candidate, replace=True)
    meta = load_metadata(candidate)
    model_id = json.loads(meta["config"])["model_id"]
    kodak_json = f"{model_id}-kodak.json"
    bd_gate = gate(candidate, WEIGHTS)
    kodak = evaluate_weights(candidate, KODAK, out=candidate / kodak_json)["results"]
    shipped_kodak = json.loads((WEIGHTS / kodak_json).read_text())["results"]
    bd_kodak = bd_rate(shipped_kodak["bpp"], shipped_kodak["psnr-rgb"], kodak["bpp"], kodak["psnr-rgb"])
    ship = bd_gate < 0 and bd_kodak < 0
    print(f"campaign: gate {bd_gate:+.2f} %, Kodak {bd_kodak:+.2f} % against the shipped weights: "
          f"{'shipping' if ship else 'not shipped'}", flush=True)
    if ship:
        for old in [*WEIGHTS.glob("*.safetensors"), *WEIGHTS.glob("*.onnx")]:
            old.unlink()
        for file in candidate.iterdir():
            shutil.copy2(file, WEIGHTS / file.name)
        quality, bpp = default_quality(WEIGHTS, KODAK)
        set_metadata(WEIGHTS, default_quality=quality, default_quality_kodak_bpp=round(bpp, 4))
        _run("-m", "benchmarks", "--codecs", "lic", "--lic-fine", "--threads", "2", "--repeats", "1", "--warmup", "0")
        if efforts:
            _run("-m", "benchmarks", *EFFORT_SWEEP)
        _run("tests/data/make_golden.py")  # the golden file pins the shipped model's exact entropy path
        kodak = json.loads((ROOT / "benchmarks" / "results" / "lic.json").read_text())["results"]
    bd = _bd_rates(kodak)
    row = {
        "date": datetime.date.today().isoformat(), "steps": meta["steps"], "images_seen": meta["images_seen"],
        "cpu_minutes": round(float(meta["train_seconds"]) / 60, 1), "model": model_id,
        **{f"bd_{k}": ("" if v is None else f"{v:.2f}") for k, v in bd.items()},
        "psnr_q8": f"{kodak['psnr-rgb'][-1]:.2f}", "bd_gate": f"{bd_gate:.2f}", "bd_kodak": f"{bd_kodak:.2f}",
        "shipped": "yes" if ship else "no",
    }
    append_row(row)
    plot()
    print_fit()
    return ship


def append_row(row: dict) -> None:
    """One row of ``campaign.csv`` (a leg, shipped or not); an older header gains the new columns."""
    rows = list(csv.DictReader(open(LOG, newline=""))) if LOG.exists() else []
    rows.append(row)
    with open(LOG, "w", newline="") as f:
        writer = csv.DictWriter(f, LOG_FIELDS, restval="")
        writer.writeheader()
        writer.writerows(rows)
    print("campaign:", row, flush=True)


TARGETS = {"jpeg": -40.0, "webp": -15.0}  # issue 24's resolution: Kodak BD-rate against JPEG 4:2:0 and WebP


def _rows() -> list[dict]:
    with open(LOG, newline="") as f:
        return list(csv.DictReader(f))


def fit(rows: list[dict] | None = None) -> dict[str, dict[str, float]]:
    """The trend of each anchor's BD-rate over this campaign's shipped legs: BD(t) = a + b·ln t, t in CPU hours.

    A log-linear trend is what the campaign's curve has looked like (each doubling of training gains about
    the same number of points); it is the optimistic reading, as it has no floor.  Rows of this campaign are
    those judged by the gate (``bd_gate`` set).  Returns, per anchor, a, b, the points gained per doubling,
    the fit's RMS residual, and the CPU hours at which the trend reaches 0 % and the issue's target.
    """
    import numpy as np

    rows = _rows() if rows is None else rows
    legs = [r for r in rows if r.get("bd_gate") and r.get("shipped") == "yes"]
    out = {}
    for name in ANCHORS:
        pts = [(float(r["cpu_minutes"]) / 60, float(r[f"bd_{name}"])) for r in legs if r[f"bd_{name}"]]
        if len(pts) < 3:
            continue
        t, y = map(np.array, zip(*pts))
        b, a = np.polyfit(np.log(t), y, 1)
        rms = float(np.sqrt(np.mean((a + b * np.log(t) - y) ** 2)))
        reach = lambda level: float(np.exp((level - a) / b)) if b < 0 else math.inf  # noqa: E731
        out[name] = {"a": float(a), "b": float(b), "per_doubling": float(b * math.log(2)), "rms": rms,
                     "legs": len(pts), "hours_now": float(t.max()), "hours_parity": reach(0.0)}
        if name in TARGETS:
            out[name]["hours_target"] = reach(TARGETS[name])
    return out


def _when(what: str, hours: float, f: dict) -> str:
    return f"{what} passed" if hours <= f["hours_now"] else f"{what} at {hours:.3g} CPU h"


def print_fit() -> None:
    for name, f in fit().items():
        line = (f"vs {name}: BD = {f['a']:+.2f} {f['b']:+.2f}·ln(CPU h) over {f['legs']} shipped legs "
                f"(RMS {f['rms']:.2f} points): {f['per_doubling']:+.2f} points per doubling; "
                f"now {f['hours_now']:.1f} CPU h, " + _when("parity", f["hours_parity"], f))
        if "hours_target" in f:
            line += ", " + _when(f"target {TARGETS[name]:+.0f} %", f["hours_target"], f)
        print(line)


def plot() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _rows()
    trends = fit(rows)
    fig, ax = plt.subplots(figsize=(6, 4))
    hours = [float(r["cpu_minutes"]) / 60 for r in rows]
    for name in ANCHORS:  # shipped legs as a curve, legs that did not ship as hollow markers
        points = [(h, float(r[f"bd_{name}"]), r.get("shipped") != "no") for h, r in zip(hours, rows) if r[f"bd_{name}"]]
        shipped = [(h, v) for h, v, s in points if s]
        if shipped:
            line, = ax.plot(*zip(*shipped), "o-", label=f"vs {name}")
            rejected = [(h, v) for h, v, s in points if not s]
            if rejected:
                ax.plot(*zip(*rejected), "o", mfc="none", color=line.get_color())
            if name in trends:  # the log-linear trend of this campaign, drawn to twice its hours
                f = trends[name]
                span = [f["hours_now"] / 2 ** (k / 8) for k in range(-8, 9)]
                ax.plot(span, [f["a"] + f["b"] * math.log(h) for h in span], ":", lw=1, color=line.get_color())
    ax.axhline(0, color="grey", lw=0.8)
    for target, name in ((-40, "JPEG target"), (-15, "WebP target")):
        ax.axhline(target, color="grey", lw=0.8, ls="--")
        ax.text(0.01, target, name, fontsize=7, va="bottom", transform=ax.get_yaxis_transform())
    ax.set_xscale("log")  # the trend BD = a + b·ln t is a straight line
    ax.set_xlim(min(hours) / 1.5, max(hours) * 2.5)
    ax.set_xlabel("CPU hours of training (2 cores, log scale; dotted: trend of the shipped legs)")
    ax.set_ylabel("Kodak BD-rate of lic (%)")
    ax.set_title("lic training campaign")
    ax.legend()
    fig.tight_layout()
    fig.savefig(PLOT, dpi=120)
    print(f"wrote {PLOT}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m train.lab.campaign", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    lp = sub.add_parser("leg", help="train the next leg")
    lp.add_argument("--minutes", type=float, required=True)
    lp.add_argument("--final", action="store_true",
                    help="the campaign's last leg: its LR decays to the end of the schedule within --minutes")
    fin = sub.add_parser("finish", help="export, measure, log")
    fin.add_argument("--no-efforts", action="store_true",
                     help="skip the --effort 1,2 Kodak curves (about 35 min): only when short of time")
    fin.add_argument("--run", type=Path, default=RUN, help="the run to finish (default: the campaign's)")
    sub.add_parser("plot", help="redraw the campaign plot")
    sub.add_parser("fit", help="BD-rate against CPU hours: the trend and where it meets the targets")
    a = p.parse_args(argv)
    if a.command == "leg":
        if a.minutes <= 0:
            p.error("--minutes must be positive")
        leg(a.minutes, final=a.final)
    elif a.command == "finish":
        finish(efforts=not a.no_efforts, run=a.run)
    elif a.command == "fit":
        print_fit()
    else:
        plot()


if __name__ == "__main__":
    main()
