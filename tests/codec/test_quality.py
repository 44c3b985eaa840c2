"""Quality has one owner: its range and 1/256 step (``bitstream.quality``), λ(q) (``codec.quality``),
and one validation with one message, whichever way a quality comes in."""

from __future__ import annotations

import math
import zlib

import pytest
import torch

import bitstream
import codec
from codec import cli
from codec.quality import (MAX_QUALITY, MIN_QUALITY, QUALITY_LAMBDAS, check_quality, lambda_for_quality, level_position,
                           quantize_quality)


def test_the_lambda_table_has_one_level_per_integer_quality_of_the_format():
    assert (codec.MIN_QUALITY, codec.MAX_QUALITY) == (bitstream.MIN_QUALITY, bitstream.MAX_QUALITY)
    assert (MIN_QUALITY, MAX_QUALITY) == (bitstream.MIN_QUALITY, bitstream.MAX_QUALITY)
    assert len(QUALITY_LAMBDAS) == MAX_QUALITY - MIN_QUALITY + 1


def test_the_stored_step_is_the_format_field():
    header = bitstream.Header("m", b"abcd", quantize_quality(4.3), 3, 2, "RGB", 0)
    data = bitstream.pack(header, [b""])
    raw = round(header.quality * bitstream.QUALITY_STEPS)
    assert bitstream.QUALITY_STEPS == 256 and raw.to_bytes(2, "little") in data
    assert bitstream.read_header(data).quality == raw / 256 == round(4.3 * 256) / 256


@pytest.mark.parametrize("bad", [0.5, 8.01, math.nan, -math.inf])
def test_every_entry_point_refuses_a_bad_quality_with_the_same_message(bad, make_image):
    expected = f"quality must be in [1, 8], got {bad:g}"
    with pytest.raises(bitstream.InputError) as error:
        check_quality(bad)
    assert str(error.value) == expected
    image = make_image(4, 4, 3)
    for refuse in (quantize_quality, lambda_for_quality, lambda q: codec.compress(image, q)):
        with pytest.raises(bitstream.InputError) as error:
            refuse(bad)
        assert str(error.value) == expected
    with pytest.raises(cli.CliError) as error:
        cli.build_parser().parse_args(["encode", "x.png", f"--quality={bad!r}"])
    assert error.value.status == 2 and expected in str(error.value)


@pytest.mark.usefixtures("use_tiny_weights")
def test_the_command_checks_its_quality_once_and_the_api_takes_it_as_stored(tmp_path, make_image, monkeypatch):
    import codec.quality
    from PIL import Image

    checked, real = [], codec.quality.check_quality
    monkeypatch.setattr(codec.quality, "check_quality", lambda q: checked.append(q) or real(q))
    Image.fromarray(make_image(9, 11, 3)).save(tmp_path / "in.png")
    assert cli.main(["encode", str(tmp_path / "in.png"), "-q", "4.3"]) == 0
    assert checked == [4.3]
    assert bitstream.read_header((tmp_path / "in.lic").read_bytes()).quality == quantize_quality(4.3)
    stored = quantize_quality(4.3)
    assert quantize_quality(stored) is stored and stored == round(4.3 * 256) / 256


def test_a_file_with_a_quality_outside_the_range_is_corrupt():
    data = bytearray(bitstream.pack(bitstream.Header("m", b"abcd", 4.0, 3, 2, "RGB", 0), [b""]))
    at = data.index((4 * 256).to_bytes(2, "little"))
    data[at:at + 2] = (9 * 256).to_bytes(2, "little")
    body = bytes(data[:-4])
    data = body + zlib.crc32(body).to_bytes(4, "little")
    with pytest.raises(bitstream.LicFormatError, match=r"corrupt: quality must be in \[1, 8\], got 9"):
        bitstream.unpack(data)


def test_lambda_float_and_tensor_forms_agree_between_levels():
    qualities = [1.0, 1.25, 3.3, 4.30078125, 7.999, 8.0]
    tensor = lambda_for_quality(torch.tensor(qualities))
    for q, value in zip(qualities, tensor.tolist()):
        assert value == pytest.approx(lambda_for_quality(q), rel=1e-6)
    # geometric: halfway between two levels is their geometric mean
    assert lambda_for_quality(2.5) == pytest.approx(math.sqrt(QUALITY_LAMBDAS[1] * QUALITY_LAMBDAS[2]))


def test_level_position_is_where_a_quality_falls_between_levels():
    low, t = level_position(torch.tensor([1.0, 2.75, 8.0, 0.0, 9.0]), torch.float64)
    assert low.tolist() == [0, 1, 6, 0, 6]
    assert t.tolist() == pytest.approx([0.0, 0.75, 1.0, 0.0, 1.0])  # clamped to the range


def test_importing_lic_changes_nothing_global_and_the_default_comes_from_the_weights_metadata():
    import subprocess
    import sys
    from pathlib import Path

    from codec.shards import SHIPPED_WEIGHTS, read_metadata
    from codec.quality import FALLBACK_QUALITY, default_quality

    code = ("import builtins, sys; opened = []; real = builtins.open\n"
            "builtins.open = lambda f, *a, **k: (opened.append(str(f)), real(f, *a, **k))[1]\n"
            "from PIL import Image; limit = Image.MAX_IMAGE_PIXELS\n"
            "import codec; assert not [f for f in opened if 'safetensors' in f], opened\n"
            "assert Image.MAX_IMAGE_PIXELS == limit, 'import codec changed the pixel limit'\n"
            "assert codec.DEFAULT_QUALITY == codec.quality.default_quality(); assert 'torch' not in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert default_quality() == float(read_metadata(SHIPPED_WEIGHTS).get("default_quality", FALLBACK_QUALITY))
