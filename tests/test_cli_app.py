"""The application as a whole: entry points, help, version, lazy imports, exit codes, Ctrl-C."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import typer
from conftest import (
    ERROR_PREFIX,
    colours_of,
    files_in,
    load_image,
    png_bytes,
    run_module,
    subprocess_env,
    synthetic,
)

import kmeanscli
from kmeanscli.cli.app import app
from kmeanscli.cli.status import ExitStatus

HEAVY = ("sklearn", "scipy", "skimage", "matplotlib", "dask")
README = Path(__file__).resolve().parent.parent / "README.md"


def test_python_m_help() -> None:
    p = run_module(["--help"])
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert "compress" in out and "Usage" in out
    assert "kmeanscli compress photo.jpg -k 16 -o photo.png" in out  # examples
    assert "--install-completion" in out  # Typer's shell completion
    assert p.stderr == b""


def test_console_script() -> None:
    script = shutil.which("kmeanscli", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the kmeanscli console script is not installed beside this python")
    p = subprocess.run([script, "--version"], capture_output=True, env=subprocess_env(), timeout=60)
    assert p.returncode == 0
    assert p.stdout.decode() == f"kmeanscli {kmeanscli.__version__}\n"


def _heavy_imports_of(argv: list[str], heavy: tuple[str, ...] = HEAVY) -> tuple[int, str]:
    """Run ``kmeanscli ARGV`` in a new interpreter: its exit code, and which of ``heavy``
    it imported (the repr of a sorted list; output is its stderr, so run quiet)."""
    code = (
        "import sys\n"
        "from kmeanscli.cli.app import run\n"
        f"rc = run({argv!r})\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r})\n"
        "sys.stderr.write(repr(heavy))\n"
        "sys.exit(rc)\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, env=subprocess_env(), timeout=60
    )
    assert p.stdout or "--help" not in argv, "help was not printed"
    return p.returncode, p.stderr.decode()


@pytest.mark.parametrize("argv", [["--help"], ["compress", "--help"], ["--version"]])
def test_no_heavy_imports(argv: list[str]) -> None:
    assert _heavy_imports_of(argv) == (0, "[]")


@pytest.mark.parametrize("k", ["16", "200"])
def test_compress_does_not_import_scikit_learn(tmp_path: Path, k: str) -> None:
    """k-means runs in numpy: a compress pays no 1.2-1.8 s scikit-learn import (nor SciPy's,
    which only large palettes of many colours use)."""
    src = tmp_path / "in.png"
    src.write_bytes(png_bytes(synthetic(120, 90)))
    out = tmp_path / "out.png"
    argv = ["compress", str(src), "-k", k, "-o", str(out), "-q"]
    assert _heavy_imports_of(argv, ("sklearn", "scipy")) == (0, "[]")
    assert len(colours_of(load_image(out))) == int(k)


def test_version(cli) -> None:
    r = cli("--version")
    assert r.code == 0
    assert r.stdout == f"kmeanscli {kmeanscli.__version__}\n"
    assert r.stderr == ""


def test_help(cli) -> None:
    for argv in (["--help"], ["-h"], ["compress", "--help"], ["compress", "-h"]):
        r = cli(*argv)
        assert r.code == 0, argv
        assert "Usage" in r.stdout and r.stderr == ""
    text = cli("compress", "--help").stdout
    for flag in (
        "--output",
        "--colors",
        "--engine",
        "--seed",
        "--max-iter",
        "--force",
        "--strip",
        "--max-pixels",
        "--json",
        "--quiet",
        "--preview",
        "--plot",
        "--sample",
    ):
        assert flag in text, flag
    assert "Examples" in text


def test_every_command_has_help_with_an_example() -> None:
    group = typer.main.get_command(app)
    assert group.commands, "no commands registered"
    for name, command in group.commands.items():
        assert command.help and command.help.strip(), name
        assert "Example" in command.help and "kmeanscli " + name in command.help, name
        for param in command.params:
            if param.name not in ("help",):
                assert getattr(param, "help", None), (name, param.name)


@pytest.mark.parametrize(
    ("command", "default_k", "min_k"),
    [("compress", 16, 2), ("batch", 16, 2), ("palette", 6, 1), ("compare", None, None)],
)
def test_the_quantize_options_are_on_every_command(command, default_k, min_k) -> None:
    """One option group: the same flags, help and default on compress, batch, palette and
    compare (whose -k is its own list of k values)."""
    params = {p.name: p for p in typer.main.get_command(app).commands[command].params}
    for name in ("engine", "space", "seed", "max_iter", "restarts", "batch_size", "keep_color"):
        assert name in params, name
    assert params["engine"].opts == ["--engine"]
    assert params["batch_size"].help.endswith(" Default: 4096.")
    assert "--engine minibatch" in params["batch_size"].help
    if default_k is not None:
        colors = params["colors"]
        assert colors.opts == ["-k", "--colors"] and (colors.min, colors.max) == (min_k, 256)
        assert colors.default is None  # left out: the library's default
        assert colors.help.endswith(f"Default: {default_k}.")
        assert f"{min_k} to 256" in colors.help
        if command != "palette":  # its -k counts dominant colours, not palette entries
            assert "a transparent one included" in colors.help
    has_dither = command != "palette"
    assert ("dither" in params) == has_dither and ("dither_strength" in params) == has_dither


def test_no_arguments_shows_usage(cli) -> None:
    r = cli()
    assert r.code == 2
    assert "Usage" in r.stderr and r.stdout == ""


def test_unknown_command(cli) -> None:
    r = cli("frobnicate")
    r.assert_one_error(2, "frobnicate")


def test_exit_statuses_documented() -> None:
    statuses = {s.name: int(s) for s in ExitStatus}
    assert {"OK": 0, "FAILURE": 1, "USAGE": 2, "INTERRUPTED": 130}.items() <= statuses.items()
    assert len(set(statuses.values())) == len(statuses)
    readme = README.read_text()
    for code in statuses.values():
        assert f"| {code} |" in readme, code


def test_keyboard_interrupt_in_process(cli, make_image, tmp_path: Path, monkeypatch) -> None:
    import kmeanscli.api as api

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "quantize", interrupted)
    src = make_image("in.png")
    r = cli("compress", src, "-o", tmp_path / "o.png")
    assert r.code == 130
    assert r.stderr_lines == [f"{ERROR_PREFIX}interrupted"]
    assert files_in(tmp_path) == {"in.png"}


def test_interrupt_while_writing_leaves_nothing(
    cli, make_image, tmp_path: Path, monkeypatch
) -> None:
    """Ctrl-C at the last moment of the atomic write: no temp file, the old file intact."""
    import kmeanscli.imageio as imageio

    def replace_interrupted(a, b):
        raise KeyboardInterrupt

    src = make_image("in.png")
    (tmp_path / "o.png").write_bytes(b"old")
    monkeypatch.setattr(imageio.os, "replace", replace_interrupted)
    r = cli("compress", src, "-o", tmp_path / "o.png", "--force")
    monkeypatch.undo()
    assert r.code == 130
    assert r.stderr_lines == [f"{ERROR_PREFIX}interrupted"]
    assert files_in(tmp_path) == {"in.png", "o.png"}
    assert (tmp_path / "o.png").read_bytes() == b"old"


# --------------------------------------------------------------------------- real SIGINT


@pytest.fixture(scope="module")
def big_png(tmp_path_factory) -> Path:
    """A 3000x3000 noise image (about 7 M distinct colours): seconds of work at k=256 (a
    1500x1500 one took 0.65 s, under the second of CPU that marks the fit below)."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (3000, 3000, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("big") / "big.png"
    path.write_bytes(png_bytes(pixels, compress_level=0))
    return path


def _in_the_fit(pid: int) -> bool:
    """Whether the process has used a second of CPU: past its imports and the decode (about
    0.5 s), well before the end of this job (2 s or more)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    ticks = int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK") >= 1.0


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.parametrize("source", ["stdin", "file"])
def test_sigint_exits_130_and_leaves_nothing(big_png: Path, tmp_path: Path, source: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    src = work / "big.png"
    shutil.copyfile(big_png, src)
    before = src.read_bytes()
    argv = [sys.executable, "-m", "kmeanscli", "compress"]
    argv += ["-" if source == "stdin" else str(src), "-k", "256", "-o", str(work / "out.png")]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if source == "stdin" else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=subprocess_env(),
    )
    try:
        if source == "stdin":
            assert proc.stdin is not None
            proc.stdin.write(before)
            proc.stdin.close()
            proc.stdin = None
        deadline = time.monotonic() + 120
        while not _in_the_fit(proc.pid) and proc.poll() is None:
            assert time.monotonic() < deadline, "the compression never started"
            time.sleep(0.005)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert err.decode() == f"{ERROR_PREFIX}interrupted\n"
    assert out == b""
    assert files_in(work) == {"big.png"}
    assert src.read_bytes() == before


def test_errors_in_a_real_process(tmp_path: Path) -> None:
    """The installed entry point: one line, the right code, no traceback."""
    (tmp_path / "bad.png").write_bytes(b"nope")
    p = run_module(["compress", str(tmp_path / "bad.png")])
    assert p.returncode == 1
    assert p.stderr.decode().count("\n") == 1
    assert p.stderr.decode().startswith(ERROR_PREFIX)
    assert p.stdout == b""
    p = run_module(["compress", str(tmp_path), "-k", "999"])
    assert p.returncode == 2
    assert p.stderr.decode().startswith(ERROR_PREFIX) and p.stderr.decode().count("\n") == 1
    p = run_module(["compress", str(tmp_path)])
    assert p.returncode == 1 and b"Traceback" not in p.stderr
    assert files_in(tmp_path) == {"bad.png"}


# --------------------------------------------------------------------------- progress


def test_progress_only_on_a_terminal_and_not_quiet(monkeypatch) -> None:
    from kmeanscli.cli import console

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not console.progress_enabled(quiet=False)  # not a terminal
    monkeypatch.setattr(sys, "stderr", Tty())
    monkeypatch.setenv("TERM", "xterm")
    assert console.progress_enabled(quiet=False)
    assert not console.progress_enabled(quiet=True)
    monkeypatch.setenv("TERM", "dumb")
    assert not console.progress_enabled(quiet=False)


def test_stages_spinner_names_the_stage(monkeypatch) -> None:
    from rich.console import Console

    from kmeanscli.cli import console

    buf = io.StringIO()
    monkeypatch.setattr(
        console, "err_console", lambda: Console(file=buf, force_terminal=True, width=80)
    )
    with console.Stages(True, delay=0.0) as stages:
        stages("fit")
        deadline = time.monotonic() + 30
        while stages._status is None:  # the timer thread starts the spinner
            assert time.monotonic() < deadline
            time.sleep(0.01)
        stages("assign")
    assert "Fitting k-means" in buf.getvalue() or "Mapping pixels" in buf.getvalue()
    assert stages._status is None  # stopped on exit
    # disabled: nothing at all
    quiet = io.StringIO()
    monkeypatch.setattr(console, "err_console", lambda: Console(file=quiet, force_terminal=True))
    with console.Stages(False, delay=0.0) as stages:
        stages("fit")
    assert quiet.getvalue() == ""


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize(
    "argv",
    [
        ["compress", "{src}", "-k", "3", "-o", "-"],
        ["compress", "{src}", "-k", "3", "-o", "{out}", "--json"],
        ["--version"],
    ],
)
def test_stdout_full(tmp_path: Path, argv: list[str]) -> None:
    """stdout on a full disk: one error line, exit 1, no traceback."""
    src = tmp_path / "in.png"
    src.write_bytes(png_bytes(np.arange(48, dtype=np.uint8).reshape(4, 4, 3)))
    args = [a.format(src=src, out=tmp_path / "o.png") for a in argv]
    with open("/dev/full", "wb") as full:
        p = subprocess.run(
            [sys.executable, "-m", "kmeanscli", *args],
            stdout=full,
            stderr=subprocess.PIPE,
            env=subprocess_env(),
            timeout=120,
        )
    err = p.stderr.decode()
    assert p.returncode == 1, err
    assert "Traceback" not in err and "Exception ignored" not in err
    errors = [line for line in err.splitlines() if line.startswith(ERROR_PREFIX)]
    assert len(errors) == 1 and "No space left on device" in errors[0]


def test_image_bytes_never_go_to_a_terminal(tmp_path: Path) -> None:
    """``-o -`` with stdout on a terminal is refused (exit 2) before any work."""
    pty = pytest.importorskip("pty")
    src = tmp_path / "in.png"
    src.write_bytes(png_bytes(synthetic(8, 8)))
    leader, follower = pty.openpty()
    try:
        p = subprocess.run(
            [sys.executable, "-m", "kmeanscli", "compress", str(src), "-o", "-"],
            stdout=follower,
            stderr=subprocess.PIPE,
            env=subprocess_env(),
            timeout=120,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert p.returncode == 2
    err = p.stderr.decode()
    assert err.startswith(ERROR_PREFIX) and err.count("\n") == 1 and "terminal" in err
    assert files_in(tmp_path) == {"in.png"}


def test_preview_with_an_unreachable_display(tmp_path: Path) -> None:
    """DISPLAY set but no X server: --preview warns and the output is still written."""
    src = tmp_path / "in.png"
    src.write_bytes(png_bytes(synthetic(16, 12)))
    p = subprocess.run(
        [sys.executable, "-m", "kmeanscli", "compress", str(src), "-k", "3", "--preview", "-q"],
        capture_output=True,
        env=subprocess_env(DISPLAY=":97"),
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert p.stderr == b"" and p.stdout == b""  # -q: not even the warning
    assert files_in(tmp_path) == {"in.png", "in-k3.png"}
    p = subprocess.run(
        [sys.executable, "-m", "kmeanscli", "compress", str(src), "-k", "3", "--preview", "-f"],
        capture_output=True,
        env=subprocess_env(DISPLAY=":97"),
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    warnings = [ln for ln in p.stderr.decode().splitlines() if ln.startswith("kmeanscli: warn")]
    assert len(warnings) == 1 and "display" in warnings[0]
    assert "Traceback" not in p.stderr.decode()


def _assert_closed_stdin_error(argv: list[str]) -> None:
    """Run ``argv`` with file descriptor 0 closed: exit 1 and one error line about stdin."""
    p = subprocess.run(
        argv,
        capture_output=True,
        env=subprocess_env(),
        timeout=120,
        preexec_fn=lambda: os.close(0),
    )
    err = p.stderr.decode()
    assert p.returncode == 1, err
    assert err.startswith(ERROR_PREFIX) and err.count("\n") == 1 and "stdin" in err


def test_stdin_closed_or_a_terminal(tmp_path: Path) -> None:
    """``-`` with no stdin (closed) or a terminal: one error line, nothing written."""
    pty = pytest.importorskip("pty")
    argv = [sys.executable, "-m", "kmeanscli", "compress", "-", "-o", str(tmp_path / "o.png")]
    _assert_closed_stdin_error(argv)
    leader, follower = pty.openpty()
    try:
        p = subprocess.run(
            argv,
            stdin=follower,
            capture_output=True,
            env=subprocess_env(),
            timeout=120,
        )
    finally:
        os.close(follower)
        os.close(leader)
    err = p.stderr.decode()
    assert p.returncode == 2, err
    assert err.startswith(ERROR_PREFIX) and err.count("\n") == 1 and "terminal" in err
    assert files_in(tmp_path) == set()


def test_compare_figures_never_overwrite_the_input(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.png").write_bytes(png_bytes(synthetic(12, 10)))
    before = (tmp_path / "in.png").read_bytes()
    for option in ("--plot", "--plot-colors"):
        cli("compare", "in.png", "-k", "2", option, "./in.png").assert_one_error(
            1, "is an input file"
        )
    assert files_in(tmp_path) == {"in.png"}
    assert (tmp_path / "in.png").read_bytes() == before


def test_compare_stdin_closed(tmp_path: Path) -> None:
    _assert_closed_stdin_error([sys.executable, "-m", "kmeanscli", "compare", "-", "-k", "2"])
