"""A signal that ends ``lic`` (SIGTERM from ``kill`` or ``timeout``, SIGHUP, SIGINT) leaves nothing
half-written behind: no temporary file, no new output, no empty output folder.

Each run pauses at a chosen point (a harness wraps one function in the child, nothing in lic
changes), the test sends the signal there, and then looks at what is left on disk.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

import codec

pytestmark = pytest.mark.usefixtures("use_tiny_weights")
SOURCE_ROOT = str(Path(codec.__file__).resolve().parent.parent)

# Runs lic with a pause: at "replace" once the temporary output is fully written (just before it is
# renamed into place), at "load" while the model loads (before any output exists).
HARNESS = """
import os, sys, time
pause, marker = os.environ["PAUSE"], os.environ["MARKER"]

def hold():
    open(marker, "w").close()
    time.sleep(60)

if pause == "replace":
    real_replace = os.replace
    def replace(src, dst, **kw):
        if str(src).endswith(".tmp"):
            hold()
        return real_replace(src, dst, **kw)
    os.replace = replace
import codec.cli
import codec.cli.encode
if pause == "load":
    real_load = codec.cli.encode.load_codec
    def load(args):
        hold()
        return real_load(args)
    codec.cli.encode.load_codec = load
sys.exit(codec.cli.main(sys.argv[1:]))
"""

STATUS = {signal.SIGTERM: 143, signal.SIGHUP: 129, signal.SIGINT: 130}
CASES = {
    "decode-term": (signal.SIGTERM, "replace", ["decode", "big.lic", "-o", "bt.png"]),
    "encode-term": (signal.SIGTERM, "replace", ["encode", "big.png", "-o", "bt.lic"]),
    "decode-hup": (signal.SIGHUP, "replace", ["decode", "big.lic", "-o", "bt.webp"]),
    "encode-int": (signal.SIGINT, "replace", ["encode", "big.png", "-o", "int.lic"]),
    "encode-term-loading": (signal.SIGTERM, "load", ["encode", "big.png", "-d", "out/deeper"]),
}


def test_terminating_signals_leave_no_temporary_file(tmp_path, make_image):
    pixels = make_image(64, 80, 3)
    data = codec.compress(pixels)
    procs = {}
    for name, (signum, pause, args) in CASES.items():
        work = tmp_path / name
        work.mkdir()
        Image.fromarray(pixels).save(work / "big.png")
        (work / "big.lic").write_bytes(data)
        env = dict(os.environ, PAUSE=pause, MARKER=str(tmp_path / f"{name}.ready"))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [SOURCE_ROOT, env.get("PYTHONPATH")]))
        procs[name] = subprocess.Popen([sys.executable, "-c", HARNESS, *args], cwd=work, env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        waiting = dict(procs)
        while waiting and time.monotonic() < deadline:
            for name in list(waiting):
                if (tmp_path / f"{name}.ready").exists():
                    waiting.pop(name).send_signal(CASES[name][0])
                elif waiting[name].poll() is not None:
                    pytest.fail(f"{name} ended before the pause: {waiting.pop(name).stderr.read().decode()}")
            time.sleep(0.02)
        assert not waiting, f"never reached the pause: {sorted(waiting)}"
        for name, proc in procs.items():
            err = proc.communicate(timeout=60)[1].decode()
            assert sorted(os.listdir(tmp_path / name)) == ["big.lic", "big.png"], name
            assert proc.returncode == STATUS[CASES[name][0]], (name, proc.returncode, err)
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("lic: error: "), (name, err)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
