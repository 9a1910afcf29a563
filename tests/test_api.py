"""The library's file API: compress_file, QuantizeOptions, dominant_colors, default_output,
sample_image."""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    JSON_FIELDS,
    colours_of,
    decode_png,
    files_in,
    load_image,
    other_rgb_profile,
    png_bytes,
    srgb_profile,
    synthetic,
)

import kmeanscli
from kmeanscli import (
    CompressReport,
    InputError,
    KmeansCliError,
    OptionsError,
    OutputError,
    QuantizeOptions,
    Target,
    UsageError,
    compress_file,
    default_output,
    dominant_colors,
    quantize,
    sample_image,
)

# The library must not warn (a warning is text on the user's stderr).
pytestmark = pytest.mark.filterwarnings("error::UserWarning", "error::RuntimeWarning")


def test_public_api() -> None:
    names = (
        "quantize",
        "compress_file",
        "dominant_colors",
        "QuantizeOptions",
        "OptionsError",
        "QuantizeResult",
        "CompressReport",
        "__version__",
    )
    for name in names:
        assert name in kmeanscli.__all__
        assert hasattr(kmeanscli, name)
    assert issubclass(UsageError, ValueError)
    assert issubclass(OptionsError, UsageError)
    for exc in (InputError, OutputError, UsageError):
        assert issubclass(exc, KmeansCliError)


def test_compress_file_writes_a_palette_png(make_image, tmp_path: Path) -> None:
    src = make_image("in.png", width=64, height=48)
    dst = tmp_path / "out.png"
    report = compress_file(src, dst, 8)
    assert isinstance(report, CompressReport)
    img = decode_png(dst.read_bytes())
    assert img.format == "PNG" and img.mode == "P"
    assert img.size == (64, 48)
    assert len(colours_of(img)) == 8
    d = report.to_dict()
    assert set(d) >= JSON_FIELDS
    assert d["input"] == str(src) and d["output"] == str(dst)
    assert (d["width"], d["height"], d["k"], d["colors"], d["seed"]) == (64, 48, 8, 8, 0)
    assert (d["engine"], d["space"], d["dither"]) == ("lloyd", "rgb", "none")
    assert d["unique_colors_in"] == len(colours_of(load_image(src)))
    assert d["bytes_in"] == src.stat().st_size
    assert d["bytes_out"] == dst.stat().st_size
    assert d["ratio"] == pytest.approx(d["bytes_out"] / d["bytes_in"], abs=1e-6)
    original = np.asarray(load_image(src).convert("RGB")).astype(float)
    out = np.asarray(img.convert("RGB")).astype(float)
    real_mse = float(((original - out) ** 2).mean())
    assert d["mse"] == pytest.approx(real_mse, abs=1e-5)
    assert d["psnr"] == pytest.approx(10 * math.log10(255**2 / real_mse), abs=1e-3)
    assert d["seconds"] >= 0
    assert d["format"] == "png"
    assert d["lossless"] is False and d["transparent"] is False
    json.dumps(d)  # JSON-ready
    assert files_in(tmp_path) == {"in.png", "out.png"}


def test_same_seed_byte_identical(make_image, tmp_path: Path) -> None:
    src = make_image("in.png", width=80, height=60)
    for seed in (0, 12345):
        a = compress_file(src, tmp_path / f"a{seed}.png", QuantizeOptions(k=16, seed=seed))
        b = compress_file(src, tmp_path / f"b{seed}.png", QuantizeOptions(k=16, seed=seed))
        assert (tmp_path / f"a{seed}.png").read_bytes() == (tmp_path / f"b{seed}.png").read_bytes()
        assert a.mse == b.mse and a.seed == seed


@pytest.mark.parametrize("ext", [".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"])
def test_byte_identical_in_every_format(make_image, tmp_path: Path, ext: str) -> None:
    src = make_image("in.png", width=40, height=30, alpha="binary")
    compress_file(src, tmp_path / f"a{ext}", 6)
    compress_file(src, tmp_path / f"b{ext}", 6)
    assert (tmp_path / f"a{ext}").read_bytes() == (tmp_path / f"b{ext}").read_bytes()


def test_default_output_beside_input(make_image, tmp_path: Path) -> None:
    src = make_image("photo.jpeg", width=40, height=30)
    report = compress_file(src, None, 5)
    assert report.output == str(tmp_path / "photo-k5.png")
    assert decode_png((tmp_path / "photo-k5.png").read_bytes()).format == "PNG"
    assert default_output("a/b/c.tar.gz", 16) == Path("a/b/c.tar-k16.png")
    assert default_output(Path("x.jpg"), 3, ".gif") == Path("x-k3.gif")


def test_existing_output_refused_unless_force(make_image, tmp_path: Path) -> None:
    src = make_image("in.png")
    dst = tmp_path / "out.png"
    dst.write_bytes(b"keep me")
    with pytest.raises(OutputError, match=r"already exists.*--force"):
        compress_file(src, dst, 4)
    assert dst.read_bytes() == b"keep me"
    compress_file(src, dst, 4, force=True)
    assert decode_png(dst.read_bytes()).mode == "P"


@pytest.mark.parametrize("spelling", ["same", "dotted", "symlink"])
def test_output_equal_to_input_refused(make_image, tmp_path: Path, spelling: str) -> None:
    src = make_image("in.png")
    before = src.read_bytes()
    dst = {
        "same": src,
        "dotted": tmp_path / "." / "in.png",
        "symlink": tmp_path / "link.png",
    }[spelling]
    if spelling == "symlink":
        dst.symlink_to(src)
    with pytest.raises(OutputError, match="is the input"):
        compress_file(src, dst, 4, force=True)
    assert src.read_bytes() == before


def test_stream_in_and_out(tmp_path: Path) -> None:
    data = png_bytes(synthetic(30, 20))
    out = io.BytesIO()
    report = compress_file(data, out, 4, input_name="-")
    assert report.input == "-" and report.output == "-"
    assert report.bytes_in == len(data)
    assert report.bytes_out == len(out.getvalue())
    assert decode_png(out.getvalue()).mode == "P"
    out2 = io.BytesIO()
    compress_file(io.BytesIO(data), out2, 4, format="gif")
    assert decode_png(out2.getvalue()).format == "GIF"


def test_bytes_input_needs_an_output() -> None:
    with pytest.raises(OutputError, match="explicit output"):
        compress_file(png_bytes(synthetic(8, 8)), None, 4)


def test_lossless_and_notes(make_image, tmp_path: Path) -> None:
    src = make_image("few.png", pixels=synthetic(20, 10, colors=3))
    report = compress_file(src, tmp_path / "o.png", 16)
    assert report.lossless and report.colors == 3 and report.unique_colors_in == 3
    assert report.mse == 0 and report.psnr == math.inf
    assert report.to_dict()["psnr"] is None
    assert any("only 3 colours" in w for w in report.warnings)
    back = np.asarray(load_image(tmp_path / "o.png").convert("RGB"))
    np.testing.assert_array_equal(back, synthetic(20, 10, colors=3))


def test_transparency_k256(make_image, tmp_path: Path) -> None:
    src = make_image("t.png", pixels=synthetic(40, 30, colors=700, alpha="binary"))
    report = compress_file(src, tmp_path / "o.png", 256)
    assert report.colors == 255 and report.transparent  # 255 colours + the transparent one
    img = decode_png((tmp_path / "o.png").read_bytes())
    assert img.mode == "P" and "transparency" in img.info
    colours = colours_of(img)
    assert len(colours) == 256
    assert sum(1 for c in colours if c[3] == 0) == 1


def test_icc_kept_and_stripped(make_image, tmp_path: Path) -> None:
    profile = other_rgb_profile()
    src = make_image("icc.png", save={"icc_profile": profile})
    compress_file(src, tmp_path / "kept.png", 4)
    compress_file(src, tmp_path / "gone.png", 4, strip=True)
    assert load_image(tmp_path / "kept.png").info.get("icc_profile") == profile
    assert not load_image(tmp_path / "gone.png").info.get("icc_profile")


def test_srgb_profile_becomes_the_srgb_chunk(make_image, tmp_path: Path) -> None:
    """A two-colour image with a 588-byte sRGB profile: the output carries 13 bytes for it."""
    src = make_image(
        "icc.png", pixels=synthetic(64, 16, colors=2), save={"icc_profile": srgb_profile()}
    )
    report = compress_file(src, tmp_path / "o.png", 2)
    out = load_image(tmp_path / "o.png")
    assert not out.info.get("icc_profile") and out.info.get("srgb") == 0
    plain = compress_file(src, tmp_path / "s.png", 2, strip=True)
    assert report.bytes_out == plain.bytes_out + 13


def test_progress_stages(make_image, tmp_path: Path) -> None:
    seen: list[str] = []
    compress_file(make_image(), tmp_path / "o.png", 4, progress=seen.append)
    assert seen[0] == "decode" and seen[-1] == "encode"
    assert "fit" in seen and "assign" in seen


def test_prints_nothing(make_image, tmp_path: Path, capsys) -> None:
    compress_file(make_image(), tmp_path / "o.jpg", 4)
    assert capsys.readouterr() == ("", "")


def test_max_pixels(make_image, tmp_path: Path) -> None:
    src = make_image("in.png", width=50, height=40)
    with pytest.raises(InputError, match="decompression bomb"):
        compress_file(src, tmp_path / "o.png", 4, max_pixels=1999)
    assert not (tmp_path / "o.png").exists()
    compress_file(src, tmp_path / "o.png", 4, max_pixels=2000)


@pytest.mark.parametrize(
    ("case", "exc", "message"),
    [
        ("missing", InputError, "no such file"),
        ("directory", InputError, "directory"),
        ("empty", InputError, "empty"),
        ("text", InputError, "not an image"),
        ("truncated", InputError, "truncated"),
        ("no-folder", OutputError, "does not exist"),
        ("parent-is-file", OutputError, "not a folder"),
        ("out-is-dir", OutputError, "directory"),
        ("extension", UsageError, "unknown output extension"),
    ],
)
def test_errors_leave_nothing(tmp_path: Path, case: str, exc: type, message: str) -> None:
    good = png_bytes(synthetic(64, 64))
    src = tmp_path / "in.png"
    dst: Path | None = tmp_path / "out.png"
    if case == "missing":
        src = tmp_path / "missing.png"
    elif case == "directory":
        src = tmp_path / "adir"
        src.mkdir()
        dst = None
    elif case == "empty":
        src.write_bytes(b"")
    elif case == "text":
        src.write_bytes(b"hello\n")
    elif case == "truncated":
        src.write_bytes(good[: len(good) // 2])
    else:
        src.write_bytes(good)
    if case == "no-folder":
        dst = tmp_path / "nope" / "out.png"
    elif case == "parent-is-file":
        dst = src / "out.png"
    elif case == "out-is-dir":
        dst = tmp_path / "outdir.png"
        dst.mkdir()
    elif case == "extension":
        dst = tmp_path / "out.xyz"
    before = {p.name: (p.read_bytes() if p.is_file() else None) for p in tmp_path.iterdir()}
    with pytest.raises(exc, match=message):
        compress_file(src, dst, 4)
    after = {p.name: (p.read_bytes() if p.is_file() else None) for p in tmp_path.iterdir()}
    assert after == before


def test_directory_input_with_default_output(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for d in (".", "..", str(tmp_path), "/"):
        with pytest.raises(InputError, match="directory"):
            compress_file(d, None, 4)
    assert files_in(tmp_path) == set()


def test_sample_image() -> None:
    path = sample_image()
    assert path.name == "china.jpg" and path.is_file()
    img = load_image(path)
    assert img.size == (640, 427)


def test_input_never_modified(make_image, tmp_path: Path) -> None:
    src = make_image("in.png", width=30, height=30, alpha="partial")
    before = src.read_bytes()
    mtime = os.stat(src).st_mtime_ns
    compress_file(src, tmp_path / "out.webp", 4)
    compress_file(src, tmp_path / "out.png", 4)
    assert src.read_bytes() == before and os.stat(src).st_mtime_ns == mtime


def test_stream_write_errors() -> None:
    import errno

    data = png_bytes(synthetic(8, 8))

    class Full(io.BytesIO):
        def write(self, b):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    class Gone(io.BytesIO):
        def write(self, b):
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    with pytest.raises(OutputError, match="No space left on device"):
        compress_file(data, Full(), 4)
    with pytest.raises(BrokenPipeError):  # left to the CLI, which ends quietly
        compress_file(data, Gone(), 4)


@pytest.mark.parametrize(
    ("pixels", "note"),
    [
        (np.zeros((3, 4, 4), dtype=np.uint8), "the image is fully transparent: kept exactly"),
        (np.full((3, 4, 3), 9, dtype=np.uint8), "the image has only 1 colour: all kept exactly"),
        (synthetic(4, 3, colors=2), "the image has only 2 colours: all kept exactly"),
    ],
)
def test_lossless_notes(tmp_path: Path, pixels: np.ndarray, note: str) -> None:
    report = compress_file(png_bytes(pixels), tmp_path / "o.png", 8)
    assert report.lossless and report.warnings[0] == note
    assert report.colors == (
        0 if pixels.shape[-1] == 4 else len(np.unique(pixels.reshape(-1, 3), axis=0))
    )


# --------------------------------------------------------------------------- QuantizeOptions


def test_int_and_no_options_mean_k(make_image, tmp_path: Path) -> None:
    src = make_image("in.png", width=40, height=30)
    compress_file(src, tmp_path / "int.png", 8)
    compress_file(src, tmp_path / "opts.png", QuantizeOptions(k=8))
    assert (tmp_path / "int.png").read_bytes() == (tmp_path / "opts.png").read_bytes()
    report = compress_file(src, tmp_path / "default.png")
    assert report.k == 16 == QuantizeOptions().colors
    assert len(colours_of(load_image(tmp_path / "default.png"))) == 16


def test_options_reach_the_fit(make_image, tmp_path: Path) -> None:
    """Every fit option of QuantizeOptions is what quantize gets: the same pixels out."""
    pixels = synthetic(40, 30)
    src = make_image("in.png", pixels=pixels)
    options = QuantizeOptions(
        k=6, engine="minibatch", space="oklab", seed=9, max_iter=7, restarts=2, batch_size=256
    )
    report = compress_file(src, tmp_path / "o.png", options)
    expected = quantize(
        pixels, 6, engine="minibatch", space="oklab", seed=9, max_iter=7, restarts=2, batch_size=256
    )
    back = np.asarray(load_image(tmp_path / "o.png").convert("RGB"))
    np.testing.assert_array_equal(back, expected.image())
    d = report.to_dict()
    assert (d["engine"], d["space"], d["seed"], d["colors"]) == ("minibatch", "oklab", 9, 6)


def test_keep_colors_and_dither_options(make_image, tmp_path: Path) -> None:
    src = make_image("in.png", width=48, height=32)
    options = QuantizeOptions(k=5, keep_colors=("#ff8000", (1, 2, 3)), dither="fs")
    assert options.keep_colors == ((255, 128, 0), (1, 2, 3))
    report = compress_file(src, tmp_path / "o.png", options)
    colours = {c[:3] for c in colours_of(load_image(tmp_path / "o.png"))}
    assert len(colours) == 5 and {(255, 128, 0), (1, 2, 3)} <= colours
    d = report.to_dict()
    assert (d["dither"], d["dither_strength"]) == ("fs", 1.0)
    plain = compress_file(
        src, tmp_path / "plain.png", QuantizeOptions(k=5, keep_colors=options.keep_colors)
    )
    assert (tmp_path / "plain.png").read_bytes() != (tmp_path / "o.png").read_bytes()
    assert plain.to_dict()["dither"] == "none"


def test_fixed_palette_option(make_image, tmp_path: Path) -> None:
    src = make_image("in.png", width=20, height=10)
    palette = ((0, 0, 0), (255, 255, 255), (200, 30, 30))
    report = compress_file(src, tmp_path / "o.png", QuantizeOptions(palette=palette))
    assert {c[:3] for c in colours_of(load_image(tmp_path / "o.png"))} <= set(palette)
    assert report.palette_in == "(array)"
    gpl = tmp_path / "p.gpl"
    gpl.write_text("GIMP Palette\n0 0 0\n255 255 255\n")
    options = QuantizeOptions(palette=gpl)
    assert options.palette == str(gpl)
    compress_file(src, tmp_path / "g.png", options)
    assert {c[:3] for c in colours_of(load_image(tmp_path / "g.png"))} == {
        (0, 0, 0),
        (255, 255, 255),
    }


def test_targets_option_chooses_k_and_names_the_output(make_image, tmp_path: Path) -> None:
    src = make_image("in.png", width=40, height=30)
    report = compress_file(src, None, QuantizeOptions(targets=(Target("psnr", 30.0),)))
    assert report.psnr >= 30.0 and report.search is not None and report.k == report.search.k
    assert report.output == str(tmp_path / f"in-k{report.k}.png")
    below = compress_file(src, tmp_path / "below.png", report.k - 1)
    assert below.psnr < 30.0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"k": 8, "palette": "p.gpl"},
            "palette and k do not go together: the palette gives the colours",
        ),
        ({"k": 8, "targets": (Target("psnr", 30),)}, "give k or targets, not both"),
        ({"dither_strength": 0.5}, "dither_strength needs Floyd–Steinberg dithering (dither fs)"),
        ({"batch_size": 64}, "batch_size is a setting of the minibatch engine (engine minibatch)"),
        ({"keep_colors": ("#zzz",)}, "keep_colors: '#zzz' is not a hex colour like #ff8000"),
        (
            {"k": 2, "keep_colors": ("#fff", "#000", "#f00")},
            "3 colours to keep (keep_colors) do not fit in a palette of k = 2",
        ),
        ({"k": 0}, "k must be a whole number from 1 to 256"),
        ({"k": 257}, "k must be a whole number from 1 to 256"),
        ({"engine": "elkan"}, "engine must be one of lloyd, minibatch"),
        ({"seed": -1}, "seed must be a whole number from 0 to 4294967295"),
        ({"restarts": 0}, "restarts must be a whole number from 1 to 100"),
    ],
)
def test_bad_options_name_the_fields(fields: dict, message: str) -> None:
    with pytest.raises(OptionsError) as caught:
        QuantizeOptions(**fields)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


def test_dominant_colors_default_k_and_options(make_image) -> None:
    src = make_image("in.png", pixels=synthetic(30, 20, colors=40))
    report = dominant_colors(src)
    assert report.k == 6 and len(report.colors) == 6 and report.engine == "lloyd"
    assert list(report.pixels) == sorted(report.pixels, reverse=True)
    assert int(report.pixels.sum()) == 30 * 20
    mini = dominant_colors(src, QuantizeOptions(k=3, engine="minibatch", seed=2))
    assert mini.k == 3 and len(mini.colors) == 3 and mini.engine == "minibatch"
    assert dominant_colors(src, 4).k == 4
    with pytest.raises(
        OptionsError, match=r"^palette is fixed: there are no dominant colours to find$"
    ):
        dominant_colors(src, QuantizeOptions(palette=((0, 0, 0),)))
