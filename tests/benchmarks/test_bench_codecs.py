import json
import shutil
import sys
import types

import numpy as np
import pytest
from PIL import Image

from benchmarks import __main__ as cli
from benchmarks import hevc
from benchmarks.codecs import PillowCodec
from benchmarks.registry import registry
from benchmarks.sweep import RESULT_KEYS, list_images, measure, results_json, sweep_codec

CLASSICAL = ["jpeg", "jpeg444", "webp", "jpeg2000", "avif", "jxl"]
HAVE_X265 = shutil.which("x265") is not None and shutil.which("ffmpeg") is not None


def _two_qualities(codec):
    qs = list(codec.qualities)
    return [qs[len(qs) // 3], qs[(2 * len(qs)) // 3]]


@pytest.mark.parametrize("name", CLASSICAL)
def test_each_available_codec_round_trips_and_writes_compressai_json(name, image_dir):
    codec = registry()[name]
    ok, why = codec.available()
    if not ok:
        pytest.skip(why)
    images = list_images(image_dir)
    qualities = _two_qualities(codec)
    ms = list(sweep_codec(codec, images, qualities, repeats=1))
    assert len(ms) == 4
    payload = json.loads(json.dumps(results_json(codec, ms, qualities)))
    assert payload["name"] == name and payload["description"]
    for key in RESULT_KEYS:
        assert len(payload["results"][key]) == 2, key
        assert all(np.isfinite(payload["results"][key])), key
    # Higher quality setting costs more bits and gives a better PSNR.
    assert payload["results"]["bpp"][1] > payload["results"]["bpp"][0]
    assert payload["results"]["psnr-rgb"][1] > payload["results"]["psnr-rgb"][0]
    # Each image's own values sit beside the means, and average to them.
    assert len(payload["images"]) == 4
    low = [m["encoding_time"] for m in payload["images"] if m["quality"] == qualities[0]]
    assert np.isclose(np.mean(low), payload["results"]["encoding_time"][0])


def test_bpp_is_counted_from_the_encoded_bytes(image_dir):
    codec = registry()["jpeg"]
    path = list_images(image_dir)[0]
    img = Image.open(path).convert("RGB")
    data = codec.encode(img, 50)
    m = measure(codec, path, 50, repeats=1)
    assert m.bytes == len(data)
    assert m.bpp == pytest.approx(8 * len(data) / (img.width * img.height))


def test_missing_codec_is_skipped_with_a_note(image_dir, tmp_path, monkeypatch, capsys):
    missing = PillowCodec("ghost", "a codec whose plugin is absent", "GHOST", [10, 20], 10,
                          plugin_module="no_such_plugin_module_xyz")
    ok, why = missing.available()
    assert not ok and "no_such_plugin_module_xyz" in why

    real_registry = registry

    def with_ghost(lic_options=None):
        return {**real_registry(lic_options), "ghost": missing}

    monkeypatch.setattr(cli, "registry", with_ghost)
    cli.main(["--images", str(image_dir), "--codecs", "ghost,jpeg", "--quick", "--repeats", "1",
              "--out", str(tmp_path), "--no-plots"])
    assert "skipping ghost" in capsys.readouterr().err
    assert (tmp_path / "jpeg.json").exists() and not (tmp_path / "ghost.json").exists()
    table = (tmp_path / "bd_rate.md").read_text()
    assert "ghost: Python module 'no_such_plugin_module_xyz' not installed" in table


def test_lic_sweeps_one_to_eight_and_a_finer_grid():
    from benchmarks.lic_codec import LicCodec

    assert list(LicCodec().qualities) == [1, 2, 3, 4, 5, 6, 7, 8]
    fine = LicCodec(fine=True).qualities
    assert fine[0] == 1 and fine[-1] == 8 and len(fine) == 15


def test_bpg_colour_conversion_round_trips_within_one_level():
    rgb = np.random.default_rng(0).integers(0, 256, size=(17, 23, 3), dtype=np.uint8)
    planes = hevc.rgb_to_ycbcr(rgb)
    assert planes.shape == (3, 17, 23)
    assert np.abs(hevc.ycbcr_to_rgb(planes).astype(int) - rgb).max() <= 1
    # Full range: white is Y=255, grey has neutral chroma.
    assert hevc.rgb_to_ycbcr(np.full((1, 1, 3), 255, np.uint8))[:, 0, 0].tolist() == [255, 128, 128]


def test_bpg_size_drops_vps_and_sps_and_adds_bpg_header():
    vps = b"\x00\x00\x00\x01" + bytes([32 << 1, 1]) + b"\x11" * 22
    sps = b"\x00\x00\x00\x01" + bytes([33 << 1, 1]) + b"\x22" * 35
    pps = b"\x00\x00\x00\x01" + bytes([34 << 1, 1]) + b"\x33" * 5
    slice_ = b"\x00\x00\x01" + bytes([19 << 1, 1]) + b"\x44" * 20000
    stream = vps + sps + pps + slice_
    units = hevc.split_nal_units(stream)
    assert [t for t, _ in units] == [32, 33, 34, 19] and b"".join(u for _, u in units) == stream
    picture = 1 + 3 + len(pps) - 4 + len(slice_)
    assert hevc.bpg_size(stream, 768, 512) == 6 + 2 + 2 + 3 + picture
    # For a Kodak-sized stream this is the 56-byte saving of the reference measurement.
    assert len(stream) - hevc.bpg_size(stream, 768, 512) == len(vps) + len(sps) + 4 - 6 - 2 - 2 - 3 - 4


@pytest.mark.skipif(not HAVE_X265, reason="x265 and ffmpeg not installed (apt-get install x265 ffmpeg)")
def test_hevc444_round_trips_at_two_qps(tmp_path):
    from bench_images import synthetic_image

    codec = registry()["hevc444"]
    path = tmp_path / "odd.png"  # x265 needs at least one 64x64 CTU; 81x67 also exercises the padding to 8
    synthetic_image(81, 67, seed=2).save(path)
    low, high = (measure(codec, path, qp, repeats=1) for qp in (42, 22))
    assert high.bpp > low.bpp and high.psnr > low.psnr > 20
    data = codec.encode(Image.open(path).convert("RGB"), 32)
    assert codec.decode(data).size == (81, 67)
    assert codec.file_size(data) < len(data) - 4  # parameter sets dropped as bpgenc would


def test_a_codec_failing_at_runtime_is_skipped_and_the_others_still_run(image_dir, tmp_path, monkeypatch, capsys):
    class Broken(PillowCodec):
        def encode(self, img, quality):
            raise FileNotFoundError("no weights")

    broken = Broken("broken", "fails on every image", "JPEG", [10, 20], 10)
    real_registry = registry
    monkeypatch.setattr(cli, "registry", lambda lic_options=None: {**real_registry(lic_options), "broken": broken})
    cli.main(["--images", str(image_dir), "--codecs", "broken,jpeg", "--quick", "--repeats", "1",
              "--out", str(tmp_path), "--no-plots"])
    assert "skipping broken: failed while coding: FileNotFoundError: no weights" in capsys.readouterr().err
    assert (tmp_path / "jpeg.json").exists() and not (tmp_path / "broken.json").exists()


def test_lic_stage_times_are_read_from_its_shared_codec_object():
    import dataclasses

    from benchmarks.lic_codec import LicCodec

    @dataclasses.dataclass
    class Timings:
        network: float = 0.25
        coding: float = 0.5

    codec = LicCodec()
    assert codec.timings() == {}  # nothing coded yet
    codec._last = types.SimpleNamespace(last_timings=Timings())
    assert codec.timings() == {"network": 0.25, "coding": 0.5}


def test_lic_decodes_every_effort_with_the_effort_0_decoder(monkeypatch):
    """A refined file is decoded as `lic decode` would: the encoder's torch runtime is not the decoder's."""
    from benchmarks.lic_codec import LicCodec

    made = []

    class Fake:
        def __init__(self, effort, runtime, threads):
            self.effort, self.runtime, self.last_timings = effort, "onnx" if effort == 0 else "torch", None
            made.append(self)

        def compress(self, img, quality):
            return f"effort {self.effort}".encode()

        def decompress(self, data):
            self.decoded = data
            return Image.new("RGB", (2, 2))

    monkeypatch.setattr("benchmarks.lic_codec.codec.Codec", Fake)
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(set_num_threads=lambda n: None))
    lic = LicCodec(effort=2)
    data = lic.encode(Image.new("RGB", (2, 2)), 4.0)
    lic.decode(data)
    assert [c.effort for c in made] == [2, 0] and made[1].decoded == b"effort 2"


def test_lic_curves_record_the_weights_they_were_measured_on(image_dir):
    from benchmarks.lic_codec import LicCodec

    codec = LicCodec(qualities=(2.0,), threads=1)
    images = list_images(image_dir)[:1]
    payload = results_json(codec, list(sweep_codec(codec, images, [2.0], repeats=1)), [2.0])
    assert payload["weights"] == codec._lic().model_hash.hex() and len(payload["weights"]) == 8
    assert "weights" not in results_json(registry()["jpeg"], [], [50])  # other codecs record nothing
