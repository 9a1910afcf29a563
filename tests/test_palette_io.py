"""Palette files: every format round-trips; malformed files get one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kmeanscli.api import load_palette
from kmeanscli.core import palette_io
from kmeanscli.errors import InputError, UsageError


def _palette(n: int = 7, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = rng.choice(1 << 24, size=n, replace=False)
    return np.stack([codes >> 16, (codes >> 8) & 255, codes & 255], axis=1).astype(np.uint8)


@pytest.mark.parametrize("fmt", ["gpl", "json", "txt", "act"])
@pytest.mark.parametrize("n", [1, 7, 256])
def test_text_and_binary_formats_round_trip_in_order(fmt: str, n: int) -> None:
    pal = _palette(n)
    counts = np.arange(1, n + 1)
    data = palette_io.dumps(pal, fmt, counts=counts)
    assert np.array_equal(palette_io.loads(data, fmt), pal)


def test_png_swatch_strip_round_trips_through_an_image_file(tmp_path: Path) -> None:
    from PIL import Image

    pal = _palette(12)
    strip = palette_io.swatch_strip(pal)
    assert strip.shape == (palette_io.SWATCH, 12 * palette_io.SWATCH, 3)
    path = tmp_path / "p.png"
    Image.fromarray(strip).save(path)
    assert np.array_equal(load_palette(path), pal)


@pytest.mark.parametrize("ext", [".gpl", ".json", ".txt", ".act"])
def test_files_round_trip_through_load_palette(tmp_path: Path, ext: str) -> None:
    pal = _palette(9)
    path = tmp_path / f"p{ext}"
    path.write_bytes(palette_io.dumps(pal, ext[1:]))
    assert np.array_equal(load_palette(path), pal)


def test_json_carries_hex_rgb_and_share() -> None:
    pal = np.array([[255, 0, 0], [0, 128, 255]], dtype=np.uint8)
    doc = json.loads(palette_io.dumps(pal, "json", counts=np.array([3, 1])))
    assert doc["colors"] == [
        {"hex": "#ff0000", "rgb": [255, 0, 0], "pixels": 3, "share": 0.75},
        {"hex": "#0080ff", "rgb": [0, 128, 255], "pixels": 1, "share": 0.25},
    ]


def test_gpl_layout_and_act_trailer() -> None:
    pal = np.array([[255, 0, 0], [1, 2, 3]], dtype=np.uint8)
    text = palette_io.dumps(pal, "gpl").decode()
    assert text.splitlines()[0] == "GIMP Palette"
    assert "255   0   0\t#ff0000" in text
    act = palette_io.dumps(pal, "act")
    assert len(act) == 772 and act[768:] == b"\x00\x02\xff\xff"
    assert act[:6] == bytes([255, 0, 0, 1, 2, 3])


def test_readers_accept_common_variants() -> None:
    gpl = b"GIMP Palette\nName: x\nColumns: 4\n# comment\n\n  1 2 3 first\n4 5 6\n"
    assert palette_io.loads(gpl, "gpl").tolist() == [[1, 2, 3], [4, 5, 6]]
    txt = b"; Paint.NET style comment\n#FF8000\n00ff00\n#abc\n\n"
    assert palette_io.loads(txt, "txt").tolist() == [[255, 128, 0], [0, 255, 0], [170, 187, 204]]
    js = b'["#ff0000", [0, 1, 2], {"rgb": [3, 4, 5]}, {"hex": "000000"}]'
    assert palette_io.loads(js, "json").tolist() == [[255, 0, 0], [0, 1, 2], [3, 4, 5], [0, 0, 0]]
    act = bytes(range(256)) * 3
    assert palette_io.loads(act, "act").shape == (256, 3)


@pytest.mark.parametrize(
    ("data", "fmt", "message"),
    [
        (b"", "gpl", "empty file"),
        (b"JASC-PAL\n0100\n", "gpl", "not a GIMP palette"),
        (b"GIMP Palette\n1 2\n", "gpl", "line 2: expected 'R G B"),
        (b"GIMP Palette\n1 2 300\n", "gpl", "line 2"),
        (b"GIMP Palette\nName: empty\n", "gpl", "no colours"),
        (b"#ff0000\n#gg0000\n", "txt", "line 2: '#gg0000' is not a hex colour"),
        (b"#ff00001\n", "txt", "line 1"),
        (b"; only a comment\n", "txt", "no colours"),
        (b"{not json", "json", "not valid JSON"),
        (b'{"colours": []}', "json", "'colors' list"),
        (b'["#12345"]', "json", "colour 1"),
        (b"[[1, 2, 256]]", "json", "colour 1"),
        (b"[]", "json", "no colours"),
        (b"\x00" * 100, "act", "768 or 772 bytes"),
        (b"\x00" * 768 + b"\x01\x2c\xff\xff", "act", "holds 300 colours"),
        (b"\xff\xfe\x00", "txt", "not UTF-8"),
    ],
)
def test_malformed_files_raise_one_clear_input_error(data: bytes, fmt: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        palette_io.loads(data, fmt, name="pal")
    text = str(info.value)
    assert text.startswith("pal: ") and message in text and "\n" not in text


@pytest.mark.parametrize("fmt", ["gpl", "txt", "json"])
def test_more_than_256_colours_is_refused(fmt: str) -> None:
    pal = _palette(257)
    if fmt == "gpl":
        data = b"GIMP Palette\n" + b"".join(b"%d %d %d\n" % tuple(c) for c in pal.tolist())
    elif fmt == "txt":
        data = "".join(palette_io.to_hex(c) + "\n" for c in pal.tolist()).encode()
    else:
        data = json.dumps([palette_io.to_hex(c) for c in pal.tolist()]).encode()
    with pytest.raises(InputError, match="257 colours, more than 256"):
        palette_io.loads(data, fmt, name="big")


def test_image_with_too_many_colours_is_refused() -> None:
    img = np.arange(300 * 3, dtype=np.uint16).reshape(1, 300, 3).astype(np.uint8)
    img[0, :, 0] = np.arange(300) % 256
    img[0, :, 1] = np.arange(300) // 256
    with pytest.raises(InputError, match="300 colours, more than 256"):
        palette_io.image_colors(img, name="img")


def test_image_colours_ignore_transparent_pixels() -> None:
    img = np.array([[[9, 9, 9, 0], [1, 2, 3, 255], [4, 5, 6, 128], [1, 2, 3, 255]]], np.uint8)
    assert palette_io.image_colors(img).tolist() == [[1, 2, 3], [4, 5, 6]]


def test_unknown_extensions_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"unknown palette extension '\.pal'"):
        palette_io.format_of("colours.pal")
    with pytest.raises(UsageError, match="unknown palette extension"):
        load_palette(tmp_path / "x.doc")
    assert palette_io.format_of("a.GPL") == "gpl"
    assert palette_io.format_of("a.jpg", images=(".jpg",)) == "image"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_palette(tmp_path / "nope.gpl")
    (tmp_path / "d.gpl").mkdir()
    with pytest.raises(InputError, match="is a directory"):
        load_palette(tmp_path / "d.gpl")


def test_hex_helpers() -> None:
    assert palette_io.parse_hex(" #FfA500 ") == (255, 165, 0)
    assert palette_io.to_hex((255, 165, 0)) == "#ffa500"
    for bad in ("", "#12", "#1234567", "red", "#ff00zz"):
        with pytest.raises(ValueError, match="not a hex colour"):
            palette_io.parse_hex(bad)
