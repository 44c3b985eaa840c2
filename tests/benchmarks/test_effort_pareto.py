import json

import pytest
from PIL import Image

from benchmarks import effort_pareto

RATES = {1.0: 1000, 2.0: 2000, 4.0: 4000, 6.0: 6000}
PSNRS = {1.0: 26.0, 2.0: 29.0, 4.0: 32.0, 6.0: 35.0}


def _write(path, images, scale, seconds):
    records = [{"image": name, "quality": q, "bytes": int(RATES[q] * scale), "psnr-rgb": PSNRS[q],
                "encoding_time": seconds, "decoding_time": 0.4} for q in RATES for name in images]
    path.write_text(json.dumps({"images": records}))
    return str(path)


def test_pareto_table_compares_efforts_on_the_images_they_share(tmp_path, capsys):
    for name in ("a.png", "b.png"):
        Image.new("RGB", (16, 8)).save(tmp_path / name)
    zero = _write(tmp_path / "e0.json", ["a.png", "b.png"], 1.0, 0.3)
    one = _write(tmp_path / "e1.json", ["a.png", "b.png"], 0.9, 2.0)
    three = _write(tmp_path / "e3a.json", ["a.png"], 0.8, 40.0)
    effort_pareto.main([f"0={zero}", f"1={one}", f"3={three}", "--images", str(tmp_path), "--split", "3:1:4"])
    out = capsys.readouterr().out
    every, common = out.split("the images every effort has")
    assert "| 1 | 2 | -10.00 % | 2.00 s | 2.00 s |" in every
    assert "| 3 |" not in every  # effort 3 lacks image b
    assert "| 3 | 1 | -20.00 % | 40.00 s | 40.00 s |" in common
    # the replayed level: effort 3's files at q 1 and 2, effort 1's at 4 and 6
    assert "| 3 below q 4, 1 from it | 1 |" in common


def test_curve_refuses_an_image_missing_at_a_quality():
    records = [{"image": "a.png", "quality": 1.0, "bytes": 10, "psnr-rgb": 30.0}]
    with pytest.raises(ValueError, match="1 of the 2 images"):
        effort_pareto.curve(records, {"a.png", "b.png"}, {"a.png": 100, "b.png": 100})
