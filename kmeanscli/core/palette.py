"""One palette for many images, fitted on their colour histograms.

Used by ``kmeanscli batch --shared-palette`` to give sprite sheets, frames or a whole asset
folder the same colours. Pure numpy in, numpy out (scikit-learn is imported only to fit).

1. :func:`color_histogram` turns one image into its distinct visible colours (RGB) and
   their pixel counts, optionally reduced to a weighted sample of at most ``max_colors``.
2. :func:`merge_histograms` sums such histograms (each colour weighted by its pixel count,
   so big images weigh more) and :func:`sample_histogram` keeps large ones small.
3. :func:`fit_palette` fits ``MiniBatchKMeans`` on them, refines the centres with exact
   weighted Lloyd iterations and rounds them to ``k`` distinct 8-bit colours.

Mapping an image onto the result is :func:`kmeanscli.core.remap.map_to_palette` (what
``compress_file(..., palette=...)`` does).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .quantize import MAX_COLORS, histogram, nearest

__all__ = ["color_histogram", "fit_palette", "merge_histograms", "sample_histogram"]

DEFAULT_MAX_COLORS = 65_536
"""Default cap on the distinct colours a merged histogram keeps before fitting."""

Histogram = tuple[np.ndarray, np.ndarray]
"""``(colors, counts)``: uint8 (n, 3) RGB colours and their int64 or float64 weights."""


def _check_pixels(pixels: np.ndarray) -> None:
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8:
        raise ValueError("pixels must be a numpy array of dtype uint8.")
    if pixels.ndim not in (2, 3) or pixels.shape[-1] not in (3, 4):
        raise ValueError(f"pixels must have shape (H, W, 3|4) or (N, 3|4); got {pixels.shape}.")


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
    _check_pixels(pixels)
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
    colors = np.concatenate([c for c, _ in parts]).astype(np.uint32)
    weights = np.concatenate([w.astype(np.float64) for _, w in parts])
    codes = (colors[:, 0] << 16) | (colors[:, 1] << 8) | colors[:, 2]
    uniq, inverse = np.unique(codes, return_inverse=True)
    merged = np.bincount(inverse.ravel(), weights=weights, minlength=len(uniq))
    out = np.empty((len(uniq), 3), dtype=np.uint8)
    out[:, 0], out[:, 1], out[:, 2] = uniq >> 16, (uniq >> 8) & 0xFF, uniq & 0xFF
    return out, merged


def _order(palette: np.ndarray) -> np.ndarray:
    """By luma, then colour."""
    p = palette.astype(np.int64)
    luma = 299 * p[:, 0] + 587 * p[:, 1] + 114 * p[:, 2]
    code = (p[:, 0] << 16) | (p[:, 1] << 8) | p[:, 2]
    return np.lexsort((code, luma))


def _refine(points: np.ndarray, weights: np.ndarray, centers: np.ndarray, iters: int) -> np.ndarray:
    centers = centers.astype(np.float32, copy=True)
    k = len(centers)
    previous = None
    for _ in range(iters):
        labels, _ = nearest(points, centers)
        if previous is not None and np.array_equal(labels, previous):
            break
        totals = np.bincount(labels, weights=weights, minlength=k)
        used = totals > 0
        for j in range(points.shape[1]):
            sums = np.bincount(labels, weights=weights * points[:, j], minlength=k)
            centers[used, j] = (sums[used] / totals[used]).astype(np.float32)
        previous = labels
    return centers


def _distinct_k(points: np.ndarray, weights: np.ndarray, centers: np.ndarray, k: int) -> np.ndarray:
    """Round centres to ``k`` distinct used 8-bit colours (worst-served colours fill gaps)."""
    palette = np.unique(np.clip(np.rint(centers), 0, 255).astype(np.uint8), axis=0)
    while True:
        labels, sqdist = nearest(points, palette)
        used = np.bincount(labels, minlength=len(palette)) > 0
        if len(palette) == k and used.all():
            return palette
        palette = palette[used]
        cost = sqdist * weights
        order = np.argsort(-cost, kind="stable")[: k - len(palette)]
        order = order[cost[order] > 0]
        if len(order) == 0:
            return palette
        palette = np.concatenate([palette, points[order].astype(np.uint8)])


def fit_palette(
    histograms: Iterable[Histogram],
    k: int,
    *,
    seed: int = 0,
    max_iter: int = 100,
    batch_size: int = 4096,
    refine_iter: int = 30,
    max_colors: int = DEFAULT_MAX_COLORS,
) -> np.ndarray:
    """One palette of ``k`` colours for several images, from their colour histograms.

    Parameters
    ----------
    histograms : iterable of (colors, counts)
        RGB histograms as :func:`color_histogram` makes them. Each colour weighs its pixel
        count, so every pixel of every image counts the same.
    k : int
        Number of colours, 1 to 256 (255 are usable when an image has transparent pixels).
    seed, max_iter, batch_size
        ``MiniBatchKMeans`` settings; the same histograms and seed give the same palette.
    refine_iter : int, optional
        Exact weighted Lloyd iterations after the fit (0 to skip).
    max_colors : int, optional
        A merged histogram with more distinct colours is reduced to a weighted sample first.

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
    if len(colors) <= k:
        palette = colors
    else:
        from sklearn.cluster import MiniBatchKMeans  # heavy import, only when fitting

        points = colors.astype(np.float32)
        model = MiniBatchKMeans(
            n_clusters=int(k),
            init="k-means++",
            n_init=1,
            max_iter=max_iter,
            batch_size=batch_size,
            random_state=int(seed),
            compute_labels=False,
            init_size=min(len(points), max(3 * batch_size, 3 * int(k))),
        )
        model.fit(points, sample_weight=weights)
        centers = model.cluster_centers_.astype(np.float32)
        if refine_iter > 0:
            centers = _refine(points, weights, centers, refine_iter)
        palette = _distinct_k(points, weights, centers, int(k))
    return np.ascontiguousarray(palette[_order(palette)])
