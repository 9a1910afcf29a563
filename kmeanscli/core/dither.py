"""Floyd–Steinberg error diffusion onto a fitted palette, in compiled code.

The diffusion itself is Pillow's C implementation (``Image.quantize(palette=...,
dither=FLOYDSTEINBERG)``); this module only prepares its input and puts the result back in a
:class:`~kmeanscli.core.quantize.QuantizeResult`. No Python loop runs over pixels.

Gamut guard
-----------
Plain Floyd–Steinberg misbehaves on colours outside the palette's gamut (the convex hull of
the palette colours, which k-means centres never span fully: the most saturated sky is
always outside it). The error there always points the same way, piles up, and eventually
picks a far-away colour: stray dark dots in a light sky. So before diffusion, every colour
outside the hull (found with a Delaunay triangulation of the palette, per distinct colour)
is moved onto the segment between its two nearest palette colours; colours inside the hull
are dithered as they are. On the bundled photos at k = 8 this removes nearly all such
outliers and lowers the blurred error against the original.

Strength
--------
Pillow diffuses the whole error. For a strength ``s`` below 1 the image is first pulled
towards its undithered quantization ``q``: Pillow dithers ``q + s * (original - q)``
(rounded to 8 bits). The error left to diffuse at each pixel is then about ``s`` times the
full one, so ``s = 1`` is plain Floyd–Steinberg and small ``s`` adds only a little grain;
``s = 0`` is the undithered result itself.

Limits
------
- Pillow finds the palette colour for each diffused value on a 6-bit-per-channel grid, so
  two palette colours closer than about 4 levels per channel are not told apart while
  dithering (the undithered mapping is exact).
- Only opaque pixels are dithered, onto the opaque palette colours. Fully transparent pixels
  keep the transparent entry and semi-transparent pixels keep their undithered colour.
- Every palette entry used before dithering is still used after it: in the rare case where
  diffusion leaves one unused, one of its undithered pixels gets it back.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..constants import DITHERS
from .histogram import SORT_MIN_PIXELS, distinct_codes, pack_rgb, unpack_rgb
from .metrics import mse as _mse
from .quantize import QuantizeResult

__all__ = ["DITHERS", "floyd_steinberg"]


def _project_to_pairs(points: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Each point moved to the nearest point of the segment between its two nearest
    palette colours (or onto the only colour of a one-colour palette)."""
    from scipy.spatial import cKDTree

    pal = palette.astype(np.float64)
    if len(pal) == 1:
        return np.repeat(pal, len(points), axis=0)
    _, idx = cKDTree(pal).query(points, k=2)
    a, b = pal[idx[:, 0]], pal[idx[:, 1]]
    ab = b - a
    t = np.einsum("ij,ij->i", points - a, ab) / np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-12)
    return a + np.clip(t, 0.0, 1.0)[:, None] * ab


def _gamut_moves(flat: np.ndarray, palette: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Which pixels of ``flat`` (N, 3) lie outside the palette's convex hull, and where they
    move to (see the module notes); None when every pixel is inside. Works per distinct
    colour."""
    from scipy.spatial import Delaunay, QhullError

    codes = pack_rgb(flat)
    uniq = distinct_codes(codes)[0] if len(codes) >= SORT_MIN_PIXELS else np.unique(codes)
    try:
        hull = Delaunay(palette.astype(np.float64), qhull_options="QJ")
        outside = hull.find_simplex(unpack_rgb(uniq).astype(np.float64)) < 0
    except (QhullError, ValueError):  # fewer than 4 colours: no volume, everything is outside
        outside = np.ones(len(uniq), dtype=bool)
    if not outside.any():
        return None
    out_codes = uniq[outside]
    projected = _project_to_pairs(unpack_rgb(out_codes).astype(np.float64), palette)
    # 1 + the row of each outside colour in `projected`, 0 for colours inside
    lut = np.zeros(1 << 24, dtype=np.uint32)
    lut[out_codes] = np.arange(1, len(out_codes) + 1, dtype=np.uint32)
    rows = lut[codes]
    moved = rows > 0
    return moved, projected.astype(np.float32)[rows[moved] - 1]


def floyd_steinberg(
    pixels: np.ndarray, result: QuantizeResult, strength: float = 1.0
) -> QuantizeResult:
    """Re-map ``pixels`` onto ``result.palette`` with Floyd–Steinberg error diffusion.

    Parameters
    ----------
    pixels : ndarray of uint8, shape (H, W, 3|4)
        The original image ``result`` was computed from.
    result : QuantizeResult
        The undithered quantization (its palette is kept as it is).
    strength : float, optional
        0 to 1: the fraction of the quantization error that is diffused (see the module
        notes). 0 returns ``result`` unchanged.

    Returns
    -------
    QuantizeResult
        Same palette, new indices, counts and MSE.

    Raises
    ------
    ValueError
        For a strength outside 0..1 or pixels that do not match ``result``.
    """
    from PIL import Image

    if not 0.0 <= float(strength) <= 1.0:
        raise ValueError(f"dither strength must be from 0 to 1; got {strength!r}.")
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[:2] != result.indices.shape:
        raise ValueError("dithering needs the (H, W, C) uint8 image the result was computed from.")
    if strength == 0 or result.lossless:
        return result

    pal = result.palette
    channels = pixels.shape[-1]
    opaque_entries = np.arange(len(pal)) if channels == 3 else np.flatnonzero(pal[:, 3] == 255)
    if len(opaque_entries) == 0:
        return result
    opaque_px = np.ones(pixels.shape[:2], dtype=bool) if channels == 3 else pixels[..., 3] == 255

    flat = pixels[..., :3].reshape(-1, 3)
    moves = _gamut_moves(flat, pal[opaque_entries, :3])
    if strength == 1:
        target = flat.copy()
        if moves is not None:
            target[moves[0]] = np.clip(np.rint(moves[1]), 0, 255).astype(np.uint8)
    else:
        original = flat.astype(np.float32)
        if moves is not None:
            original[moves[0]] = moves[1]
        undithered = pal[result.indices.ravel(), :3].astype(np.float32)
        mixed = undithered + np.float32(strength) * (original - undithered)
        target = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    target = target.reshape((*pixels.shape[:2], 3))

    palette_img = Image.new("P", (1, 1))
    palette_img.putpalette(np.ascontiguousarray(pal[opaque_entries, :3]).tobytes(), rawmode="RGB")
    dithered = Image.fromarray(target, "RGB").quantize(
        palette=palette_img, dither=Image.Dither.FLOYDSTEINBERG
    )
    mapped = opaque_entries[np.asarray(dithered, dtype=np.intp)].astype(result.indices.dtype)
    indices = np.where(opaque_px, mapped, result.indices)

    # Keep every entry that was used in use (exact k).
    flat_old = result.indices.ravel()
    flat_new = indices.ravel()
    while True:
        counts = np.bincount(flat_new, minlength=len(pal))
        lost = np.flatnonzero((counts == 0) & (result.counts > 0))
        if len(lost) == 0:
            break
        for entry in lost:
            candidates = np.flatnonzero((flat_old == entry) & (flat_new != entry))
            flat_new[candidates[0]] = entry
    indices = flat_new.reshape(result.indices.shape)
    counts = np.bincount(flat_new, minlength=len(pal)).astype(np.int64)
    return dataclasses.replace(
        result, indices=indices, counts=counts, mse=_mse(pixels, pal[indices])
    )
