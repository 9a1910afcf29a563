"""Render a :class:`~kmeanscli.compare.Comparison` as one self-contained HTML page.

The stages: embed the original (:func:`original_image`), describe each row (its numbers,
its PNG, its palette: :func:`_result`), draw the size-versus-quality chart
(:func:`size_quality_chart`), then fill the Jinja2 templates in ``templates/`` (the page,
its CSS and its JavaScript, all inlined). Everything shown comes from the comparison's
rows, the same ones ``compare --json`` prints: nothing is quantized or scored again.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__

if TYPE_CHECKING:
    import jinja2

    from ..compare import CompareRow, Comparison
    from ..options import QuantizeOptions

__all__ = ["ORIGINAL_PNG_MAX_BYTES", "Embedded", "original_image", "render_report"]

ORIGINAL_PNG_MAX_BYTES = 2_000_000
"""The original goes into the page as a lossless PNG when that PNG is at most this many
bytes; a larger one goes in as a WebP preview (quality 90), and the page says so."""

VIEWER_MIN_WIDTH = 480
"""A before/after view is as wide as the image (its width at 1:1), at least this many CSS
pixels and at most the page's width."""

PREVIEW_QUALITY = 90
"""WebP quality of the preview of an original too large for a lossless PNG."""


@dataclass(frozen=True)
class Embedded:
    """An image as the page carries it."""

    uri: str
    """A ``data:`` URI."""
    mime: str
    bytes: int
    """Size of the encoded image (before base64)."""
    lossless: bool
    """True when the image decodes to exactly the pixels given."""

    @property
    def label(self) -> str:
        kind = self.mime.split("/")[1].upper()
        what = "lossless" if self.lossless else f"lossy preview, quality {PREVIEW_QUALITY}"
        return f"{kind}, {self.bytes:,} bytes, {what}"


def data_uri(data: bytes, mime: str) -> str:
    """``data:MIME;base64,...`` for ``data``."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def original_image(pixels: np.ndarray, *, max_png_bytes: int = ORIGINAL_PNG_MAX_BYTES) -> Embedded:
    """The original as the page shows it: a PNG when it is at most ``max_png_bytes``,
    else a WebP at quality :data:`PREVIEW_QUALITY` (whichever of the two is smaller).

    Parameters
    ----------
    pixels : ndarray of uint8, shape (H, W, 3) or (H, W, 4)
    max_png_bytes : int
    """
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(pixels))
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=6)
    png = buf.getvalue()
    if len(png) <= max_png_bytes:
        return Embedded(data_uri(png, "image/png"), "image/png", len(png), True)
    buf = io.BytesIO()
    img.save(buf, "WEBP", quality=PREVIEW_QUALITY, method=4)
    webp = buf.getvalue()
    if len(webp) >= len(png):
        return Embedded(data_uri(png, "image/png"), "image/png", len(png), True)
    return Embedded(data_uri(webp, "image/webp"), "image/webp", len(webp), False)


def _fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    return format(value, spec)


# The numbers of a result: key of CompareRow.to_dict(), heading, format. The table, the
# result cards and the browser test all read this one list.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("k", "k", "d"),
    ("colors", "colours", ","),
    ("bytes", "bytes", ","),
    ("bpp", "bits/pixel", ".2f"),
    ("ratio", "ratio", ".1%"),
    ("psnr", "PSNR dB", ".2f"),
    ("ssim", "SSIM", ".4f"),
    ("delta_e", "mean ΔE00", ".3f"),
    ("seconds", "seconds", ".2f"),
)


def _swatches(palette: np.ndarray, counts: np.ndarray) -> list[dict[str, Any]]:
    """Each palette entry, most used first: hex code, CSS colour, share of the pixels."""
    total = int(counts.sum()) or 1
    out = []
    for i in np.argsort(-counts, kind="stable"):
        entry = [int(v) for v in palette[i]]
        r, g, b = entry[:3]
        a = entry[3] if len(entry) == 4 else 255
        hex_code = f"#{r:02x}{g:02x}{b:02x}" + (f"{a:02x}" if a < 255 else "")
        share = int(counts[i]) / total
        out.append(
            {
                "hex": hex_code,
                "css": f"rgba({r}, {g}, {b}, {a / 255:.3f})",
                "transparent": a < 255,
                "share": share,
                "share_text": f"{share:.1%}" if share >= 0.001 else "<0.1%",
            }
        )
    return out


def _row_id(row: CompareRow) -> str:
    return f"{row.method or 'file'}-k{row.k}"


def _result(row: CompareRow, record: dict[str, Any]) -> dict[str, Any]:
    """What the page shows of one row: its numbers (formatted and exact), PNG, palette."""
    assert row.png is not None and row.result is not None
    cells = []
    for key, heading, spec in COLUMNS:
        value = record[key]
        text = _fmt(value, spec)
        if key == "k" and row.chosen:
            text += " ←"
        cells.append({"key": key, "heading": heading, "text": text, "value": value})
    return {
        "id": _row_id(row),
        "method": row.method,
        "engine": row.engine,
        "k": row.k,
        "chosen": row.chosen,
        "cells": cells,
        "png": data_uri(row.png, "image/png"),
        "swatches": _swatches(row.result.palette, row.result.counts),
    }


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round values covering ``lo``..``hi``."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if step * m >= raw)
    first = math.floor(lo / step) * step
    ticks, t = [], first
    while t <= hi + step * 0.5:
        ticks.append(round(t, 10))
        t += step
    return ticks


def size_quality_chart(
    rows: Sequence[dict[str, Any]], *, width: int = 640, height: int = 320
) -> dict[str, Any] | None:
    """The geometry of the size-versus-PSNR chart (bytes in kB across, PSNR up), one line
    per method; None when no row has a finite PSNR.

    ``rows`` are :func:`_result` dicts; lossless rows (infinite PSNR) are left out.
    """
    points = [
        (r, r["cells"][2]["value"] / 1000, r["cells"][5]["value"])
        for r in rows
        if r["cells"][5]["value"] is not None
    ]
    if not points:
        return None
    left, right, top, bottom = 56, 30, 16, 44
    xs = _ticks(0, max(p[1] for p in points))
    ys_raw = [p[2] for p in points]
    ys = _ticks(math.floor(min(ys_raw)) - 1, math.ceil(max(ys_raw)) + 1)
    x0, x1, y0, y1 = xs[0], xs[-1], ys[0], ys[-1]

    def sx(v: float) -> float:
        return round(left + (v - x0) / (x1 - x0) * (width - left - right), 1)

    def sy(v: float) -> float:
        return round(height - bottom - (v - y0) / (y1 - y0) * (height - top - bottom), 1)

    series: dict[str, list[dict[str, Any]]] = {}
    for row, kb, psnr in points:
        series.setdefault(row["method"] or "file", []).append(
            {
                "x": sx(kb),
                "y": sy(psnr),
                "k": row["k"],
                "id": row["id"],
                "chosen": row["chosen"],
                "title": f"{row['method']} k={row['k']}: {kb:,.1f} kB, {psnr:.2f} dB",
            }
        )
    return {
        "width": width,
        "height": height,
        "left": left,
        "right": width - right,
        "top": top,
        "bottom": height - bottom,
        "xticks": [{"pos": sx(v), "label": f"{v:g}"} for v in xs],
        "yticks": [{"pos": sy(v), "label": f"{v:g}"} for v in ys],
        "series": [
            {
                "method": method,
                "points": pts,
                "path": " ".join(
                    f"{'M' if i == 0 else 'L'}{p['x']},{p['y']}" for i, p in enumerate(pts)
                ),
            }
            for method, pts in series.items()
        ],
    }


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("kmeanscli.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def json_script(value: Any) -> Any:
    """JSON safe inside a ``<script>`` element (no ``</script>`` can end it early)."""
    import markupsafe

    text = json.dumps(value, ensure_ascii=False)
    return markupsafe.Markup(
        text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    )


def _settings(options: QuantizeOptions | None) -> list[tuple[str, str]]:
    if options is None:
        return []
    out = [("engine", options.engine), ("space", options.space), ("seed", str(options.seed))]
    if options.dithering:
        out.append(("dither", f"{options.dither} (strength {options.dither_strength:g})"))
    return out


def render_report(
    comparison: Comparison,
    *,
    records: Sequence[dict[str, Any]] | None = None,
    options: QuantizeOptions | None = None,
    max_png_bytes: int = ORIGINAL_PNG_MAX_BYTES,
) -> bytes:
    """The HTML page of a comparison, as UTF-8 bytes: one file, no network.

    Parameters
    ----------
    comparison : Comparison
        From :func:`kmeanscli.compare_k` (every row has its PNG and palette).
    records : sequence of dict, optional
        The rows as ``compare --json`` prints them (one per row, in order); the page
        shows and embeds these values. Default: each row's ``to_dict()`` with its method.
    options : QuantizeOptions, optional
        The options the comparison ran with, listed on the page.
    max_png_bytes : int
        See :func:`original_image`.

    Raises
    ------
    ValueError
        For a comparison of files (``compare_files``): there are no results to show.
    """
    if not comparison.rows or any(row.png is None for row in comparison.rows):
        raise ValueError("a report needs the results of compare_k, with their PNGs.")
    if records is None:
        records = [{"method": row.method, **row.to_dict()} for row in comparison.rows]
    if len(records) != len(comparison.rows):
        raise ValueError("records must have one entry per row of the comparison.")
    results = [_result(row, dict(r)) for row, r in zip(comparison.rows, records, strict=True)]
    original = original_image(comparison.original, max_png_bytes=max_png_bytes)
    targets = [t.describe() for t in comparison.targets]
    page = (
        environment()
        .get_template("report.html.j2")
        .render(
            title=f"kmeanscli report: {comparison.input}",
            input=comparison.input,
            width=comparison.width,
            height=comparison.height,
            viewer_width=max(comparison.width, VIEWER_MIN_WIDTH),
            bytes_in=comparison.bytes_in,
            original=original,
            results=results,
            columns=COLUMNS,
            show_method=comparison.methods not in ((), ("kmeans",)),
            chart=size_quality_chart(results),
            targets=targets,
            chosen_k=comparison.chosen_k,
            target_error=comparison.target_error,
            warnings=list(comparison.warnings),
            settings=_settings(options),
            records=json_script(list(records)),
            version=__version__,
        )
    )
    return page.encode("utf-8")
