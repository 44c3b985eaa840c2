"""A campaign leg on a lent GPU, in one command: train from the committed weights, export the shards.

    bash train/lab/device/leg.sh --out "$OUT" [--minutes 6.5] [--batch 16]     # on the GPU machine
    python -m train.lab.device.leg --dry-run --data D --out O                    # a rehearsal on this CPU

The recipe is the campaign's (``CAMPAIGN``) with the GPU's batch; the run starts from ``codec/weights``
(their step, their planned schedule, a fresh Adam), trains for ``--minutes`` of wall time in all (data,
compilation and the last checkpoint included), and exports its weight average into ``OUT/weights``:
safetensors shards under 16 MiB, the only files that must come back (with ``OUT/log.csv``).  The data
is what ``pack_data`` carried (``.devdata``); the gate's photos are not in it and are excluded anyway.

``--dry-run`` runs the same path on the CPU for a few steps of small crops, so that this script is
tested where it cannot be run for real (``tests/train``).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import time
from pathlib import Path

from codec.weights import load_metadata

from ...export import export
from ...train import train
from ..campaign import CAMPAIGN, final_leg
from ..paths import ROOT, WEIGHTS

__all__ = ["leg_config", "main"]

DEVDATA = ROOT / ".devdata"


def leg_config(data: Path, run: Path, minutes: float, batch: int, dry_run: bool):
    """``CAMPAIGN`` for one device leg (or, with ``dry_run``, a few CPU steps of 64² crops)."""
    cfg = dataclasses.replace(
        CAMPAIGN, data=str(data), run=str(run), resume=False, init_from=str(WEIGHTS), minutes=minutes,
        batch_size=batch, device="cuda", threads=0, checkpoint_minutes=2.0, eval_every=0, log_every=100,
        reserve_seconds=30.0)
    # The shipped weights end the CPU campaign's schedule: a device leg decays over its own budget.
    meta = load_metadata(WEIGHTS)
    step = int(meta.get("steps", 0))
    cfg = final_leg(cfg, step, float(meta.get("train_seconds", 0.0)) / 60)
    if dry_run:
        cfg = dataclasses.replace(cfg, device="cpu", batch_size=2, patch=64, bank_size=64, crops_per_image=1,
                                  val_images=1, compile="off", threads=2, log_every=1, stop_at=step + 2)
    return cfg


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m train.lab.device.leg", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="the exported shards go to OUT/weights")
    p.add_argument("--data", type=Path, default=DEVDATA, help="training photos (default: the carried .devdata)")
    p.add_argument("--run", type=Path, default=Path("/tmp/lic-device-run"))
    p.add_argument("--minutes", type=float, default=6.5, help="wall time of the whole command's training part")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--dry-run", action="store_true", help="a few steps on the CPU (the test of this script)")
    a = p.parse_args(argv)
    if not a.data.is_dir():
        print(f"leg: error: no training data in {a.data} (pack it with python -m train.lab.device.pack_data)",
              file=sys.stderr)
        sys.exit(2)
    t0 = time.time()
    if a.run.exists():
        shutil.rmtree(a.run)
    summary = train(leg_config(a.data, a.run, a.minutes, a.batch, a.dry_run))
    export(a.run, a.out / "weights", replace=True, graphs=False)  # onnx is not carried: graphs are made here
    shutil.copy2(a.run / "log.csv", a.out / "log.csv")
    print(f"leg: step {summary.get('step')} in {time.time() - t0:.0f} s; shards in {a.out / 'weights'}", flush=True)


if __name__ == "__main__":
    main()
