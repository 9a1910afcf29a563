"""PNG compression levels (``--optimize``): the same pixels at every level, smaller files
at higher levels, a palette the user gave kept as given, a report that follows the file's
palette, and bytes that do not depend on the number of threads."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import png_bytes, subprocess_env, synthetic
from PIL import Image, ImageDraw

from kmeanscli import QuantizeOptions, compress_file
from kmeanscli.compare import compare_k
from kmeanscli.options import OptionsError


def _card() -> np.ndarray:
    """A drawn test card: colour bars, a grey ramp, fine stripes and text."""
    img = Image.new("RGB", (192, 128), "white")
    draw = ImageDraw.Draw(img)
    bars = [(255, 255, 0), (0, 255, 255), (0, 255, 0), (255, 0, 255), (255, 0, 0), (0, 0, 255)]
    for i, colour in enumerate(bars):
        draw.rectangle([i * 32, 0, i * 32 + 31, 63], fill=colour)
    for x in range(192):
        draw.line([x, 64, x, 95], fill=(x * 255 // 191,) * 3)
    for x in range(0, 192, 3):
        draw.line([x, 96, x, 127], fill=(0, 0, 0))
    draw.text((8, 100), "kmeanscli 0123", fill=(200, 30, 30))
    return np.asarray(img)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("levels")
    out = {}
    for name, pixels in (
        ("card", _card()),
        ("photo", synthetic(160, 120, seed=5)),
        ("alpha", synthetic(120, 90, alpha="partial", seed=6)),
    ):
        out[name] = folder / f"{name}.png"
        out[name].write_bytes(png_bytes(pixels))
    return out


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGBA"))


def _plte(path: Path) -> tuple[str, np.ndarray]:
    with Image.open(path) as img:
        mode = img.mode
        rgb = np.asarray(img.getpalette(), dtype=np.uint8).reshape(-1, 3)
    return mode, rgb


@pytest.mark.parametrize("name", ["card", "photo", "alpha"])
@pytest.mark.parametrize("k", [2, 16, 256])
def test_every_level_writes_the_same_pixels_and_higher_levels_are_no_larger(
    inputs: dict[str, Path], tmp_path: Path, name: str, k: int
) -> None:
    sizes, pixels = {}, {}
    for level in (0, 1, 2):
        out = tmp_path / f"{level}.png"
        report = compress_file(inputs[name], out, QuantizeOptions(k=k), optimize=level)
        with Image.open(out) as img:
            assert img.mode == "P"  # always a palette PNG
        assert report.bytes_out == out.stat().st_size
        sizes[level], pixels[level] = report.bytes_out, _pixels(out)
    assert np.array_equal(pixels[0], pixels[1])
    assert np.array_equal(pixels[0], pixels[2])
    assert sizes[2] <= sizes[1]  # level 2 tries level 1's filter among others


@pytest.mark.parametrize("name", ["card", "alpha"])
def test_webp_is_lossless_at_every_level_and_smallest_at_two(
    inputs: dict[str, Path], tmp_path: Path, name: str
) -> None:
    """-O sets lossless WebP's effort: the pixels of the PNG at every level, and level 2
    (libwebp's slowest method) no larger than level 0."""
    compress_file(inputs[name], tmp_path / "ref.png", 16)
    want = _pixels(tmp_path / "ref.png")
    sizes = {}
    for level in (0, 1, 2):
        report = compress_file(inputs[name], tmp_path / f"{level}.webp", 16, optimize=level)
        assert np.array_equal(_pixels(tmp_path / f"{level}.webp"), want)
        sizes[level] = report.bytes_out
    assert sizes[2] <= sizes[0]
    assert len(set(sizes.values())) > 1  # the level is used


def test_level_one_is_smaller_than_zlib_on_a_graphic(inputs: dict[str, Path], tmp_path) -> None:
    """The default below 4 MP is level 1."""
    zlib = compress_file(inputs["card"], tmp_path / "0.png", 16, optimize=0)
    default = compress_file(inputs["card"], tmp_path / "d.png", 16)
    compress_file(inputs["card"], tmp_path / "1.png", 16, optimize=1)
    assert default.bytes_out < zlib.bytes_out
    assert (tmp_path / "d.png").read_bytes() == (tmp_path / "1.png").read_bytes()


def test_the_palette_file_follows_the_png(inputs: dict[str, Path], tmp_path: Path) -> None:
    """oxipng may sort the palette; the palette written beside the image is in the PNG's
    order, so index i means the same colour in both."""
    out, pal = tmp_path / "o.png", tmp_path / "o.json"
    compress_file(inputs["photo"], out, 16, palette_out=pal)
    mode, rgb = _plte(out)
    assert mode == "P"
    listed = json.loads(pal.read_text())
    colours = [entry["hex"] if isinstance(entry, dict) else entry for entry in listed["colors"]]
    assert colours == ["#{:02x}{:02x}{:02x}".format(*row) for row in rgb[: len(colours)]]


def test_a_given_palette_is_written_as_given(inputs: dict[str, Path], tmp_path: Path) -> None:
    """``--palette``: every entry, in the user's order, even unused ones."""
    given = ["#ff0000", "#000000", "#00ff00", "#0000ff", "#ffffff", "#123456"]
    palette_file = tmp_path / "p.txt"
    palette_file.write_text("\n".join(given) + "\n")
    for level in (1, 2):
        out = tmp_path / f"p{level}.png"
        compress_file(
            inputs["card"], out, QuantizeOptions(palette=str(palette_file)), optimize=level
        )
        mode, rgb = _plte(out)
        assert mode == "P"
        assert ["#{:02x}{:02x}{:02x}".format(*row) for row in rgb[: len(given)]] == given


def test_dithering_that_leaves_an_entry_unused_is_written(inputs, tmp_path: Path) -> None:
    for k in (4, 8, 16):
        out = tmp_path / f"d{k}.png"
        report = compress_file(inputs["photo"], out, QuantizeOptions(k=k, dither="fs"))
        assert report.colors == len({tuple(p) for p in _pixels(out).reshape(-1, 4)})


def test_compare_measures_the_file_compress_writes(inputs: dict[str, Path], tmp_path) -> None:
    for level in (None, 0, 2):
        out = tmp_path / "c.png"
        compress_file(inputs["alpha"], out, 16, optimize=level, force=True)
        row = compare_k(inputs["alpha"], [16], QuantizeOptions(), optimize=level).rows[0]
        assert row.png == out.read_bytes()


def test_a_bad_level_is_refused(inputs: dict[str, Path], tmp_path: Path, cli) -> None:
    with pytest.raises(OptionsError, match="optimize must be 0, 1 or 2"):
        compress_file(inputs["card"], tmp_path / "x.png", 16, optimize=3)
    assert not (tmp_path / "x.png").exists()
    result = cli("compress", inputs["card"], "-o", tmp_path / "y.png", "--optimize", "3")
    result.assert_one_error(2, "--optimize")
    assert not (tmp_path / "y.png").exists()


def _sha_of_compress(src: Path, out: Path, level: int, threads: str) -> str:
    env = subprocess_env(
        RAYON_NUM_THREADS=threads, OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads
    )
    args = [str(src), "-k", "256", "-o", str(out), "--force", "-q", "--optimize", str(level)]
    subprocess.run(
        [sys.executable, "-m", "kmeanscli", "compress", *args],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return hashlib.sha256(out.read_bytes()).hexdigest()


@pytest.mark.parametrize("level", [0, 1, 2])
def test_bytes_do_not_depend_on_the_thread_count(tmp_path: Path, level: int) -> None:
    """1.2 MP: past the size where level 0 deflates in parts over threads; oxipng's trials
    (level 2) run on as many threads as it is given."""
    pixels = np.repeat(np.repeat(synthetic(320, 240, seed=7), 4, axis=0), 4, axis=1)
    src = tmp_path / "big.png"
    src.write_bytes(png_bytes(pixels, compress_level=1))
    one = _sha_of_compress(src, tmp_path / "one.png", level, "1")
    four = _sha_of_compress(src, tmp_path / "four.png", level, "4")
    assert one == four
    with Image.open(io.BytesIO((tmp_path / "one.png").read_bytes())) as img:
        assert img.mode == "P" and img.size == (1280, 960)


@pytest.mark.parametrize("source", ["png", "jpg"])
def test_the_resolution_is_kept_unless_stripped(tmp_path: Path, cli, source: str) -> None:
    src = tmp_path / f"in.{source}"
    Image.fromarray(synthetic(60, 40, seed=8)).save(src, dpi=(300, 150))
    for level in ("0", "1", "2"):
        out = tmp_path / f"o{level}.png"
        r = cli("compress", src, "-k", "8", "-o", out, "-O", level, "-q")
        assert r.code == 0, r.stderr
        with Image.open(out) as img:
            assert [round(v) for v in img.info["dpi"]] == [300, 150]
    assert (
        compare_k(src, [8], QuantizeOptions(), optimize=1).rows[0].png
        == (tmp_path / "o1.png").read_bytes()
    )
    stripped = tmp_path / "s.png"
    assert cli("compress", src, "-k", "8", "-o", stripped, "--strip", "-q").code == 0
    with Image.open(stripped) as img:
        assert "dpi" not in img.info
    assert b"pHYs" not in stripped.read_bytes()
