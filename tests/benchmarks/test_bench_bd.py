import numpy as np
import pytest

from benchmarks.bd import bd_psnr, bd_rate

RATES = [0.12, 0.25, 0.45, 0.8, 1.3, 2.0]
PSNRS = [26.1, 28.9, 31.2, 33.9, 36.4, 38.8]


def test_curve_against_itself_is_zero():
    assert bd_rate(RATES, PSNRS, RATES, PSNRS) == pytest.approx(0.0, abs=1e-9)
    assert bd_psnr(RATES, PSNRS, RATES, PSNRS) == pytest.approx(0.0, abs=1e-9)


def test_ten_percent_fewer_bits_is_minus_ten_percent():
    cheaper = [0.9 * r for r in RATES]
    assert bd_rate(RATES, PSNRS, cheaper, PSNRS) == pytest.approx(-10.0, abs=1e-6)


def test_swapping_anchor_and_test_inverts_the_rate_ratio():
    other_rates = [r * (1.0 + 0.05 * k) for k, r in enumerate(RATES)]
    other_psnrs = [p + 0.1 for p in PSNRS]
    forward = bd_rate(RATES, PSNRS, other_rates, other_psnrs)
    backward = bd_rate(other_rates, other_psnrs, RATES, PSNRS)
    # Exactly antisymmetric in log-rate: (1 + f)(1 + b) = 1.
    assert (1 + forward / 100) * (1 + backward / 100) == pytest.approx(1.0, abs=1e-9)
    assert forward > 0 > backward


def test_bd_psnr_sign_follows_quality():
    better = [p + 0.5 for p in PSNRS]
    assert bd_psnr(RATES, PSNRS, RATES, better) == pytest.approx(0.5, abs=1e-9)


def test_point_order_does_not_matter():
    order = np.random.default_rng(0).permutation(len(RATES))
    shuffled_r, shuffled_p = np.asarray(RATES)[order], np.asarray(PSNRS)[order]
    assert bd_rate(RATES, PSNRS, shuffled_r * 1.2, shuffled_p) == pytest.approx(20.0, abs=1e-6)


def test_disjoint_curves_are_rejected():
    with pytest.raises(ValueError, match="overlap"):
        bd_rate(RATES, PSNRS, RATES, [p + 100 for p in PSNRS])


def test_non_positive_rates_are_rejected():
    with pytest.raises(ValueError, match="positive"):
        bd_rate([0.0, 1.0], [30, 35], [0.5, 1.0], [30, 35])


def test_effort_curves_get_their_own_table_against_effort_0_and_the_anchors():
    from benchmarks.report import bd_table

    def curve(scale):
        return {"bpp": [r * scale for r in RATES], "psnr-rgb": PSNRS}

    measured = {"lic": curve(1.0), "lic-effort1": curve(0.9), "jpeg": curve(2.0), "webp": curve(1.5)}
    table = bd_table(measured, {"measured-hevc444-x265-bpgsize": curve(0.8)}, {})
    section = table.split("## lic's encoder efforts (same decoder)")[1]
    header, rule, row = section.strip().splitlines()[:3]
    assert header == "| effort | vs effort 0 | vs jpeg | vs webp | vs measured-hevc444-x265-bpgsize |"
    assert row == "| 1 | -10.0 % | -55.0 % | -40.0 % | +12.5 % |"
    # the effort curves stay out of lic's own table
    assert "| lic-effort1 | measured |" not in table.split("## lic's encoder efforts")[0]


def test_effort_table_gives_each_effort_its_median_times_from_the_per_image_records(tmp_path):
    import json

    from benchmarks.report import bd_table, median_times

    def curve(scale):
        return {"bpp": [r * scale for r in RATES], "psnr-rgb": PSNRS}

    def write(name, encode_times):
        images = [{"image": f"{i}.png", "quality": 1.0, "encoding_time": t, "decoding_time": 0.5}
                  for i, t in enumerate(encode_times)]
        (tmp_path / f"{name}.json").write_text(json.dumps({"name": name, "results": curve(1.0), "images": images}))

    write("lic", [0.3, 0.2, 0.4])
    write("lic-effort2", [9.0, 30.0, 11.0, 10.0])
    (tmp_path / "jpeg.json").write_text(json.dumps({"name": "jpeg", "results": curve(2.0)}))  # no per-image records
    times = median_times(tmp_path, ["lic", "lic-effort2", "jpeg", "absent"])
    assert times == {"lic": (0.3, 0.5), "lic-effort2": (10.5, 0.5)}
    measured = {"lic": curve(1.0), "lic-effort2": curve(0.8), "jpeg": curve(2.0)}
    section = bd_table(measured, {}, {}, times=times).split("## lic's encoder efforts (same decoder)")[1]
    header, rule, zero, two = section.strip().splitlines()[:4]
    assert header == "| effort | vs effort 0 | vs jpeg | median encode | median decode |"
    assert zero == "| 0 | — | -50.0 % | 0.30 s | 0.50 s |"
    assert two == "| 2 | -20.0 % | -60.0 % | 10.50 s | 0.50 s |"


def test_registry_names_lic_at_each_effort():
    from benchmarks.lic_codec import lic_efforts
    from benchmarks.registry import registry

    names = list(registry())
    assert names[: len(lic_efforts())] == ["lic"] + [f"lic-effort{e}" for e in lic_efforts()[1:]]
    assert registry()["lic-effort1"].effort == 1


def test_report_reads_only_rd_curves_from_the_results_folder(tmp_path):
    import json

    from benchmarks.report import load_curves

    (tmp_path / "lic.json").write_text(json.dumps({"name": "lic", "results": {"bpp": [1.0], "psnr-rgb": [30.0]}}))
    (tmp_path / "lossless.json").write_text(json.dumps([{"set": "kodak"}]))  # another benchmark's rows
    assert list(load_curves(tmp_path)) == ["lic"]


def test_lic_curves_of_other_weights_are_left_out_of_the_report(tmp_path):
    import json

    from benchmarks.report import other_weights

    def write(name, **extra):
        (tmp_path / f"{name}.json").write_text(json.dumps({"name": name, **extra, "results": {}}))

    names = ["lic", "lic-effort1", "lic-effort2", "lic-torch", "jpeg"]
    write("lic-effort1", weights="0badf00d")
    write("lic-effort2")  # from before curves recorded their weights
    write("lic-torch", weights="5187f940")
    write("jpeg")
    write("lic")
    assert other_weights(tmp_path, names) == {}  # effort 0's curve says nothing: nothing to compare with
    write("lic", weights="5187f940")
    stale = other_weights(tmp_path, names)
    assert sorted(stale) == ["lic-effort1", "lic-effort2"]
    assert "0badf00d" in stale["lic-effort1"] and "not recorded" in stale["lic-effort2"]
