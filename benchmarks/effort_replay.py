"""Replays of recorded refinement trajectories (``benchmarks.effort_trace``) under each stopping rule.

A rule is (what it watches, its patience P, how often the hard-rounded cost is checked c): "fixed" runs
the whole cap, "cost" stops once the minimum of the checked hard-rounded cost has not fallen for P steps,
"emv-α" once ES-EMV's minimum has not (``codec.stopping``).  As in ``codec.refine``, a rule keeps the
checked latents of lowest hard-rounded cost, and the encoder keeps the cheaper real file of those and the
one-pass latents.  The trajectories hold the latents of every ``CHECK``-th step only, so an EMV rule that
stops between two of them is given the earlier one's latents (and charged the time of the steps it ran).

For each rule: the BD-rate against effort 0 of the mean curves over the images (bpp and PSNR averaged per
quality, as ``benchmarks.sweep``), and the mean CPU seconds of refinement per image and quality.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks.bd import bd_rate
from benchmarks.effort_trace import ALPHAS, CHECK, KODAK, arguments, crop, real_cost
from codec.stopping import EsEmv, Plateau

PATIENCES = (4, 8, 12, 16, 24, 32)
CHECKS = (2, 4, 8)


def _fixed(run: dict, cap: int, c: int) -> tuple[int, list[int]]:
    return cap, [0, *range(c, cap, c), cap]


def _on_cost(run: dict, cap: int, c: int, patience: int) -> tuple[int, list[int]]:
    """(steps run, steps whose hard-rounded cost was checked) under the cost plateau."""
    rule, checked = Plateau(patience), [0]
    rule.update(0, run["hard"][0])
    for k in range(c, cap, c):
        checked.append(k)
        if rule.update(k, run["hard"][k // CHECK]):
            return k, checked
    return cap, checked + [cap]


def _on_emv(run: dict, cap: int, c: int, patience: int, alpha: str) -> tuple[int, list[int]]:
    """(steps run, steps checked) under ES-EMV; a stop between recorded steps keeps the earlier one."""
    rule = EsEmv(float(alpha), patience)
    for k, emv in enumerate(run["emv"][alpha]):
        if rule.watch(k, emv):
            return k, [0, *range(c, k + 1, c), k - k % CHECK]
    return _fixed(run, cap, c)


def rules(cap: int):
    """Every rule replayed: name -> function(run) -> (steps run, steps checked)."""
    out = {f"fixed c{c}": (lambda run, c=c: _fixed(run, cap, c)) for c in CHECKS}
    for p in PATIENCES:
        for c in CHECKS:
            out[f"cost P{p} c{c}"] = lambda run, c=c, p=p: _on_cost(run, cap, c, p)
        for a in ALPHAS:
            out[f"emv a{a} P{p} c8"] = lambda run, p=p, a=a: _on_emv(run, cap, 8, p, f"{a}")
    return out


def replay(args) -> None:
    from codec.engines.runtime import load

    coder = load(None, "torch", "cpu").coder
    out, cap = Path(args.out), args.cap
    table = rules(cap)
    points = defaultdict(dict)  # rule -> (image, q) -> (bpp, psnr, refine seconds, steps, cost / effort 0's)
    base, coded, rest = {}, {}, {}
    for path in sorted(out.glob(f"{args.relaxation}{cap}-*.json")):
        _, name, q = path.stem.split("-")
        q = float(q[1:])
        run, trace = json.loads(path.read_text()), np.load(path.with_suffix(".npz"))
        rgb = crop(KODAK / f"{name}.png", args.crop)
        pixels = rgb.shape[0] * rgb.shape[1]
        base[name, q] = (run["effort0"]["bits"] / pixels, run["effort0"]["psnr"])
        for rule, play in table.items():
            steps, checked = play(run)
            kept = min(checked, key=lambda k: (run["hard"][k // CHECK], k))
            if (name, q, kept) not in coded:
                coded[name, q, kept] = real_cost(coder, trace["latents"][kept // CHECK][None], trace["z"], rgb, q)
            file = min(run["effort0"], coded[name, q, kept], key=lambda f: f["cost"])
            seconds = steps * run["step_time"] + len(set(checked)) * run["check_time"]
            rest[name, q] = run["analyse_time"] + 2 * run["code_time"]  # both files coded and decoded
            points[rule][name, q] = (file["bits"] / pixels, file["psnr"], seconds, steps,
                                     file["cost"] / run["effort0"]["cost"] - 1)
    _report(base, points, out / f"replay-{args.relaxation}{cap}.md", float(np.mean(list(rest.values()))))


def _curve(points: dict, qualities: list[float]) -> tuple[list[float], list[float]]:
    return ([float(np.mean([v[0] for (n, q), v in points.items() if q == qq])) for qq in qualities],
            [float(np.mean([v[1] for (n, q), v in points.items() if q == qq])) for qq in qualities])


def _report(base: dict, points: dict, path: Path, rest: float) -> None:
    qualities = sorted({q for _, q in base})
    images = sorted({n for n, _ in base})
    anchor = _curve(base, qualities)
    lines = [f"images {', '.join(images)}; qualities {', '.join(f'{q:g}' for q in qualities)}; "
             f"the rest of a refined encode (analysis, both files coded and decoded): {rest:.2f} CPU s", "",
             "| rule | BD-rate vs effort 0 | R + λD vs effort 0 (mean) | refine CPU s (mean) | steps (mean) |",
             "|---|---|---|---|---|"]
    rows = []
    for rule, got in points.items():
        rate, psnr = _curve(got, qualities)
        bd = bd_rate(*anchor, rate, psnr) if len(qualities) >= 4 else float("nan")
        rows.append((bd, *(float(np.mean([v[i] for v in got.values()])) for i in (4, 2, 3)), rule))
    for bd, cost, seconds, steps, rule in sorted(rows, key=lambda r: r[2]):
        lines.append(f"| {rule} | {bd:+.2f} % | {100 * cost:+.2f} % | {seconds:.2f} | {steps:.1f} |")
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    replay(arguments(__doc__.splitlines()[0]))
