"""Claims about the weights' metadata: readable without torch, extendable without changing the model."""

import subprocess
import sys
from pathlib import Path

from codec.networks.config import ModelConfig
from codec.networks.model import LicModel
from codec.shards import read_metadata
from codec.weights import default_weights_dir, fingerprint, load_model, save_model, set_metadata

REPO = Path(__file__).resolve().parents[2]


def test_set_metadata_adds_facts_and_keeps_the_fingerprint(tmp_path):
    save_model(LicModel(ModelConfig.tiny()), tmp_path, {"steps": 7})
    before = fingerprint(load_model(tmp_path))
    set_metadata(tmp_path, default_quality=3.5)
    meta = read_metadata(tmp_path)
    assert meta["default_quality"] == "3.5" and meta["steps"] == "7" and "config" in meta
    assert fingerprint(load_model(tmp_path)) == before
    assert not list(tmp_path.glob("*.tmp"))


def test_metadata_reader_needs_no_torch(tmp_path):
    save_model(LicModel(ModelConfig.tiny()), tmp_path)
    code = ("import sys; from codec.shards import read_metadata; "
            f"m = read_metadata(__import__('pathlib').Path({str(tmp_path)!r})); "
            "assert 'lic-tiny' in m['config']; assert 'torch' not in sys.modules, 'torch imported'")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_not_safetensors_is_a_value_error(tmp_path):
    (tmp_path / "x.safetensors").write_bytes(b"\xff" * 16)
    try:
        read_metadata(tmp_path)
    except ValueError as e:
        assert "not a safetensors file" in str(e)
    else:
        raise AssertionError("no error")


def test_default_quality_is_the_one_measured_for_the_shipped_weights():
    import codec

    meta = read_metadata(default_weights_dir())
    assert "default_quality" in meta, "shipped weights lack their measured default quality"
    assert codec.DEFAULT_QUALITY == float(meta["default_quality"])
    assert abs(float(meta["default_quality_kodak_bpp"]) - 0.5) < 0.05  # what it was chosen for


def test_loading_refuses_integer_weights_outside_exact_range(tmp_path):
    # Tables are not rebuilt at load, but the exactness check still runs on what is loaded.
    import pytest
    import torch
    from safetensors.torch import load_file, save_file

    save_model(LicModel(ModelConfig.tiny()), tmp_path)
    (shard,) = tmp_path.glob("*.safetensors")
    meta = read_metadata(tmp_path)
    tensors = load_file(str(shard))
    name = next(k for k in tensors if k.startswith("entropy.") and k.endswith(".bias"))
    tensors[name] = torch.full_like(tensors[name], 2.0**40)
    save_file(tensors, str(shard), metadata=meta)
    with pytest.raises(ValueError, match="2\\^53"):
        load_model(tmp_path)
