"""Regenerate the golden file of the shipped model (run after the shipped weights change).

    python tests/data/make_golden.py

Writes ``golden.lic`` (a 128x96 crop of Kodak kodim23 coded at quality 4 by the shipped
model), ``golden.png`` (its decoded reconstruction) and ``sample.png`` (the crop itself).
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from codec.coding import decode_rgb, encode_rgb  # noqa: E402
from codec.weights import load_model  # noqa: E402

HERE = Path(__file__).parent
KODAK = HERE.parents[2] / "shared" / "data" / "kodak" / "kodim23.png"


def main() -> None:
    sample = HERE / "sample.png"
    if not sample.exists():
        Image.open(KODAK).convert("RGB").crop((320, 160, 448, 256)).save(sample, optimize=True)
    rgb = np.asarray(Image.open(sample).convert("RGB"))
    model = load_model()
    data = encode_rgb(model, rgb, 4.0)
    (HERE / "golden.lic").write_bytes(data)
    decoded, _, _ = decode_rgb(model, data)
    Image.fromarray(decoded).save(HERE / "golden.png")
    print(f"golden.lic: {len(data)} bytes, model {model.config.model_id}")


if __name__ == "__main__":
    main()
