"""``lic`` on either runtime (codec/engines/runtime.py): files cross between them, bad input gets the same
one line and status on both, and without torch what needs it is a usage error that names the extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import codec
from codec import cli

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.usefixtures("use_tiny_weights")
SOURCE_ROOT = Path(codec.__file__).resolve().parent.parent


def run(capsys, *args) -> tuple[int, str]:
    status = cli.main([str(a) for a in args])
    return status, capsys.readouterr().err


@pytest.mark.parametrize("maker", ["onnx", "torch"])
def test_a_file_made_on_one_runtime_decodes_on_the_other(tmp_path, capsys, make_image, maker):
    other = "torch" if maker == "onnx" else "onnx"
    Image.fromarray(make_image(40, 56, 3)).save(tmp_path / "a.png")
    assert run(capsys, "encode", tmp_path / "a.png", "--runtime", maker)[0] == 0
    assert run(capsys, "decode", tmp_path / "a.lic", "-o", tmp_path / "b.png", "--runtime", other)[0] == 0
    assert Image.open(tmp_path / "b.png").size == (56, 40)


def test_bad_input_is_the_same_line_and_status_on_both(tmp_path, capsys, make_image):
    Image.fromarray(make_image(40, 56, 3)).save(tmp_path / "a.png")
    assert run(capsys, "encode", tmp_path / "a.png")[0] == 0
    data = (tmp_path / "a.lic").read_bytes()
    (tmp_path / "cut.lic").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.png").write_bytes(b"not an image")
    for args in (["decode", tmp_path / "cut.lic", "-o", tmp_path / "x.png"], ["encode", tmp_path / "junk.png"],
                 ["decode", tmp_path / "missing.lic", "-o", tmp_path / "y.png"]):
        said = {r: run(capsys, *args, "--runtime", r) for r in ("onnx", "torch")}
        status, err = said["onnx"]
        assert status != 0 and len(err.strip().splitlines()) == 1
        assert said["torch"] == said["onnx"]


_LIC = """
import sys
from codec import cli
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("option", [["--effort", "1"], ["--device", "cuda"], ["--runtime", "torch"]])
def test_without_torch_what_needs_it_is_a_usage_error_naming_the_extra(tmp_path, make_image, without_torch,
                                                                       option):
    Image.fromarray(make_image(24, 24, 3)).save(tmp_path / "a.png")
    out = subprocess.run([sys.executable, "-c", without_torch + _LIC, "encode", str(tmp_path / "a.png"), *option],
                         capture_output=True, text=True, cwd=SOURCE_ROOT, timeout=120)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert lines[0].startswith("lic: error:") and "lic-codec[torch]" in lines[0]
    assert not (tmp_path / "a.lic").exists()
