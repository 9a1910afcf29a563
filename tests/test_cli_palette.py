"""``kmeanscli palette``: dominant colours as a table, JSON, a plot and palette files."""

from __future__ import annotations

import json
import subprocess
import sys
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
def blocks(tmp_path: Path) -> Path:
    """Four flat colours covering 50 %, 25 %, 15 % and 10 % of the pixels, plus transparency."""
    img = np.zeros((20, 20, 4), dtype=np.uint8)
    img[..., 3] = 255
    img[:, :10, :3] = (200, 40, 40)  # 200 px
    img[:10, 10:, :3] = (40, 40, 200)  # 100 px
    img[10:16, 10:, :3] = (40, 200, 40)  # 60 px
    img[16:, 10:, :3] = (250, 250, 250)  # 40 px
    img[0, 0, 3] = 0  # one transparent pixel: not a colour, not counted
    path = tmp_path / "blocks.png"
    Image.fromarray(img).save(path)
    return path


def _cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_sorted_by_share(capsys, blocks: Path) -> None:
    code, out, err = _cli(capsys, "palette", blocks, "-k", "4", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert [c["hex"] for c in doc["colors"]] == ["#c82828", "#2828c8", "#28c828", "#fafafa"]
    assert [c["pixels"] for c in doc["colors"]] == [199, 100, 60, 40]
    assert doc["colors"][0]["rgb"] == [200, 40, 40]
    assert sum(c["share"] for c in doc["colors"]) == pytest.approx(1.0, abs=1e-5)
    assert doc["k"] == 4 and doc["width"] == 20 and err == ""


@pytest.mark.parametrize("engine", ["lloyd", "minibatch"])
def test_engines_find_the_four_flat_colours(capsys, blocks: Path, engine: str) -> None:
    code, out, err = _cli(capsys, "palette", blocks, "-k", "4", "--engine", engine, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["engine"] == engine and doc["k"] == 4
    assert [c["hex"] for c in doc["colors"]] == ["#c82828", "#2828c8", "#28c828", "#fafafa"]
    assert [c["pixels"] for c in doc["colors"]] == [199, 100, 60, 40]


def test_default_k_is_6_and_one_colour_is_allowed(capsys, tmp_path: Path, blocks: Path) -> None:
    rng = np.random.default_rng(0)
    noisy = tmp_path / "noisy.png"
    Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(noisy)
    code, out, err = _cli(capsys, "palette", noisy, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["k"] == 6 and len(doc["colors"]) == 6
    code, out, err = _cli(capsys, "palette", blocks, "-k", "1", "--json")
    assert code == 0, err
    (only,) = json.loads(out)["colors"]
    assert only["pixels"] == 399 and only["share"] == pytest.approx(1.0)


def test_table_on_stdout(capsys, blocks: Path) -> None:
    code, out, err = _cli(capsys, "palette", blocks, "-k", "4")
    assert code == 0, err
    lines = out.splitlines()
    assert "4 dominant colours" in lines[0]
    rows = [line for line in lines if "#" in line and "%" in line]
    assert [r.split("│")[2].strip() for r in rows] == ["#c82828", "#2828c8", "#28c828", "#fafafa"]
    assert "200  40  40" in rows[0] and "49.9%" in rows[0]


def test_swatches_are_coloured_on_a_colour_terminal(blocks: Path) -> None:
    from rich.console import Console

    from kmeanscli.api import dominant_colors
    from kmeanscli.cli.palette import render_palette

    console = Console(record=True, force_terminal=True, color_system="truecolor", width=80)
    render_palette(dominant_colors(blocks, 4), console)
    assert "48;2;200;40;40" in console.export_text(styles=True)  # background of the swatch


def test_plot_and_palette_out(capsys, tmp_path: Path, blocks: Path) -> None:
    plot, gpl = tmp_path / "p.png", tmp_path / "p.gpl"
    code, _, err = _cli(
        capsys, "palette", blocks, "-k", "3", "--plot", plot, "--palette-out", gpl, "--json"
    )
    assert code == 0, err
    with Image.open(plot) as im:
        assert im.format == "PNG" and im.width > 100
    assert len(palette_io.loads(gpl.read_bytes(), "gpl")) == 3
    code, _, err = _cli(capsys, "palette", blocks, "--palette-out", gpl)
    assert code == 1 and "already exists" in err


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["{missing}"], 1, "no such file"),
        (["{blocks}", "-k", "0"], 2, "-k"),
        (
            ["{blocks}", "--batch-size", "256"],
            2,
            "kmeanscli: error: --batch-size is a setting of the minibatch engine "
            "(--engine minibatch)\n",
        ),
        (["{blocks}", "--plot", "x.gif"], 2, "--plot writes .png, .svg or .pdf"),
        (["{blocks}", "--palette-out", "x.doc"], 2, "unknown palette extension"),
    ],
)
def test_errors(capsys, tmp_path: Path, blocks: Path, args, code, message) -> None:
    fill = {"blocks": str(blocks), "missing": str(tmp_path / "nope.png")}
    rc, out, err = _cli(capsys, "palette", *(a.format(**fill) for a in args))
    assert rc == code and out == ""
    assert err.count("\n") == 1 and message in err


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys\nfrom kmeanscli.cli.app import run\nrun(['palette', '--help'])\n"
        "heavy = [m for m in ('sklearn', 'scipy', 'skimage', 'matplotlib') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
