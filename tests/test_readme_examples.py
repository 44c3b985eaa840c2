"""The README's examples run as written on a CPU machine (as constriction's test_docexamples.py).

The "Python" section's code blocks are executed in a fresh directory holding ``photo.png``; the
"Command line" section's bash block runs there too, with a ``shots/`` folder beside the photo.
Both use the tiny model (``LIC_WEIGHTS``), so they test the commands, not the weights.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import codec

pytestmark = pytest.mark.usefixtures("use_tiny_weights")
ROOT = Path(codec.__file__).resolve().parent.parent
README = ROOT / "README.md"


def blocks(section: str, language: str) -> list[str]:
    """The ```language fenced blocks of one ``## section`` of the README."""
    text = README.read_text()
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"README has no '## {section}' section"
    return re.findall(rf"^```{language}\n(.*?)^```", match.group(1), re.S | re.M)


@pytest.fixture
def workdir(tmp_path, make_image, monkeypatch):
    Image.fromarray(make_image(48, 64, 3)).save(tmp_path / "photo.png")
    (tmp_path / "shots" / "holiday").mkdir(parents=True)
    Image.fromarray(make_image(32, 40, 3, seed=1)).save(tmp_path / "shots" / "beach.png")
    Image.fromarray(make_image(24, 36, 3, seed=2)).save(tmp_path / "shots" / "holiday" / "hill.jpg")
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")  # a CPU machine, even where a GPU is lent
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return tmp_path, env


def test_python_section_runs_as_written(workdir):
    cwd, env = workdir
    (code,) = blocks("Python", "python")
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode()
    assert (cwd / "copy.lic").read_bytes()[:4] == b"LIC1"


def test_lossless_section_runs_as_written(workdir):
    cwd, env = workdir
    (code,) = blocks("Lossless and near-lossless", "python")
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode()
    assert (cwd / "near.lic").read_bytes()[4] == 2  # a version-2 file


@pytest.mark.slow  # ten `lic` processes, each importing torch
def test_command_line_section_runs_as_written(workdir):
    cwd, env = workdir
    (script,) = blocks("Command line", "bash")
    bindir = cwd / "bin"  # `lic` as the installed console script would run it, from this source tree
    bindir.mkdir()
    (bindir / "lic").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m codec "$@"\n')
    (bindir / "lic").chmod(0o755)
    env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env,
                            capture_output=True, timeout=600)
    assert result.returncode == 0, result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()
    commands = "\n".join(line.split("#")[0] for line in script.splitlines())
    outputs = re.findall(r"(?:-o |> )(\S+\.(?:lic|png|jpg|webp|tif|ppm))", commands)
    assert len(outputs) >= 5
    for name in outputs:
        assert (cwd / name).stat().st_size > 0, name
    if "-r -d lic/" in commands:
        assert (cwd / "lic" / "beach.lic").is_file() and (cwd / "lic" / "holiday" / "hill.lic").is_file()


def test_readme_says_what_the_default_quality_is_measured_on():
    """No single-image rate promised for the default; the measurement it points to exists."""
    text = " ".join(README.read_text().split())
    assert "~0.5 bpp" not in text and "default quality (~" not in text
    assert "24 Kodak images" in text and "codec/weights/<model id>-kodak.json" in text
    assert "codec.DEFAULT_QUALITY" in text
    measured = sorted((ROOT / "codec" / "weights").glob("*-kodak.json"))
    assert measured, "the shipped model's Kodak measurement is missing"
    import json

    results = json.loads(measured[0].read_text())["results"]
    assert {"quality", "bpp"} <= set(results)
