"""Animated GIF, APNG and WebP: one palette for all frames; frames, durations, loop kept."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

from kmeanscli.cli.app import run

DURATIONS = [40, 120, 80, 200]


def _frames(transparent: bool = True, order=(0, 1, 2, 3)) -> list[Image.Image]:
    y, x = np.mgrid[0:24, 0:32]
    out = []
    for i in order:
        rgb = np.stack([(x * 7 + i * 40) % 256, y * 10, (x + y + i * 50) % 256], -1)
        a = rgb.astype(np.uint8)
        if transparent:
            alpha = np.where(x < 4 + 2 * i, 0, 255).astype(np.uint8)
            out.append(Image.fromarray(np.dstack([a, alpha]), "RGBA"))
        else:
            out.append(Image.fromarray(a, "RGB"))
    return out


@pytest.fixture
def gif(tmp_path: Path) -> Path:
    path = tmp_path / "anim.gif"
    frames = _frames()
    frames[0].save(
        path, save_all=True, append_images=frames[1:], duration=DURATIONS, loop=3, disposal=2
    )
    return path


def _read(path: Path) -> tuple[str, list[np.ndarray], list[float], object]:
    with Image.open(path) as im:
        frames, durations = [], []
        for frame in ImageSequence.Iterator(im):
            frame.load()
            durations.append(frame.info.get("duration"))
            frames.append(np.asarray(frame.convert("RGBA")).copy())
        return im.format, frames, durations, im.info.get("loop")


def _visible_colours(frames: list[np.ndarray]) -> set[tuple[int, ...]]:
    px = np.concatenate([f.reshape(-1, 4) for f in frames])
    return {tuple(c) for c in px[px[:, 3] > 0, :3].tolist()}


@pytest.fixture(autouse=True)
def _plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "100")


@pytest.mark.parametrize(("ext", "fmt"), [(".gif", "GIF"), (".png", "PNG"), (".webp", "WEBP")])
@pytest.mark.parametrize("dither", ["none", "fs"])
def test_animated_gif_round_trip(capsys, tmp_path: Path, gif: Path, ext, fmt, dither) -> None:
    out = tmp_path / f"out{ext}"
    code = run(["compress", str(gif), "-k", "8", "-o", str(out), "--dither", dither, "--json"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(stdout)
    # k = 8 palette entries: 7 colours and the transparent one
    assert report["frames"] == 4 and report["colors"] == 7
    assert (report["width"], report["height"]) == (32, 24)
    got_fmt, frames, durations, loop = _read(out)
    assert got_fmt == fmt and len(frames) == 4
    assert [round(d) for d in durations] == DURATIONS
    assert loop == 3
    # one palette of exactly k entries over all frames: 7 colours and the transparent one
    assert len(_visible_colours(frames)) == 7
    _, original, _, _ = _read(gif)
    for f_in, f_out in zip(original, frames, strict=True):
        assert np.array_equal(f_in[..., 3] == 0, f_out[..., 3] == 0)  # transparency kept


def test_apng_keeps_repeated_frames(capsys, tmp_path: Path) -> None:
    src = tmp_path / "rep.png"
    frames = _frames(transparent=False, order=(0, 1, 1, 2))
    # Pillow merges repeats unless their disposals differ
    frames[0].save(
        src,
        save_all=True,
        append_images=frames[1:],
        duration=DURATIONS,
        loop=0,
        disposal=[0, 0, 2, 0],
        blend=0,
    )
    assert Image.open(src).n_frames == 4
    out = tmp_path / "out.png"
    assert run(["compress", str(src), "-k", "6", "-o", str(out), "-q"]) == 0
    fmt, got, durations, loop = _read(out)
    assert fmt == "PNG" and len(got) == 4 and [round(d) for d in durations] == DURATIONS
    assert np.array_equal(got[1], got[2]) and loop == 0
    assert len(_visible_colours(got)) == 6


@pytest.mark.parametrize("ext", [".jpg", ".bmp", ".tif"])
def test_output_that_cannot_hold_an_animation(capsys, tmp_path: Path, gif: Path, ext) -> None:
    out = tmp_path / f"out{ext}"
    code = run(["compress", str(gif), "-o", str(out)])
    stdout, err = capsys.readouterr()
    assert code == 2 and stdout == "" and not out.exists()
    assert err.count("\n") == 1 and "is animated (4 frames)" in err and "cannot hold" in err


def test_palette_command_reads_all_frames(capsys, gif: Path) -> None:
    assert run(["palette", str(gif), "-k", "3", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    # the colours of all frames; the size of one frame (as compress reports it)
    assert len(doc["colors"]) == 3 and doc["height"] == 24


def test_still_images_report_one_frame(capsys, tmp_path: Path) -> None:
    src = tmp_path / "still.png"
    _frames(transparent=False)[0].save(src)
    assert run(["compress", str(src), "-k", "4", "-o", str(tmp_path / "o.gif"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["frames"] == 1


def test_animation_through_stdin_and_stdout(tmp_path: Path, gif: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "kmeanscli", "compress", "-", "-k", "4", "-o", "-", "-q"],
        input=gif.read_bytes(),
        capture_output=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out.png"
    out.write_bytes(done.stdout)
    fmt, frames, durations, _ = _read(out)
    assert fmt == "PNG" and len(frames) == 4 and [round(d) for d in durations] == DURATIONS
    assert len(_visible_colours(frames)) == 3  # -k 4: 3 colours + the transparent entry
