"""What ``batch`` tells a person: a missing path is one failed file, a read-only output
folder, the --dry-run summary, and outputs larger than their input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import files_in, photo, save
from PIL import Image


def test_a_missing_path_on_stdin_is_one_failed_file(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    save(tmp_path / "a.png", photo(0))
    r = cli("batch", "-", "-o", "out", "-j", "1", input=b"a.png\nnope.png\n")
    assert r.code == 3, r.stderr
    assert files_in(tmp_path / "out") == {"a-k16.png"}  # the rest is done
    lines = r.stderr_lines
    assert lines[0] == "failed   nope.png: no such file or folder"
    assert lines[1].startswith("ok       a.png -> out/a-k16.png  ")
    assert lines[2].startswith("files  1 ok, 0 skipped, 1 failed (of 2)")
    assert lines[-2:] == ["failures (1):", "  nope.png: no such file or folder"]
    r = cli("batch", "-", "-o", "out", "--json", "-q", input=b"a.png\nnope.png\n")
    assert r.code == 3 and r.stderr == "kmeanscli: error: nope.png: no such file or folder\n"
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(d["input"], d["status"]) for d in docs] == [
        ("nope.png", "failed"),
        ("a.png", "skipped"),
    ]
    # nothing at all to do is still one error line (exit 1)
    r = cli("batch", "-", "-o", "out", input=b"nope.png\n")
    r.assert_one_error(1, "nope.png: no such file or folder")


def test_a_read_only_output_folder_is_not_writable(cli, tmp_path: Path) -> None:
    save(tmp_path / "a.png", photo(0))
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        reason = "permission denied"
    elif Path("/proc/self").exists():  # root may write anywhere but in procfs
        ro, reason = Path("/proc"), "the folder does not take new files"
    else:
        pytest.skip("root, and no /proc here")
    try:
        r = cli("batch", tmp_path / "a.png", "-o", ro)
        r.assert_one_error(1, f"{ro}: the output folder is not writable ({reason})")
        assert "cannot create" not in r.stderr
    finally:
        if ro != Path("/proc"):
            ro.chmod(0o755)


def test_dry_run_prints_a_summary_line(cli, tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        save(tmp_path / "in" / f"{name}.png", photo(ord(name)))
    out = tmp_path / "out"
    save(out / "a-k16.png", photo(9))  # newer than a.png: up to date
    r = cli("batch", tmp_path / "in", tmp_path / "nope.png", "-o", out, "-n")
    assert r.code == 0
    assert r.stderr == "dry run: 2 planned, 1 up to date, 1 refused; nothing written\n"
    assert len(r.stdout.splitlines()) == 4
    assert files_in(out) == {"a-k16.png"}
    assert cli("batch", tmp_path / "in", "-o", out, "-n", "-q").stderr == ""


def test_outputs_larger_than_the_input_are_said(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (64, 64), (10, 200, 30)).save("solid.png")  # shrinks
    checks = (np.indices((32, 32)).sum(0) % 2 * 255).astype(np.uint8)
    Image.fromarray(checks).convert("1").save("bw.png")  # 1-bit: its palette PNG is larger
    r = cli("batch", "solid.png", "bw.png", "-o", "out", "-k", "4", "-j", "1")
    assert r.code == 0, r.stderr
    lines = r.stderr_lines
    bw = next(line for line in lines if line.startswith("ok       bw.png"))
    solid = next(line for line in lines if line.startswith("ok       solid.png"))
    assert bw.endswith("%, larger than the input)")
    assert "larger" not in solid
    assert any(
        line.startswith("files  2 ok (1 larger than the input), 0 skipped, 0 failed (of 2)")
        for line in lines
    )


@pytest.fixture(autouse=True)
def _no_terminal(monkeypatch):
    monkeypatch.setenv("TERM", "dumb")
