import sys
import types

from benchmarks import speed


def test_speed_row_reports_times_rate_and_memory(image_dir):
    row = speed.speed_row("jpeg", [str(image_dir / "a.png")], repeats=1, lic_options={})
    assert row["codec"] == "jpeg" and row["bpp"] > 0 and row["psnr"] > 20
    assert row["encode_s"] >= 0 and row["decode_s"] >= 0 and row["peak_rss_mib"] > 0


def test_lic_mac_per_pixel_comes_from_complexity_module_when_present(monkeypatch):
    fake = types.ModuleType("benchmarks.complexity")
    fake.mac_per_pixel = lambda: {"encoder": 1000.0, "decoder": 2000.0}
    monkeypatch.setitem(sys.modules, "benchmarks.complexity", fake)
    rows = [{"codec": "lic", "quality": 4, "bpp": 0.5, "psnr": 32.0, "encode_s": 0.1, "decode_s": 0.1,
             "peak_rss_mib": 100.0, "peak_child_rss_mib": 0.0}]
    text = speed.speed_markdown(rows, {"x": "not installed"}, 1)
    assert "encoder: 1,000" in text and "decoder: 2,000" in text and "- x: not installed" in text


def test_speed_table_survives_a_broken_complexity_module(monkeypatch):
    fake = types.ModuleType("benchmarks.complexity")
    fake.mac_per_pixel = lambda: 1 / 0
    monkeypatch.setitem(sys.modules, "benchmarks.complexity", fake)
    assert speed.lic_mac_per_pixel() is None
