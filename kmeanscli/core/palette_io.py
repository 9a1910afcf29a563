"""Palette files: GIMP ``.gpl``, ``.json``, ``.txt`` (hex per line), Adobe ``.act`` and PNG
swatch strips.

Pure functions: bytes in, colours out (:func:`loads`) and colours in, bytes or pixels out
(:func:`dumps`, :func:`swatch_strip`). Reading and writing files is the caller's job. A
palette is a ``uint8`` array of shape (m, 3), 1 <= m <= 256, in file order.

Malformed files raise :class:`~kmeanscli.errors.InputError` with a one-line message that
names the file (and the line, for text formats); unknown extensions raise
:class:`~kmeanscli.errors.UsageError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import PurePath

import numpy as np

from ..errors import InputError, UsageError

__all__ = [
    "MAX_ENTRIES",
    "PALETTE_FORMATS",
    "dumps",
    "format_of",
    "image_colors",
    "loads",
    "parse_hex",
    "swatch_strip",
    "to_hex",
]

MAX_ENTRIES = 256
PALETTE_FORMATS: dict[str, str] = {
    ".gpl": "gpl",
    ".json": "json",
    ".txt": "txt",
    ".act": "act",
    ".png": "png",
}
"""Palette formats by file extension (``png`` is a swatch strip; as input, any image)."""

SWATCH = 32  # side of one swatch in a PNG strip, pixels
_HEX = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")


def format_of(path: str | PurePath, *, images: Sequence[str] = ()) -> str:
    """The palette format for ``path``'s extension; ``"image"`` for one of ``images``.

    Raises
    ------
    UsageError
        For any other extension.
    """
    ext = PurePath(path).suffix.lower()
    if ext in PALETTE_FORMATS:
        return PALETTE_FORMATS[ext]
    if ext in images:
        return "image"
    known = ", ".join([*PALETTE_FORMATS, *(e for e in images if e not in PALETTE_FORMATS)])
    raise UsageError(f"{path}: unknown palette extension {ext or '(none)'!r}; use one of {known}")


def parse_hex(text: str) -> tuple[int, int, int]:
    """``"#ff8000"``, ``"ff8000"`` or ``"#f80"`` as an (r, g, b) tuple.

    Raises
    ------
    ValueError
        For anything else, with a message that quotes ``text``.
    """
    m = _HEX.fullmatch(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a hex colour like #ff8000")
    digits = m.group(1)
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def to_hex(rgb: Sequence[int] | np.ndarray) -> str:
    """``(255, 128, 0)`` -> ``"#ff8000"``."""
    r, g, b = (int(v) for v in rgb[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def _finish(colors: list[tuple[int, int, int]], name: str) -> np.ndarray:
    if not colors:
        raise InputError(f"{name}: the palette has no colours")
    if len(colors) > MAX_ENTRIES:
        raise InputError(f"{name}: the palette has {len(colors)} colours, more than {MAX_ENTRIES}")
    return np.array(colors, dtype=np.uint8).reshape(-1, 3)


def _text(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: not a text file (not UTF-8)") from exc


def _load_gpl(data: bytes, name: str) -> np.ndarray:
    lines = _text(data, name).splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None or lines[first].strip() != "GIMP Palette":
        raise InputError(f"{name}: not a GIMP palette (the first line must be 'GIMP Palette')")
    colors: list[tuple[int, int, int]] = []
    for number, raw in enumerate(lines[first + 1 :], start=first + 2):
        line = raw.strip()
        if not line or line.startswith("#") or re.match(r"(Name|Columns)\s*:", line):
            continue
        parts = line.split(None, 3)
        try:
            rgb = tuple(int(v) for v in parts[:3])
        except ValueError:
            rgb = ()
        if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
            raise InputError(
                f"{name}: line {number}: expected 'R G B [name]' with values 0-255, "
                f"got {line[:40]!r}"
            )
        colors.append(rgb)  # type: ignore[arg-type]
    return _finish(colors, name)


def _load_txt(data: bytes, name: str) -> np.ndarray:
    colors = []
    for number, raw in enumerate(_text(data, name).splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith((";", "//")):
            continue
        try:
            colors.append(parse_hex(line))
        except ValueError as exc:
            raise InputError(f"{name}: line {number}: {exc}") from None
    return _finish(colors, name)


def _json_color(item: object, where: str, name: str) -> tuple[int, int, int]:
    try:
        if isinstance(item, str):
            return parse_hex(item)
        if isinstance(item, dict) and isinstance(item.get("hex"), str):
            return parse_hex(item["hex"])
        rgb = item.get("rgb") if isinstance(item, dict) else item
        if (
            isinstance(rgb, list)
            and len(rgb) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in rgb)
        ):
            return rgb[0], rgb[1], rgb[2]
    except ValueError as exc:
        raise InputError(f"{name}: {where}: {exc}") from None
    raise InputError(
        f"{name}: {where}: expected a hex string, [r, g, b] with values 0-255, or an object "
        "with 'hex' or 'rgb'"
    )


def _load_json(data: bytes, name: str) -> np.ndarray:
    try:
        doc = json.loads(_text(data, name))
    except json.JSONDecodeError as exc:
        raise InputError(f"{name}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    items = doc.get("colors") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise InputError(f"{name}: expected a list of colours or an object with a 'colors' list")
    colors = [_json_color(item, f"colour {i + 1}", name) for i, item in enumerate(items)]
    return _finish(colors, name)


def _load_act(data: bytes, name: str) -> np.ndarray:
    if len(data) not in (768, 772):
        raise InputError(
            f"{name}: not an Adobe colour table (768 or 772 bytes expected, got {len(data)})"
        )
    table = np.frombuffer(data[:768], dtype=np.uint8).reshape(256, 3)
    count = 256
    if len(data) == 772:
        count = int.from_bytes(data[768:770], "big")
        if not 1 <= count <= 256:
            raise InputError(f"{name}: Adobe colour table says it holds {count} colours")
    return table[:count].copy()


def loads(data: bytes, fmt: str, *, name: str = "palette") -> np.ndarray:
    """Read a palette file's bytes (``fmt``: gpl, json, txt or act).

    Returns
    -------
    ndarray of uint8, shape (m, 3)
        The colours in file order, 1 <= m <= 256.

    Raises
    ------
    InputError
        Malformed, empty or with more than 256 colours; the message names ``name``.
    """
    if not data:
        raise InputError(f"{name}: empty file, no colours")
    loaders = {"gpl": _load_gpl, "txt": _load_txt, "json": _load_json, "act": _load_act}
    if fmt not in loaders:
        raise ValueError(f"cannot parse palette format {fmt!r}; use one of {', '.join(loaders)}.")
    return loaders[fmt](data, name)


def image_colors(pixels: np.ndarray, *, name: str = "palette") -> np.ndarray:
    """The distinct colours of an image, in order of first appearance (rows top to bottom).

    Fully transparent pixels are ignored; alpha is dropped. A swatch strip written by
    :func:`swatch_strip` reads back as its palette, in order.

    Raises
    ------
    InputError
        When the image has no visible pixel or more than 256 colours.
    """
    flat = pixels.reshape(-1, pixels.shape[-1])
    if flat.shape[1] == 4:
        flat = flat[flat[:, 3] > 0]
    rgb = np.ascontiguousarray(flat[:, :3])
    if len(rgb) == 0:
        raise InputError(f"{name}: the image has no visible pixels, so no colours")
    codes = (rgb[:, 0].astype(np.uint32) << 16) | (rgb[:, 1].astype(np.uint32) << 8) | rgb[:, 2]
    uniq, first = np.unique(codes, return_index=True)
    if len(uniq) > MAX_ENTRIES:
        raise InputError(
            f"{name}: the image has {len(uniq):,} colours, more than {MAX_ENTRIES} for a palette"
        )
    return rgb[np.sort(first)].copy()


def swatch_strip(palette: np.ndarray, size: int = SWATCH) -> np.ndarray:
    """A strip of ``size`` x ``size`` swatches, left to right in palette order (H, W, 3)."""
    pal = _check(palette)
    strip = np.repeat(pal[None, :, :], size, axis=1)  # (1, m*size, 3)
    return np.ascontiguousarray(np.repeat(strip, size, axis=0))


def _check(palette: np.ndarray) -> np.ndarray:
    pal = np.asarray(palette)
    if pal.dtype != np.uint8 or pal.ndim != 2 or pal.shape[1] < 3:
        raise ValueError("a palette is a uint8 array of shape (m, 3).")
    if not 1 <= len(pal) <= MAX_ENTRIES:
        raise ValueError(f"a palette holds 1 to {MAX_ENTRIES} colours; got {len(pal)}.")
    return pal[:, :3]


def dumps(
    palette: np.ndarray,
    fmt: str,
    *,
    counts: np.ndarray | None = None,
    name: str = "kmeanscli",
) -> bytes:
    """A palette file's bytes (``fmt``: gpl, json, txt or act; PNG: see :func:`swatch_strip`).

    ``counts`` (pixels per colour) adds the pixel count and share to ``.json`` and the share
    as a comment to ``.gpl``.
    """
    pal = _check(palette)
    shares = None
    if counts is not None:
        counts = np.asarray(counts, dtype=np.int64)
        total = int(counts.sum())
        shares = counts / total if total else np.zeros(len(counts))
    if fmt == "gpl":
        lines = ["GIMP Palette", f"Name: {name}", f"Columns: {min(len(pal), 16)}", "#"]
        for i, (r, g, b) in enumerate(pal.tolist()):
            label = to_hex((r, g, b))
            if shares is not None:
                label += f" {100 * shares[i]:.2f}%"
            lines.append(f"{r:3d} {g:3d} {b:3d}\t{label}")
        return ("\n".join(lines) + "\n").encode()
    if fmt == "txt":
        return ("".join(to_hex(c) + "\n" for c in pal.tolist())).encode()
    if fmt == "json":
        entries = []
        for i, c in enumerate(pal.tolist()):
            entry: dict[str, object] = {"hex": to_hex(c), "rgb": c}
            if shares is not None and counts is not None:
                entry["pixels"] = int(counts[i])
                entry["share"] = round(float(shares[i]), 6)
            entries.append(entry)
        body = ",\n".join("    " + json.dumps(e) for e in entries)
        return f'{{\n  "name": {json.dumps(name)},\n  "colors": [\n{body}\n  ]\n}}\n'.encode()
    if fmt == "act":
        table = np.zeros((256, 3), dtype=np.uint8)
        table[: len(pal)] = pal
        return table.tobytes() + len(pal).to_bytes(2, "big") + b"\xff\xff"
    raise ValueError(f"cannot write palette format {fmt!r}; use gpl, json, txt or act.")
