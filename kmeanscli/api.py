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

from .constants import DEFAULT_MAX_ITER, DEFAULT_SPACE
from .core import palette_io
from .core.color import SPACES
from .core.quantize import ProgressCallback, QuantizeResult, quantize
from .core.search import SearchResult, Target, search_k
from .errors import InputError, NotSmallerError, OutputError, TargetNotMetError, UsageError
from .imageio import FORMATS, AnimatedInputError, atomic_write, decode, encode, format_for

__all__ = [
    "DEFAULT_SPACE",
    "CompressReport",
    "PaletteReport",
    "compress_file",
    "default_output",
    "dominant_colors",
    "load_palette",
    "parse_colors",
    "sample_image",
    "write_palette",
]


PaletteSource = str | os.PathLike[str] | np.ndarray

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


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def parse_colors(colors: Sequence[str | Sequence[int]] | np.ndarray | None) -> np.ndarray | None:
    """Hex strings (``"#ff8000"``) or (r, g, b) triples as a uint8 (n, 3) array.

    Raises
    ------
    UsageError
        For a string that is not a hex colour or a triple outside 0..255.
    """
    if colors is None:
        return None
    if isinstance(colors, np.ndarray):
        return colors.astype(np.uint8).reshape(-1, 3)
    out = []
    for c in colors:
        if isinstance(c, str):
            try:
                out.append(palette_io.parse_hex(c))
            except ValueError as exc:
                raise UsageError(f"--keep-color: {exc}") from None
        else:
            rgb = tuple(int(v) for v in c)
            if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
                raise UsageError(f"--keep-color: {c!r} is not an (r, g, b) triple of 0..255")
            out.append(rgb)
    return np.array(out, dtype=np.uint8).reshape(-1, 3) if out else None


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


def _palette_bytes(path: str | os.PathLike[str], result: QuantizeResult) -> bytes:
    fmt = palette_io.format_of(path)
    visible = [i for i in range(len(result.palette)) if i != result.transparent_index]
    colors = result.palette[visible, :3]
    if fmt == "png":
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(palette_io.swatch_strip(colors)).save(buf, "PNG", optimize=True)
        return buf.getvalue()
    return palette_io.dumps(colors, fmt, counts=result.counts[visible])


def write_palette(path: str | os.PathLike[str], result: QuantizeResult) -> None:
    """Write the visible palette of ``result`` to ``path`` (format from the extension),
    atomically. ``.json`` carries each colour's pixel count and share.
    """
    data = _palette_bytes(path, result)
    with atomic_write(path) as fh:
        fh.write(data)


def _check_new_file(path: Path, what: str, force: bool) -> None:
    if path.is_dir():
        raise OutputError(f"{path}: is a directory")
    if path.exists() and not force:
        raise OutputError(f"{path}: already exists (use --force to overwrite)")
    folder = path.parent
    if not folder.is_dir():
        raise OutputError(f"{path}: folder {folder} for the {what} does not exist")


def compress_file(
    src: Source,
    dst: str | os.PathLike[str] | BinaryIO | None = None,
    k: int = 16,
    *,
    seed: int = 0,
    max_iter: int = DEFAULT_MAX_ITER,
    force: bool = False,
    strip: bool = False,
    max_pixels: int | None = None,
    format: str | None = None,
    input_name: str | None = None,
    space: str = DEFAULT_SPACE,
    dither: str = "none",
    dither_strength: float = 1.0,
    keep_colors: Sequence[str | Sequence[int]] | np.ndarray | None = None,
    palette: PaletteSource | None = None,
    palette_out: str | os.PathLike[str] | None = None,
    restarts: int = 1,
    progress: ProgressCallback | None = None,
    targets: Sequence[Target] = (),
    skip_if_larger: bool = False,
    default_dir: str | os.PathLike[str] | None = None,
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
    seed, max_iter
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
    space : {"rgb", "oklab", "lab"}
        Colour space of the clustering and of the nearest-colour mapping (see
        :func:`kmeanscli.quantize`).
    dither : {"none", "fs"}
        ``"fs"``: Floyd–Steinberg error diffusion onto the palette (see
        :mod:`kmeanscli.core.dither`).
    dither_strength : float
        0 to 1, the share of the error that is diffused with ``dither="fs"``.
    keep_colors : hex strings, (r, g, b) triples or a uint8 (n, 3) array, optional
        Colours locked into the fitted palette.
    palette : path or uint8 array (m, 3), optional
        A fixed palette (file: .gpl .json .txt .act, or an image whose colours are taken):
        no k-means, every pixel goes to its nearest palette colour; ``k`` is ignored.
    palette_out : path, optional
        Also write the output palette there (.gpl .json .txt .act .png).
    restarts : int, optional
        k-means++ starts, the best palette kept (default: 3 for k <= 8, else 1; see
        :func:`kmeanscli.quantize`).
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

    if src_path is not None:  # input errors first, before deriving an output from the name
        if src_path.is_dir():
            raise InputError(f"{label}: is a directory, not an image file")
        if not src_path.exists():
            raise InputError(f"{label}: no such file")

    # the default output's extension: the format's when one is given
    ext = _EXTENSIONS.get(format.upper(), ".png") if format else ".png"
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
    if space not in SPACES:
        raise UsageError(f"unknown colour space {space!r}; use one of {', '.join(SPACES)}")
    if dither not in ("none", "fs"):
        raise UsageError(f"unknown dither {dither!r}; use none or fs")
    if not 0.0 <= dither_strength <= 1.0:
        raise UsageError(f"dither strength must be from 0 to 1; got {dither_strength}")
    keep = parse_colors(keep_colors)
    if palette is not None and targets:
        raise UsageError("--palette and quality targets do not go together (the palette is fixed)")
    if palette is not None and keep is not None:
        raise UsageError(
            "--palette and --keep-color do not go together (a given palette is used as is)"
        )
    pal_out_path = Path(palette_out) if palette_out is not None else None
    if pal_out_path is not None:
        palette_io.format_of(pal_out_path)
        if src_path is not None and _same_file(src_path, pal_out_path):
            raise OutputError(f"{pal_out_path}: is the input file; refusing to overwrite it")
        _check_new_file(pal_out_path, "palette", force)
        if out_path is not None and _same_file(out_path, pal_out_path):
            raise UsageError(f"{pal_out_path}: the palette and the image cannot be the same file")

    if out_path is not None:
        _check_output(out_path, src_path, force)

    fixed: np.ndarray | None = None
    palette_label: str | None = None
    if isinstance(palette, np.ndarray):
        fixed, palette_label = palette, "(array)"
    elif palette is not None:
        fixed, palette_label = load_palette(palette), os.fspath(palette)

    step("decode")
    if not isinstance(src, (str, os.PathLike, bytes)):
        src = src.read()  # a stream is read once; an animation needs its bytes again
    animation = None
    try:
        decoded = decode(src, max_pixels=max_pixels, name=label)
        bytes_in, pixels, icc = decoded.bytes_in, decoded.pixels, decoded.icc_profile
    except AnimatedInputError as exc:
        from .animation import check_animation_output, decode_animation

        check_animation_output(fmt, label, exc.n_frames)
        animation = decode_animation(exc.data, max_pixels=max_pixels, name=label)
        bytes_in, pixels, icc = animation.bytes_in, animation.pixels, animation.icc_profile
    notes: list[str] = []
    found: SearchResult | None = None
    if fixed is not None:
        from .core.remap import map_to_palette

        step("assign")
        try:
            result = map_to_palette(pixels, fixed, space=space)
        except ValueError as exc:
            raise UsageError(f"{palette_label}: {exc}") from None
        if pixels.shape[-1] == 4 and bool(((pixels[..., 3] > 0) & (pixels[..., 3] < 255)).any()):
            notes.append("a given palette is opaque: semi-transparent pixels were made opaque")
    else:
        run = functools.partial(
            quantize,
            seed=seed,
            max_iter=max_iter,
            space=space,
            keep=keep,
            restarts=restarts,
            progress=step,
        )
        try:
            if targets:
                try:
                    found = search_k(pixels, targets, run)
                except TargetNotMetError as exc:
                    raise TargetNotMetError(f"{label}: {exc}; nothing written") from None
                result, k = found.result, found.k
                if deferred:
                    out_path = default_output(base, k, ext)
                    _check_output(out_path, src_path, force)
            else:
                result = run(pixels, k)
        except ValueError as exc:
            if keep is not None and "keep" in str(exc):
                raise UsageError(f"--keep-color: {exc}") from None
            raise
    if dither == "fs" and dither_strength > 0:
        from .core.dither import floyd_steinberg

        step("dither")
        if animation is None:
            result = floyd_steinberg(pixels, result, dither_strength)
        else:
            from .animation import join_frames, split_frames

            parts = split_frames(result, len(animation.frames))
            result = join_frames(
                [
                    floyd_steinberg(f, r, dither_strength)
                    for f, r in zip(animation.frames, parts, strict=True)
                ]
            )
    step("encode")
    if animation is None:
        data, enc_notes = encode(result, fmt, icc_profile=None if strip else icc)
    else:
        from .animation import encode_animation, split_frames

        data, enc_notes = encode_animation(
            split_frames(result, len(animation.frames)),
            fmt,
            durations=animation.durations,
            loop=animation.loop,
            icc_profile=None if strip else icc,
        )
    notes.extend(enc_notes)
    if skip_if_larger and len(data) >= bytes_in:
        raise NotSmallerError(
            f"{label}: the output would be {len(data):,} bytes, not smaller than the input's "
            f"{bytes_in:,}; nothing written"
        )
    pal_data = _palette_bytes(pal_out_path, result) if pal_out_path is not None else None
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
    if pal_out_path is not None and pal_data is not None:
        with atomic_write(pal_out_path) as fh:
            fh.write(pal_data)
    if result.transparent_index is not None and k == 256 and result.colors == 255:
        notes.insert(0, "a palette holds 256 entries: 255 colours + the transparent one")
    if result.lossless and fixed is None:
        if result.colors == 0:
            notes.insert(0, "the image is fully transparent: kept exactly")
        else:
            plural = "colour" if result.colors == 1 else "colours"
            notes.insert(0, f"the image has only {result.colors} {plural}: all kept exactly")
    height, width = pixels.shape[:2]
    if animation is not None:
        height //= len(animation.frames)
    return CompressReport(
        input=label,
        output=out_label,
        format=fmt,
        width=width,
        height=height,
        k=k if fixed is None else result.k,
        colors=result.colors,
        unique_colors_in=result.unique_colors,
        bytes_in=bytes_in,
        bytes_out=len(data),
        mse=result.mse,
        seconds=time.perf_counter() - started,
        seed=seed,
        lossless=result.lossless,
        transparent=result.transparent_index is not None or pixels.shape[-1] == 4,
        space=space,
        dither=dither if dither_strength > 0 else "none",
        dither_strength=float(dither_strength) if dither == "fs" else 0.0,
        palette_in=palette_label,
        palette_out=str(pal_out_path) if pal_out_path is not None else None,
        frames=1 if animation is None else len(animation.frames),
        warnings=notes,
        result=result,
        original=pixels,
        search=found,
    )


@dataclass(frozen=True, eq=False)
class PaletteReport:
    """The dominant colours of an image, most used first; :meth:`to_dict` gives ``--json``."""

    input: str
    width: int
    height: int
    k: int
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
    k: int = 6,
    *,
    seed: int = 0,
    space: str = DEFAULT_SPACE,
    max_pixels: int | None = None,
    input_name: str | None = None,
    restarts: int = 1,
    progress: ProgressCallback | None = None,
) -> PaletteReport:
    """The ``k`` dominant colours of an image (k-means, as :func:`compress_file` fits them),
    sorted by their share of the visible pixels, most used first.

    Raises
    ------
    InputError, UsageError
        With a message ready for the user.
    """
    step = progress or (lambda _stage: None)
    if space not in SPACES:
        raise UsageError(f"unknown colour space {space!r}; use one of {', '.join(SPACES)}")
    label = input_name or (os.fspath(src) if isinstance(src, (str, os.PathLike)) else "-")
    step("decode")
    try:
        pixels = decode(src, max_pixels=max_pixels, name=label).pixels
    except AnimatedInputError as exc:  # the colours of all frames together
        from .animation import decode_animation

        pixels = decode_animation(exc.data, max_pixels=max_pixels, name=label).pixels
    result = quantize(pixels, k, seed=seed, space=space, restarts=restarts, progress=step)
    visible = [i for i in range(len(result.palette)) if i != result.transparent_index]
    counts = result.counts[visible]
    order = np.lexsort((np.arange(len(visible)), -counts))
    keep = order[counts[order] > 0]
    height, width = pixels.shape[:2]
    return PaletteReport(
        input=label,
        width=width,
        height=height,
        k=k,
        space=space,
        seed=seed,
        colors=result.palette[visible][keep, :3],
        pixels=counts[keep].astype(np.int64),
        result=result,
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
