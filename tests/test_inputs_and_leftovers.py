"""Inputs that are not regular files never block or loop; leftovers of killed writers go.

FIFOs, sockets, devices, symlink loops and folders named like images: a folder walk skips
them (as ``find -type f`` would), a path given by name is one failed file with the reason,
and ``compress`` refuses them in one line. Each run is a subprocess with a time limit, so a
blocking open fails the test instead of hanging it.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from conftest import ERROR_PREFIX, png_bytes, run_module, synthetic


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """in/a.png, in/sub/b.png, and beside them: a FIFO, a socket, a symlink loop, a dangling
    link and a folder, all named *.png, plus a symlink to a.png and one to the folder."""
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    (root / "a.png").write_bytes(png_bytes(synthetic(20, 12, seed=1)))
    (root / "sub" / "b.png").write_bytes(png_bytes(synthetic(20, 12, seed=2)))
    os.mkfifo(root / "fifo.png")
    os.mkfifo(root / "sub" / "deep-fifo.png")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "sock.png"))
    server.close()
    (root / "loop.png").symlink_to(root / "loop.png")
    (root / "dangling.png").symlink_to(root / "nothing.png")
    (root / "folder.png").mkdir()
    (root / "link-to-a.png").symlink_to(root / "a.png")
    (root / "sub" / "up").symlink_to(root, target_is_directory=True)  # a folder loop
    return root


def test_recursive_batch_skips_what_is_not_a_regular_file(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = run_module(["batch", str(tree), "-r", "-o", str(out), "-k", "4", "--json", "-q"])
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert sorted(Path(d["input"]).name for d in lines) == ["a.png", "b.png", "link-to-a.png"]
    assert all(d["status"] == "ok" for d in lines)
    assert not (out / "sub" / "up").exists()  # the folder loop was not followed


def test_batch_given_a_fifo_by_name_reports_it_and_does_the_rest(
    tree: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = [str(tree / "a.png"), str(tree / "fifo.png"), str(tree / "loop.png")]
    done = run_module(["batch", *args, "-o", str(out), "-k", "4", "--json", "-q"])
    assert done.returncode == 3, done.stderr
    docs = {Path(d["input"]).name: d for d in map(json.loads, done.stdout.decode().splitlines())}
    assert docs["a.png"]["status"] == "ok"
    for name in ("fifo.png", "loop.png"):
        assert docs[name]["status"] == "failed"
        assert docs[name]["error"] == (
            f"{tree / name}: not a regular file (a FIFO, socket, device or broken link); not read"
        )


def test_compress_refuses_a_fifo_at_once(tree: Path, tmp_path: Path) -> None:
    done = run_module(["compress", str(tree / "fifo.png"), "-o", str(tmp_path / "o.png")])
    assert done.returncode == 1
    assert done.stderr.decode() == (
        f"{ERROR_PREFIX}{tree / 'fifo.png'}: not a regular file (a FIFO, socket or device); "
        "not read\n"
    )
    assert not (tmp_path / "o.png").exists()


def test_a_rerun_removes_stale_temporaries_but_not_live_or_foreign_ones(tmp_path: Path) -> None:
    """A worker killed by SIGKILL leaves ``.NAME.XXXXXXXX.tmp``: the next run removes it,
    unless a process still writes it (it holds a lock) or it is not one of ours."""
    import fcntl
    import subprocess
    import sys

    src = tmp_path / "in"
    src.mkdir()
    (src / "a.png").write_bytes(png_bytes(synthetic(20, 12, seed=1)))
    out = tmp_path / "out"
    assert run_module(["batch", str(src), "-o", str(out), "-k", "4", "-q"]).returncode == 0
    stale = out / ".a-k4.png.x1y2z3w4.tmp"  # as a killed writer leaves it
    live = out / ".a-k4.png.livefile.tmp"
    foreign = out / ".notes.txt.abcdefgh.tmp"
    for f in (stale, live, foreign):
        f.write_bytes(b"half")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(live)!r}, os.O_RDWR)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        done = run_module(["batch", str(src), "-o", str(out), "-k", "4", "-q"])  # up to date
        assert done.returncode == 0, done.stderr
        assert not stale.exists()
        assert live.exists() and foreign.exists()
    finally:
        holder.kill()
        holder.wait()
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the holder is gone: nobody writes it
    os.close(fd)
    assert run_module(["batch", str(src), "-o", str(out), "-k", "4", "-q"]).returncode == 0
    assert not live.exists() and foreign.exists()
