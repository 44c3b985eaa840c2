"""``lic encode`` on folders and on outputs that cannot be written: claims a batch user relies on.

Runs ``cli.main`` in this process (torch is loaded once) with the tiny model.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from codec import cli
from codec.cli import decode, encode

pytestmark = pytest.mark.usefixtures("use_tiny_weights")


def run(capsys, *args) -> tuple[int, str]:
    status = cli.main([str(a) for a in args])
    return status, capsys.readouterr().err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("lic: error: ")]


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def shots(tmp_path, make_image) -> Path:
    """shots/{a,b}.png, shots/sub/c.png, shots/sub/deeper/d.jpg, plus hidden and non-image files."""
    folder = tmp_path / "shots"
    (folder / "sub" / "deeper").mkdir(parents=True)
    (folder / ".git").mkdir()
    Image.fromarray(make_image(17, 23, 3, seed=1)).save(folder / "a.png")
    Image.fromarray(make_image(19, 21, 3, seed=2)).save(folder / "b.png")
    Image.fromarray(make_image(13, 15, 3, seed=3)).save(folder / "sub" / "c.png")
    Image.fromarray(make_image(11, 9, 3, seed=4)).save(folder / "sub" / "deeper" / "d.jpg")
    Image.fromarray(make_image(11, 9, 3, seed=5)).save(folder / ".git" / "e.png")
    (folder / "._a.png").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")  # AppleDouble
    Image.fromarray(make_image(11, 9, 3, seed=6)).save(folder / ".thumb.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


# -- folders ------------------------------------------------------------------------------------------

def test_folder_skips_hidden_files(shots, tmp_path, capsys):
    status, err = run(capsys, "encode", shots, "-d", tmp_path / "out")
    assert status == 0, err
    assert tree(tmp_path / "out") == ["a.lic", "b.lic"]
    assert "encoded 2 files" in err.splitlines()[-1]


def test_folder_goes_on_past_bad_files_and_reports_them(shots, tmp_path, capsys):
    (shots / "junk.png").write_bytes(b"this is no PNG at all")
    good = (shots / "a.png").read_bytes()
    (shots / "cut.png").write_bytes(good[: len(good) // 2])  # a valid header, pixels cut short
    status, err = run(capsys, "encode", shots, "-d", tmp_path / "out")
    assert status == 1
    assert tree(tmp_path / "out") == ["a.lic", "b.lic"]
    errors = error_lines(err)
    assert len(errors) == 2 and any("junk.png" in e for e in errors) and any("cut.png" in e for e in errors)
    summary = err.strip().splitlines()[-1]
    assert "encoded 2 of 4 files" in summary and "2 failed" in summary
    assert "junk.png" in summary and "cut.png" in summary
    assert "Traceback" not in err


def test_skip_existing_resumes_a_half_finished_batch(shots, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(capsys, "encode", shots, "-d", out)[0] == 0
    (out / "b.lic").unlink()
    kept = (out / "a.lic").stat().st_mtime_ns
    status, err = run(capsys, "encode", shots, "-d", out)
    assert status == 1 and "a.lic: output exists" in err and "--skip-existing" in err
    assert not (out / "b.lic").exists()
    status, err = run(capsys, "encode", shots, "-d", out, "--skip-existing")
    assert status == 0, err
    assert tree(out) == ["a.lic", "b.lic"] and (out / "a.lic").stat().st_mtime_ns == kept
    summary = err.strip().splitlines()[-1]
    assert "encoded 1 file" in summary and "skipped 1 existing" in summary
    status, err = run(capsys, "encode", shots, "-d", out, "--skip-existing", "--force")
    assert status == 2 and len(error_lines(err)) == 1


def test_recursive_walk_keeps_the_tree_under_the_output_folder(shots, tmp_path, capsys):
    status, err = run(capsys, "encode", "-r", shots, "-d", tmp_path / "out")
    assert status == 0, err
    assert tree(tmp_path / "out") == ["a.lic", "b.lic", "sub/c.lic", "sub/deeper/d.lic"]
    status, err = run(capsys, "encode", "--recursive", shots)
    assert status == 0, err
    assert (shots / "sub" / "deeper" / "d.lic").is_file() and not (shots / ".git" / "e.lic").exists()


def test_two_inputs_for_one_output_are_named(shots, tmp_path, capsys, make_image):
    Image.fromarray(make_image(9, 9, 3)).save(shots / "a.jpg")
    status, err = run(capsys, "encode", shots, "-d", tmp_path / "out")
    assert status == 2
    (line,) = error_lines(err)
    assert str(shots / "a.jpg") in line and str(shots / "a.png") in line and "a.lic" in line
    assert not (tmp_path / "out").exists()


def test_progress_bar_only_on_a_terminal(shots, tmp_path, capsys, monkeypatch):
    status, err = run(capsys, "encode", shots, "-d", tmp_path / "plain")
    assert status == 0 and "\r" not in err
    assert len(err.strip().splitlines()) == 1  # the summary, nothing else

    class Terminal(__import__("io").StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert cli.main(["encode", str(shots), "-d", str(tmp_path / "tty")]) == 0
    assert "\r" in terminal.getvalue() and "encoded 2 files" in terminal.getvalue()


# -- outputs are checked before any work ------------------------------------------------------------

@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if the model loads: these errors must come before any coding."""
    def refuse(args):
        raise AssertionError("the model was loaded before the output was checked")
    for command in (encode, decode):  # where each command looks it up
        monkeypatch.setattr(command, "load_codec", refuse)


@pytest.fixture
def photo(tmp_path, make_image) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(make_image(17, 23, 3)).save(path)
    return path


@pytest.mark.parametrize("target", [[], ["--target-size", "20000"], ["--target-psnr", "30"]])
def test_missing_output_directory_is_found_before_encoding(photo, tmp_path, capsys, no_model, target):
    status, err = run(capsys, "encode", photo, "-o", tmp_path / "nodir" / "x.lic", *target)
    assert status == 1
    (line,) = err.strip().splitlines()
    assert "does not exist" in line and "nodir" in line


def test_decode_checks_its_output_before_decoding(photo, tmp_path, capsys, no_model):
    (tmp_path / "x.lic").write_bytes(b"LIC1")
    status, err = run(capsys, "decode", tmp_path / "x.lic", "-o", tmp_path / "nodir" / "x.png")
    assert status == 1 and "does not exist" in err


def _unwritable_directory(tmp_path: Path) -> Path:
    """A directory this process cannot create files in (root ignores permission bits)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    for candidate in (ro, Path("/sys")):
        try:
            fd, probe = tempfile.mkstemp(dir=candidate)
        except OSError:
            return candidate
        os.close(fd)
        os.unlink(probe)
    pytest.skip("no unwritable directory on this machine")


def test_read_only_directory_is_refused_before_encoding(photo, tmp_path, capsys, no_model):
    ro = _unwritable_directory(tmp_path)
    try:
        status, err = run(capsys, "encode", photo, "-o", ro / "x.lic")
        assert status == 1
        (line,) = err.strip().splitlines()
        assert "cannot write" in line and "[Errno" not in line
        status, err = run(capsys, "encode", photo, "-d", ro / "newsub")
        assert status == 1
        (line,) = err.strip().splitlines()
        assert "newsub" in line and "cannot create" in line and "[Errno" not in line
    finally:
        (tmp_path / "ro").chmod(0o755)


def test_output_folder_under_a_file_is_one_clear_line(photo, tmp_path, capsys, no_model):
    (tmp_path / "afile").write_text("x")
    status, err = run(capsys, "encode", photo, "-d", tmp_path / "afile" / "newsub")
    assert status == 1
    (line,) = err.strip().splitlines()
    assert "not a directory" in line and "[Errno" not in line
    assert not (tmp_path / "afile" / "newsub").exists()


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_output_that_is_a_directory_gets_the_same_advice_with_or_without_force(photo, tmp_path, capsys,
                                                                                no_model, force):
    (tmp_path / "out.lic").mkdir()
    status, err = run(capsys, "encode", photo, "-o", tmp_path / "out.lic", *force)
    assert status == 1
    (line,) = err.strip().splitlines()
    assert "is a directory" in line and "-d" in line and "--force" not in line
    (tmp_path / "back.png").mkdir()
    (tmp_path / "x.lic").write_bytes(b"LIC1")
    status, err = run(capsys, "decode", tmp_path / "x.lic", "-o", tmp_path / "back.png", *force)
    assert status == 1
    (line,) = err.strip().splitlines()
    assert "is a directory" in line and "--force" not in line


def test_output_folder_dash_is_refused(photo, tmp_path, capsys, no_model, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, err = run(capsys, "encode", photo, "-d", "-")
    assert status == 2 and len(error_lines(err)) == 1 and "-d" in err
    assert not (tmp_path / "-").exists()


def test_output_folder_is_created_only_when_something_is_written(photo, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(encode, "load_codec", lambda args: (_ for _ in ()).throw(RuntimeError("no model today")))
    status, err = run(capsys, "encode", photo, "-d", tmp_path / "new" / "deeper")
    assert status == 1 and "no model today" in err
    assert not (tmp_path / "new").exists()


def test_written_files_decode(shots, tmp_path, capsys):
    import codec

    assert run(capsys, "encode", "-r", shots, "-d", tmp_path / "out")[0] == 0
    decoded = codec.decompress((tmp_path / "out" / "sub" / "deeper" / "d.lic").read_bytes())
    assert decoded.size == (9, 11) and np.asarray(decoded).dtype == np.uint8
