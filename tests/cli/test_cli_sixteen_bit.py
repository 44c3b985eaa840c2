"""``lic`` with 16-bit images: what decode writes for each output format, and one-line errors (never
"internal error") for input the exact modes cannot keep."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import codec
from codec import Image16, cli

from sixteen_bit_files import pixels16, plain_png

SOURCE_ROOT = Path(codec.__file__).resolve().parent.parent


def run(capsys, *args) -> tuple[int, str]:
    """(exit status, stderr) of ``lic args``."""
    status = cli.main([str(a) for a in args])
    return status, capsys.readouterr().err


@pytest.fixture(scope="module")
def rgba16(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A lossless 16-bit RGBA .lic file and its samples."""
    pixels = pixels16(4, seed=7)
    path = tmp_path_factory.mktemp("sixteen") / "rgba16.lic"
    path.write_bytes(codec.compress_exact(pixels, 0))
    return path, pixels


def test_decode_writes_sixteen_bits_to_png_tiff_and_ppm(rgba16, tmp_path, capsys):
    lic, pixels = rgba16
    for name in ("out.png", "out.tif"):
        status, err = run(capsys, "decode", lic, "-o", tmp_path / name)
        assert status == 0 and err == ""
        assert np.array_equal(np.asarray(codec.open_image(tmp_path / name, exact=True)), pixels)
    status, err = run(capsys, "decode", lic, "-o", tmp_path / "out.ppm")
    assert status == 0 and err.splitlines() == [
        f"lic: warning: {tmp_path / 'out.ppm'}: PPM has no alpha channel; alpha dropped"]
    assert (tmp_path / "out.ppm").read_bytes().endswith(pixels[..., :3].astype(">u2").tobytes())
    status, err = run(capsys, "encode", tmp_path / "out.ppm", "--lossless")  # and lic reads it back whole
    assert status == 0 and "warning" not in err
    assert np.array_equal(np.asarray(codec.decompress(tmp_path / "out.lic")), pixels[..., :3])


@pytest.mark.parametrize("name,fmt", [("out.jpg", "JPEG"), ("out.webp", "WEBP")])
def test_decode_to_an_eight_bit_format_reduces_with_a_one_line_warning(rgba16, tmp_path, capsys, name, fmt):
    lic, pixels = rgba16
    status, err = run(capsys, "decode", lic, "-o", tmp_path / name)
    assert status == 0
    assert f"lic: warning: {tmp_path / name}: {fmt} holds 8 bits per sample; 16-bit samples reduced to 8 bits" \
        in err.splitlines()
    if fmt == "WEBP":  # lossless WebP: the reduced samples, exactly
        with Image.open(tmp_path / name) as img:
            assert np.array_equal(np.asarray(img.convert("RGBA")), np.asarray(Image16(pixels).to_8bit()))


def test_sixteen_bit_gray_to_jpeg_warns_and_reduces_instead_of_failing(tmp_path, capsys):
    gray = (np.arange(12 * 16, dtype=np.uint16).reshape(12, 16) * 331).astype(np.uint16)
    (tmp_path / "g.lic").write_bytes(codec.compress_exact(gray, 0))
    status, err = run(capsys, "decode", tmp_path / "g.lic", "-o", tmp_path / "g.jpg")
    assert status == 0 and "16-bit samples reduced to 8 bits" in err
    with Image.open(tmp_path / "g.jpg") as img:
        assert img.mode == "L" and np.abs(np.asarray(img).astype(int) - np.round(gray / 257)).max() <= 3


def _float_tiff(tmp_path: Path) -> Path:
    Image.fromarray(np.full((6, 7), 0.25, np.float32), "F").save(tmp_path / "float.tif")
    return tmp_path / "float.tif"


def _signed_tiff(tmp_path: Path) -> Path:
    Image.fromarray(np.full((6, 7), -40, np.int32), "I").save(tmp_path / "signed.tif")
    return tmp_path / "signed.tif"


def _gray_alpha_png(tmp_path: Path) -> Path:
    (tmp_path / "la16.png").write_bytes(plain_png(pixels16(2)))
    return tmp_path / "la16.png"


def _eight_bit_png(tmp_path: Path) -> Path:
    Image.new("RGB", (7, 6), (10, 20, 30)).save(tmp_path / "rgb8.png")
    return tmp_path / "rgb8.png"


@pytest.mark.parametrize("make,options,reason", [
    (_float_tiff, ["--lossless"], "32-bit float samples cannot be coded exactly"),
    (_signed_tiff, ["--max-error", "1"], "outside 0..65535"),
    (_gray_alpha_png, ["--lossless"], "16-bit samples cannot be coded exactly"),
    (_eight_bit_png, ["--max-error", "300"], "max error must be in 0..255 for 8-bit samples, got 300"),
])
@pytest.mark.parametrize("debug", ["", "1"])
def test_input_the_exact_modes_cannot_keep_is_one_error_line_never_an_internal_error(tmp_path, capsys, monkeypatch,
                                                                                   make, options, reason, debug):
    monkeypatch.setenv("LIC_DEBUG", debug)
    path = make(tmp_path)
    status, err = run(capsys, "encode", path, *options)
    assert status == 1 and err.count("\n") == 1, err
    assert err.startswith("lic: error: ") and reason in err and "internal" not in err
    assert not path.with_suffix(".lic").exists()


def test_a_batch_names_a_refused_file_once(tmp_path, capsys):
    _float_tiff(tmp_path)
    _eight_bit_png(tmp_path)
    status, err = run(capsys, "encode", tmp_path, "--lossless")
    lines = err.splitlines()
    assert status == 1 and f"lic: error: {tmp_path / 'float.tif'}: 32-bit float samples" in lines[0]
    assert lines[0].count("float.tif") == 1 and "encoded 1 of 2 files" in lines[-1]


def test_help_and_readme_say_sixteen_bit_colour_is_kept(capsys):
    assert cli.main(["encode", "--help"]) == 0
    assert "16 for 16-bit gray, RGB and RGBA" in " ".join(capsys.readouterr().out.split())
    assert cli.main(["decode", "--help"]) == 0
    assert "--max-pixels" in capsys.readouterr().out
    readme = (SOURCE_ROOT / "README.md").read_text()
    assert "16-bit colour and float images are refused" not in readme and "--max-pixels" in readme
