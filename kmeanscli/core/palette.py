"""Fixed palettes: one palette fitted on many images, and mapping an image onto it.

Used by ``kmeanscli batch --shared-palette`` to give sprite sheets, frames or a whole asset
folder the same colours. Pure numpy in, numpy out (scikit-learn is imported only to fit).

1. :func:`color_histogram` turns one image into its distinct visible colours (RGBA) and
   their pixel counts, optionally reduced to a weighted sample of at most ``max_colors``.
2. :func:`fit_palette` merges such histograms (each colour weighted by its pixel count, so
   big images weigh more), samples the merged set when it is large, fits ``MiniBatchKMeans``
   on it, refines the centres with exact weighted Lloyd iterations and rounds them to at
   most ``k`` distinct 8-bit colours.
3. :func:`remap` assigns every pixel of an image to its truly nearest palette colour and
   returns a :class:`~kmeanscli.core.quantize.QuantizeResult`, with fully transparent pixels
   on one extra transparent entry, exactly as :func:`~kmeanscli.core.quantize.quantize` does.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .quantize import MAX_COLORS, QuantizeResult, histogram, nearest

__all__ = ["color_histogram", "fit_palette", "merge_histograms", "remap", "sample_histogram"]

DEFAULT_MAX_COLORS = 65_536
"""Default cap on the distinct colours a merged histogram keeps before fitting."""

Histogram = tuple[np.ndarray, np.ndarray]
"""``(colors, counts)``: uint8 (n, 4) RGBA colours and their int64 or float64 weights."""


def _check_pixels(pixels: np.ndarray) -> None:
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8:
        raise ValueError("pixels must be a numpy array of dtype uint8.")
    if pixels.ndim not in (2, 3) or pixels.shape[-1] not in (3, 4):
        raise ValueError(f"pixels must have shape (H, W, 3|4) or (N, 3|4); got {pixels.shape}.")


def _check_palette(palette: np.ndarray) -> np.ndarray:
    p = np.asarray(palette)
    if p.dtype != np.uint8 and not (
        np.issubdtype(p.dtype, np.integer) and p.size and p.min() >= 0 and p.max() <= 255
    ):
        raise ValueError("palette must hold integers from 0 to 255.")
    if p.ndim != 2 or p.shape[1] not in (3, 4) or not 1 <= len(p) <= MAX_COLORS:
        raise ValueError(
            f"palette must have shape (m, 3|4) with 1 <= m <= {MAX_COLORS}; got {p.shape}."
        )
    return p.astype(np.uint8)


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
    """Distinct visible colours of an image, as RGBA, with their pixel counts.

    Parameters
    ----------
    pixels : ndarray of uint8, shape (H, W, 3|4) or (N, 3|4)
    max_colors : int, optional
        Keep a weighted sample of at most this many colours (see :func:`sample_histogram`).
    seed : int, optional
        Seed of that sample.

    Returns
    -------
    colors : ndarray of uint8, shape (n, 4)
        Opaque images get alpha 255. Fully transparent pixels are left out.
    counts : ndarray, shape (n,)
        Pixel counts (int64), or float64 weights when sampled.
    """
    _check_pixels(pixels)
    flat = pixels.reshape(-1, pixels.shape[-1])
    if flat.shape[1] == 4:
        flat = flat[flat[:, 3] > 0]
        if len(flat) and bool((flat[:, 3] == 255).all()):
            flat = flat[:, :3]
    if len(flat) == 0:
        return np.zeros((0, 4), dtype=np.uint8), np.zeros(0, dtype=np.int64)
    hist = histogram(np.ascontiguousarray(flat))
    colors = hist.colors
    if colors.shape[1] == 3:
        colors = np.concatenate([colors, np.full((len(colors), 1), 255, np.uint8)], axis=1)
    counts = np.asarray(hist.counts, dtype=np.int64)
    if max_colors is not None:
        return sample_histogram(colors, counts, max_colors, seed=seed)
    return colors, counts


def merge_histograms(histograms: Iterable[Histogram]) -> Histogram:
    """Sum several RGBA histograms into one (colours sorted, weights as float64)."""
    parts = [(np.asarray(c, dtype=np.uint8), np.asarray(w)) for c, w in histograms]
    parts = [(c, w) for c, w in parts if len(c)]
    if not parts:
        return np.zeros((0, 4), dtype=np.uint8), np.zeros(0, dtype=np.float64)
    colors = np.ascontiguousarray(np.concatenate([c for c, _ in parts]))
    weights = np.concatenate([w.astype(np.float64) for _, w in parts])
    codes = colors.view(np.uint32).ravel()
    uniq, inverse = np.unique(codes, return_inverse=True)
    merged = np.bincount(inverse.ravel(), weights=weights, minlength=len(uniq))
    return uniq.view(np.uint8).reshape(-1, 4).copy(), merged


def _order(palette: np.ndarray) -> np.ndarray:
    """By alpha, then luma, then colour: the order quantize() uses."""
    p = palette.astype(np.int64)
    luma = 299 * p[:, 0] + 587 * p[:, 1] + 114 * p[:, 2]
    alpha = p[:, 3] if p.shape[1] == 4 else np.zeros(len(p), dtype=np.int64)
    code = (p[:, 0] << 16) | (p[:, 1] << 8) | p[:, 2]
    return np.lexsort((code, luma, alpha))


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
        RGBA histograms as :func:`color_histogram` makes them. Each colour weighs its pixel
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
    ndarray of uint8, shape (m, 3) or (m, 4)
        ``m = k`` distinct colours (fewer only when the images have fewer), RGB when every
        colour is opaque, else RGBA; sorted by alpha, then luma.

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
    if bool((colors[:, 3] == 255).all()):
        colors = colors[:, :3]
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


def remap(pixels: np.ndarray, palette: np.ndarray) -> QuantizeResult:
    """Map every pixel of an image to its nearest colour of a fixed palette.

    Parameters
    ----------
    pixels : ndarray of uint8, shape (H, W, 3|4) or (N, 3|4)
        The image; it is not modified.
    palette : ndarray of uint8, shape (m, 3|4)
        The fixed palette (RGB, or RGBA to match partly transparent colours).

    Returns
    -------
    QuantizeResult
        Its palette holds the palette colours the image uses, in the palette's order, laid
        out in the image's channels (RGBA when the image or a used colour has alpha). Fully
        transparent pixels use one extra transparent entry ``(0, 0, 0, 0)`` at index 0, as
        in :func:`~kmeanscli.core.quantize.quantize`. ``k`` is the palette's length;
        ``lossless`` is True when every pixel kept its exact colour. The nearest colour is
        exact (squared distance in RGB, or RGBA when the image has alpha; ties go to the
        first palette entry). An opaque image is mapped to the palette's opaque colours
        only (all of them when none is opaque), so it stays opaque.

    Raises
    ------
    ValueError
        For pixels or a palette outside this contract.
    """
    _check_pixels(pixels)
    pal = _check_palette(palette)
    if pixels.size == 0:
        raise ValueError("the image has no pixels.")
    in_channels = pixels.shape[-1]
    flat = pixels.reshape(-1, in_channels)
    n_pixels = len(flat)

    visible: np.ndarray | None = None
    work = flat
    if in_channels == 4:
        transparent = flat[:, 3] == 0
        if transparent.any():
            visible = ~transparent
            work = flat[visible]
    opaque_work = in_channels == 3 or bool((work[:, 3] == 255).all())
    opaque_entry = (
        np.ones(len(pal), dtype=bool) if pal.shape[1] == 3 else np.asarray(pal[:, 3] == 255)
    )
    # An opaque image stays opaque: it uses only the opaque colours (when there are any).
    candidates = np.flatnonzero(opaque_entry) if opaque_work and opaque_entry.any() else None
    space = 3 if opaque_work and candidates is not None else 4
    if opaque_work:
        work = work[:, :3]
    pal_space = pal[:, :space] if pal.shape[1] >= space else _with_alpha(pal)
    has_transparent = visible is not None

    if len(work):
        hist = histogram(np.ascontiguousarray(_with_alpha(work) if space == 4 else work))
        if candidates is None:
            labels, sqdist = nearest(hist.colors, pal_space)
        else:
            labels, sqdist = nearest(hist.colors, pal_space[candidates])
            labels = candidates[labels]
        weights = np.asarray(hist.counts, dtype=np.float64)
        sq_total = float(np.dot(sqdist.astype(np.float64), weights))
        used = np.flatnonzero(np.bincount(labels, minlength=len(pal)))
        n_colors = len(hist.colors)
    else:
        hist, labels, used, sq_total, n_colors = None, None, np.zeros(0, np.intp), 0.0, 0

    out_channels = 4 if in_channels == 4 or space == 4 else 3
    out_pal = _with_alpha(pal_space[used]) if out_channels == 4 else pal_space[used]
    offset = 1 if has_transparent else 0
    if has_transparent:
        out_pal = np.concatenate([np.zeros((1, out_channels), dtype=np.uint8), out_pal])
    if len(out_pal) > MAX_COLORS:
        raise ValueError(
            f"a palette image holds {MAX_COLORS} entries: this image uses {len(used)} colours "
            "and needs one more for its transparent pixels; use at most 255 colours."
        )

    indices_flat = np.zeros(n_pixels, dtype=np.uint8)
    if hist is not None:
        rank = np.zeros(len(pal), dtype=np.intp)
        rank[used] = np.arange(len(used)) + offset
        mapped = hist.spread(rank[labels].astype(np.uint8))
        if visible is None:
            indices_flat = np.asarray(mapped, dtype=np.uint8)
        else:
            indices_flat[visible] = mapped
    counts = np.bincount(indices_flat, minlength=len(out_pal)).astype(np.int64)
    return QuantizeResult(
        palette=np.ascontiguousarray(out_pal),
        indices=indices_flat.reshape(pixels.shape[:-1]),
        counts=counts,
        unique_colors=n_colors + has_transparent,
        mse=sq_total / (n_pixels * out_channels),
        k=len(pal),
        transparent_index=0 if has_transparent else None,
        lossless=sq_total == 0.0,
    )


def _with_alpha(colors: np.ndarray) -> np.ndarray:
    if colors.shape[1] == 4:
        return colors
    out = np.full((len(colors), 4), 255, dtype=np.uint8)
    out[:, :3] = colors
    return out
