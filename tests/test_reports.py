"""Reports tell the truth about the file written, and ``-k`` is the palette size.

``compress --json`` and ``compare IN OUT`` must give the same colours and error for the same
file, whatever its format (a JPEG brings colours back, a GIF drops partial alpha, a BMP has
no alpha). ``-k K`` writes at most K palette entries, the transparent one included, as
pngquant and ImageMagick count them.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import decode_png, png_bytes, synthetic


def _chunks(png: bytes) -> dict[bytes, bytes]:
    """The chunks of a PNG file by type (read here, not by the library)."""
    out, pos = {}, 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        out.setdefault(png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length])
        pos += 12 + length
    return out


@pytest.fixture(params=["rgb", "rgba"])
def source(request, tmp_path: Path) -> Path:
    pixels = (
        synthetic(64, 48, seed=7)
        if request.param == "rgb"
        else synthetic(64, 48, alpha="partial", seed=7)
    )
    path = tmp_path / f"{request.param}.png"
    path.write_bytes(png_bytes(pixels))
    return path


@pytest.mark.parametrize("ext", ["png", "gif", "bmp", "jpg", "webp", "tif"])
def test_compress_report_and_compare_agree_on_the_file_written(
    cli, source: Path, tmp_path: Path, ext: str
) -> None:
    out = tmp_path / f"out.{ext}"
    r = cli("compress", source, "-k", "8", "-o", out, "--json", "-q")
    assert r.code == 0, r.stderr
    report = json.loads(r.stdout)
    c = cli("compare", source, out, "--json")
    assert c.code == 0, c.stderr
    (row,) = json.loads(c.stdout)
    assert row["file"] == str(out)
    for key in ("colors", "mse", "psnr"):
        assert report[key] == row[key], key
    assert report["bytes_out"] == row["bytes"] == out.stat().st_size
    if ext == "jpg":  # JPEG brings colours back: the report says so
        assert report["colors"] > 8 and not report["lossless"]
    if ext == "gif" and source.stem == "rgba":  # GIF keeps only full transparency
        assert report["psnr"] < 20


def test_k_counts_the_transparent_entry(cli, tmp_path: Path) -> None:
    src = tmp_path / "a.png"
    src.write_bytes(png_bytes(synthetic(40, 30, colors=300, alpha="binary", seed=2)))
    for k, entries, depth in ((16, 16, 4), (2, 2, 1), (4, 4, 2), (256, 256, 8)):
        for level in ("0", "1", "2"):
            out = tmp_path / f"k{k}-{level}.png"
            r = cli("compress", src, "-k", str(k), "-o", out, "--json", "-q", "-O", level)
            assert r.code == 0, r.stderr
            chunks = _chunks(out.read_bytes())
            assert len(chunks[b"PLTE"]) == 3 * entries, k
            # bits per index: zlib gets the fewest; oxipng keeps 8 when that deflates smaller
            assert chunks[b"IHDR"][8] in ((depth,) if level == "0" else (depth, 8)), k
            assert b"tRNS" in chunks
            assert json.loads(r.stdout)["colors"] == entries - 1  # visible colours


def test_k_is_all_colours_without_transparency(cli, tmp_path: Path) -> None:
    src = tmp_path / "a.png"
    src.write_bytes(png_bytes(synthetic(40, 30, colors=300, seed=2)))
    out = tmp_path / "o.png"
    r = cli("compress", src, "-k", "16", "-o", out, "--json", "-q")
    assert r.code == 0
    chunks = _chunks(out.read_bytes())
    assert len(chunks[b"PLTE"]) == 3 * 16 and chunks[b"IHDR"][8] == 4
    assert b"tRNS" not in chunks
    assert json.loads(r.stdout)["colors"] == 16


def test_two_entries_on_a_transparent_image_means_one_colour(cli, tmp_path: Path) -> None:
    pixels = synthetic(20, 10, colors=30, alpha="binary", seed=4)
    src = tmp_path / "a.png"
    src.write_bytes(png_bytes(pixels))
    r = cli("compress", src, "-k", "2", "-o", tmp_path / "o.png", "--json", "-q")
    assert r.code == 0
    doc = json.loads(r.stdout)
    assert doc["colors"] == 1 and doc["k"] == 2
    back = decode_png((tmp_path / "o.png").read_bytes())
    assert back.mode == "P" and len(np.unique(np.asarray(back))) == 2  # two indices used


@pytest.mark.parametrize(
    "args",
    [
        ["-k", "6", "--keep-color", "#ff00ff"],  # a locked colour no pixel is nearest to
        ["--palette", "PALETTE"],  # a fixed palette, some entries unused
        ["-k", "6", "--dither", "fs"],
    ],
)
def test_png_report_counts_only_the_colours_in_the_file(cli, tmp_path: Path, args) -> None:
    src = tmp_path / "a.png"
    src.write_bytes(png_bytes(synthetic(40, 30, seed=8)))
    palette = tmp_path / "p.txt"
    palette.write_text("#000000\n#ffffff\n#ff0000\n#00ff00\n#0000ff\n#ff00ff\n")
    out = tmp_path / "o.png"
    argv = [str(palette) if a == "PALETTE" else a for a in args]
    r = cli("compress", src, "-o", out, "--json", "-q", *argv)
    assert r.code == 0, r.stderr
    report = json.loads(r.stdout)
    (row,) = json.loads(cli("compare", src, out, "--json").stdout)
    assert (report["colors"], report["mse"]) == (row["colors"], row["mse"])
