"""Matplotlib figures. Imported only when a plot or preview is asked for."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .core.quantize import QuantizeResult
from .imageio import atomic_write

if TYPE_CHECKING:
    from .compare import CompareRow, Comparison

__all__ = [
    "colors_figure",
    "compare_figure",
    "compare_figure_size",
    "compress_figure",
    "has_display",
    "palette_figure",
    "save_compress_figure",
    "save_figure",
    "save_palette_figure",
    "show_compress_figure",
    "show_figure",
]


_CHECKER = (255.0, 204.0)  # the light squares of the transparency checkerboard


def _checkerboard(height: int, width: int, cell: int) -> np.ndarray:
    """A grey-and-white checkerboard (H, W, 1) of ``cell``-pixel squares, as float32."""
    y, x = np.mgrid[0:height, 0:width]
    light = ((y // cell + x // cell) % 2 == 0)[..., None]
    return np.where(light, _CHECKER[0], _CHECKER[1]).astype(np.float32)


def _rgb(a: np.ndarray) -> np.ndarray:
    """RGBA shown over a checkerboard, as image viewers show transparency; RGB as it is."""
    if a.shape[-1] == 3:
        return a
    height, width = a.shape[:2]
    cell = max(1, min(8, min(height, width) // 8))  # at least 8 squares across
    f = a.astype(np.float32)
    alpha = f[..., 3:4] / 255.0
    back = _checkerboard(height, width, cell)
    return np.rint(f[..., :3] * alpha + back * (1 - alpha)).astype(np.uint8)


def _size(original: np.ndarray) -> tuple[float, float]:
    height, width = original.shape[:2]
    return 10.0, 5.0 * height / max(width, 1) + 1.6


def compress_figure(
    original: np.ndarray,
    result: QuantizeResult,
    *,
    title: str | None = None,
    bytes_in: int | None = None,
    bytes_out: int | None = None,
    psnr: float | None = None,
    fig=None,  # matplotlib.figure.Figure | None
):
    """Original, compressed, and the palette as swatches sized by pixel share.

    The panels' titles carry the file sizes and the PSNR when given; transparency is drawn
    over a checkerboard, in the images and in the swatches. Draws into ``fig`` (a new
    ``matplotlib.figure.Figure`` not attached to pyplot when None) and returns it.
    """
    if fig is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=_size(original))
    fig.set_layout_engine("constrained")
    height, width = original.shape[:2]
    aspect = height / max(width, 1)
    grid = fig.add_gridspec(2, 2, height_ratios=[5 * aspect, 0.9])
    before = "original" + (f" · {_kb(bytes_in)}" if bytes_in is not None else "")
    after = f"{result.colors} colours" + (f" · {_kb(bytes_out)}" if bytes_out is not None else "")
    if psnr is not None:
        after += " · lossless" if math.isinf(psnr) else f" · PSNR {psnr:.1f} dB"
    for col, (img, label) in enumerate([(original, before), (result.image(), after)]):
        ax = fig.add_subplot(grid[0, col])
        ax.imshow(_rgb(img), interpolation="nearest")
        ax.set_title(label)
        ax.set_axis_off()
    _swatches(fig.add_subplot(grid[1, :]), result)
    if title:
        fig.suptitle(title)
    return fig


def _swatches(ax, result: QuantizeResult) -> None:
    """The palette as a bar of swatches whose widths are the colours' shares of pixels;
    partly transparent colours over a checkerboard."""
    pal = result.palette
    visible = [i for i in range(len(pal)) if i != result.transparent_index]
    order = sorted(visible, key=lambda i: -int(result.counts[i]))
    shares = result.counts[order] / max(int(result.counts[order].sum()), 1)
    if pal.shape[1] == 4 and (pal[order, 3] < 255).any():
        board = _checkerboard(8, 160, 4)[..., 0] / 255.0
        ax.imshow(
            board, cmap="gray", vmin=0, vmax=1, extent=(0, 1, -0.5, 0.5), aspect="auto", zorder=0
        )
    left = 0.0
    for i, share in zip(order, shares, strict=True):
        ax.barh(0, share, left=left, color=pal[i] / 255.0, edgecolor="none", height=1, zorder=1)
        left += share
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.5, 0.5)
    ax.set_axis_off()
    ax.set_title("palette (width = share of pixels)", fontsize=9)


def save_compress_figure(
    path: str | os.PathLike[str],
    original: np.ndarray,
    result: QuantizeResult,
    *,
    title: str | None = None,
    **captions: Any,
) -> None:
    """Write :func:`compress_figure` to ``path`` (format from the extension), atomically.

    ``captions``: ``bytes_in``, ``bytes_out`` and ``psnr``, as for :func:`compress_figure`.
    """
    fig = compress_figure(original, result, title=title, **captions)
    fmt = Path(path).suffix.lower().lstrip(".") or "png"
    with atomic_write(path) as fh:
        fig.savefig(fh, format=fmt, dpi=100)


def has_display() -> bool:
    """Whether an interactive window can be opened."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def show_compress_figure(
    original: np.ndarray,
    result: QuantizeResult,
    *,
    title: str | None = None,
    before_show: Callable[[], None] | None = None,
    **captions: Any,
) -> bool:
    """Show the figure in a window; returns False (and shows nothing) without a display.

    ``before_show`` is called just before the window opens and blocks until it is closed.
    """
    return show_figure(
        lambda fig: compress_figure(original, result, title=title, fig=fig, **captions),
        _size(original),
        before_show=before_show,
    )


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


def save_figure(path: str | os.PathLike[str], fig, *, dpi: int = 100) -> None:
    """Write a figure to ``path`` (PNG, SVG or PDF from the extension), atomically."""
    fmt = Path(path).suffix.lower().lstrip(".") or "png"
    with atomic_write(path) as fh:
        fig.savefig(fh, format=fmt, dpi=dpi)


def show_figure(
    build: Callable[[Any], Any],
    figsize: tuple[float, float],
    *,
    before_show: Callable[[], None] | None = None,
) -> bool:
    """Open a window with the figure ``build(fig)`` draws; False (nothing shown) without one.

    ``before_show`` is called just before the window opens and blocks until it is closed.
    """
    if not has_display():
        return False
    import matplotlib.pyplot as plt

    if plt.get_backend().lower() in ("agg", "pdf", "svg", "ps", "cairo", "template"):
        return False
    fig = plt.figure(figsize=figsize)
    build(fig)
    if before_show is not None:
        before_show()
    plt.show()
    return True


def _kb(n: float) -> str:
    return f"{n / 1000:,.1f} kB" if n >= 1000 else f"{n:,.0f} B"


def _db(value: float) -> str:
    return "lossless" if math.isinf(value) else f"{value:.1f} dB"


def _grid_shape(n: int) -> tuple[int, int]:
    """Columns and rows for ``n`` panels: 4 or 3 columns, whichever leaves fewer holes."""
    if n <= 4:
        return n, 1
    cols = min((4, 3), key=lambda c: (-n % c, -c))
    return cols, -(-n // cols)


def compare_figure_size(comparison: Comparison) -> tuple[float, float]:
    """A figure size that fits :func:`compare_figure`'s grid and charts."""
    height, width = comparison.original.shape[:2]
    cols, rows = _grid_shape(1 + len(_grid_rows(comparison)))
    return 12.0, rows * (12.0 / cols * height / max(width, 1) + 0.35) + 3.6


def _grid_rows(comparison: Comparison) -> list[CompareRow]:
    if comparison.files_mode:
        return list(comparison.rows)
    first = comparison.rows[0].method if comparison.rows else None
    return [row for row in comparison.rows if row.method == first]


def compare_figure(comparison: Comparison, *, title: str | None = None, fig=None):
    """The original and each result with its caption, then two rate–distortion charts.

    The grid shows the first method's results (k-means unless not asked for) or, for files,
    each file. The charts plot size against PSNR and against mean ΔE00, one line per method
    (one point per file). Draws into ``fig`` (a new ``Figure`` when None) and returns it.
    """
    if fig is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=compare_figure_size(comparison))
    fig.set_layout_engine("constrained")
    shown = _grid_rows(comparison)
    cols, rows = _grid_shape(1 + len(shown))
    fig_h = float(fig.get_size_inches()[1])
    outer = fig.add_gridspec(2, 1, height_ratios=[max(fig_h - 3.6, 1.0), 3.6])
    cells = outer[0].subgridspec(rows, cols)
    panels = [(comparison.original, f"original · {_kb(comparison.bytes_in)}")]
    for row in shown:
        name = f"k={row.k}" if row.file is None else Path(row.file).name
        mark = " (target)" if row.chosen else ""
        caption = f"{name}{mark} · {_kb(row.bytes)} · {_db(row.scores.psnr)}"
        panels.append((row.image, caption))
    for i, (img, caption) in enumerate(panels):
        ax = fig.add_subplot(cells[i // cols, i % cols])
        if img is not None:
            ax.imshow(_rgb(img), interpolation="nearest")
        ax.set_title(caption, fontsize=9, fontweight="bold" if "(target)" in caption else None)
        ax.set_axis_off()
    charts = outer[1].subgridspec(1, 2)
    ax_psnr = fig.add_subplot(charts[0, 0])
    ax_de = fig.add_subplot(charts[0, 1])
    series: dict[str, list[CompareRow]] = {}
    for row in comparison.rows:
        series.setdefault(row.method or "files", []).append(row)
    for label, members in series.items():
        members = sorted(members, key=lambda r: r.bytes if r.k is None else r.k)
        kb = np.array([r.bytes / 1000 for r in members])
        psnr = np.array([r.scores.psnr for r in members])
        de = np.array([r.scores.delta_e for r in members])
        style = "o" if label == "files" else "o-"
        finite = np.isfinite(psnr)
        ax_psnr.plot(kb[finite], psnr[finite], style, label=label, markersize=4)
        ax_de.plot(kb, de, style, label=label, markersize=4)
        if label in ("kmeans", "files"):
            for r, x, y1, y2 in zip(members, kb, psnr, de, strict=True):
                text = f"k={r.k}" if r.k is not None else Path(r.file or "").name
                if math.isfinite(y1):
                    ax_psnr.annotate(
                        text, (x, y1), textcoords="offset points", xytext=(3, -9), fontsize=7
                    )
                ax_de.annotate(text, (x, y2), textcoords="offset points", xytext=(3, 3), fontsize=7)
    ax_psnr.set_xlabel("palette PNG size (kB)" if not comparison.files_mode else "file size (kB)")
    ax_psnr.set_ylabel("PSNR (dB, higher is better)")
    ax_de.set_xlabel(ax_psnr.get_xlabel())
    ax_de.set_ylabel("mean CIEDE2000 ΔE (lower is better)")
    for ax in (ax_psnr, ax_de):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def colors_figure(
    original: np.ndarray,
    result: QuantizeResult,
    *,
    title: str | None = None,
    max_points: int = 4000,
    fig=None,
):
    """The image's colours as a 3D RGB point cloud with the palette centres marked, and the
    palette as swatches.

    At most ``max_points`` distinct colours are drawn, sampled in proportion to their pixel
    counts (with a fixed seed, so the figure is reproducible). Palette colours are the large
    dots with a black edge. Draws into ``fig`` (a new ``Figure`` when None) and returns it.
    """
    from .core.quantize import histogram

    if fig is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(8.0, 8.6))
    fig.set_layout_engine("constrained")
    flat = original.reshape(-1, original.shape[-1])
    if flat.shape[1] == 4:
        flat = flat[flat[:, 3] > 0]
    hist = histogram(np.ascontiguousarray(flat[:, :3]))
    colors, counts = hist.colors, hist.counts
    if len(colors) > max_points:
        rng = np.random.default_rng(0)
        pick = rng.choice(len(colors), size=max_points, replace=False, p=counts / counts.sum())
        colors = colors[np.sort(pick)]
    grid = fig.add_gridspec(2, 1, height_ratios=[8, 0.6])
    ax = fig.add_subplot(grid[0], projection="3d")
    c = colors.astype(np.float64)
    ax.scatter(c[:, 0], c[:, 1], c[:, 2], c=c / 255.0, s=3, alpha=0.35, depthshade=False)
    pal = result.palette
    keep = [i for i in range(len(pal)) if i != result.transparent_index]
    p = pal[keep, :3].astype(np.float64)
    ax.scatter(
        p[:, 0],
        p[:, 1],
        p[:, 2],
        c=p / 255.0,
        s=70,
        edgecolors="black",
        linewidths=0.8,
        depthshade=False,
        label=f"palette ({len(p)} colours)",
    )
    ax.set_xlabel("R")
    ax.set_ylabel("G")
    ax.set_zlabel("B")
    for setter in (ax.set_xlim, ax.set_ylim, ax.set_zlim):
        setter(0, 255)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(
        f"{len(hist.colors):,} distinct colours (dots, {len(colors):,} drawn) and the palette",
        fontsize=10,
    )
    _swatches(fig.add_subplot(grid[1]), result)
    if title:
        fig.suptitle(title)
    return fig
