"""The library's file-level API: what ``kmeanscli compress`` does, without the CLI."""

from __future__ import annotations

import importlib.util
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .core.quantize import ProgressCallback, QuantizeResult, quantize
from .errors import InputError, OutputError
from .imageio import atomic_write, decode, encode, format_for

__all__ = ["CompressReport", "compress_file", "default_output", "sample_image"]

Source = str | os.PathLike[str] | bytes | BinaryIO


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
    palette: np.ndarray | None = None,
) -> CompressReport:
    """Quantize an image file to ``k`` colours and write the result.

    Parameters
    ----------
    src : path, bytes or binary file object
        The input image. It is only read.
    dst : path, binary file object or None
        Where to write. A path is written atomically (temporary file, then rename); its
        extension picks the format. None means ``<stem>-k<K>.png`` beside ``src``.
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
    palette : ndarray of uint8, shape (m, 3|4), optional
        A fixed palette (e.g. from :func:`kmeanscli.core.palette.fit_palette`): every pixel
        is mapped to its nearest colour of it (:func:`kmeanscli.core.palette.remap`) instead
        of fitting k colours to this image. ``k`` is then only reported.

    Returns
    -------
    CompressReport

    Raises
    ------
    InputError, OutputError, UsageError
        With a message ready for the user.
    """
    started = time.perf_counter()
    step = progress or (lambda _stage: None)
    src_path = Path(src) if isinstance(src, (str, os.PathLike)) else None
    label = input_name or (str(src_path) if src_path is not None else "-")

    out_path: Path | None
    stream: BinaryIO | None = None
    if dst is None:
        if src_path is None:
            raise OutputError("an input that is not a file needs an explicit output")
        out_path = default_output(src_path, k)
    elif isinstance(dst, (str, os.PathLike)):
        out_path = Path(dst)
    else:
        out_path, stream = None, dst
    fmt = format.upper() if format else format_for(out_path)

    if out_path is not None:
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

    step("decode")
    decoded = decode(src, max_pixels=max_pixels, name=label)
    bytes_in = decoded.bytes_in
    pixels = decoded.pixels
    if palette is None:
        result = quantize(
            pixels, k, seed=seed, max_iter=max_iter, batch_size=batch_size, progress=step
        )
    else:
        from .core.palette import remap

        step("assign")
        try:
            result = remap(pixels, palette)
        except ValueError as exc:
            raise InputError(f"{label}: {exc}") from exc
    step("encode")
    data, notes = encode(result, fmt, icc_profile=None if strip else decoded.icc_profile)
    if out_path is not None:
        with atomic_write(out_path) as fh:
            fh.write(data)
        out_label = str(out_path)
    else:
        assert stream is not None
        stream.write(data)
        stream.flush()
        out_label = "-"
    if result.transparent_index is not None and k == 256 and result.colors == 255:
        notes.insert(0, "a palette holds 256 entries: 255 colours + the transparent one")
    if result.lossless and palette is None:
        notes.insert(0, f"the image has only {result.colors} colours: all kept exactly")
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
    )
