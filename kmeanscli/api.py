"""The library's file-level API: what ``kmeanscli compress`` does, without the CLI."""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .core.quantize import ProgressCallback, QuantizeResult, quantize
from .core.search import SearchResult, Target, search_k
from .errors import InputError, NotSmallerError, OutputError, TargetNotMetError, UsageError
from .imageio import FORMATS, atomic_write, decode, encode, format_for

__all__ = ["CompressReport", "compress_file", "default_output", "sample_image"]

Source = str | os.PathLike[str] | bytes | BinaryIO

_EXTENSIONS = {fmt: ext for ext, fmt in reversed(FORMATS.items())}  # PNG -> .png, JPEG -> .jpg


@dataclass(frozen=True, eq=False)
class CompressReport:
    """What one compression did; :meth:`to_dict` gives the ``--json`` fields."""

    input: str
    output: str
    format: str
    width: int
    height: int
    k: int
    colors: int
    unique_colors_in: int
    bytes_in: int
    bytes_out: int
    mse: float
    seconds: float
    seed: int
    lossless: bool
    transparent: bool
    warnings: list[str] = field(default_factory=list)
    result: QuantizeResult | None = field(default=None, repr=False)
    original: np.ndarray | None = field(default=None, repr=False)
    search: SearchResult | None = field(default=None, repr=False)
    """How k was chosen, when quality targets were given."""

    @property
    def ratio(self) -> float:
        """Output size as a fraction of the input size (0.25 = four times smaller)."""
        return self.bytes_out / self.bytes_in if self.bytes_in else math.nan

    @property
    def psnr(self) -> float:
        """PSNR in dB; ``inf`` when the output is identical to the input."""
        return math.inf if self.mse <= 0 else 10.0 * math.log10(255.0**2 / self.mse)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (an infinite PSNR becomes ``None``)."""
        return {
            "input": self.input,
            "output": self.output,
            "format": self.format.lower(),
            "width": self.width,
            "height": self.height,
            "k": self.k,
            "colors": self.colors,
            "unique_colors_in": self.unique_colors_in,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "ratio": round(self.ratio, 6),
            "mse": round(self.mse, 6),
            "psnr": None if math.isinf(self.psnr) else round(self.psnr, 4),
            "seconds": round(self.seconds, 4),
            "seed": self.seed,
            "lossless": self.lossless,
            "transparent": self.transparent,
            "warnings": list(self.warnings),
        }


def sample_image() -> Path:
    """Path of the built-in sample photo (scikit-learn's ``china.jpg``).

    Found without importing scikit-learn, which is slow to import.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the sample image needs scikit-learn, which is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "images" / "china.jpg"
    if not path.is_file():
        raise InputError(f"the sample image is missing from scikit-learn: {path}")
    return path


def default_output(src: str | os.PathLike[str], k: int, ext: str = ".png") -> Path:
    """``<stem>-k<K><ext>`` beside the input."""
    p = Path(src)
    return p.with_name(f"{p.stem}-k{k}{ext}")


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def compress_file(
    src: Source,
    dst: str | os.PathLike[str] | BinaryIO | None = None,
    k: int = 16,
    *,
    seed: int = 0,
    max_iter: int = 100,
    batch_size: int = 4096,
    force: bool = False,
    strip: bool = False,
    max_pixels: int | None = None,
    format: str | None = None,
    input_name: str | None = None,
    progress: ProgressCallback | None = None,
    targets: Sequence[Target] = (),
    skip_if_larger: bool = False,
    default_dir: str | os.PathLike[str] | None = None,
    palette: np.ndarray | None = None,
) -> CompressReport:
    """Quantize an image file to ``k`` colours and write the result.

    Parameters
    ----------
    src : path, bytes or binary file object
        The input image. It is only read.
    dst : path, binary file object or None
        Where to write. A path is written atomically (temporary file, then rename); its
        extension picks the format. None means ``<stem>-k<K>.png`` beside ``src`` (with the
        extension of ``format`` when it is given).
    k : int
        Number of colours (see :func:`kmeanscli.quantize`).
    seed, max_iter, batch_size
        Passed to :func:`kmeanscli.quantize`.
    force : bool
        Overwrite an existing output file.
    strip : bool
        Drop the ICC profile instead of copying it.
    max_pixels : int, optional
        Decompression-bomb limit (default: Pillow's).
    format : str, optional
        Output format name (``"PNG"`` ...) for a file object; default from the extension.
    input_name : str, optional
        Name of the input in the report and in messages (default: its path).
    progress : callable, optional
        Called with the name of each stage as it starts.
    targets : sequence of Target, optional
        Quality targets: ``k`` is ignored and the smallest k from 2 to 256 meeting all of them
        is used, found by bisection (:func:`kmeanscli.core.search.search_k`). The default
        output is named after that k.
    skip_if_larger : bool
        Write nothing and raise :class:`~kmeanscli.errors.NotSmallerError` when the output
        would not be smaller than the input.
    default_dir : path, optional
        Folder of the default output (default: the input's folder).
    palette : ndarray of uint8, shape (m, 3|4), optional
        A fixed palette (e.g. from :func:`kmeanscli.core.palette.fit_palette`): every pixel
        is mapped to its nearest colour of it (:func:`kmeanscli.core.palette.remap`) instead
        of fitting k colours to this image. ``k`` is then only reported. Not with
        ``targets``.

    Returns
    -------
    CompressReport

    Raises
    ------
    InputError, OutputError, UsageError
        With a message ready for the user.
    TargetNotMetError
        When even 256 colours miss a target (nothing is written).
    NotSmallerError
        With ``skip_if_larger``, when the output would not be smaller (nothing is written).
    """
    started = time.perf_counter()
    step = progress or (lambda _stage: None)
    src_path = Path(src) if isinstance(src, (str, os.PathLike)) else None
    label = input_name or (str(src_path) if src_path is not None else "-")

    if palette is not None and targets:
        raise UsageError("a fixed palette cannot be combined with quality targets")
    # the default output's extension: the format's when one is given
    ext = _EXTENSIONS.get(format.upper(), ".png") if format else ".png"
    if src_path is not None:  # input errors first, before deriving an output from the name
        if src_path.is_dir():
            raise InputError(f"{label}: is a directory, not an image file")
        if not src_path.exists():
            raise InputError(f"{label}: no such file")

    out_path: Path | None
    stream: BinaryIO | None = None
    deferred = False  # the default output's name waits for the k the targets choose
    if dst is None:
        if src_path is None:
            raise OutputError("an input that is not a file needs an explicit output")
        base = src_path if default_dir is None else Path(default_dir) / src_path.name
        deferred = bool(targets)
        out_path = None if deferred else default_output(base, k, ext)
    elif isinstance(dst, (str, os.PathLike)):
        out_path = Path(dst)
    else:
        out_path, stream = None, dst
    fmt = format.upper() if format else format_for(out_path)

    if out_path is not None:
        _check_output(out_path, src_path, force)

    step("decode")
    decoded = decode(src, max_pixels=max_pixels, name=label)
    bytes_in = decoded.bytes_in
    pixels = decoded.pixels
    found: SearchResult | None = None
    if palette is not None:
        from .core.palette import remap

        step("assign")
        try:
            result = remap(pixels, palette)
        except ValueError as exc:
            raise InputError(f"{label}: {exc}") from exc
    elif targets:
        run = functools.partial(
            quantize, seed=seed, max_iter=max_iter, batch_size=batch_size, progress=step
        )
        try:
            found = search_k(pixels, targets, run)
        except TargetNotMetError as exc:
            raise TargetNotMetError(f"{label}: {exc}; nothing written") from None
        result, k = found.result, found.k
        if deferred:
            out_path = default_output(base, k, ext)
            _check_output(out_path, src_path, force)
    else:
        result = quantize(
            pixels, k, seed=seed, max_iter=max_iter, batch_size=batch_size, progress=step
        )
    step("encode")
    data, notes = encode(result, fmt, icc_profile=None if strip else decoded.icc_profile)
    if skip_if_larger and len(data) >= bytes_in:
        raise NotSmallerError(
            f"{label}: the output would be {len(data):,} bytes, not smaller than the input's "
            f"{bytes_in:,}; nothing written"
        )
    if out_path is not None:
        with atomic_write(out_path) as fh:
            fh.write(data)
        out_label = str(out_path)
    else:
        assert stream is not None
        try:
            stream.write(data)
            stream.flush()
        except BrokenPipeError:
            raise  # the reader went away (`| head`): the CLI ends quietly
        except OSError as exc:
            raise OutputError(f"-: cannot write: {exc.strerror or exc}") from exc
        out_label = "-"
    if result.transparent_index is not None and k == 256 and result.colors == 255:
        notes.insert(0, "a palette holds 256 entries: 255 colours + the transparent one")
    if result.lossless and palette is None:
        if result.colors == 0:
            notes.insert(0, "the image is fully transparent: kept exactly")
        else:
            plural = "colour" if result.colors == 1 else "colours"
            notes.insert(0, f"the image has only {result.colors} {plural}: all kept exactly")
    height, width = pixels.shape[:2]
    return CompressReport(
        input=label,
        output=out_label,
        format=fmt,
        width=width,
        height=height,
        k=k,
        colors=result.colors,
        unique_colors_in=result.unique_colors,
        bytes_in=bytes_in,
        bytes_out=len(data),
        mse=result.mse,
        seconds=time.perf_counter() - started,
        seed=seed,
        lossless=result.lossless,
        transparent=result.transparent_index is not None or pixels.shape[-1] == 4,
        warnings=notes,
        result=result,
        original=pixels,
        search=found,
    )


def _check_output(out_path: Path, src_path: Path | None, force: bool) -> None:
    if src_path is not None and _same_file(src_path, out_path):
        raise OutputError(f"{out_path}: is the input file; refusing to overwrite it")
    if out_path.is_dir():
        raise OutputError(f"{out_path}: is a directory")
    if out_path.exists() and not force:
        raise OutputError(f"{out_path}: already exists (use --force to overwrite)")
    folder = out_path.parent
    if not folder.exists():
        raise OutputError(f"{out_path}: folder {folder} does not exist")
    if not folder.is_dir():
        raise OutputError(f"{out_path}: {folder} is not a folder")
