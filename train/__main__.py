"""``python -m train``: one training run (train/train.py, train/README.md).

A bad flag, configuration or data folder is one line on stderr and exit status 2, before any work.
With ``--eval-dir``, a run that reaches its end is exported to ``RUN/weights`` and those images are
coded for real (``train.evaluate``).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from .config import parse_args
from .data import list_images


def main(argv=None) -> None:
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

    from .train import train

    summary = train(cfg)
    if cfg.eval_dir and summary and not (cfg.stop_at and summary["step"] >= cfg.stop_at):
        import json

        from codec.weights import load_metadata

        from .evaluate import evaluate_weights
        from .export import export

        weights = Path(cfg.run) / "weights"
        export(cfg.run, weights)
        model_id = json.loads(load_metadata(weights)["config"])["model_id"]
        results = evaluate_weights(weights, cfg.eval_dir, limit=cfg.eval_limit,
                                   out=weights / f"{model_id}-{Path(cfg.eval_dir).name}.json")
        print(f"real coding: {results['results']}", flush=True)


if __name__ == "__main__":
    main()
