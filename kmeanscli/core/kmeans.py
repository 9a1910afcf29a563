"""Weighted k-means on a colour histogram: one seeding, one search, one Lloyd step, two engines.

- :class:`NearestSearch` (and :func:`nearest`) finds every point's nearest centre: float32
  ``|c|^2 - 2 x.c`` as one matrix product per fixed block of points, over threads (exact
  for 8-bit colours: integers, so the arithmetic is exact), and a float64 KD-tree for the
  exact search among points of a perceptual space.
- :func:`kmeans_plusplus` is greedy weighted k-means++ (scikit-learn's, the same centres).
- :func:`lloyd` runs weighted Lloyd iterations; centres in ``fixed`` never move (locked
  colours), empty ones move to the worst-served point.
- :func:`fit` is the one fit behind the engine seam (:data:`ENGINES`):

  ``lloyd``
      k-means++ on the coarsest level of the histogram, then exact weighted Lloyd
      iterations on each level, coarse to fine (``max_iter`` on the first, half as many on
      the other binned levels, ``refine_iter`` on the distinct colours). Up to k = 16,
      three seeds race on the coarse level and the best goes on.
  ``minibatch``
      The same k-means++ start, then scikit-learn's ``MiniBatchKMeans`` on the finest level
      with ``sample_weight`` (``reassignment_ratio=0``: its random reassignment moved the
      centres of light, rare colours away and raised the error by 5-8 % at k = 64 and 256),
      on one thread so the result does not depend on the machine. Its steps cannot hold a
      centre fixed: locked colours are seeds and are put back after the fit.

Every path is reproducible whatever the number of threads: blocks are fixed, centres are
float64 means from ``np.bincount``, and nothing adds partial sums in the order threads finish.
Pure numpy (SciPy's KD-tree; scikit-learn only for ``minibatch``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext

import numpy as np

from ..constants import DEFAULT_BATCH_SIZE, DEFAULT_MAX_ITER, DEFAULT_REFINE_ITER, ENGINES
from .histogram import Level

__all__ = [
    "ENGINES",
    "NearestSearch",
    "fit",
    "kmeans_plusplus",
    "lloyd",
    "nearest",
    "restart_seeds",
]

_THREADED_MIN_WORK = 1 << 20  # points x centres below which the search keeps to one thread
_EXACT_THREADED_MIN_WORK = 1 << 24  # ... the exact one (called once or twice: its set-up
# of threads and BLAS limits, ~2 ms, outweighs the gain below 65k colours x 256 centres)
_KDTREE_CHUNK = 1 << 16  # points per KD-tree query (points of a perceptual space; a task)
_DRAW_BLOCK = 128  # points per block of k-means++'s draws
_MAX_THREADS = 2  # threads sharing the Lloyd search's blocks (the result does not depend on it)
_COARSE_STARTS = 3  # k-means++ starts racing on the coarsest level ...
_COARSE_STARTS_MAX_K = 16  # ... up to this k (where a start costs little)
_SETTLED = 1e-3  # Lloyd stops when at most this share of the weight changed centre. Against
# stopping only when no label changes, on 8 photos, an RGBA photo and a test card (geometric
# means): k = 16 0.88x the time for 1.0003x the error, k = 64 0.93x for 1.0011x, k = 256
# 0.91x for 1.0009x (worst image 1.004x)

Step = Callable[[str], None]


def _kdtree(points: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The nearest centre by scipy's KD-tree, in fixed chunks over up to two threads.

    The threads are ours, not the tree's own ``workers``: scipy's threads write through raw
    pointers into arrays that the calling thread frees when a KeyboardInterrupt (Ctrl-C)
    stops its wait, which crashed the process (SIGSEGV); ours hold their arrays until done.
    """
    from scipy.spatial import cKDTree

    tree = cKDTree(np.asarray(centers, dtype=np.float64))
    labels = np.empty(len(points), dtype=np.intp)
    sqdist = np.empty(len(points), dtype=np.float64)

    def query(start: int) -> None:  # bounded float64 temporaries
        part = np.asarray(points[start : start + _KDTREE_CHUNK], dtype=np.float64)
        dist, idx = tree.query(part, k=1)
        labels[start : start + len(idx)] = idx
        sqdist[start : start + len(idx)] = dist * dist

    starts = range(0, len(points), _KDTREE_CHUNK)
    threads = min(_MAX_THREADS, os.cpu_count() or 1, len(starts))
    if threads <= 1:
        for start in starts:
            query(start)
    else:
        with ThreadPoolExecutor(threads) as pool:
            for _ in pool.map(query, starts):
                pass
    return labels, sqdist


def _block_size(k: int) -> int:
    """Points per block: 2**19 distances (2 MB), from 512 to 4096 points (enough blocks
    for two threads to share evenly on the coarsest levels)."""
    return min(4096, max(512, (1 << 19) // max(k, 1)))


class NearestSearch:
    """The one nearest-centre search, its points prepared once for many sets of centres.

    Both searches compute ``|c|^2 - 2 x.c`` in float32 as one matrix product of the points
    with a column of ones appended and the centres as ``(-2 c, |c|^2)`` (a third faster than
    adding ``|c|^2`` afterwards, and as fast below 64 centres as packing the index into the
    distance), then take the first minimum; fixed blocks of points are shared by ``threads``
    threads (BLAS held to one), so the labels never depend on the thread count.

    :meth:`exact` gives the truly nearest centre and the squared distance: for 8-bit colours
    (both arrays uint8) the float32 product is exact, since every intermediate is an integer
    below 2**24 (measured 2-3x faster than SciPy's KD-tree on 2 threads, 0.1 M and 1.8 M
    colours against 256 centres); for points of a perceptual space a float64 KD-tree.
    :meth:`labels` is the Lloyd steps' search on float centres (float32, as scikit-learn's
    ``KMeans``). Use as a context manager (it may hold a thread pool).
    """

    def __init__(self, points: np.ndarray, *, threads: int | None = 1) -> None:
        self.points = points
        self.threads = threads  # None: search_threads(), asked when a search is big enough
        self.x = np.ascontiguousarray(points, dtype=np.float32)
        self._xa: np.ndarray | None = None
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> NearestSearch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the thread pool, if one was started."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def exact(self, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels (intp) and float64 squared distances to the truly nearest centres."""
        integer = self.points.dtype.kind in "ui" and centers.dtype.kind in "ui"
        if not integer:
            return _kdtree(self.points, centers)
        sqdist = np.empty(len(self.x), dtype=np.float32)
        pool = self._pool_for(len(centers), _EXACT_THREADED_MIN_WORK)
        with _blas_limit(1 if pool is None else int(self.threads or 1)):
            labels = self._search(centers, sqdist, pool)
        return labels, sqdist.astype(np.float64)

    def labels(self, centers: np.ndarray) -> np.ndarray:
        """Labels of the nearest centres by float32 distances, for the Lloyd steps."""
        return self._search(centers, None, self._pool_for(len(centers), _THREADED_MIN_WORK))

    def _search(
        self, centers: np.ndarray, sqdist: np.ndarray | None, pool: ThreadPoolExecutor | None
    ) -> np.ndarray:
        c = np.asarray(centers, dtype=np.float32)
        k = len(c)
        if self._xa is None:
            self._xa = np.ones((len(self.x), self.x.shape[1] + 1), dtype=np.float32)
            self._xa[:, :-1] = self.x
        xa = self._xa
        ca = np.empty((c.shape[1] + 1, k), dtype=np.float32)
        ca[:-1] = -2.0 * c.T
        ca[-1] = np.einsum("ij,ij->i", c, c)
        out = np.empty(len(xa), dtype=np.intp)
        size = _block_size(k)

        def block(start: int) -> None:
            d = xa[start : start + size] @ ca
            lab = np.argmin(d, axis=1)
            out[start : start + len(d)] = lab
            if sqdist is not None:
                xb = self.x[start : start + size]
                best = d[np.arange(len(d)), lab] + np.einsum("ij,ij->i", xb, xb)
                sqdist[start : start + len(d)] = np.maximum(best, 0.0)

        starts = range(0, len(xa), size)
        for _ in map(block, starts) if pool is None else pool.map(block, starts):
            pass
        return out

    def _pool_for(self, k: int, min_work: int) -> ThreadPoolExecutor | None:
        """The thread pool for a search against ``k`` centres, or None for one thread."""
        if len(self.x) * k < min_work:
            return None
        if self.threads is None:
            self.threads = search_threads()
        if self.threads <= 1:
            return None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads)
        return self._pool


def nearest(points: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The nearest centre of every point, and the squared distance to it, exactly.

    Parameters
    ----------
    points : ndarray, shape (n, d)
    centers : ndarray, shape (k, d)
        Both uint8 (8-bit colours) or float (values of a perceptual space); see
        :meth:`NearestSearch.exact`.

    Returns
    -------
    labels : ndarray of intp, shape (n,)
    sqdist : ndarray of float64, shape (n,)
        Integers for 8-bit colours.
    """
    return NearestSearch(points).exact(centers)


def _draw(mass: np.ndarray, draws: np.ndarray, n: int) -> np.ndarray:
    """``np.searchsorted(np.cumsum(mass), draws)`` (clipped to ``n - 1``) without the full
    running sum: sums of blocks of ``_DRAW_BLOCK``, their running sum, then running sums
    inside only the blocks drawn. ``mass`` is zero-padded to whole blocks. The running sum of
    every point was a third of k-means++'s time (a sequential pass of 47 us on 16k points
    per centre)."""
    blocks = mass.reshape(-1, _DRAW_BLOCK)
    sums = blocks.sum(axis=1)
    ends = np.cumsum(sums)
    b = np.minimum(np.searchsorted(ends, draws), len(ends) - 1)
    local = np.cumsum(blocks[b], axis=1)
    local += (ends[b] - sums[b])[:, None]
    inside = np.count_nonzero(local < draws[:, None], axis=1)
    return np.minimum(b * _DRAW_BLOCK + inside, n - 1)


def kmeans_plusplus(points: np.ndarray, weights: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Greedy weighted k-means++ seeding, as scikit-learn's ``kmeans_plusplus`` does it.

    Each new centre is the best of ``2 + ln k`` candidates drawn with probability
    proportional to weight x squared distance to the nearest centre so far. In float32
    numpy (sums in float64; the draws found block by block, :func:`_draw`): about 29 ms on
    16k points at k = 256, one thread (scikit-learn's: 60 ms at k = 64 on 25k points).
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
    mass = np.zeros(-(-n // _DRAW_BLOCK) * _DRAW_BLOCK, dtype=np.float64)
    for i in range(1, k):
        np.multiply(w64, closest, out=mass[:n])
        ids = _draw(mass, rng.uniform(size=trials) * potential, n)
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


def lloyd(
    points: np.ndarray,
    weights: np.ndarray,
    centers: np.ndarray,
    max_iter: int,
    *,
    fixed: np.ndarray | None = None,
    threads: int = 1,
) -> tuple[np.ndarray, float]:
    """Weighted Lloyd iterations from ``centers`` until the points that change centre in a
    step weigh at most 0.1 % of the total weight (on under 1,000 pixels: until none
    changes), or ``max_iter``.

    Each point goes to its nearest centre by float32 ``|c|^2 - 2 x.c`` (as scikit-learn's
    ``KMeans`` does) in fixed blocks that ``threads`` threads share; the centres are float64
    weighted means from ``np.bincount``, so the result does not depend on the number of
    threads. Measured per search on 113k colours at k = 256: 7.6 ms on one thread (scikit-
    learn's Lloyd: 47 ms per iteration on 96k). Centres where ``fixed`` is True stay; a
    free centre left without points moves to the point with the largest weighted error.

    Returns the centres (float32) and the weighted squared error of the last assignment.
    """
    k = len(centers)
    fixed = np.zeros(k, dtype=bool) if fixed is None else fixed
    w = weights.astype(np.float64)
    settled = _SETTLED * float(w.sum())
    c = centers.astype(np.float64)
    previous: np.ndarray | None = None
    big = len(points) * k >= _THREADED_MIN_WORK  # else the search keeps to one thread
    with NearestSearch(points, threads=threads) as search, _blas_limit(threads if big else 1):
        x = search.x
        weighted = [w * x[:, j] for j in range(x.shape[1])]
        labels = np.zeros(len(x), dtype=np.intp)
        for _ in range(max_iter):
            labels = search.labels(c)
            if previous is not None and float(w[labels != previous].sum()) <= settled:
                break
            previous = labels
            totals = np.bincount(labels, weights=w, minlength=k)
            move = (totals > 0) & ~fixed
            for j, col in enumerate(weighted):
                c[move, j] = np.bincount(labels, weights=col, minlength=k)[move] / totals[move]
            empty = np.flatnonzero((totals == 0) & ~fixed)
            if len(empty):
                diff = x - c[labels].astype(np.float32)
                cost = np.einsum("ij,ij->i", diff, diff) * w
                far = np.argsort(-cost, kind="stable")[: len(empty)]
                c[empty[: len(far)]] = x[far]
    diff = x - c[labels].astype(np.float32)
    return c.astype(np.float32), float(np.dot(np.einsum("ij,ij->i", diff, diff), w))


def restart_seeds(seed: int, restarts: int) -> list[int]:
    """``seed`` itself, then ``restarts - 1`` more seeds derived from it."""
    extra = np.random.SeedSequence(seed).generate_state(max(restarts - 1, 0)).tolist()
    return [seed, *(int(x) for x in extra)]


def _blas_limit(threads: int) -> AbstractContextManager[object]:
    """BLAS held to one thread while ``threads`` threads share the search's blocks."""
    if threads <= 1:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def search_threads() -> int:
    """Threads for the nearest-centre searches: 2, or 1 where BLAS is limited to one (batch
    workers)."""
    from threadpoolctl import threadpool_info

    blas = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    return max(1, min(_MAX_THREADS, min(blas, default=1)))


def _lock(centers: np.ndarray, locked: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Each locked value replaces the nearest centre not yet locked; returns the centres and
    the mask of the locked ones."""
    centers = centers.astype(np.float32, copy=True)
    fixed = np.zeros(len(centers), dtype=bool)
    for value in () if locked is None else locked:
        free = np.flatnonzero(~fixed)
        if len(free) == 0:
            break
        i = free[int(np.argmin(((centers[free] - value) ** 2).sum(axis=1)))]
        centers[i] = value
        fixed[i] = True
    return centers, fixed


def _seed(
    level: Level, k: int, seed: int, locked: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    return _lock(kmeans_plusplus(level[0], level[1], k, seed), locked)


def _fit_lloyd(
    found: list[Level],
    k: int,
    *,
    seed: int,
    max_iter: int,
    refine_iter: int,
    locked: np.ndarray | None,
    n_colors: int,
    step: Step,
) -> np.ndarray:
    from threadpoolctl import threadpool_limits

    threads = search_threads()
    with threadpool_limits(limits=1):
        points, weights = found[0]
        starts = _COARSE_STARTS if k <= _COARSE_STARTS_MAX_K else 1
        # every start runs a third of the iterations; the best one goes on to max_iter
        trial_iter = max_iter if starts == 1 else max(1, max_iter // 3)
        best: tuple[np.ndarray, float, np.ndarray] | None = None
        for run_seed in restart_seeds(seed, starts):
            centers, fixed = _seed(found[0], k, run_seed, locked)
            centers, error = lloyd(
                points, weights, centers, trial_iter, fixed=fixed, threads=threads
            )
            if best is None or error < best[1]:
                best = (centers, error, fixed)
        assert best is not None
        centers, _error, fixed = best
        if trial_iter < max_iter:
            centers = lloyd(
                points, weights, centers, max_iter - trial_iter, fixed=fixed, threads=threads
            )[0]
        last = len(found) - 1
        for i, (points, weights) in enumerate(found[1:], start=1):
            full = i == last and len(points) == n_colors
            iters = refine_iter if full else max(max_iter // 2, 1)
            if iters <= 0:
                continue
            if i == last:
                step("refine")
            centers = lloyd(points, weights, centers, iters, fixed=fixed, threads=threads)[0]
    return centers


def _fit_minibatch(
    found: list[Level],
    k: int,
    *,
    seed: int,
    max_iter: int,
    batch_size: int,
    locked: np.ndarray | None,
) -> np.ndarray:
    from sklearn.cluster import MiniBatchKMeans  # 1.2-1.8 s to import: only for this engine
    from threadpoolctl import threadpool_limits

    points, weights = found[-1]
    with threadpool_limits(limits=1):  # k-means++ and the mini-batch steps on one thread
        centers, fixed = _seed(found[0], k, seed, locked)
        if len(points) <= k:  # (locked colours beside few colours) the seeds hold them all
            return centers
        model = MiniBatchKMeans(
            n_clusters=k,
            init=centers,
            n_init=1,
            max_iter=max_iter,
            batch_size=batch_size,
            random_state=seed,
            reassignment_ratio=0.0,
            compute_labels=False,
        )
        model.fit(points, sample_weight=weights)
    out = model.cluster_centers_.astype(np.float32)
    out[fixed] = centers[fixed]  # its steps cannot hold a centre: the locked ones go back
    return out


def fit(
    found: list[Level],
    k: int,
    *,
    engine: str = "lloyd",
    seed: int = 0,
    max_iter: int = DEFAULT_MAX_ITER,
    refine_iter: int = DEFAULT_REFINE_ITER,
    batch_size: int = DEFAULT_BATCH_SIZE,
    locked: np.ndarray | None = None,
    n_colors: int | None = None,
    progress: Step | None = None,
) -> np.ndarray:
    """``k`` weighted k-means centres of a histogram given at several resolutions.

    Parameters
    ----------
    found : list of (points, weights)
        The histogram's levels, coarsest first (:func:`kmeanscli.core.histogram.levels`);
        the first must hold more than ``k`` points.
    k : int
    engine : {"lloyd", "minibatch"}
    seed, max_iter, refine_iter, batch_size
        The engine's settings (see the module notes). ``batch_size`` is the ``minibatch``
        engine's; ``refine_iter`` the ``lloyd`` engine's iterations on the distinct colours.
    locked : ndarray, shape (m, d), optional
        Values (in the clustering space) held as centres; each replaces the nearest seed.
    n_colors : int, optional
        Distinct colours of the histogram (which level holds them; default: the last).
    progress : callable, optional
        Called with ``"refine"`` when the last level starts.

    Returns
    -------
    ndarray of float32, shape (k, d)
        The centres, locked ones included (at the place of the seed they replaced).
    """
    step = progress or (lambda _stage: None)
    if engine == "minibatch":
        return _fit_minibatch(
            found, k, seed=seed, max_iter=max_iter, batch_size=batch_size, locked=locked
        )
    if engine != "lloyd":
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}.")
    return _fit_lloyd(
        found,
        k,
        seed=seed,
        max_iter=max_iter,
        refine_iter=refine_iter,
        locked=locked,
        n_colors=len(found[-1][0]) if n_colors is None else n_colors,
        step=step,
    )
