"""From k-means centres to a palette of exactly k distinct 8-bit colours, each one used.

Centres are rounded to 8-bit colours once. Rounding can make two centres equal, and a
centre can end up nearest to no colour; each such gap is filled with the colour that is
served worst (largest weighted squared distance to its palette colour), and every colour is
assigned again, until exactly ``k`` distinct colours are each the nearest of at least one
colour. Each round strictly lowers the total error, so the loop ends. Locked colours stay
in the palette whether or not any colour is nearest to them.

"Nearest" is measured in the clustering space, exactly (:func:`kmeanscli.core.kmeans.nearest`).
"""

from __future__ import annotations

import numpy as np

from .histogram import space_values
from .kmeans import NearestSearch

__all__ = ["exact_palette", "isin_rows"]


def isin_rows(rows: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Mask of the rows of ``rows`` (uint8, (n, c)) that appear in ``table`` (uint8, (m, c))."""
    if len(table) == 0:
        return np.zeros(len(rows), dtype=bool)
    weights = 256 ** np.arange(rows.shape[1], dtype=np.int64)
    return np.isin(rows.astype(np.int64) @ weights, table.astype(np.int64) @ weights)


def exact_palette(
    colors: np.ndarray,
    weights: np.ndarray,
    centers: np.ndarray,
    k: int,
    *,
    space: str = "rgb",
    values: np.ndarray | None = None,
    locked: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exactly ``k`` distinct 8-bit colours from ``centers``, and the nearest of each colour.

    Parameters
    ----------
    colors : ndarray of uint8, shape (n, c)
        The distinct colours; more than ``k`` of them (or fewer palette entries result).
    weights : ndarray, shape (n,)
        Their pixel counts.
    centers : ndarray of uint8, shape (m, c)
        The fitted centres as 8-bit colours (locked ones may be among them).
    k : int
    space : {"rgb", "oklab", "lab"}
        Where distances are measured.
    values : ndarray, optional
        ``colors`` in ``space`` (computed when not given; unused for RGB colours in
        ``"rgb"``).
    locked : ndarray of uint8, shape (l, c), optional
        Colours that are always in the palette, first.

    Returns
    -------
    palette : ndarray of uint8, shape (k, c)
        ``locked`` first, then the others.
    labels : ndarray of intp, shape (n,)
        The palette entry nearest to each colour.
    sqdist : ndarray of float64, shape (n,)
        The squared distance (in ``space``) to it.
    """
    rgb = space == "rgb" and colors.shape[1] == 3  # 8-bit integers: the exact float32 path
    if rgb:
        values = colors
    elif values is None:
        values = space_values(colors, space)
    locked = centers[:0] if locked is None else locked
    n_lock = len(locked)
    free = np.unique(centers, axis=0)
    if n_lock:
        free = free[~isin_rows(free, locked)]
    w = np.asarray(weights, dtype=np.float64)
    with NearestSearch(values, threads=None) as search:  # threads for many colours
        while True:
            palette = np.concatenate([locked, free])
            labels, sqdist = search.exact(palette if rgb else space_values(palette, space))
            used = np.bincount(labels, minlength=len(palette))[n_lock:] > 0
            if len(palette) == k and used.all():
                break
            free = free[used]
            cost = sqdist * w
            worst = np.argsort(-cost, kind="stable")[: k - n_lock - len(free)]
            worst = worst[cost[worst] > 0]
            if len(worst) == 0:  # every colour is already a palette colour
                palette = np.concatenate([locked, free])
                labels, sqdist = search.exact(palette if rgb else space_values(palette, space))
                break
            free = np.concatenate([free, colors[worst]])
    return palette, labels, sqdist
