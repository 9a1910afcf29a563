"""Colour-space conversions: round trips and published reference values."""

from __future__ import annotations

import numpy as np
import pytest

from kmeanscli.core import color


def _grey_levels() -> np.ndarray:
    v = np.arange(256, dtype=np.uint8)
    return np.stack([v, v, v], axis=1)


def _random_colors(n: int = 20_000) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(n, 3), dtype=np.uint8)


@pytest.mark.parametrize("space", ["oklab", "lab", "rgb"])
@pytest.mark.parametrize("colors", [_grey_levels(), _random_colors()], ids=["greys", "random"])
def test_round_trip_within_one_255th(space: str, colors: np.ndarray) -> None:
    back = color.from_space(color.to_space(colors, space), space)
    # on the 0..255 scale, "within 1/255 of full scale" is within one code value
    assert np.abs(back - colors).max() < 1.0
    assert np.array_equal(np.clip(np.rint(back), 0, 255).astype(np.uint8), colors)


def test_primaries_and_corners_round_trip_exactly() -> None:
    corners = np.array(
        [[r, g, b] for r in (0, 255) for g in (0, 255) for b in (0, 255)], dtype=np.uint8
    )
    for space in ("oklab", "lab"):
        back = color.from_space(color.to_space(corners, space), space)
        assert np.allclose(back, corners, atol=1e-3)


def test_oklab_white_and_black() -> None:
    white = color.srgb_to_oklab(np.array([255, 255, 255]))
    black = color.srgb_to_oklab(np.array([0, 0, 0]))
    assert np.allclose(white, [1.0, 0.0, 0.0], atol=1e-4)
    assert np.allclose(black, [0.0, 0.0, 0.0], atol=1e-12)


def test_oklab_published_primaries() -> None:
    # values from Björn Ottosson's reference implementation (and CSS Color 4's oklab())
    rgb = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]])
    expected = np.array(
        [
            [0.62796, 0.22486, 0.12585],
            [0.86644, -0.23389, 0.17950],
            [0.45201, -0.03246, -0.31153],
        ]
    )
    assert np.allclose(color.srgb_to_oklab(rgb), expected, atol=2e-4)


def test_lab_published_primaries() -> None:
    rgb = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]])
    expected = np.array(
        [
            [53.24, 80.09, 67.20],
            [87.73, -86.18, 83.18],
            [32.30, 79.19, -107.86],
            [100.0, 0.0, 0.0],
        ]
    )
    assert np.allclose(color.srgb_to_lab(rgb), expected, atol=0.02)


def test_lab_matches_scikit_image() -> None:
    from skimage.color import rgb2lab

    colors = _random_colors(2000)
    ours = color.srgb_to_lab(colors)
    theirs = rgb2lab(colors.reshape(1, -1, 3)).reshape(-1, 3)
    assert np.allclose(ours, theirs, atol=1e-3)  # scikit-image rounds the CIE constants


def test_srgb_transfer_curve() -> None:
    lin = color.srgb_to_linear(np.array([[0, 10, 255], [128, 128, 128]]))
    assert lin[0, 0] == 0.0
    assert lin[0, 1] == pytest.approx(10 / 255 / 12.92)  # linear segment
    assert lin[0, 2] == pytest.approx(1.0)
    assert lin[1, 0] == pytest.approx(0.2158605, abs=1e-6)  # mid grey on the power segment


def test_vectorised_shapes_and_bad_input() -> None:
    img = np.zeros((4, 5, 3), dtype=np.uint8)
    assert color.to_space(img, "oklab").shape == (4, 5, 3)
    with pytest.raises(ValueError, match="unknown colour space"):
        color.to_space(img, "hsv")
    with pytest.raises(ValueError, match="shape"):
        color.srgb_to_oklab(np.zeros((4, 2)))
