"""Reading and writing images with Pillow.

Decoding turns any still image Pillow reads into an 8-bit RGB or RGBA array (EXIF orientation
applied, ICC profile kept aside). Encoding writes a quantized result in the format of the
output's extension. Files are written atomically: a temporary file in the target folder,
renamed over the target only once it is complete.
"""

from __future__ import annotations

import errno
import fnmatch
import io
import os
import re
import struct
import tempfile
import warnings
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .constants import AUTO_PNG_LEVEL_MAX_PIXELS, PNG_LEVELS
from .core.quantize import QuantizeResult
from .errors import InputError, OutputError, UsageError

__all__ = [
    "ANIMATED_FORMATS",
    "FORMATS",
    "AnimatedInputError",
    "DecodedImage",
    "atomic_write",
    "cannot_create_in",
    "check_writable_folder",
    "decode",
    "decode_error_reason",
    "default_max_pixels",
    "encode",
    "format_for",
    "is_srgb_profile",
    "png_level",
    "remove_stale_temporaries",
    "rgb_profile",
    "same_file",
]

FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".gif": "GIF",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
}
"""Output formats by file extension."""


ANIMATED_FORMATS = ("GIF", "PNG", "WEBP")
"""Formats whose animations compress reads and writes (animated GIF, APNG, animated WebP)."""


class AnimatedInputError(InputError):
    """Raised by :func:`decode` for an animation; carries its bytes for
    :func:`kmeanscli.animation.decode_animation`."""

    def __init__(self, message: str, *, data: bytes, n_frames: int) -> None:
        super().__init__(message)
        self.data = data
        self.n_frames = n_frames


@dataclass(frozen=True, eq=False)
class DecodedImage:
    """An image decoded to 8 bits per channel.

    ``pixels`` is ``uint8`` of shape (H, W, 3) or (H, W, 4); it has an alpha channel only
    when some pixel is not fully opaque. ``icc_profile`` is an RGB ICC profile to carry over
    (None when absent or not RGB). ``mode`` and ``format`` describe the source; ``bytes_in``
    is its size in bytes. ``dpi`` is the resolution (x, y) the file states, if any.
    """

    pixels: np.ndarray
    icc_profile: bytes | None
    mode: str
    format: str | None
    bytes_in: int
    dpi: tuple[float, float] | None = None


def _dpi(value: object) -> tuple[float, float] | None:
    """A resolution worth copying: two positive finite numbers, else None."""
    try:
        x, y = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    return (x, y) if 0 < x < 1e6 and 0 < y < 1e6 else None


def default_max_pixels() -> int:
    """Pillow's decompression-bomb limit, in pixels."""
    from PIL import Image

    return int(Image.MAX_IMAGE_PIXELS or 0) or 89_478_485


def _to_uint8(a: np.ndarray, mode: str) -> np.ndarray:
    if mode == "F":
        a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
        if a.size and a.max() <= 1.0 and a.min() >= 0.0:
            a = a * 255.0  # float images in 0..1
        return np.clip(np.rint(a), 0, 255).astype(np.uint8)
    # 16- and 32-bit integer images: treated as 16-bit samples
    a = np.clip(a.astype(np.int64), 0, 65535)
    return ((a * 255 + 32767) // 65535).astype(np.uint8)


def _pixels_of(img) -> np.ndarray:  # img: PIL.Image.Image
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        gray = _to_uint8(np.asarray(img), mode)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "P":
        transparent = "transparency" in img.info or img.palette.mode == "RGBA"
        img = img.convert("RGBA" if transparent else "RGB")
    elif mode in ("LA", "La", "PA", "RGBa", "RGBA") or (
        mode in ("L", "1", "RGB") and "transparency" in img.info
    ):
        img = img.convert("RGBA")
    elif mode != "RGB":
        img = img.convert("RGB")  # 1, L, CMYK, YCbCr, LAB, HSV ...
    a = np.asarray(img)
    if a.shape[-1] == 4 and bool((a[..., 3] == 255).all()):
        a = a[..., :3]
    return np.ascontiguousarray(a)


def rgb_profile(profile: bytes | None) -> bytes | None:
    """Keep an ICC profile only if it describes RGB data (bytes 16-20 of its header)."""
    if profile and len(profile) >= 20 and profile[16:20] == b"RGB ":
        return profile
    return None


def decode(
    source: str | os.PathLike[str] | bytes | BinaryIO,
    *,
    max_pixels: int | None = None,
    name: str | None = None,
) -> DecodedImage:
    """Decode a still image to 8-bit RGB/RGBA.

    Parameters
    ----------
    source : path, bytes or binary file object
    max_pixels : int, optional
        Refuse images with more pixels than this (default: Pillow's decompression-bomb
        limit, about 89 megapixels).
    name : str, optional
        How to call the source in error messages (default: the path, or "input").

    Raises
    ------
    InputError
        Missing, unreadable, empty, corrupt, truncated, multi-frame or too large input.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    label = name or (os.fspath(source) if isinstance(source, (str, os.PathLike)) else "input")
    limit = default_max_pixels() if max_pixels is None else int(max_pixels)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            raise InputError(f"{label}: is a directory, not an image file")
        if not path.exists():
            raise InputError(f"{label}: no such file")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"{label}: cannot read: {exc.strerror or exc}") from exc
    elif isinstance(source, bytes):
        data = source
    else:
        data = source.read()
    if not data:
        raise InputError(f"{label}: empty file, not an image")

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        old_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None  # we check the limit ourselves, exactly
        try:
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > limit:
                raise InputError(
                    f"{label}: {width}x{height} is {width * height:,} pixels, over the limit "
                    f"of {limit:,} (a decompression bomb?); raise it with --max-pixels"
                )
            if getattr(img, "n_frames", 1) > 1:
                if img.format in ANIMATED_FORMATS:
                    raise AnimatedInputError(
                        f"{label}: is animated ({img.n_frames} frames); only compress handles "
                        "animations",
                        data=data,
                        n_frames=img.n_frames,
                    )
                raise InputError(
                    f"{label}: has {img.n_frames} frames; multi-page images are not supported"
                )
            img.load()
            fmt = img.format
            icc = rgb_profile(img.info.get("icc_profile"))
            dpi = _dpi(img.info.get("dpi"))
            size = img.size
            img = ImageOps.exif_transpose(img)
            if dpi is not None and img.size != size:  # turned a quarter: so is the resolution
                dpi = (dpi[1], dpi[0])
            mode = img.mode
            pixels = _pixels_of(img)
        except UnidentifiedImageError as exc:
            raise InputError(f"{label}: not an image Pillow can read") from exc
        except InputError:
            raise
        except Image.DecompressionBombError as exc:
            raise InputError(f"{label}: {exc}") from exc
        except (
            OSError,
            SyntaxError,
            ValueError,
            EOFError,
            IndexError,
            TypeError,
            KeyError,
            struct.error,
        ) as exc:
            why = decode_error_reason(exc)
            raise InputError(f"{label}: corrupt or truncated image ({why})") from exc
        except MemoryError as exc:
            raise InputError(f"{label}: too large to decode in memory") from exc
        finally:
            Image.MAX_IMAGE_PIXELS = old_limit
    if pixels.size == 0:
        raise InputError(f"{label}: the image has no pixels")
    return DecodedImage(
        pixels=pixels, icc_profile=icc, mode=mode, format=fmt, bytes_in=len(data), dpi=dpi
    )


def decode_error_reason(exc: BaseException) -> str:
    text = str(exc).strip().rstrip(".") or type(exc).__name__
    return text.splitlines()[0]


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name the same file (hard and symbolic links included)."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def format_for(path: str | os.PathLike[str] | None) -> str:
    """The output format name for a path's extension (PNG when ``path`` is None)."""
    if path is None:
        return "PNG"
    ext = Path(path).suffix.lower()
    try:
        return FORMATS[ext]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise UsageError(
            f"{os.fspath(path)}: unknown output extension {ext or '(none)'!r}; use one of {known}"
        ) from None


def _on_white(rgba: np.ndarray) -> np.ndarray:
    """RGBA colours composited onto a white background, as RGB."""
    f = rgba.astype(np.float32)
    a = f[..., 3:4] / 255.0
    return np.rint(f[..., :3] * a + 255.0 * (1.0 - a)).astype(np.uint8)


def _palette_image(result: QuantizeResult, palette: np.ndarray | None = None):  # -> mode P
    from PIL import Image

    height, width = result.indices.shape
    img = Image.frombytes("P", (width, height), np.ascontiguousarray(result.indices).tobytes())
    rgb = result.palette[:, :3] if palette is None else palette
    img.putpalette(np.ascontiguousarray(rgb).tobytes(), rawmode="RGB")
    return img


def is_srgb_profile(profile: bytes) -> bool:
    """Whether an RGB ICC profile describes sRGB: every colour of a 6-level grid converts
    from it to Little CMS's own sRGB within one 8-bit step. Such a profile is written as
    PNG's 13-byte ``sRGB`` chunk, or left out of formats that assume sRGB anyway."""
    from PIL import Image, ImageCms

    levels = np.linspace(0, 255, 6).astype(np.uint8)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(1, -1, 3)
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        transform = ImageCms.buildTransform(source, ImageCms.createProfile("sRGB"), "RGB", "RGB")
        out = np.asarray(ImageCms.applyTransform(Image.fromarray(grid), transform))
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return False  # unreadable or not an RGB profile: keep it as it is
    return int(np.abs(out.astype(np.int16) - grid).max()) <= 1


def encode(
    result: QuantizeResult,
    fmt: str,
    *,
    icc_profile: bytes | None = None,
    optimize: int | None = None,
    keep_palette: bool = False,
    dpi: tuple[float, float] | None = None,
) -> tuple[bytes, list[str]]:
    """Encode a quantized image; returns the file's bytes and warnings for the user.

    PNG, GIF, BMP and TIFF get a palette image (PNG keeps partial alpha through tRNS; GIF
    keeps full transparency only; BMP has none, so an image with alpha is flattened onto white;
    TIFF with alpha is written as 32-bit RGBA). WebP is lossless. JPEG is written at quality 95
    and warned about, as it brings colours back.

    ``optimize`` is the PNG compression level (see :func:`png_level`; None: by image size),
    and sets WebP's lossless effort too (:data:`_WEBP_EFFORT`).
    At levels 1 and 2 oxipng may sort the palette and drop unused entries
    (:func:`png_palette_order` tells how), unless ``keep_palette``: a palette the user gave
    is written as given. ``dpi`` is written where the format has a place for it (PNG's
    ``pHYs``, JPEG, TIFF, BMP).
    """
    from PIL import Image

    notes: list[str] = []
    pal = result.palette
    has_alpha = pal.shape[1] == 4
    partial = has_alpha and bool(((pal[:, 3] > 0) & (pal[:, 3] < 255)).any())
    buf = io.BytesIO()
    kwargs: dict[str, object] = {}
    srgb = bool(icc_profile) and is_srgb_profile(icc_profile)
    if icc_profile and not srgb and fmt in ("PNG", "WEBP", "TIFF", "JPEG"):
        kwargs["icc_profile"] = icc_profile
    if srgb and fmt == "PNG":  # 13 bytes instead of the profile (3 kB for a common one)
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add(b"sRGB", b"\x00")  # rendering intent: perceptual
        kwargs["pnginfo"] = info
    if dpi is not None and fmt in ("PNG", "JPEG", "TIFF", "BMP"):
        kwargs["dpi"] = dpi

    if fmt == "PNG":
        img = _palette_image(result)
        if has_alpha:
            kwargs["transparency"] = bytes(pal[:, 3].tolist())
        level = png_level(optimize, img.width * img.height)
        if level:
            buf = io.BytesIO(_oxipng(img, kwargs, level, sort_palette=not keep_palette))
        else:
            buf = _smallest_png(img, kwargs)
    elif fmt == "GIF":
        img = _palette_image(result)
        if result.transparent_index is not None:
            kwargs["transparency"] = result.transparent_index
        if partial:
            notes.append(
                "GIF has no partial transparency: semi-transparent colours are written opaque"
            )
        img.save(buf, "GIF", optimize=False, **kwargs)
    elif fmt == "WEBP":
        rgb = result.image()
        method, quality = _WEBP_EFFORT[png_level(optimize, rgb.shape[0] * rgb.shape[1])]
        Image.fromarray(rgb).save(
            buf, "WEBP", lossless=True, quality=quality, method=method, **kwargs
        )
    elif fmt == "BMP":
        # Pillow writes no BMP alpha that readers honour: flatten the palette onto white.
        if has_alpha:
            img = _palette_image(result, _on_white(pal))
            notes.append("BMP has no transparency: flattened onto white")
        else:
            img = _palette_image(result)
        img.save(buf, fmt, **kwargs)
    elif fmt == "TIFF":
        if has_alpha:
            Image.fromarray(result.image()).save(buf, fmt, **kwargs)
            notes.append("TIFF palettes hold no alpha: written as 32-bit RGBA")
        else:
            img = _palette_image(result)
            img.save(buf, fmt, **kwargs)
    elif fmt == "JPEG":
        img = result.image()
        if has_alpha:
            img = _on_white(img)
            notes.append("JPEG has no transparency: flattened onto white")
        Image.fromarray(img).save(buf, "JPEG", quality=95, **kwargs)
        notes.append(
            "JPEG is lossy and brings back colours beyond the palette; use .png for "
            "real palette compression"
        )
    else:
        raise UsageError(f"unsupported output format {fmt!r}")
    return buf.getvalue(), notes


def png_level(optimize: int | None, pixels: int) -> int:
    """The PNG compression level used for an image of ``pixels`` pixels.

    0: zlib through Pillow (level 6 or the RLE strategy, whichever is smaller; large images
    deflated over two threads). 1: oxipng with libdeflate level 9, no row filter, the palette
    in the order (of oxipng's few) that a fast trial finds smallest. 2: libdeflate's strongest
    level (12), oxipng's palette orders and the row filters None, Sub, Entropy and Bigrams,
    each compressed in full, keeping the smallest file. README's "PNG compression" has the sizes
    and times measured.
    ``None`` picks 1 below :data:`AUTO_PNG_LEVEL_MAX_PIXELS` and 0 from there,
    where level 1 gains nothing for its time (a 12 MP photo: 0.6-0.7 s against 0.2-0.3 s on
    two threads, and no smaller: libdeflate compresses one stream on one thread).
    """
    if optimize is None:
        return 1 if pixels < AUTO_PNG_LEVEL_MAX_PIXELS else 0
    if optimize not in PNG_LEVELS:
        raise ValueError(f"optimize must be one of {', '.join(map(str, PNG_LEVELS))}.")
    return optimize


def _oxipng(img, kwargs: dict[str, object], level: int, *, sort_palette: bool) -> bytes:
    """A palette PNG compressed by oxipng: Pillow writes it stored (no compression), oxipng
    recompresses it. Only lossless steps that keep a palette image: the palette may be sorted
    (``sort_palette``: also unused entries dropped) and the bit depth lowered; colour type,
    chunks and fully transparent colours are kept.
    The result does not depend on the number of threads (oxipng keeps the smallest trial, ties
    by trial order)."""
    import oxipng

    stored = io.BytesIO()
    img.save(stored, "PNG", compress_level=0, **kwargs)
    filters = [oxipng.RowFilter.NoOp]
    if level >= 2:
        filters += [oxipng.RowFilter.Sub, oxipng.RowFilter.Entropy, oxipng.RowFilter.Bigrams]
    # level 1: libdeflate 9, oxipng's palette orders judged by a fast trial: 7 % smaller than
    # zlib for 4 ms more per 0.3 MP (libdeflate 10 gained 1 % more for 15-30 ms more)
    return oxipng.optimize_from_memory(
        stored.getvalue(),
        level=2,
        force=True,
        filter=filters,
        fast_evaluation=level == 1,  # level 2: each order and filter judged by its real size
        deflate=oxipng.Deflaters.libdeflater(9 if level == 1 else 12),
        strip=oxipng.StripChunks.none(),
        optimize_alpha=False,
        palette_reduction=sort_palette,
        color_type_reduction=False,
        grayscale_reduction=False,
        scale_16=False,
    )


def png_palette_order(data: bytes, palette: np.ndarray) -> np.ndarray | None:
    """Where each entry of a PNG's palette (``PLTE`` + ``tRNS``) is in ``palette``: ``order``
    such that the file's palette is ``palette[order]``; None when it is in the same order.
    ``palette`` is RGB or RGBA (missing ``tRNS`` entries are opaque)."""
    chunks = dict(_png_chunks(data))
    rgb = np.frombuffer(chunks[b"PLTE"], dtype=np.uint8).reshape(-1, 3)
    if palette.shape[1] == 4:
        alpha = np.full(len(rgb), 255, dtype=np.uint8)
        trns = np.frombuffer(chunks.get(b"tRNS", b""), dtype=np.uint8)
        alpha[: len(trns)] = trns
        rgb = np.column_stack([rgb, alpha])
    if len(rgb) == len(palette) and np.array_equal(rgb, palette):
        return None
    where = {bytes(row): i for i, row in enumerate(np.ascontiguousarray(palette))}
    return np.array([where[bytes(row)] for row in np.ascontiguousarray(rgb)], dtype=np.intp)


_WEBP_EFFORT = {0: (2, 25), 1: (4, 25), 2: (6, 100)}
"""Lossless WebP's (method, quality) by compression level. On 18 quantized images (4 photos
and 5 graphics at k = 16 and 256), against method 6 / quality 100 (54.7 s in all):
level 0 1.073x the bytes in 0.39 s, level 1 1.048x in 0.47 s; method 5 / quality 100 gave
1.020x in 8.9 s."""

_ZLIB_RLE = 3  # zlib's Z_RLE strategy
_PNG_CANDIDATES = ((6, 0), (9, _ZLIB_RLE))  # (zlib level, strategy); 0 = Z_DEFAULT_STRATEGY
_PARALLEL_PNG_MIN_PIXELS = 1 << 20  # from here PNG data is deflated in parts, in threads
_DEFLATE_PART = 1 << 21  # bytes of image data per part
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _smallest_png(img, kwargs: dict[str, object]) -> io.BytesIO:
    """Encode a palette PNG with zlib level 6 and with the RLE strategy; keep the smaller.

    Measured on the sample photos: RLE wins for small palettes (smaller than level 9, and
    ~50x faster), level 6 for large ones; level 9 gains under 0.5 % at many times the cost.
    Ties keep level 6. From ``_PARALLEL_PNG_MIN_PIXELS`` see :func:`_parallel_png`.
    """
    if img.width * img.height >= _PARALLEL_PNG_MIN_PIXELS:
        return _parallel_png(img, kwargs)
    bufs = []
    for level, strategy in _PNG_CANDIDATES:
        buf = io.BytesIO()
        img.save(buf, "PNG", compress_level=level, compress_type=strategy, **kwargs)
        bufs.append(buf)
    return min(bufs, key=lambda buf: buf.tell())


def _parallel_png(img, kwargs: dict[str, object]) -> io.BytesIO:
    """:func:`_smallest_png` for large images, with the compression spread over threads.

    Pillow writes the PNG uncompressed (its rows and filters do not depend on the level);
    the image data is then deflated in fixed 2 MiB parts, each primed with the 32 KiB before
    it, as pigz does, for both candidates at once (zlib releases the GIL). The parts are
    fixed, so the bytes do not depend on the number of threads. 12 MP at k = 16: 0.54 s ->
    about 0.3 s on 2 cores.
    """
    from concurrent.futures import ThreadPoolExecutor

    stored = io.BytesIO()
    img.save(stored, "PNG", compress_level=0, **kwargs)
    chunks = _png_chunks(stored.getvalue())
    raw = zlib.decompress(b"".join(data for kind, data in chunks if kind == b"IDAT"))
    starts = range(0, len(raw), _DEFLATE_PART)
    jobs = [(level, strategy, start) for level, strategy in _PNG_CANDIDATES for start in starts]

    def deflate(job: tuple[int, int, int]) -> bytes:
        level, strategy, start = job
        part = raw[start : start + _DEFLATE_PART]
        first, last = start == 0, start + _DEFLATE_PART >= len(raw)
        wbits = 15 if first else -15  # the first part carries the zlib header
        if first:
            comp = zlib.compressobj(level, zlib.DEFLATED, wbits, 9, strategy)
        else:
            window = raw[max(start - 32768, 0) : start]
            comp = zlib.compressobj(level, zlib.DEFLATED, wbits, 9, strategy, window)
        out = comp.compress(part) + comp.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)
        if last and not first:  # a raw stream has no trailer: add the zlib checksum
            out += zlib.adler32(raw).to_bytes(4, "big")
        return out

    with ThreadPoolExecutor(max_workers=2) as pool:
        parts = list(pool.map(deflate, jobs))
    n = len(starts)
    candidates = [b"".join(parts[i * n : (i + 1) * n]) for i in range(len(_PNG_CANDIDATES))]
    best = min(candidates, key=len)
    out = io.BytesIO()
    out.write(_PNG_SIGNATURE)
    wrote_idat = False
    for kind, data in chunks:
        if kind == b"IDAT":
            if not wrote_idat:
                _write_chunk(out, b"IDAT", best)
                wrote_idat = True
            continue
        _write_chunk(out, kind, data)
    return out


def _png_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, data) chunks of a PNG that Pillow wrote."""
    chunks, pos = [], len(_PNG_SIGNATURE)
    while pos < len(png):
        size = int.from_bytes(png[pos : pos + 4], "big")
        chunks.append((png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + size]))
        pos += 12 + size
    return chunks


def _write_chunk(out: BinaryIO, kind: bytes, data: bytes) -> None:
    out.write(len(data).to_bytes(4, "big"))
    out.write(kind)
    out.write(data)
    out.write(zlib.crc32(data, zlib.crc32(kind)).to_bytes(4, "big"))


def _lock(fd: int, *, wait: bool = True) -> bool:
    """An exclusive ``flock`` on ``fd`` (where the system has it); False when another
    process holds it and ``wait`` is False."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no locks, and no stale file is ever taken for unused
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except OSError:
        return False
    return True


def remove_stale_temporaries(folder: str | os.PathLike[str], names: Iterable[str]) -> int:
    """Remove :func:`atomic_write`'s temporary files of the outputs ``names`` (file names,
    or ``fnmatch`` patterns with ``*``) in ``folder`` that no process is writing.

    A writer holds a lock on its temporary file until it renames it; a writer that was
    killed (even by SIGKILL) holds none, so its leftover is removed. Returns how many files
    were removed.
    """
    names = list(names)
    pattern = re.compile(r"\.(.+)\.[a-z0-9_]{8}\.tmp")
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None or not any(fnmatch.fnmatchcase(match.group(1), n) for n in names):
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            if _lock(fd, wait=False):
                os.unlink(entry.path)
                removed += 1
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def _cannot_create(exc: OSError) -> str:
    """Why a file could not be created in an existing folder, in words for users."""
    if exc.errno in (errno.ENOENT, errno.EPERM, errno.EINVAL):  # /proc says ENOENT
        return "the folder does not take new files"
    if exc.errno == errno.EACCES:
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return str(exc.strerror or exc)


def cannot_create_in(folder: str | os.PathLike[str]) -> str | None:
    """None if a file can be created in the existing ``folder`` (tried with an empty
    temporary file, removed at once), else why not, in words for users."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".kmeanscli-", suffix=".tmp", dir=folder)
    except OSError as exc:
        return _cannot_create(exc)
    os.close(fd)
    with suppress(OSError):
        os.unlink(tmp)
    return None


def _existing_folder(target: Path) -> Path:
    """The folder ``target`` goes in; OutputError if it is missing or not a folder."""
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.exists():
        raise OutputError(f"{target}: folder {folder} does not exist")
    if not folder.is_dir():
        raise OutputError(f"{target}: {folder} is not a folder")
    return folder


def check_writable_folder(target: str | os.PathLike[str]) -> None:
    """Refuse, before any work, a ``target`` whose folder is missing or takes no new files.

    Creates and removes an empty temporary file there: permission bits say nothing for root,
    nor for /proc, /sys or a read-only mount, where only creating a file tells.

    Raises
    ------
    OutputError
    """
    target = Path(target)
    folder = _existing_folder(target)
    reason = cannot_create_in(folder)
    if reason is not None:
        raise OutputError(f"{target}: cannot write in {folder}: {reason}")


@contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path``; rename it over ``path`` only on success.

    Raises
    ------
    OutputError
        The folder is missing or not writable, or writing fails (disk full, I/O error ...);
        the temporary file is removed and an existing ``path`` is left as it was.
    """
    target = Path(path)
    folder = _existing_folder(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(f"{target}: cannot write in {folder}: {_cannot_create(exc)}") from exc
    _lock(fd)  # "in use" for remove_stale_temporaries, until closed (or the writer dies)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except OSError as exc:  # disk full, quota, I/O error ...: a user error, not a traceback
        with suppress(OSError):
            os.unlink(tmp)
        raise OutputError(f"{target}: cannot write: {exc.strerror or exc}") from exc
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
