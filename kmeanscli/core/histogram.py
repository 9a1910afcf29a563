"""An image's colour histogram: distinct colours, their pixel counts, and coarser views of it.

Everything the fit needs to know about an image is here:

- :func:`histogram` counts the distinct colours of a pixel array (by sorting packed 24-bit
  codes for large RGB images, ``np.unique`` otherwise) and keeps what it takes to send one
  value per colour back to every pixel (:meth:`Histogram.spread`).
- :func:`space_values` / :func:`space_colors` move colours into the clustering space
  (RGB, OKLab or CIELAB; alpha scaled to weigh like lightness) and back.
- :func:`levels` bins the histogram at 7, 6 and 5 bits per channel (each bin carrying the
  weighted mean of its colours) and returns the resolutions the fit runs on, coarsest first.

Pure numpy; nothing here prints or knows about files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .color import from_space, to_space

__all__ = [
    "Histogram",
    "Level",
    "distinct_codes",
    "histogram",
    "levels",
    "pack_rgb",
    "space_colors",
    "space_values",
    "unpack_rgb",
]

SORT_MIN_PIXELS = 1 << 17
"""From this many RGB pixels, distinct colours are counted by sorting packed codes."""
_TABLE_MIN_PIXELS = 1 << 22  # from here, by marking them in a 2**24 table (no sort)

_DENSE_BIN_BITS = 18  # bins are counted densely up to 2**18 of them, numbered beyond
_INIT_MAX_POINTS = 40_000  # binning stops at the first level (<= 6 bits) this small ...
_FEW_COLORS = 8192  # an image of at most this many colours is fitted on them alone
_LEVEL_MAX_POINTS = 150_000  # ... and finer levels with more points are left out
_LEVEL_SHRINK = 0.7  # a binned level must have under 0.7x the points of the next finer one
_SKIP_7BIT_COLORS = 1_200_000  # with more colours, 7-bit bins would exceed the level cap
_PACK_CHUNK = 1 << 20  # pixels per chunk when packing RGB into 24-bit codes
_ALPHA_SCALE = {"rgb": 1.0, "oklab": 1.0 / 255.0, "lab": 100.0 / 255.0}  # alpha like lightness

Level = tuple[np.ndarray, np.ndarray]
"""``(points, weights)``: float32 values in the clustering space and float32 pixel counts."""


def pack_rgb(flat: np.ndarray) -> np.ndarray:
    """``r << 16 | g << 8 | b`` of uint8 (N, 3) pixels as uint32, in chunks."""
    codes = np.empty(len(flat), dtype=np.uint32)
    for start in range(0, len(flat), _PACK_CHUNK):
        part = flat[start : start + _PACK_CHUNK]
        out = codes[start : start + _PACK_CHUNK]
        np.left_shift(part[:, 0], 16, out=out, dtype=np.uint32)
        out |= part[:, 1].astype(np.uint32) << 8
        out |= part[:, 2]
    return codes


def unpack_rgb(codes: np.ndarray) -> np.ndarray:
    """The inverse of :func:`pack_rgb`: uint8 (n, 3) colours."""
    out = np.empty((len(codes), 3), dtype=np.uint8)
    out[:, 0] = codes >> 16
    out[:, 1] = (codes >> 8) & 0xFF
    out[:, 2] = codes & 0xFF
    return out


def distinct_codes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of ``codes`` (ascending) and how often each occurs, by sorting a copy.

    Measured on 12 M codes: numpy's sort takes 0.08-0.5 s (by machine) where ``np.bincount``
    over 2**24 bins takes 0.27-0.5 s and needs 134 MB for the counts plus a 96 MB int64 copy
    of the input. From 4 MP :func:`histogram` counts with :func:`_distinct_by_table` instead.
    """
    ordered = np.sort(codes)
    starts = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
    starts = np.concatenate([np.zeros(1, dtype=starts.dtype), starts])
    counts = np.diff(np.append(starts, len(ordered))).astype(np.int64)
    return ordered[starts], counts


def _distinct_by_table(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct 24-bit ``codes`` (ascending), their counts and each code's index among them.

    Marks the codes in a 2**24 table and numbers the marks by a running sum; no sort. On the
    benchmark's 12 MP mosaic (1.8 M colours), in a new process: 0.2-0.3 s against 0.55-0.65 s
    for the sort plus the 2**24 lookup table that spreading values back to the pixels then
    needs; `kmeanscli compress` peaks at 337-343 MB instead of 291-295 MB. Below about 4 MP
    the sort is as fast or faster (the table costs the same whatever the image size).
    """
    seen = np.zeros(1 << 24, dtype=np.bool_)
    seen[codes] = True
    distinct = np.flatnonzero(seen).astype(np.uint32)
    rank = seen.astype(np.int32)  # then summed in place: cumsum(seen, dtype=...) was 0.2 s
    del seen  # slower on its first call in a process
    np.cumsum(rank, out=rank)
    rank -= 1
    inverse = rank[codes]
    del rank
    counts = np.bincount(inverse, minlength=len(distinct)).astype(np.int64)
    return distinct, counts, inverse


@dataclass(frozen=True, eq=False)
class Histogram:
    """The distinct colours of some pixels and their counts.

    ``colors`` is uint8 (n, 3|4), ``counts`` int64 (n,). RGB images of 0.13-4 MP keep their
    pixels (to map values back through a 2**24 lookup table); the others keep a per-pixel
    index into ``colors``.
    """

    colors: np.ndarray
    counts: np.ndarray
    codes: np.ndarray
    pixels: np.ndarray | None = None
    inverse: np.ndarray | None = None

    def spread(self, per_color: np.ndarray) -> np.ndarray:
        """Per-pixel values from one value per distinct colour."""
        if self.inverse is not None:
            return per_color[self.inverse]
        assert self.pixels is not None
        lut = np.zeros(1 << 24, dtype=per_color.dtype)
        lut[self.codes] = per_color
        out = np.empty(len(self.pixels), dtype=per_color.dtype)
        for start in range(0, len(out), _PACK_CHUNK):  # pack again: keeps no 4-byte codes
            out[start : start + _PACK_CHUNK] = lut[
                pack_rgb(self.pixels[start : start + _PACK_CHUNK])
            ]
        return out


def histogram(flat: np.ndarray) -> Histogram:
    """Distinct colours of ``flat`` (uint8, shape (N, 3) or (N, 4)) and their counts."""
    if flat.shape[1] == 3:
        pixel_codes = pack_rgb(flat)
        if len(pixel_codes) >= _TABLE_MIN_PIXELS:
            codes, counts, inverse = _distinct_by_table(pixel_codes)
            del pixel_codes
            return Histogram(unpack_rgb(codes), counts, codes, inverse=inverse)
        if len(pixel_codes) >= SORT_MIN_PIXELS:
            codes, counts = distinct_codes(pixel_codes)
            del pixel_codes
            return Histogram(unpack_rgb(codes), counts, codes, pixels=flat)
        codes, inverse, counts = np.unique(pixel_codes, return_inverse=True, return_counts=True)
        return Histogram(unpack_rgb(codes), counts.astype(np.int64), codes, inverse=inverse)
    packed = np.ascontiguousarray(flat).view(np.uint32).ravel()
    codes, inverse, counts = np.unique(packed, return_inverse=True, return_counts=True)
    colors = codes.view(np.uint8).reshape(-1, 4)
    return Histogram(colors, counts.astype(np.int64), codes, inverse=inverse)


def space_values(colors: np.ndarray, space: str) -> np.ndarray:
    """8-bit colours (n, 3|4) in the clustering space, as float64.

    With alpha, colours are taken as they are seen: the colour's coordinates are
    premultiplied by its opacity (``a / 255``), so that colour detail a low alpha hides
    costs little, and alpha, scaled to the range of the space's lightness (0..255 in RGB,
    0..1 for OKLab, 0..100 for CIELAB), weighs like a colour channel.
    """
    out = np.empty(colors.shape, dtype=np.float64)
    out[:, :3] = to_space(colors[:, :3], space)
    if colors.shape[1] == 4:
        opacity = colors[:, 3] / 255.0
        out[:, :3] *= opacity[:, None]
        out[:, 3] = colors[:, 3] * _ALPHA_SCALE[space]
    return out


def space_colors(values: np.ndarray, space: str) -> np.ndarray:
    """Points of the clustering space back to 8-bit colours (rounded and clipped): the
    inverse of :func:`space_values`."""
    values = np.asarray(values, dtype=np.float64)
    out = np.empty(values.shape, dtype=np.float64)
    colour = values[:, :3]
    if values.shape[1] == 4:
        alpha = np.clip(values[:, 3] / _ALPHA_SCALE[space], 0.0, 255.0)
        out[:, 3] = alpha
        opacity = np.maximum(np.rint(alpha), 1.0) / 255.0  # what the rounded alpha shows
        colour = colour / opacity[:, None]
    out[:, :3] = from_space(colour, space)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@dataclass(frozen=True, eq=False)
class _Bins:
    """Colours merged into bins of ``bits`` per channel (cut in RGB(A))."""

    coords: np.ndarray  # (m, c) bin coordinates, 0 .. 2**bits - 1
    totals: np.ndarray  # (m,) float64 pixel counts
    sums: np.ndarray  # (m, d) float64 count-weighted sums of the values carried
    bits: int

    def level(self) -> Level:
        return (self.sums / self.totals[:, None]).astype(np.float32), self.totals.astype(np.float32)

    def coarser(self, bits: int) -> _Bins:
        """The same bins at fewer ``bits``: merging bins gives the same means as binning anew."""
        columns = [self.sums[:, j] for j in range(self.sums.shape[1])]
        return _merge(self.coords, self.bits - bits, bits, self.totals, columns)


def _merge(
    coords: np.ndarray, shift: int, bits: int, weights: np.ndarray, columns: list[np.ndarray]
) -> _Bins:
    """Add up ``weights`` and each of ``columns`` over the rows whose ``coords >> shift``
    agree."""
    c = coords.shape[1]
    code = np.zeros(len(coords), dtype=np.int64)
    for j in range(c):
        code <<= bits
        code |= coords[:, j] >> shift
    if bits * c > _DENSE_BIN_BITS:
        # e.g. RGBA at 7 bits: 2**28 dense bins would take 2 GB; number the used bins instead.
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
    return _Bins(merged, totals[occupied], sums, bits)


def levels(colors: np.ndarray, counts: np.ndarray, values: np.ndarray, k: int) -> list[Level]:
    """The histogram at the resolutions the fit runs on, coarsest first.

    ``colors`` (uint8) decide the bins; each bin carries the weighted mean of ``values``
    (the colours in the clustering space). Binned levels (7, 6, 5 bits per channel) are kept
    only when they hold more than ``k`` points and clearly fewer than the next finer level;
    binning stops at the first level of 6 bits or less with at most 40,000 points, where
    k-means++ can afford to run. The distinct colours themselves come last. Levels of more
    than 150,000 points are left out, except the coarsest. An image of at most 8,192
    colours (a logo, a drawing, an icon; the photos measured have 30,000 or more) is fitted
    on its colours alone: bins would merge the few colours it has. On scikit-image's logo
    at k = 256 that is 0.43x the error of fitting on bins first, in the same time; on photos
    of 30-60k colours it was 1.5x the time for no gain.
    """
    weights = counts.astype(np.float64)
    found = [(values.astype(np.float32), weights.astype(np.float32))]
    if len(colors) <= _FEW_COLORS:
        return found
    finer = len(colors)
    bins: _Bins | None = None
    for bits in (7, 6, 5):
        if bits == 7 and len(colors) > _SKIP_7BIT_COLORS:
            continue  # a 7-bit level of so many colours would be too big to use
        if bins is None:
            columns = [weights * values[:, j] for j in range(values.shape[1])]
            bins = _merge(colors, 8 - bits, bits, weights, columns)
        else:
            bins = bins.coarser(bits)
        points, bin_weights = bins.level()
        if len(points) <= k:
            break
        if len(points) >= _LEVEL_SHRINK * finer:
            continue
        found.append((points, bin_weights))
        finer = len(points)
        if bits <= 6 and len(points) <= _INIT_MAX_POINTS:
            break
    found.reverse()
    return [found[0], *(lv for lv in found[1:] if len(lv[0]) <= _LEVEL_MAX_POINTS)]
