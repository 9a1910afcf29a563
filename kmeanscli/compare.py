"""What ``kmeanscli compare`` does, without the CLI: the cost and quality of each k.

:func:`compare_k` decodes an image once, quantizes it at each k (with k-means, and optionally
with Pillow's median cut and fast octree), encodes each result as a palette PNG in memory to
get its real size, and scores it against the original. With quality targets it also finds
the smallest k meeting them (:func:`kmeanscli.core.search.search_k`). :func:`compare_files`
scores files that other tools already produced against their original.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .constants import DEFAULT_KS, DEFAULT_MAX_ITER
from .core.metrics import Scores, mse, scores
from .core.quantize import MAX_COLORS, QuantizeResult, histogram, prepare, quantize
from .core.search import SearchResult, Target, make_targets, search_k
from .errors import InputError, TargetNotMetError, UsageError
from .imageio import decode, encode

__all__ = [
    "DEFAULT_KS",
    "FIELDS",
    "METHODS",
    "CompareRow",
    "Comparison",
    "compare_files",
    "compare_k",
    "make_targets",
    "parse_k_list",
    "parse_methods",
    "pillow_quantize",
]

Source = str | os.PathLike[str] | bytes | BinaryIO

METHODS = ("kmeans", "mediancut", "octree")
"""Quantization methods: kmeanscli's k-means, Pillow's median cut and fast octree."""


FIELDS = ("k", "colors", "bytes", "bpp", "ratio", "mse", "psnr", "ssim", "delta_e", "seconds")
"""The keys of every row in ``--json`` and the columns of ``--csv``, in order."""


def parse_k_list(text: str) -> list[int]:
    """``"4,8,16"`` -> ``[4, 8, 16]`` (sorted, without repeats).

    Raises
    ------
    UsageError
        For anything but integers from 2 to 256 separated by commas.
    """
    values: set[int] = set()
    for part in text.split(","):
        item = part.strip()
        try:
            k = int(item)
        except ValueError:
            raise UsageError(
                f"-k {text!r}: {item!r} is not a whole number; give k values like 4,8,16"
            ) from None
        if not 2 <= k <= MAX_COLORS:
            raise UsageError(f"-k {text!r}: {k} is out of range; each k must be 2 to {MAX_COLORS}")
        values.add(k)
    return sorted(values)


def parse_methods(text: str) -> tuple[str, ...]:
    """``"kmeans,octree"`` -> ``("kmeans", "octree")`` (k-means first, no repeats).

    Raises
    ------
    UsageError
        For a name other than ``kmeans``, ``mediancut`` or ``octree``.
    """
    names = [part.strip().lower() for part in text.split(",")]
    for name in names:
        if name not in METHODS:
            raise UsageError(
                f"--methods {text!r}: unknown method {name!r}; use {', '.join(METHODS)}"
            )
    return tuple(m for m in METHODS if m in names)


def pillow_quantize(pixels: np.ndarray, k: int, method: str) -> QuantizeResult:
    """Quantize with Pillow's ``"mediancut"`` or ``"octree"`` (fast octree), without dither.

    The result has the same form as :func:`kmeanscli.quantize`'s (unused and duplicate
    palette entries merged), so it encodes and scores the same way.

    Raises
    ------
    ValueError
        For another method, or median cut on an image with transparency (Pillow's median
        cut only handles RGB).
    """
    from PIL import Image

    kinds = {"mediancut": Image.Quantize.MEDIANCUT, "octree": Image.Quantize.FASTOCTREE}
    if method not in kinds:
        raise ValueError(f"unknown Pillow method {method!r}.")
    channels = pixels.shape[-1]
    if method == "mediancut" and channels == 4:
        raise ValueError("Pillow's median cut does not handle transparency.")
    img = Image.fromarray(np.ascontiguousarray(pixels))
    q = img.quantize(colors=k, method=kinds[method], dither=Image.Dither.NONE)
    raw = q.palette.mode
    table = np.array(q.getpalette(rawmode=raw), dtype=np.uint8).reshape(-1, len(raw))
    if table.shape[1] < channels:
        table = np.concatenate([table, np.full((len(table), 1), 255, np.uint8)], axis=1)
    indices = np.asarray(q)
    used, first = np.unique(indices, return_inverse=True)
    palette, remap = np.unique(table[used, :channels], axis=0, return_inverse=True)
    indices = remap.ravel()[first].reshape(indices.shape).astype(np.uint8)
    counts = np.bincount(indices.ravel(), minlength=len(palette)).astype(np.int64)
    image = palette[indices]
    err = mse(pixels, image)
    return QuantizeResult(
        palette=palette,
        indices=indices,
        counts=counts,
        unique_colors=0,
        mse=err,
        k=int(k),
        transparent_index=None,
        lossless=err == 0,
    )


@dataclass(frozen=True, eq=False)
class CompareRow:
    """One line of the comparison: one method at one k, or one file."""

    k: int | None
    """k asked for (None for a file)."""
    colors: int
    """Colours in the result (for a file: distinct colours)."""
    bytes: int
    """Size of the palette PNG (for a file: the file's size)."""
    bpp: float
    """Bits per pixel: ``bytes * 8 / (width * height)``."""
    ratio: float
    """``bytes`` / the input file's size."""
    scores: Scores
    seconds: float | None
    """Time to quantize and encode (None for a file)."""
    method: str | None = None
    """``kmeans``, ``mediancut`` or ``octree`` (None for a file)."""
    file: str | None = None
    """The file's name in files mode."""
    chosen: bool = False
    """The k chosen for the quality target."""
    image: np.ndarray | None = field(default=None, repr=False)
    """The result as pixels (for figures)."""
    result: QuantizeResult | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The ``FIELDS`` as JSON values (an infinite PSNR or undefined SSIM is ``None``)."""
        s = self.scores
        return {
            "k": self.k,
            "colors": self.colors,
            "bytes": self.bytes,
            "bpp": round(self.bpp, 6),
            "ratio": round(self.ratio, 6),
            "mse": round(s.mse, 6),
            "psnr": None if math.isinf(s.psnr) else round(s.psnr, 4),
            "ssim": None if math.isnan(s.ssim) else round(s.ssim, 6),
            "delta_e": round(s.delta_e, 6),
            "seconds": None if self.seconds is None else round(self.seconds, 4),
        }


@dataclass(frozen=True, eq=False)
class Comparison:
    """The outcome of :func:`compare_k` or :func:`compare_files`."""

    input: str
    width: int
    height: int
    bytes_in: int
    rows: list[CompareRow]
    original: np.ndarray = field(repr=False)
    methods: tuple[str, ...] = ("kmeans",)
    targets: tuple[Target, ...] = ()
    search: SearchResult | None = field(default=None, repr=False)
    """The bisection's outcome when targets were given and met."""
    target_error: str | None = None
    """Why the targets were not met (even at 256 colours), when they were not."""
    warnings: list[str] = field(default_factory=list)

    @property
    def chosen_k(self) -> int | None:
        """The k chosen for the targets (None without targets or when out of reach)."""
        return None if self.search is None else self.search.k

    @property
    def files_mode(self) -> bool:
        """True for a comparison of existing files."""
        return any(row.file is not None for row in self.rows)


def _row(
    original: np.ndarray,
    result: QuantizeResult,
    *,
    method: str,
    seconds: float,
    bytes_in: int,
    icc_profile: bytes | None,
) -> CompareRow:
    started = time.perf_counter()
    data, _ = encode(result, "PNG", icc_profile=icc_profile)
    seconds += time.perf_counter() - started
    image = result.image()
    height, width = original.shape[:2]
    return CompareRow(
        k=result.k,
        colors=result.colors,
        bytes=len(data),
        bpp=len(data) * 8 / (width * height),
        ratio=len(data) / bytes_in if bytes_in else math.nan,
        scores=scores(original, image, mse_value=result.mse),
        seconds=seconds,
        method=method,
        image=image,
        result=result,
    )


def compare_k(
    src: Source,
    ks: Sequence[int] = DEFAULT_KS,
    *,
    methods: Sequence[str] = ("kmeans",),
    targets: Sequence[Target] = (),
    seed: int = 0,
    max_iter: int = DEFAULT_MAX_ITER,
    strip: bool = False,
    max_pixels: int | None = None,
    input_name: str | None = None,
    progress: Callable[[str], None] | None = None,
    space: str = "rgb",
    restarts: int | None = None,
) -> Comparison:
    """Quantize one image at each k and measure size and quality.

    Parameters
    ----------
    src : path, bytes or binary file object
        The image; decoded once for every k and method.
    ks : sequence of int
        The k values, each 2 to 256 (may be empty when ``targets`` are given).
    methods : sequence of str
        Any of :data:`METHODS`. Every method runs at every k of the k-means rows.
    targets : sequence of Target
        Quality targets: the smallest k meeting all of them is searched by bisection (with
        k-means) and its row is marked ``chosen``; every k the search measured gets a row.
    seed, max_iter
        Passed to :func:`kmeanscli.quantize`, exactly as ``compress`` does, so a row matches
        ``kmeanscli compress`` at the same k and seed, bytes included.
    strip : bool
        Encode without the input's ICC profile (as ``compress --strip``).
    max_pixels : int, optional
        Decompression-bomb limit (default: Pillow's).
    input_name : str, optional
        Name of the input in the result and in messages.
    progress : callable, optional
        Called with a short description of each step.
    space, restarts
        Passed to :func:`kmeanscli.quantize` for the k-means rows (as ``compress --space``
        and ``--restarts``).

    Returns
    -------
    Comparison
        Rows ordered by method (as in :data:`METHODS`), then k.

    Raises
    ------
    InputError, UsageError
        With a message ready for the user.
    """
    step = progress or (lambda _stage: None)
    ks = sorted(set(ks))
    if any(not 2 <= k <= MAX_COLORS for k in ks):
        raise UsageError(f"each k must be 2 to {MAX_COLORS}; got {ks}")
    methods = tuple(m for m in METHODS if m in set(methods))
    if not methods:
        raise UsageError(f"give at least one method of {', '.join(METHODS)}")
    if not ks and not targets:
        raise UsageError("give k values or a quality target")
    label = input_name or (os.fspath(src) if isinstance(src, (str, os.PathLike)) else "-")

    step("decode")
    decoded = decode(src, max_pixels=max_pixels, name=label)
    pixels = decoded.pixels
    icc = None if strip else decoded.icc_profile
    height, width = pixels.shape[:2]
    notes: list[str] = []

    kmeans_runs: dict[int, tuple[QuantizeResult, float]] = {}
    prepared = prepare(pixels)  # the colour histogram, counted once for every k

    def run_kmeans(px: np.ndarray, k: int) -> QuantizeResult:
        if k not in kmeans_runs:
            step(f"k-means, k={k}")
            started = time.perf_counter()
            result = quantize(
                px,
                k,
                seed=seed,
                max_iter=max_iter,
                space=space,
                restarts=restarts,
                prepared=prepared if px is pixels else None,
            )
            kmeans_runs[k] = (result, time.perf_counter() - started)
        return kmeans_runs[k][0]

    found: SearchResult | None = None
    target_error: str | None = None
    if targets:
        try:
            found = search_k(pixels, targets, run_kmeans)
        except TargetNotMetError as exc:
            target_error = str(exc)
    for k in ks:
        run_kmeans(pixels, k)

    rows: list[CompareRow] = []
    all_ks = sorted(kmeans_runs)
    for method in methods:
        if method == "mediancut" and pixels.shape[-1] == 4:
            notes.append("Pillow's median cut does not handle transparency: no mediancut rows")
            continue
        for k in all_ks:
            if method == "kmeans":
                result, seconds = kmeans_runs[k]
            else:
                step(f"{method}, k={k}")
                started = time.perf_counter()
                result = pillow_quantize(pixels, k, method)
                seconds = time.perf_counter() - started
            step(f"scoring {method}, k={k}")
            row = _row(
                pixels,
                result,
                method=method,
                seconds=seconds,
                bytes_in=decoded.bytes_in,
                icc_profile=icc,
            )
            if found is not None and method == "kmeans" and k == found.k:
                row = dataclasses.replace(row, chosen=True)
            rows.append(row)
    if all_ks:
        unique = kmeans_runs[all_ks[0]][0].unique_colors
        if unique <= all_ks[-1]:
            notes.append(f"the image has only {unique} colours: k ≥ {unique} is lossless")
    return Comparison(
        input=label,
        width=width,
        height=height,
        bytes_in=decoded.bytes_in,
        rows=rows,
        original=pixels,
        methods=methods,
        targets=tuple(targets),
        search=found,
        target_error=target_error,
        warnings=notes,
    )


def _with_alpha(pixels: np.ndarray) -> np.ndarray:
    if pixels.shape[-1] == 4:
        return pixels
    alpha = np.full((*pixels.shape[:2], 1), 255, dtype=np.uint8)
    return np.concatenate([pixels, alpha], axis=-1)


def compare_files(
    original: str | os.PathLike[str],
    others: Sequence[str | os.PathLike[str]],
    *,
    max_pixels: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> Comparison:
    """Score images already produced (by any tool) against their original.

    Rows have ``k`` and ``seconds`` None, ``colors`` the file's distinct colours, ``bytes``
    its size and ``file`` its name.

    Raises
    ------
    InputError
        For an unreadable file, or one whose size differs from the original's.
    """
    step = progress or (lambda _stage: None)
    if not others:
        raise UsageError("give at least one file to compare with the original")
    label = os.fspath(original)
    step("decode")
    base = decode(Path(original), max_pixels=max_pixels, name=label)
    height, width = base.pixels.shape[:2]
    rows: list[CompareRow] = []
    for other in others:
        name = os.fspath(other)
        step(f"scoring {Path(name).name}")
        decoded = decode(Path(other), max_pixels=max_pixels, name=name)
        pixels = decoded.pixels
        if pixels.shape[:2] != (height, width):
            h, w = pixels.shape[:2]
            raise InputError(
                f"{name}: is {w}x{h} but the original {label} is {width}x{height}; sizes must match"
            )
        ref = base.pixels
        if pixels.shape[-1] != ref.shape[-1]:
            ref, pixels = _with_alpha(ref), _with_alpha(pixels)
        colors = len(histogram(pixels.reshape(-1, pixels.shape[-1])).counts)
        rows.append(
            CompareRow(
                k=None,
                colors=colors,
                bytes=decoded.bytes_in,
                bpp=decoded.bytes_in * 8 / (width * height),
                ratio=decoded.bytes_in / base.bytes_in,
                scores=scores(ref, pixels),
                seconds=None,
                file=name,
                image=pixels,
            )
        )
    return Comparison(
        input=label,
        width=width,
        height=height,
        bytes_in=base.bytes_in,
        rows=rows,
        original=base.pixels,
        methods=(),
    )
