"""Colour quantization with k-means on the image's colour histogram: the short pipeline.

1. **Histogram** (:mod:`.histogram`): the distinct colours of the image and their pixel
   counts. Fully transparent pixels are set aside; they become one transparent palette
   entry (one of the ``k``).
2. **Fit** (:mod:`.kmeans`): the engine fits ``k`` centres on the histogram, coarse to fine,
   in the clustering space; locked colours (``keep``) are held as centres.
3. **Exact k** (:mod:`.exact`): the centres become exactly ``k`` distinct 8-bit colours, each
   the nearest of at least one colour, and every colour goes to its truly nearest one.
4. **Index image**: a stable palette order (alpha, then luma), one index per pixel.

With several ``restarts`` steps 2-3 run once per seed and the lowest error wins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ..constants import (
    AUTO_RESTARTS_MAX_K,
    DEFAULT_BATCH_SIZE,
    DEFAULT_ENGINE,
    DEFAULT_MAX_ITER,
    DEFAULT_REFINE_ITER,
    ENGINES,
    MAX_COLORS,
    SPACES,
)
from .exact import exact_palette, isin_rows
from .histogram import Histogram, histogram, levels, space_colors, space_values
from .kmeans import fit, nearest, restart_seeds
from .metrics import psnr_from_mse, weighted_squared_error

__all__ = [
    "MAX_COLORS",
    "Fitted",
    "PreparedImage",
    "QuantizeResult",
    "auto_restarts",
    "check_pixels",
    "fit_colors",
    "palette_order",
    "prepare",
    "quantize",
]

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

    def reordered(self, order: np.ndarray) -> QuantizeResult:
        """The same pixels with the palette in another order: entry ``i`` of the new palette
        is entry ``order[i]`` of this one. Entries left out must be unused (count 0)."""
        order = np.asarray(order, dtype=np.intp)
        n = len(self.palette)
        kept = np.zeros(n, dtype=bool)
        if order.ndim != 1 or ((order < 0) | (order >= n)).any():
            raise ValueError("order must list indices of the palette.")
        kept[order] = True
        if kept.sum() != len(order) or (self.counts[~kept] > 0).any():
            raise ValueError("order must list every used palette entry once.")
        new_index = np.zeros(n, dtype=np.uint8)
        new_index[order] = np.arange(len(order), dtype=np.uint8)
        t = self.transparent_index
        return replace(
            self,
            palette=self.palette[order],
            indices=new_index[self.indices],
            counts=self.counts[order],
            transparent_index=None if t is None or not kept[t] else int(new_index[t]),
        )


def auto_restarts(k: int) -> int:
    """Default number of k-means++ starts for ``k`` colours: 3 for k <= 8, else 1.

    Measured on the seven bundled photos (benchmarks/RESULTS_COLOUR.md): 4 starts gain
    0.08 dB PSNR on average at k = 8 (up to 0.24 dB), 0.06 dB at k = 16, for one fit
    each; so the extra starts are spent only where palettes are smallest.
    """
    return 3 if k <= AUTO_RESTARTS_MAX_K else 1


@dataclass(frozen=True, eq=False)
class Fitted:
    """A palette fitted on a histogram (:func:`fit_colors`).

    ``palette`` is uint8 (m, c) with the locked colours first, ``labels`` the palette entry of
    each distinct colour, ``sq_error`` the weighted squared RGB(A) error over the histogram
    and ``lossless`` whether every colour was kept exactly.
    """

    palette: np.ndarray
    labels: np.ndarray
    sq_error: float
    lossless: bool


def _locked_colors(
    keep: np.ndarray | None, channels: int, k: int, transparent: bool = False
) -> np.ndarray | None:
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
        raise ValueError(
            f"{len(rgb)} colours to keep do not fit beside the transparent entry in a "
            f"palette of {k + 1}."
            if transparent
            else f"{len(rgb)} colours to keep do not fit in a palette of {k}."
        )
    out = np.full((len(rgb), channels), 255, dtype=np.uint8)
    out[:, :3] = rgb
    return out


def fit_colors(
    colors: np.ndarray,
    counts: np.ndarray,
    k: int,
    *,
    engine: str = DEFAULT_ENGINE,
    space: str = "rgb",
    seed: int = 0,
    max_iter: int = DEFAULT_MAX_ITER,
    refine_iter: int = DEFAULT_REFINE_ITER,
    batch_size: int = DEFAULT_BATCH_SIZE,
    restarts: int = 1,
    keep: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
) -> Fitted:
    """A palette of at most ``k`` colours for a colour histogram (what :func:`quantize` fits).

    ``colors`` are distinct uint8 (n, 3|4) colours and ``counts`` their pixel counts (or any
    non-negative weights: a batch's shared palette fits merged histograms). The other
    arguments are :func:`quantize`'s. Fewer than ``k`` colours (beside the locked ones) are
    all kept exactly.
    """
    step = progress or (lambda _stage: None)
    locked = _locked_colors(keep, colors.shape[1], k)
    weights = np.asarray(counts, dtype=np.float64)
    is_locked = isin_rows(colors, locked) if locked is not None else np.zeros(len(colors), bool)
    n_lock = 0 if locked is None else len(locked)
    if len(colors) - int(is_locked.sum()) <= k - n_lock:  # room for every colour: keep them
        palette = colors if locked is None else np.concatenate([locked, colors[~is_locked]])
        labels = nearest(colors, palette)[0]
        return Fitted(palette, labels, 0.0, True)
    values = space_values(colors, space)
    found = levels(colors, counts, values, k)
    locked_values = None if locked is None else space_values(locked, space)
    engine_settings = {
        "engine": engine,
        "max_iter": max_iter,
        "refine_iter": refine_iter,
        "batch_size": batch_size,
    }
    best: tuple[float, Fitted] | None = None
    for run_seed in restart_seeds(seed, restarts):
        step("fit")
        centers = fit(
            found,
            k,
            seed=run_seed,
            locked=locked_values,
            n_colors=len(colors),
            progress=step,
            **engine_settings,
        )
        step("assign")
        palette, labels, sqdist = exact_palette(
            colors,
            weights,
            space_colors(centers, space),
            k,
            space=space,
            values=values,
            locked=locked,
        )
        score = float(np.dot(sqdist, weights))  # the error in the clustering space
        sq = weighted_squared_error(colors, palette[labels], counts)  # as metrics.mse sums it
        if best is None or score < best[0]:  # ties keep the earlier start
            best = (score, Fitted(palette, labels, sq, False))
    assert best is not None
    return best[1]


def palette_order(palette: np.ndarray) -> np.ndarray:
    """A stable palette order: by alpha, then by luma (helps PNG filters and compression)."""
    p = palette.astype(np.int64)
    luma = 299 * p[:, 0] + 587 * p[:, 1] + 114 * p[:, 2]
    alpha = p[:, 3] if p.shape[1] == 4 else np.zeros(len(p), dtype=np.int64)
    code = (p[:, 0] << 16) | (p[:, 1] << 8) | p[:, 2]
    return np.lexsort((code, luma, alpha))


def check_pixels(pixels: np.ndarray, *, allow_empty: bool = False) -> None:
    """Raise ``ValueError`` unless ``pixels`` is uint8 of shape (H, W, 3|4) or (N, 3|4)."""
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8:
        raise ValueError("pixels must be a numpy array of dtype uint8.")
    if pixels.ndim not in (2, 3) or pixels.shape[-1] not in (3, 4):
        raise ValueError(f"pixels must have shape (H, W, 3|4) or (N, 3|4); got {pixels.shape}.")
    if pixels.size == 0 and not allow_empty:
        raise ValueError("the image has no pixels.")


def _check_settings(
    k: int, seed: int, max_iter: int, refine_iter: int, engine: str, space: str, restarts: int
) -> None:
    def whole(v: object) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if not whole(k) or not 1 <= k <= MAX_COLORS:
        raise ValueError(f"k must be an integer from 1 to {MAX_COLORS}; got {k!r}.")
    if not whole(seed) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer from 0 to 2**32-1; got {seed!r}.")
    if not whole(max_iter) or max_iter < 1:
        raise ValueError(f"max_iter must be at least 1; got {max_iter!r}.")
    if not whole(refine_iter) or refine_iter < 0:
        raise ValueError(f"refine_iter must be 0 or more; got {refine_iter!r}.")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}.")
    if space not in SPACES:
        raise ValueError(f"space must be one of {', '.join(SPACES)}; got {space!r}.")
    if not whole(restarts) or not 1 <= restarts <= 100:
        raise ValueError(f"restarts must be an integer from 1 to 100; got {restarts!r}.")


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
    hist: Histogram | None


def prepare(pixels: np.ndarray) -> PreparedImage:
    """Count an image's colours once, for several :func:`quantize` calls on it.

    ``pixels`` follows :func:`quantize`'s contract and must not change afterwards.
    """
    check_pixels(pixels)
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
    engine: str = DEFAULT_ENGINE,
    seed: int = 0,
    max_iter: int = DEFAULT_MAX_ITER,
    refine_iter: int = DEFAULT_REFINE_ITER,
    batch_size: int = DEFAULT_BATCH_SIZE,
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
        Palette size, 1 to 256: the palette has exactly ``k`` entries when the image has
        enough distinct (visible) colours; otherwise all its colours are kept exactly. Fully
        transparent pixels share one transparent entry, which is one of the ``k`` (so an
        image with transparency gets ``k - 1`` visible colours; it needs ``k >= 2``).
    engine : {"lloyd", "minibatch"}, optional
        The k-means engine (see :mod:`kmeanscli.core.kmeans`): ``"lloyd"``, exact weighted
        Lloyd iterations coarse to fine (the default), or ``"minibatch"``, scikit-learn's
        ``MiniBatchKMeans`` on the weighted histogram.
    seed : int, optional
        Random seed; the same input, options and seed give the same result.
    max_iter : int, optional
        ``lloyd``: Lloyd iterations on the coarsest (binned) level of the colour histogram,
        where k-means++ seeds the centres; finer binned levels get half as many.
        ``minibatch``: passes over the histogram.
    refine_iter : int, optional
        ``lloyd``: exact Lloyd iterations on the distinct colours themselves, last (0 to
        skip). Skipped when the image has more than 150,000 distinct colours.
    batch_size : int, optional
        ``minibatch``: the mini-batch size.
    space : {"rgb", "oklab", "lab"}, optional
        The colour space k-means clusters in. The image's distinct colours are converted
        to it (OKLab with the sRGB curve removed first; CIELAB relative to D65), fitted
        there, and the centres are converted back to 8-bit sRGB once. Every colour then
        goes to its nearest palette colour in that space. ``"rgb"`` clusters the 8-bit
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
    check_pixels(pixels)
    restarts = auto_restarts(k) if restarts is None else restarts
    _check_settings(k, seed, max_iter, refine_iter, engine, space, restarts)
    step = progress or (lambda _stage: None)
    channels = pixels.shape[-1]
    n_pixels = pixels.size // channels

    step("histogram")
    if prepared is None:
        prepared = prepare(pixels)
    elif prepared.pixels is not pixels:
        raise ValueError("prepared must come from prepare() on the same pixels array.")
    hist = prepared.hist
    has_transparent = prepared.visible is not None
    k_eff = k - 1 if has_transparent else k  # k counts the transparent entry
    if hist is not None and k_eff < 1:
        raise ValueError(
            f"k = {k} leaves no palette entry for the visible colours beside the transparent "
            "one; use k >= 2."
        )
    locked = _locked_colors(keep, channels, k_eff, has_transparent)  # checked here, with k
    if hist is None:  # nothing visible
        empty = np.zeros((0, channels), dtype=np.uint8)
        fitted = Fitted(empty if locked is None else locked, np.zeros(0, np.intp), 0.0, True)
    else:
        fitted = fit_colors(
            hist.colors,
            hist.counts,
            k_eff,
            engine=engine,
            space=space,
            seed=int(seed),
            max_iter=max_iter,
            refine_iter=refine_iter,
            batch_size=batch_size,
            restarts=restarts,
            keep=keep,
            progress=step,
        )
    return _index_image(prepared, fitted, k, channels, n_pixels)


def _index_image(
    prepared: PreparedImage, fitted: Fitted, k: int, channels: int, n_pixels: int
) -> QuantizeResult:
    """Lay the palette out in the input's channels (transparent entry first, then by alpha
    and luma) and give every pixel its index."""
    hist, has_transparent = prepared.hist, prepared.visible is not None
    fit_palette = fitted.palette
    palette = np.zeros((len(fit_palette), channels), dtype=np.uint8)
    palette[:, : fit_palette.shape[1]] = fit_palette
    if channels == 4 and fit_palette.shape[1] == 3:
        palette[:, 3] = 255
    order = palette_order(palette)
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    palette = palette[order]
    offset = int(has_transparent)
    if has_transparent:
        palette = np.concatenate([np.zeros((1, channels), dtype=np.uint8), palette])
    indices = np.zeros(n_pixels, dtype=np.uint8)
    counts = np.zeros(len(palette), dtype=np.int64)
    if hist is not None:
        per_color = (rank[fitted.labels] + offset).astype(np.uint8)
        mapped = hist.spread(per_color)
        if prepared.visible is None:
            indices = mapped
        else:
            indices[prepared.visible] = mapped
        # from the colour counts: cheaper than counting every pixel again
        counts += np.bincount(per_color, weights=hist.counts, minlength=len(palette)).astype(
            np.int64
        )
    if has_transparent:
        counts[0] += n_pixels - len(prepared.work)
    n_colors = 0 if hist is None else len(hist.colors)
    return QuantizeResult(
        palette=palette,
        indices=indices.reshape(prepared.pixels.shape[:-1]),
        counts=counts,
        unique_colors=n_colors + has_transparent,
        mse=fitted.sq_error / (n_pixels * channels),
        k=int(k),
        transparent_index=0 if has_transparent else None,
        lossless=fitted.lossless,
    )
