"""What a person sees: tables, summaries and the batch bar whole at 80 columns, piped output
complete, [brackets] in file names printed, size changes in honest words."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from kmeanscli.batch import BatchEvent, BatchSummary, FileResult
from kmeanscli.cli import batch as batch_cli
from kmeanscli.cli.console import size_change

TERMINAL_80 = {"COLUMNS": "80", "TTY_COMPATIBLE": "1"}
"""A terminal 80 columns wide (Rich treats the output as a terminal)."""

ODD_NAMES = ("[bold]in[1].png", "a[red]b[1].png")


def _check_lines(text: str, width: int = 80) -> list[str]:
    """Every line at most ``width`` cells, no cell cut with an ellipsis."""
    lines = text.splitlines()
    assert "…" not in text, text
    assert max(len(line) for line in lines) <= width, text
    return lines


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal-80", "piped"])
def test_compare_table_whole(cli, terminal: bool) -> None:
    argv = ["compare", "--sample", "-k", "16,256", "--methods", "kmeans,mediancut,octree", "-q"]
    r = cli(*argv, env=TERMINAL_80 if terminal else {"COLUMNS": "80"})
    assert r.code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "china.jpg: 640×427, 196,653 bytes"
    header = next(line for line in lines if "method" in line)
    names = " ".join(header.replace("┃", " ").split())
    rows = [line for line in lines if line.startswith("│ ")]
    assert [row.split()[1] for row in rows] == ["kmeans"] * 2 + ["mediancut"] * 2 + ["octree"] * 2
    if terminal:
        _check_lines(r.stdout)
        assert names == "method k cols kB ratio PSNR SSIM ΔE00 s"
        assert lines[-1] == "(bpp, MSE left out at 80 columns; --csv or --json gives every column)"
        assert re.search(
            r"│ kmeans +│ +256 │ +256 │ +1\d\d\.\d │ +\d\d\.\d% │ +36\.5\d │", r.stdout
        )
    else:  # every column, full precision, nothing padded
        assert "…" not in r.stdout
        assert names == "method k colours bytes bpp ratio MSE PSNR SSIM ΔE00 seconds"
        assert re.search(
            r"│ kmeans +│ +256 │ +256 │ 1\d\d,\d\d\d │ 4\.\d\d │ \d\d\.\d% │", r.stdout
        )
        assert all(line == line.rstrip() for line in lines)


def test_compare_files_with_long_odd_names_at_80_columns(
    cli, make_image, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    size = {"width": 40, "height": 30}
    original = Path(make_image("original.png", **size, seed=1).name)
    others = [Path(make_image(name, **size, seed=2).name) for name in ODD_NAMES]
    long = Path(
        make_image("a-rather-long-name-of-a-compressed-copy-" + "x" * 30 + ".png", **size).name
    )
    r = cli("compare", original, *others, long, env=TERMINAL_80)
    assert r.code == 0, r.stderr
    lines = _check_lines(r.stdout)
    assert lines[0].startswith(f"{original}: 40×30, ")
    for path in (*others, long):  # each name whole on a line, brackets and all
        assert any(line.rstrip().endswith(str(path)) for line in lines), path


def test_palette_table_at_80_columns_and_odd_names(cli, make_image, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = Path(make_image(ODD_NAMES[0], width=40, height=30, colors=12).name)
    r = cli("palette", src, "-k", "6", env=TERMINAL_80)
    assert r.code == 0, r.stderr
    lines = _check_lines(r.stdout)
    assert lines[0] == f"{src}: 6 dominant colours (rgb)"
    assert len([line for line in lines if re.search(r"#[0-9a-f]{6}", line)]) == 6


def test_compress_report_at_80_columns_and_odd_names(cli, make_image, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = Path(make_image(ODD_NAMES[0], width=60, height=40).name)
    out = Path(ODD_NAMES[1])
    r = cli("compress", src, "-o", out, env=TERMINAL_80)
    assert r.code == 0, r.stderr
    ratio = out.stat().st_size / src.stat().st_size
    lines = _check_lines(r.stderr)
    assert lines[0] == f"{src} → {out}"
    size = next(line for line in lines if line.startswith("size"))
    assert size.endswith(f"({ratio:.1%} of the input, {size_change(ratio)})")


def test_errors_and_batch_lines_keep_brackets(cli, make_image, tmp_path: Path) -> None:
    src = make_image(ODD_NAMES[0])
    r = cli("compress", src, "-o", tmp_path / "x.png", "-k", "4", "--palette-out", src)
    assert "[bold]in[1].png" in r.stderr
    missing = tmp_path / "[bold]broken[1].png"
    missing.write_bytes(b"not an image")
    r = cli("batch", src, missing, "-o", tmp_path / "out")
    assert r.code == 3
    assert f"ok       {src} -> " in r.stderr
    assert f"failed   {missing}: " in r.stderr
    assert f"  {missing}: " in r.stderr  # the summary's failure list


@pytest.mark.parametrize(
    ("ratio", "words"),
    [
        (0.966, "3% smaller"),
        (0.75, "25% smaller"),
        (0.5, "2.0× smaller"),
        (0.222, "4.5× smaller"),
        (0.998, "less than 1% smaller"),
        (1.0, "the same size"),
        (1.12, "12% larger"),
        (2.3, "2.3× larger"),
    ],
)
def test_size_change_words(ratio: float, words: str) -> None:
    assert size_change(ratio) == words


def _console(width: int) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=True, color_system=None)
    return console, buf


def _result(i: int, status: str = "ok") -> FileResult:
    name = f"photos/holiday/IMG_{i:04d}.jpg"
    if status == "failed":
        return FileResult(name, "out/x.png", "failed", error=f"{name}: cannot identify image")
    report = {"bytes_in": 4_812_345, "bytes_out": 1_234_567, "ratio": 0.2565}
    return FileResult(name, f"out/IMG_{i:04d}-k16.png", "ok", report=report)


@pytest.mark.parametrize("width", [120, 80, 60, 40])
def test_batch_bar_is_one_whole_line(monkeypatch, width: int) -> None:
    console, _ = _console(width)
    monkeypatch.setattr(batch_cli, "err_console", lambda: console)
    renderer = batch_cli._Renderer(quiet=False, json_out=False, bar=True)
    assert renderer.progress is not None
    renderer.task_id = renderer.progress.add_task("Starting", total=None, saved=None)
    renderer(BatchEvent("stage", "compress", 0, 1234))
    for i in range(1, 120):
        renderer(BatchEvent("file", "compress", i, 1234, _result(i, "failed" if i > 108 else "ok")))
    shown, buf = _console(width)
    shown.print(renderer.progress.get_renderable())
    lines = _check_lines(buf.getvalue().rstrip("\n"), width)
    assert len(lines) == 1, lines
    line = lines[0]
    assert "Compressing" in line and "119/1234" in line
    if width >= 80:
        assert "saved 386.4 MB" in line and "11 failed" in line and "ETA" in line


def test_batch_summary_at_80_columns(monkeypatch) -> None:
    console, buf = _console(80)
    monkeypatch.setattr(batch_cli, "err_console", lambda: console)
    results = [_result(i) for i in range(1, 40)] + [_result(40, "failed")]
    summary = BatchSummary(results=results, seconds=12.5, total=40)
    batch_cli.render_summary(summary, where="4 local processes [a]")
    lines = _check_lines(buf.getvalue())
    assert lines[:3] == [
        "files  39 ok, 0 skipped, 1 failed (of 40)",
        "size   187.7 MB → 48.1 MB  (25.7% of the input, 3.9× smaller)",
        "time   12.5 s, 3.12 files/s on 4 local processes [a]",
    ]
    assert lines[-1] == "  photos/holiday/IMG_0040.jpg: cannot identify image"
