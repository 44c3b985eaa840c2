"""The ``lic`` command end to end, through real subprocesses (``python -m codec``).

Runs that load the model are started together (the interpreter and torch import dominate their
time); error cases that fail before the model loads run one by one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import codec
from codec import cli
from codec.cli import outputs

pytestmark = pytest.mark.usefixtures("use_tiny_weights")
TIMEOUT = 300
# The subprocesses import the same ``codec`` as this test, installed or not.
SOURCE_ROOT = str(Path(codec.__file__).resolve().parent.parent)


def _env(base=None) -> dict:
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SOURCE_ROOT, env.get("PYTHONPATH")]))
    return env


def _command(args):
    return [sys.executable, "-m", "codec", *map(str, args)]


def lic(*args, cwd, stdin: bytes | None = None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(_command(args), cwd=cwd, input=stdin if stdin is not None else b"",
                          capture_output=True, timeout=TIMEOUT, env=_env(env))


def lic_parallel(runs: dict, cwd, env) -> dict:
    """Start every run at once, then wait: ``{name: (args, stdin)}`` -> ``{name: CompletedProcess}``."""
    procs = {}
    for name, (args, stdin) in runs.items():
        procs[name] = (subprocess.Popen(_command(args), cwd=cwd, env=_env(env), stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE), stdin, args)
    done = {}
    for name, (proc, stdin, args) in procs.items():
        out, err = proc.communicate(stdin if stdin is not None else b"", timeout=TIMEOUT)
        done[name] = subprocess.CompletedProcess(args, proc.returncode, out, err)
    return done


def one_error_line(result: subprocess.CompletedProcess, status: int, *fragments: str) -> str:
    """The run failed with ``status`` and exactly one stderr line ``lic: error: ...``."""
    err = result.stderr.decode()
    assert result.returncode == status, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lic: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_weights):
    """Images on disk and the results of every model-loading run, started in two waves."""
    root = tmp_path_factory.mktemp("cli")
    env = dict(os.environ, LIC_WEIGHTS=str(tiny_weights))
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:33, 0:47]
    wave = (128 + 90 * np.sin(x / 6.0)[..., None] * np.cos(y[..., None] / 8.0 + np.arange(4))).clip(0, 255).astype(np.uint8)
    rgba = wave.copy()
    rgba[..., 3] = rng.integers(0, 256, (33, 47))
    folder = root / "photos"
    folder.mkdir()
    Image.fromarray(wave[..., :3]).save(folder / "rgb.png")
    Image.fromarray(wave[..., 0], "L").save(folder / "gray.jpg")
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    (folder / "notes.txt").write_text("not an image")
    Image.fromarray(wave[..., :3]).save(root / "single.bmp")
    Image.fromarray(rgba, "RGBA").save(root / "alpha.png")
    first = lic_parallel({
        "folder": (["encode", folder, "-d", root / "out"], None),
        "single": (["encode", "single.bmp", "-q", "3.5"], None),
        "stdin": (["encode", "-"], (root / "alpha.png").read_bytes()),
        "size_ok": (["encode", "single.bmp", "-o", "size.lic", "--target-size", 100_000], None),
        "size_bad": (["encode", "single.bmp", "-o", "nosize.lic", "--target-size", 10], None),
        "bpp_bad": (["encode", "single.bmp", "-o", "bpp.lic", "--target-bpp", 0.001], None),
        "psnr_ok": (["encode", "single.bmp", "-o", "psnr.lic", "--target-psnr", 5], None),
    }, root, env)
    assert first["stdin"].returncode == 0, first["stdin"].stderr.decode()
    (root / "alpha.lic").write_bytes(first["stdin"].stdout)
    second = lic_parallel({
        "decode": (["decode", "single.lic"], None),
        "decode_stdio": (["decode", "-"], (root / "alpha.lic").read_bytes()),
    }, root, env)
    return root, {**first, **second}


def ok(result) -> str:
    assert result.returncode == 0, result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()
    return result.stderr.decode()


# -- encode / decode / info ------------------------------------------------------------------------

def test_encode_writes_in_lic_next_to_the_input(workspace):
    root, runs = workspace
    err = ok(runs["single"])
    assert (root / "single.lic").read_bytes()[:4] == b"LIC1"
    assert "encoded 1 file" in err and "bpp" in err


def test_encode_a_folder_codes_its_images_with_a_summary(workspace):
    root, runs = workspace
    err = ok(runs["folder"])
    assert sorted(p.name for p in (root / "out").iterdir()) == ["gray.lic", "rgb.lic", "rgba.lic"]
    summary = err.strip().splitlines()[-1].split("\r")[-1]
    assert "encoded 3 files" in summary and "bytes" in summary and "bpp" in summary and " s" in summary
    modes = {p.stem: codec.decompress(p.read_bytes()).mode for p in (root / "out").iterdir()}
    assert modes == {"gray": "L", "rgb": "RGB", "rgba": "RGBA"}


def test_decode_defaults_to_png_and_keeps_size(workspace):
    root, runs = workspace
    ok(runs["decode"])
    with Image.open(root / "photos" / "rgb.png") as original, Image.open(root / "single.png") as decoded:
        assert decoded.format == "PNG" and decoded.size == original.size


def test_decode_writes_png_with_its_zlib_options(workspace):
    from codec.cli.decode import PNG_OPTIONS

    root, runs = workspace
    ok(runs["decode"])
    written = (root / "single.png").read_bytes()
    with Image.open(root / "single.png") as img:
        img.load()
        again = __import__("io").BytesIO()
        img.save(again, format="PNG", **PNG_OPTIONS)
        default = __import__("io").BytesIO()
        img.save(default, format="PNG")
    assert again.getvalue() == written and default.getvalue() != written

def test_stdin_to_stdout_round_trip_keeps_alpha_exact(workspace):
    root, runs = workspace
    ok(runs["decode_stdio"])
    out = Image.open(__import__("io").BytesIO(runs["decode_stdio"].stdout))
    assert out.format == "PNG" and out.mode == "RGBA"
    with Image.open(root / "alpha.png") as original:
        assert np.array_equal(np.asarray(out)[..., 3], np.asarray(original)[..., 3])


@pytest.mark.parametrize("suffix,fmt,mode", [
    (".webp", "WEBP", "RGBA"), (".tif", "TIFF", "RGBA"), (".jpeg", "JPEG", "RGB"), (".ppm", "PPM", "RGB"),
])
def test_decode_format_follows_the_extension(workspace, tmp_path, capsys, suffix, fmt, mode):
    root, _ = workspace
    target = tmp_path / f"x{suffix}"
    assert cli.main(["decode", str(root / "alpha.lic"), "-o", str(target)]) == 0
    with Image.open(target) as img:
        assert (img.format, img.mode, img.size) == (fmt, mode, (47, 33))
    assert ("alpha dropped" in capsys.readouterr().err) == (mode == "RGB")


def test_info_text_and_json(workspace):
    root, _ = workspace
    text = lic("info", "single.lic", cwd=root)
    assert text.returncode == 0
    line = text.stdout.decode()
    assert "47x33 RGB" in line and "quality 3.5" in line and "lic-tiny" in line and "bpp" in line
    report = json.loads(lic("info", "alpha.lic", "--json", cwd=root).stdout)
    size = (root / "alpha.lic").stat().st_size
    assert report["width"] == 47 and report["height"] == 33 and report["channels"] == "RGBA"
    assert report["bytes"] == size and report["bpp"] == pytest.approx(size * 8 / (47 * 33))
    assert report["model_id"] == "lic-tiny" and len(report["model_hash"]) == 8
    assert report["quality"] == codec.DEFAULT_QUALITY and report["alpha_bytes"] > 0


# -- targets ----------------------------------------------------------------------------------------

def test_target_size_is_met_or_refused(workspace):
    root, runs = workspace
    ok(runs["size_ok"])
    assert (root / "size.lic").stat().st_size <= 100_000
    one_error_line(runs["size_bad"], 1, "cannot fit in 10 bytes")
    assert not (root / "nosize.lic").exists()


def test_target_bpp_falls_back_to_the_smallest_file_with_a_warning(workspace):
    root, runs = workspace
    err = ok(runs["bpp_bad"])
    assert "lic: warning:" in err and "cannot reach 0.001 bpp" in err
    assert json.loads(lic("info", "bpp.lic", "--json", cwd=root).stdout)["quality"] == codec.MIN_QUALITY


def test_target_psnr_is_met_at_or_above(workspace):
    root, runs = workspace
    ok(runs["psnr_ok"])
    with Image.open(root / "single.bmp") as original:
        decoded = codec.decompress((root / "psnr.lic").read_bytes())
        assert codec.psnr(decoded, original) >= 5


# -- errors: one line, right status, nothing left behind ------------------------------------------------

def _listing(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.mark.parametrize("args,status,fragment", [
    (["encode", "missing.png"], 1, "missing.png: no such file"),
    (["decode", "missing.lic"], 1, "missing.lic: no such file"),
    (["info", "missing.lic"], 1, "missing.lic: no such file"),
    (["encode", "notes.txt"], 1, "not an image"),
    (["encode", "single.lic", "-o", "again.lic"], 1, "already a .lic file"),
    (["decode", "single.bmp", "-o", "new.png"], 1, "not a lic file"),
    (["decode", "truncated.lic", "-o", "new.png"], 1, "truncated.lic: "),
    (["decode", "flipped.lic", "-o", "new.png"], 1, "corrupt"),
    (["info", "truncated.lic"], 1, "truncated.lic: "),
    (["encode", "single.bmp"], 1, "output exists (use --force"),
    (["decode", "single.lic", "-o", "single.bmp"], 2, "unknown output extension '.bmp'"),
    (["decode", "single.lic"], 1, "single.png: output exists (use --force"),
    (["encode", "single.bmp", "-o", "new.lic", "-q", "9"], 2, "quality must be in [1, 8]"),
    (["encode", "single.bmp", "-o", "new.lic", "-q", "0"], 2, "quality must be in [1, 8]"),
    (["encode", "single.bmp", "-o", "new.lic", "-q", "high"], 2, "quality must be a number"),
    (["decode", "single.lic", "-o", "new.xyz"], 2, "unknown output extension '.xyz'"),
    (["encode", "single.bmp", "-o", "new.png"], 2, "encode writes .lic files"),
    (["encode", "single.bmp", "alpha.png", "-o", "new.lic"], 2, "-o/--output takes one input"),
    (["encode", "single.bmp", "-o", "new.lic", "-q", "3", "--target-bpp", "1"], 2, "not allowed with"),
    (["encode", "single.bmp", "-o", "new.lic", "--target-size", "-5"], 2, "positive"),
    (["encode", "single.bmp", "-o", "new.lic", "--weights", "nowhere"], 2, "--weights nowhere"),
    (["frobnicate"], 2, "invalid choice"),
    (["encode"], 2, "required"),
])
def test_errors_are_one_line_with_status_and_leave_nothing(workspace, args, status, fragment):
    root, _ = workspace
    data = (root / "single.lic").read_bytes()
    (root / "truncated.lic").write_bytes(data[: len(data) // 2])
    (root / "flipped.lic").write_bytes(data[:-6] + bytes([data[-6] ^ 0x40]) + data[-5:])
    (root / "notes.txt").write_text("not an image")
    before = _listing(root)
    stamps = {p: p.stat().st_mtime_ns for p in root.iterdir() if p.is_file()}
    one_error_line(lic(*args, cwd=root), status, fragment)
    assert _listing(root) == before
    assert {p: p.stat().st_mtime_ns for p in root.iterdir() if p.is_file()} == stamps


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_is_an_error(workspace):
    root, _ = workspace
    one_error_line(lic("encode", "single.bmp", "-o", "new.lic", "--device", "cuda", cwd=root),
                   1, "CUDA is not available")
    assert not (root / "new.lic").exists()


def test_force_overwrites_and_without_it_output_is_untouched(workspace, tmp_path):
    root, _ = workspace
    target = tmp_path / "out.png"
    target.write_bytes(b"precious")
    assert cli.main(["decode", str(root / "single.lic"), "-o", str(target)]) == 1
    assert target.read_bytes() == b"precious"
    assert cli.main(["decode", str(root / "single.lic"), "-o", str(target), "--force"]) == 0
    assert target.read_bytes()[:4] == b"\x89PNG"
    assert os.listdir(tmp_path) == ["out.png"]


def test_interrupted_write_leaves_no_file(tmp_path):
    target = tmp_path / "x.lic"
    with pytest.raises(KeyboardInterrupt):
        with outputs.atomic_output(str(target)) as f:
            f.write(b"half")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with outputs.atomic_output(str(target)) as f:
            f.write(b"new")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["x.lic"]
