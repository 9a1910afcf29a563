"""Colour quantization with k-means on the image's colour histogram.

The pipeline, all in numpy (scikit-learn is imported only when a fit is needed):

1. **Histogram**: the distinct colours of the image with their pixel counts. Fully transparent
   pixels are set aside; they become one transparent palette entry that costs no colour.
2. **Fit**: scikit-learn's ``MiniBatchKMeans`` (k-means++ init) on the distinct colours, each
   weighted by its pixel count. Very colourful images are first reduced to a coarser histogram
   whose bins carry the mean colour of their pixels.
3. **Refine**: exact weighted Lloyd iterations on the full histogram, which lower the error
   to that of a full ``KMeans`` on every pixel.
4. **Exact k**: the centres are rounded to 8-bit colours; duplicates and unused entries are
   replaced by the worst-served colours until exactly ``k`` distinct colours are each used.
5. **Assign**: every distinct colour goes to its truly nearest palette colour. With integer
   colours the float32 distance arithmetic is exact, so the choice is exact too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .metrics import psnr_from_mse

__all__ = ["MAX_COLORS", "QuantizeResult", "histogram", "nearest", "quantize"]

MAX_COLORS = 256
"""A palette image holds at most 256 entries."""

_BINCOUNT_MIN_PIXELS = 1 << 19  # above this, a 2**24-bin count beats sorting for RGB
_COARSE_MIN_COLORS = 20_000  # above this, MiniBatchKMeans fits a coarser histogram
_COARSE_BITS = 5  # bits per channel of the coarse histogram
_REFINE_MAX_POINTS = 150_000  # above this, Lloyd refinement runs on a 7- or 6-bit histogram
_BLOCK_ROWS = 1 << 15  # rows per float32 distance block
_THREADED_MIN_WORK = 4_000_000  # points x centres below which fits run on one thread
_KDTREE_MIN_CENTERS = 32  # nearest() uses a KD-tree from this many centres ...
_KDTREE_MIN_POINTS = 50_000  # ... and this many points

ProgressCallback = Callable[[str], None]


@dataclass(frozen=True, eq=False)
class QuantizeResult:
    """The outcome of :func:`quantize`.

    Attributes
    ----------
    palette : ndarray of uint8, shape (m, C)
        The palette, in the channel layout of the input (C = 3 or 4). The transparent entry,
        if any, is at ``transparent_index`` and is ``(0, 0, 0, 0)``.
    indices : ndarray of uint8, shape = input shape without the channel axis
        The palette index of every pixel.
    counts : ndarray of int64, shape (m,)
        The number of pixels that use each palette entry (every entry is used).
    unique_colors : int
        Distinct colours in the input (all fully transparent pixels count as one).
    mse : float
        Mean squared error per channel in 8-bit units (see :mod:`kmeanscli.core.metrics`).
    k : int
        The number of colours asked for.
    transparent_index : int or None
        Index of the fully transparent entry, or None when the image has no such pixel.
    lossless : bool
        True when the input had no more than ``k`` colours and all were kept exactly.
    """

    palette: np.ndarray
    indices: np.ndarray
    counts: np.ndarray
    unique_colors: int
    mse: float
    k: int
    transparent_index: int | None
    lossless: bool

    @property
    def colors(self) -> int:
        """Number of visible colours in the output (the transparent entry is not counted)."""
        return len(self.palette) - (self.transparent_index is not None)

    @property
    def psnr(self) -> float:
        """Peak signal-to-noise ratio in dB (``inf`` when lossless)."""
        return psnr_from_mse(self.mse)

    def image(self) -> np.ndarray:
        """The quantized image as a ``uint8`` array of the input's shape."""
        return self.palette[self.indices]


@dataclass(frozen=True, eq=False)
class _Histogram:
    colors: np.ndarray  # (n, c) uint8, distinct colours
    counts: np.ndarray  # (n,) int64
    codes: np.ndarray  # (n,) uint32 packed colour of each distinct colour
    pixel_codes: np.ndarray | None  # per-pixel packed colour (bincount path) ...
    inverse: np.ndarray | None  # ... or per-pixel index into colors (sort path)

    def spread(self, labels: np.ndarray) -> np.ndarray:
        """Per-pixel values from one ``uint8`` value per distinct colour."""
        if self.inverse is not None:
            return labels[self.inverse]
        lut = np.zeros(1 << 24, dtype=labels.dtype)
        lut[self.codes] = labels
        return lut[self.pixel_codes]


def _pack_rgb(flat: np.ndarray) -> np.ndarray:
    """``r << 16 | g << 8 | b`` as uint32, in chunks to keep temporaries small."""
    codes = np.empty(len(flat), dtype=np.uint32)
    step = 1 << 20
    for start in range(0, len(flat), step):
        part = flat[start : start + step]
        out = codes[start : start + step]
        np.left_shift(part[:, 0], 16, out=out, dtype=np.uint32)
        out |= part[:, 1].astype(np.uint32) << 8
        out |= part[:, 2]
    return codes


def _unpack_rgb(codes: np.ndarray) -> np.ndarray:
    out = np.empty((len(codes), 3), dtype=np.uint8)
    out[:, 0] = codes >> 16
    out[:, 1] = (codes >> 8) & 0xFF
    out[:, 2] = codes & 0xFF
    return out


def histogram(flat: np.ndarray) -> _Histogram:
    """Distinct colours of ``flat`` (shape (N, 3) or (N, 4), uint8) and their counts."""
    if flat.shape[1] == 3:
        pixel_codes = _pack_rgb(flat)
        if len(pixel_codes) >= _BINCOUNT_MIN_PIXELS:
            full = np.bincount(pixel_codes, minlength=1 << 24)
            codes = np.flatnonzero(full).astype(np.uint32)
            counts = full[codes]
            del full
            return _Histogram(_unpack_rgb(codes), counts, codes, pixel_codes, None)
        codes, inverse, counts = np.unique(pixel_codes, return_inverse=True, return_counts=True)
        return _Histogram(_unpack_rgb(codes), counts.astype(np.int64), codes, None, inverse)
    packed = np.ascontiguousarray(flat).view(np.uint32).ravel()
    codes, inverse, counts = np.unique(packed, return_inverse=True, return_counts=True)
    colors = codes.view(np.uint8).reshape(-1, 4)
    return _Histogram(colors, counts.astype(np.int64), codes, None, inverse)


def nearest(points: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest centre for every point, and the squared distance to it.

    Parameters
    ----------
    points : ndarray, shape (n, d)
    centers : ndarray, shape (k, d)

    Returns
    -------
    labels : ndarray of intp, shape (n,)
        Ties go to the lowest index on the blockwise path; the KD-tree may pick any tied centre.
    sqdist : ndarray of float32, shape (n,)

    Notes
    -----
    Many points and centres go through a KD-tree (float64, exact for 8-bit colours). Otherwise
    distances are computed as ``|c|^2 - 2 x.c`` (+ ``|x|^2``) in float32 blocks: when points
    and centres hold integers of 0..255, every intermediate is an integer below 2**24, so the
    result is exact too. Either way the nearest centre is truly the nearest.
    """
    x = np.asarray(points, dtype=np.float32)
    c = np.asarray(centers, dtype=np.float32)
    if len(c) >= _KDTREE_MIN_CENTERS and len(x) >= _KDTREE_MIN_POINTS:
        from scipy.spatial import cKDTree  # comes with scikit-learn

        dist, idx = cKDTree(c.astype(np.float64)).query(x, k=1, workers=-1)
        return idx.astype(np.intp), (dist * dist).astype(np.float32)
    c_sq = np.einsum("ij,ij->i", c, c)
    neg2ct = -2.0 * c.T
    labels = np.empty(len(x), dtype=np.intp)
    sqdist = np.empty(len(x), dtype=np.float32)
    for start in range(0, len(x), _BLOCK_ROWS):
        xb = x[start : start + _BLOCK_ROWS]
        d = xb @ neg2ct
        d += c_sq
        lab = np.argmin(d, axis=1)
        labels[start : start + len(xb)] = lab
        best = d[np.arange(len(xb)), lab] + np.einsum("ij,ij->i", xb, xb)
        np.maximum(best, 0.0, out=best)
        sqdist[start : start + len(xb)] = best
    return labels, sqdist


def _weighted_means(
    points: np.ndarray, weights: np.ndarray, labels: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    totals = np.bincount(labels, weights=weights, minlength=k)
    sums = np.stack(
        [
            np.bincount(labels, weights=weights * points[:, j], minlength=k)
            for j in range(points.shape[1])
        ],
        axis=1,
    )
    return sums, totals


def _coarsen(colors: np.ndarray, counts: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge colours into bins of ``bits`` per channel; each bin keeps its mean colour.

    Returns float32 bin colours and float32 bin weights (pixel counts).
    """
    shift = 8 - bits
    c = colors.shape[1]
    code = np.zeros(len(colors), dtype=np.int64)
    for j in range(c):
        code <<= bits
        code |= colors[:, j] >> shift
    size = 1 << (bits * c)
    w = counts.astype(np.float64)
    totals = np.bincount(code, weights=w, minlength=size)
    occupied = np.flatnonzero(totals)
    means = np.empty((len(occupied), c), dtype=np.float32)
    for j in range(c):
        sums = np.bincount(code, weights=w * colors[:, j], minlength=size)
        means[:, j] = sums[occupied] / totals[occupied]
    return means, totals[occupied].astype(np.float32)


def _fit_minibatch(
    points: np.ndarray,
    weights: np.ndarray,
    k: int,
    *,
    seed: int,
    max_iter: int,
    batch_size: int,
) -> np.ndarray:
    from sklearn.cluster import MiniBatchKMeans  # heavy import, only when fitting

    model = MiniBatchKMeans(
        n_clusters=k,
        init="k-means++",
        n_init=1,
        max_iter=max_iter,
        batch_size=batch_size,
        random_state=seed,
        compute_labels=False,
        init_size=min(len(points), max(3 * batch_size, 3 * k)),
    )
    with _threads(min(len(points), batch_size) * k):
        model.fit(points, sample_weight=weights)
    return model.cluster_centers_.astype(np.float32)


def _threads(work: int):
    """Limit BLAS/OpenMP to one thread for small problems.

    Thread start-up and spinning cost more than they save on small histograms, and on a busy
    machine they make a 0.05 s fit take over a second.
    """
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    return threadpool_limits(1 if work < _THREADED_MIN_WORK else None)


def _refine(
    colors: np.ndarray,
    counts: np.ndarray,
    centers: np.ndarray,
    *,
    max_iter: int,
    seed: int,
) -> np.ndarray:
    """Exact weighted Lloyd iterations (scikit-learn's compiled ``KMeans``) from ``centers``.

    Runs on the full histogram when it is small enough, else on a 7- or 6-bit histogram
    whose bins carry their mean colour.
    """
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    points, weights = colors.astype(np.float32), counts.astype(np.float32)
    for bits in (7, 6):
        if len(points) <= _REFINE_MAX_POINTS:
            break
        points, weights = _coarsen(colors, counts, bits)
    k = len(centers)
    if len(points) <= k:
        return centers
    model = KMeans(
        n_clusters=k,
        init=centers.astype(np.float32),
        n_init=1,
        max_iter=max_iter,
        tol=0.0,
        algorithm="lloyd",
        random_state=seed,
    )
    # One OpenMP thread whatever the size (not _threads): scikit-learn's Lloyd step adds the
    # per-thread partial sums in the order the threads finish, so with more threads the
    # centres (and the output bytes) depend on the thread count, and with three or more can
    # differ from run to run. MiniBatchKMeans does not have this problem.
    with threadpool_limits(limits=1, user_api="openmp"):
        model.fit(points, sample_weight=weights)
    return model.cluster_centers_.astype(np.float32)


def _exact_palette(
    points: np.ndarray, weights: np.ndarray, centers: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Round centres to distinct 8-bit colours such that exactly ``k`` of them are used.

    Requires more than ``k`` distinct points. Unused or duplicate entries are replaced by the
    points with the largest weighted error; each round strictly lowers the total error, so
    the loop ends.
    """
    palette = np.unique(np.clip(np.rint(centers), 0, 255).astype(np.uint8), axis=0)
    while True:
        labels, sqdist = nearest(points, palette)
        counts = np.bincount(labels, minlength=len(palette))
        used = counts > 0
        if len(palette) == k and used.all():
            diff = points - palette[labels].astype(np.float32)
            return palette, labels, np.einsum("ij,ij->i", diff, diff)  # exact integers
        palette = palette[used]
        need = k - len(palette)
        cost = sqdist * weights
        order = np.argsort(-cost, kind="stable")[:need]
        order = order[cost[order] > 0]
        palette = np.concatenate([palette, points[order].astype(np.uint8)])


def _order(palette: np.ndarray) -> np.ndarray:
    """A stable palette order: by alpha, then by luma (helps PNG filters and compression)."""
    p = palette.astype(np.int64)
    luma = 299 * p[:, 0] + 587 * p[:, 1] + 114 * p[:, 2]
    alpha = p[:, 3] if p.shape[1] == 4 else np.zeros(len(p), dtype=np.int64)
    code = (p[:, 0] << 16) | (p[:, 1] << 8) | p[:, 2]
    return np.lexsort((code, luma, alpha))


def _check(pixels: np.ndarray, k: int, seed: int, max_iter: int, batch_size: int) -> None:
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8:
        raise ValueError("pixels must be a numpy array of dtype uint8.")
    if pixels.ndim not in (2, 3) or pixels.shape[-1] not in (3, 4):
        raise ValueError(f"pixels must have shape (H, W, 3|4) or (N, 3|4); got {pixels.shape}.")
    if pixels.size == 0:
        raise ValueError("the image has no pixels.")
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_COLORS:
        raise ValueError(f"k must be an integer from 1 to {MAX_COLORS}; got {k!r}.")
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer from 0 to 2**32-1; got {seed!r}.")
    if max_iter < 1:
        raise ValueError(f"max_iter must be at least 1; got {max_iter}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1; got {batch_size}.")


def quantize(
    pixels: np.ndarray,
    k: int,
    *,
    seed: int = 0,
    max_iter: int = 100,
    batch_size: int = 4096,
    refine_iter: int = 30,
    progress: ProgressCallback | None = None,
) -> QuantizeResult:
    """Reduce an image to at most ``k`` colours with k-means.

    Parameters
    ----------
    pixels : ndarray of uint8, shape (H, W, C) or (N, C), C = 3 (RGB) or 4 (RGBA)
        The image. It is not modified.
    k : int
        Number of colours, 1 to 256. The output has exactly ``k`` colours when the image
        has at least ``k`` distinct (visible) colours; otherwise all its colours are kept
        exactly. Fully transparent pixels share one extra transparent entry that does not
        count towards ``k`` (with ``k`` = 256 it takes the place of one colour, since a
        palette holds 256 entries).
    seed : int, optional
        Random seed; the same input, options and seed give the same result.
    max_iter : int, optional
        Maximum passes of ``MiniBatchKMeans`` over the histogram.
    batch_size : int, optional
        ``MiniBatchKMeans`` mini-batch size.
    refine_iter : int, optional
        Maximum exact Lloyd iterations on the full histogram after the fit (0 to skip).
    progress : callable, optional
        Called with the name of each stage as it starts.

    Returns
    -------
    QuantizeResult

    Raises
    ------
    ValueError
        For an input or argument outside the contract above.
    """
    _check(pixels, k, seed, max_iter, batch_size)
    step = progress or (lambda _stage: None)
    channels = pixels.shape[-1]
    flat = pixels.reshape(-1, channels)
    n_pixels = len(flat)

    step("histogram")
    visible: np.ndarray | None = None  # mask of pixels that are not fully transparent
    work = flat
    if channels == 4:
        alpha = flat[:, 3]
        transparent = alpha == 0
        if transparent.any():
            visible = ~transparent
            work = flat[visible]
        if work.size and bool((work[:, 3] == 255).all()):
            work = work[:, :3]  # only opaque visible pixels: cluster RGB alone
    hist = histogram(work) if len(work) else None
    n_colors = len(hist.colors) if hist is not None else 0
    has_transparent = visible is not None
    k_eff = min(k, MAX_COLORS - 1) if has_transparent else k

    if hist is None:
        palette_w = np.zeros((0, channels), dtype=np.uint8)
        labels = np.zeros(0, dtype=np.intp)
        sq_total = 0.0
        lossless = True
    elif n_colors <= k_eff:
        palette_w = hist.colors
        labels = np.arange(n_colors)
        sq_total = 0.0
        lossless = True
    else:
        points = hist.colors.astype(np.float32)
        weights = hist.counts.astype(np.float64)
        step("fit")
        if n_colors > _COARSE_MIN_COLORS:
            fit_points, fit_weights = _coarsen(hist.colors, hist.counts, _COARSE_BITS)
        else:
            fit_points, fit_weights = points, weights
        if len(fit_points) <= k_eff:
            centers = fit_points
        else:
            centers = _fit_minibatch(
                fit_points,
                fit_weights,
                k_eff,
                seed=int(seed),
                max_iter=max_iter,
                batch_size=batch_size,
            )
        if refine_iter > 0:
            step("refine")
            centers = _refine(
                hist.colors, hist.counts, centers, max_iter=refine_iter, seed=int(seed)
            )
        step("assign")
        palette_w, labels, sqdist = _exact_palette(points, weights, centers, k_eff)
        sq_total = float(np.dot(sqdist.astype(np.float64), weights))
        lossless = False

    # Lay the palette out in the input's channels, with the transparent entry first.
    palette = np.zeros((len(palette_w), channels), dtype=np.uint8)
    palette[:, : palette_w.shape[1]] = palette_w
    if channels == 4 and palette_w.shape[1] == 3:
        palette[:, 3] = 255
    order = _order(palette)
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    palette = palette[order]
    offset = 1 if has_transparent else 0
    if has_transparent:
        palette = np.concatenate([np.zeros((1, channels), dtype=np.uint8), palette])
    index_dtype = np.uint8

    indices_flat = np.zeros(n_pixels, dtype=index_dtype)
    if hist is not None:
        per_color = (rank[labels] + offset).astype(index_dtype)
        mapped = hist.spread(per_color)
        if visible is None:
            indices_flat = mapped
        else:
            indices_flat[visible] = mapped
    counts = np.bincount(indices_flat, minlength=len(palette)).astype(np.int64)
    unique_colors = n_colors + has_transparent
    return QuantizeResult(
        palette=palette,
        indices=indices_flat.reshape(pixels.shape[:-1]),
        counts=counts,
        unique_colors=unique_colors,
        mse=sq_total / (n_pixels * channels),
        k=int(k),
        transparent_index=0 if has_transparent else None,
        lossless=lossless,
    )
