"""The shared option group where commands differ: the k each one uses, engines per method."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ERROR_PREFIX, colours_of, decode_png, png_bytes, synthetic

KEEP = ["--keep-color", "#ff0000", "--keep-color", "#00ff00", "--keep-color", "#0000ff"]


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "in.png"
    path.write_bytes(png_bytes(synthetic(40, 30, seed=5)))
    return path


def test_palette_checks_locked_colours_against_its_own_k(cli, photo: Path) -> None:
    seven = [a for c in range(7) for a in ("--keep-color", f"#0000{c:02x}")]
    line = cli("palette", photo, *seven).assert_one_error(2)
    assert line == (
        f"{ERROR_PREFIX}7 colours to keep (--keep-color) do not fit in a palette of -k/--colors = 6"
    )


def test_compare_checks_locked_colours_against_the_smallest_k(cli, photo: Path) -> None:
    line = cli("compare", photo, "-k", "2,8", *KEEP).assert_one_error(2)
    assert line == (
        f"{ERROR_PREFIX}3 colours to keep (--keep-color) do not fit in a palette of -k/--colors = 2"
    )


def test_quality_target_search_starts_where_the_locked_colours_fit(
    cli, photo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.png"
    r = cli("compress", photo, "-o", out, "--target-psnr", "5", *KEEP, "--json", "-q")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["k"] == 3 and doc["colors"] == 3
    assert colours_of(decode_png(out.read_bytes())) == {
        (255, 0, 0, 255),
        (0, 255, 0, 255),
        (0, 0, 255, 255),
    }


def test_compare_batch_size_reaches_the_minibatch_rows(cli, photo: Path) -> None:
    rows = {}
    for size in ("64", "4096"):
        r = cli(
            "compare", photo, "-k", "16", "--methods", "kmeans,minibatch",
            "--batch-size", size, "--json",
        )  # fmt: skip
        assert r.code == 0, r.stderr
        rows[size] = {row["method"]: row for row in json.loads(r.stdout)}
    assert rows["64"]["kmeans"] == {
        **rows["4096"]["kmeans"],
        "seconds": rows["64"]["kmeans"]["seconds"],
    }
    assert rows["64"]["minibatch"]["engine"] == "minibatch"
    assert rows["64"]["minibatch"]["mse"] != rows["4096"]["minibatch"]["mse"]
    r = cli("compare", photo, "--methods", "kmeans,mediancut", "--batch-size", "64")
    assert r.assert_one_error(2).startswith(f"{ERROR_PREFIX}--batch-size is a setting of")


def test_lossless_note_counts_the_image_colours_not_the_locked_ones(cli, tmp_path: Path) -> None:
    src = tmp_path / "two.png"
    src.write_bytes(png_bytes(synthetic(20, 10, colors=2, seed=1)))
    r = cli("compress", src, "-k", "8", "--keep-color", "#ff00ff", "-o", tmp_path / "o.png")
    assert r.code == 0
    assert "kmeanscli: warning: the image has only 2 colours: all kept exactly" in r.stderr
