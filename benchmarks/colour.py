#!/usr/bin/env python3
"""Colour-space benchmark: which space should k-means cluster in?

For every bundled photo, k and colour space it runs ``kmeanscli.quantize(pixels, k, seed=0,
space=...)`` and measures the result against the original:

- mean CIEDE2000 colour difference (``skimage.color.deltaE_ciede2000`` on ``rgb2lab`` of both
  images; lower is better, about 1 is a just-noticeable difference);
- PSNR in dB (higher is better);
- time of the ``quantize`` call.

It prints a Markdown report on stdout (progress on stderr)::

    .venv/bin/python benchmarks/colour.py > benchmarks/RESULTS_COLOUR.md
    .venv/bin/python benchmarks/colour.py --k 8 --images china,coffee

Images: scikit-learn's china/flower, scikit-image's astronaut/coffee/chelsea/rocket and
matplotlib's grace_hopper, all installed with the test extras (no network).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from kmeanscli import quantize

SPACES = ("rgb", "oklab", "lab")
KS = (8, 16, 64)
PSNR_BUDGET = 0.3  # dB a space may lose on PSNR and still become the default


def _sklearn(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(name)

    return load


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data

        return getattr(data, name)()

    return load


def _grace_hopper() -> np.ndarray:
    import matplotlib.cbook
    from PIL import Image

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
        return np.asarray(im.convert("RGB"))


IMAGES: dict[str, Callable[[], np.ndarray]] = {
    "china": _sklearn("china.jpg"),
    "flower": _sklearn("flower.jpg"),
    "astronaut": _skimage("astronaut"),
    "coffee": _skimage("coffee"),
    "chelsea": _skimage("chelsea"),
    "rocket": _skimage("rocket"),
    "grace_hopper": _grace_hopper,
}


def delta_e(original: np.ndarray, quantized: np.ndarray) -> float:
    """Mean CIEDE2000 difference between two RGB uint8 images."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    return float(deltaE_ciede2000(rgb2lab(original), rgb2lab(quantized)).mean())


def measure(img: np.ndarray, k: int, space: str, **kwargs) -> dict[str, float]:
    started = time.perf_counter()
    result = quantize(img, k, seed=0, space=space, **kwargs)
    seconds = time.perf_counter() - started
    assert result.colors == k and bool((result.counts > 0).all())
    return {
        "de": delta_e(img, result.image()),
        "psnr": result.psnr,
        "seconds": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", default=",".join(map(str, KS)), help="comma-separated k values")
    parser.add_argument("--images", default=",".join(IMAGES), help="comma-separated names")
    parser.add_argument("--spaces", default=",".join(SPACES), help="comma-separated spaces")
    parser.add_argument(
        "--restarts", type=int, default=4, help="restarts compared with 1 (0: skip that part)"
    )
    parser.add_argument(
        "--restart-k", default="4,8,16", help="comma-separated k values for the restarts part"
    )
    args = parser.parse_args(argv)
    ks = [int(x) for x in args.k.split(",")]
    names = args.images.split(",")
    spaces = args.spaces.split(",")

    rows: dict[tuple[str, int, str], dict[str, float]] = {}
    for name in names:
        img = IMAGES[name]()
        for k in ks:
            for space in spaces:
                rows[name, k, space] = m = measure(img, k, space)
                print(
                    f"{name:13} k={k:<3} {space:6} dE={m['de']:.3f} "
                    f"PSNR={m['psnr']:.2f} {m['seconds']:.2f}s",
                    file=sys.stderr,
                    flush=True,
                )

    out = ["## Colour space of the clustering (`--space`)", ""]
    out.append(
        f"`kmeanscli.quantize(pixels, k, seed=0, space=...)` on {len(names)} bundled photos "
        f"({', '.join(names)}); mean CIEDE2000 ΔE (scikit-image, lower is better) and PSNR "
        "(dB, higher is better) against the original; time of the `quantize` call "
        f"(Python {platform.python_version()}, {platform.machine()}, shared 2-core machine: "
        "times are indicative only)."
    )
    out.append("")
    out.append("### Means over the images")
    out.append("")
    out.append("| k | space | mean ΔE2000 | mean PSNR (dB) | mean time (s) | ΔE wins |")
    out.append("|---:|---|---:|---:|---:|---:|")
    summary: dict[tuple[int, str], tuple[float, float]] = {}
    for k in ks:
        for space in spaces:
            des = [rows[n, k, space]["de"] for n in names]
            ps = [rows[n, k, space]["psnr"] for n in names]
            ts = [rows[n, k, space]["seconds"] for n in names]
            wins = sum(
                rows[n, k, space]["de"] == min(rows[n, k, s]["de"] for s in spaces) for n in names
            )
            summary[k, space] = (statistics.fmean(des), statistics.fmean(ps))
            out.append(
                f"| {k} | {space} | {statistics.fmean(des):.3f} | {statistics.fmean(ps):.2f} "
                f"| {statistics.fmean(ts):.2f} | {wins}/{len(names)} |"
            )
    out.append("")
    out.append("### Per image (ΔE2000 / PSNR dB)")
    out.append("")
    out.append("| image | k | " + " | ".join(spaces) + " |")
    out.append("|---|---:|" + "---|" * len(spaces))
    for name in names:
        for k in ks:
            cells = [
                f"{rows[name, k, s]['de']:.3f} / {rows[name, k, s]['psnr']:.2f}" for s in spaces
            ]
            out.append(f"| {name} | {k} | " + " | ".join(cells) + " |")
    out.append("")
    out.append("### Choice of the default")
    out.append("")
    overall = {
        s: (
            statistics.fmean(summary[k, s][0] for k in ks),
            statistics.fmean(summary[k, s][1] for k in ks),
        )
        for s in spaces
    }
    best = min(spaces, key=lambda s: overall[s][0])
    lines = [
        f"- {s}: mean ΔE {overall[s][0]:.3f}, mean PSNR {overall[s][1]:.2f} dB" for s in spaces
    ]
    out.extend(lines)
    if "rgb" in spaces and best != "rgb":
        cost = overall["rgb"][1] - overall[best][1]
        worst_k = max(summary[k, "rgb"][1] - summary[k, best][1] for k in ks)
        verdict = (
            f"{best} wins on ΔE; it costs {cost:.2f} dB PSNR on average (at worst "
            f"{worst_k:.2f} dB at one k) against rgb, "
            + (
                f"within the {PSNR_BUDGET} dB budget: {best} is the default."
                if worst_k <= PSNR_BUDGET
                else f"over the {PSNR_BUDGET} dB budget: rgb stays the default."
            )
        )
    else:
        verdict = f"{best} wins on ΔE: it is the default."
    out.extend(["", verdict, ""])
    if args.restarts > 1:
        out.extend(
            restarts_section(names, [int(x) for x in args.restart_k.split(",")], args.restarts)
        )
    sys.stdout.write("\n".join(out) + "\n")
    return 0


def restarts_section(names: list[str], ks: list[int], restarts: int) -> list[str]:
    """Several k-means++ starts against one, in RGB, for small palettes."""
    rows: dict[tuple[str, int, int], dict[str, float]] = {}
    for name in names:
        img = IMAGES[name]()
        for k in ks:
            for n in (1, restarts):
                rows[name, k, n] = m = measure(img, k, "rgb", restarts=n)
                print(
                    f"{name:13} k={k:<3} restarts={n} dE={m['de']:.3f} "
                    f"PSNR={m['psnr']:.3f} {m['seconds']:.2f}s",
                    file=sys.stderr,
                    flush=True,
                )
    out = [
        "",
        f"## Restarts for small palettes (`--restarts {restarts}` against 1, space rgb)",
        "",
        f"`quantize(pixels, k, seed=0, restarts=n)`: {restarts} k-means++ starts (the first "
        "one is the single run's), keeping the palette with the lowest final error.",
        "",
        "| k | mean PSNR 1 start | mean PSNR best of n | mean gain (dB) | max gain (dB) "
        "| images improved | mean ΔE 1 → n | time 1 → n (s) |",
        "|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for k in ks:
        one = [rows[n_, k, 1] for n_ in names]
        many = [rows[n_, k, restarts] for n_ in names]
        gains = [b["psnr"] - a["psnr"] for a, b in zip(one, many, strict=True)]
        out.append(
            f"| {k} | {statistics.fmean(r['psnr'] for r in one):.3f} "
            f"| {statistics.fmean(r['psnr'] for r in many):.3f} "
            f"| {statistics.fmean(gains):+.3f} | {max(gains):+.3f} "
            f"| {sum(g > 1e-9 for g in gains)}/{len(names)} "
            f"| {statistics.fmean(r['de'] for r in one):.3f} → "
            f"{statistics.fmean(r['de'] for r in many):.3f} "
            f"| {statistics.fmean(r['seconds'] for r in one):.2f} → "
            f"{statistics.fmean(r['seconds'] for r in many):.2f} |"
        )
    out.append("")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
