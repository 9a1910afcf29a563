"""The README's shell examples run as written, in order, twice, in one scratch folder."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import photo, save, subprocess_env
from PIL import Image

README = Path(__file__).resolve().parents[1] / "README.md"

EXPECTED = {"--skip-if-larger": 98}
"""Examples whose documented exit status is not 0, by a word of the line."""

SKIPPED = (
    ("make ", "runs the project's own make targets (make test would run this test again)"),
    ("pip install", "needs the network"),
    ("dask ", "starts a Dask scheduler or worker"),
    ("--scheduler", "needs a Dask scheduler"),
    ("--install-completion", "edits the shell's start-up file of whoever runs the tests"),
)
"""Examples this test does not run, by what the line contains, and why."""


def shell_examples() -> list[str]:
    """The command lines of the README's ```sh blocks, in order, without comments."""
    blocks = re.findall(r"^```sh\n(.*?)^```", README.read_text(), flags=re.S | re.M)
    lines = []
    for block in blocks:
        for line in block.splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command and not command.startswith("#"):
                lines.append(command)
    return lines


def _skip_reason(line: str) -> str | None:
    for needle, why in SKIPPED:
        if needle in line:
            return why
    if re.search(r"\|\s*jq\b", line) and shutil.which("jq") is None:
        return "jq is not installed"
    return None


def _scratch(folder: Path) -> None:
    """The files and folders the examples name, small so that the examples run fast."""
    from kmeanscli.api import sample_image

    with Image.open(sample_image()) as im:
        small = im.convert("RGB").resize((160, 107))
    small.save(folder / "photo.jpg", quality=90)
    small.quantize(16).save(folder / "pngquant.png")  # "other tools' files", same size
    small.quantize(32, method=Image.Quantize.FASTOCTREE).save(folder / "magick.png")
    save(folder / "a.png", photo(0))
    Image.fromarray(photo(1)).save(folder / "other.jpg")
    Image.fromarray(photo(2)).save(folder / "b.jpg")
    logo = np.full((40, 60, 3), 255, np.uint8)
    logo[10:30, 15:45] = (0xE3, 0x06, 0x13)
    save(folder / "logo.png", logo)
    for i, rel in enumerate(
        ["photos/x.jpg", "photos/2024/y.png", "assets/icon.png", "shots/s.png"]
    ):
        save(folder / rel, photo(10 + i))
    for i in range(3):
        save(folder / "frames" / f"f{i}.png", photo(20 + i))


def test_readme_shell_examples_run_in_order_twice(tmp_path: Path) -> None:
    examples = shell_examples()
    assert len(examples) > 20  # the blocks were found
    _scratch(tmp_path)
    env = subprocess_env(MPLBACKEND="Agg")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    assert shutil.which("kmeanscli", path=env["PATH"]), "kmeanscli is not installed"
    ran = 0
    for round in (1, 2):
        for line in examples:
            if _skip_reason(line):
                continue
            done = subprocess.run(
                ["bash", "-o", "pipefail", "-c", line],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                timeout=120,
            )
            expected = next((code for word, code in EXPECTED.items() if word in line), 0)
            assert done.returncode == expected, (round, line, done.stderr.decode())
            assert b"Traceback" not in done.stderr, line
            ran += 1
    assert ran >= 40


def test_the_examples_this_test_skips_are_only_those_it_cannot_run() -> None:
    skipped = [line for line in shell_examples() if _skip_reason(line)]
    for line in skipped:
        assert (
            line.startswith(("make ", "pip ", "dask "))
            or "--scheduler" in line
            or "--install-completion" in line
            or "jq" in line
        )
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed: the `| jq` examples were not run")
