"""Mapping an image onto a palette given in advance (``--palette FILE``, a batch's shared
palette): no k-means, every colour to its nearest palette colour (:func:`.kmeans.nearest`)."""

from __future__ import annotations

import numpy as np

from ..constants import MAX_COLORS, SPACES
from .histogram import histogram, space_values
from .kmeans import nearest
from .metrics import mse as _mse
from .quantize import QuantizeResult

__all__ = ["map_to_palette"]


def _unique_in_order(palette: np.ndarray) -> np.ndarray:
    _, first = np.unique(palette, axis=0, return_index=True)
    return palette[np.sort(first)]


def map_to_palette(
    pixels: np.ndarray, palette: np.ndarray, *, space: str = "rgb"
) -> QuantizeResult:
    """Map every pixel to its nearest colour of a fixed palette.

    Parameters
    ----------
    pixels : ndarray of uint8, shape (H, W, 3|4) or (N, 3|4)
    palette : ndarray of uint8, shape (m, 3)
        Opaque RGB colours, 1 to 256 of them. Repeated colours are kept once (first
        occurrence). The order is kept: palette index i is the i-th distinct colour (after
        the transparent entry, if any).
    space : {"rgb", "oklab", "lab"}, optional
        Where "nearest" is measured.

    Returns
    -------
    QuantizeResult
        Its palette holds every given colour (``counts`` may be 0 for some: every entry is
        available, not necessarily used). Fully transparent pixels share a transparent entry
        at index 0; partly transparent pixels get an opaque palette colour.

    Raises
    ------
    ValueError
        For a bad palette or space, or 256 colours when the image needs a transparent entry.
    """
    if space not in SPACES:
        raise ValueError(f"space must be one of {', '.join(SPACES)}; got {space!r}.")
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or pixels.shape[-1] not in (3, 4):
        raise ValueError(
            f"pixels must be uint8 of shape (H, W, 3|4) or (N, 3|4); got {pixels.shape}."
        )
    palette = np.asarray(palette)
    if palette.dtype != np.uint8 or palette.ndim != 2 or palette.shape[1] != 3:
        raise ValueError("the palette must be a uint8 array of shape (m, 3).")
    palette = _unique_in_order(palette)
    if not 1 <= len(palette) <= MAX_COLORS:
        raise ValueError(f"a palette holds 1 to {MAX_COLORS} colours; got {len(palette)}.")
    channels = pixels.shape[-1]
    flat = pixels.reshape(-1, channels)
    visible = flat[:, 3] > 0 if channels == 4 else None
    has_transparent = visible is not None and not bool(visible.all())
    if has_transparent and len(palette) == MAX_COLORS:
        raise ValueError(
            "the image has transparent pixels and the palette 256 colours: no room is left "
            "for the transparent entry (a palette image holds 256)."
        )
    work = flat[:, :3] if visible is None else flat[visible, :3]
    offset = int(has_transparent)
    indices = np.zeros(len(flat), dtype=np.uint8)
    unique_colors = int(has_transparent)
    if len(work):
        hist = histogram(np.ascontiguousarray(work))
        unique_colors += len(hist.colors)
        if space == "rgb":
            labels, _ = nearest(hist.colors, palette)
        else:
            labels, _ = nearest(space_values(hist.colors, space), space_values(palette, space))
        mapped = hist.spread((labels + offset).astype(np.uint8))
        if visible is None:
            indices = mapped
        else:
            indices[visible] = mapped
    out_palette = np.zeros((len(palette) + offset, channels), dtype=np.uint8)
    out_palette[offset:, :3] = palette
    if channels == 4:
        out_palette[offset:, 3] = 255
    indices = indices.reshape(pixels.shape[:-1])
    error = _mse(pixels, out_palette[indices])
    return QuantizeResult(
        palette=out_palette,
        indices=indices,
        counts=np.bincount(indices.ravel(), minlength=len(out_palette)).astype(np.int64),
        unique_colors=unique_colors,
        mse=error,
        k=len(palette),
        transparent_index=0 if has_transparent else None,
        lossless=error == 0,
    )
