"""The library's file-level API: what ``kmeanscli compress`` does, without the CLI."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .constants import (
    DEFAULT_DOMINANT_K,
    DEFAULT_ENGINE,
    DEFAULT_SPACE,
    MAX_COLORS,
    PNG_LEVELS,
)
from .core import palette_io
from .core.metrics import mse, same_channels, visible_colors
from .core.quantize import ProgressCallback, QuantizeResult, prepare, quantize
from .core.remap import map_to_palette
from .core.search import SearchResult, search_k
from .errors import InputError, NotSmallerError, OutputError, TargetNotMetError, UsageError
from .imageio import (
    FORMATS,
    AnimatedInputError,
    atomic_write,
    check_writable_folder,
    decode,
    encode,
    format_for,
    png_palette_order,
    same_file,
)
from .options import OptionsError, QuantizeOptions

__all__ = [
    "CompressReport",
    "PaletteReport",
    "compress_file",
    "default_output",
    "dominant_colors",
    "load_palette",
    "palette_bytes",
    "sample_image",
    "write_palette",
]


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
    engine: str = DEFAULT_ENGINE
    space: str = DEFAULT_SPACE
    dither: str = "none"
    dither_strength: float = 0.0
    palette_in: str | None = None
    palette_out: str | None = None
    frames: int = 1
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
            "engine": self.engine,
            "space": self.space,
            "dither": self.dither,
            "dither_strength": self.dither_strength,
            "palette_in": self.palette_in,
            "palette_out": self.palette_out,
            "frames": self.frames,
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


def load_palette(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a palette file (.gpl .json .txt .act) or take the colours of an image.

    Returns the colours in file order (images: order of first appearance), uint8 (m, 3).

    Raises
    ------
    UsageError
        Unknown extension.
    InputError
        Missing, unreadable or malformed file, no colours or more than 256.
    """
    name = os.fspath(path)
    fmt = palette_io.format_of(name, images=tuple(FORMATS))
    if fmt in ("png", "image"):
        return palette_io.image_colors(decode(path, name=name).pixels, name=name)
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{name}: is a directory, not a palette file")
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from exc
    return palette_io.loads(data, fmt, name=name)


def palette_bytes(
    path: str | os.PathLike[str], colors: np.ndarray, counts: np.ndarray | None = None
) -> bytes:
    """The bytes of a palette file for ``colors`` (uint8 (m, 3)), in the format of ``path``'s
    extension (.gpl .json .txt .act, or .png for a swatch strip). ``.json`` carries each
    colour's pixel count and share when ``counts`` are given."""
    fmt = palette_io.format_of(path)
    if fmt == "png":
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(palette_io.swatch_strip(colors)).save(buf, "PNG", optimize=True)
        return buf.getvalue()
    return palette_io.dumps(colors, fmt, counts=counts)


def _palette_bytes(path: str | os.PathLike[str], result: QuantizeResult) -> bytes:
    visible = [i for i in range(len(result.palette)) if i != result.transparent_index]
    return palette_bytes(path, result.palette[visible, :3], result.counts[visible])


def write_palette(path: str | os.PathLike[str], result: QuantizeResult) -> None:
    """Write the visible palette of ``result`` to ``path`` (format from the extension),
    atomically. ``.json`` carries each colour's pixel count and share.
    """
    data = _palette_bytes(path, result)
    with atomic_write(path) as fh:
        fh.write(data)


def _options(options: QuantizeOptions | int | None) -> QuantizeOptions:
    if options is None:
        return QuantizeOptions()
    if isinstance(options, QuantizeOptions):
        return options
    return QuantizeOptions(k=options)


class _Compression:
    """:func:`compress_file`'s stages, run in order by it:
    read -> prepare -> quantize -> encode -> write -> measure -> report.

    The constructor settles the paths and refuses bad ones before any work is done.
    """

    def __init__(
        self,
        src: Source,
        dst: str | os.PathLike[str] | BinaryIO | None,
        options: QuantizeOptions,
        *,
        force: bool,
        strip: bool,
        optimize: int | None,
        max_pixels: int | None,
        format: str | None,
        input_name: str | None,
        palette_out: str | os.PathLike[str] | None,
        skip_if_larger: bool,
        default_dir: str | os.PathLike[str] | None,
        progress: ProgressCallback | None,
    ) -> None:
        self.started = time.perf_counter()
        self.options = options
        self.force, self.strip, self.max_pixels = force, strip, max_pixels
        if optimize is not None and optimize not in PNG_LEVELS:
            raise OptionsError("{} must be 0, 1 or 2", "optimize")
        self.optimize = optimize
        self.skip_if_larger = skip_if_larger
        self.step = progress or (lambda _stage: None)
        self.src = src
        self.src_path = Path(src) if isinstance(src, (str, os.PathLike)) else None
        self.label = input_name or (str(self.src_path) if self.src_path is not None else "-")
        self._check_input()
        # the default output's extension: the format's when one is given
        self.ext = _EXTENSIONS.get(format.upper(), ".png") if format else ".png"
        self.stream: BinaryIO | None = None
        self.base: Path | None = None  # the default output, before its -k<K> suffix
        if dst is None:
            if self.src_path is None:
                raise OutputError("an input that is not a file needs an explicit output")
            self.base = (
                self.src_path if default_dir is None else Path(default_dir) / self.src_path.name
            )
            # with targets the name waits for the k they choose
            self.out_path = (
                None if options.targets else default_output(self.base, options.colors, self.ext)
            )
        elif isinstance(dst, (str, os.PathLike)):
            self.out_path = Path(dst)
        else:
            self.out_path, self.stream = None, dst
        self.fmt = format.upper() if format else format_for(self.out_path)
        self.palette_out = Path(palette_out) if palette_out is not None else None
        self._check_palette_out()
        if self.out_path is not None:
            _check_output(self.out_path, self.src_path, force)
        self.notes: list[str] = []
        self.found: SearchResult | None = None
        self.fixed: np.ndarray | None = None
        self.palette_label: str | None = None

    def _check_input(self) -> None:
        if self.src_path is not None:  # input errors first, before deriving an output name
            if self.src_path.is_dir():
                raise InputError(f"{self.label}: is a directory, not an image file")
            if not self.src_path.exists():
                raise InputError(f"{self.label}: no such file")
            if not self.src_path.is_file():  # opening a FIFO would block
                raise InputError(
                    f"{self.label}: not a regular file (a FIFO, socket or device); not read"
                )

    def _check_palette_out(self) -> None:
        path = self.palette_out
        if path is None:
            return
        palette_io.format_of(path)
        _check_output(path, self.src_path, self.force, "palette")
        if self.out_path is not None and same_file(self.out_path, path):
            raise UsageError(f"{path}: the palette and the image cannot be the same file")

    def read(self) -> None:
        """Load the fixed palette, if any, then decode the image (a still or an animation)."""
        palette = self.options.palette
        if isinstance(palette, str):
            self.fixed, self.palette_label = load_palette(palette), palette
        elif palette is not None:
            self.fixed, self.palette_label = np.array(palette, dtype=np.uint8), "(array)"
        self.step("decode")
        src = self.src
        if not isinstance(src, (str, os.PathLike, bytes)):
            src = src.read()  # a stream is read once; an animation needs its bytes again
        self.animation = None
        self.dpi: tuple[float, float] | None = None
        try:
            decoded = decode(src, max_pixels=self.max_pixels, name=self.label)
            self.bytes_in, self.pixels, self.icc = (
                decoded.bytes_in,
                decoded.pixels,
                decoded.icc_profile,
            )
            self.dpi = decoded.dpi
        except AnimatedInputError as exc:
            from .animation import check_animation_output, decode_animation

            check_animation_output(self.fmt, self.label, exc.n_frames)
            anim = decode_animation(exc.data, max_pixels=self.max_pixels, name=self.label)
            self.animation = anim
            self.bytes_in, self.pixels, self.icc = anim.bytes_in, anim.pixels, anim.icc_profile

    def prepare(self) -> None:
        """Count the image's colours once (every k the targets try reuses the count)."""
        if self.fixed is None:
            self.step("histogram")
        self.prepared = None if self.fixed is not None else prepare(self.pixels)

    def _quantize(self, pixels: np.ndarray, k: int) -> QuantizeResult:
        try:
            return quantize(
                pixels,
                k,
                prepared=self.prepared if pixels is self.pixels else None,
                progress=self.step,
                **self.options.fit_kwargs(),
            )
        except ValueError as exc:  # the options are valid: what the image leaves room for
            raise UsageError(f"{self.label}: {str(exc).rstrip('.')}") from None

    def quantize(self) -> None:
        """Map onto the fixed palette, or fit one (at the k the targets choose), then dither."""
        options = self.options
        if self.fixed is not None:
            self.step("assign")
            try:
                self.result = map_to_palette(self.pixels, self.fixed, space=options.space)
            except ValueError as exc:
                raise UsageError(f"{self.palette_label}: {exc}") from None
            alpha = self.pixels[..., 3] if self.pixels.shape[-1] == 4 else None
            if alpha is not None and bool(((alpha > 0) & (alpha < 255)).any()):
                self.notes.append(
                    "a given palette is opaque: semi-transparent pixels were made opaque"
                )
        elif options.targets:
            try:
                self.found = search_k(
                    self.pixels, options.targets, self._quantize, k_min=options.min_colors
                )
            except TargetNotMetError as exc:
                raise TargetNotMetError(f"{self.label}: {exc}; nothing written") from None
            self.result = self.found.result
            if self.out_path is None and self.stream is None:
                assert self.base is not None
                self.out_path = default_output(self.base, self.found.k, self.ext)
                _check_output(self.out_path, self.src_path, self.force)
        else:
            self.result = self._quantize(self.pixels, options.colors)
        if options.dithering:
            self._dither()

    def _dither(self) -> None:
        from .core.dither import floyd_steinberg

        self.step("dither")
        strength = self.options.dither_strength
        if self.animation is None:
            self.result = floyd_steinberg(self.pixels, self.result, strength)
            return
        from .animation import join_frames, split_frames

        parts = split_frames(self.result, len(self.animation.frames))
        frames = self.animation.frames
        self.result = join_frames(
            [floyd_steinberg(f, r, strength) for f, r in zip(frames, parts, strict=True)]
        )

    def encode(self) -> None:
        """The output file's bytes (and the palette file's)."""
        self.step("encode")
        icc = None if self.strip else self.icc
        if self.animation is None:
            self.data, notes = encode(
                self.result,
                self.fmt,
                icc_profile=icc,
                optimize=self.optimize,
                keep_palette=self.options.palette_given,
                dpi=None if self.strip else self.dpi,
            )
            if self.fmt == "PNG":  # the report follows the file's palette order
                order = png_palette_order(self.data, self.result.palette)
                if order is not None:
                    self.result = self.result.reordered(order)
        else:
            from .animation import encode_animation, split_frames

            self.data, notes = encode_animation(
                split_frames(self.result, len(self.animation.frames)),
                self.fmt,
                durations=self.animation.durations,
                loop=self.animation.loop,
                icc_profile=icc,
            )
        self.notes.extend(notes)
        self.palette_data = (
            _palette_bytes(self.palette_out, self.result) if self.palette_out is not None else None
        )

    def write(self) -> None:
        """Write the output (atomically) and the palette file; nothing when not smaller."""
        if self.skip_if_larger and len(self.data) >= self.bytes_in:
            raise NotSmallerError(
                f"{self.label}: the output would be {len(self.data):,} bytes, not smaller than "
                f"the input's {self.bytes_in:,}; nothing written"
            )
        if self.out_path is not None:
            with atomic_write(self.out_path) as fh:
                fh.write(self.data)
        else:
            assert self.stream is not None
            try:
                self.stream.write(self.data)
                self.stream.flush()
            except BrokenPipeError:
                raise  # the reader went away (`| head`): the CLI ends quietly
            except OSError as exc:
                raise OutputError(f"-: cannot write: {exc.strerror or exc}") from exc
        if self.palette_out is not None and self.palette_data is not None:
            with atomic_write(self.palette_out) as fh:
                fh.write(self.palette_data)

    def measure(self) -> None:
        """The numbers of the file written, as any reader decodes it: a palette PNG holds
        the result exactly; JPEG, GIF (no partial alpha), BMP (no alpha) and the others are
        decoded again, so the report and ``compare IN OUT`` agree on every format."""
        result = self.result
        if self.fmt == "PNG" or self.animation is not None:  # exactly the result's pixels
            used = result.counts > 0
            if result.transparent_index is not None:
                used[result.transparent_index] = False
            self.mse, self.colors = result.mse, int(used.sum())
            return
        self.step("measure")
        written = decode(self.data, max_pixels=self.max_pixels, name=self.label).pixels
        original, written = same_channels(self.pixels, written)
        self.mse = mse(original, written)
        self.colors = visible_colors(written)

    def _summary_notes(self, k: int) -> list[str]:
        result, notes = self.result, list(self.notes)
        if result.lossless and self.fixed is None:
            n = result.unique_colors - (result.transparent_index is not None)  # visible
            if n == 0:
                notes.insert(0, "the image is fully transparent: kept exactly")
            else:
                plural = "colour" if n == 1 else "colours"
                notes.insert(0, f"the image has only {n} {plural}: all kept exactly")
        return notes

    def report(self) -> CompressReport:
        """What was done, for people and for ``--json``."""
        options, result = self.options, self.result
        k = result.k if self.fixed is not None else (self.found.k if self.found else options.colors)
        height, width = self.pixels.shape[:2]
        if self.animation is not None:
            height //= len(self.animation.frames)
        return CompressReport(
            input=self.label,
            output=str(self.out_path) if self.out_path is not None else "-",
            format=self.fmt,
            width=width,
            height=height,
            k=k,
            colors=self.colors,
            unique_colors_in=result.unique_colors,
            bytes_in=self.bytes_in,
            bytes_out=len(self.data),
            mse=self.mse,
            seconds=time.perf_counter() - self.started,
            seed=options.seed,
            lossless=result.lossless and self.mse == 0,
            transparent=result.transparent_index is not None or self.pixels.shape[-1] == 4,
            engine=options.engine,
            space=options.space,
            dither=options.dither if options.dithering else "none",
            dither_strength=float(options.dither_strength) if options.dithering else 0.0,
            palette_in=self.palette_label,
            palette_out=str(self.palette_out) if self.palette_out is not None else None,
            frames=1 if self.animation is None else len(self.animation.frames),
            warnings=self._summary_notes(k),
            result=result,
            original=self.pixels,
            search=self.found,
        )


def compress_file(
    src: Source,
    dst: str | os.PathLike[str] | BinaryIO | None = None,
    options: QuantizeOptions | int | None = None,
    *,
    force: bool = False,
    strip: bool = False,
    optimize: int | None = None,
    max_pixels: int | None = None,
    format: str | None = None,
    input_name: str | None = None,
    palette_out: str | os.PathLike[str] | None = None,
    skip_if_larger: bool = False,
    default_dir: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
) -> CompressReport:
    """Quantize an image file and write the result.

    Parameters
    ----------
    src : path, bytes or binary file object
        The input image. It is only read.
    dst : path, binary file object or None
        Where to write. A path is written atomically (temporary file, then rename); its
        extension picks the format. None means ``<stem>-k<K>.png`` beside ``src``.
    options : QuantizeOptions or int, optional
        How to quantize (an int is ``QuantizeOptions(k=...)``; default: 16 colours).
    force : bool
        Overwrite an existing output file.
    strip : bool
        Drop the ICC profile and the resolution (dpi) instead of copying them.
    optimize : int, optional
        PNG compression level, 0 (zlib, fastest), 1 (libdeflate) or 2 (libdeflate and row
        filters, smallest); default: 1 below 4 MP, 0 from there
        (see :func:`kmeanscli.imageio.png_level`). Other formats ignore it.
    max_pixels : int, optional
        Decompression-bomb limit (default: Pillow's).
    format : str, optional
        Output format name (``"PNG"`` ...) for a file object; default from the extension.
    input_name : str, optional
        Name of the input in the report and in messages (default: its path).
    palette_out : path, optional
        Also write the output palette there (.gpl .json .txt .act .png).
    skip_if_larger : bool
        Write nothing and raise :class:`~kmeanscli.errors.NotSmallerError` when the output
        would not be smaller than the input.
    default_dir : path, optional
        Folder of the default output (default: the input's folder).
    progress : callable, optional
        Called with the name of each stage as it starts.

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
    job = _Compression(
        src,
        dst,
        _options(options),
        force=force,
        strip=strip,
        optimize=optimize,
        max_pixels=max_pixels,
        format=format,
        input_name=input_name,
        palette_out=palette_out,
        skip_if_larger=skip_if_larger,
        default_dir=default_dir,
        progress=progress,
    )
    job.read()
    job.prepare()
    job.quantize()
    job.encode()
    job.write()
    job.measure()
    return job.report()


@dataclass(frozen=True, eq=False)
class PaletteReport:
    """The dominant colours of an image, most used first; :meth:`to_dict` gives ``--json``."""

    input: str
    width: int
    height: int
    k: int
    engine: str
    space: str
    seed: int
    colors: np.ndarray  # uint8 (m, 3), sorted by share, most used first
    pixels: np.ndarray  # int64 (m,), pixels per colour
    result: QuantizeResult | None = field(default=None, repr=False)

    @property
    def shares(self) -> np.ndarray:
        """Share of the visible pixels per colour (sums to 1)."""
        total = int(self.pixels.sum())
        return self.pixels / total if total else np.zeros(len(self.pixels))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "input": self.input,
            "width": self.width,
            "height": self.height,
            "k": self.k,
            "engine": self.engine,
            "space": self.space,
            "seed": self.seed,
            "colors": [
                {
                    "hex": palette_io.to_hex(c),
                    "rgb": [int(v) for v in c],
                    "pixels": int(n),
                    "share": round(float(s), 6),
                }
                for c, n, s in zip(self.colors, self.pixels, self.shares, strict=True)
            ],
        }


def dominant_colors(
    src: Source,
    options: QuantizeOptions | int | None = None,
    *,
    max_pixels: int | None = None,
    input_name: str | None = None,
    progress: ProgressCallback | None = None,
) -> PaletteReport:
    """The dominant colours of an image (k-means, fitted as :func:`compress_file` fits
    them), sorted by their share of the visible pixels, most used first.

    ``options`` as for :func:`compress_file`, but ``k`` defaults to 6 here and a fixed
    ``palette`` or quality ``targets`` have no use (an error).

    Raises
    ------
    InputError, UsageError
        With a message ready for the user.
    """
    options = _options(options)
    if options.palette is not None:
        raise OptionsError("{} is fixed: there are no dominant colours to find", "palette")
    if options.targets:
        raise OptionsError("{}: dominant colours are not chosen by a quality target", "targets")
    if options.k is None:  # checks the locked colours against this k too
        options = dataclasses.replace(options, k=DEFAULT_DOMINANT_K)
    k = options.colors
    step = progress or (lambda _stage: None)
    label = input_name or (os.fspath(src) if isinstance(src, (str, os.PathLike)) else "-")
    step("decode")
    frames = 1
    try:
        pixels = decode(src, max_pixels=max_pixels, name=label).pixels
    except AnimatedInputError as exc:  # the colours of all frames together
        from .animation import decode_animation

        animation = decode_animation(exc.data, max_pixels=max_pixels, name=label)
        pixels, frames = animation.pixels, len(animation.frames)
    # k colours are shown: a transparent entry, if any, comes on top (at most 256 entries)
    entries = min(k + 1, MAX_COLORS) if _has_transparent(pixels) else k
    try:
        result = quantize(pixels, entries, progress=step, **options.fit_kwargs())
    except ValueError as exc:  # the options are valid: what the image leaves room for
        raise UsageError(f"{label}: {str(exc).rstrip('.')}") from None
    visible = [i for i in range(len(result.palette)) if i != result.transparent_index]
    counts = result.counts[visible]
    order = np.lexsort((np.arange(len(visible)), -counts))
    keep = order[counts[order] > 0]
    height, width = pixels.shape[0] // frames, pixels.shape[1]
    return PaletteReport(
        input=label,
        width=width,
        height=height,
        k=k,
        engine=options.engine,
        space=options.space,
        seed=options.seed,
        colors=result.palette[visible][keep, :3],
        pixels=counts[keep].astype(np.int64),
        result=result,
    )


def _has_transparent(pixels: np.ndarray) -> bool:
    return pixels.shape[-1] == 4 and bool((pixels[..., 3] == 0).any())


def _check_output(
    out_path: Path, src_path: Path | None, force: bool, what: str | None = None
) -> None:
    """Refuse to write over the input, a folder, or an existing file without ``force``."""
    if src_path is not None and same_file(src_path, out_path):
        raise OutputError(f"{out_path}: is the input file; refusing to overwrite it")
    if out_path.is_dir():
        raise OutputError(f"{out_path}: is a directory")
    if out_path.exists() and not force:
        raise OutputError(f"{out_path}: already exists (use --force to overwrite)")
    folder = out_path.parent
    for_what = f" for the {what}" if what else ""
    if not folder.exists():
        raise OutputError(f"{out_path}: folder {folder}{for_what} does not exist")
    if not folder.is_dir():
        raise OutputError(f"{out_path}: {folder} is not a folder")
    check_writable_folder(out_path)
