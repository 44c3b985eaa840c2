"""``lic encode --effort``: in-process runs of ``cli.main`` on the tiny model."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from codec import cli

pytestmark = pytest.mark.usefixtures("use_tiny_weights")


def run(capsys, *args) -> tuple[int, str, str]:
    status = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_effort_encodes_a_file_the_plain_decoder_reads(tmp_path, capsys, make_image):
    Image.fromarray(make_image(40, 56, 3)).save(tmp_path / "a.png")
    status, _, err = run(capsys, "encode", tmp_path / "a.png", "-o", tmp_path / "a.lic", "--effort", "1", "-q", "5")
    assert status == 0, err
    status, _, err = run(capsys, "decode", tmp_path / "a.lic", "-o", tmp_path / "b.png")
    assert status == 0, err
    assert np.asarray(Image.open(tmp_path / "b.png")).shape == (40, 56, 3)


@pytest.mark.parametrize("value", ["4", "-1", "x", "1.5"])
def test_effort_outside_0_to_3_is_a_usage_error(tmp_path, capsys, value, make_image):
    Image.fromarray(make_image(8, 8, 3)).save(tmp_path / "a.png")
    status, out, err = run(capsys, "encode", tmp_path / "a.png", "--effort", value)
    lines = err.strip().splitlines()
    assert status == 2 and out == "" and "--effort" in lines[-1] and lines[-1].startswith("lic")
    assert not (tmp_path / "a.lic").exists()
