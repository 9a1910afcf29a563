"""Shared fixtures: synthetic images, a CLI runner that keeps stdout and stderr apart."""

from __future__ import annotations

import functools
import io
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from kmeanscli.cli.app import run

# One OpenMP thread for scikit-learn: on a busy 2-core machine its spinning worker threads
# make small fits several times slower. Results do not depend on it (test_quantize checks).
os.environ.setdefault("OMP_NUM_THREADS", "1")

ENV = {"NO_COLOR": "1", "COLUMNS": "100", "TERM": "dumb"}
"""Environment of every CLI run: no colour, a fixed width, no terminal features."""

ERROR_PREFIX = "kmeanscli: error: "


# --------------------------------------------------------------------------- images


def gradient(h: int = 30, w: int = 40, seed: int = 0) -> np.ndarray:
    """A smooth RGB gradient with noise: about a thousand colours, photo-like."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h)], -1).astype(np.int16)
    img += rng.integers(-12, 13, (h, w, 3)).astype(np.int16)
    return np.clip(img, 0, 255).astype(np.uint8)


def synthetic(
    width: int = 48,
    height: int = 32,
    *,
    colors: int | None = None,
    alpha: str | None = None,
    seed: int = 0,
) -> np.ndarray:
    """A deterministic synthetic RGB(A) image as ``uint8`` (H, W, 3|4).

    Parameters
    ----------
    width, height : int
        Size in pixels.
    colors : int, optional
        Draw every pixel from this many distinct random colours (default: a smooth gradient
        plus noise, with many distinct colours).
    alpha : {None, "binary", "partial"}
        No alpha channel; a fully transparent left third; or, in addition, a band of
        semi-transparent pixels.
    seed : int
        Random seed.
    """
    rng = np.random.default_rng(seed)
    if colors is not None:
        palette = rng.choice(1 << 24, size=colors, replace=False)
        palette = np.stack([(palette >> 16) & 255, (palette >> 8) & 255, palette & 255], axis=1)
        idx = np.arange(width * height) % colors  # every colour is used
        rng.shuffle(idx)
        rgb = palette[idx].reshape(height, width, 3).astype(np.uint8)
    else:
        y, x = np.mgrid[0:height, 0:width]
        base = np.stack(
            [255 * x / max(width - 1, 1), 255 * y / max(height - 1, 1), 128 + 0 * x], axis=2
        )
        noise = rng.normal(0, 12, size=(height, width, 3))
        rgb = np.clip(np.rint(base + noise), 0, 255).astype(np.uint8)
    if alpha is None:
        return rgb
    a = np.full((height, width, 1), 255, dtype=np.uint8)
    a[:, : width // 3] = 0
    if alpha == "partial":
        a[: height // 2, width // 3 : 2 * width // 3] = 128
        a[height // 2 :, width // 3 : 2 * width // 3] = 60
    return np.concatenate([rgb, a], axis=2)


def png_bytes(img: Image.Image | np.ndarray, fmt: str = "PNG", **save) -> bytes:
    """Encode an image (PIL or array) in memory."""
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    buf = io.BytesIO()
    img.save(buf, fmt, **save)
    return buf.getvalue()


@pytest.fixture
def make_image(tmp_path: Path) -> Callable[..., Path]:
    """Write a synthetic image to ``tmp_path``: ``make_image("a.png", width=..., ...)``.

    Accepts the arguments of :func:`synthetic`, or ``pixels=`` (array) / ``image=`` (PIL)
    to write a given image, plus ``save=dict(...)`` for Pillow's save options.
    """

    def factory(
        name: str = "in.png",
        *,
        pixels: np.ndarray | None = None,
        image: Image.Image | None = None,
        save: dict | None = None,
        **kwargs,
    ) -> Path:
        path = tmp_path / name
        if image is None:
            image = Image.fromarray(pixels if pixels is not None else synthetic(**kwargs))
        image.save(path, **(save or {}))
        return path

    return factory


def decode_png(data: bytes) -> Image.Image:
    """Decode image bytes (any format) with Pillow."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
    return img


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open and load an image file, closing the file at once."""
    with Image.open(path) as img:
        img.load()
    return img


def colours_of(img: Image.Image) -> set[tuple[int, ...]]:
    """The distinct RGBA colours of a decoded image."""
    a = np.asarray(img.convert("RGBA")).reshape(-1, 4)
    return {tuple(int(v) for v in c) for c in np.unique(a, axis=0)}


@functools.cache
def srgb_profile() -> bytes:
    """Little CMS's own sRGB ICC profile (588 bytes), made once: Little CMS stamps a profile
    with the time it was made, so two calls a second apart would give different bytes."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@functools.cache
def other_rgb_profile() -> bytes:
    """A valid RGB ICC profile that is not sRGB: sRGB with its red and green primaries
    swapped (so colours really convert differently)."""
    import struct

    data = bytearray(srgb_profile())
    (count,) = struct.unpack(">I", data[128:132])
    tags = {}
    for i in range(count):
        sig, offset, size = struct.unpack(">4sII", data[132 + 12 * i : 144 + 12 * i])
        tags[sig] = (offset, size)
    (r, rn), (g, gn) = tags[b"rXYZ"], tags[b"gXYZ"]
    red, green = bytes(data[r : r + rn]), bytes(data[g : g + gn])
    data[r : r + rn], data[g : g + gn] = green, red
    return bytes(data)


# --------------------------------------------------------------------------- the CLI


@dataclass
class CliResult:
    """What one CLI run did."""

    code: int
    stdout_bytes: bytes
    stderr: str

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode()

    @property
    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()

    def assert_one_error(self, code: int, *needles: str) -> str:
        """Exactly one stderr line, ``kmeanscli: error: ...``, containing every needle."""
        assert self.code == code, (self.code, self.stderr)
        lines = self.stderr_lines
        assert len(lines) == 1, lines
        assert lines[0].startswith(ERROR_PREFIX), lines
        assert "Traceback" not in self.stderr
        assert self.stdout_bytes == b""
        for needle in needles:
            assert needle.lower() in lines[0].lower(), (needle, lines[0])
        return lines[0]


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    """Run ``kmeanscli ARGV`` in-process through :func:`kmeanscli.cli.app.run`.

    ``cli("compress", "a.png", input=b"...", env={...})``. An exception that escapes
    ``run()`` fails the test: that would be a traceback for the user.
    """

    def invoke(*argv: str | os.PathLike[str], input: bytes | None = None, env=None) -> CliResult:
        runner = CliRunner()
        with runner.isolation(input=input, env={**ENV, **(env or {})}) as (out, err, _):
            code = run([os.fspath(a) for a in argv])
            sys.stdout.flush()
            sys.stderr.flush()
            return CliResult(int(code), out.getvalue(), err.getvalue().decode())

    return invoke


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(ENV)
    env.update(extra)
    return env


def run_module(
    args: Sequence[str], *, input: bytes | None = None, cwd: Path | None = None, **kw
) -> subprocess.CompletedProcess[bytes]:
    """``python -m kmeanscli ARGS`` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "kmeanscli", *args],
        input=input,
        capture_output=True,
        cwd=cwd,
        env=subprocess_env(),
        timeout=120,
        **kw,
    )


def files_in(folder: Path) -> set[str]:
    """Names in a folder (to check that nothing, not even a temp file, was left)."""
    return {p.name for p in folder.iterdir()}


# The fields of compress --json that issue 2 names.
JSON_FIELDS = {
    "input",
    "output",
    "width",
    "height",
    "k",
    "colors",
    "unique_colors_in",
    "bytes_in",
    "bytes_out",
    "ratio",
    "mse",
    "psnr",
    "seconds",
    "seed",
}


def photo(seed: int, shape: tuple[int, int] = (40, 48), alpha: bool = False) -> np.ndarray:
    """A small smooth image with noise: a few thousand colours."""
    h, w = shape
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack(
        [x * 255 // w, y * 255 // h, (seed * 40 + (x + y) * 255 // (w + h)) % 256], axis=-1
    )
    img = np.clip(base + rng.integers(-12, 13, base.shape), 0, 255).astype(np.uint8)
    if alpha:
        a = np.full((h, w, 1), 255, np.uint8)
        a[: h // 4] = 0
        a[h // 4 : h // 2] = 128
        img = np.concatenate([img, a], axis=-1)
    return img


def save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path
