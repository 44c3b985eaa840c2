"""Training data: images decoded once into a bank of uint8 crops on the device, batches gathered there.

Fixed-size crops instead of whole images: one tensor, so a batch is one gather on the device (no
DataLoader), and memory is bounded.  Kodak, the evaluation set, is refused as training data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from codec.quality import QUALITY_LAMBDAS

__all__ = ["IMAGE_SUFFIXES", "list_images", "build_bank", "build_bank_center", "get_batch", "sample_quality", "split_heldout"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".ppm")


def list_images(folder: str | Path) -> list[Path]:
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images in {folder}")
    if any("kodim" in p.name.lower() for p in files):
        raise ValueError(f"{folder} holds Kodak images: lic never trains on its evaluation set")
    return files


def split_heldout(files: list[Path], count: int, seed: int) -> tuple[list[Path], list[Path]]:
    """(held out, training): ``count`` files drawn at random (seeded), the rest for training."""
    order = np.random.default_rng(seed).permutation(len(files))
    return [files[i] for i in order[:count]], [files[i] for i in order[count:]]


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def build_bank(files: list[Path], size: int, per_image: int, seed: int, width: int = 0,
               downscale: float = 1.0) -> torch.Tensor:
    """(N, 3, size, width) uint8: up to ``per_image`` random crops of each image, about one per
    size×width of its area.  With a landscape bank (width > size) portrait images are transposed
    (a legitimate augmentation: training already flips both ways).  With ``downscale`` < 1 each
    image is first shrunk by a random factor in [downscale, 1] (area averaging washes out JPEG
    artefacts and noise; Ballé et al. 2018).  Images smaller than the crop are upscaled first.

    Fixed-size crops instead of whole images: one tensor, so a batch is one gather on the device,
    and memory is bounded (the whole set is 242 MP; 4 crops of 256² per image are 1 GB).
    """
    from PIL import Image

    width = width or size
    rng = np.random.default_rng(seed)
    crops = []
    for path in files:
        img = _read_rgb(path)
        if width > size and img.shape[0] > img.shape[1]:
            img = img.transpose(1, 0, 2)
        if downscale < 1:
            f = rng.uniform(downscale, 1.0)
            img = np.asarray(Image.fromarray(img).resize((max(1, round(img.shape[1] * f)),
                                                          max(1, round(img.shape[0] * f))), Image.BOX))
        h, w = img.shape[:2]
        if h < size or w < width:
            s = max(size / h, width / w)
            img = np.asarray(Image.fromarray(img).resize((max(width, round(w * s)), max(size, round(h * s))),
                                                         Image.BICUBIC))
            h, w = img.shape[:2]
        k = max(1, min(per_image, int(h * w / (size * width) + 0.5)))
        for _ in range(k):
            top, left = rng.integers(0, h - size + 1), rng.integers(0, w - width + 1)
            crops.append(img[top : top + size, left : left + width])
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()


def build_bank_center(files: list[Path], size: int) -> torch.Tensor:
    """Center crops (size×size) of the held-out images, uint8 (V, 3, size, size)."""
    out = []
    for path in files:
        img = _read_rgb(path)
        h, w = img.shape[:2]
        if min(h, w) < size:
            continue
        top, left = (h - size) // 2, (w - size) // 2
        out.append(img[top : top + size, left : left + size])
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


def get_batch(bank: torch.Tensor, batch: int, patch: int, gen: torch.Generator) -> torch.Tensor:
    """Random crops with random horizontal/vertical flips, float in [0, 1], on the bank's device."""
    n, _, height, width = bank.shape
    dev = bank.device
    idx = torch.randint(n, (batch,), generator=gen, device=dev)
    top = torch.randint(height - patch + 1, (batch,), generator=gen, device=dev)
    left = torch.randint(width - patch + 1, (batch,), generator=gen, device=dev)
    flips = torch.rand(batch, 2, generator=gen, device=dev) < 0.5
    ar = torch.arange(patch, device=dev)
    rows = top[:, None] + ar  # (B, P)
    cols = left[:, None] + ar
    rows = torch.where(flips[:, :1], rows.flip(1), rows)  # a reversed index = a flip
    cols = torch.where(flips[:, 1:], cols.flip(1), cols)
    chan = torch.arange(3, device=dev)
    x = bank[idx[:, None, None, None], chan[None, :, None, None], rows[:, None, :, None], cols[:, None, None, :]]
    return x.float().div_(255)


def sample_quality(batch: int, mode: str, gen: torch.Generator, device) -> torch.Tensor:
    """Per-sample qualities: ``continuous`` uniform in [1, 8]; ``low`` with density 2(1 − t) on
    t = (q − 1)/7, towards the low and middle qualities where most files are made; ``levels`` the
    eight integer levels."""
    levels = len(QUALITY_LAMBDAS)
    if mode == "levels":
        return torch.randint(1, levels + 1, (batch,), generator=gen, device=device).float()
    u = torch.rand(batch, generator=gen, device=device)
    if mode == "low":
        u = 1 - torch.sqrt(1 - u)
    return 1 + (levels - 1) * u
