"""Packaging: the editable install that `make install` does is quiet and works."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_editable_install_prints_no_setuptools_warning(tmp_path: Path) -> None:
    # pip runs this hook for `pip install -e .`; its stderr reaches the user's terminal
    pytest.importorskip("setuptools", minversion="77")  # the version pyproject.toml builds with
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "kmeanscli", project / "kmeanscli")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-W",
            "default",
            "-c",
            f"from setuptools import build_meta; print(build_meta.build_editable({str(wheels)!r}))",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "Editable installation" not in output
    assert "be careful" not in output.lower()
    assert "Warning" not in done.stderr, done.stderr
    wheel = wheels / done.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as zf:
        pth = [n for n in zf.namelist() if n.endswith(".pth")]
        assert len(pth) == 1, zf.namelist()
        # a plain path entry: the package is imported from the working tree
        assert zf.read(pth[0]).decode().strip() == str(project)


def test_wheel_ships_the_report_templates(tmp_path: Path) -> None:
    """`pip install .` (not editable) installs the HTML report's templates, CSS and JS."""
    pytest.importorskip("setuptools", minversion="77")
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(
        ROOT / "kmeanscli", project / "kmeanscli", ignore=shutil.ignore_patterns("__pycache__")
    )
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from setuptools import build_meta; print(build_meta.build_wheel({str(wheels)!r}))",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    wheel = wheels / done.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    templates = {p.name for p in (ROOT / "kmeanscli" / "report" / "templates").iterdir()}
    assert templates == {"report.html.j2", "batch.html.j2", "report.css", "report.js"}
    assert {f"kmeanscli/report/templates/{t}" for t in templates} <= names
