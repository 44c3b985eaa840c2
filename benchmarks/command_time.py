"""``python -m benchmarks.command_time``: the time of one whole ``lic encode`` and ``lic decode`` command.

Issue 29's targets are for the command a user types, start-up included: ``lic decode kodim23.lic -o x.png`` at
most 0.4 s and ``lic encode kodim23.png`` at most 0.6 s, median of 5.  This runs exactly that: the ``lic``
console script of the interpreter running this module (``<venv>/bin/lic``, never a pyenv shim, whose bash
start-up would be counted), once untimed to warm the page cache, then ``--repeats`` timed runs of each.

Wall time is only honest on an idle machine: next to each median it prints the commands' CPU time (user +
system, from ``getrusage`` of the children; with several threads it may exceed the wall time), split into
user and system, and the load average before the runs, and warns when other work was running.  On a busy
machine the CPU time is the figure to compare.

``--trees A,B`` compares source trees (a branch's worktree against main's, say): the same script runs
with ``PYTHONPATH`` set to each tree, round by round and in alternating order, so that both see the same
conditions.  It also checks that the trees write the same ``.lic`` bytes and decode the same pixels.
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
from typing import NamedTuple

__all__ = ["lic_script", "timed", "measured", "Run", "main"]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = ROOT / ".." / "shared" / "data" / "kodak" / "kodim23.png"


class Run(NamedTuple):
    wall: float
    user: float
    system: float

    @property
    def cpu(self) -> float:
        return self.user + self.system


def lic_script(python: str = sys.executable) -> Path:
    """The ``lic`` console script installed beside ``python`` (a venv's ``bin/``); ``FileNotFoundError`` if none."""
    script = Path(python).parent / "lic"
    if not script.is_file():
        raise FileNotFoundError(f"no lic script beside {python} (pip install -e . into that environment)")
    return script


def measured(command: list[str], env: dict[str, str] | None = None) -> Run:
    """Wall, user and system seconds of one run of ``command``, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Run(wall, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime)


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``command``, which must succeed."""
    run = measured(command, env)
    return run.wall, run.cpu


def _summary(runs: list[Run]) -> str:
    median = statistics.median
    return (f"{median(r.wall for r in runs):.3f} s wall ({median(r.cpu for r in runs):.3f} s CPU: "
            f"user {median(r.user for r in runs):.3f}, system {median(r.system for r in runs):.3f}; "
            f"CPU of each run {', '.join(f'{r.cpu:.3f}' for r in runs)})")


def _same_pixels(paths: list[Path]) -> bool:
    import numpy as np
    from PIL import Image

    first = np.asarray(Image.open(paths[0]))
    return all(np.array_equal(first, np.asarray(Image.open(p))) for p in paths[1:])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.command_time", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="the image (default: Kodak's kodim23)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs of each command (median)")
    p.add_argument("--runtime", default="onnx", help="runtimes to time, comma-separated (onnx, torch)")
    p.add_argument("--trees", help="source trees to compare, comma-separated (PYTHONPATH=TREE for each, "
                                   "interleaved); default: the code the lic script imports")
    args = p.parse_args(argv)
    script = str(lic_script())
    trees = [str(Path(t).resolve()) for t in args.trees.split(",")] if args.trees else [None]
    load = os.getloadavg()[0]
    print(f"lic: {script}; load average before: {load:.2f} on {os.cpu_count()} CPUs")
    if load > 0.5:
        print("warning: the machine is not idle; these wall times overstate lic's", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        for runtime in args.runtime.split(","):
            flags = ["--runtime", runtime, "--force"]
            envs = [dict(os.environ, **({"PYTHONPATH": t} if t else {})) for t in trees]
            coded = [str(Path(tmp) / f"x{i}.lic") for i in range(len(trees))]
            decoded = [Path(tmp) / f"x{i}.png" for i in range(len(trees))]

            def encode(i: int) -> Run:
                return measured([script, "encode", str(args.image), "-o", coded[i], *flags], envs[i])

            def decode(i: int) -> Run:  # every tree decodes the first tree's file
                return measured([script, "decode", coded[0], "-o", str(decoded[i]), *flags], envs[i])

            for i in range(len(trees)):  # the page cache, the interpreter's bytecode cache
                encode(i)
            for i in range(len(trees)):
                decode(i)
            runs: dict[str, list[list[Run]]] = {"encode": [[] for _ in trees], "decode": [[] for _ in trees]}
            for r in range(args.repeats):
                order = list(range(len(trees)))[:: 1 if r % 2 == 0 else -1]
                for i in order:
                    runs["encode"][i].append(encode(i))
                for i in order:
                    runs["decode"][i].append(decode(i))
            for i, tree in enumerate(trees):
                name = f"{runtime} {tree}" if tree else runtime
                print(f"{name}: lic encode {_summary(runs['encode'][i])}")
                print(f"{name}: lic decode {_summary(runs['decode'][i])}, median of {args.repeats}")
            if len(trees) > 1:
                same_bytes = len({Path(c).read_bytes() for c in coded}) == 1
                print(f"{runtime}: the trees' .lic files are {'identical' if same_bytes else 'DIFFERENT'}, "
                      f"their decoded pixels {'identical' if _same_pixels(decoded) else 'DIFFERENT'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
