"""Rate-distortion plots and the BD-rate table, from the measured JSONs and the published reference curves.

- ``rd_psnr.png`` and ``rd_msssim.png``: PSNR (dB) and MS-SSIM (dB, −10·log10(1 − MS-SSIM)) against bpp, measured
  codecs as solid lines with markers, reference curves dashed.
- ``bd_rate.md``: BD-rate (PCHIP, see ``bd.py``) of lic against every other measured codec and every reference
  curve (anchor = the other codec; negative = lic needs fewer bits), then a sanity block: every measured codec
  against the BPG reference and against the published curve of the same codec, and a matrix of measured codecs
  against each other. Codecs skipped in the run are listed with their reason. lic's encoder efforts get a table
  of their own against effort 0 and the anchors, with each one's median encode and decode time per image.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping

import numpy as np

from benchmarks.bd import bd_rate

__all__ = ["REFERENCE_CURVES", "SAME_CODEC_REFERENCE", "load_curves", "median_times", "other_weights", "plot",
           "bd_table"]

REFERENCE_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "kodak"
REFERENCE_CURVES = (
    "bpg_444_x265_ycbcr", "measured-hevc444-x265-bpgsize", "vtm", "paper-minnen2020-cc10_mse",
    "paper-elic2022_mse", "compressai-bmshj2018-hyperprior_mse_cpu", "compressai-mbt2018-mean_mse_cpu",
    "jpeg", "webp", "jpeg2000", "av1",
)
BPG_REFERENCE = "bpg_444_x265_ycbcr"
HEVC444_REFERENCE = "measured-hevc444-x265-bpgsize"
# Published curve of the same codec, for the sanity block.
SAME_CODEC_REFERENCE = {"jpeg": "jpeg", "webp": "webp", "jpeg2000": "jpeg2000", "avif": "av1",
                        "hevc444": "measured-hevc444-x265-bpgsize"}


def load_curves(folder: Path, names: tuple[str, ...] | None = None) -> dict[str, dict]:
    """name → results dict of each ``*.json`` in ``folder`` (or the named ones), skipping non-results files."""
    curves = {}
    paths = [folder / f"{n}.json" for n in names] if names else sorted(folder.glob("*.json"))
    for path in paths:
        if not path.exists():
            continue
        payload = json.loads(path.read_text())
        results = payload.get("results", {}) if isinstance(payload, dict) else {}  # lossless.json: a list
        if "bpp" in results and "psnr-rgb" in results:
            curves[path.stem] = results
    return curves


def median_times(folder: Path, names) -> dict[str, tuple[float, float]]:
    """name → (median encode, median decode) seconds over every image and quality of its JSON, for the curves
    whose JSON records each image (``sweep.results_json``'s ``images``)."""
    medians = {}
    for name in names:
        path = folder / f"{name}.json"
        images = json.loads(path.read_text()).get("images") if path.exists() else None
        if images:
            medians[name] = tuple(float(np.median([m[key] for m in images])) for key in ("encoding_time", "decoding_time"))
    return medians


def other_weights(folder: Path, names, lic: str = "lic") -> dict[str, str]:
    """name → why, for each of lic's other curves in ``folder`` (``lic-effort<e>``, ``lic-torch``) that was not
    measured on the weights of ``lic``'s own curve, or does not say which weights it was: comparing them would
    mix two models.  Nothing when ``lic``'s curve does not record its weights."""
    def weights(name: str) -> str | None:
        path = folder / f"{name}.json"
        return json.loads(path.read_text()).get("weights") if path.exists() else None

    shipped = weights(lic)
    if shipped is None:
        return {}
    stale = {}
    for name in names:
        if name.startswith(f"{lic}-") and (theirs := weights(name)) != shipped:
            stale[name] = (f"measured on other weights ({theirs or 'not recorded'}; {lic}: {shipped}), not compared;"
                           f" measure it again with {lic}")
    return stale


def _msssim_db(results: Mapping) -> list[float] | None:
    if "ms-ssim-db" in results:
        return results["ms-ssim-db"]
    values = results.get("ms-ssim") or results.get("ms-ssim-rgb")
    return [-10 * math.log10(1 - v) for v in values] if values else None


def plot(measured: Mapping[str, Mapping], references: Mapping[str, Mapping], out_dir: Path,
         max_bpp: float = 2.0) -> list[Path]:
    """Write the two RD plots; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for metric, label, filename in (("psnr", "PSNR-RGB [dB]", "rd_psnr.png"),
                                    ("msssim", "MS-SSIM [dB]", "rd_msssim.png")):
        fig, ax = plt.subplots(figsize=(10, 7))
        ref_colors = plt.get_cmap("tab20b")(np.linspace(0, 1, max(len(references), 1)))
        groups = ((references, ref_colors, dict(linestyle="--", linewidth=1.1)),
                  (measured, plt.get_cmap("tab10").colors, dict(linestyle="-", linewidth=1.9, marker="o",
                                                                 markersize=3.5)))
        visible = []
        for group, colors, style in groups:
            for k, (name, res) in enumerate(group.items()):
                ys = res["psnr-rgb"] if metric == "psnr" else _msssim_db(res)
                if not ys:
                    continue
                pts = sorted(zip(res["bpp"], ys))
                visible += [y for x, y in pts if x <= max_bpp]
                legend = name + (" (ref)" if group is references else "")
                ax.plot(*zip(*pts), label=legend, color=colors[k % len(colors)], **style)
        ax.set_xlim(0, max_bpp)
        if visible:
            ax.set_ylim(min(visible) - 0.5, max(visible) + 0.5)
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(label)
        ax.set_title(f"Kodak, {label} vs rate")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        path = out_dir / filename
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def _bd(anchor: Mapping, test: Mapping) -> str:
    try:
        return f"{bd_rate(anchor['bpp'], anchor['psnr-rgb'], test['bpp'], test['psnr-rgb']):+.1f} %"
    except ValueError as exc:
        return f"n/a ({exc})"


def _effort_table(measured: Mapping[str, Mapping], references: Mapping[str, Mapping], lic: str,
                  times: Mapping[str, tuple[float, float]]) -> list[str]:
    """lic's refined encodes (``lic-effort<e>``, same decoder) against effort 0, JPEG, WebP and HEVC 4:4:4, with
    each effort's median encode and decode time per image where its JSON records them (issue 25's Pareto table)."""
    efforts = [name for name in measured if name.startswith(f"{lic}-effort")]
    if not efforts:
        return []
    anchors = [(a, measured[a]) for a in (lic, "jpeg", "webp", "hevc444") if a in measured]
    if "hevc444" not in measured and HEVC444_REFERENCE in references:
        anchors.append((HEVC444_REFERENCE, references[HEVC444_REFERENCE]))
    timed = any(name in times for name in (lic, *efforts))
    rows = ([lic] if timed and lic in measured else []) + efforts  # effort 0's row only to show its times
    lines = ["", f"## {lic}'s encoder efforts (same decoder)", "",
             "| effort | " + " | ".join("vs effort 0" if a == lic else f"vs {a}" for a, _ in anchors) + " |"
             + (" median encode | median decode |" if timed else ""),
             "|---" * (1 + len(anchors) + 2 * timed) + "|"]
    for name in rows:
        cells = ["—" if a == name else _bd(curve, measured[name]).split(" (")[0] for a, curve in anchors]
        if timed:
            cells += [f"{t:.2f} s" for t in times[name]] if name in times else ["—", "—"]
        lines.append(f"| {'0' if name == lic else name.removeprefix(f'{lic}-effort')} | " + " | ".join(cells) + " |")
    return lines


def bd_table(measured: Mapping[str, Mapping], references: Mapping[str, Mapping],
             skipped: Mapping[str, str], lic: str = "lic", times: Mapping[str, tuple[float, float]] | None = None) -> str:
    """The Markdown BD-rate report (see module docstring); ``times``: ``median_times`` of the measured curves."""
    lines = ["# BD-rate (PCHIP on log-rate over RGB PSNR, overlapping PSNR range)", "",
             "Negative: the test codec needs fewer bits than the anchor for the same PSNR.", ""]
    if lic in measured:
        lines += [f"## {lic} against every other curve", "", "| anchor | kind | BD-rate of lic |", "|---|---|---|"]
        for name, res in measured.items():
            if name != lic and not name.startswith(f"{lic}-effort"):
                lines.append(f"| {name} | measured | {_bd(res, measured[lic])} |")
        for name, res in references.items():
            lines.append(f"| {name} | reference | {_bd(res, measured[lic])} |")
    else:
        lines += [f"## {lic}", "", f"{lic} was not measured in this run: {skipped.get(lic, 'not selected')}."]
    lines += _effort_table(measured, references, lic, times or {})
    lines += ["", "## Sanity: measured codecs against published curves", "",
              "| codec | vs BPG reference (bpg_444_x265_ycbcr) | vs its own published curve |", "|---|---|---|"]
    for name, res in measured.items():
        bpg = _bd(references[BPG_REFERENCE], res) if BPG_REFERENCE in references else "n/a"
        own = SAME_CODEC_REFERENCE.get(name)
        own_cell = f"{_bd(references[own], res)} (vs {own})" if own in references else "—"
        lines.append(f"| {name} | {bpg} | {own_cell} |")
    names = list(measured)
    if len(names) > 1:
        lines += ["", "## Measured codecs against each other (row = test, column = anchor)", "",
                  "| test \\ anchor | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for test in names:
            cells = ["—" if test == anchor else _bd(measured[anchor], measured[test]).split(" (")[0]
                     for anchor in names]
            lines.append(f"| {test} | " + " | ".join(cells) + " |")
    if skipped:
        lines += ["", "## Skipped codecs", ""] + [f"- {name}: {why}" for name, why in skipped.items()]
    return "\n".join(lines) + "\n"
