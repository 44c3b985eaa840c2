"""The gate that decides whether a leg ships: real files on full-size held-out photos.

    python -m train.lab.gate runs/campaign/weights                  # BD-rate against codec/weights
    python -m train.lab.gate runs/campaign/weights --against other/weights

The set is ``train/lab/gate.txt``: 24 training photos (full size, 0.1-0.3 MP each) that the campaign's
trainer never sees (``TrainConfig.exclude``).  Each model codes every photo at qualities 1..8 for real
(``train.evaluate``: whole ``.lic`` files, exact decoding), and the gate prints the mean curves and
the BD-rate of the candidate against ``--against`` (negative: fewer bits at equal PSNR).  A curve
is cached next to its weights as ``<model_id>-gate.json`` together with the weights' fingerprint, so
the shipped model is coded once.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .paths import DATA, GATE_LIST, WEIGHTS

__all__ = ["GATE_LIST", "gate_files", "gate_curve", "gate", "main"]


def gate_files(data: str | Path = DATA) -> list[Path]:
    """The gate's photos, in the order of ``gate.txt``; a missing one is an error."""
    names = GATE_LIST.read_text().split()
    files = [Path(data) / n for n in names]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise FileNotFoundError(f"gate photos missing: {', '.join(missing[:3])}")
    return files


def gate_curve(weights: str | Path, data: str | Path = DATA) -> dict:
    """{"bpp": [...], "psnr-rgb": [...]} over q 1..8 for ``weights``, cached beside them."""
    from codec.weights import fingerprint, load_model

    from ..evaluate import evaluate_weights

    model = load_model(weights)
    digest = fingerprint(model).hex()
    cache = Path(weights) / f"{model.config.model_id}-gate.json"
    if cache.exists():
        stored = json.loads(cache.read_text())
        if stored.get("fingerprint") == digest:
            return stored["results"]
    result = evaluate_weights(weights, gate_files(data), out=cache)
    result["fingerprint"] = digest
    cache.write_text(json.dumps(result, indent=2) + "\n")
    return result["results"]


def gate(candidate: str | Path, against: str | Path = WEIGHTS, data: str | Path = DATA) -> float:
    """BD-rate (%) of ``candidate`` against ``against`` on the gate's photos."""
    from benchmarks.bd import bd_rate

    ref, new = gate_curve(against, data), gate_curve(candidate, data)
    return bd_rate(ref["bpp"], ref["psnr-rgb"], new["bpp"], new["psnr-rgb"])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m train.lab.gate", description=__doc__.split("\n\n")[0])
    p.add_argument("weights")
    p.add_argument("--against", default=str(WEIGHTS))
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args(argv)
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    try:
        bd = gate(a.weights, a.against, a.data)
    except (FileNotFoundError, ValueError) as e:  # missing weights or photos, curves that do not overlap
        print(f"gate: error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"gate: {a.weights} against {a.against}: BD-rate {bd:+.2f} % (negative: fewer bits)")


if __name__ == "__main__":
    main()
