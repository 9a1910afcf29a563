"""Error metrics: exact values, alpha handling, bad arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kmeanscli import mse, psnr
from kmeanscli.core.metrics import psnr_from_mse, squared_error_sum


def test_identical_images() -> None:
    a = np.arange(60, dtype=np.uint8).reshape(4, 5, 3)
    assert mse(a, a) == 0
    assert psnr(a, a) == math.inf


def test_known_values() -> None:
    a = np.zeros((2, 2, 3), dtype=np.uint8)
    b = a.copy()
    b[0, 0, 0] = 12  # one channel off by 12: 144 / 12 values
    assert squared_error_sum(a, b) == 144
    assert mse(a, b) == 12.0
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 12))


def test_no_uint8_overflow() -> None:
    a = np.zeros((10, 10, 3), dtype=np.uint8)
    b = np.full((10, 10, 3), 255, dtype=np.uint8)
    assert mse(a, b) == 255.0**2
    assert psnr(a, b) == pytest.approx(0.0)
    assert mse(b, a) == 255.0**2


def test_large_image_sum_is_exact() -> None:
    a = np.zeros((2000, 2000, 3), dtype=np.uint8)
    b = np.full_like(a, 255)
    assert squared_error_sum(a, b) == 2000 * 2000 * 3 * 255**2


def test_transparent_in_both_counts_as_exact() -> None:
    a = np.zeros((1, 3, 4), dtype=np.uint8)
    b = a.copy()
    a[0, 0] = [10, 20, 30, 0]  # hidden colours differ: no error
    b[0, 0] = [0, 0, 0, 0]
    a[0, 1] = [10, 20, 30, 255]  # visible in one, transparent in the other: all of it
    b[0, 1] = [10, 20, 30, 0]  # counts (as seen, the colour is gone too)
    assert squared_error_sum(a, b) == 10**2 + 20**2 + 30**2 + 255**2
    assert mse(a, b) == (10**2 + 20**2 + 30**2 + 255**2) / 12


def test_rgba_error_is_premultiplied_by_alpha() -> None:
    """A colour difference hidden by alpha 51 (20 %) costs 4 % of the same difference seen
    opaque; the alpha difference itself counts in full."""
    a = np.array([[[200, 0, 0, 51], [200, 0, 0, 255], [0, 0, 0, 100]]], dtype=np.uint8)
    b = np.array([[[100, 0, 0, 51], [100, 0, 0, 255], [0, 0, 0, 90]]], dtype=np.uint8)
    hidden, seen, alpha = (100 * 51 / 255) ** 2, 100.0**2, 10.0**2
    assert squared_error_sum(a, b) == pytest.approx(hidden + seen + alpha, rel=1e-12)


def test_psnr_from_mse() -> None:
    assert psnr_from_mse(0) == math.inf
    assert psnr_from_mse(-1) == math.inf
    assert psnr_from_mse(255.0**2) == pytest.approx(0.0)
    assert psnr_from_mse(1.0) == pytest.approx(48.1308036)


def test_shape_mismatch_and_empty() -> None:
    with pytest.raises(ValueError, match="different shapes"):
        mse(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 3, 3), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        mse(np.zeros((0, 2, 3), np.uint8), np.zeros((0, 2, 3), np.uint8))


def test_inputs_not_modified() -> None:
    a = np.full((3, 3, 4), 7, dtype=np.uint8)
    a[..., 3] = 0
    b = np.zeros_like(a)
    a0, b0 = a.copy(), b.copy()
    mse(a, b)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)
