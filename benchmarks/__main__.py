"""``python -m benchmarks [speed] [options]``: rate-distortion sweep (default) or speed table.

See benchmarks/README.md. Results go to ``--out`` (default benchmarks/results/).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from benchmarks import report, speed
from benchmarks.lic_codec import lic_efforts, lic_name
from benchmarks.registry import registry
from benchmarks.sweep import list_images, results_json, sweep_codec, write_json

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = ROOT / ".." / "shared" / "data" / "kodak"
DEFAULT_OUT = ROOT / "benchmarks" / "results"
QUICK_IMAGES, QUICK_QUALITIES = 2, 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", nargs="?", choices=("rd", "speed", "report"), default="rd",
                   help="rd: rate-distortion sweep, JSONs, plots, BD-rate table (default); speed: speed table; "
                        "report: only redo plots and table from the JSONs in --out")
    p.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="folder of PNG images (default: Kodak)")
    p.add_argument("--codecs", default="", help="comma-separated codec names (default: all)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (timings are only clean with 1)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per image after one warm-up (median)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs per image before the timed ones")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_IMAGES} images, {QUICK_QUALITIES} qualities each")
    p.add_argument("--lic-fine", action="store_true", help="sweep lic at q = 1, 1.5, ..., 8")
    p.add_argument("--lic-qualities", default=None, metavar="Q[,Q...]",
                   help="lic's qualities instead of 1..8 (at least 4 for a BD-rate; e.g. 1,2,4,6,8 for the slow efforts)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads lic may use")
    p.add_argument("--effort", default="0", metavar="E[,E...]",
                   help="lic's encoder effort(s): 'lic' in --codecs runs lic at each, as lic (0), lic-effort1, ...")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    args = p.parse_args(argv)
    if args.jobs < 1 or args.repeats < 1 or args.threads < 1 or (args.limit is not None and args.limit < 1):
        p.error("--jobs, --repeats, --threads and --limit must be >= 1")
    if args.warmup < 0:
        p.error("--warmup must be >= 0")
    if args.lic_qualities is not None:
        try:
            args.lic_qualities = tuple(sorted({float(q) for q in args.lic_qualities.split(",")}))
        except ValueError:
            p.error(f"--lic-qualities takes numbers separated by commas, got {args.lic_qualities!r}")
        if not all(1 <= q <= 8 for q in args.lic_qualities):
            p.error("--lic-qualities: lic's qualities lie in [1, 8]")
    try:
        args.effort = sorted({int(e) for e in args.effort.split(",")})
    except ValueError:
        p.error(f"--effort takes integers separated by commas, got {args.effort!r}")
    if any(e not in lic_efforts() for e in args.effort):
        p.error(f"--effort: lic's efforts are {', '.join(map(str, lic_efforts()))}")
    return args


def lic_options(args: argparse.Namespace) -> dict:
    """What lic's adapter is built with (``LicCodec``'s keyword arguments)."""
    return {"fine": args.lic_fine, "threads": args.threads, "qualities": args.lic_qualities}


def _quick_qualities(qualities):
    """Two qualities from the middle of the sweep: around its 1/3 and 2/3 points."""
    qs = list(qualities)
    return [qs[len(qs) // 3], qs[(2 * len(qs)) // 3]] if len(qs) > 2 else qs


def select_codecs(args: argparse.Namespace) -> tuple[dict, dict[str, str]]:
    """(available codecs by name, skipped codecs → reason); unknown names are an error."""
    codecs = registry(lic_options(args))
    default = [name for name in codecs if not name.startswith("lic-")]  # lic's variants: asked for by name
    wanted = [c.strip() for c in args.codecs.split(",") if c.strip()] or default
    if "lic" in wanted:  # lic at each asked effort, in its place
        at = wanted.index("lic")
        wanted[at:at + 1] = [lic_name(e) for e in args.effort]
    unknown = [c for c in wanted if c not in codecs]
    if unknown:
        raise SystemExit(f"unknown codec(s): {', '.join(unknown)}; known: {', '.join(codecs)}")
    chosen, skipped = {}, {}
    for name in wanted:
        ok, why = codecs[name].available()
        if ok:
            chosen[name] = codecs[name]
        else:
            skipped[name] = why
            print(f"skipping {name}: {why}", file=sys.stderr)
    return chosen, skipped


def run_rd(args: argparse.Namespace) -> None:
    images = list_images(args.images, QUICK_IMAGES if args.quick else args.limit)
    codecs, skipped = select_codecs(args)
    plan = {name: (_quick_qualities(c.qualities) if args.quick else list(c.qualities)) for name, c in codecs.items()}
    total = sum(len(qs) for qs in plan.values()) * len(images)
    args.out.mkdir(parents=True, exist_ok=True)
    with tqdm(total=total, unit="img") as bar:
        for name, codec in codecs.items():
            bar.set_description(name)
            measurements = []
            try:
                for m in sweep_codec(codec, images, plan[name], args.repeats, args.jobs, lic_options(args), args.warmup):
                    measurements.append(m)
                    bar.update()
            except Exception as exc:  # one broken codec must not cost the others' results
                skipped[name] = f"failed while coding: {type(exc).__name__}: {exc}"
                print(f"\nskipping {name}: {skipped[name]}", file=sys.stderr)
                bar.update(len(plan[name]) * len(images) - len(measurements))
                continue
            write_json(args.out / f"{name}.json", results_json(codec, measurements, plan[name]))
    write_report(args, skipped)


def write_report(args: argparse.Namespace, skipped: dict[str, str]) -> None:
    """Plots and BD-rate table from every codec JSON in ``args.out`` (skipped codecs, and lic's curves of other
    weights than ``lic``'s own, left out)."""
    all_names = set(registry(lic_options(args)))
    curves = {k: v for k, v in report.load_curves(args.out).items() if k in all_names}
    skipped = {**report.other_weights(args.out, curves), **skipped}
    measured = {k: v for k, v in curves.items() if k not in skipped}
    references = report.load_curves(report.REFERENCE_DIR, report.REFERENCE_CURVES)
    if not args.no_plots:
        report.plot(measured, references, args.out)
    table = report.bd_table(measured, references, skipped, times=report.median_times(args.out, measured))
    (args.out / "bd_rate.md").write_text(table)
    print(table)


def run_speed(args: argparse.Namespace) -> None:
    images = list_images(args.images, QUICK_IMAGES if args.quick else args.limit)
    codecs, skipped = select_codecs(args)
    rows = []
    for name in tqdm(list(codecs), desc="speed", unit="codec"):
        try:
            rows += speed.speed_table([name], [str(p) for p in images], args.repeats, lic_options(args), args.warmup)
        except Exception as exc:  # as in the RD sweep: note it, keep the other codecs
            skipped[name] = f"failed while coding: {type(exc).__name__}: {exc}"
            print(f"skipping {name}: {skipped[name]}", file=sys.stderr)
    text = speed.speed_markdown(rows, skipped, len(images))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "speed.md").write_text(text)
    print(text)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.command == "speed":
        run_speed(args)
    elif args.command == "report":
        codecs = registry(lic_options(args))
        missing = [name for name in codecs if not (args.out / f"{name}.json").exists()]
        write_report(args, {name: why for name in missing for ok, why in [codecs[name].available()] if not ok})
    else:
        run_rd(args)


if __name__ == "__main__":
    main()
