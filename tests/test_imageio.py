"""Decoding every supported mode, encoding every output format, atomic writes."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    colours_of,
    decode_png,
    files_in,
    load_image,
    other_rgb_profile,
    png_bytes,
    synthetic,
)
from PIL import Image, ImageCms

from kmeanscli import InputError, OutputError, UsageError, quantize
from kmeanscli.imageio import (
    FORMATS,
    atomic_write,
    decode,
    default_max_pixels,
    encode,
    format_for,
    is_srgb_profile,
)

# The library must not warn (a warning is text on the user's stderr).
pytestmark = pytest.mark.filterwarnings("error::UserWarning", "error::RuntimeWarning")

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
LAB = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()


def rgb_image(width: int = 8, height: int = 6, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


# --------------------------------------------------------------------------- decode: modes


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("1", "PNG"), ("L", "PNG"), ("P", "PNG"), ("RGB", "PNG"), ("CMYK", "JPEG"), ("CMYK", "TIFF")],
)
def test_opaque_modes_decode_to_rgb(mode: str, fmt: str) -> None:
    img = rgb_image().convert(mode)
    data = png_bytes(img, fmt)
    d = decode(data)
    assert d.mode == mode
    assert d.format == fmt
    assert d.bytes_in == len(data)
    assert d.pixels.dtype == np.uint8 and d.pixels.shape == (6, 8, 3)
    want = np.asarray(load_image(io.BytesIO(data)).convert("RGB"))
    np.testing.assert_array_equal(d.pixels, want)


def test_opaque_rgba_and_la_drop_the_alpha_channel() -> None:
    for mode in ("RGBA", "LA"):
        d = decode(png_bytes(rgb_image().convert(mode)))
        assert d.pixels.shape == (6, 8, 3), mode


def test_rgba_partial_alpha_kept() -> None:
    pixels = synthetic(9, 7, alpha="partial")
    d = decode(png_bytes(pixels))
    np.testing.assert_array_equal(d.pixels, pixels)


def test_la_partial_alpha_kept() -> None:
    gray = np.arange(63, dtype=np.uint8).reshape(7, 9) * 4
    alpha = np.where(np.arange(63).reshape(7, 9) % 3 == 0, 0, 128).astype(np.uint8)
    img = Image.fromarray(np.stack([gray, alpha], axis=2), "LA")
    d = decode(png_bytes(img))
    assert d.pixels.shape == (7, 9, 4)
    np.testing.assert_array_equal(d.pixels[..., 3], alpha)
    np.testing.assert_array_equal(d.pixels[..., 0], gray)
    np.testing.assert_array_equal(d.pixels[..., 2], gray)


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_p_with_transparency(fmt: str) -> None:
    idx = (np.arange(48).reshape(6, 8) % 4).astype(np.uint8)
    img = Image.fromarray(idx, "P")
    img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9] + [0] * (252 * 3))
    data = png_bytes(img, fmt, transparency=3)
    d = decode(data)
    assert d.mode == "P"
    assert d.pixels.shape == (6, 8, 4)
    np.testing.assert_array_equal(d.pixels[..., 3] == 0, idx == 3)
    np.testing.assert_array_equal(d.pixels[idx == 0], [[255, 0, 0, 255]] * int((idx == 0).sum()))


def test_p_with_partial_alpha_palette() -> None:
    idx = (np.arange(48).reshape(6, 8) % 3).astype(np.uint8)
    img = Image.fromarray(idx, "P")
    img.putpalette([10, 20, 30, 40, 50, 60, 70, 80, 90])
    data = png_bytes(img, transparency=bytes([0, 128, 255]))
    d = decode(data)
    assert d.pixels.shape == (6, 8, 4)
    assert set(np.unique(d.pixels[..., 3]).tolist()) == {0, 128, 255}


def test_i16_scaled_to_8_bits() -> None:
    a = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    d = decode(png_bytes(Image.fromarray(a)))
    assert d.mode.startswith("I")
    np.testing.assert_array_equal(d.pixels[..., 0], [[0, 1, 128, 255]])
    assert d.pixels.shape == (1, 4, 3)
    np.testing.assert_array_equal(d.pixels[..., 0], d.pixels[..., 2])


def test_float_in_unit_range_scaled() -> None:
    a = np.array([[0.0, 0.5, 1.0, 0.25]], dtype=np.float32)
    d = decode(png_bytes(Image.fromarray(a, "F"), "TIFF"))
    assert d.mode == "F"
    np.testing.assert_array_equal(d.pixels[..., 0], [[0, 128, 255, 64]])


def test_float_beyond_unit_range_clipped() -> None:
    a = np.array([[-5.0, 3.0, 200.4, 999.0, np.nan]], dtype=np.float32)
    d = decode(png_bytes(Image.fromarray(a, "F"), "TIFF"))
    np.testing.assert_array_equal(d.pixels[..., 1], [[0, 3, 200, 255, 0]])


# --------------------------------------------------------------------------- decode: metadata


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_exif_orientation_applied(fmt: str) -> None:
    # 8 wide, 4 high; left half black, right half white. Orientation 6 = rotate 90° CW to view.
    a = np.zeros((4, 8, 3), dtype=np.uint8)
    a[:, 4:] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    save = {"quality": 100} if fmt == "JPEG" else {}
    if fmt == "WEBP":
        save = {"lossless": True}
    d = decode(png_bytes(Image.fromarray(a), fmt, exif=exif, **save))
    assert d.pixels.shape == (8, 4, 3)
    # after a clockwise turn the black (left) half is on top
    assert d.pixels[:3].max() < 40
    assert d.pixels[5:].min() > 215


def test_rgb_icc_profile_kept_other_dropped() -> None:
    img = rgb_image()
    assert decode(png_bytes(img, icc_profile=SRGB)).icc_profile == SRGB
    assert decode(png_bytes(img, "JPEG", icc_profile=SRGB)).icc_profile == SRGB
    assert decode(png_bytes(img)).icc_profile is None
    assert decode(png_bytes(img, icc_profile=LAB)).icc_profile is None


# --------------------------------------------------------------------------- decode: refusals


def _frames(fmt: str) -> bytes:
    frames = [rgb_image(seed=s) for s in range(3)]
    return png_bytes(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100)


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_animation_refused_by_decode_with_its_bytes(fmt: str) -> None:
    """decode() reads still images; an animation raises AnimatedInputError (an InputError)
    carrying the bytes, which compress hands to kmeanscli.animation.decode_animation."""
    from kmeanscli.imageio import AnimatedInputError

    data = _frames(fmt)
    with pytest.raises(AnimatedInputError, match=r"anim: is animated \(3 frames\)") as info:
        decode(data, name="anim")
    assert isinstance(info.value, InputError)
    assert info.value.data == data and info.value.n_frames == 3


def test_multi_page_tiff_refused() -> None:
    with pytest.raises(InputError, match=r"3 frames; multi-page images are not supported"):
        decode(_frames("TIFF"), name="anim")


def test_single_frame_gif_accepted() -> None:
    d = decode(png_bytes(rgb_image().convert("P"), "GIF"))
    assert d.pixels.shape[:2] == (6, 8)


@pytest.fixture(scope="session")
def bomb_png() -> bytes:
    """A real 10000x10000 (100 Mpx) 1-bit PNG of about 12 kB."""
    return png_bytes(Image.new("1", (10_000, 10_000)))


def test_decompression_bomb_refused(bomb_png: bytes) -> None:
    with pytest.raises(InputError, match=r"100,000,000 pixels.*--max-pixels"):
        decode(bomb_png, name="bomb.png")
    with pytest.raises(InputError, match="over the limit of 99,999,999"):
        decode(bomb_png, max_pixels=99_999_999)


def test_max_pixels_is_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image as PILImage

    data = png_bytes(rgb_image(50, 40))  # 2000 px
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 1000)
    assert default_max_pixels() == 1000
    with pytest.raises(InputError, match="decompression bomb"):
        decode(data)
    with pytest.raises(InputError):
        decode(data, max_pixels=1999)
    assert decode(data, max_pixels=2000).pixels.shape == (40, 50, 3)
    assert PILImage.MAX_IMAGE_PIXELS == 1000  # restored after decoding


def test_default_max_pixels_is_pillows() -> None:
    assert default_max_pixels() == Image.MAX_IMAGE_PIXELS == 89_478_485


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"hello, I am text\n", "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "input"),
    ],
)
def test_bad_bytes(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        decode(data)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"])
def test_truncated(fmt: str) -> None:
    data = png_bytes(rgb_image(64, 64), fmt)
    with pytest.raises(InputError, match=r"^t: "):
        decode(data[: len(data) // 2], name="t")


def test_corrupt_png() -> None:
    data = bytearray(png_bytes(rgb_image(32, 32)))
    data[60:90] = b"\xff" * 30  # inside IDAT: CRC and zlib stream broken
    with pytest.raises(InputError, match="corrupt or truncated"):
        decode(bytes(data))


def test_paths(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        decode(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        decode(tmp_path / "missing.png")
    p = tmp_path / "ok.png"
    p.write_bytes(png_bytes(rgb_image()))
    assert decode(p).bytes_in == p.stat().st_size
    assert decode(str(p)).pixels.shape == (6, 8, 3)
    with p.open("rb") as fh:
        assert decode(fh).pixels.shape == (6, 8, 3)


def test_error_names_the_path(tmp_path: Path) -> None:
    p = tmp_path / "x.png"
    p.write_bytes(b"not an image")
    with pytest.raises(InputError) as info:
        decode(p)
    assert str(info.value).startswith(f"{p}: ")


# --------------------------------------------------------------------------- format_for


def test_format_for() -> None:
    assert format_for(None) == "PNG"
    for ext, fmt in FORMATS.items():
        assert format_for(f"a/b{ext}") == fmt
        assert format_for(f"B{ext.upper()}") == fmt
    assert set(FORMATS) == {".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg"}
    for bad in ("a.xyz", "noext", "a.png.bak"):
        with pytest.raises(UsageError, match="unknown output extension"):
            format_for(bad)


# --------------------------------------------------------------------------- encode


@pytest.fixture(scope="module")
def rgb_result():
    pixels = synthetic(40, 30)
    return pixels, quantize(pixels, 8)


@pytest.fixture(scope="module")
def alpha_result():
    pixels = synthetic(40, 30, alpha="partial")
    return pixels, quantize(pixels, 8)


def test_png_is_a_palette_image(rgb_result) -> None:
    _, r = rgb_result
    data, notes = encode(r, "PNG")
    assert notes == []
    img = decode_png(data)
    assert img.format == "PNG" and img.mode == "P"
    np.testing.assert_array_equal(np.asarray(img.convert("RGB")), r.image())
    assert len(colours_of(img)) == 8


def test_png_keeps_transparency(alpha_result) -> None:
    pixels, r = alpha_result
    data, notes = encode(r, "PNG")
    assert notes == []
    img = decode_png(data)
    assert img.mode == "P"
    assert "transparency" in img.info  # tRNS
    back = np.asarray(img.convert("RGBA"))
    np.testing.assert_array_equal(back, r.image())
    # transparent stays transparent, partial stays partial, opaque stays opaque
    for lo, hi in ((0, 0), (1, 254), (255, 255)):
        group = (pixels[..., 3] >= lo) & (pixels[..., 3] <= hi)
        assert group.any()
        assert ((back[..., 3][group] >= lo) & (back[..., 3][group] <= hi)).all()


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "WEBP", "BMP", "TIFF"])
def test_lossless_formats_decode_to_the_palette(rgb_result, fmt: str) -> None:
    _, r = rgb_result
    data, _ = encode(r, fmt)
    img = decode_png(data)
    assert img.format == fmt
    np.testing.assert_array_equal(np.asarray(img.convert("RGB")), r.image())


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "TIFF"])
def test_other_formats_keep_full_transparency(alpha_result, fmt: str) -> None:
    pixels, r = alpha_result
    data, notes = encode(r, fmt)
    back = np.asarray(decode_png(data).convert("RGBA"))
    transparent = pixels[..., 3] == 0
    assert (back[..., 3][transparent] == 0).all()
    if fmt == "GIF":
        assert any("partial transparency" in n for n in notes)
    else:
        np.testing.assert_array_equal(back, r.image())


def test_bmp_with_alpha_is_flattened_onto_white(alpha_result) -> None:
    pixels, r = alpha_result
    data, notes = encode(r, "BMP")
    img = decode_png(data)
    assert img.mode == "P"  # still an 8-bit palette file
    assert any("BMP" in n and "white" in n for n in notes)
    back = np.asarray(img.convert("RGB")).astype(int)
    out = r.image().astype(float)
    a = out[..., 3:] / 255
    want = np.rint(out[..., :3] * a + 255 * (1 - a))
    np.testing.assert_array_equal(back, want)
    assert (back[pixels[..., 3] == 0] == 255).all()


def test_jpeg_warns(rgb_result, alpha_result) -> None:
    _, r = rgb_result
    data, notes = encode(r, "JPEG")
    assert decode_png(data).format == "JPEG"
    assert any("JPEG" in n and "colours" in n for n in notes)
    _, ra = alpha_result
    data, notes = encode(ra, "JPEG")
    assert decode_png(data).mode == "RGB"
    assert any("white" in n for n in notes)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF", "JPEG"])
def test_icc_profile_embedded(rgb_result, fmt: str) -> None:
    """A profile that is not sRGB is kept as it is; an sRGB one is PNG's 13-byte ``sRGB``
    chunk, or nothing in formats that take sRGB for granted."""
    _, r = rgb_result
    other = other_rgb_profile()
    data, _ = encode(r, fmt, icc_profile=other)
    assert decode_png(data).info.get("icc_profile") == other
    plain, _ = encode(r, fmt)
    assert not decode_png(plain).info.get("icc_profile")
    data, _ = encode(r, fmt, icc_profile=SRGB)
    assert not decode_png(data).info.get("icc_profile")
    if fmt == "PNG":
        chunks = _chunk_kinds(data)
        assert chunks.index(b"sRGB") < chunks.index(b"PLTE")
        assert decode_png(data).info.get("srgb") == 0
        assert len(data) == len(plain) + 13
    else:
        assert data == plain


def test_srgb_profiles_are_recognised() -> None:
    assert is_srgb_profile(SRGB)
    assert not is_srgb_profile(other_rgb_profile())
    assert not is_srgb_profile(b"not a profile")
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    assert not is_srgb_profile(lab)


def test_encode_is_deterministic(alpha_result) -> None:
    _, r = alpha_result
    for fmt in ("PNG", "GIF", "WEBP", "BMP", "TIFF", "JPEG"):
        assert encode(r, fmt)[0] == encode(r, fmt)[0], fmt


def _chunk_kinds(png: bytes) -> list[bytes]:
    """The chunk types of a PNG file, in order (read here, not by the library)."""
    kinds, pos = [], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kinds.append(png[pos + 4 : pos + 8])
        pos += 12 + length
    return kinds


@pytest.mark.parametrize("k", [4, 200])
def test_large_png_is_valid_and_the_same_every_time(k: int) -> None:
    """From 1 MP the PNG data is deflated in 2 MiB parts over threads: a 2.4 MP image (two
    parts) is a valid PNG with the same pixels and the usual chunks, the same bytes every
    time, and no larger than Pillow's own PNG of it."""
    pixels = np.repeat(np.repeat(synthetic(160, 150), 10, axis=0), 10, axis=1)
    assert pixels.shape[0] * pixels.shape[1] > 2 * (1 << 20)  # more than one part
    result = quantize(pixels, k)
    first, _ = encode(result, "PNG", icc_profile=other_rgb_profile())
    assert encode(result, "PNG", icc_profile=other_rgb_profile())[0] == first
    decoded = decode_png(first)
    decoded.load()  # checks every CRC and the zlib checksum
    assert decoded.mode == "P" and decoded.info.get("icc_profile") == other_rgb_profile()
    np.testing.assert_array_equal(np.asarray(decoded.convert("RGB")), result.image())
    kinds = [kind for kind in _chunk_kinds(first) if kind != b"IDAT"]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"PLTE" in kinds
    reference = png_bytes(decoded, optimize=False)
    assert len(first) <= 1.01 * len(reference)


def test_unknown_format(rgb_result) -> None:
    with pytest.raises(UsageError):
        encode(rgb_result[1], "XYZ")


# --------------------------------------------------------------------------- atomic_write


def test_atomic_write_success(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    with atomic_write(target) as fh:
        fh.write(b"abc")
        assert not target.exists()  # only renamed at the end
    assert target.read_bytes() == b"abc"
    assert files_in(tmp_path) == {"out.bin"}


def test_atomic_write_failure_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write(b"partial")
        raise RuntimeError("boom")
    assert files_in(tmp_path) == set()


def test_atomic_write_failure_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_write(target) as fh:
        fh.write(b"new")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"old"
    assert files_in(tmp_path) == {"out.bin"}


def test_atomic_write_bad_folders(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"), atomic_write(tmp_path / "no" / "x"):
        pass
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(OutputError, match="not a folder"), atomic_write(tmp_path / "file" / "x"):
        pass
    assert files_in(tmp_path) == {"file"}


def test_atomic_write_file_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    with atomic_write(target) as fh:
        fh.write(b"x")
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    import os

    m = os.umask(0)
    os.umask(m)
    return m


def test_atomic_write_os_error_becomes_output_error(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    message = r"out\.bin: cannot write: Input/output error"
    with pytest.raises(OutputError, match=message), atomic_write(target) as fh:
        fh.write(b"new")
        raise OSError(5, "Input/output error")
    assert target.read_bytes() == b"old"
    assert files_in(tmp_path) == {"out.bin"}


def test_mode_i_treated_as_16_bit() -> None:
    a = np.array([[0, 257, 65535, 100_000, -5]], dtype=np.int32)
    data = png_bytes(Image.fromarray(a, "I"), "TIFF")
    d = decode(data)
    assert d.mode == "I"
    np.testing.assert_array_equal(d.pixels[..., 0], [[0, 1, 255, 255, 0]])
