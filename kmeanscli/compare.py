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

from .constants import DEFAULT_KS, MAX_COLORS, PNG_LEVELS
from .core.metrics import Scores, mse, same_channels, scores, visible_colors
from .core.quantize import QuantizeResult, prepare, quantize
from .core.search import SearchResult, Target, search_k
from .errors import InputError, TargetNotMetError, UsageError
from .imageio import decode, encode
from .options import OptionsError, QuantizeOptions

__all__ = [
    "DEFAULT_KS",
    "FIELDS",
    "METHODS",
    "CompareRow",
    "Comparison",
    "compare_files",
    "compare_k",
    "pillow_quantize",
]

Source = str | os.PathLike[str] | bytes | BinaryIO

METHODS = ("kmeans", "minibatch", "mediancut", "octree")
"""Quantization methods: kmeanscli's k-means (with the options' engine), kmeanscli with the
``minibatch`` engine, Pillow's median cut and fast octree."""


FIELDS = ("k", "colors", "bytes", "bpp", "ratio", "mse", "psnr", "ssim", "delta_e", "seconds")
"""The keys of every row in ``--json`` and the columns of ``--csv``, in order."""


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
    png: bytes | None = field(default=None, repr=False)
    """The palette PNG measured (None for a file): what ``compress`` writes for this k."""
    method: str | None = None
    """``kmeans``, ``minibatch``, ``mediancut`` or ``octree`` (None for a file)."""
    engine: str | None = None
    """The k-means engine of a ``kmeans`` or ``minibatch`` row (None otherwise)."""
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
    dpi: tuple[float, float] | None = None,
    optimize: int | None = None,
    keep_palette: bool = False,
    engine: str | None = None,
) -> CompareRow:
    started = time.perf_counter()
    data, _ = encode(
        result,
        "PNG",
        icc_profile=icc_profile,
        dpi=dpi,
        optimize=optimize,
        keep_palette=keep_palette,
    )
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
        png=data,
        method=method,
        engine=engine,
        image=image,
        result=result,
    )


def _fit_methods(
    methods: Sequence[str], options: QuantizeOptions, batch_size: int | None
) -> dict[str, QuantizeOptions]:
    """The options of each k-means method asked for: ``kmeans`` with the options' engine,
    ``minibatch`` with the ``minibatch`` engine; ``batch_size`` goes to every minibatch fit."""
    runs = {}
    for method in methods:
        if method == "kmeans":
            runs[method] = options
        elif method == "minibatch":
            if "kmeans" in methods and options.engine == "minibatch":
                raise OptionsError(
                    "the kmeans rows already use the minibatch engine ({} minibatch): "
                    "ask for one of the two methods",
                    "engine",
                )
            runs[method] = dataclasses.replace(options, engine="minibatch", batch_size=None)
    if batch_size is not None:
        if not any(o.engine == "minibatch" for o in runs.values()):
            raise OptionsError(
                "{} is a setting of the minibatch engine ({} minibatch, or the minibatch method)",
                "batch_size",
                "engine",
            )
        runs = {
            m: dataclasses.replace(o, batch_size=batch_size) if o.engine == "minibatch" else o
            for m, o in runs.items()
        }
    return runs


class _Runs:
    """Each k-means method's result at each k, quantized once (what :func:`compare_k` and
    its target search share), dithered and encoded as ``compress`` would."""

    def __init__(
        self,
        pixels: np.ndarray,
        options: QuantizeOptions,
        icc: bytes | None,
        dpi: tuple[float, float] | None,
        optimize: int | None,
        step,
    ):
        self.pixels, self.options, self.icc, self.step = pixels, options, icc, step
        self.dpi, self.optimize = dpi, optimize
        self.prepared = prepare(pixels)  # the colour histogram, counted once for every k
        self.done: dict[tuple[str, int], tuple[QuantizeResult, float]] = {}

    def quantize(self, method: str, options: QuantizeOptions, k: int) -> QuantizeResult:
        if (method, k) not in self.done:
            self.step(f"{method}, k={k}")
            started = time.perf_counter()
            try:
                result = quantize(self.pixels, k, prepared=self.prepared, **options.fit_kwargs())
            except ValueError as exc:  # valid options: what the image leaves room for
                raise UsageError(str(exc).rstrip(".")) from None
            self.done[method, k] = (result, time.perf_counter() - started)
        return self.done[method, k][0]

    def searcher(self, method: str, options: QuantizeOptions):
        def run(px: np.ndarray, k: int) -> QuantizeResult:
            if px is not self.pixels:
                return quantize(px, k, **options.fit_kwargs())
            return self.quantize(method, options, k)

        return run

    def row(self, method: str, k: int, engine: str | None, bytes_in: int) -> CompareRow:
        """One row: kmeanscli's result (with ``engine``) or Pillow's, encoded and scored."""
        if engine is not None:
            result, seconds = self.final(method, k)
        else:
            self.step(f"{method}, k={k}")
            started = time.perf_counter()
            result = pillow_quantize(self.pixels, k, method)
            seconds = time.perf_counter() - started
        self.step(f"scoring {method}, k={k}")
        return _row(
            self.pixels,
            result,
            method=method,
            seconds=seconds,
            bytes_in=bytes_in,
            icc_profile=self.icc,
            dpi=self.dpi,
            optimize=self.optimize,
            keep_palette=self.options.palette_given,
            engine=engine,
        )

    def final(self, method: str, k: int) -> tuple[QuantizeResult, float]:
        """The result as ``compress`` writes it (dithered when asked) and its time."""
        result, seconds = self.done[method, k]
        if self.options.dithering:
            from .core.dither import floyd_steinberg

            started = time.perf_counter()
            result = floyd_steinberg(self.pixels, result, self.options.dither_strength)
            seconds += time.perf_counter() - started
        return result, seconds


def compare_k(
    src: Source,
    ks: Sequence[int] = DEFAULT_KS,
    options: QuantizeOptions | None = None,
    *,
    methods: Sequence[str] = ("kmeans",),
    batch_size: int | None = None,
    strip: bool = False,
    optimize: int | None = None,
    max_pixels: int | None = None,
    input_name: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Comparison:
    """Quantize one image at each k and measure size and quality.

    Parameters
    ----------
    src : path, bytes or binary file object
        The image; decoded once for every k and method.
    ks : sequence of int
        The k values, each 2 to 256 (may be empty when ``options.targets`` are given).
    options : QuantizeOptions, optional
        As for :func:`kmeanscli.compress_file` (its ``k`` is not used: ``ks`` are): a
        ``kmeans`` row is what ``compress`` writes at that k with these options, bytes
        included. ``targets``: the smallest k meeting all of them is searched by bisection
        (with the ``kmeans`` method) and its row is marked ``chosen``; every k the search
        measured gets a row. A fixed ``palette`` has no k to compare (an error).
    methods : sequence of str
        Any of :data:`METHODS`. Every method runs at every k of the ``kmeans`` rows.
    batch_size : int, optional
        The mini-batch size of every ``minibatch`` fit (the ``minibatch`` method's, and the
        ``kmeans`` rows' with ``options.engine="minibatch"``); an error when none runs.
    strip : bool
        Encode without the input's ICC profile and resolution (as ``compress --strip``).
    optimize : int, optional
        PNG compression level of every row, as :func:`kmeanscli.compress_file`'s.
    max_pixels : int, optional
        Decompression-bomb limit (default: Pillow's).
    input_name : str, optional
        Name of the input in the result and in messages.
    progress : callable, optional
        Called with a short description of each step.

    Returns
    -------
    Comparison
        Rows ordered by method (as in :data:`METHODS`), then k.

    Raises
    ------
    InputError, UsageError
        With a message ready for the user.
    """
    options = options or QuantizeOptions()
    step = progress or (lambda _stage: None)
    ks = sorted(set(ks))
    if any(not 2 <= k <= MAX_COLORS for k in ks):
        raise UsageError(f"each k must be 2 to {MAX_COLORS}; got {ks}")
    methods = tuple(m for m in METHODS if m in set(methods))
    if not methods:
        raise UsageError(f"give at least one method of {', '.join(METHODS)}")
    if options.palette is not None:
        raise OptionsError("{} is fixed: there is no k to compare", "palette")
    if optimize is not None and optimize not in PNG_LEVELS:
        raise OptionsError("{} must be 0, 1 or 2", "optimize")
    targets = options.targets
    if not ks and not targets:
        raise UsageError("give k values or a quality target")
    fits = _fit_methods(methods, options, batch_size)
    n_keep = len(set(options.keep_colors))
    if ks and n_keep > ks[0]:
        raise OptionsError(
            f"{n_keep} colours to keep ({{}}) do not fit in a palette of {{}} = {ks[0]}",
            "keep_colors",
            "k",
        )
    label = input_name or (os.fspath(src) if isinstance(src, (str, os.PathLike)) else "-")

    step("decode")
    decoded = decode(src, max_pixels=max_pixels, name=label)
    pixels = decoded.pixels
    height, width = pixels.shape[:2]
    notes: list[str] = []
    runs = _Runs(
        pixels,
        options,
        None if strip else decoded.icc_profile,
        None if strip else decoded.dpi,
        optimize,
        step,
    )

    found: SearchResult | None = None
    target_error: str | None = None
    search_method = "kmeans" if "kmeans" in fits else next(iter(fits), None)
    if targets and search_method is not None:
        try:
            found = search_k(
                pixels,
                targets,
                runs.searcher(search_method, fits[search_method]),
                k_min=options.min_colors,
            )
        except TargetNotMetError as exc:
            target_error = str(exc)
    all_ks = sorted(set(ks) | {k for _method, k in runs.done})  # with every k the search tried
    for method, fit_options in fits.items():
        for k in all_ks:
            runs.quantize(method, fit_options, k)

    rows: list[CompareRow] = []
    for method in methods:
        if method == "mediancut" and pixels.shape[-1] == 4:
            notes.append("Pillow's median cut does not handle transparency: no mediancut rows")
            continue
        for k in all_ks:
            engine = fits[method].engine if method in fits else None
            row = runs.row(method, k, engine, decoded.bytes_in)
            if found is not None and method == search_method and k == found.k:
                row = dataclasses.replace(row, chosen=True)
            rows.append(row)
    if all_ks and fits:
        unique = runs.done[next(iter(fits)), all_ks[0]][0].unique_colors
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
        ref, pixels = same_channels(base.pixels, pixels)
        colors = visible_colors(pixels)
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
