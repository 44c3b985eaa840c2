"""What ``lic`` says: version and usage, sizes people write, what a target reached, warnings that
name their file once, progress on a terminal, and messages that never leak Python objects."""

from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bitstream
import codec
from codec import cli

pytestmark = pytest.mark.usefixtures("use_tiny_weights")
SOURCE_ROOT = str(Path(codec.__file__).resolve().parent.parent)


def run(capsys, *args) -> tuple[int, str, str]:
    status = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def lic(*args, cwd, stdin: bytes = b"") -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SOURCE_ROOT, env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "codec", *map(str, args)], cwd=cwd, input=stdin,
                          capture_output=True, timeout=120, env=env)


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def photo(tmp_path, make_image) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(make_image(33, 47, 3)).save(path)
    return path


# -- version and usage ------------------------------------------------------------------------------

def test_version_prints_the_version(capsys):
    from importlib.metadata import version

    status, out, err = run(capsys, "--version")
    assert status == 0 and out.strip() == f"lic {version('lic-codec')}" and err == ""


def test_bare_lic_prints_a_usage_line(capsys):
    status, out, err = run(capsys)
    assert status == 2
    assert err.startswith("usage: lic ") and "encode" in err and "required" not in err
    assert "--help" in err


# -- sizes ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("20000", 20_000), ("2e4", 20_000), ("20k", 20_000), ("20K", 20_000), ("20KB", 20_000),
    ("20kB", 20_000), ("1.5M", 1_500_000), ("1.5MB", 1_500_000), ("64KiB", 65_536), ("1MiB", 2**20),
    ("20,000", 20_000), ("20_000", 20_000), ("300 B", 300),
])
def test_target_size_takes_sizes_as_people_write_them(text, expected):
    args = cli.build_parser().parse_args(["encode", "x.png", "--target-size", text])
    assert args.target_size == expected


@pytest.mark.parametrize("text", ["-5", "0", "0.4", "k", "20 parsecs", "nan", "inf", "1e400"])
def test_target_size_refuses_what_is_not_a_size(text):
    with pytest.raises(cli.CliError) as error:
        cli.build_parser().parse_args(["encode", "x.png", "--target-size", text])
    assert error.value.status == 2 and "size" in str(error.value)


def test_after_a_target_the_quality_and_what_it_reached_are_printed(photo, tmp_path, capsys):
    status, _, err = run(capsys, "encode", photo, "-o", tmp_path / "s.lic", "--target-size", "100k")
    assert status == 0, err
    size = (tmp_path / "s.lic").stat().st_size
    quality = json.loads(lic("info", "s.lic", "--json", cwd=tmp_path).stdout)["quality"]
    (line,) = [line for line in err.splitlines() if "target" in line]
    assert f"quality {quality:g}" in line and f"{size:,} bytes" in line
    assert f"{size * 8 / (33 * 47):.4f} bpp" in line
    status, _, err = run(capsys, "encode", photo, "-o", tmp_path / "p.lic", "--target-psnr", "5")
    assert status == 0, err
    (line,) = [line for line in err.splitlines() if "target" in line]
    assert "quality " in line and " dB" in line and " bpp" in line


def test_quality_steps_of_1_256_are_documented(photo, tmp_path, capsys):
    status, _, err = run(capsys, "encode", photo, "-o", tmp_path / "q.lic", "-q", "4.3")
    assert status == 0, err
    assert json.loads(lic("info", "q.lic", "--json", cwd=tmp_path).stdout)["quality"] == round(4.3 * 256) / 256
    status, help_text, _ = run(capsys, "encode", "--help")
    assert status == 0 and "1/256" in help_text
    readme = (Path(SOURCE_ROOT) / "README.md").read_text()
    assert "1/256" in readme and "4.30078" in readme


# -- stdin --------------------------------------------------------------------------------------------------

def test_garbage_on_stdin_is_described_without_python_objects(tmp_path):
    result = lic("encode", "-", cwd=tmp_path, stdin=b"garbage, not an image at all")
    err = result.stderr.decode()
    assert result.returncode == 1 and err.count("\n") == 1 and err.startswith("lic: error: ")
    assert "<_io" not in err and "object at 0x" not in err and "not an image" in err


@pytest.mark.parametrize("command", [["info", "-"], ["decode", "-"], ["encode", "-"]])
def test_empty_stdin_says_it_is_empty(tmp_path, command):
    result = lic(*command, cwd=tmp_path, stdin=b"")
    err = result.stderr.decode()
    assert result.returncode == 1 and err.count("\n") == 1 and "empty" in err and "truncated" not in err


# -- warnings --------------------------------------------------------------------------------------------

def _png_48_bit(path: Path, pixels: np.ndarray) -> None:
    height, width, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_bit_depth_warnings_name_the_file_once(tmp_path, capsys, make_image):
    Image.fromarray(make_image(12, 14, 1)[..., 0].astype(np.uint16) * 257).save(tmp_path / "g16.png")
    _png_48_bit(tmp_path / "rgb48.png", make_image(12, 14, 3).astype(np.uint16) * 257)
    for name in ("g16.png", "rgb48.png"):
        status, _, err = run(capsys, "encode", tmp_path / name)
        assert status == 0, err
        warnings = [line for line in err.splitlines() if "warning" in line]
        assert warnings == [f"lic: warning: {tmp_path / name}: 16-bit samples reduced to 8 bits"]


def test_animated_gif_warns_that_only_the_first_frame_is_coded(tmp_path, capsys):
    frames = [Image.new("RGB", (8, 6), (40 * i, 200 - 40 * i, 90)) for i in range(4)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    status, _, err = run(capsys, "encode", tmp_path / "anim.gif")
    assert status == 0, err
    assert f"lic: warning: {tmp_path / 'anim.gif'}: 4 frames; only the first is coded" in err.splitlines()


# -- progress on one large image -----------------------------------------------------------------------

def test_one_large_image_shows_progress_on_a_terminal(tmp_path, capsys, monkeypatch, make_image):
    import codec.coder

    monkeypatch.setattr(codec.coder, "TRANSFORM_TILE", 64)  # "large" = more than one tile, cheaply
    Image.fromarray(make_image(150, 200, 3)).save(tmp_path / "big.png")  # 12 tiles of 64
    status, _, err = run(capsys, "encode", tmp_path / "big.png")
    assert status == 0 and "\r" not in err
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert cli.main(["decode", str(tmp_path / "big.lic"), "-o", str(tmp_path / "back.png")]) == 0, terminal.getvalue()
    assert "\r" in terminal.getvalue() and "tile" in terminal.getvalue()
    (tmp_path / "big.lic").unlink()
    terminal.seek(0)
    terminal.truncate()
    assert cli.main(["encode", str(tmp_path / "big.png")]) == 0, terminal.getvalue()
    assert "\r" in terminal.getvalue() and "tile" in terminal.getvalue()
    assert "encoded 1 file" in terminal.getvalue()


# -- bad input is one line; a bug says so ----------------------------------------------------------------

def test_bad_input_is_one_error_line_even_with_lic_debug(tmp_path, capsys, monkeypatch):
    pixels = np.full((6, 7), 0.5, dtype=np.float32)
    pixels[2, 3] = np.nan
    Image.fromarray(pixels, "F").save(tmp_path / "nan.tif")
    for debug in ("", "1"):
        monkeypatch.setenv("LIC_DEBUG", debug)
        status, _, err = run(capsys, "encode", tmp_path / "nan.tif")
        assert status == 1 and err.splitlines() == [
            f"lic: error: {tmp_path / 'nan.tif'}: float samples include NaN or infinite values"]
    assert not (tmp_path / "nan.lic").exists()


def test_an_internal_error_asks_for_a_report_and_lic_debug_shows_its_traceback(photo, tmp_path, capsys,
                                                                              monkeypatch):
    import codec.coding

    def broken(*args, **kwargs):
        raise ValueError("a bug deep inside")

    monkeypatch.setattr(codec.coding, "encode_rgb", broken)
    monkeypatch.delenv("LIC_DEBUG", raising=False)
    status, _, err = run(capsys, "encode", photo)
    assert status == 1 and err.splitlines() == [
        "lic: internal error: ValueError: a bug deep inside (please report; LIC_DEBUG=1 shows the traceback)"]
    monkeypatch.setenv("LIC_DEBUG", "1")
    with pytest.raises(ValueError, match="a bug deep inside"):
        cli.main(["encode", str(photo)])
    assert not photo.with_suffix(".lic").exists()


# -- each input is opened once, each .lic parsed once ----------------------------------------------------

def test_each_input_is_opened_once_and_each_lic_file_parsed_once(photo, tmp_path, capsys, monkeypatch):
    import bitstream.container

    opened, parsed = [], []
    real_open, real_parse = Image.open, bitstream.container._parse
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    monkeypatch.setattr(bitstream.container, "_parse", lambda data: parsed.append(1) or real_parse(data))
    for command in (["encode", photo], ["encode", "-r", photo.parent, "-d", tmp_path / "out"], ["demo", photo]):
        opened.clear()
        status, _, err = run(capsys, *command)
        assert status == 0, err
        assert len(opened) == 1, (command, opened)
    lic_file = photo.with_suffix(".lic")
    for decode in (lambda: run(capsys, "decode", lic_file, "-o", tmp_path / "back.png"),
                   lambda: codec.decompress(lic_file.read_bytes()),
                   lambda: real_open(lic_file).load()):
        parsed.clear()
        decode()
        assert len(parsed) == 1


# -- targets that need real bisection (the shipped model: PSNR grows with quality) ----------------------

def test_a_psnr_target_between_the_ends_is_searched_and_an_unreachable_one_warns(photo, tmp_path, capsys):
    from codec.weights import default_weights_dir

    weights = default_weights_dir()
    c = codec.Codec(device="cpu", weights=weights)
    with Image.open(photo) as img:
        pixels = np.asarray(img)
    low, high = (codec.psnr(pixels, c.decompress(c.compress(pixels, q))) for q in (1, 8))
    target = round((low + high) / 2, 2)
    status, _, err = run(capsys, "encode", photo, "-o", tmp_path / "mid.lic", "--weights", weights,
                         "--target-psnr", target)
    assert status == 0, err
    (line,) = [line for line in err.splitlines() if "target" in line]
    quality = bitstream.read_header((tmp_path / "mid.lic").read_bytes()).quality
    assert codec.MIN_QUALITY < quality < codec.MAX_QUALITY and f"-> quality {quality:g}," in line
    reached = float(re.search(r"quality [\d.]+, ([\d.]+) dB,", line).group(1))
    decoded = codec.psnr(pixels, c.decompress((tmp_path / "mid.lic").read_bytes()))
    assert reached == pytest.approx(decoded, abs=0.005) and decoded >= target

    status, _, err = run(capsys, "encode", photo, "-o", tmp_path / "max.lic", "--weights", weights,
                         "--target-psnr", "99")
    assert status == 0, err
    best = codec.psnr(pixels, c.decompress((tmp_path / "max.lic").read_bytes()))
    assert f"lic: warning: {photo}: cannot reach 99 dB; using quality 8 ({best:.2f} dB)" in err.splitlines()
    assert bitstream.read_header((tmp_path / "max.lic").read_bytes()).quality == codec.MAX_QUALITY
