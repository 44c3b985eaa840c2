"""Refinement schedules compared at equal CPU time: each recorded once at its cap, replayed under cost plateaus.

``python -m benchmarks.effort_schedule --out FILE --schedules sga100,ste5-ngd+sga100`` runs, on each image and
quality, each schedule (``benchmarks.effort_choice.budget`` names; ``+`` joins phases, ``RefineConfig.then``)
with its last phase at its full cap, no stopping, and its hard-rounded cost checked every ``CHECK`` steps;
it records the cost of every check, the CPU seconds (``time.process_time``, one torch thread) of the phases
before the last, of a descent step and of a check of the last phase, and codes as real files the latents
that each stopping rule of ``RULES`` keeps.  ``--report`` prints, per schedule and rule, the BD-rate against
effort 0 of the mean curves (bpp and PSNR averaged per quality) beside the refinement's mean CPU seconds.

Why a replay is exact (as ``benchmarks.effort_replay``): at an equal cap the step size and SGA's
temperature follow the same schedule and the Gumbel draws come from the same seeded generator whether or
not a rule watches, and a check changes nothing of the descent; so a stopped run is a prefix of the full
one.  A rule (P, c) checks the last phase's cost every c steps, stops once its minimum has not fallen for P
steps, and keeps the checked latents of lowest cost (the earlier phases' best included); the encoder's
choice against the one-pass file is applied as the cheaper real file.  Its time is the earlier phases'
measured time, plus the steps it ran and the checks it made at the measured step and check times.
Images of one refinement tile only (crops, or Kodak's 768 x 512).  ``--record-steps N`` stops a recording after N steps of the last phase (cheap looks at short budgets);
rules that would have run longer are then left out.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from benchmarks.bd import bd_rate
from benchmarks.effort_choice import budget, parse_subset, scored, start_run, subset_arguments
from benchmarks.effort_trace import KODAK, crop, image_names
from codec.coding import rgb_to_input
from codec.refine import RefineStep, refine_latents
from codec.stopping import Plateau

CHECK = 4  # steps between recorded checks of the last phase: rules may check every 4 or 8 steps
RULES = [("fixed", 0, 4), ("fixed", 0, 8)] + [("cost", p, c) for p in (4, 8, 12, 16, 24, 32) for c in (4, 8)]


class _Enough(Exception):
    """Raised by the recorder to end a recording after ``--record-steps`` steps of the last phase."""


class _Recorder:
    """An observer of ``refine_latents`` (one tile): the checks of the last phase (step, cost, latents), and
    the CPU time of the earlier phases, of the last phase's descent steps and of its checks.  A descent step
    runs from the previous mark to its ``progress()``, a check from the previous mark to its observation;
    the recorder's own time is left out."""

    def __init__(self, offset: int, stop_after: int | None):
        self.offset, self.stop_after = offset, stop_after
        self.checks, self.latents = [], []
        self.before_s, self.step_s, self.check_s, self.steps, self.computed = 0.0, 0.0, 0.0, 0, 0
        self.start = self.mark = time.process_time()

    def progress(self) -> None:
        now = time.process_time()
        if self.checks:  # in the last phase
            self.step_s += now - self.mark
            self.steps += 1
            if self.stop_after is not None and self.steps >= self.stop_after:
                raise _Enough
        self.mark = now

    def __call__(self, seen: RefineStep) -> None:
        if seen.hard_cost is None or seen.reconstruction is not None or seen.step < self.offset:
            return  # a descent step's forward pass (timed with its step), or an earlier phase's
        now = time.process_time()
        if self.offset and seen.step == self.offset:
            # the earlier phases' final check, then their best told again as the last phase's first check
            self.before_s = now - self.start
            self.checks, self.latents = [], []
        else:
            self.check_s += now - self.mark
            self.computed += 1
        self.checks.append((seen.step - self.offset, seen.hard_cost))
        self.latents.append(seen.latents.detach().clone())
        self.mark = time.process_time()


def play(checks: list[tuple[int, float]], cap: int, kind: str, patience: int, c: int) -> tuple[int, list[int]] | None:
    """(steps run, indexes into ``checks`` of the checks made) under a rule; None: the recording ended first."""
    cost = dict(checks)
    rule, made = Plateau(patience), [0]
    rule.update(0, cost[0])
    for k in range(c, cap, c):
        if k not in cost:
            return None
        made.append(k)
        if kind == "cost" and rule.update(k, cost[k]):
            return k, [list(cost).index(s) for s in made]
    if cap not in cost:
        return None
    return cap, [list(cost).index(s) for s in made + [cap]]


def record(args) -> None:
    out = Path(args.out)
    coder, done = start_run(out, "schedule")
    model = coder.transforms.model
    for name in image_names(args.images):
        rgb = crop(KODAK / f"{name}.png", args.crop)
        for q in (float(v) for v in args.qualities.split(",")):
            todo = [s for s in args.schedules.split(",") if (name, q, s) not in done]
            if not todo:
                continue
            x_padded, y, z = coder.analyse(rgb_to_input(rgb), q)
            features = torch.from_numpy(coder.entropy.features(z)).float()
            base = scored(coder, y, z, rgb, q)
            for schedule in todo:
                phases = list(budget(schedule).phases())
                last = replace(phases[-1], patience=0, check_every=CHECK)
                config = last
                for phase in reversed(phases[:-1]):
                    config = replace(phase, then=config)
                offset = sum(p.steps for p in phases[:-1])
                rec = _Recorder(offset, args.record_steps)
                try:
                    refine_latents(model, torch.from_numpy(x_padded), rgb.shape[:2], torch.from_numpy(y), features,
                                   q, config, rec.progress, rec)
                except _Enough:
                    pass
                files, rules = {}, {}
                for kind, patience, c in RULES:
                    got = play(rec.checks, last.steps, kind, patience, c)
                    if got is None:
                        continue
                    steps, made = got
                    kept = min(made, key=lambda i: (rec.checks[i][1], i))
                    if kept not in files:
                        files[kept] = None if kept == 0 and not offset else scored(coder, rec.latents[kept].numpy(), z, rgb, q)
                    rules[f"{kind} P{patience} c{c}"] = {"steps": steps, "checks": len([i for i in made if i or not offset]),
                                                        "kept": kept}
                line = {"image": name, "quality": q, "schedule": schedule, "pixels": rgb.shape[0] * rgb.shape[1],
                        "before_s": rec.before_s, "step_s": rec.step_s / max(rec.steps, 1),
                        "check_s": rec.check_s / max(rec.computed, 1), "checks": rec.checks, "effort0": base,
                        "files": {str(k): v for k, v in files.items()}, "rules": rules}
                with out.open("a") as f:
                    f.write(json.dumps(line) + "\n")
                print(f"{name} q{q:g} {schedule}: before {rec.before_s:.2f} s, step {line['step_s']:.3f} s, "
                      f"check {line['check_s']:.3f} s, cost {rec.checks[0][1]:.0f} -> {min(c for _, c in rec.checks):.0f}",
                      flush=True)


def _psnr(file: dict, pixels: int) -> float:
    return 10 * np.log10(255**2 / (file["se"] / (3 * pixels)))


def report(args) -> None:
    wanted = set(image_names(args.images))
    rows = [r for path in args.out.split(",") for r in map(json.loads, Path(path).read_text().splitlines())
            if r["image"] in wanted]
    by = defaultdict(list)
    for r in rows:
        by[r["schedule"]].append(r)
    lines = ["| schedule | rule | BD-rate vs effort 0 | R + λD vs effort 0 (mean) | refine CPU s (mean) | "
             "last phase steps (mean) | points |", "|---|---|---|---|---|---|---|"]
    for schedule, got in by.items():
        qualities = sorted({r["quality"] for r in got})
        names = sorted({k for r in got for k in r["rules"]})
        out = []
        for rule in names:
            have = [r for r in got if rule in r["rules"]]
            if len(have) < len(got):
                continue
            rate, psnr, cost, seconds, steps = defaultdict(list), defaultdict(list), [], [], []
            for r in have:
                played = r["rules"][rule]
                refined = r["files"][str(played["kept"])] or r["effort0"]
                file = min(r["effort0"], refined, key=lambda f: f["cost"])
                rate[r["quality"]].append(file["bits"] / r["pixels"])
                psnr[r["quality"]].append(_psnr(file, r["pixels"]))
                cost.append(file["cost"] / r["effort0"]["cost"] - 1)
                seconds.append(r["before_s"] + played["steps"] * r["step_s"] + played["checks"] * r["check_s"])
                steps.append(played["steps"])
            anchor_rate = [float(np.mean([r["effort0"]["bits"] / r["pixels"] for r in got if r["quality"] == q]))
                           for q in qualities]
            anchor_psnr = [float(np.mean([_psnr(r["effort0"], r["pixels"]) for r in got if r["quality"] == q]))
                           for q in qualities]
            bd = bd_rate(anchor_rate, anchor_psnr, [float(np.mean(rate[q])) for q in qualities],
                         [float(np.mean(psnr[q])) for q in qualities]) if len(qualities) >= 4 else float("nan")
            out.append((float(np.mean(seconds)), f"| {schedule} | {rule} | {bd:+.2f} % | {100 * np.mean(cost):+.2f} % | "
                        f"{np.mean(seconds):.2f} | {np.mean(steps):.1f} | {len(have)} |"))
        lines += [line for _, line in sorted(out)]
    print("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="JSON lines, appended to (points already there are skipped); "
                   "--report reads several, joined by commas, and only the points of --images")
    p.add_argument("--schedules", default="sga100")
    subset_arguments(p, 'Kodak names, or "all"')
    p.add_argument("--record-steps", type=int, default=None, help="end each recording after this many last-phase steps")
    p.add_argument("--report", action="store_true", help="read --out and print the table")
    args = parse_subset(p)
    report(args) if args.report else record(args)


if __name__ == "__main__":
    main()
