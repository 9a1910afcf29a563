"""The compare library: Pillow's quantizers, the sweep and the files mode (and the k lists
and method names ``kmeanscli compare`` parses)."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import numpy as np
import pytest
from conftest import gradient
from PIL import Image
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity
from sklearn.cluster import MiniBatchKMeans  # noqa: F401  (loads OpenMP before the limit)
from threadpoolctl import threadpool_limits

from kmeanscli import OptionsError, QuantizeOptions, compress_file, quantize
from kmeanscli.api import sample_image
from kmeanscli.compare import FIELDS, METHODS, compare_files, compare_k, pillow_quantize
from kmeanscli.core import metrics
from kmeanscli.core.search import Target
from kmeanscli.errors import InputError, UsageError
from kmeanscli.imageio import encode


@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(1):
        yield


def png_bytes(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def small_photo() -> bytes:
    """scikit-learn's china.jpg, downscaled to 64x43 to keep the tests fast."""
    with Image.open(sample_image()) as img:
        return png_bytes(np.asarray(img.convert("RGB").resize((64, 43), Image.LANCZOS)))


# -- the k lists and method names of ``kmeanscli compare`` -----------------------------------


@pytest.fixture
def tiny_png(tmp_path):
    path = tmp_path / "in.png"
    path.write_bytes(png_bytes(gradient(12, 16)))
    return path


def test_k_list_is_sorted_without_repeats(cli, tiny_png):
    done = cli("compare", tiny_png, "-k", "16,4, 8,16", "--json", "-q")
    assert done.code == 0, done.stderr
    assert [row["k"] for row in json.loads(done.stdout)] == [4, 8, 16]
    done = cli("compare", tiny_png, "-k", "256,2", "--json", "-q")
    assert [row["k"] for row in json.loads(done.stdout)] == [2, 256]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3,x", "-k '3,x': 'x' is not a whole number; give k values like 4,8,16"),
        ("1", "-k '1': 1 is out of range; each k must be 2 to 256"),
        ("300", "-k '300': 300 is out of range; each k must be 2 to 256"),
        ("4,,8", "-k '4,,8': '' is not a whole number; give k values like 4,8,16"),
    ],
)
def test_bad_k_list_names_the_flag(cli, tiny_png, text, message):
    line = cli("compare", tiny_png, "-k", text).assert_one_error(2)
    assert line == "kmeanscli: error: " + message


def test_methods_are_case_blind_in_the_order_of_methods(cli, tiny_png):
    done = cli("compare", tiny_png, "-k", "4", "--methods", "octree,KMEANS", "--json", "-q")
    assert done.code == 0, done.stderr
    assert [row["method"] for row in json.loads(done.stdout)] == ["kmeans", "octree"]
    line = cli("compare", tiny_png, "--methods", "kmeans,neuquant").assert_one_error(2)
    assert line == (
        "kmeanscli: error: --methods 'kmeans,neuquant': unknown method 'neuquant'; "
        "use " + ", ".join(METHODS)
    )


# -- Pillow's quantizers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "pil"),
    [("mediancut", Image.Quantize.MEDIANCUT), ("octree", Image.Quantize.FASTOCTREE)],
)
def test_pillow_quantize_is_pillow_without_dither(method, pil):
    img = gradient()
    result = pillow_quantize(img, 16, method)
    expected = np.asarray(
        Image.fromarray(img).quantize(16, method=pil, dither=Image.Dither.NONE).convert("RGB")
    )
    assert np.array_equal(result.image(), expected)
    assert result.colors == len(np.unique(expected.reshape(-1, 3), axis=0)) <= 16
    assert result.counts.sum() == img.shape[0] * img.shape[1]
    assert result.mse == pytest.approx(metrics.mse(img, expected))


def test_pillow_quantize_transparency():
    rgba = np.dstack([gradient(), np.full((30, 40), 255, np.uint8)])
    rgba[:5, :, 3] = 0
    result = pillow_quantize(rgba, 8, "octree")
    assert result.palette.shape[1] == 4
    assert np.all(result.image()[:5, :, 3] == 0)
    with pytest.raises(ValueError, match="median cut does not handle transparency"):
        pillow_quantize(rgba, 8, "mediancut")


# -- the sweep ----------------------------------------------------------------------------


def test_rows_match_quantize_encode_and_independent_metrics():
    img = gradient()
    src = png_bytes(img)
    comparison = compare_k(src, [4, 16], QuantizeOptions(seed=5))
    assert [r.k for r in comparison.rows] == [4, 16]
    for row in comparison.rows:
        result = quantize(img, row.k, seed=5)
        data, _ = encode(result, "PNG")
        quantized = result.image()
        assert row.colors == row.k
        assert row.png == data
        assert row.bytes == len(data)
        assert row.bpp == pytest.approx(len(data) * 8 / (30 * 40))
        assert row.ratio == pytest.approx(len(data) / len(src))
        diff = img.astype(np.float64) - quantized
        mse = float((diff**2).mean())
        assert row.scores.mse == pytest.approx(mse)
        assert row.scores.psnr == pytest.approx(10 * np.log10(255**2 / mse))
        assert row.scores.ssim == pytest.approx(
            structural_similarity(img, quantized, channel_axis=-1, data_range=255)
        )
        assert row.scores.delta_e == pytest.approx(
            deltaE_ciede2000(rgb2lab(img), rgb2lab(quantized), channel_axis=-1).mean()
        )
        assert isinstance(row.seconds, float) and row.seconds == abs(row.seconds)  # non-negative
        assert list(row.to_dict()) == list(FIELDS)


def test_psnr_and_delta_e_improve_with_k_on_a_photo(small_photo):
    comparison = compare_k(small_photo, [2, 4, 8, 16, 32, 64, 128])
    psnr = [r.scores.psnr for r in comparison.rows]
    delta_e = [r.scores.delta_e for r in comparison.rows]
    assert psnr == sorted(psnr), psnr
    assert delta_e == sorted(delta_e, reverse=True), delta_e
    assert [r.colors for r in comparison.rows] == [2, 4, 8, 16, 32, 64, 128]


def test_methods_add_rows_at_the_same_k(small_photo):
    comparison = compare_k(small_photo, [8, 32], methods=["octree", "kmeans", "mediancut"])
    assert [(r.method, r.k) for r in comparison.rows] == [
        ("kmeans", 8),
        ("kmeans", 32),
        ("mediancut", 8),
        ("mediancut", 32),
        ("octree", 8),
        ("octree", 32),
    ]
    by = {(r.method, r.k): r for r in comparison.rows}
    # what k-means buys: a lower error than median cut and octree at the same k
    for k in (8, 32):
        assert by["kmeans", k].scores.mse < by["mediancut", k].scores.mse
        assert by["kmeans", k].scores.mse < by["octree", k].scores.mse


def test_target_rows_are_the_k_values_tried(small_photo):
    comparison = compare_k(small_photo, [], QuantizeOptions(targets=(Target("psnr", 30.0),)))
    search = comparison.search
    assert search is not None and comparison.chosen_k == search.k
    assert sorted(search.tried) == [r.k for r in comparison.rows]
    chosen = [r for r in comparison.rows if r.chosen]
    assert [r.k for r in chosen] == [search.k]
    assert chosen[0].scores.psnr >= 30.0
    below = next(r for r in comparison.rows if r.k == search.k - 1)
    assert below.scores.psnr < 30.0


def test_unreachable_target_is_reported_not_raised():
    img = gradient()  # 1,200 colours: 256 cannot be lossless
    options = QuantizeOptions(targets=(Target("psnr", 60.0),))
    comparison = compare_k(png_bytes(img), [4], options)
    assert comparison.search is None and comparison.chosen_k is None
    assert "PSNR ≥ 60 dB is out of reach: 256 colours give" in comparison.target_error
    assert 4 in [r.k for r in comparison.rows] and 256 in [r.k for r in comparison.rows]


def test_transparency_skips_median_cut_with_a_warning():
    rgba = np.dstack([gradient(12, 16), np.full((12, 16), 255, np.uint8)])
    rgba[:3, :, 3] = 0
    comparison = compare_k(png_bytes(rgba), [4], methods=("kmeans", "mediancut", "octree"))
    assert [r.method for r in comparison.rows] == ["kmeans", "octree"]
    assert any("median cut does not handle transparency" in w for w in comparison.warnings)


def test_few_colours_are_lossless_and_said_so():
    img = np.zeros((8, 8, 3), np.uint8)
    img[:, 4:] = (200, 10, 10)
    comparison = compare_k(png_bytes(img), [2, 8])
    assert all(r.scores.psnr == float("inf") and r.scores.delta_e == 0 for r in comparison.rows)
    assert [r.to_dict()["psnr"] for r in comparison.rows] == [None, None]
    assert any("only 2 colours" in w for w in comparison.warnings)


def test_compare_k_refuses_bad_arguments():
    src = png_bytes(gradient(4, 4))
    with pytest.raises(UsageError, match=r"^each k must be 2 to 256; got \[1\]$"):
        compare_k(src, [1])
    with pytest.raises(UsageError, match=r"^give k values or a quality target$"):
        compare_k(src, [])
    with pytest.raises(UsageError) as caught:
        compare_k(src, [4], methods=["pngquant"])
    assert str(caught.value) == "give at least one method of kmeans, minibatch, mediancut, octree"
    with pytest.raises(OptionsError, match=r"^palette is fixed: there is no k to compare$"):
        compare_k(src, [4], QuantizeOptions(palette=((0, 0, 0), (255, 255, 255))))
    with pytest.raises(OptionsError) as caught:
        compare_k(src, [4], QuantizeOptions(engine="minibatch"), methods=["kmeans", "minibatch"])
    assert str(caught.value) == (
        "the kmeans rows already use the minibatch engine (engine minibatch): "
        "ask for one of the two methods"
    )
    with pytest.raises(InputError, match="not an image"):
        compare_k(b"definitely not an image", [4])


# -- what compress writes, and the minibatch engine ------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        QuantizeOptions(seed=3),
        QuantizeOptions(space="oklab", dither="fs", dither_strength=0.5),
        QuantizeOptions(engine="minibatch", keep_colors=("#ffffff",)),
    ],
    ids=["plain", "oklab-dithered", "minibatch-kept"],
)
def test_row_png_is_what_compress_writes(small_photo, tmp_path, options):
    comparison = compare_k(small_photo, [6, 32], options)
    for row in comparison.rows:
        out = tmp_path / f"k{row.k}.png"
        report = compress_file(small_photo, out, replace(options, k=row.k))
        assert row.png == out.read_bytes()
        assert row.bytes == report.bytes_out
        assert row.scores.mse == pytest.approx(report.mse)
        assert row.colors == report.colors == row.k


def test_minibatch_rows_are_the_minibatch_engine(small_photo):
    comparison = compare_k(small_photo, [8, 32], methods=["minibatch", "kmeans"])
    assert [(r.method, r.k) for r in comparison.rows] == [
        ("kmeans", 8),
        ("kmeans", 32),
        ("minibatch", 8),
        ("minibatch", 32),
    ]
    pixels = np.asarray(Image.open(io.BytesIO(small_photo)).convert("RGB"))
    for row in comparison.rows:
        engine = "lloyd" if row.method == "kmeans" else "minibatch"
        expected = quantize(pixels, row.k, engine=engine)
        assert np.array_equal(row.result.palette, expected.palette), row.method
        assert np.array_equal(row.result.indices, expected.indices), row.method
        assert row.png == encode(expected, "PNG")[0]


# -- files ---------------------------------------------------------------------------------


def test_files_mode_scores_other_files(tmp_path):
    img = gradient()
    original = tmp_path / "orig.png"
    original.write_bytes(png_bytes(img))
    other = tmp_path / "other.png"
    quantized = quantize(img, 8).image()
    other.write_bytes(png_bytes(quantized))
    comparison = compare_files(original, [other, original])
    first, same = comparison.rows
    assert first.file == str(other) and first.k is None and first.seconds is None
    assert first.colors == 8
    assert first.bytes == other.stat().st_size
    assert first.ratio == pytest.approx(other.stat().st_size / original.stat().st_size)
    assert first.scores.psnr == pytest.approx(metrics.psnr(img, quantized))
    assert same.scores.mse == 0 and same.scores.ssim == pytest.approx(1.0)


def test_files_mode_refuses_another_size(tmp_path):
    (tmp_path / "a.png").write_bytes(png_bytes(gradient(30, 40)))
    (tmp_path / "b.png").write_bytes(png_bytes(gradient(20, 40)))
    with pytest.raises(InputError, match=r"b.png: is 40x20 but the original .*a.png is 40x30"):
        compare_files(tmp_path / "a.png", [tmp_path / "b.png"])


def test_files_mode_mixes_rgb_and_rgba(tmp_path):
    img = gradient()
    (tmp_path / "a.png").write_bytes(png_bytes(img))
    rgba = np.dstack([img, np.full((30, 40), 255, np.uint8)])
    rgba[0, 0, 3] = 254  # keeps the alpha channel on decode
    (tmp_path / "b.png").write_bytes(png_bytes(rgba))
    (row,) = compare_files(tmp_path / "a.png", [tmp_path / "b.png"]).rows
    # one pixel at alpha 254: its colour seen at 254/255 and the alpha step
    r, g, b = img[0, 0].astype(float)
    seen = sum((c - c * 254 / 255) ** 2 for c in (r, g, b)) + 1
    assert row.scores.mse == pytest.approx(seen / (30 * 40 * 4))


def test_the_colour_histogram_is_counted_once_for_all_k(small_photo, monkeypatch) -> None:
    import kmeanscli.core.quantize as core

    calls: list[int] = []
    real = core.histogram

    def counting(flat):
        calls.append(len(flat))
        return real(flat)

    monkeypatch.setattr(core, "histogram", counting)
    cmp = compare_k(small_photo, [4, 8, 16])
    assert [row.k for row in cmp.rows] == [4, 8, 16]
    assert calls == [64 * 43]
