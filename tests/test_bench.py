"""Smoke tests of benchmarks/bench.py: its helpers and its command line (no timings)."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("kmeanscli_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_mse_is_exact_and_matches_the_library(bench):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    expected = ((a.astype(np.int64) - b) ** 2).sum() / a.size
    assert bench.mse(a, b) == expected
    import kmeanscli

    assert bench.mse(a, b) == kmeanscli.mse(a, b)  # the benchmark scores with the library
    assert bench.mse(a, a) == 0
    assert bench.psnr(0.0) == math.inf
    assert bench.psnr(255.0**2) == 0.0


def test_mse_rejects_different_shapes(bench):
    with pytest.raises(ValueError, match="different shapes"):
        bench.mse(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 3, 3), np.uint8))


def test_mosaic_is_deterministic_and_filled(bench):
    red = np.zeros((5, 8, 3), np.uint8)
    red[..., 0] = 200
    blue = np.zeros((9, 4, 3), np.uint8)
    blue[..., 2] = 100
    m1 = bench.build_mosaic([red, blue], size=(12, 6), grid=(3, 2), noise=0.0)
    m2 = bench.build_mosaic([red, blue], size=(12, 6), grid=(3, 2), noise=0.0)
    assert m1.shape == (6, 12, 3) and m1.dtype == np.uint8
    assert np.array_equal(m1, m2)
    # tiles alternate between the sources: (0,0) red, (0,1) blue, (0,2) red
    assert tuple(m1[1, 1]) == (200, 0, 0)
    assert tuple(m1[1, 5]) == (0, 0, 100)
    assert tuple(m1[1, 9]) == (200, 0, 0)
    noisy1 = bench.build_mosaic([red, blue], size=(12, 6), grid=(3, 2), noise=2.0, seed=3)
    noisy2 = bench.build_mosaic([red, blue], size=(12, 6), grid=(3, 2), noise=2.0, seed=3)
    assert np.array_equal(noisy1, noisy2)
    assert not np.array_equal(noisy1, m1)
    with pytest.raises(ValueError):
        bench.build_mosaic([], size=(4, 4), grid=(1, 1))


def test_output_stats_decodes_a_palette_png(bench, tmp_path):
    pixels = np.zeros((4, 4, 3), np.uint8)
    pixels[:2] = (10, 20, 30)
    pixels[2:] = (200, 100, 0)
    src = Image.fromarray(pixels, "RGB").quantize(2, dither=Image.Dither.NONE)
    path = tmp_path / "q.png"
    src.save(path)
    error, colors, mode = bench.output_stats(path, pixels)
    assert (error, colors, mode) == (0.0, 2, "P")
    shifted = pixels.copy()
    shifted[0, 0, 0] += 4
    assert bench.output_stats(path, shifted)[0] == 16 / shifted.size


def test_geomean_and_stage_times(bench):
    assert bench.geomean([2.0, 8.0]) == pytest.approx(4.0)
    assert bench.geomean([]) is None
    stages = bench.stage_times(0.0, [("decode", 1.0), ("fit", 3.0), ("encode", 4.0)], 10.0)
    assert stages == {"setup": 1.0, "decode": 2.0, "fit": 1.0, "encode": 6.0}


def test_update_results_keeps_the_notes(bench, tmp_path):
    path = tmp_path / "RESULTS.md"
    bench.update_results(path, "first table\n")
    text = path.read_text()
    assert "first table" in text and bench.BEGIN_MARK in text
    path.write_text("# notes before\n\n" + text + "\nnotes after\n")
    bench.update_results(path, "second table\n")
    text = path.read_text()
    assert "second table" in text and "first table" not in text
    assert text.startswith("# notes before") and text.endswith("notes after\n")


def test_help_works_and_bad_k_is_a_usage_error():
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}
    ok = subprocess.run(
        [sys.executable, str(BENCH), "--help"], capture_output=True, text=True, env=env
    )
    assert ok.returncode == 0
    assert "--quick" in ok.stdout and "--no-large" in ok.stdout and "--json" in ok.stdout
    assert ok.stderr == ""
    bad = subprocess.run(
        [sys.executable, str(BENCH), "--k", "1"], capture_output=True, text=True, env=env
    )
    assert bad.returncode == 2
    assert "--k: values must be 2 to 256" in bad.stderr
    assert bad.stdout == ""


def _photo(bench, name, pixels, tmp_path):
    path = tmp_path / f"{name}.png"
    Image.fromarray(pixels, "RGB").save(path)
    img = bench.BenchImage(name, path, pixels.shape[1], pixels.shape[0], source="test")
    img._pixels = pixels
    return img


def _fake_cli(tmp_path, has_batch: bool) -> str:
    """A stand-in ``kmeanscli`` whose ``batch`` writes <stem>-k<K>.png into -o."""
    script = tmp_path / "fake-kmeanscli"
    script.write_text(
        f"#!{sys.executable}\n"
        "import pathlib, sys\n"
        "from PIL import Image\n"
        "args = sys.argv[1:]\n"
        f"if args[:1] != ['batch'] or not {has_batch}:\n"
        "    sys.exit(2)\n"
        "if '--help' in args:\n"
        "    sys.exit(0)\n"
        "out, k = pathlib.Path(args[args.index('-o') + 1]), int(args[args.index('-k') + 1])\n"
        "for p in sorted(pathlib.Path(args[1]).glob('*.png')):\n"
        "    im = Image.open(p).convert('RGB').quantize(k, dither=Image.Dither.NONE)\n"
        "    im.save(out / f'{p.stem}-k{k}.png')\n"
    )
    script.chmod(0o755)
    return str(script)


def test_batch_inputs_are_deterministic_and_sized(bench, tmp_path):
    rng = np.random.default_rng(0)
    photos = [
        _photo(bench, "a", rng.integers(0, 256, (300, 400, 3), dtype=np.uint8), tmp_path),
        _photo(bench, "b", rng.integers(0, 256, (500, 350, 3), dtype=np.uint8), tmp_path),
    ]
    first = bench.batch_inputs(photos, tmp_path / "one", count=6)
    second = bench.batch_inputs(photos, tmp_path / "two", count=6)
    assert [p.name for p in first] == [p.name for p in second]
    assert [p.name for p in first][:2] == ["b00-a.png", "b01-b.png"]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()
        with Image.open(a) as im:
            assert 0.09e6 <= im.width * im.height <= 1.01e6


def test_batch_case_is_skipped_without_the_command(bench, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "kmeanscli_cli_path", lambda: _fake_cli(tmp_path, False))
    assert bench.measure_batch([], tmp_path) is None
    assert "does not exist yet" in capsys.readouterr().err
    assert "Skipped" in bench.table_batch(None)


def test_batch_case_runs_when_the_command_exists(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "kmeanscli_cli_path", lambda: _fake_cli(tmp_path, True))
    rng = np.random.default_rng(2)
    photos = [_photo(bench, "a", rng.integers(0, 256, (320, 320, 3), dtype=np.uint8), tmp_path)]
    res = bench.measure_batch(photos, tmp_path / "out", k=4, count=3)
    assert res is not None and res["files"] == 3 and res["k"] == 4
    km = res["kmeanscli"]
    assert km["outputs"] == 3 and km["total_bytes"] > 0 and km["mean_psnr"] > 0
    if "pngquant" in res:  # only where pngquant is installed
        assert res["pngquant"]["outputs"] == 3
    assert "`kmeanscli batch DIR" in bench.table_batch(res)


def test_report_ratios_are_geometric_means_over_images(bench, tmp_path):
    def rec(tool, image, seconds, mse, size):
        return bench.Record(
            tool,
            image,
            16,
            0.27,
            False,
            seconds=seconds,
            times=[seconds],
            mse=mse,
            psnr=bench.psnr(mse),
            bytes=size,
            colors=16,
            mode="P",
        )

    records = [
        rec("pngquant", "china", 1.0, 100.0, 1000),
        rec("pngquant", "coffee", 1.0, 100.0, 1000),
        rec("kmeanscli", "china", 2.0, 90.0, 1100),
        rec("kmeanscli", "coffee", 0.5, 40.0, 900),
    ]
    meta = {
        "date": "2026-01-02T03:04:05+00:00",
        "minutes": 1.0,
        "command": "benchmarks/bench.py --k 16",
        "machine": {"nproc": "2", "cpu": "test cpu", "ram": "1 GiB", "os": "test os"},
        "versions": {"pngquant": "2.17.0"},
        "repeats": 1,
        "photos": [["china", 0.27], ["coffee", 0.24]],
        "large": None,
        "no_batch": True,
        "tools": [["kmeanscli", "kmeanscli lib"], ["pngquant", "pngquant 2.17"]],
        "records": [bench.asdict(r) for r in records],
    }
    path = tmp_path / "results.json"
    path.write_text(bench.json.dumps(meta))
    report, command = bench.rerender(path)
    assert command == "benchmarks/bench.py --k 16"
    row = next(line for line in report.splitlines() if line.startswith("| kmeanscli lib |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # time: sqrt(2.0 * 0.5) = 1; MSE: sqrt(0.9 * 0.4) = 0.6; bytes: sqrt(1.1 * 0.9)
    assert cells[1:5] == ["16", "1.250", f"{(bench.psnr(90) + bench.psnr(40)) / 2:.2f}", "2,000"]
    assert cells[5:8] == ["1.00", "0.600", f"{(1.1 * 0.9) ** 0.5:.3f}"]
    assert "| k=16: MSE ≤ 0.93× pngquant | 0.600 | yes |" in report
    assert "| k=16: bytes ≤ 1.0× pngquant | 0.995 | yes |" in report
    assert "Run 2026-01-02 03:04 UTC, 1 min" in report


def test_graphics_are_drawn_deterministically(bench):
    card = bench.draw_test_card(256, 256)
    assert card.shape == (256, 256, 3) and card.dtype == np.uint8
    assert np.array_equal(card, bench.draw_test_card(256, 256))
    assert bench.distinct_colors(card) > 256  # the ramps, the anti-aliased text
    two = bench.draw_two_colours()
    assert two.shape == (64, 256, 3) and bench.distinct_colors(two) == 2
    ui = bench.draw_ui()
    assert ui.shape == (400, 640, 3) and np.array_equal(ui, bench.draw_ui())
    assert {g.name for g in bench.GRAPHICS} >= set(bench.QUICK_GRAPHICS)


def test_feathered_astronaut_has_soft_and_transparent_pixels(bench):
    pytest.importorskip("skimage")
    rgba = bench.astronaut_feathered()
    alpha = rgba[..., 3]
    assert rgba.shape == (512, 512, 4)
    assert alpha[256, 256] == 255 and alpha[0, 0] == 0
    assert 0.25 < (alpha == 0).mean() < 0.35 and ((alpha > 0) & (alpha < 255)).mean() > 0.3
    assert bench.alpha_kind(rgba) == "soft" and bench.alpha_kind(rgba[..., :3]) is None


def test_output_stats_scores_alpha_premultiplied_as_the_library(bench, tmp_path):
    import kmeanscli

    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:2] = (200, 100, 50, 255)
    rgba[2, :] = (10, 20, 30, 128)
    rgba[3, :] = (99, 99, 99, 0)  # hidden colour: free when the output is transparent too
    path = tmp_path / "in.png"
    bench.save_png(rgba, path)
    original = bench.read_pixels(path)
    assert original.shape == (4, 4, 4)
    out = tmp_path / "out.png"
    kmeanscli.compress_file(path, out, kmeanscli.QuantizeOptions(k=3), force=True)
    error, colors, mode = bench.output_stats(out, original)
    assert (error, colors, mode) == (0.0, 3, "P")
    shifted = original.copy()
    shifted[2, 0, 0] += 4  # seen through alpha 128: (4 * 128 / 255)^2 over 64 channels
    error = bench.output_stats(out, shifted)[0]
    assert error == pytest.approx((4 * 128 / 255) ** 2 / 64)
    assert error == kmeanscli.mse(shifted, bench.read_pixels(out))
    # an opaque RGBA array is written as RGB
    bench.save_png(rgba[:2], path)
    with Image.open(path) as im:
        assert im.mode == "RGB"


def test_zero_errors_give_no_ratio_and_no_crash(bench):
    def rec(tool, image, mse, size, colors_in=2):
        return bench.Record(
            tool,
            image,
            16,
            0.02,
            False,
            seconds=0.01,
            times=[0.01],
            mse=mse,
            psnr=bench.psnr(mse),
            bytes=size,
            colors=min(16, colors_in),
            mode="P",
            group="graphics",
            colors_in=colors_in,
            alpha="soft",
        )

    records = [
        rec("pngquant", "two", 0.0, 200),
        rec("kmeanscli", "two", 0.0, 250),
        rec("pngquant", "icon", 4.0, 100, 50),
        rec("kmeanscli", "icon", 2.0, 90, 50),
    ]
    tools = [bench.Tool("kmeanscli", "km", bench._no_run), bench.Tool("pngquant", "pq", None)]
    rows = bench.summarize(records, tools, "graphics")
    km = next(r for r in rows if r["tool"] == "kmeanscli")
    assert km["mse_vs_pngquant"] == pytest.approx(0.5) and km["mse_pairs"] == 1
    assert km["bytes_vs_pngquant"] == pytest.approx((1.25 * 0.9) ** 0.5)
    assert km["lossless"] == 1 and km["exact_k"] == 2
    assert bench.summarize(records, tools, "photos") == []
    table = bench.table_graphics_images(
        records,
        [
            {"name": "two", "width": 256, "height": 64, "alpha": None, "colors": 2},
            {"name": "icon", "width": 24, "height": 24, "alpha": "soft", "colors": 50},
        ],
    )
    assert "| two | 256×64 | none | 2 | 1.250 | – | 1.00 |" in table
    assert "| icon | 24×24 | soft | 50 | 0.900 | 0.500 | 1.00 |" in table
    targets = bench.check_targets([], records, None, None, rows)
    assert (
        "graphics and alpha set (geometric mean) | 1.061; worst 1.250 (two) | **no** |" in targets
    )
    assert "soft alpha (premultiplied RGB + alpha; geometric mean) | 0.500 over 1 of 2" in targets
