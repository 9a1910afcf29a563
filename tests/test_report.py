"""``kmeanscli report`` and ``kmeanscli.report``: one self-contained page, the numbers of
``compare --json``. (What the page does in a browser: test_report_browser.py.)"""

from __future__ import annotations

import base64
import html
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ERROR_PREFIX, files_in, photo, png_bytes, save, subprocess_env
from PIL import Image

from kmeanscli import QuantizeOptions
from kmeanscli.compare import compare_k
from kmeanscli.report import render_report

DATA_URI = re.compile(r"data:(image/[a-z]+);base64,([A-Za-z0-9+/=]+)")


def _records(page: str) -> list[dict]:
    match = re.search(r'<script type="application/json" id="compare-json">(.*?)</script>', page)
    assert match
    return json.loads(match.group(1))


def _images(page: str) -> list[tuple[str, bytes]]:
    return [(mime, base64.b64decode(data)) for mime, data in DATA_URI.findall(page)]


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(
            im.convert("RGBA" if "A" in im.mode or "transparency" in im.info else "RGB")
        )


@pytest.fixture(scope="module")
def comparison():
    return compare_k(png_bytes(photo(3, (36, 50))), [4, 16], QuantizeOptions(), input_name="p.png")


def test_page_is_self_contained(comparison) -> None:
    page = render_report(comparison).decode("utf-8")
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    # every reference is inline (data:) or within the page (#...): nothing to fetch
    refs = re.findall(r'\b(?:src|href)="([^"]*)"', page)
    assert refs and all(r.startswith(("data:", "#")) for r in refs), refs
    assert "url(" not in page.replace("url(data:", "")
    assert "@import" not in page and "<link" not in page
    assert not re.search(r"https?://", page)
    assert "{{" not in page and "{%" not in page  # the templates were filled


def test_page_carries_the_rows_and_their_pngs(comparison) -> None:
    page = render_report(comparison).decode("utf-8")
    records = _records(page)
    assert records == [{"method": "kmeans", **row.to_dict()} for row in comparison.rows]
    pngs = [data for mime, data in _images(page) if mime == "image/png"]
    original, results = pngs[0], pngs[1:]
    assert results == [row.png for row in comparison.rows]  # the bytes measured, as written
    assert np.array_equal(_decode(original), comparison.original)  # lossless original
    for row in comparison.rows:  # the palette: every entry, its share of the pixels
        section = re.split(f'<section class="result[^"]*" id="kmeans-k{row.k}"', page)[1]
        section = section.split("</section>")[0]
        hexes = re.findall(r'data-hex="(#[0-9a-f]{6,8})"', section)
        expected = {"#{:02x}{:02x}{:02x}".format(*c) for c in row.result.palette}
        assert set(hexes) == expected and len(hexes) == len(expected)
        shares = [float(s) for s in re.findall(r"<small>([0-9.]+)%</small>", section)]
        assert len(shares) == len(hexes) and abs(sum(shares) - 100) < 0.1 * len(shares)


def test_large_original_goes_in_as_a_stated_preview(comparison) -> None:
    page = render_report(comparison, max_png_bytes=100).decode("utf-8")
    mimes = [mime for mime, _ in _images(page)]
    assert mimes[0] == "image/webp" and mimes[1:] == ["image/png"] * len(comparison.rows)
    size = len(_images(page)[0][1])
    assert f"WEBP, {size:,} bytes, lossy preview, quality 90" in page


def test_transparency_swatch_and_chosen_k() -> None:
    pixels = photo(4, (32, 40), alpha=True)
    options = QuantizeOptions(targets=[__import__("kmeanscli").Target("psnr", 25.0)])
    comp = compare_k(png_bytes(pixels), [], options, input_name="a.png")
    page = render_report(comp).decode("utf-8")
    assert 'data-hex="#00000000"' in page  # the transparent entry, drawn on a checkerboard
    k = comp.chosen_k
    assert k is not None
    assert f'<section class="result chosen" id="kmeans-k{k}"' in page
    assert page.count('<tr data-id="') == len(comp.rows)
    assert page.count('class="chosen"') == 1 + 1  # the table row and the chart's ring
    assert html.escape("PSNR ≥ 25 dB") in page or "PSNR ≥ 25 dB" in page


def test_files_mode_has_no_results_to_show(tmp_path: Path) -> None:
    from kmeanscli.compare import compare_files

    a = save(tmp_path / "a.png", photo(1))
    comp = compare_files(a, [a])
    with pytest.raises(ValueError, match="compare_k"):
        render_report(comp)


# ------------------------------------------------------------------------------- the CLI


def test_cli_writes_the_numbers_of_compare_json(cli, tmp_path: Path) -> None:
    src = save(tmp_path / "in.png", photo(5, (30, 44)))
    out = tmp_path / "r.html"
    args = ["-k", "4,8", "--methods", "kmeans,octree", "--space", "oklab"]
    r = cli("report", src, "-o", out, *args)
    assert r.code == 0, r.stderr
    assert r.stdout == ""
    size = out.stat().st_size
    assert r.stderr_lines == [f"{out}: {size / 1000:,.1f} kB, 4 results"]
    c = cli("compare", src, "--json", *args)
    assert c.code == 0
    page = out.read_text("utf-8")
    expected = json.loads(c.stdout)
    got = _records(page)
    for record in (*expected, *got):
        record.pop("seconds")  # a timing: the one value two runs do not share
    assert got == expected
    assert files_in(tmp_path) == {"in.png", "r.html"}


def test_cli_refuses_to_overwrite_unless_forced(cli, tmp_path: Path) -> None:
    src = save(tmp_path / "in.png", photo(6))
    out = tmp_path / "r.html"
    out.write_text("mine")
    r = cli("report", src, "-o", out, "-k", "4")
    assert r.code == 1
    assert r.stderr_lines == [f"{ERROR_PREFIX}{out}: already exists (use --force to overwrite)"]
    assert out.read_text() == "mine"
    r = cli("report", src, "-o", out, "-k", "4", "--force", "-q")
    assert (r.code, r.stderr) == (0, "")
    assert out.read_text("utf-8").startswith("<!doctype html>")


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["-o", "r.png"], 2, "r.png: the report is an HTML page; give a .html file"),
        (["-o", "missing/r.html"], 1, "missing/r.html: folder missing does not exist"),
        (["-o", "r.html", "-k", "1"], 2, "-k '1': 1 is out of range; each k must be 2 to 256"),
        (["-o", "r.html", "--methods", "x"], 2, "--methods 'x': unknown method 'x'"),
        (["-o", "r.html", "--sample"], 2, "give either IN or --sample, not both"),
    ],
)
def test_cli_errors_are_one_line(cli, tmp_path: Path, monkeypatch, argv, code, message) -> None:
    monkeypatch.chdir(tmp_path)
    save(tmp_path / "in.png", photo(7))
    r = cli("report", "in.png", *argv)
    assert r.code == code
    assert len(r.stderr_lines) == 1 and r.stderr_lines[0].startswith(ERROR_PREFIX + message)
    assert files_in(tmp_path) == {"in.png"}


def test_cli_stdin_to_stdout_and_target_not_met(cli, tmp_path: Path) -> None:
    data = (save(tmp_path / "in.png", photo(8))).read_bytes()
    r = cli("report", "-", "-o", "-", "-k", "4", input=data)
    assert r.code == 0 and r.stderr == ""
    assert r.stdout.startswith("<!doctype html>") and "<h1>-</h1>" in r.stdout
    out = tmp_path / "t.html"
    r = cli("report", tmp_path / "in.png", "-o", out, "--target-psnr", "90", "-q")
    assert r.code == 99  # the page is still written, showing every k tried
    assert r.stderr_lines == [
        f"{ERROR_PREFIX}PSNR ≥ 90 dB is out of reach: 256 colours give "
        + r.stderr_lines[0].split("give ")[1]
    ]
    assert "out of reach" in out.read_text("utf-8")


def test_report_help_imports_neither_numpy_nor_jinja2() -> None:
    code = (
        "import sys\n"
        "from kmeanscli.cli.app import run\n"
        "rc = run(['report', '--help'])\n"
        "sys.stderr.write(repr(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'numpy', 'jinja2', 'PIL'})))\n"
        "sys.exit(rc)\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, env=subprocess_env(), timeout=60
    )
    assert p.returncode == 0 and b"--output" in p.stdout
    assert p.stderr.decode() == "[]"


def test_browser_test_says_how_to_install_the_browser(monkeypatch, tmp_path: Path) -> None:
    import browser

    monkeypatch.setattr(browser, "CHROMIUM", tmp_path / "chromium")
    assert browser.missing() == (
        f"{tmp_path / 'chromium'} is missing: install it with `make browser` "
        "(apt-get install chromium chromium-driver)"
    )


# ------------------------------------------------------------------- batch --report


@pytest.fixture
def batch_inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    for i in range(3):
        save(folder / f"p{i}.png", photo(20 + i, (30, 40)))
    (folder / "bad.png").write_bytes(b"not an image")
    return folder


def test_batch_report_lists_every_file_with_the_json_numbers(cli, batch_inputs: Path) -> None:
    page = batch_inputs.parent / "batch.html"
    out = batch_inputs.parent / "out"
    r = cli("batch", batch_inputs, "-o", out, "-k", "8", "-j", "1", "--json", "--report", page)
    assert r.code == 3  # bad.png failed; the page is written all the same
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    text = page.read_text("utf-8")
    assert _records_of(text, "batch-json") == lines
    assert text.count('<tr data-id="file-') == 4
    assert text.count('class="status-failed"') == 1
    ok = [line for line in lines if line["status"] == "ok"]
    total_in, total_out = sum(x["bytes_in"] for x in ok), sum(x["bytes_out"] for x in ok)
    words = " ".join(text.split())
    assert f"3 compressed, 0 skipped, 1 failed; {total_in:,} → {total_out:,} bytes" in words
    for line in ok:  # its row: the numbers of its JSON line, a link to its view
        assert f'data-key="bytes_out" data-value="{line["bytes_out"]}"' in text
        assert f'data-key="psnr" data-value="{line["psnr"]}"' in text
    images = _images(text)
    assert len(images) == 3 * 4  # thumbnails and previews, before and after, of each file
    for _, data in images:
        assert _decode(data).size
    refs = re.findall(r'\bsrc="([^"]*)"', text)
    assert all(ref.startswith("data:") for ref in refs)
    assert f"report   {page} (" in r.stderr


def test_large_batch_report_has_thumbnails_only(batch_inputs: Path, monkeypatch) -> None:
    from kmeanscli import QuantizeOptions
    from kmeanscli.batch import BatchOptions, make_executor, plan, run_batch
    from kmeanscli.report import batch as batch_report

    monkeypatch.setattr(batch_report, "PREVIEW_FILES", 2)
    p = plan([batch_inputs], batch_inputs.parent / "out", BatchOptions(QuantizeOptions(k=4)))
    with make_executor(jobs=1) as ex:
        summary = run_batch(p, ex)
    page = batch_inputs.parent / "r.html"
    text = batch_report.render_batch_report(summary, page=page).decode("utf-8")
    assert len(_images(text)) == 3 * 2  # two thumbnails per compressed file, no previews
    assert "More than 2 files compressed: thumbnails only" in text
    assert '<a href="out/p0-k4.png">' in text  # rows link to the files, relative to the page


def _records_of(page: str, element: str) -> list[dict]:
    match = re.search(f'<script type="application/json" id="{element}">(.*?)</script>', page)
    assert match
    return json.loads(match.group(1))
