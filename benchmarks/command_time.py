"""``python -m benchmarks.command_time``: the wall time of one whole ``lic encode`` and ``lic decode`` command.

Issue 29's targets are for the command a user types, start-up included: ``lic decode kodim23.lic -o x.png`` at
most 0.4 s and ``lic encode kodim23.png`` at most 0.6 s, median of 5.  This runs exactly that: the ``lic``
console script of the interpreter running this module (``<venv>/bin/lic``, never a pyenv shim, whose bash
start-up would be counted), once untimed to warm the page cache, then ``--repeats`` timed runs of each.

Wall time is only honest on an idle machine: next to each median it prints the commands' CPU time (user +
system, from ``getrusage`` of the children; with several threads it may exceed the wall time) and the load
average before the runs, and warns when other work was running.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["lic_script", "timed", "main"]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = ROOT / ".." / "shared" / "data" / "kodak" / "kodim23.png"


def lic_script(python: str = sys.executable) -> Path:
    """The ``lic`` console script installed beside ``python`` (a venv's ``bin/``); ``FileNotFoundError`` if none."""
    script = Path(python).parent / "lic"
    if not script.is_file():
        raise FileNotFoundError(f"no lic script beside {python} (pip install -e . into that environment)")
    return script


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``command``, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _median_of(command: list[str], repeats: int, env: dict[str, str]) -> tuple[float, float]:
    timed(command, env)  # the page cache, the interpreter's bytecode cache
    runs = [timed(command, env) for _ in range(repeats)]
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.command_time", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="the image (default: Kodak's kodim23)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs of each command (median)")
    p.add_argument("--runtime", default="onnx", help="runtimes to time, comma-separated (onnx, torch)")
    args = p.parse_args(argv)
    script = str(lic_script())
    load = os.getloadavg()[0]
    print(f"lic: {script}; load average before: {load:.2f} on {os.cpu_count()} CPUs")
    if load > 0.5:
        print("warning: the machine is not idle; these wall times overstate lic's", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        coded, decoded = str(Path(tmp) / "x.lic"), str(Path(tmp) / "x.png")
        for runtime in args.runtime.split(","):
            env = dict(os.environ)
            flags = ["--runtime", runtime, "--force"]
            enc = _median_of([script, "encode", str(args.image), "-o", coded, *flags], args.repeats, env)
            dec = _median_of([script, "decode", coded, "-o", decoded, *flags], args.repeats, env)
            print(f"{runtime}: lic encode {enc[0]:.3f} s wall ({enc[1]:.3f} s CPU), "
                  f"lic decode {dec[0]:.3f} s wall ({dec[1]:.3f} s CPU), median of {args.repeats}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
