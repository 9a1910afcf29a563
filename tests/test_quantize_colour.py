"""Clustering in a colour space, locked colours, fixed palettes and dithering (library)."""

from __future__ import annotations

import numpy as np
import pytest

from kmeanscli import quantize
from kmeanscli.core import color
from kmeanscli.core.dither import floyd_steinberg
from kmeanscli.core.metrics import mse
from kmeanscli.core.remap import map_to_palette


def _photo_like(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus noise: thousands of distinct colours."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([255 * x / w, 255 * y / h, 128 + 100 * np.sin(x / 7.0 + y / 11.0)], axis=-1)
    img += rng.normal(0, 6, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _gradient(h: int = 32, w: int = 128) -> np.ndarray:
    ramp = np.linspace(0, 255, w)
    img = np.stack([ramp, 0.5 * ramp + 40, 255 - ramp], axis=-1)
    return np.repeat(np.rint(img)[None], h, axis=0).astype(np.uint8)


@pytest.mark.parametrize("space", ["rgb", "oklab", "lab"])
@pytest.mark.parametrize("k", [2, 7, 16])
def test_exactly_k_colours_each_used_in_every_space(space: str, k: int) -> None:
    img = _photo_like()
    r = quantize(img, k, space=space)
    assert r.colors == k == len(r.palette)
    assert len(np.unique(r.palette, axis=0)) == k
    assert (r.counts > 0).all()
    assert r.counts.sum() == img.shape[0] * img.shape[1]
    assert r.mse == pytest.approx(mse(img, r.image()))


@pytest.mark.parametrize("space", ["oklab", "lab"])
def test_every_colour_goes_to_its_nearest_palette_colour_in_the_space(space: str) -> None:
    img = _photo_like()
    r = quantize(img, 12, space=space)
    px = color.to_space(img.reshape(-1, 3), space)
    pal = color.to_space(r.palette, space)
    d = ((px[:, None, :] - pal[None, :, :]) ** 2).sum(axis=-1)
    chosen = d[np.arange(len(px)), r.indices.ravel()]
    assert np.allclose(chosen, d.min(axis=1), rtol=0, atol=1e-12)


def test_spaces_give_different_palettes_and_rgb_is_the_default() -> None:
    img = _photo_like()
    default = quantize(img, 8)
    rgb = quantize(img, 8, space="rgb")
    assert np.array_equal(default.palette, rgb.palette)
    assert np.array_equal(default.indices, rgb.indices)
    assert not np.array_equal(quantize(img, 8, space="oklab").palette, rgb.palette)


def test_space_result_is_reproducible() -> None:
    img = _photo_like()
    a, b = quantize(img, 8, space="oklab", seed=3), quantize(img, 8, space="oklab", seed=3)
    assert np.array_equal(a.palette, b.palette) and np.array_equal(a.indices, b.indices)


def test_space_with_alpha_keeps_the_transparent_entry() -> None:
    img = np.dstack([_photo_like(), np.full((48, 64), 255, np.uint8)])
    img[:10, :, 3] = 0
    img[10:20, :, 3] = 128
    r = quantize(img, 6, space="oklab")
    assert r.transparent_index == 0 and tuple(r.palette[0]) == (0, 0, 0, 0)
    assert r.colors == 5 and len(r.palette) == 6 and (r.counts > 0).all()
    assert (r.indices[:10] == 0).all() and not (r.indices[10:] == 0).any()
    assert set(r.palette[1:, 3].tolist()) >= {128, 255}


def test_unknown_space_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="space must be one of"):
        quantize(_photo_like(), 4, space="hsv")


@pytest.mark.parametrize("space", ["rgb", "oklab"])
def test_locked_colours_are_present_exactly(space: str) -> None:
    img = _photo_like()
    keep = np.array([[255, 0, 0], [255, 255, 255], [0, 0, 0]], dtype=np.uint8)
    r = quantize(img, 8, space=space, keep=keep)
    assert r.colors == 8 and len(np.unique(r.palette, axis=0)) == 8
    rows = {tuple(c) for c in r.palette.tolist()}
    assert {(255, 0, 0), (255, 255, 255), (0, 0, 0)} <= rows
    free = [i for i, c in enumerate(r.palette.tolist()) if tuple(c) not in map(tuple, keep)]
    assert (r.counts[free] > 0).all()  # the fitted colours are all used
    assert r.mse == pytest.approx(mse(img, r.image()))


def test_locked_colours_on_a_small_image_and_too_many() -> None:
    img = np.array([[[1, 2, 3], [4, 5, 6]]], dtype=np.uint8)
    keep = np.array([[9, 9, 9]], dtype=np.uint8)
    r = quantize(img, 4, keep=keep)
    assert r.lossless and {(9, 9, 9), (1, 2, 3), (4, 5, 6)} == set(map(tuple, r.palette.tolist()))
    with pytest.raises(ValueError, match="do not fit"):
        quantize(img, 2, keep=np.array([[0, 0, 0], [1, 1, 1], [2, 2, 2]], dtype=np.uint8))


@pytest.mark.parametrize("space", ["rgb", "oklab"])
def test_map_to_palette_uses_only_given_colours_in_order(space: str) -> None:
    img = _photo_like()
    given = np.array([[250, 10, 10], [10, 250, 10], [10, 10, 250], [128, 128, 128]], np.uint8)
    r = map_to_palette(img, given, space=space)
    assert np.array_equal(r.palette, given)
    out = {tuple(c) for c in r.image().reshape(-1, 3).tolist()}
    assert out <= {tuple(c) for c in given.tolist()}
    px = color.to_space(img.reshape(-1, 3), space)
    pal = color.to_space(given, space)
    d = ((px[:, None, :] - pal[None, :, :]) ** 2).sum(axis=-1)
    assert np.allclose(d[np.arange(len(px)), r.indices.ravel()], d.min(axis=1))


def test_map_to_palette_keeps_transparency_and_unused_entries() -> None:
    img = np.zeros((4, 4, 4), dtype=np.uint8)
    img[..., :3] = 200
    img[..., 3] = 255
    img[0, :, 3] = 0
    given = np.array([[0, 0, 0], [201, 201, 201], [255, 0, 0]], np.uint8)
    r = map_to_palette(img, given)
    assert r.transparent_index == 0 and len(r.palette) == 4
    assert r.counts.tolist() == [4, 0, 12, 0]  # every entry available, used or not
    with pytest.raises(ValueError, match="no room"):
        map_to_palette(img, _all256())


def _all256() -> np.ndarray:
    v = np.arange(256, dtype=np.uint8)
    return np.stack([v, v[::-1], v], axis=1)


def _blur(img: np.ndarray) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(img.astype(np.float64), sigma=(2.0, 2.0, 0))


def test_dithered_output_is_closer_to_the_original_after_a_blur() -> None:
    img = _gradient()
    plain = quantize(img, 4)
    dithered = floyd_steinberg(img, plain, 1.0)
    assert np.array_equal(dithered.palette, plain.palette)
    assert (dithered.counts > 0).all() and dithered.colors == 4
    blurred = _blur(img)
    err_plain = np.mean((_blur(plain.image()) - blurred) ** 2)
    err_dith = np.mean((_blur(dithered.image()) - blurred) ** 2)
    assert err_dith < 0.5 * err_plain
    half = floyd_steinberg(img, plain, 0.5)
    err_half = np.mean((_blur(half.image()) - blurred) ** 2)
    assert err_dith < err_half < err_plain
    assert floyd_steinberg(img, plain, 0.0) is plain


def test_dithering_keeps_alpha_and_every_entry() -> None:
    img = np.dstack([_gradient(), np.full((32, 128), 255, np.uint8)])
    img[:8, :, 3] = 0
    img[8:12, :, 3] = 100
    plain = quantize(img, 6)
    dithered = floyd_steinberg(img, plain)
    assert (dithered.indices[:8] == 0).all()  # transparent stays transparent
    assert np.array_equal(dithered.indices[8:12], plain.indices[8:12])  # partial: undithered
    assert not np.array_equal(dithered.indices[12:], plain.indices[12:])
    assert (dithered.counts > 0).all() and dithered.colors == plain.colors
    assert dithered.mse == pytest.approx(mse(img, dithered.image()))


def test_dither_argument_checks() -> None:
    img = _gradient()
    r = quantize(img, 4)
    with pytest.raises(ValueError, match="strength"):
        floyd_steinberg(img, r, 1.5)
    with pytest.raises(ValueError, match="image the result"):
        floyd_steinberg(img[:5], r)


def _clusters(seed: int = 0) -> np.ndarray:
    """Nine colour blobs of unequal size: k-means++ with k < 9 has real choices to make."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(20, 236, size=(9, 3))
    sizes = rng.integers(50, 400, size=9)
    px = np.concatenate(
        [c + rng.normal(0, 12, (n, 3)) for c, n in zip(centres, sizes, strict=True)]
    )
    px = np.clip(np.rint(px), 0, 255).astype(np.uint8)
    return px[rng.permutation(len(px))]


@pytest.mark.parametrize("space", ["rgb", "oklab"])
def test_restarts_never_worse_and_reproducible(space: str) -> None:
    px = _clusters(1)
    one = quantize(px, 4, seed=1, space=space)
    best = quantize(px, 4, seed=1, space=space, restarts=3)
    assert best.colors == 4 and (best.counts > 0).all()
    if space == "rgb":
        assert best.mse <= one.mse
    again = quantize(px, 4, seed=1, space=space, restarts=3)
    assert np.array_equal(best.palette, again.palette)
    assert np.array_equal(best.indices, again.indices)


def test_default_restarts_are_three_up_to_k8_then_one() -> None:
    from kmeanscli.core.quantize import auto_restarts

    assert [auto_restarts(k) for k in (2, 8, 9, 16, 256)] == [3, 3, 1, 1, 1]
    px = _clusters()
    a, b = quantize(px, 5), quantize(px, 5, restarts=3)
    assert np.array_equal(a.palette, b.palette) and np.array_equal(a.indices, b.indices)
    c, d = quantize(px, 9), quantize(px, 9, restarts=1)
    assert np.array_equal(c.palette, d.palette) and np.array_equal(c.indices, d.indices)
    with pytest.raises(ValueError, match="restarts"):
        quantize(px, 5, restarts=0)


def test_restarts_with_locked_colours() -> None:
    px = _clusters()
    r = quantize(px, 5, keep=np.array([[0, 0, 0]], np.uint8), restarts=2)
    assert (0, 0, 0) in {tuple(c) for c in r.palette.tolist()} and r.colors == 5


def test_colours_outside_the_palette_gamut_do_not_bleed() -> None:
    # a flat colour beyond every palette colour: plain Floyd–Steinberg piles up error and
    # ends up dotting the area with far-away colours; the gamut guard keeps to the nearest two
    img = np.zeros((40, 60, 3), dtype=np.uint8)
    img[...] = (170, 200, 235)
    palette = np.array([[190, 200, 215], [230, 235, 240], [40, 40, 40], [60, 110, 150]], np.uint8)
    from PIL import Image

    pal_img = Image.new("P", (1, 1))
    pal_img.putpalette(palette.tobytes())
    unguarded = Image.fromarray(img).quantize(palette=pal_img, dither=Image.Dither.FLOYDSTEINBERG)
    assert 3 in np.asarray(unguarded)  # plain Floyd–Steinberg dots the area with #3c6e96
    dithered = floyd_steinberg(img, map_to_palette(img, palette))
    assert set(np.unique(dithered.indices).tolist()) <= {0, 1}


def test_colours_hidden_by_low_alpha_do_not_take_palette_entries() -> None:
    """Partly transparent pixels are clustered as they are seen (premultiplied): 60 wildly
    different colours at alpha 3 (nearly invisible) must not win entries from 6 opaque
    colours. Clustering the raw RGBA values gave most entries to the invisible ones."""
    rng = np.random.default_rng(1)
    opaque = rng.integers(0, 256, (6, 3))
    hidden = rng.integers(0, 256, (60, 3))
    img = np.zeros((40, 60, 4), np.uint8)
    img[:20, :, :3] = opaque[rng.integers(0, 6, (20, 60))]
    img[:20, :, 3] = 255
    img[20:, :, :3] = hidden[rng.integers(0, 60, (20, 60))]
    img[20:, :, 3] = 3
    r = quantize(img, 8)
    got = {tuple(c) for c in r.palette[r.palette[:, 3] == 255, :3].tolist()}
    assert got >= {tuple(c) for c in opaque.tolist()}  # every opaque colour kept exactly
    np.testing.assert_array_equal(r.image()[:20], img[:20])
