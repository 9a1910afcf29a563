"""Colour quantization with k-means on the image's colour histogram.

The pipeline, all in numpy (SciPy's KD-tree finds nearest colours for large palettes):

1. **Histogram**: the distinct colours of the image with their pixel counts. Fully transparent
   pixels are set aside; they become one transparent palette entry that costs no colour.
2. **Fit**: the histogram is binned at 6 (or, for very colourful images, 5) bits per
   channel, each bin carrying the mean colour of its pixels. Greedy weighted k-means++ (as
   scikit-learn's ``kmeans_plusplus``, the same centres) seeds the centres there and exact
   weighted Lloyd iterations (as scikit-learn's ``KMeans``, over two threads yet
   reproducible) move them.
3. **Refine**: more Lloyd iterations on 7-bit bins, then on the distinct colours themselves,
   bring the error to within about 0.5 % of a full ``KMeans`` on every pixel.
4. **Exact k**: the centres are rounded to 8-bit colours; duplicates and unused entries are
   replaced by the worst-served colours until exactly ``k`` distinct colours are each used.
5. **Assign**: every distinct colour goes to its truly nearest palette colour. With integer
   colours the float32 distance arithmetic is exact, so the choice is exact too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..constants import DEFAULT_MAX_ITER
from .color import SPACES, from_space, to_space
from .metrics import psnr_from_mse

__all__ = [
    "MAX_COLORS",
    "PreparedImage",
    "QuantizeResult",
    "histogram",
    "nearest",
    "nearest_in_space",
    "prepare",
    "quantize",
]

MAX_COLORS = 256
"""A palette image holds at most 256 entries."""

DEFAULT_REFINE_ITER = 5
"""Lloyd iterations on the distinct colours, after the binned levels."""

_BINCOUNT_MIN_PIXELS = 1 << 17  # from here, RGB pixels map through a 2**24 lookup table
_DENSE_BIN_BITS = 18  # _coarsen counts into dense bins up to 2**18 of them
_INIT_MAX_POINTS = 40_000  # k-means++ seeds on a level of at most this many points (if any)
_LEVEL_MAX_POINTS = 150_000  # Lloyd skips finer levels with more points than this
_LEVEL_SHRINK = 0.7  # a binned level must have under 0.7x the points of the next finer one
_SKIP_7BIT_COLORS = 1_200_000  # with more colours, 7-bit bins would exceed the level cap
_COARSE_STARTS = 3  # k-means++ starts on the coarsest level, the best one goes on ...
_COARSE_STARTS_MAX_K = 16  # ... up to this k (where a start costs little)
_LLOYD_ARGMIN_MIN_K = 64  # from this k _lloyd finds nearest centres by argmin, else packed
_LLOYD_BLOCK = 2048  # points per distance block in _lloyd (argmin) ...
_LLOYD_PACKED_BLOCK = 4096  # ... and below 64 centres
_LLOYD_MAX_THREADS = 2  # threads sharing _lloyd's blocks (the result does not depend on it)
_LLOYD_THREADED_MIN_WORK = 1 << 20  # points x centres below which _lloyd keeps to one thread
_BLOCK_ROWS = 1 << 15  # rows per float32 distance block
_KDTREE_MIN_CENTERS = 128  # nearest() uses a KD-tree from this many centres ...
_KDTREE_MIN_POINTS = 50_000  # ... and this many points
_KDTREE_CHUNK = 1 << 18  # points per KD-tree query
_PACK_CHUNK = 1 << 20  # pixels per chunk when packing RGB into 24-bit codes

_ALPHA_SCALE = {"rgb": 1.0, "oklab": 1.0 / 255.0, "lab": 100.0 / 255.0}

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
    pixels: np.ndarray | None  # the (N, 3) RGB pixels, mapped through a lookup table ...
    inverse: np.ndarray | None  # ... or per-pixel index into colors (small images, RGBA)

    def spread(self, labels: np.ndarray) -> np.ndarray:
        """Per-pixel values from one ``uint8`` value per distinct colour."""
        if self.inverse is not None:
            return labels[self.inverse]
        assert self.pixels is not None
        lut = np.zeros(1 << 24, dtype=labels.dtype)
        lut[self.codes] = labels
        out = np.empty(len(self.pixels), dtype=labels.dtype)
        for start in range(0, len(out), _PACK_CHUNK):  # pack again: keeps no 4-byte codes
            part = self.pixels[start : start + _PACK_CHUNK]
            out[start : start + _PACK_CHUNK] = lut[_pack_rgb(part)]
        return out


def _pack_rgb(flat: np.ndarray) -> np.ndarray:
    """``r << 16 | g << 8 | b`` as uint32, in chunks to keep temporaries small."""
    codes = np.empty(len(flat), dtype=np.uint32)
    step = _PACK_CHUNK
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


def _sorted_counts(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of ``codes`` (ascending) and how often each occurs, by sorting a copy.

    Measured on 12 M codes: numpy's sort takes 0.08 s where ``np.bincount`` over 2**24 bins
    takes 0.27 s and needs 134 MB for the counts plus a 96 MB int64 copy of the input.
    """
    ordered = np.sort(codes)
    starts = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
    starts = np.concatenate([np.zeros(1, dtype=starts.dtype), starts])
    counts = np.diff(np.append(starts, len(ordered))).astype(np.int64)
    return ordered[starts], counts


def histogram(flat: np.ndarray) -> _Histogram:
    """Distinct colours of ``flat`` (shape (N, 3) or (N, 4), uint8) and their counts."""
    if flat.shape[1] == 3:
        pixel_codes = _pack_rgb(flat)
        if len(pixel_codes) >= _BINCOUNT_MIN_PIXELS:
            codes, counts = _sorted_counts(pixel_codes)
            del pixel_codes
            return _Histogram(_unpack_rgb(codes), counts, codes, flat, None)
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

        tree = cKDTree(c.astype(np.float64))
        labels = np.empty(len(x), dtype=np.intp)
        sqdist = np.empty(len(x), dtype=np.float32)
        for start in range(0, len(x), _KDTREE_CHUNK):  # bounded float64 temporaries
            dist, idx = tree.query(x[start : start + _KDTREE_CHUNK], k=1, workers=-1)
            labels[start : start + len(idx)] = idx
            sqdist[start : start + len(idx)] = dist * dist
        return labels, sqdist
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


@dataclass(frozen=True, eq=False)
class _Bins:
    """Colours merged into bins of ``bits`` per channel (cut in RGB(A))."""

    coords: np.ndarray  # (m, c) bin coordinates, 0 .. 2**bits - 1
    totals: np.ndarray  # (m,) float64 pixel counts
    sums: np.ndarray  # (m, d) float64 count-weighted sums of the values carried
    bits: int

    def means(self) -> tuple[np.ndarray, np.ndarray]:
        """float32 mean values and float32 weights (pixel counts) of the bins."""
        means = (self.sums / self.totals[:, None]).astype(np.float32)
        return means, self.totals.astype(np.float32)


def _merge(
    coords: np.ndarray, shift: int, bits: int, weights: np.ndarray, columns: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Add up ``weights`` and each of ``columns`` over the rows whose ``coords >> shift``
    agree; returns the merged coordinates, totals and sums (one column per input column)."""
    c = coords.shape[1]
    code = np.zeros(len(coords), dtype=np.int64)
    for j in range(c):
        code <<= bits
        code |= coords[:, j] >> shift
    if bits * c > _DENSE_BIN_BITS:
        # e.g. RGBA at 7 bits: 2**28 dense bins would take 2 GB; number the used bins instead.
        # (Also faster than zeroing 2**21 bins four times for RGB at 7 bits.)
        keys, index = np.unique(code, return_inverse=True)
        index = index.ravel()
    else:
        keys, index = None, code
    size = int(index.max()) + 1 if len(index) else 0
    totals = np.bincount(index, weights=weights, minlength=size)
    occupied = np.flatnonzero(totals)
    sums = np.stack(
        [np.bincount(index, weights=col, minlength=size)[occupied] for col in columns], axis=1
    )
    bin_code = occupied if keys is None else keys[occupied]
    merged = np.empty((len(occupied), c), dtype=np.int64)
    for j in reversed(range(c)):
        merged[:, j] = bin_code & ((1 << bits) - 1)
        bin_code = bin_code >> bits
    return merged, totals[occupied], sums


def _bin(colors: np.ndarray, counts: np.ndarray, bits: int, values: np.ndarray | None) -> _Bins:
    """Bin the distinct colours at ``bits`` per channel, carrying ``values`` (or the colours)."""
    source = colors if values is None else values
    w = counts.astype(np.float64)
    columns = [w * source[:, j] for j in range(source.shape[1])]
    coords, totals, sums = _merge(colors, 8 - bits, bits, w, columns)
    return _Bins(coords, totals, sums, bits)


def _rebin(bins: _Bins, bits: int) -> _Bins:
    """The same bins at fewer ``bits``: merging bins gives the same means as binning anew."""
    columns = [bins.sums[:, j] for j in range(bins.sums.shape[1])]
    coords, totals, sums = _merge(bins.coords, bins.bits - bits, bits, bins.totals, columns)
    return _Bins(coords, totals, sums, bits)


def _coarsen(
    colors: np.ndarray, counts: np.ndarray, bits: int, values: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Merge colours into bins of ``bits`` per channel; each bin keeps its mean colour.

    Returns float32 bin colours and float32 bin weights (pixel counts). With ``values``
    (one row per colour, e.g. the colours in another colour space) the bins are still cut
    in RGB but carry the mean of ``values`` instead.
    """
    return _bin(colors, counts, bits, values).means()


def _levels(
    colors: np.ndarray, counts: np.ndarray, values: np.ndarray | None, k: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The histogram at the resolutions the fit runs on, coarsest first.

    Binned levels (7, 6, 5 bits per channel, each bin carrying the mean of its colours) are
    kept only when they hold more than ``k`` points and clearly fewer than the next finer
    level; binning stops at the first level of 6 bits or less with at most
    ``_INIT_MAX_POINTS`` points, where k-means++ can afford to run. The distinct colours
    themselves come last. Levels above ``_LEVEL_MAX_POINTS`` points are left out, except
    the coarsest. Points and weights are float32.
    """
    source = colors if values is None else values
    levels = [(source.astype(np.float32), counts.astype(np.float32))]
    finer = len(colors)
    bins: _Bins | None = None
    for bits in (7, 6, 5):
        if bits == 7 and len(colors) > _SKIP_7BIT_COLORS:
            continue  # a 7-bit level of so many colours would be too big to use
        bins = _bin(colors, counts, bits, values) if bins is None else _rebin(bins, bits)
        points, weights = bins.means()
        if len(points) <= k:
            break
        if len(points) >= _LEVEL_SHRINK * finer:
            continue
        levels.append((points, weights))
        finer = len(points)
        if bits <= 6 and len(points) <= _INIT_MAX_POINTS:
            break
    levels.reverse()
    coarsest, finer_levels = levels[0], levels[1:]
    return [coarsest, *(lv for lv in finer_levels if len(lv[0]) <= _LEVEL_MAX_POINTS)]


def _kmeans_plusplus(points: np.ndarray, weights: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Greedy weighted k-means++ seeding, as scikit-learn's ``kmeans_plusplus`` does it.

    Each new centre is the best of ``2 + ln k`` candidates drawn with probability
    proportional to weight x squared distance to the nearest centre so far. In float32
    numpy (sums in float64): 32 ms against scikit-learn's 60 ms at k = 64 on 25k points,
    146 ms against 239 ms at k = 256.
    """
    rng = np.random.RandomState(seed)
    n, dims = points.shape
    trials = 2 + int(np.log(k))
    xt = np.ascontiguousarray(points.T, dtype=np.float32)
    w64 = weights.astype(np.float64)
    w32 = weights.astype(np.float32)
    centers = np.empty((k, dims), dtype=np.float32)
    first = int(rng.choice(n, p=w64 / w64.sum()))
    centers[0] = points[first]
    closest = ((xt - xt[:, first, None]) ** 2).sum(axis=0)
    potential = float(np.dot(closest, w64))
    dist = np.empty((trials, n), dtype=np.float32)
    part = np.empty((trials, n), dtype=np.float32)
    for i in range(1, k):
        cumulative = np.cumsum(w64 * closest)
        draws = rng.uniform(size=trials) * potential
        ids = np.minimum(np.searchsorted(cumulative, draws), n - 1)
        np.subtract(xt[0], xt[0, ids][:, None], out=dist)
        dist *= dist
        for j in range(1, dims):
            np.subtract(xt[j], xt[j, ids][:, None], out=part)
            part *= part
            dist += part
        np.minimum(closest, dist, out=dist)
        potentials = dist @ w32
        best = int(np.argmin(potentials))
        potential = float(np.dot(dist[best], w64))
        closest = dist[best].copy()
        centers[i] = points[ids[best]]
    return centers


def _lloyd_threads() -> int:
    """Threads for :func:`_lloyd`: 2, or 1 where BLAS is limited to one (batch workers)."""
    from threadpoolctl import threadpool_info  # a scikit-learn dependency

    blas = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    return max(1, min(_LLOYD_MAX_THREADS, min(blas, default=1)))


def _assign_block(
    x: np.ndarray, neg2ct: np.ndarray, c_sq: np.ndarray, labels: np.ndarray, start: int
) -> None:
    """Nearest centre of the points in one block, by ``argmin`` (for 64 centres or more)."""
    block = x[start : start + _LLOYD_BLOCK]
    d = block @ neg2ct
    d += c_sq
    labels[start : start + len(block)] = np.argmin(d, axis=1)


def _assign_block_packed(
    xt: np.ndarray,
    x_sq: np.ndarray,
    neg2c: np.ndarray,
    c_sq: np.ndarray,
    labels: np.ndarray,
    start: int,
) -> None:
    """Nearest centre of the points in one block, for fewer than 64 centres.

    numpy's row-wise ``argmin`` costs about 20 ns per row whatever k; here the squared
    distances (made non-negative, whose float32 bit patterns order as integers) get the
    centre's index in their 8 lowest bits, and one vectorised minimum over the centres
    gives both: 2.4x faster at k = 16. Distances closer than 2**-15 relative count as tied.
    """
    stop = start + _LLOYD_PACKED_BLOCK
    d = neg2c @ xt[:, start:stop]  # (k, block)
    d += c_sq[:, None]
    d += x_sq[start:stop]
    np.maximum(d, 0.0, out=d)
    key = d.view(np.int32)
    key &= ~0xFF
    key |= np.arange(len(neg2c), dtype=np.int32)[:, None]
    labels[start : start + d.shape[1]] = np.minimum.reduce(key, axis=0) & 0xFF


def _lloyd(
    points: np.ndarray, weights: np.ndarray, centers: np.ndarray, max_iter: int, threads: int
) -> tuple[np.ndarray, float]:
    """Weighted Lloyd iterations from ``centers`` until no label changes or ``max_iter``.

    Returns the centres (float32) and the weighted squared error of the last assignment.
    Each point goes to its nearest centre by float32 ``|c|^2 - 2 x.c`` (as scikit-learn's
    ``KMeans`` does; below 64 centres see :func:`_assign_block_packed`), in fixed blocks of
    ``_LLOYD_BLOCK`` points that ``threads`` threads share (numpy releases the GIL); the
    centres are float64 weighted means from ``np.bincount``. So the result does not depend
    on the number of threads, unlike scikit-learn's Lloyd step, whose per-thread partial
    sums are added in the order the threads finish. Measured per iteration on 96k points at
    k = 256: 17.5 ms on 2 threads (29.5 ms on one) against 47 ms for scikit-learn's on one.
    It also spares ``compress`` the 1.2-1.8 s import of ``sklearn.cluster``. A centre left
    without points moves to the point with the largest weighted error.
    """
    from concurrent.futures import ThreadPoolExecutor

    x = np.ascontiguousarray(points, dtype=np.float32)
    w = weights.astype(np.float64)
    weighted = [w * x[:, j] for j in range(x.shape[1])]
    n, k = len(x), len(centers)
    c = centers.astype(np.float64)
    labels = np.zeros(n, dtype=np.intp)
    previous: np.ndarray | None = None
    starts = range(0, n, _LLOYD_PACKED_BLOCK if k < _LLOYD_ARGMIN_MIN_K else _LLOYD_BLOCK)
    packed = k < _LLOYD_ARGMIN_MIN_K
    if packed:
        xt = np.ascontiguousarray(x.T)
        x_sq = np.einsum("ij,ij->i", x, x)
    threaded = threads > 1 and n * k >= _LLOYD_THREADED_MIN_WORK
    pool = ThreadPoolExecutor(threads) if threaded else None
    try:
        for _ in range(max_iter):
            c32 = c.astype(np.float32)
            c_sq = np.einsum("ij,ij->i", c32, c32)
            if packed:
                assign = functools.partial(_assign_block_packed, xt, x_sq, -2.0 * c32, c_sq, labels)
            else:
                neg2ct = np.ascontiguousarray(-2.0 * c32.T)
                assign = functools.partial(_assign_block, x, neg2ct, c_sq, labels)
            for _done in map(assign, starts) if pool is None else pool.map(assign, starts):
                pass
            if previous is not None and np.array_equal(labels, previous):
                break
            previous = labels.copy()
            totals = np.bincount(labels, weights=w, minlength=k)
            used = totals > 0
            for j, col in enumerate(weighted):
                c[used, j] = np.bincount(labels, weights=col, minlength=k)[used] / totals[used]
            if not used.all():
                diff = x - c[labels].astype(np.float32)
                cost = np.einsum("ij,ij->i", diff, diff) * w
                far = np.argsort(-cost, kind="stable")[: int((~used).sum())]
                c[np.flatnonzero(~used)[: len(far)]] = x[far]
    finally:
        if pool is not None:
            pool.shutdown()
    diff = x - c[labels].astype(np.float32)
    error = float(np.dot(np.einsum("ij,ij->i", diff, diff), w))
    return c.astype(np.float32), error


def _kmeans(
    colors: np.ndarray,
    counts: np.ndarray,
    k: int,
    *,
    seed: int,
    max_iter: int,
    refine_iter: int,
    step: ProgressCallback,
    values: np.ndarray | None = None,
) -> np.ndarray:
    """Weighted k-means centres of a colour histogram, coarse to fine.

    Greedy k-means++ (:func:`_kmeans_plusplus`, weighted by pixel counts) seeds the centres
    on the coarsest level of :func:`_levels`; exact weighted Lloyd iterations (:func:`_lloyd`)
    then run on each level in turn: ``max_iter`` on the first, ``max_iter // 2`` on the
    other binned ones and ``refine_iter`` on the distinct colours. Up to k = 16 three seeds
    are tried on the first level and the lowest error goes on (measured on the 11 benchmark
    photos at k = 16: mean error 0.6 % lower than one seed, at a few hundredths of a
    second). ``values`` are the colours in the clustering space (default: the colours
    themselves).

    Measured against ``MiniBatchKMeans`` on the same levels: its mini-batch steps either
    moved light centres away at random (``reassignment_ratio``; 5-8 % higher error than
    this at k = 64 and 256) or, without that, changed the error by under 0.2 % for more
    time, so the fit is k-means++ and Lloyd steps. Both are reproducible whatever the
    number of threads (see :func:`_lloyd`).
    """
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    levels = _levels(colors, counts, values, k)
    threads = _lloyd_threads()
    with threadpool_limits(limits=1):
        points, weights = levels[0]
        if len(points) <= k:
            return points
        best: tuple[np.ndarray, float] | None = None
        starts = _COARSE_STARTS if k <= _COARSE_STARTS_MAX_K else 1
        # every start runs a third of the iterations; the best one goes on to max_iter
        trial_iter = max_iter if starts == 1 else max(1, max_iter // 3)
        for run_seed in _restart_seeds(seed, starts):
            init = _kmeans_plusplus(points, weights, k, run_seed)
            fitted = _lloyd(points, weights, init, trial_iter, threads)
            if best is None or fitted[1] < best[1]:
                best = fitted
        assert best is not None
        centers = best[0]
        if trial_iter < max_iter:
            centers = _lloyd(points, weights, centers, max_iter - trial_iter, threads)[0]
        last = len(levels) - 1
        for i, (points, weights) in enumerate(levels[1:], start=1):
            full = i == last and len(points) == len(colors)
            iters = refine_iter if full else max(max_iter // 2, 1)
            if iters <= 0:
                continue
            if i == last:
                step("refine")
            centers = _lloyd(points, weights, centers, iters, threads)[0]
    return centers


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
            return palette, labels, np.rint(sqdist)  # integers (see nearest)
        palette = palette[used]
        need = k - len(palette)
        cost = sqdist * weights
        order = np.argsort(-cost, kind="stable")[:need]
        order = order[cost[order] > 0]
        palette = np.concatenate([palette, points[order].astype(np.uint8)])


def _space_values(colors: np.ndarray, space: str) -> np.ndarray:
    """8-bit colours (n, 3|4) in the clustering space, as float64.

    Alpha, when present, is scaled to the range of the space's lightness (0..1 for OKLab,
    0..100 for CIELAB) so that it weighs like a colour channel, as it does in RGB.
    """
    out = np.empty(colors.shape, dtype=np.float64)
    out[:, :3] = to_space(colors[:, :3], space)
    if colors.shape[1] == 4:
        out[:, 3] = colors[:, 3] * _ALPHA_SCALE[space]
    return out


def _space_to_colors(values: np.ndarray, space: str) -> np.ndarray:
    """Points of the clustering space back to 8-bit colours (the one conversion back)."""
    out = np.empty(values.shape, dtype=np.float64)
    out[:, :3] = from_space(values[:, :3].astype(np.float64), space)
    if values.shape[1] == 4:
        out[:, 3] = values[:, 3] / _ALPHA_SCALE[space]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def nearest_in_space(values: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre of every point by exact float64 Euclidean distance (a KD-tree).

    For points in a perceptual space, where :func:`nearest`'s integer-exact float32 trick
    does not apply. A point equal to a centre is at distance exactly 0 from it.
    """
    from scipy.spatial import cKDTree  # comes with scikit-learn

    dist, idx = cKDTree(np.asarray(centers, dtype=np.float64)).query(
        np.asarray(values, dtype=np.float64), k=1, workers=-1
    )
    return idx.astype(np.intp), dist * dist


def _exact_palette_space(
    colors: np.ndarray,
    values: np.ndarray,
    weights: np.ndarray,
    palette: np.ndarray,
    k: int,
    space: str,
    locked: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_exact_palette` with distances measured in ``space``, and locked colours.

    ``palette`` holds the 8-bit free centres. The result is exactly ``k`` distinct 8-bit
    colours, ``locked`` first (always kept, even when no colour is nearest to one), then the
    free ones, each the nearest (in ``space``) of at least one colour; and the label of
    every colour.
    """
    if locked is None:
        locked = palette[:0]
    n_lock = len(locked)
    free = np.unique(palette, axis=0)
    if n_lock:
        free = free[~_isin_rows(free, locked)]
    while True:
        pal = np.concatenate([locked, free])
        labels, sqdist = nearest_in_space(values, _space_values(pal, space))
        used = np.bincount(labels, minlength=len(pal)) > 0
        if len(pal) == k and used[n_lock:].all():
            return pal, labels
        free = free[used[n_lock:]]
        need = k - n_lock - len(free)
        cost = sqdist * weights
        order = np.argsort(-cost, kind="stable")[:need]
        order = order[cost[order] > 0]
        free = np.concatenate([free, colors[order]])


def _isin_rows(rows: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Mask of the rows of ``rows`` (uint8, (n, c)) that appear in ``table`` (uint8, (m, c))."""
    if len(table) == 0:
        return np.zeros(len(rows), dtype=bool)
    weights = 256 ** np.arange(rows.shape[1], dtype=np.int64)
    return np.isin(rows.astype(np.int64) @ weights, table.astype(np.int64) @ weights)


def _lock_centers(
    colors: np.ndarray,
    counts: np.ndarray,
    values: np.ndarray,
    centers: np.ndarray,
    locked_values: np.ndarray,
    *,
    max_iter: int,
) -> np.ndarray:
    """Swap in locked centres and re-run weighted Lloyd iterations with them held fixed.

    Each locked centre replaces the nearest remaining fitted centre; the free centres then
    move to the weighted mean of the colours nearest to them (on the full histogram, or a
    7- or 6-bit one when it is large). Returns the free centres.
    """
    free = centers.astype(np.float64)
    for lv in locked_values:
        if len(free) == 0:
            break
        drop = int(np.argmin(((free - lv) ** 2).sum(axis=1)))
        free = np.delete(free, drop, axis=0)
    if len(free) == 0:
        return free
    points, weights = values, counts.astype(np.float64)
    for bits in (7, 6):
        if len(points) <= _LEVEL_MAX_POINTS:
            break
        points, weights = _coarsen(colors, counts, bits, values)
    points = points.astype(np.float64)
    weights = weights.astype(np.float64)
    previous = None
    for _ in range(max(max_iter, 1)):
        labels, _dist = nearest_in_space(points, np.concatenate([free, locked_values]))
        if previous is not None and np.array_equal(labels, previous):
            break
        previous = labels
        sums, totals = _weighted_means(points, weights, labels, len(free) + len(locked_values))
        moved = totals[: len(free)] > 0
        free[moved] = sums[: len(free)][moved] / totals[: len(free)][moved, None]
    return free


def _locked_colors(keep: np.ndarray | None, channels: int, k: int) -> np.ndarray | None:
    """The distinct locked colours in order, laid out in ``channels`` (opaque alpha)."""
    if keep is None:
        return None
    rgb = np.asarray(keep)
    if rgb.size == 0:
        return None
    if rgb.dtype != np.uint8 or rgb.ndim != 2 or rgb.shape[1] != 3:
        raise ValueError("keep must be a uint8 array of RGB colours, shape (n, 3).")
    _, first = np.unique(rgb, axis=0, return_index=True)
    rgb = rgb[np.sort(first)]
    if len(rgb) > k:
        raise ValueError(f"{len(rgb)} colours to keep do not fit in a palette of {k}.")
    out = np.full((len(rgb), channels), 255, dtype=np.uint8)
    out[:, :3] = rgb
    return out


def _fit_locked(
    hist: _Histogram,
    locked: np.ndarray,
    k: int,
    *,
    space: str,
    seed: int,
    max_iter: int,
    refine_iter: int,
    step: ProgressCallback,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """k-means with some centres locked: fit ``k`` centres, swap the locked ones in for
    their nearest fitted ones, re-run Lloyd with them fixed, then make the palette exact.
    """
    values = _space_values(hist.colors, space)
    weights = hist.counts.astype(np.float64)
    step("fit")
    centers = _kmeans(
        hist.colors,
        hist.counts,
        k,
        seed=seed,
        max_iter=max_iter,
        refine_iter=0,
        step=step,
        values=values,
    )
    step("refine")
    free = _lock_centers(
        hist.colors,
        hist.counts,
        values,
        centers,
        _space_values(locked, space),
        max_iter=max(refine_iter, 1),
    )
    step("assign")
    palette, labels = _exact_palette_space(
        hist.colors, values, weights, _space_to_colors(free, space), k, space, locked
    )
    diff = hist.colors.astype(np.int64) - palette[labels].astype(np.int64)
    sq_total = float(np.dot(np.einsum("ij,ij->i", diff, diff), hist.counts))
    return palette, labels, sq_total, _objective(values, weights, palette, labels, space)


AUTO_RESTARTS_MAX_K = 8
"""``quantize(restarts=None)`` makes several starts up to this k."""


def auto_restarts(k: int) -> int:
    """Default number of k-means++ starts for ``k`` colours: 3 for k <= 8, else 1.

    Measured on the seven bundled photos (benchmarks/RESULTS_COLOUR.md): 4 starts gain
    0.08 dB PSNR on average at k = 8 (up to 0.24 dB), 0.06 dB at k = 16, for one fit
    each; so the extra starts are spent only where palettes are smallest.
    """
    return 3 if k <= AUTO_RESTARTS_MAX_K else 1


def _best_start(fit: Callable[[int], tuple], seed: int, restarts: int) -> tuple:
    """Run ``fit(seed)`` for each start's seed; keep the result with the lowest score.

    ``fit`` returns ``(palette, labels, squared_error, score)``; ties keep the earlier start.
    """
    best = None
    for run_seed in _restart_seeds(seed, restarts):
        fitted = fit(run_seed)
        if best is None or fitted[3] < best[3]:
            best = fitted
    assert best is not None
    return best


def _restart_seeds(seed: int, restarts: int) -> list[int]:
    """``seed`` itself, then ``restarts - 1`` more seeds derived from it."""
    extra = np.random.SeedSequence(seed).generate_state(max(restarts - 1, 0)).tolist()
    return [seed, *(int(x) for x in extra)]


def _objective(
    values: np.ndarray, weights: np.ndarray, palette: np.ndarray, labels: np.ndarray, space: str
) -> float:
    """Weighted squared error of the colours against their palette colour, in ``space``."""
    diff = values - _space_values(palette, space)[labels]
    return float(np.dot(np.einsum("ij,ij->i", diff, diff), weights))


def _fit_free(
    hist: _Histogram,
    k_eff: int,
    *,
    space: str,
    seed: int,
    max_iter: int,
    refine_iter: int,
    step: ProgressCallback,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """One k-means run: fit, refine, exact palette. Returns the palette, the label of each
    distinct colour, the squared error in RGB and the error in the clustering space.
    """
    values = None if space == "rgb" else _space_values(hist.colors, space)
    points = hist.colors.astype(np.float32) if values is None else values.astype(np.float32)
    weights = hist.counts.astype(np.float64)
    step("fit")
    centers = _kmeans(
        hist.colors,
        hist.counts,
        k_eff,
        seed=seed,
        max_iter=max_iter,
        refine_iter=refine_iter,
        step=step,
        values=values,
    )
    step("assign")
    if values is None:
        palette_w, labels, sqdist = _exact_palette(points, weights, centers, k_eff)
        sq_total = float(np.dot(sqdist.astype(np.float64), weights))
    else:
        palette_w, labels = _exact_palette_space(
            hist.colors, values, weights, _space_to_colors(centers, space), k_eff, space
        )
        diff = hist.colors.astype(np.int64) - palette_w[labels].astype(np.int64)
        sq_total = float(np.dot(np.einsum("ij,ij->i", diff, diff), hist.counts))
    objective = (
        sq_total if values is None else _objective(values, weights, palette_w, labels, space)
    )
    return palette_w, labels, sq_total, objective


def _order(palette: np.ndarray) -> np.ndarray:
    """A stable palette order: by alpha, then by luma (helps PNG filters and compression)."""
    p = palette.astype(np.int64)
    luma = 299 * p[:, 0] + 587 * p[:, 1] + 114 * p[:, 2]
    alpha = p[:, 3] if p.shape[1] == 4 else np.zeros(len(p), dtype=np.int64)
    code = (p[:, 0] << 16) | (p[:, 1] << 8) | p[:, 2]
    return np.lexsort((code, luma, alpha))


def _check(pixels: np.ndarray, k: int, seed: int, max_iter: int) -> None:
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


@dataclass(frozen=True, eq=False)
class PreparedImage:
    """An image's colour histogram, ready for :func:`quantize` at any k (see :func:`prepare`).

    ``visible`` masks the pixels that are not fully transparent (None when all are visible),
    ``work`` holds those pixels in the channels that are clustered (RGB when every visible
    pixel is opaque), and ``hist`` is their histogram (None when no pixel is visible).
    """

    pixels: np.ndarray
    visible: np.ndarray | None
    work: np.ndarray
    hist: _Histogram | None


def prepare(pixels: np.ndarray) -> PreparedImage:
    """Count an image's colours once, for several :func:`quantize` calls on it.

    ``pixels`` follows :func:`quantize`'s contract and must not change afterwards.
    """
    _check(pixels, 1, 0, 1)
    channels = pixels.shape[-1]
    flat = pixels.reshape(-1, channels)
    visible: np.ndarray | None = None
    work = flat
    if channels == 4:
        transparent = flat[:, 3] == 0
        if transparent.any():
            visible = ~transparent
            work = flat[visible]
        if work.size and bool((work[:, 3] == 255).all()):
            work = work[:, :3]  # only opaque visible pixels: cluster RGB alone
    hist = histogram(work) if len(work) else None
    return PreparedImage(pixels=pixels, visible=visible, work=work, hist=hist)


def quantize(
    pixels: np.ndarray,
    k: int,
    *,
    seed: int = 0,
    max_iter: int = DEFAULT_MAX_ITER,
    refine_iter: int = DEFAULT_REFINE_ITER,
    space: str = "rgb",
    keep: np.ndarray | None = None,
    restarts: int | None = None,
    prepared: PreparedImage | None = None,
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
        Maximum Lloyd iterations on the coarsest (binned) level of the colour histogram,
        where k-means++ seeds the centres; finer binned levels get half as many.
    refine_iter : int, optional
        Maximum exact Lloyd iterations on the distinct colours themselves, last (0 to
        skip). Skipped when the image has more than 150,000 distinct colours.
    space : {"rgb", "oklab", "lab"}, optional
        The colour space k-means clusters in. The image's distinct colours are converted
        to it (OKLab with the sRGB curve removed first; CIELAB relative to D65), fitted and
        refined there, and the centres are converted back to 8-bit sRGB once. Every colour
        then goes to its nearest palette colour in that space. ``"rgb"`` clusters the 8-bit
        values as they are. The reported ``mse`` is always measured in sRGB.
    keep : ndarray of uint8, shape (n, 3), optional
        Colours locked into the palette, exactly (brand colours, pure white ...). They count
        towards ``k``; the other ``k - n`` colours are fitted around them. A locked colour
        stays in the palette even when no pixel is nearest to it (its count is then 0).
    restarts : int, optional
        Independent k-means++ starts (the first with ``seed``, the others with seeds derived
        from it); the run whose final palette has the lowest error in the clustering space
        is kept. None (the default) means ``auto_restarts(k)``: 3 starts for k <= 8, where
        one start can land in a poor local minimum and a fit is cheap, else 1.
    prepared : PreparedImage, optional
        The result of :func:`prepare` for these same ``pixels``: quantizing one image at
        several k (as ``compare`` does) then counts its colours only once.
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
    _check(pixels, k, seed, max_iter)
    if not isinstance(refine_iter, (int, np.integer)) or refine_iter < 0:
        raise ValueError(f"refine_iter must be 0 or more; got {refine_iter!r}.")
    if space not in SPACES:
        raise ValueError(f"space must be one of {', '.join(SPACES)}; got {space!r}.")
    if restarts is None:
        restarts = auto_restarts(k)
    if not isinstance(restarts, (int, np.integer)) or not 1 <= restarts <= 100:
        raise ValueError(f"restarts must be an integer from 1 to 100; got {restarts!r}.")
    step = progress or (lambda _stage: None)
    channels = pixels.shape[-1]
    flat = pixels.reshape(-1, channels)
    n_pixels = len(flat)

    step("histogram")
    if prepared is None:
        prepared = prepare(pixels)
    elif prepared.pixels is not pixels:
        raise ValueError("prepared must come from prepare() on the same pixels array.")
    visible, work, hist = prepared.visible, prepared.work, prepared.hist
    n_colors = len(hist.colors) if hist is not None else 0
    has_transparent = visible is not None
    k_eff = min(k, MAX_COLORS - 1) if has_transparent else k
    locked = _locked_colors(keep, work.shape[1] if len(work) else channels, k_eff)
    is_locked = (
        _isin_rows(hist.colors, locked)
        if hist is not None and locked is not None
        else np.zeros(n_colors, dtype=bool)
    )
    n_lock = 0 if locked is None else len(locked)

    fit_options: dict[str, Any] = {
        "space": space,
        "max_iter": max_iter,
        "refine_iter": refine_iter,
        "step": step,
    }
    if hist is None:
        palette_w = np.zeros((0, channels), dtype=np.uint8) if locked is None else locked
        labels = np.zeros(0, dtype=np.intp)
        sq_total = 0.0
        lossless = True
    elif locked is not None and n_colors - int(is_locked.sum()) <= k_eff - n_lock:
        # every colour fits beside the locked ones: keep them all exactly
        palette_w = np.concatenate([locked, hist.colors[~is_locked]])
        labels = nearest_in_space(hist.colors.astype(np.float64), palette_w.astype(np.float64))[0]
        sq_total = 0.0
        lossless = True
    elif locked is not None:
        palette_w, labels, sq_total, _score = _best_start(
            lambda run_seed: _fit_locked(hist, locked, k_eff, seed=run_seed, **fit_options),
            int(seed),
            restarts,
        )
        lossless = False
    elif n_colors <= k_eff:
        palette_w = hist.colors
        labels = np.arange(n_colors)
        sq_total = 0.0
        lossless = True
    else:
        palette_w, labels, sq_total, _score = _best_start(
            lambda run_seed: _fit_free(hist, k_eff, seed=run_seed, **fit_options),
            int(seed),
            restarts,
        )
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
    counts = np.zeros(len(palette), dtype=np.int64)
    if hist is not None:  # from the colour counts: cheaper than counting every pixel again
        counts += np.bincount(per_color, weights=hist.counts, minlength=len(palette)).astype(
            np.int64
        )
    if has_transparent:
        counts[0] += n_pixels - len(work)
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
