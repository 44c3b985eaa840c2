"""``python -m train``: see train/train.py and train/README.md."""

from .train import main

main()
