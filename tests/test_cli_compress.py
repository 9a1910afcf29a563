"""``kmeanscli compress``: outputs, streams, report, flags and every bad input."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    ERROR_PREFIX,
    JSON_FIELDS,
    colours_of,
    decode_png,
    files_in,
    load_image,
    other_rgb_profile,
    png_bytes,
    synthetic,
)
from PIL import Image, ImageCms

# The library must not warn (a warning is text on the user's stderr).
pytestmark = pytest.mark.filterwarnings("error::UserWarning", "error::RuntimeWarning")

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every name in a folder with its bytes (None for folders)."""
    return {p.name: (p.read_bytes() if p.is_file() else None) for p in folder.iterdir()}


# --------------------------------------------------------------------------- success paths


def test_compress_to_png(cli, make_image, tmp_path: Path) -> None:
    src = make_image("in.png", width=64, height=48)
    before = src.read_bytes()
    r = cli("compress", src, "-k", "8", "-o", tmp_path / "out.png")
    assert r.code == 0, r.stderr
    assert r.stdout_bytes == b""
    img = decode_png((tmp_path / "out.png").read_bytes())
    assert img.format == "PNG" and img.mode == "P" and img.size == (64, 48)
    assert len(colours_of(img)) == 8
    assert src.read_bytes() == before
    # the report on stderr: paths, sizes, colours, PSNR, time
    assert f"{src} → {tmp_path / 'out.png'}" in r.stderr
    assert re.search(r"size\s+[\d.,]+ k?B → [\d.,]+ k?B\s+\([\d.]+% of the input", r.stderr)
    assert re.search(r"colours\s+[\d,]+ → 8\b", r.stderr)
    assert "→ 8" in r.stderr
    assert "PSNR" in r.stderr and "dB" in r.stderr
    assert "time" in r.stderr
    assert "error" not in r.stderr and "warning" not in r.stderr
    assert files_in(tmp_path) == {"in.png", "out.png"}


def test_long_flags(cli, make_image, tmp_path: Path) -> None:
    src = make_image("in.png")
    r = cli(
        "compress",
        src,
        "--colors",
        "5",
        "--output",
        tmp_path / "o.png",
        "--seed",
        "3",
        "--max-iter",
        "5",
    )
    assert r.code == 0, r.stderr
    assert len(colours_of(load_image(tmp_path / "o.png"))) == 5


def test_default_k_is_16_and_default_output(cli, make_image, tmp_path: Path) -> None:
    src = make_image("photo.png", width=40, height=30)
    r = cli("compress", src)
    assert r.code == 0, r.stderr
    out = tmp_path / "photo-k16.png"
    assert files_in(tmp_path) == {"photo.png", "photo-k16.png"}
    assert len(colours_of(load_image(out))) == 16
    r = cli("compress", src, "-k", "4")
    assert r.code == 0 and (tmp_path / "photo-k4.png").is_file()


def test_byte_identical_across_runs(cli, make_image, tmp_path: Path) -> None:
    src = make_image("in.png", width=80, height=60, alpha="partial")
    for name in ("a.png", "b.png"):
        assert cli("compress", src, "-k", "12", "--seed", "5", "-o", tmp_path / name).code == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    r1 = cli("compress", "-", "-k", "12", "-o", "-", input=src.read_bytes())
    r2 = cli("compress", "-", "-k", "12", "-o", "-", input=src.read_bytes())
    assert r1.stdout_bytes == r2.stdout_bytes
    assert r1.stdout_bytes[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("ext", "fmt"),
    [
        (".png", "PNG"),
        (".gif", "GIF"),
        (".webp", "WEBP"),
        (".bmp", "BMP"),
        (".tif", "TIFF"),
        (".tiff", "TIFF"),
        (".jpg", "JPEG"),
        (".jpeg", "JPEG"),
        (".PNG", "PNG"),
    ],
)
def test_output_formats(cli, make_image, tmp_path: Path, ext: str, fmt: str) -> None:
    src = make_image("in.png", width=40, height=30)
    out = tmp_path / f"out{ext}"
    r = cli("compress", src, "-k", "6", "-o", out)
    assert r.code == 0, r.stderr
    img = decode_png(out.read_bytes())
    assert img.format == fmt
    assert img.size == (40, 30)
    warnings = [line for line in r.stderr_lines if line.startswith("kmeanscli: warning:")]
    if fmt == "JPEG":
        assert len(warnings) == 1 and "JPEG" in warnings[0] and "colours" in warnings[0]
    else:
        assert warnings == []
        assert len(colours_of(img)) == 6  # lossless formats keep exactly the palette


def test_stdin_to_stdout(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = png_bytes(synthetic(40, 30))
    r = cli("compress", "-", "-k", "4", "-o", "-", input=data)
    assert r.code == 0, r.stderr
    img = decode_png(r.stdout_bytes)
    assert img.format == "PNG" and img.mode == "P"
    assert len(colours_of(img)) == 4
    assert "- → -" in r.stderr  # the report is on stderr
    assert files_in(tmp_path) == set()


def test_stdin_defaults_to_stdout(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = cli("compress", "-", "-k", "3", input=png_bytes(synthetic(20, 20)))
    assert r.code == 0, r.stderr
    assert decode_png(r.stdout_bytes).format == "PNG"
    assert files_in(tmp_path) == set()


def test_stdin_to_file_and_file_to_stdout(cli, make_image, tmp_path: Path) -> None:
    src = make_image("in.png")
    r = cli("compress", "-", "-k", "3", "-o", tmp_path / "o.gif", input=src.read_bytes())
    assert r.code == 0 and r.stdout_bytes == b""
    assert decode_png((tmp_path / "o.gif").read_bytes()).format == "GIF"
    r = cli("compress", src, "-k", "3", "-o", "-")
    assert r.code == 0
    assert decode_png(r.stdout_bytes).format == "PNG"


def test_sample_writes_into_cwd(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = cli("compress", "--sample", "-k", "4", "--max-iter", "10")
    assert r.code == 0, r.stderr
    assert files_in(tmp_path) == {"china-k4.png"}
    img = load_image(tmp_path / "china-k4.png")
    assert img.size == (640, 427)
    assert len(colours_of(img)) == 4
    assert "china.jpg → china-k4.png" in r.stderr


def test_sample_and_input_together_is_usage_error(cli, make_image) -> None:
    cli("compress", make_image(), "--sample").assert_one_error(2, "--sample")


def test_missing_input_is_usage_error(cli) -> None:
    cli("compress").assert_one_error(2, "IN")


def test_existing_output_needs_force(cli, make_image, tmp_path: Path) -> None:
    src = make_image("in.png")
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    cli("compress", src, "-o", out).assert_one_error(1, "already exists", "--force")
    assert out.read_bytes() == b"precious"
    assert files_in(tmp_path) == {"in.png", "out.png"}
    for flag in ("--force", "-f"):
        r = cli("compress", src, "-k", "3", "-o", out, flag)
        assert r.code == 0, r.stderr
        assert decode_png(out.read_bytes()).mode == "P"


# --------------------------------------------------------------------------- --json


def test_json(cli, make_image, tmp_path: Path) -> None:
    src = make_image("in.png", width=50, height=40)
    out = tmp_path / "o.png"
    r = cli("compress", src, "-k", "7", "-o", out, "--json", "--seed", "9")
    assert r.code == 0, r.stderr
    assert r.stdout.endswith("\n") and r.stdout.count("\n") == 1
    d = json.loads(r.stdout)
    assert isinstance(d, dict)
    assert set(d) >= JSON_FIELDS
    assert d["input"] == str(src) and d["output"] == str(out)
    assert (d["width"], d["height"], d["k"], d["colors"], d["seed"]) == (50, 40, 7, 7, 9)
    assert d["bytes_in"] == src.stat().st_size and d["bytes_out"] == out.stat().st_size
    assert d["ratio"] == pytest.approx(d["bytes_out"] / d["bytes_in"], abs=1e-6)
    assert d["unique_colors_in"] == len(colours_of(load_image(src)))
    a = np.asarray(load_image(src).convert("RGB")).astype(float)
    b = np.asarray(load_image(out).convert("RGB")).astype(float)
    assert d["mse"] == pytest.approx(((a - b) ** 2).mean(), abs=1e-5)
    assert d["psnr"] > 10
    assert d["seconds"] >= 0
    assert d["engine"] == "lloyd"  # the default engine
    # with --json, stderr keeps only warnings: no human report
    assert r.stderr == ""


def test_json_lossless_and_stdin(cli, tmp_path: Path) -> None:
    data = png_bytes(synthetic(20, 10, colors=3))
    r = cli("compress", "-", "-k", "8", "-o", tmp_path / "o.png", "--json", input=data)
    assert r.code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["input"] == "-" and d["lossless"] is True and d["colors"] == 3
    assert d["psnr"] is None and d["mse"] == 0
    assert d["bytes_in"] == len(data)
    assert any("only 3 colours" in w for w in d["warnings"])
    assert "kmeanscli: warning:" in r.stderr and "only 3 colours" in r.stderr


def test_json_with_stdout_output_is_usage_error(cli, make_image, tmp_path: Path) -> None:
    src = make_image("in.png")
    before = snapshot(tmp_path)
    cli("compress", src, "-o", "-", "--json").assert_one_error(2, "--json", "-o -", "-o FILE")
    cli("compress", "-", "--json", input=src.read_bytes()).assert_one_error(
        2, "--json", "stdin", "-o FILE"
    )
    assert snapshot(tmp_path) == before


def test_json_quiet(cli, make_image, tmp_path: Path) -> None:
    src = make_image("in.png")
    r = cli("compress", src, "-o", tmp_path / "o.jpg", "--json", "--quiet")
    assert r.code == 0
    assert r.stderr == ""
    d = json.loads(r.stdout)
    assert d["format"] == "jpeg" and d["warnings"]


# --------------------------------------------------------------------------- --engine


def test_engine_minibatch(cli, make_image, tmp_path: Path) -> None:
    src = make_image("in.png", width=50, height=40)
    out = tmp_path / "mb.png"
    r = cli("compress", src, "-k", "7", "--engine", "minibatch", "-o", out, "--json")
    assert r.code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["engine"] == "minibatch" and d["k"] == d["colors"] == 7
    assert len(colours_of(load_image(out))) == 7
    # deterministic, and another fit than lloyd's
    again = tmp_path / "again.png"
    assert cli("compress", src, "-k", "7", "--engine", "minibatch", "-o", again).code == 0
    assert again.read_bytes() == out.read_bytes()
    lloyd = tmp_path / "lloyd.png"
    assert cli("compress", src, "-k", "7", "--engine", "lloyd", "-o", lloyd).code == 0
    assert lloyd.read_bytes() != out.read_bytes()
    # --batch-size is the minibatch engine's: 4096 by default, another size another fit
    for size, same in (("4096", True), ("64", False)):
        sized = tmp_path / f"b{size}.png"
        flags = ["--engine", "minibatch", "--batch-size", size]
        r = cli("compress", src, "-k", "7", *flags, "-o", sized, "-q")
        assert r.code == 0, r.stderr
        assert (sized.read_bytes() == out.read_bytes()) is same, size
        assert len(colours_of(load_image(sized))) == 7


def test_batch_size_needs_the_minibatch_engine(cli, make_image, tmp_path: Path) -> None:
    src = make_image("in.png")
    before = snapshot(tmp_path)
    for engine in ([], ["--engine", "lloyd"]):
        line = cli("compress", src, "--batch-size", "256", *engine).assert_one_error(2)
        assert line == (
            f"{ERROR_PREFIX}--batch-size is a setting of the minibatch engine (--engine minibatch)"
        )
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------- quiet, plot, preview


def test_quiet(cli, make_image, tmp_path: Path) -> None:
    src = make_image("in.png", pixels=synthetic(20, 10, colors=3))  # lossless: a warning
    for flag in ("--quiet", "-q"):
        r = cli("compress", src, "-o", tmp_path / f"o{flag}.jpg", flag)
        assert r.code == 0
        assert r.stderr == "" and r.stdout_bytes == b""
        assert (tmp_path / f"o{flag}.jpg").is_file()
    # errors still show
    cli("compress", tmp_path / "nope.png", "-q").assert_one_error(1, "no such file")


def test_plot_writes_a_png(cli, make_image, tmp_path: Path) -> None:
    src = make_image("in.png", width=60, height=40, alpha="partial")
    r = cli("compress", src, "-k", "5", "-o", tmp_path / "o.png", "--plot", tmp_path / "fig.png")
    assert r.code == 0, r.stderr
    fig = decode_png((tmp_path / "fig.png").read_bytes())
    assert fig.format == "PNG" and fig.size[0] >= 400
    assert len(colours_of(fig)) > 5  # a figure, not the palette image
    assert files_in(tmp_path) == {"in.png", "o.png", "fig.png"}


def test_plot_bad_path(cli, make_image, tmp_path: Path) -> None:
    src = make_image("in.png")
    cli("compress", src, "-o", tmp_path / "o.png", "--plot", tmp_path / "f.txt").assert_one_error(
        2, "--plot"
    )
    cli(
        "compress", src, "-o", tmp_path / "o.png", "--plot", tmp_path / "no" / "f.png"
    ).assert_one_error(1, "does not exist")
    assert files_in(tmp_path) == {"in.png"}


def test_preview_without_display_warns_and_writes(
    cli, make_image, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    src = make_image("in.png")
    r = cli("compress", src, "-k", "4", "-o", tmp_path / "o.png", "--preview")
    assert r.code == 0, r.stderr
    warnings = [line for line in r.stderr_lines if line.startswith("kmeanscli: warning:")]
    assert len(warnings) == 1 and "display" in warnings[0]
    assert len(colours_of(load_image(tmp_path / "o.png"))) == 4


# --------------------------------------------------------------------------- alpha, modes, metadata


def test_transparency_kept_in_png(cli, make_image, tmp_path: Path) -> None:
    pixels = synthetic(40, 30, alpha="partial")
    src = make_image("a.png", pixels=pixels)
    r = cli("compress", src, "-k", "6", "-o", tmp_path / "o.png", "--json")
    assert r.code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["colors"] == 5 and d["transparent"] is True  # 6 entries: 5 + transparent
    img = decode_png((tmp_path / "o.png").read_bytes())
    assert img.mode == "P" and "transparency" in img.info
    back = np.asarray(img.convert("RGBA"))
    colours = colours_of(img)
    assert len(colours) == 6  # -k 6: 5 colours + the transparent entry
    assert sum(1 for c in colours if c[3] == 0) == 1
    a = pixels[..., 3]
    assert (back[..., 3][a == 0] == 0).all()
    assert (back[..., 3][a == 255] == 255).all()
    partial = (a > 0) & (a < 255)
    assert ((back[..., 3][partial] > 0) & (back[..., 3][partial] < 255)).all()


def test_k256_with_transparency(cli, make_image, tmp_path: Path) -> None:
    src = make_image("a.png", pixels=synthetic(40, 30, colors=700, alpha="binary"))
    r = cli("compress", src, "-k", "256", "-o", tmp_path / "o.png", "--json")
    assert r.code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["colors"] == 255 and d["k"] == 256  # 256 entries: 255 + the transparent one
    assert len(decode_png((tmp_path / "o.png").read_bytes()).getpalette()) == 3 * 256
    colours = colours_of(load_image(tmp_path / "o.png"))
    assert len(colours) == 256 and sum(1 for c in colours if c[3] == 0) == 1


def _mode_image(mode: str) -> tuple[Image.Image, dict]:
    rgb = Image.fromarray(synthetic(24, 16))
    if mode in ("1", "L", "RGB", "CMYK"):
        return rgb.convert(mode), {}
    if mode == "LA":
        la = rgb.convert("LA")
        la.putalpha(
            Image.fromarray((np.arange(24 * 16) % 3 * 120).astype(np.uint8).reshape(16, 24))
        )
        return la, {}
    if mode == "RGBA":
        return Image.fromarray(synthetic(24, 16, alpha="partial")), {}
    if mode == "P":
        p = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=20)
        return p, {"transparency": 0}
    if mode == "I;16":
        return Image.fromarray((np.arange(24 * 16, dtype=np.uint16) * 170).reshape(16, 24)), {}
    if mode == "F":
        return Image.fromarray(np.linspace(0, 1, 24 * 16, dtype=np.float32).reshape(16, 24)), {}
    raise AssertionError(mode)


@pytest.mark.parametrize(
    ("mode", "ext"),
    [
        ("1", ".png"),
        ("L", ".png"),
        ("LA", ".png"),
        ("P", ".png"),
        ("P", ".gif"),
        ("RGB", ".png"),
        ("RGBA", ".png"),
        ("CMYK", ".jpg"),
        ("CMYK", ".tif"),
        ("I;16", ".png"),
        ("F", ".tif"),
    ],
)
def test_input_modes(cli, tmp_path: Path, mode: str, ext: str) -> None:
    img, save = _mode_image(mode)
    src = tmp_path / f"in{ext}"
    img.save(src, **save)
    assert load_image(src).mode == mode
    r = cli("compress", src, "-k", "4", "-o", tmp_path / "o.png", "--json")
    assert r.code == 0, r.stderr
    d = json.loads(r.stdout)
    assert (d["width"], d["height"]) == (24, 16)
    out = load_image(tmp_path / "o.png")
    assert out.mode == "P" and out.size == (24, 16)
    n_in = len(colours_of(load_image(src)))
    has_transparent = mode in ("LA", "P", "RGBA")  # each has fully transparent pixels
    assert len(load_image(tmp_path / "o.png").getpalette()) // 3 <= 4  # 4 entries at most
    assert d["colors"] == min(4 - has_transparent, d["unique_colors_in"] - has_transparent)
    assert len(colours_of(out)) <= 5
    if mode == "1":
        assert n_in == 2 and d["lossless"] and d["colors"] == 2
    if mode == "P":
        back = np.asarray(out.convert("RGBA"))
        idx = np.asarray(load_image(src))
        assert ((back[..., 3] == 0) == (idx == 0)).all()  # transparency survives


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_exif_orientation(cli, tmp_path: Path, ext: str) -> None:
    a = np.zeros((10, 20, 3), dtype=np.uint8)  # 20 wide, 10 high: left black, right red
    a[:, 10:] = [255, 0, 0]
    exif = Image.Exif()
    exif[0x0112] = 8  # to view: rotate 90° counter-clockwise
    src = tmp_path / f"in{ext}"
    Image.fromarray(a).save(src, exif=exif, **({"quality": 100} if ext == ".jpg" else {}))
    r = cli("compress", src, "-k", "2", "-o", tmp_path / "o.png")
    assert r.code == 0, r.stderr
    out = np.asarray(load_image(tmp_path / "o.png").convert("RGB")).astype(int)
    assert out.shape == (20, 10, 3)
    # counter-clockwise: the right (red) half ends on top
    assert (out[:8, :, 0] > 200).all() and (out[:8, :, 1] < 60).all()
    assert (out[12:] < 60).all()


def test_icc_profile_kept_and_stripped(cli, make_image, tmp_path: Path) -> None:
    profile = other_rgb_profile()
    src = make_image("in.png", save={"icc_profile": profile})
    assert cli("compress", src, "-k", "4", "-o", tmp_path / "kept.png").code == 0
    assert cli("compress", src, "-k", "4", "-o", tmp_path / "gone.png", "--strip").code == 0
    assert load_image(tmp_path / "kept.png").info.get("icc_profile") == profile
    assert not load_image(tmp_path / "gone.png").info.get("icc_profile")
    assert cli("compress", src, "-k", "4", "-o", tmp_path / "kept.webp").code == 0
    assert load_image(tmp_path / "kept.webp").info.get("icc_profile") == profile
    srgb = make_image("srgb.png", save={"icc_profile": SRGB})  # sRGB: the 13-byte chunk
    assert cli("compress", srgb, "-k", "4", "-o", tmp_path / "srgb-out.png").code == 0
    info = load_image(tmp_path / "srgb-out.png").info
    assert info.get("srgb") == 0 and not info.get("icc_profile")


# --------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """A real 10000x10000 1-bit PNG (100 Mpx, over Pillow's limit) of about 12 kB."""
    return png_bytes(Image.new("1", (10_000, 10_000)))


def _multipage() -> bytes:
    """A 3-page TIFF: still refused (animated GIF/APNG/WebP are compressed as animations,
    see tests/test_animation.py)."""
    frames = [Image.fromarray(synthetic(16, 16, seed=s)) for s in range(3)]
    return png_bytes(frames[0], "TIFF", save_all=True, append_images=frames[1:])


BAD_INPUTS = {
    "corrupt": lambda: _corrupt_png(),
    "truncated": lambda: (lambda d: d[: len(d) // 2])(png_bytes(synthetic(64, 64))),
    "empty": lambda: b"",
    "not-an-image": lambda: b"%PDF-1.4 this is not an image\n",
    "multipage": _multipage,
}
BAD_MESSAGES = {
    "corrupt": "corrupt",
    "truncated": "truncated",
    "empty": "empty",
    "not-an-image": "not an image",
    "multipage": "3 frames; multi-page images are not supported",
}


def _corrupt_png() -> bytes:
    data = bytearray(png_bytes(synthetic(64, 64)))
    data[60:90] = b"\xff" * 30
    return bytes(data)


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_files(cli, tmp_path: Path, case: str) -> None:
    src = tmp_path / ("in.tif" if case == "multipage" else "in.png")
    src.write_bytes(BAD_INPUTS[case]())
    before = snapshot(tmp_path)
    line = cli("compress", src, "-o", tmp_path / "out.png").assert_one_error(1, BAD_MESSAGES[case])
    assert str(src) in line
    assert snapshot(tmp_path) == before  # no output, no temp file, input unchanged
    # the same through stdin
    r = cli("compress", "-", "-o", tmp_path / "out.png", input=src.read_bytes())
    r.assert_one_error(1, BAD_MESSAGES[case])
    assert snapshot(tmp_path) == before


def test_decompression_bomb(cli, tmp_path: Path, bomb: bytes) -> None:
    src = tmp_path / "bomb.png"
    src.write_bytes(bomb)
    before = snapshot(tmp_path)
    cli("compress", src, "-o", tmp_path / "o.png").assert_one_error(
        1, "100,000,000 pixels", "--max-pixels"
    )
    cli("compress", src, "-o", tmp_path / "o.png", "--max-pixels", "99999999").assert_one_error(
        1, "limit"
    )
    assert snapshot(tmp_path) == before


def test_max_pixels_accepts(cli, make_image, tmp_path: Path, monkeypatch) -> None:
    """With Pillow's limit lowered, --max-pixels knowingly accepts a larger image."""
    from PIL import Image as PILImage

    src = make_image("in.png", width=50, height=40)  # 2000 px
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 1500)
    cli("compress", src, "-o", tmp_path / "o.png").assert_one_error(1, "--max-pixels")
    assert not (tmp_path / "o.png").exists()
    r = cli("compress", src, "-k", "3", "-o", tmp_path / "o.png", "--max-pixels", "2000")
    assert r.code == 0, r.stderr
    monkeypatch.undo()
    assert load_image(tmp_path / "o.png").size == (50, 40)
    cli("compress", src, "--max-pixels", "0").assert_one_error(2, "--max-pixels")


def test_directory_as_input(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    for d in ("adir", ".", str(tmp_path)):
        cli("compress", d).assert_one_error(1, "directory")
        cli("compress", d, "-o", "x.png").assert_one_error(1, "directory")
    assert files_in(tmp_path) == {"adir"}


def test_missing_input(cli, tmp_path: Path) -> None:
    line = cli("compress", tmp_path / "nope.png").assert_one_error(1, "no such file")
    assert str(tmp_path / "nope.png") in line
    assert files_in(tmp_path) == set()


@pytest.mark.parametrize("case", ["missing-folder", "parent-is-file"])
def test_bad_output_paths(cli, make_image, tmp_path: Path, case: str) -> None:
    src = make_image("in.png")
    out = {
        "missing-folder": tmp_path / "nope" / "o.png",
        "parent-is-file": src / "o.png",
    }[case]
    before = snapshot(tmp_path)
    msg = {"missing-folder": "does not exist", "parent-is-file": "not a folder"}[case]
    cli("compress", src, "-o", out).assert_one_error(1, msg)
    cli("compress", src, "-o", out, "--force").assert_one_error(1, msg)
    assert snapshot(tmp_path) == before


def test_output_equal_to_input(cli, make_image, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    src = make_image("in.png")
    before = snapshot(tmp_path)
    for out in ("in.png", "./in.png", str(src)):
        cli("compress", "in.png", "-o", out).assert_one_error(1, "is the input")
        cli("compress", "in.png", "-o", out, "--force").assert_one_error(1, "is the input")
    # the default name can be the input itself: in-k16.png compressed with -k 16
    make_image("in-k16.png")
    before = snapshot(tmp_path)
    cli("compress", "in-k16.png", "-o", "in-k16.png", "-f").assert_one_error(1, "is the input")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("k", "why"),
    [
        ("0", "must be between 2 and 256; got 0"),
        ("1", "must be between 2 and 256; got 1"),
        ("257", "must be between 2 and 256; got 257"),
        ("1000", "must be between 2 and 256; got 1000"),
        ("-3", "must be between 2 and 256; got -3"),
        ("abc", "must be a whole number; got 'abc'"),
        ("2.5", "must be a whole number; got '2.5'"),
    ],
)
def test_k_out_of_range(cli, make_image, tmp_path: Path, k: str, why: str) -> None:
    src = make_image("in.png")
    before = snapshot(tmp_path)
    for flag in ("-k", "--colors"):
        line = cli("compress", src, flag, k).assert_one_error(2)
        assert line == f"kmeanscli: error: -k {why} (see 'kmeanscli compress --help')"
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("k", ["2", "256"])
def test_k_range_ends(cli, make_image, tmp_path: Path, k: str) -> None:
    src = make_image("in.png", width=40, height=30)
    r = cli("compress", src, "-k", k, "-o", tmp_path / "o.png", "--json")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["colors"] == int(k)


@pytest.mark.parametrize("out", ["o.xyz", "o", "o.png.bak", "o.svg"])
def test_unknown_extension(cli, make_image, tmp_path: Path, out: str) -> None:
    src = make_image("in.png")
    before = snapshot(tmp_path)
    cli("compress", src, "-o", tmp_path / out).assert_one_error(2, "extension")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "argv",
    [
        ["--bogus"],
        ["--seed", "-1"],
        ["--max-iter", "0"],
        ["--max-iter", "abc"],
        ["--engine", "kmeans"],
        ["--engine", "minibatch", "--batch-size", "8"],
        ["extra-arg"],
    ],
)
def test_bad_flags(cli, make_image, tmp_path: Path, argv: list[str]) -> None:
    src = make_image("in.png")
    before = snapshot(tmp_path)
    cli("compress", src, *argv).assert_one_error(2)
    assert snapshot(tmp_path) == before


def test_error_lines_never_wrap(cli, tmp_path: Path) -> None:
    deep = tmp_path / ("long-folder-name-" * 8) / "missing image with spaces [x].png"
    line = cli("compress", deep).assert_one_error(1, "no such file")
    assert str(deep) in line  # printed as is: no markup, no wrapping


def test_stdout_image_never_mixed_with_text(cli, make_image) -> None:
    src = make_image("in.png", pixels=synthetic(20, 10, colors=3))  # lossless: a warning
    r = cli("compress", src, "-o", "-")
    assert r.code == 0
    img = decode_png(r.stdout_bytes)
    assert img.format == "PNG"
    assert load_image(io.BytesIO(r.stdout_bytes)).size == (20, 10)
    assert "only 3 colours" in r.stderr
    assert not any(line.startswith(ERROR_PREFIX) for line in r.stderr_lines)


def _unwritable_folder() -> Path | None:
    """A folder that even root cannot create files in (sysfs), if this machine has one."""
    import tempfile

    folder = Path("/sys")
    if not folder.is_dir():
        return None
    try:
        fd, name = tempfile.mkstemp(dir=folder)
    except OSError:
        return folder
    os.close(fd)
    os.unlink(name)
    return None


def test_unwritable_output_folder(cli, make_image, tmp_path: Path) -> None:
    folder = _unwritable_folder()
    if folder is None:
        pytest.skip("no folder here that root cannot write in")
    src = make_image("in.png")
    before = snapshot(tmp_path)
    cli("compress", src, "-o", folder / "kmeanscli-test.png").assert_one_error(1, "cannot write")
    assert not (folder / "kmeanscli-test.png").exists()
    assert snapshot(tmp_path) == before


def _no_new_files_folder() -> Path | None:
    """procfs: a folder that exists, passes permission checks for root, and takes no files."""
    folder = Path("/proc")
    if not (folder / "self").exists():
        return None
    return folder


@pytest.mark.parametrize(
    "argv",
    [
        ("compress", "{src}", "-o", "{out}", "--plot", "{bad}/p.png"),
        ("compress", "{src}", "-o", "{bad}/out.png"),
        ("compress", "{src}", "-o", "{out}", "--palette-out", "{bad}/p.gpl"),
        ("palette", "{src}", "--plot", "{bad}/p.png"),
        ("compare", "{src}", "-k", "4", "--plot", "{bad}/p.png"),
        ("report", "{src}", "-k", "4", "-o", "{bad}/r.html"),
    ],
)
def test_a_folder_that_takes_no_files_is_refused_before_any_work(
    cli, make_image, tmp_path: Path, argv
) -> None:
    """Permission bits say yes to root in /proc; the check creates a file to know. Nothing is
    written, nothing printed on stdout, one error line, exit 1."""
    bad = _no_new_files_folder()
    if bad is None:
        pytest.skip("no /proc here")
    src = make_image("in.png")
    out = tmp_path / "out.png"
    before = snapshot(tmp_path)
    args = [a.format(src=src, out=out, bad=bad) for a in argv]
    cli(*args).assert_one_error(1, f"cannot write in {bad}: the folder does not take new files")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("failing", ["write", "fsync", "replace"])
def test_disk_full_while_writing(cli, make_image, tmp_path: Path, monkeypatch, failing) -> None:
    """An OS error while writing (disk full, quota, I/O error): one line, nothing left."""
    import errno

    import kmeanscli.imageio as imageio

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    src = make_image("in.png")
    (tmp_path / "old.png").write_bytes(b"old")
    before = snapshot(tmp_path)
    if failing == "write":
        real_fdopen = os.fdopen

        class Full(io.BufferedWriter):
            def write(self, data):
                no_space()

        def fdopen(fd, mode="r", *args, **kwargs):
            return Full(real_fdopen(fd, "wb", buffering=0)) if "w" in mode else real_fdopen(fd)

        monkeypatch.setattr(imageio.os, "fdopen", fdopen)
    else:
        monkeypatch.setattr(imageio.os, failing, no_space)
    r = cli("compress", src, "-o", tmp_path / "old.png", "--force")
    monkeypatch.undo()
    r.assert_one_error(1, "old.png", "No space left on device")
    assert snapshot(tmp_path) == before  # no temp file, the old output intact


@pytest.mark.parametrize(("ext", "magic"), [(".svg", b"<?xml"), (".pdf", b"%PDF")])
def test_plot_svg_and_pdf(cli, make_image, tmp_path: Path, ext: str, magic: bytes) -> None:
    src = make_image("in.png", width=30, height=20)
    r = cli("compress", src, "-k", "3", "-o", tmp_path / "o.png", "--plot", tmp_path / f"f{ext}")
    assert r.code == 0, r.stderr
    assert (tmp_path / f"f{ext}").read_bytes().startswith(magic)
    assert files_in(tmp_path) == {"in.png", "o.png", f"f{ext}"}


def test_paths_with_markup_are_printed_verbatim(cli, make_image, tmp_path: Path) -> None:
    src = make_image("a [bold]b [link=x]c.png")
    out = tmp_path / "o [red]x.png"
    r = cli("compress", src, "-k", "3", "-o", out)
    assert r.code == 0, r.stderr
    assert f"{src} → {out}" in r.stderr
    out.write_bytes(b"exists")
    line = cli("compress", src, "-k", "3", "-o", out).assert_one_error(1, "already exists")
    assert str(out) in line


def test_plot_never_overwrites_input_or_output(cli, make_image, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = make_image("in.png")
    before = snapshot(tmp_path)
    for flags in ([], ["--force"]):
        cli("compress", "in.png", "-o", "o.png", "--plot", "in.png", *flags).assert_one_error(
            1, "is the input"
        )
        cli("compress", "in.png", "-o", "o.png", "--plot", "./o.png", *flags).assert_one_error(
            2, "same file"
        )
        cli("compress", "in.png", "--plot", "in-k16.png", *flags).assert_one_error(2, "same file")
    assert snapshot(tmp_path) == before
    (tmp_path / "fig.png").write_bytes(b"old figure")
    cli("compress", "in.png", "-o", "o.png", "--plot", "fig.png").assert_one_error(
        1, "already exists", "--force"
    )
    assert (tmp_path / "fig.png").read_bytes() == b"old figure"
    assert not (tmp_path / "o.png").exists()
    r = cli("compress", "in.png", "-k", "3", "-o", "o.png", "--plot", "fig.png", "--force")
    assert r.code == 0, r.stderr
    assert decode_png((tmp_path / "fig.png").read_bytes()).format == "PNG"
    assert src.read_bytes() == before["in.png"]
