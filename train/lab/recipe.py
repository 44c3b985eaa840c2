"""Equal-time comparisons of the campaign's recipe, one change at a time, judged on the gate.

    python -m train.lab.recipe run control,batch4 --minutes 70    # arms side by side, one core each
    python -m train.lab.recipe table                              # every comparison so far

Each arm is the campaign's recipe (``CAMPAIGN``) with one change (``ARMS``), started from the shipped
weights (their step and schedule, a fresh Adam) into ``runs/recipe/<arm>``.  The arms of one
comparison train at the same time, one thread each, so each has one of the two cores for the same
wall time: equal CPU time, whatever else the machine does.  Each arm's weight average is then exported
and coded for real on the gate's 24 photos (``gate.py``); its BD-rate against the shipped weights
goes into ``recipes.csv`` with the arm, its change, its steps and minutes.  Compare arms of the same
comparison (same date, same minutes) with each other: the control is the campaign's recipe itself.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import json
import shutil
import subprocess
import sys
from pathlib import Path

from ..config import TrainConfig
from .campaign import CAMPAIGN
from .paths import LAB, ROOT

__all__ = ["ARMS", "arm_config", "main"]

RUNS = ROOT / "runs" / "recipe"
TABLE = LAB / "recipes.csv"
FIELDS = ["date", "arm", "change", "minutes", "steps", "bd_gate"]

# Issue 24's candidates: the one field each changes in CAMPAIGN.
ARMS: dict[str, dict] = {
    "control": {},
    "crop128": {"patch": 128},
    "batch4": {"batch_size": 4},
    "downscale": {"downscale": 0.5},
    "adam": {"optimizer": "adam"},
    "ste-rate": {"rate_proxy": "ste"},
    "lr2x": {"lr": 2 * CAMPAIGN.lr},
    "lr-half": {"lr": CAMPAIGN.lr / 2},
    "low-q": {"quality_sampling": "low"},
    "train-g_a": {"frozen_params": ""},
}


def arm_config(arm: str, minutes: float, base: TrainConfig = CAMPAIGN, runs: Path = RUNS) -> TrainConfig:
    """The recipe of ``arm``: ``base`` with its one change, a fresh run from the shipped weights, one thread."""
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; known: {', '.join(ARMS)}")
    return dataclasses.replace(base, **ARMS[arm], run=str(runs / arm), resume=False, minutes=minutes, threads=1)


def _train_arm(arm: str, minutes: float) -> None:
    from ..train import train

    cfg = arm_config(arm, minutes)
    if Path(cfg.run).exists():
        shutil.rmtree(cfg.run)
    train(cfg)


def _judge(arm: str, minutes: float) -> dict:
    """Export the arm's weight average and gate it against the shipped weights; one row of the table."""
    from codec.weights import load_metadata

    from ..export import export
    from .gate import gate

    run = RUNS / arm
    export(run, run / "weights", replace=True)
    meta = load_metadata(run / "weights")
    change = ", ".join(f"{k}={v}" for k, v in ARMS[arm].items()) or "(the campaign's recipe)"
    return {"date": datetime.date.today().isoformat(), "arm": arm, "change": change, "minutes": minutes,
            "steps": int(meta["steps"]) - int(load_metadata(CAMPAIGN.init_from)["steps"]),
            "bd_gate": f"{gate(run / 'weights'):.2f}"}


def run(arms: list[str], minutes: float) -> list[dict]:
    """Train ``arms`` side by side (a process each), then judge each on the gate and log it."""
    for arm in arms:
        arm_config(arm, minutes)  # an unknown arm fails before any work
    logs = [open(RUNS.parent / f"recipe-{arm}.log", "w") for arm in arms]
    procs = [subprocess.Popen([sys.executable, "-m", "train.lab.recipe", "arm", arm, "--minutes", str(minutes)],
                              cwd=ROOT, stdout=log, stderr=subprocess.STDOUT) for arm, log in zip(arms, logs)]
    failed = [arm for arm, p in zip(arms, procs) if p.wait() != 0]
    for log in logs:
        log.close()
    if failed:
        raise SystemExit(f"recipe: arm(s) {', '.join(failed)} failed: see runs/recipe-<arm>.log")
    rows = [_judge(arm, minutes) for arm in arms]
    with open(TABLE, "a", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        if f.tell() == 0:
            writer.writeheader()
        writer.writerows(rows)
    print(json.dumps(rows, indent=1))
    return rows


def table() -> str:
    """``recipes.csv`` as Markdown."""
    rows = list(csv.DictReader(open(TABLE, newline=""))) if TABLE.exists() else []
    out = ["| " + " | ".join(FIELDS) + " |", "|" + "---|" * len(FIELDS)]
    out += ["| " + " | ".join(r[k] for k in FIELDS) + " |" for r in rows]
    return "\n".join(out)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m train.lab.recipe", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    rp = sub.add_parser("run", help="train arms side by side, then gate them")
    rp.add_argument("arms", help="comma-separated: " + ", ".join(ARMS))
    rp.add_argument("--minutes", type=float, required=True)
    ap = sub.add_parser("arm", help="train one arm (what run starts, once per arm)")
    ap.add_argument("arm", choices=sorted(ARMS))
    ap.add_argument("--minutes", type=float, required=True)
    sub.add_parser("table", help="every comparison so far, as Markdown")
    a = p.parse_args(argv)
    if a.command == "run":
        RUNS.mkdir(parents=True, exist_ok=True)
        try:
            run([x for x in a.arms.split(",") if x], a.minutes)
        except ValueError as e:
            p.error(str(e))
    elif a.command == "arm":
        _train_arm(a.arm, a.minutes)
    else:
        print(table())


if __name__ == "__main__":
    main()
