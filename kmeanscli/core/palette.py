"""One palette for many images, fitted on their colour histograms.

Used by ``kmeanscli batch --shared-palette`` to give sprite sheets, frames or a whole asset
folder the same colours. Pure numpy in, numpy out.

1. :func:`color_histogram` turns one image into its distinct visible colours (RGB) and
   their pixel counts, optionally reduced to a weighted sample of at most ``max_colors``.
2. :func:`merge_histograms` sums such histograms (each colour weighted by its pixel count,
   so big images weigh more) and :func:`sample_histogram` keeps large ones small.
3. :func:`fit_palette` fits them exactly as :func:`kmeanscli.quantize` fits one image's
   histogram (the same engines and options) and orders the palette as ``quantize`` does.

Mapping an image onto the result is :func:`kmeanscli.core.remap.map_to_palette` (what
``compress_file(..., palette=...)`` does).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..constants import MAX_COLORS
from .histogram import histogram, pack_rgb, unpack_rgb
from .quantize import auto_restarts, check_pixels, fit_colors, palette_order

__all__ = ["color_histogram", "fit_palette", "merge_histograms", "sample_histogram"]

DEFAULT_MAX_COLORS = 65_536
"""Default cap on the distinct colours a merged histogram keeps before fitting."""

Histogram = tuple[np.ndarray, np.ndarray]
"""``(colors, counts)``: uint8 (n, 3) RGB colours and their int64 or float64 weights."""


def sample_histogram(
    colors: np.ndarray, counts: np.ndarray, max_colors: int, *, seed: int = 0
) -> Histogram:
    """A weighted random sample of a histogram with at most ``max_colors`` colours.

    Colours are drawn with probability proportional to their weight; the kept colours are
    re-weighted so the total weight is unchanged. A histogram already small enough is
    returned as it is. Deterministic for a given ``seed``.
    """
    if max_colors < 1:
        raise ValueError(f"max_colors must be at least 1; got {max_colors}.")
    if len(colors) <= max_colors:
        return colors, counts
    weights = counts.astype(np.float64)
    total = float(weights.sum())
    rng = np.random.default_rng(seed)
    draws = rng.choice(len(colors), size=max_colors, replace=True, p=weights / total)
    kept, hits = np.unique(draws, return_counts=True)
    return colors[kept], hits.astype(np.float64) * (total / max_colors)


def color_histogram(
    pixels: np.ndarray, *, max_colors: int | None = None, seed: int = 0
) -> Histogram:
    """Distinct visible colours of an image (RGB) with their pixel counts.

    Parameters
    ----------
    pixels : ndarray of uint8, shape (H, W, 3|4) or (N, 3|4)
    max_colors : int, optional
        Keep a weighted sample of at most this many colours (see :func:`sample_histogram`).
    seed : int, optional
        Seed of that sample.

    Returns
    -------
    colors : ndarray of uint8, shape (n, 3)
        Fully transparent pixels are left out; the others count with their RGB colour
        (a fixed palette is opaque).
    counts : ndarray, shape (n,)
        Pixel counts (int64), or float64 weights when sampled.
    """
    check_pixels(pixels, allow_empty=True)
    flat = pixels.reshape(-1, pixels.shape[-1])
    if flat.shape[1] == 4:
        flat = flat[flat[:, 3] > 0, :3]
    if len(flat) == 0:
        return np.zeros((0, 3), dtype=np.uint8), np.zeros(0, dtype=np.int64)
    hist = histogram(np.ascontiguousarray(flat))
    counts = np.asarray(hist.counts, dtype=np.int64)
    if max_colors is not None:
        return sample_histogram(hist.colors, counts, max_colors, seed=seed)
    return hist.colors, counts


def merge_histograms(histograms: Iterable[Histogram]) -> Histogram:
    """Sum several RGB histograms into one (colours sorted, weights as float64)."""
    parts = [(np.asarray(c, dtype=np.uint8), np.asarray(w)) for c, w in histograms]
    parts = [(c, w) for c, w in parts if len(c)]
    if not parts:
        return np.zeros((0, 3), dtype=np.uint8), np.zeros(0, dtype=np.float64)
    codes = pack_rgb(np.concatenate([c for c, _ in parts]))
    weights = np.concatenate([w.astype(np.float64) for _, w in parts])
    uniq, inverse = np.unique(codes, return_inverse=True)
    merged = np.bincount(inverse.ravel(), weights=weights, minlength=len(uniq))
    return unpack_rgb(uniq), merged


def fit_palette(
    histograms: Iterable[Histogram],
    k: int,
    *,
    seed: int = 0,
    restarts: int | None = None,
    max_colors: int = DEFAULT_MAX_COLORS,
    **fit: Any,
) -> np.ndarray:
    """One palette of ``k`` colours for several images, from their colour histograms.

    Parameters
    ----------
    histograms : iterable of (colors, counts)
        RGB histograms as :func:`color_histogram` makes them. Each colour weighs its pixel
        count, so every pixel of every image counts the same.
    k : int
        Number of colours, 1 to 256 (255 are usable when an image has transparent pixels).
    seed, restarts
        As for :func:`kmeanscli.quantize`; the same histograms and seed give the same palette.
    max_colors : int, optional
        A merged histogram with more distinct colours is reduced to a weighted sample first.
    **fit
        ``engine``, ``space``, ``max_iter``, ``refine_iter``, ``batch_size`` and ``keep``,
        as for :func:`kmeanscli.quantize`: the shared palette is the same fit
        (:func:`kmeanscli.core.quantize.fit_colors`) on the merged histogram.

    Returns
    -------
    ndarray of uint8, shape (m, 3)
        ``m = k`` distinct colours (fewer only when the images have fewer), sorted by luma.

    Raises
    ------
    ValueError
        For a bad ``k`` or when the histograms hold no visible colour.
    """
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_COLORS:
        raise ValueError(f"k must be an integer from 1 to {MAX_COLORS}; got {k!r}.")
    colors, weights = merge_histograms(histograms)
    if len(colors) == 0:
        raise ValueError("the images hold no visible colour to fit a palette on.")
    colors, weights = sample_histogram(colors, weights, max_colors, seed=seed)
    restarts = auto_restarts(k) if restarts is None else restarts
    palette = fit_colors(colors, weights, int(k), seed=seed, restarts=restarts, **fit).palette
    return np.ascontiguousarray(palette[palette_order(palette)])
