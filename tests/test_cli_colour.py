"""``kmeanscli compress`` with --space, --dither, --palette, --palette-out and --keep-color."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kmeanscli.cli.app import run
from kmeanscli.core import palette_io


@pytest.fixture(autouse=True)
def _plain_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "100")


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:40, 0:60]
    img = np.stack([255 * x / 60, 255 * y / 40, 128 + 90 * np.sin(x / 6.0)], axis=-1)
    img = np.clip(np.rint(img + rng.normal(0, 5, img.shape)), 0, 255).astype(np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(img).save(path)
    return path


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _colors(path: Path) -> set[tuple[int, int, int]]:
    with Image.open(path) as im:
        a = np.asarray(im.convert("RGB")).reshape(-1, 3)
    return {tuple(c) for c in np.unique(a, axis=0).tolist()}


@pytest.mark.parametrize("space", ["rgb", "oklab", "lab"])
def test_space_flag(capsys, tmp_path: Path, photo: Path, space: str) -> None:
    out = tmp_path / "o.png"
    code, stdout, err = _cli(
        capsys, "compress", photo, "-k", "6", "--space", space, "-o", out, "--json"
    )
    assert code == 0, err
    report = json.loads(stdout)
    assert report["space"] == space and report["colors"] == 6 and report["dither"] == "none"
    assert len(_colors(out)) == 6


def test_dither_flag_keeps_exact_k_and_reports_it(capsys, tmp_path: Path, photo: Path) -> None:
    plain, dith = tmp_path / "plain.png", tmp_path / "dith.png"
    assert _cli(capsys, "compress", photo, "-k", "4", "-o", plain, "-q")[0] == 0
    code, stdout, err = _cli(
        capsys, "compress", photo, "-k", "4", "--dither", "fs", "-o", dith, "--json"
    )
    assert code == 0, err
    report = json.loads(stdout)
    assert report["dither"] == "fs" and report["dither_strength"] == 1.0
    assert _colors(dith) == _colors(plain) and len(_colors(dith)) == 4
    assert dith.read_bytes() != plain.read_bytes()


def test_palette_out_and_back_in(capsys, tmp_path: Path, photo: Path) -> None:
    out, gpl, js = tmp_path / "o.png", tmp_path / "p.gpl", tmp_path / "p.json"
    code, _, err = _cli(capsys, "compress", photo, "-k", "5", "-o", out, "--palette-out", gpl)
    assert code == 0, err
    pal = palette_io.loads(gpl.read_bytes(), "gpl")
    assert {tuple(c) for c in pal.tolist()} == _colors(out)
    # the same palette, in: no k-means, output colours within the palette
    again = tmp_path / "again.png"
    code, stdout, err = _cli(
        capsys, "compress", photo, "--palette", gpl, "-o", again, "--palette-out", js, "--json"
    )
    assert code == 0, err
    assert json.loads(stdout)["palette_in"] == str(gpl)
    assert _colors(again) <= {tuple(c) for c in pal.tolist()}
    doc = json.loads(js.read_text())
    assert [c["rgb"] for c in doc["colors"]] == pal.tolist()  # the given order is kept
    assert sum(c["pixels"] for c in doc["colors"]) == 40 * 60
    assert sum(c["share"] for c in doc["colors"]) == pytest.approx(1.0, abs=1e-5)


def test_palette_from_an_image_file(capsys, tmp_path: Path, photo: Path) -> None:
    swatches = tmp_path / "sw.png"
    given = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200], [240, 240, 240]], np.uint8)
    Image.fromarray(palette_io.swatch_strip(given)).save(swatches)
    out = tmp_path / "o.png"
    code, _, err = _cli(capsys, "compress", photo, "--palette", swatches, "-o", out, "-q")
    assert code == 0, err
    assert _colors(out) <= {tuple(c) for c in given.tolist()}


def test_keep_color(capsys, tmp_path: Path, photo: Path) -> None:
    out = tmp_path / "o.png"
    code, _, err = _cli(
        capsys,
        "compress",
        photo,
        "-k",
        "6",
        "--keep-color",
        "#ff00ff",
        "--keep-color",
        "000000",
        "-o",
        out,
        "-q",
    )
    assert code == 0, err
    with Image.open(out) as im:
        pal = np.array(im.getpalette()[: 6 * 3]).reshape(-1, 3)
    assert {(255, 0, 255), (0, 0, 0)} <= {tuple(c) for c in pal.tolist()}
    assert len(_colors(out)) >= 5  # magenta may be nearest to no pixel


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["-k", "4", "--palette", "{pal}"],
            2,
            "--palette and -k/--colors do not go together: the palette gives the colours",
        ),
        (
            ["--palette", "{pal}", "--keep-color", "#000000"],
            2,
            "--palette and --keep-color do not go together: a given palette is used as it is",
        ),
        (
            ["--palette-out", "p.aco"],
            2,
            "p.aco: unknown palette extension '.aco'; use one of .gpl, .json, .txt, .act, .png",
        ),
        (
            ["--palette", "p.xyz"],
            2,
            "p.xyz: unknown palette extension '.xyz'; use one of .gpl, .json, .txt, .act, .png, "
            ".gif, .webp, .bmp, .tif, .tiff, .jpg, .jpeg",
        ),
        (
            ["--keep-color", "#12345g"],
            2,
            "--keep-color: '#12345g' is not a hex colour like #ff8000",
        ),
        (
            ["--dither-strength", "0.5"],
            2,
            "--dither-strength needs Floyd–Steinberg dithering (--dither fs)",
        ),
        (
            ["--dither", "fs", "--dither-strength", "1.5"],
            2,
            "--dither-strength must be between 0 and 1; got 1.5 (see 'kmeanscli compress --help')",
        ),
        (
            ["--space", "hsv"],
            2,
            "--space must be one of rgb, oklab, lab; got 'hsv' (see 'kmeanscli compress --help')",
        ),
        (
            [
                "-k",
                "2",
                "--keep-color",
                "#000000",
                "--keep-color",
                "#ffffff",
                "--keep-color",
                "#ff0000",
            ],
            2,
            "3 colours to keep (--keep-color) do not fit in a palette of -k/--colors = 2",
        ),
        (
            ["--palette", "{bad}"],
            1,
            "{bad}: not a GIMP palette (the first line must be 'GIMP Palette')",
        ),
        (["--palette", "{missing}"], 1, "{missing}: no such file"),
    ],
)
def test_bad_flags_and_files(capsys, tmp_path: Path, photo: Path, args, code, message) -> None:
    pal = tmp_path / "pal.gpl"
    pal.write_bytes(palette_io.dumps(np.array([[0, 0, 0], [255, 255, 255]], np.uint8), "gpl"))
    bad = tmp_path / "bad.gpl"
    bad.write_text("JASC-PAL\n0100\n2\n0 0 0\n")
    fill = {"pal": str(pal), "bad": str(bad), "missing": str(tmp_path / "missing.gpl")}
    out = tmp_path / "o.png"
    argv = ["compress", photo, "-o", out, *(a.format(**fill) for a in args)]
    rc, stdout, err = _cli(capsys, *argv)
    assert rc == code
    assert stdout == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kmeanscli: error: ")
    line = lines[0].removeprefix("kmeanscli: error: ")
    assert line == message.format(**fill)
    assert not out.exists()


def test_palette_out_is_not_overwritten_without_force(capsys, tmp_path: Path, photo: Path) -> None:
    gpl = tmp_path / "p.gpl"
    gpl.write_text("keep me")
    out = tmp_path / "o.png"
    rc, _, err = _cli(capsys, "compress", photo, "-o", out, "--palette-out", gpl)
    assert rc == 1 and "already exists" in err
    assert gpl.read_text() == "keep me" and not out.exists()
    rc, _, err = _cli(capsys, "compress", photo, "-o", out, "--palette-out", gpl, "--force", "-q")
    assert rc == 0 and gpl.read_text().startswith("GIMP Palette")


def test_restarts_flag(capsys, tmp_path: Path, photo: Path) -> None:
    out = tmp_path / "o.png"
    code, stdout, err = _cli(
        capsys, "compress", photo, "-k", "4", "--restarts", "2", "-o", out, "--json"
    )
    assert code == 0, err
    assert json.loads(stdout)["colors"] == 4 and len(_colors(out)) == 4
    code, _, err = _cli(capsys, "compress", photo, "--restarts", "0", "-o", out, "--force")
    assert code == 2 and "--restarts" in err


def test_compare_space_matches_compress(capsys, tmp_path: Path, photo: Path) -> None:
    out = tmp_path / "o.png"
    code, stdout, err = _cli(
        capsys, "compress", photo, "-k", "5", "--space", "oklab", "-o", out, "--json"
    )
    assert code == 0, err
    size = json.loads(stdout)["bytes_out"]
    code, stdout, err = _cli(capsys, "compare", photo, "-k", "5", "--space", "oklab", "--json")
    assert code == 0, err
    assert json.loads(stdout)[0]["bytes"] == size == out.stat().st_size
    code, _, err = _cli(capsys, "compare", photo, out, "--space", "lab")
    assert code == 2
    assert err == (
        "kmeanscli: error: --space is for one image; it does not go with several files to score\n"
    )


def test_palette_with_a_quality_target_is_a_usage_error(capsys, tmp_path: Path, photo: Path):
    pal = tmp_path / "p.txt"
    pal.write_text("#000000\n#ffffff\n")
    code, stdout, err = _cli(
        capsys, "compress", photo, "--palette", pal, "--target-psnr", "30", "-o", tmp_path / "o.png"
    )
    assert code == 2 and stdout == ""
    assert err == (
        "kmeanscli: error: --palette and a quality target (--target-psnr, --target-ssim, "
        "--max-delta-e) do not go together: the palette is fixed\n"
    )


def test_palette_out_never_overwrites_the_input_or_the_plot(capsys, tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    Image.fromarray(np.arange(48 * 3, dtype=np.uint8).reshape(4, 12, 3)).save(src)
    before = src.read_bytes()
    out = tmp_path / "o.png"
    code, _, err = _cli(capsys, "compress", src, "-k", "4", "-o", out, "--palette-out", src, "-f")
    assert code == 1 and "is the input file" in err and src.read_bytes() == before
    code, _, err = _cli(capsys, "palette", src, "--palette-out", src, "--force")
    assert code == 1 and "is the input file" in err and src.read_bytes() == before
    plot = tmp_path / "p.png"
    code, _, err = _cli(
        capsys, "compress", src, "-k", "4", "-o", out, "--plot", plot, "--palette-out", plot
    )
    assert code == 2 and "--plot and --palette-out need different files" in err
    assert not out.exists() and not plot.exists()
