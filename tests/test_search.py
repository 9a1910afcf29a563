"""The quality metrics (SSIM, ΔE00) and the bisection that picks k for a target."""

from __future__ import annotations

import functools
import json
import math

import numpy as np
import pytest
from conftest import gradient, png_bytes
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity
from sklearn.cluster import MiniBatchKMeans  # noqa: F401  (loads OpenMP before the limit)
from threadpoolctl import threadpool_limits

from kmeanscli import quantize
from kmeanscli.core import metrics
from kmeanscli.core.quantize import QuantizeResult
from kmeanscli.core.search import Target, search_k
from kmeanscli.errors import TargetNotMetError


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny images: OpenMP threads only add contention on a busy machine.
    with threadpool_limits(1):
        yield


# -- metrics ------------------------------------------------------------------------------


def test_ssim_is_scikit_image_structural_similarity():
    a = gradient()
    b = quantize(a, 8).image()
    expected = structural_similarity(a, b, channel_axis=-1, data_range=255)
    assert metrics.ssim(a, b) == pytest.approx(expected, abs=1e-12)
    assert metrics.ssim(a, a) == pytest.approx(1.0)


def test_ssim_in_strips_equals_one_pass():
    a = gradient(61, 23)
    b = quantize(a, 6).image()
    whole = metrics.ssim(a, b)
    for rows in (7, 10, 28):
        assert metrics.ssim(a, b, strip_rows=rows) == pytest.approx(whole, abs=1e-12)


def test_ssim_small_images_use_a_smaller_window_and_tiny_ones_are_nan():
    a = gradient(5, 9)
    b = a // 2
    expected = structural_similarity(a, b, channel_axis=-1, data_range=255, win_size=5)
    assert metrics.ssim(a, b) == pytest.approx(expected)
    assert math.isnan(metrics.ssim(a[:2], b[:2]))


def test_delta_e_is_mean_ciede2000():
    a = gradient()
    b = quantize(a, 8).image()
    expected = deltaE_ciede2000(rgb2lab(a), rgb2lab(b), channel_axis=-1).mean()
    assert metrics.delta_e(a, b) == pytest.approx(expected, rel=1e-9)
    assert metrics.delta_e(a, a) == 0.0


def test_rgba_is_scored_as_shown_over_white():
    rgb = gradient(12, 12)
    rgba = np.dstack([rgb, np.full((12, 12), 255, np.uint8)])
    rgba[:4, :, 3] = 0  # invisible rows: whatever their RGB, they show as white
    other = rgba.copy()
    other[:4, :, :3] = 0
    assert metrics.delta_e(rgba, other) == 0.0
    assert metrics.ssim(rgba, other) == pytest.approx(1.0)
    shown = metrics.visible_rgb(rgba)
    assert shown.shape == (12, 12, 3)
    assert np.all(shown[:4] == 255.0)


def test_metrics_refuse_mismatched_or_flat_inputs():
    a = gradient(10, 10)
    with pytest.raises(ValueError, match="different shapes"):
        metrics.ssim(a, a[:9])
    with pytest.raises(ValueError, match=r"\(H, W, 3\|4\)"):
        metrics.delta_e(a.reshape(-1, 3), a.reshape(-1, 3))


def test_scores_bundle():
    a = gradient()
    r = quantize(a, 16)
    s = metrics.scores(a, r.image(), mse_value=r.mse)
    assert s.mse == pytest.approx(metrics.mse(a, r.image()))
    assert s.psnr == pytest.approx(r.psnr)
    assert 0 < s.ssim < 1 and s.delta_e > 0


# -- targets --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "value", "message"),
    [
        ("psnr", 0.0, "above 0 dB"),
        ("psnr", math.nan, "finite"),
        ("ssim", 1.5, r"\(-1, 1\]"),
        ("delta_e", -1.0, "0 or more"),
        ("mse", 3.0, "unknown metric"),
    ],
)
def test_bad_targets(metric, value, message):
    with pytest.raises(ValueError, match=message):
        Target(metric, value)


def test_target_flags_build_the_targets_and_a_bad_one_names_its_flag(cli, tmp_path):
    """The CLI builds one Target per flag given; a bad value is refused naming the flag."""
    src = tmp_path / "in.png"
    src.write_bytes(png_bytes(gradient()))
    plain = cli("compare", src, "-k", "4", "--json", "-q")
    assert plain.code == 0, plain.stderr
    assert "chosen" not in json.loads(plain.stdout)[0]  # no flag, no target
    both = cli("compare", src, "--target-psnr", "30", "--max-delta-e", "3", "--json")
    assert both.code == 0, both.stderr
    rows = json.loads(both.stdout)
    (chosen,) = [row for row in rows if row["chosen"]]
    assert chosen["psnr"] >= 30 and chosen["delta_e"] <= 3
    found = search_k(gradient(), [Target("psnr", 30.0), Target("delta_e", 3.0)])
    assert chosen["k"] == found.k
    assert both.stderr == ""  # with --json, stderr keeps only warnings
    table = cli("compare", src, "--target-psnr", "30", "--max-delta-e", "3")
    assert f"chosen k={found.k}: the smallest k with PSNR ≥ 30 dB and ΔE ≤ 3 (" in table.stderr
    bad = cli("compress", src, "--target-ssim", "1.2", "-o", tmp_path / "out.png")
    line = bad.assert_one_error(2)
    assert line == "kmeanscli: error: --target-ssim 1.2: an SSIM target must be in (-1, 1]; got 1.2"
    assert not (tmp_path / "out.png").exists()


def test_target_direction():
    assert Target("psnr", 30).met(30.0) and not Target("psnr", 30).met(29.99)
    assert Target("ssim", 0.9).met(0.95) and not Target("ssim", 0.9).met(math.nan)
    assert Target("delta_e", 2).met(2.0) and not Target("delta_e", 2).met(2.01)
    assert Target("psnr", 35).describe() == "PSNR ≥ 35 dB"
    assert Target("delta_e", 1.5).describe() == "ΔE ≤ 1.5"


# -- the bisection, on a fake quantizer with a known monotone quality ------------------------


def fake_quantizer(calls: list[int]):
    """PSNR grows with k (MSE = 1000 / k); records each k asked for."""

    def run(pixels: np.ndarray, k: int) -> QuantizeResult:
        calls.append(k)
        return QuantizeResult(
            palette=np.zeros((k, 3), np.uint8),
            indices=np.zeros(pixels.shape[:-1], np.uint8),
            counts=np.zeros(k, np.int64),
            unique_colors=1000,
            mse=1000.0 / k,
            k=k,
            transparent_index=None,
            lossless=False,
        )

    return run


@pytest.mark.parametrize("k_wanted", [2, 3, 17, 100, 129, 255, 256])
def test_bisection_finds_the_smallest_k_in_at_most_eight_steps(k_wanted):
    psnr = {k: metrics.psnr_from_mse(1000.0 / k) for k in range(2, 257)}
    target = Target("psnr", psnr[k_wanted] - 1e-9)
    calls: list[int] = []
    found = search_k(np.zeros((2, 2, 3), np.uint8), target, fake_quantizer(calls))
    assert found.k == k_wanted
    brute = min(k for k in range(2, 257) if target.met(psnr[k]))
    assert found.k == brute
    assert len(calls) <= 8 and len(set(calls)) == len(calls)
    assert list(found.tried) == calls
    if k_wanted > 2:
        assert found.below is not None and not target.met(found.below["psnr"])


def test_bisection_raises_when_256_colours_miss():
    calls: list[int] = []
    with pytest.raises(TargetNotMetError, match="PSNR ≥ 99 dB is out of reach: 256 colours give"):
        search_k(np.zeros((2, 2, 3), np.uint8), Target("psnr", 99), fake_quantizer(calls))
    assert calls[-1] == 256 and len(calls) == 8


def test_bisection_arguments():
    with pytest.raises(ValueError, match="at least one target"):
        search_k(np.zeros((2, 2, 3), np.uint8), [])
    with pytest.raises(ValueError, match="k_min"):
        search_k(np.zeros((2, 2, 3), np.uint8), Target("psnr", 20), k_min=10, k_max=5)


# -- the bisection with the real k-means ------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "score"),
    [
        (Target("psnr", 33.0), lambda a, b: metrics.psnr(a, b)),
        (
            Target("ssim", 0.9),
            lambda a, b: structural_similarity(a, b, channel_axis=-1, data_range=255),
        ),
        (
            Target("delta_e", 3.0),
            lambda a, b: deltaE_ciede2000(rgb2lab(a), rgb2lab(b), channel_axis=-1).mean(),
        ),
    ],
    ids=["psnr", "ssim", "delta_e"],
)
def test_chosen_k_meets_the_target_and_k_minus_1_misses(target, score):
    img = gradient()
    run = functools.partial(quantize, seed=3)
    found = search_k(img, target, run)
    assert 2 < found.k < 256
    at_k = score(img, quantize(img, found.k, seed=3).image())
    below = score(img, quantize(img, found.k - 1, seed=3).image())
    assert target.met(at_k)
    assert not target.met(below)
    assert found.result.colors == found.k
    assert np.array_equal(found.result.image(), quantize(img, found.k, seed=3).image())


def test_several_targets_must_all_be_met():
    img = gradient()
    a, b = Target("psnr", 30.0), Target("delta_e", 2.5)
    both = search_k(img, [a, b]).k
    assert both == max(search_k(img, a).k, search_k(img, b).k)
