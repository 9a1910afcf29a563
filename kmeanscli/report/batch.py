"""Render a batch's outcome (:class:`kmeanscli.batch.BatchSummary`) as one HTML page.

A sortable table of every file (bytes in and out, ratio, PSNR, k, status) with thumbnails
and totals; each compressed file links to its before/after view. The numbers are the
batch's own (``batch --json``'s lines); the images are read back from the files written. To
keep the page light, images go in downscaled: thumbnails always, before/after previews
only for batches of at most :data:`PREVIEW_FILES` files (beyond that, links to the files).
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from .html import data_uri, environment, json_script

if TYPE_CHECKING:
    from ..batch import BatchSummary, FileResult

__all__ = ["PREVIEW_FILES", "PREVIEW_SIZE", "THUMB_SIZE", "render_batch_report"]

THUMB_SIZE = 96
"""Longest side of a thumbnail, in pixels."""
PREVIEW_SIZE = 640
"""Longest side of a before/after preview, in pixels (smaller images keep their size)."""
PREVIEW_FILES = 50
"""Batches of up to this many compressed files get before/after previews; larger ones get
thumbnails and links to the files only."""
WEBP_QUALITY = 85


@dataclass(frozen=True)
class _Images:
    thumb_in: str
    thumb_out: str
    preview_in: str | None
    preview_out: str | None
    width: int
    height: int


def _scaled(pixels: np.ndarray, size: int):  # -> PIL.Image.Image
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(pixels))
    if max(img.size) > size:
        img.thumbnail((size, size), Image.Resampling.LANCZOS)
    return img


def _webp(img) -> str:
    buf = io.BytesIO()
    img.save(buf, "WEBP", quality=WEBP_QUALITY, method=4)
    return data_uri(buf.getvalue(), "image/webp")


def _png(img) -> str:
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=False)
    return data_uri(buf.getvalue(), "image/png")


def _images(result: FileResult, *, previews: bool) -> _Images | None:
    """Thumbnails (and previews) of a compressed file's input and output; None when
    either cannot be read back (moved, or an animation)."""
    from ..errors import KmeansCliError
    from ..imageio import decode

    try:
        before = decode(Path(result.input)).pixels
        after = decode(Path(result.output)).pixels
    except KmeansCliError:
        return None
    preview_in = preview_out = None
    if previews:
        big_in, big_out = _scaled(before, PREVIEW_SIZE), _scaled(after, PREVIEW_SIZE)
        # a result at full size stays a palette PNG (its own colours); scaled, a WebP
        preview_out = _png(big_out) if big_out.size == after.shape[1::-1] else _webp(big_out)
        preview_in = _webp(big_in)
        width, height = big_in.size
    else:
        width, height = before.shape[1], before.shape[0]
    return _Images(
        _webp(_scaled(before, THUMB_SIZE)),
        _webp(_scaled(after, THUMB_SIZE)),
        preview_in,
        preview_out,
        width,
        height,
    )


def _href(path: str, page: Path | None) -> str:
    """A link from the page to a file: relative when both are on the same drive."""
    target = Path(path).resolve()
    if page is None:
        return target.as_uri()
    try:
        return Path(os.path.relpath(target, page.resolve().parent)).as_posix()
    except ValueError:
        return target.as_uri()


def _num(value: Any, spec: str) -> tuple[str, Any]:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ("–" if value is None or math.isnan(value) else "∞"), ""
    return format(value, spec), value


def _row(i: int, result: FileResult, images: _Images | None, page: Path | None) -> dict:
    r = result.report or {}
    cells = [
        ("bytes_in", *_num(r.get("bytes_in"), ",")),
        ("bytes_out", *_num(r.get("bytes_out"), ",")),
        ("ratio", *_num(r.get("ratio"), ".1%")),
        ("psnr", *_num(r.get("psnr"), ".2f")),
        ("k", *_num(r.get("k"), "d")),
    ]
    return {
        "id": f"file-{i}",
        "input": result.input,
        "output": result.output,
        "href_in": _href(result.input, page),
        "href_out": _href(result.output, page) if result.status == "ok" else None,
        "status": result.status,
        "note": result.error or result.reason or "",
        "cells": [{"key": k, "text": t, "value": v} for k, t, v in cells],
        "images": images,
    }


def render_batch_report(
    summary: BatchSummary, *, page: str | os.PathLike[str] | None = None
) -> bytes:
    """The HTML page of a batch, as UTF-8 bytes: one file, no network.

    Parameters
    ----------
    summary : BatchSummary
        From :func:`kmeanscli.batch.run_batch`; compressed files are read back from their
        outputs for the images.
    page : path, optional
        Where the page will be written: links to the files are made relative to it.
    """
    at = Path(page) if page is not None else None
    ok = [r for r in summary.results if r.status == "ok"]
    previews = len(ok) <= PREVIEW_FILES
    rows = [
        _row(i, r, _images(r, previews=previews) if r.status == "ok" else None, at)
        for i, r in enumerate(summary.results, 1)
    ]
    totals = {
        "files": len(summary.results),
        "ok": summary.ok,
        "skipped": summary.skipped,
        "failed": summary.failed,
        "not_done": summary.not_done,
        "bytes_in": summary.bytes_in,
        "bytes_out": summary.bytes_out,
        "ratio": summary.ratio,
        "seconds": summary.seconds,
    }
    html = (
        environment()
        .get_template("batch.html.j2")
        .render(
            title=f"kmeanscli batch report: {len(summary.results)} files",
            rows=rows,
            totals=totals,
            previews=previews,
            preview_files=PREVIEW_FILES,
            preview_size=PREVIEW_SIZE,
            records=json_script([r.to_dict() for r in summary.results]),
            version=__version__,
        )
    )
    return html.encode("utf-8")
