"""Shared fixtures: a tiny model saved once per session, so no test needs the shipped weights."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """Directory of a freshly initialised ``ModelConfig.tiny()`` model (a few thousand parameters)."""
    import torch

    from codec.networks.config import ModelConfig
    from codec.networks.model import LicModel
    from codec.weights import save_model

    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("tiny-weights")
    save_model(LicModel(ModelConfig.tiny()), directory)
    return directory


@pytest.fixture(scope="module")
def active_tiny_model():
    """An untrained tiny model whose latent is widened so it codes non-zero symbols (eval mode).

    A random init leaves y ≈ 0, which would make every symbol zero and the coding tests trivial.
    """
    import torch

    from codec.networks.config import ModelConfig
    from codec.networks.model import LicModel

    torch.manual_seed(0)
    model = LicModel(ModelConfig.tiny())
    with torch.no_grad():
        model.g_a[-1].weight.mul_(40)
    return model.eval()


@pytest.fixture
def use_tiny_weights(tiny_weights, monkeypatch):
    """Point ``LIC_WEIGHTS`` (API, CLI subprocesses, Pillow plugin) at the tiny model."""
    monkeypatch.setenv("LIC_WEIGHTS", str(tiny_weights))
    return tiny_weights


def smooth_image(height: int, width: int, channels: int, seed: int = 0) -> np.ndarray:
    """Deterministic uint8 test content: smooth waves plus a little noise, odd sizes welcome."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    planes = [128 + 90 * np.sin(x / 7.0 + c) * np.cos(y / 9.0 - c) for c in range(channels)]
    image = np.stack(planes, axis=-1) + rng.normal(0, 6, (height, width, channels))
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def make_image():
    """``make_image(height, width, channels, seed=0)`` -> uint8 array (see ``smooth_image``)."""
    return smooth_image


@pytest.fixture(scope="session")
def without_torch() -> str:
    """Python source that makes ``import torch`` fail, to run first in a child process: what the
    runtime install (no torch) sees."""
    return (
        "import importlib.abc, sys\n"
        "class NoTorch(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch is blocked')\n"
        "sys.meta_path.insert(0, NoTorch())\n"
    )
