from benchmarks import speed


def test_speed_row_reports_times_rate_and_memory(image_dir):
    row = speed.speed_row("jpeg", [str(image_dir / "a.png")], repeats=1, lic_options={})
    assert row["codec"] == "jpeg" and row["bpp"] > 0 and row["psnr"] > 20
    assert row["encode_s"] >= 0 and row["decode_s"] >= 0 and row["peak_rss_mib"] > 0


def test_speed_table_lists_each_codec_and_why_others_were_skipped():
    rows = [{"codec": "jpeg", "quality": 75, "bpp": 0.5, "psnr": 32.0, "encode_s": 0.01, "decode_s": 0.01,
             "peak_rss_mib": 100.0, "peak_child_rss_mib": 0.0}]
    text = speed.speed_markdown(rows, {"x": "not installed"}, 1)
    assert "| jpeg | 75 | 0.500 | 32.00 |" in text and "- x: not installed" in text
