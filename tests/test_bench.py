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
