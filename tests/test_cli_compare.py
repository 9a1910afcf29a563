"""``kmeanscli compare`` and the quality-target and --skip-if-larger flags of ``compress``."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import gradient
from PIL import Image
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity
from sklearn.cluster import MiniBatchKMeans  # noqa: F401  (loads OpenMP before the limit)
from threadpoolctl import threadpool_limits

from kmeanscli import quantize
from kmeanscli.cli.app import run
from kmeanscli.cli.status import ExitStatus
from kmeanscli.compare import FIELDS


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "150")
    monkeypatch.setenv("TERM", "dumb")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with threadpool_limits(1):  # tiny images: threads only add contention
        yield


@pytest.fixture
def image(tmp_path) -> tuple[Path, np.ndarray]:
    pixels = gradient()
    path = tmp_path / "in.png"
    Image.fromarray(pixels).save(path)
    return path, pixels


def cli(capsys, *argv: str | os.PathLike[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = run([os.fspath(a) for a in argv])
    out, err = capsys.readouterr()
    return int(rc), out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("kmeanscli: error: ")
    assert "Traceback" not in err
    return lines[0]


def psnr_of(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b) ** 2).mean())
    return 10 * np.log10(255**2 / mse)


# -- the table, --json and --csv --------------------------------------------------------------


def test_json_matches_compress_and_independent_metrics(capsys, image, tmp_path):
    path, pixels = image
    rc, out, err = cli(capsys, "compare", path, "-k", "4,16", "--seed", "7", "--json")
    assert rc == 0, err
    rows = json.loads(out)
    assert [list(r) for r in rows] == [["engine", *FIELDS]] * 2
    assert {r["engine"] for r in rows} == {"lloyd"}
    assert [r["k"] for r in rows] == [4, 16]
    for row in rows:
        k = row["k"]
        dst = tmp_path / f"out{k}.png"
        rc, out, err = cli(
            capsys, "compress", path, "-k", str(k), "--seed", "7", "-o", dst, "--json"
        )
        assert rc == 0, err
        report = json.loads(out)
        with Image.open(dst) as im:
            q = np.asarray(im.convert("RGB"))
        assert row["colors"] == k == len(np.unique(q.reshape(-1, 3), axis=0))
        assert row["bytes"] == report["bytes_out"] == dst.stat().st_size
        assert row["bpp"] == pytest.approx(dst.stat().st_size * 8 / (40 * 30), abs=1e-6)
        assert row["ratio"] == pytest.approx(dst.stat().st_size / path.stat().st_size, abs=1e-6)
        assert abs(row["psnr"] - report["psnr"]) <= 0.01
        assert abs(row["psnr"] - psnr_of(pixels, q)) <= 0.01
        assert row["mse"] == pytest.approx(((pixels.astype(float) - q) ** 2).mean(), abs=1e-5)
        ssim = structural_similarity(pixels, q, channel_axis=-1, data_range=255)
        assert row["ssim"] == pytest.approx(ssim, abs=1e-6)
        de = deltaE_ciede2000(rgb2lab(pixels), rgb2lab(q), channel_axis=-1).mean()
        assert row["delta_e"] == pytest.approx(de, abs=1e-5)
        assert row["seconds"] >= 0


def test_csv_has_the_json_values(capsys, image):
    path, _ = image
    rc, out_json, _ = cli(capsys, "compare", path, "-k", "4,8", "--json")
    rc2, out_csv, err = cli(capsys, "compare", path, "-k", "4,8", "--csv")
    assert rc == rc2 == 0, err
    reader = csv.DictReader(io.StringIO(out_csv))
    assert reader.fieldnames == ["engine", *FIELDS]
    for row, expected in zip(reader, json.loads(out_json), strict=True):
        for key in FIELDS:
            if key != "seconds":
                assert float(row[key]) == pytest.approx(expected[key])


def test_csv_spells_chosen_as_json_does(capsys, image):
    path, _ = image
    rc, out_json, _ = cli(capsys, "compare", path, "--target-psnr", "20", "--json")
    rc2, out_csv, err = cli(capsys, "compare", path, "--target-psnr", "20", "--csv")
    assert rc == rc2 == 0, err
    rows = list(csv.DictReader(io.StringIO(out_csv)))
    want = ["true" if row["chosen"] else "false" for row in json.loads(out_json)]
    assert [row["chosen"] for row in rows] == want
    assert want.count("true") == 1 and "false" in want


def test_table_on_stdout_messages_on_stderr(capsys, image):
    path, _ = image
    rc, out, err = cli(capsys, "compare", path, "-k", "4,8")
    assert rc == 0 and err == ""
    header = next(line for line in out.splitlines() if "PSNR" in line)
    for column in ("k", "colours", "bytes", "bpp", "ratio", "MSE", "SSIM", "ΔE00", "seconds"):
        assert column in header
    rc, out_json, _ = cli(capsys, "compare", path, "-k", "4,8", "--json")
    table = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if cells[0].isdigit():
            table[int(cells[0])] = cells
    for row in json.loads(out_json):
        cells = table[row["k"]]
        assert cells[1] == str(row["colors"]) and cells[2] == f"{row['bytes']:,}"
        assert float(cells[6]) == pytest.approx(row["psnr"], abs=0.006)
        assert float(cells[7]) == pytest.approx(row["ssim"], abs=0.0001)


def test_methods_rows_carry_the_method(capsys, image):
    path, pixels = image
    rc, out, err = cli(
        capsys, "compare", path, "-k", "8", "--methods", "octree,mediancut,kmeans", "--json"
    )
    assert rc == 0, err
    rows = json.loads(out)
    assert [(r["method"], r["k"]) for r in rows] == [
        ("kmeans", 8),
        ("mediancut", 8),
        ("octree", 8),
    ]
    cut = np.asarray(
        Image.fromarray(pixels)
        .quantize(8, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        .convert("RGB")
    )
    assert abs(rows[1]["psnr"] - psnr_of(pixels, cut)) <= 0.01
    assert rows[0]["psnr"] > rows[1]["psnr"] and rows[0]["psnr"] > rows[2]["psnr"]


def _compress_json(capsys, path, dst, *flags: str) -> dict:
    rc, out, err = cli(capsys, "compress", path, "-o", dst, "--json", *flags)
    assert rc == 0, err
    return json.loads(out)


def test_minibatch_rows_are_compress_with_the_minibatch_engine(capsys, image, tmp_path):
    path, _ = image
    rc, out, err = cli(
        capsys, "compare", path, "-k", "4,8", "--methods", "kmeans,minibatch", "--json"
    )
    assert rc == 0, err
    rows = json.loads(out)
    assert [(r["method"], r["k"]) for r in rows] == [
        ("kmeans", 4),
        ("kmeans", 8),
        ("minibatch", 4),
        ("minibatch", 8),
    ]
    for row in rows:
        engine = "lloyd" if row["method"] == "kmeans" else "minibatch"
        dst = tmp_path / f"{engine}{row['k']}.png"
        report = _compress_json(capsys, path, dst, "-k", str(row["k"]), "--engine", engine)
        assert report["engine"] == engine
        assert row["colors"] == report["colors"] == row["k"]
        assert row["bytes"] == report["bytes_out"] == dst.stat().st_size
        assert abs(row["psnr"] - report["psnr"]) <= 0.01
    # --engine minibatch: the kmeans rows are the minibatch ones
    rc, out, err = cli(capsys, "compare", path, "-k", "4,8", "--engine", "minibatch", "--json")
    assert rc == 0, err
    engine_rows = json.loads(out)
    assert [(r["k"], r["bytes"], r["psnr"]) for r in engine_rows] == [
        (r["k"], r["bytes"], r["psnr"]) for r in rows if r["method"] == "minibatch"
    ]


def test_dither_and_keep_color_apply_as_in_compress(capsys, image, tmp_path):
    path, _ = image
    flags = ["--seed", "4", "--dither", "fs", "--dither-strength", "0.75"]
    flags += ["--keep-color", "#ff00ff"]
    rc, out, err = cli(capsys, "compare", path, "-k", "6", *flags, "--json")
    assert rc == 0, err
    (row,) = json.loads(out)
    dst = tmp_path / "o.png"
    report = _compress_json(capsys, path, dst, "-k", "6", *flags)
    assert report["dither"] == "fs" and report["dither_strength"] == 0.75
    assert row["bytes"] == report["bytes_out"] == dst.stat().st_size
    assert abs(row["psnr"] - report["psnr"]) <= 0.01
    with Image.open(dst) as im:
        assert (255, 0, 255) in {tuple(c) for c in np.asarray(im.getpalette()).reshape(-1, 3)}
    rc, out, err = cli(capsys, "compare", path, "-k", "6", "--seed", "4", "--json")
    assert rc == 0, err
    (plain,) = json.loads(out)
    assert (plain["bytes"], plain["psnr"]) != (row["bytes"], row["psnr"])  # the flags count


def test_stdin_input(capsys, image, monkeypatch):
    path, _ = image
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    rc, out, err = cli(capsys, "compare", "-", "-k", "4", "--json")
    assert rc == 0, err
    assert json.loads(out)[0]["ratio"] == pytest.approx(
        json.loads(out)[0]["bytes"] / path.stat().st_size, abs=1e-6
    )


# -- quality targets -------------------------------------------------------------------------


def test_target_compare_chooses_the_smallest_k_and_compress_uses_it(capsys, image, tmp_path):
    path, pixels = image
    rc, out, err = cli(capsys, "compare", path, "--target-psnr", "25", "--json", "--seed", "2")
    assert rc == 0, err
    rows = json.loads(out)
    chosen = [r for r in rows if r["chosen"]]
    assert len(chosen) == 1
    k = chosen[0]["k"]
    assert len(rows) <= 8  # a bisection, not a sweep
    assert err == ""  # with --json, stderr keeps only warnings (the choice is in the rows)
    # independently: k meets the target, k-1 (and every smaller k) misses it
    assert psnr_of(pixels, quantize(pixels, k, seed=2).image()) >= 25
    for j in range(2, k):
        assert psnr_of(pixels, quantize(pixels, j, seed=2).image()) < 25, j

    rc, out, err = cli(capsys, "compress", path, "--target-psnr", "25", "--seed", "2", "--json")
    assert rc == 0, err
    report = json.loads(out)
    assert report["k"] == report["colors"] == k
    assert report["output"] == str(tmp_path / f"in-k{k}.png")
    with Image.open(report["output"]) as im:
        assert len(im.getcolors()) == k
    assert err == ""  # the report is the JSON: none on stderr


def test_compress_delta_e_target_prints_the_choice(capsys, image, tmp_path):
    path, pixels = image
    dst = tmp_path / "out.png"
    rc, _, err = cli(capsys, "compress", path, "--max-delta-e", "3", "-o", dst)
    assert rc == 0, err
    with Image.open(dst) as im:
        q = np.asarray(im.convert("RGB"))
    k = len(np.unique(q.reshape(-1, 3), axis=0))
    assert f"k={k}: the smallest k with ΔE ≤ 3" in err
    assert deltaE_ciede2000(rgb2lab(pixels), rgb2lab(q), channel_axis=-1).mean() <= 3


def test_compress_unreachable_target_exits_99_and_writes_nothing(capsys, image, tmp_path):
    path, _ = image
    before = sorted(tmp_path.iterdir())
    rc, out, err = cli(capsys, "compress", path, "--target-psnr", "60")
    assert rc == ExitStatus.TARGET_NOT_MET == 99
    assert out == ""
    line = one_error_line(err)
    assert "PSNR ≥ 60 dB is out of reach: 256 colours give PSNR" in line
    assert line.endswith("nothing written")
    rc, out, err = cli(capsys, "compress", path, "--target-ssim", "1", "-o", tmp_path / "o.png")
    assert rc == 99 and out == ""
    one_error_line(err)
    assert sorted(tmp_path.iterdir()) == before


def test_compare_unreachable_target_exits_99_after_the_rows(capsys, image):
    path, _ = image
    rc, out, err = cli(capsys, "compare", path, "--target-psnr", "60", "--json")
    assert rc == 99
    rows = json.loads(out)
    assert rows and not any(r["chosen"] for r in rows) and rows[-1]["k"] == 256
    assert "out of reach" in one_error_line(err)


TARGETS = "a quality target (--target-psnr, --target-ssim, --max-delta-e)"


def test_k_and_a_target_do_not_go_together(capsys, image):
    path, _ = image
    rc, out, err = cli(capsys, "compress", path, "-k", "8", "--target-psnr", "30")
    assert rc == 2 and out == ""
    assert one_error_line(err) == f"kmeanscli: error: give -k/--colors or {TARGETS}, not both"


@pytest.mark.parametrize(
    "args",
    [["--target-psnr", "0"], ["--target-ssim", "1.5"], ["--max-delta-e", "-1"]],
)
def test_bad_targets_are_usage_errors(capsys, image, args):
    path, _ = image
    for command in ("compare", "compress"):
        rc, out, err = cli(capsys, command, path, *args)
        assert rc == 2 and out == ""
        assert args[0] in one_error_line(err)


# -- --skip-if-larger ----------------------------------------------------------------------------


def test_skip_if_larger_exits_98_and_writes_nothing(capsys, image, tmp_path):
    path, _ = image
    small = tmp_path / "small.png"
    rc, _, err = cli(capsys, "compress", path, "-k", "4", "-o", small, "--skip-if-larger")
    assert rc == 0, err  # 4 colours are much smaller than the noisy original
    again = tmp_path / "again.png"
    rc, out, err = cli(capsys, "compress", small, "-k", "4", "-o", again, "--skip-if-larger")
    assert rc == ExitStatus.SKIPPED_NOT_SMALLER == 98
    assert out == "" and not again.exists()
    # a decision, not a failure: a notice, not an error line
    reason = (
        f"{small}: the output would be {small.stat().st_size:,} bytes, not smaller than the "
        f"input's {small.stat().st_size:,}; nothing written"
    )
    assert err == f"kmeanscli: skipped: {reason}\n"
    rc, out, err = cli(capsys, "compress", small, "-k", "4", "-o", again, "--skip-if-larger", "-q")
    assert (rc, out, err) == (98, "", "")  # silent with -q, as documented
    rc, out, err = cli(capsys, "compress", small, "-k", "4", "-o", "-", "--skip-if-larger")
    assert rc == 98 and out == "" and err.startswith("kmeanscli: skipped: ")
    args = ["compress", small, "-k", "4", "-o", again, "--skip-if-larger", "--json", "-q"]
    rc, out, err = cli(capsys, *args)
    assert rc == 98 and err == ""
    assert json.loads(out) == {
        "input": str(small),
        "status": "skipped",
        "reason": reason,
        "exit_code": 98,
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "small.png"]


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "message"),
    [("3,x", "'x' is not a whole number"), ("1", "out of range"), ("300", "out of range")],
)
def test_bad_k_lists_exit_2(capsys, image, k, message):
    path, _ = image
    rc, out, err = cli(capsys, "compare", path, "-k", k)
    assert rc == 2 and out == ""
    assert message in one_error_line(err)


def test_mismatched_sizes_exit_1(capsys, image, tmp_path):
    path, pixels = image
    other = tmp_path / "other.png"
    Image.fromarray(pixels[:20]).save(other)
    rc, out, err = cli(capsys, "compare", path, other)
    assert rc == 1 and out == ""
    assert "sizes must match" in one_error_line(err)


@pytest.mark.parametrize("mode", ["sweep", "files"])
def test_unreadable_files_exit_1(capsys, image, tmp_path, mode):
    path, _ = image
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    for bad in (tmp_path / "missing.png", corrupt, tmp_path):
        argv = ["compare", bad] if mode == "sweep" else ["compare", path, bad]
        rc, out, err = cli(capsys, *argv)
        assert rc == 1 and out == ""
        assert str(bad) in one_error_line(err)


@pytest.mark.parametrize("option", ["--plot", "--plot-colors"])
def test_unwritable_plot_paths_exit_1_before_any_work(capsys, image, tmp_path, option):
    path, _ = image
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    for target in (tmp_path / "missing" / "p.png", a_file / "p.png"):
        rc, out, err = cli(capsys, "compare", path, "-k", "4", option, target)
        assert rc == 1 and out == ""
        assert str(target) in one_error_line(err)
    rc, out, err = cli(capsys, "compare", path, "-k", "4", option, tmp_path / "p.gif")
    assert rc == 2 and out == ""
    assert ".png, .svg or .pdf" in one_error_line(err)


ONE_IMAGE = "is for one image; it does not go with several files to score"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--json", "--csv"], "give --json or --csv, not both"),
        (["OTHER", "-k", "4"], f"-k {ONE_IMAGE}"),
        (["OTHER", "--target-psnr", "30"], f"{TARGETS} {ONE_IMAGE}"),
        (["OTHER", "--methods", "octree"], f"--methods {ONE_IMAGE}"),
        (["OTHER", "--engine", "minibatch"], f"--engine {ONE_IMAGE}"),
        (["OTHER", "--engine", "minibatch", "--batch-size", "64"], f"--engine {ONE_IMAGE}"),
        (["OTHER", "--dither", "fs"], f"--dither {ONE_IMAGE}"),
        (["OTHER", "--dither", "fs", "--dither-strength", "0.5"], f"--dither {ONE_IMAGE}"),
        (["OTHER", "--keep-color", "#000000"], f"--keep-color {ONE_IMAGE}"),
        (["OTHER", "--seed", "3"], f"--seed {ONE_IMAGE}"),
        (["OTHER", "--space", "lab"], f"--space {ONE_IMAGE}"),
        (
            ["--methods", "kmeans,pngquant"],
            "--methods 'kmeans,pngquant': unknown method 'pngquant'; "
            "use kmeans, minibatch, mediancut, octree",
        ),
        (
            ["--methods", "octree", "--target-psnr", "30"],
            "quality targets choose k for kmeans: add kmeans to --methods",
        ),
        (
            ["--methods", "kmeans,minibatch", "--engine", "minibatch"],
            "the kmeans rows already use the minibatch engine (--engine minibatch): "
            "ask for one of the two methods",
        ),
        (
            ["--batch-size", "256"],
            "--batch-size is a setting of the minibatch engine (--engine minibatch, or the "
            "minibatch method)",
        ),
        (
            ["--dither-strength", "0.5"],
            "--dither-strength needs Floyd–Steinberg dithering (--dither fs)",
        ),
        (["--sample"], "give either IN or --sample, not both"),
    ],
)
def test_usage_errors(capsys, image, args, message):
    path, _ = image
    argv = [path if a == "OTHER" else a for a in args]
    rc, out, err = cli(capsys, "compare", path, *argv)
    assert rc == 2 and out == ""
    assert one_error_line(err) == f"kmeanscli: error: {message}"


def test_missing_input_is_a_usage_error(capsys):
    rc, out, err = cli(capsys, "compare")
    assert rc == 2 and out == ""
    assert one_error_line(err) == (
        "kmeanscli: error: missing IN: give an image path, - for stdin, or --sample"
    )


# -- files mode ----------------------------------------------------------------------------


def test_files_mode(capsys, image, tmp_path):
    path, pixels = image
    other = tmp_path / "other.png"
    q = np.asarray(
        Image.fromarray(pixels)
        .quantize(8, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
        .convert("RGB")
    )
    Image.fromarray(q).save(other)
    rc, out, err = cli(capsys, "compare", path, other, "--json")
    assert rc == 0, err
    (row,) = json.loads(out)
    assert list(row) == ["file", *FIELDS]
    assert row["file"] == str(other) and row["k"] is None and row["seconds"] is None
    assert row["colors"] == len(np.unique(q.reshape(-1, 3), axis=0))
    assert row["bytes"] == other.stat().st_size
    assert abs(row["psnr"] - psnr_of(pixels, q)) <= 0.01
    rc, out, err = cli(capsys, "compare", path, other)
    assert rc == 0 and str(other) in out


# -- figures -------------------------------------------------------------------------------


def test_plots_are_written_and_decodable(capsys, image, tmp_path):
    path, _ = image
    png, svg, pdf, cloud = (tmp_path / n for n in ("p.png", "p.svg", "p.pdf", "colors.png"))
    rc, _, err = cli(
        capsys,
        "compare",
        path,
        "-k",
        "4,8",
        "--methods",
        "kmeans,octree",
        "--plot",
        png,
        "--plot-colors",
        cloud,
    )
    assert rc == 0, err
    for figure in (png, cloud):
        with Image.open(figure) as im:
            im.load()
            assert im.format == "PNG" and im.width > 400 and im.height > 400
    rc, _, err = cli(capsys, "compare", path, "-k", "4", "--plot", svg, "--plot-colors", pdf)
    assert rc == 0, err
    head = svg.read_bytes()[:200]
    assert head.startswith(b"<?xml") and b"<svg" in svg.read_bytes()[:2000]
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_files_mode_plot(capsys, image, tmp_path):
    path, pixels = image
    other = tmp_path / "other.png"
    Image.fromarray(quantize(pixels, 6).image()).save(other)
    rc, _, err = cli(capsys, "compare", path, other, "--plot", tmp_path / "f.png")
    assert rc == 0, err
    with Image.open(tmp_path / "f.png") as im:
        assert im.format == "PNG"


def test_preview_without_a_display_warns_and_carries_on(capsys, image):
    path, _ = image
    rc, out, err = cli(capsys, "compare", path, "-k", "4", "--preview", "--json")
    assert rc == 0
    assert json.loads(out)[0]["k"] == 4
    assert err.strip() == (
        "kmeanscli: warning: no display for --preview; skipped (use --plot FILE to save the figure)"
    )


def test_help_imports_no_heavy_module():
    code = (
        "import sys\n"
        "from kmeanscli.cli.app import run\n"
        "for argv in (['--help'], ['compare', '--help'], ['compress', '--help']):\n"
        "    run(argv)\n"
        "heavy = ('sklearn', 'scipy', 'skimage', 'matplotlib', 'dask')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith(heavy)}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "--target-psnr" in done.stdout and "--skip-if-larger" in done.stdout


def test_piped_table_keeps_every_column_whole(capsys, image, monkeypatch):
    """Written to a file or a pipe, the table is not cut to 80 columns."""
    monkeypatch.setenv("COLUMNS", "80")
    path, _pixels = image
    rc, out, err = cli(capsys, "compare", path, "-k", "4,8", "--methods", "kmeans,octree")
    assert rc == 0, err
    assert "…" not in out
    header = next(line for line in out.splitlines() if "PSNR" in line)
    for name in ("method", "colours", "bytes", "ratio", "MSE", "SSIM", "ΔE00", "seconds"):
        assert name in header
    assert "octree" in out and "kmeans" in out
