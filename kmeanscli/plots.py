"""Matplotlib figures. Imported only when a plot or preview is asked for."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from .core.quantize import QuantizeResult
from .imageio import atomic_write

__all__ = [
    "compress_figure",
    "has_display",
    "palette_figure",
    "save_compress_figure",
    "save_palette_figure",
    "show_compress_figure",
]


def _rgb(a: np.ndarray) -> np.ndarray:
    """RGBA shown over a checkerboard-free white background; RGB as it is."""
    if a.shape[-1] == 3:
        return a
    f = a.astype(np.float32)
    alpha = f[..., 3:4] / 255.0
    return np.rint(f[..., :3] * alpha + 255.0 * (1 - alpha)).astype(np.uint8)


def _size(original: np.ndarray) -> tuple[float, float]:
    height, width = original.shape[:2]
    return 10.0, 5.0 * height / max(width, 1) + 1.6


def compress_figure(
    original: np.ndarray,
    result: QuantizeResult,
    *,
    title: str | None = None,
    fig=None,  # matplotlib.figure.Figure | None
):
    """Original, compressed, and the palette as swatches sized by pixel share.

    Draws into ``fig`` (a new ``matplotlib.figure.Figure`` not attached to pyplot when None)
    and returns it.
    """
    if fig is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=_size(original))
    fig.set_layout_engine("constrained")
    height, width = original.shape[:2]
    aspect = height / max(width, 1)
    grid = fig.add_gridspec(2, 2, height_ratios=[5 * aspect, 0.9])
    for col, (img, label) in enumerate(
        [(original, "original"), (result.image(), f"{result.colors} colours")]
    ):
        ax = fig.add_subplot(grid[0, col])
        ax.imshow(_rgb(img), interpolation="nearest")
        ax.set_title(label)
        ax.set_axis_off()
    ax = fig.add_subplot(grid[1, :])
    pal = result.palette
    visible = [i for i in range(len(pal)) if i != result.transparent_index]
    order = sorted(visible, key=lambda i: -int(result.counts[i]))
    shares = result.counts[order] / max(int(result.counts[order].sum()), 1)
    left = 0.0
    for i, share in zip(order, shares, strict=True):
        ax.barh(0, share, left=left, color=pal[i, :3] / 255.0, edgecolor="none", height=1)
        left += share
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.5, 0.5)
    ax.set_axis_off()
    ax.set_title("palette (width = share of pixels)", fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def save_compress_figure(
    path: str | os.PathLike[str],
    original: np.ndarray,
    result: QuantizeResult,
    *,
    title: str | None = None,
) -> None:
    """Write :func:`compress_figure` to ``path`` (format from the extension), atomically."""
    fig = compress_figure(original, result, title=title)
    fmt = Path(path).suffix.lower().lstrip(".") or "png"
    with atomic_write(path) as fh:
        fig.savefig(fh, format=fmt, dpi=100)


def has_display() -> bool:
    """Whether an interactive window can be opened."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def show_compress_figure(
    original: np.ndarray, result: QuantizeResult, *, title: str | None = None
) -> bool:
    """Show the figure in a window; returns False (and shows nothing) without a display."""
    if not has_display():
        return False
    import matplotlib.pyplot as plt

    if plt.get_backend().lower() in ("agg", "pdf", "svg", "ps", "cairo", "template"):
        return False
    fig = plt.figure(figsize=_size(original))
    compress_figure(original, result, title=title, fig=fig)
    plt.show()
    return True


def palette_figure(
    colors: np.ndarray,
    shares: np.ndarray,
    *,
    title: str | None = None,
):
    """Horizontal bars, one per colour (top = most used): length = share, label = hex."""
    from matplotlib.figure import Figure

    n = len(colors)
    fig = Figure(figsize=(6.0, 0.45 * n + 1.0))
    fig.set_layout_engine("constrained")
    ax = fig.add_subplot()
    ys = np.arange(n)[::-1]
    ax.barh(ys, shares, color=colors[:, :3] / 255.0, edgecolor="0.6", linewidth=0.5)
    labels = ["#{:02x}{:02x}{:02x}".format(*(int(v) for v in c[:3])) for c in colors]
    ax.set_yticks(ys, labels, fontfamily="monospace")
    for y, share in zip(ys, shares, strict=True):
        ax.text(share, y, f" {100 * share:.1f}%", va="center", fontsize=8)
    ax.set_xlim(0, max(float(shares.max()) * 1.2, 0.05) if n else 1)
    ax.set_xlabel("share of pixels")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title)
    return fig


def save_palette_figure(
    path: str | os.PathLike[str],
    colors: np.ndarray,
    shares: np.ndarray,
    *,
    title: str | None = None,
) -> None:
    """Write :func:`palette_figure` to ``path`` (format from the extension), atomically."""
    fig = palette_figure(colors, shares, title=title)
    fmt = Path(path).suffix.lower().lstrip(".") or "png"
    with atomic_write(path) as fh:
        fig.savefig(fh, format=fmt, dpi=100)
