"""``kmeanscli batch``: exit codes, stdout vs stderr, resume, Ctrl-C, and a real Dask cluster."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import photo, save
from PIL import Image
from rich.console import Console

from kmeanscli.cli import batch as cli_batch
from kmeanscli.cli.app import run
from kmeanscli.cli.status import ExitStatus

ENV = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100", "TERM": "dumb"}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    save(root / "a.png", photo(0))
    save(root / "b.jpg", photo(1))
    save(root / "sub" / "c.png", photo(2, alpha=True))
    save(root / "sub" / "deep" / "d.webp", photo(3))
    (root / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR trunc")
    (root / "readme.txt").write_text("not an image\n")
    return root


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "100")

    def invoke(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = run([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def decodes(path: Path) -> bool:
    try:
        with Image.open(path) as im:
            im.load()
        return True
    except Exception:
        return False


EXPECTED = ["a-k8.png", "b-k8.png", "sub/c-k8.png", "sub/deep/d-k8.png"]


def test_nested_tree_mirrored_failure_reported_exit_3(cli, tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = cli("batch", tree, "-r", "-o", out, "-k", "8", "-j", "2")
    assert code == ExitStatus.SOME_FAILED == 3
    assert stdout == ""
    assert files_under(out) == EXPECTED  # readme.txt ignored, no output for the broken file
    assert all(decodes(out / f) for f in EXPECTED)
    broken = tree / "sub" / "broken.png"
    assert f"failed   {broken}: corrupt or truncated image" in stderr
    assert f"ok       {tree / 'a.png'} -> {out / 'a-k8.png'}" in stderr
    assert "4 ok, 0 skipped, 1 failed (of 5)" in stderr
    assert "failures (1):" in stderr
    assert "Traceback" not in stderr
    assert tree.joinpath("readme.txt").read_text() == "not an image\n"
    assert files_under(tree) == sorted(
        ["a.png", "b.jpg", "readme.txt", "sub/c.png", "sub/broken.png", "sub/deep/d.webp"]
    )  # nothing written inside the input folder

    # resume: everything done is skipped, the bad file is retried; --force redoes all
    code, stdout, stderr = cli("batch", tree, "-r", "-o", out, "-k", "8", "--json", "-j", "1")
    assert code == 3
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert sorted(d["status"] for d in lines) == ["failed"] + ["skipped"] * 4
    assert "0 ok, 4 skipped, 1 failed (of 5)" in stderr
    stamp = (out / "a-k8.png").stat().st_mtime_ns
    code, stdout, _ = cli("batch", tree, "-r", "-o", out, "-k", "8", "--json", "--force", "-q")
    assert code == 3
    statuses = sorted(json.loads(line)["status"] for line in stdout.splitlines())
    assert statuses == ["failed"] + ["ok"] * 4
    assert (out / "a-k8.png").stat().st_mtime_ns >= stamp


def test_json_lines_stdin_paths_and_quiet(cli, tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    listing = f"{tree / 'a.png'}\n{tree / 'sub' / 'c.png'}\n\n{tree / 'sub' / 'deep' / 'd.webp'}\n"
    args = ["batch", "-", "-o", out, "-k", "8", "--json", "-q", "--format", "webp", "-j", "1"]
    code, stdout, stderr = cli(*args, stdin=listing)
    assert code == 0
    assert stderr == ""  # --quiet: nothing on stderr when all is well
    docs = [json.loads(line) for line in stdout.splitlines()]
    assert len(docs) == 3 and {d["status"] for d in docs} == {"ok"}
    fields = {"input", "output", "format", "width", "height", "k", "colors", "bytes_in"}
    fields |= {"unique_colors_in", "bytes_out", "ratio", "mse", "psnr", "seconds", "seed"}
    fields |= {"lossless", "transparent", "warnings", "status", "engine"}
    assert all(fields <= d.keys() for d in docs)
    by_input = {d["input"]: d for d in docs}
    c = by_input[str(tree / "sub" / "c.png")]
    assert c["output"] == str(out / "sub" / "c-k8.webp") and c["format"] == "webp"
    assert c["colors"] == 7 and c["k"] == 8 and c["transparent"] is True  # 7 + transparent
    assert {d["engine"] for d in docs} == {"lloyd"}  # the default engine
    assert by_input[str(tree / "sub" / "deep" / "d.webp")]["output"] == str(
        out / "sub" / "deep" / "d-k8.webp"
    )  # the listed files keep their paths from their common folder
    assert files_under(out) == ["a-k8.webp", "sub/c-k8.webp", "sub/deep/d-k8.webp"]

    # --quiet with a failure: only the error line
    code, stdout, stderr = cli("batch", tree / "sub", "-o", out, "-q", "-j", "1")
    assert code == 3 and stdout == ""
    broken = tree / "sub" / "broken.png"
    assert stderr.startswith(f"kmeanscli: error: {broken}: corrupt or truncated image (")
    assert stderr.count("\n") == 1


def test_stdin_closed_or_a_terminal(cli, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "stdin", None)
    rc, _, stderr = cli("batch", "-", "-o", tmp_path / "out")
    assert (
        rc == 1
        and stderr == "kmeanscli: error: -: stdin is closed; pipe a list of paths in, one a line\n"
    )

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Tty())
    rc, _, stderr = cli("batch", "-", "-o", tmp_path / "out")
    assert rc == 2 and "stdin is a terminal" in stderr


def test_dry_run_lists_and_writes_nothing(cli, tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = cli("batch", tree, "-o", out, "--dry-run")
    assert code == 0 and stderr == "dry run: 2 planned, 0 up to date, 0 refused; nothing written\n"
    assert stdout.splitlines() == [
        f"{tree / 'a.png'} -> {out / 'a-k16.png'}",
        f"{tree / 'b.jpg'} -> {out / 'b-k16.png'}",
    ]
    assert not out.exists()
    save(out / "a-k16.png", photo(9))
    code, stdout, _ = cli("batch", tree, "-o", out, "-n", "--json")
    assert [json.loads(line)["status"] for line in stdout.splitlines()] == ["planned", "skipped"]


TARGETS = "a quality target (--target-psnr, --target-ssim, --max-delta-e)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "jpeg"], "--format must be one of png, webp, gif"),
        (
            ["-j", "2", "--scheduler", "tcp://127.0.0.1:1"],
            "give -j/--jobs (local workers) or --scheduler (Dask), not both",
        ),
        (["-k", "8", "--target-psnr", "30"], f"give -k/--colors or {TARGETS}, not both"),
        (
            ["--target-ssim", "0.9", "--shared-palette"],
            f"--shared-palette cannot go with {TARGETS} (each file's own k)",
        ),
        (
            ["--batch-size", "256"],
            "--batch-size is a setting of the minibatch engine (--engine minibatch)",
        ),
        (
            ["--shared-palette", "--batch-size", "256"],
            "--batch-size is a setting of the minibatch engine (--engine minibatch)",
        ),
    ],
)
def test_usage_errors(cli, tree: Path, tmp_path: Path, args, message) -> None:
    rc, stdout, stderr = cli("batch", tree, "-o", tmp_path / "out", *args)
    assert rc == 2 and stdout == ""
    assert stderr == f"kmeanscli: error: {message}\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-k", "1"], "-k must be between 2 and 256; got 1"),
        (["-j", "0"], "--jobs must be at least 1; got 0"),
        (["--engine", "minibatch", "--batch-size", "8"], "--batch-size must be at least 16; got 8"),
        (["--engine", "kmeans"], "--engine must be one of lloyd, minibatch; got 'kmeans'"),
        (["--seed", "x"], "--seed must be a whole number; got 'x'"),
    ],
)
def test_bad_flag_values(cli, tree: Path, tmp_path: Path, args, message) -> None:
    """Values the parser refuses, in the user's terms: one line naming the flag, exit 2."""
    rc, stdout, stderr = cli("batch", tree, "-o", tmp_path / "out", *args)
    assert rc == 2 and stdout == ""
    assert stderr == f"kmeanscli: error: {message} (see 'kmeanscli batch --help')\n"
    assert not (tmp_path / "out").exists()


def test_batch_size_sets_the_minibatch_shared_palette_fit(cli, tree: Path, tmp_path: Path):
    def shared(name: str, *flags: str) -> list:
        out = tmp_path / name
        rc, stdout, stderr = cli("batch", tree, "-o", out, "-k", "6", "--shared-palette", *flags)
        assert rc == 0 and stdout == "" and stderr == ""
        colors = json.loads((out / "palette.json").read_text())["colors"]
        assert len(colors) == 6
        return colors

    small = shared("64", "--engine", "minibatch", "--batch-size", "64", "-q")
    large = shared("4096", "--engine", "minibatch", "--batch-size", "4096", "-q")
    assert small != large  # the mini-batch size changes the fit
    # the default is 4096, so the same palette comes out without the flag
    assert shared("default", "--engine", "minibatch", "-q") == large
    # the default engine is lloyd, the fit compress makes: another palette
    assert shared("lloyd", "-q") != large


def test_failures_before_any_work(cli, tmp_path: Path, monkeypatch) -> None:
    rc, _, stderr = cli("batch", tmp_path / "nope", "-o", tmp_path / "out")
    assert rc == 1 and stderr == f"kmeanscli: error: {tmp_path / 'nope'}: no such file or folder\n"
    (tmp_path / "empty").mkdir()
    rc, _, stderr = cli("batch", tmp_path / "empty", "-o", tmp_path / "out")
    assert rc == 1 and "no image files found" in stderr
    save(tmp_path / "a.png", photo(0))
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if Dask were not installed
    rc, _, stderr = cli("batch", tmp_path / "a.png", "-o", tmp_path / "out", "--scheduler", "x:1")
    assert rc == 1
    assert stderr == (
        "kmeanscli: error: --scheduler needs Dask distributed, which is not installed: "
        "pip install 'kmeanscli[dask]'\n"
    )


def test_progress_bar_on_a_terminal(cli, tree: Path, tmp_path: Path, monkeypatch) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120, color_system=None)
    monkeypatch.setattr(cli_batch, "progress_enabled", lambda quiet: not quiet)
    monkeypatch.setattr(cli_batch, "err_console", lambda: console)
    code, stdout, _ = cli("batch", tree, "-r", "-o", tmp_path / "out", "-k", "8", "--json")
    assert code == 3
    assert len(stdout.splitlines()) == 5  # stdout: the JSON lines only
    text = screen.getvalue()
    assert "Compressing" in text and "5/5" in text and "saved" in text and "1 failed" in text
    assert "✗" in text and "broken.png" in text
    assert "4 ok, 0 skipped, 1 failed (of 5)" in text


def test_help_imports_no_heavy_module() -> None:
    code = (
        "import sys\nfrom kmeanscli.cli.app import run\n"
        "rc = run(['batch', '--help'])\n"
        "heavy = [m for m in ('sklearn', 'scipy', 'skimage', 'matplotlib', 'dask', 'distributed')"
        " if m in sys.modules]\n"
        "sys.stderr.write(f'{rc} {heavy}')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert r.stderr == "0 []"
    assert "--shared-palette" in r.stdout and "--scheduler" in r.stdout


def test_ctrl_c_stops_leaves_whole_files_and_a_rerun_finishes(tmp_path: Path) -> None:
    src = tmp_path / "in"
    n = 40
    for i in range(n):
        save(src / f"p{i:02d}.png", photo(i, (96, 96)))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "kmeanscli", "batch", str(src), "-o", str(out), "-j", "2"]
    proc = subprocess.Popen(
        [*cmd, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    watchdog = threading.Timer(120, proc.kill)  # never hang the test suite
    watchdog.start()
    try:
        first = proc.stdout.readline()  # the first file is done: now interrupt
        proc.send_signal(signal.SIGINT)
        rest, stderr = proc.communicate(timeout=60)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
    stdout = first + rest
    assert proc.returncode == ExitStatus.INTERRUPTED == 130, stderr
    assert stderr.rstrip().endswith("kmeanscli: error: interrupted")
    assert "not done" in stderr and "Traceback" not in stderr
    reported = [json.loads(line) for line in stdout.splitlines()]
    present = sorted(out.iterdir())
    assert all(p.suffix == ".png" and not p.name.startswith(".") for p in present)  # no temps
    assert all(decodes(p) for p in present)
    assert 1 <= len(reported) <= len(present) < n
    assert {d["output"] for d in reported} <= {str(p) for p in present}

    again = subprocess.run([*cmd, "--json", "-q"], capture_output=True, text=True, env=ENV)
    assert again.returncode == 0, again.stderr
    statuses = [json.loads(line)["status"] for line in again.stdout.splitlines()]
    assert statuses.count("skipped") == len(present)
    assert statuses.count("ok") == n - len(present)
    assert len(list(out.iterdir())) == n and all(decodes(p) for p in out.iterdir())


def _without_time(stdout: str) -> list[dict]:
    docs = [json.loads(line) for line in stdout.splitlines()]
    for d in docs:
        d.pop("seconds", None)
    return sorted(docs, key=lambda d: d["input"])


def test_dask_cluster_matches_the_local_pool_byte_for_byte(cli, tree: Path, tmp_path: Path):
    distributed = pytest.importorskip("distributed")
    local, remote = tmp_path / "local", tmp_path / "dask"
    code_l, out_l, err_l = cli("batch", tree, "-r", "-o", local, "-k", "8", "-j", "2", "--json")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        code_d, out_d, err_d = cli(
            "batch", tree, "-r", "-o", remote, "-k", "8", "--json", "--scheduler", address
        )
        # the shared palette too: histograms, fit and mapping all run on the cluster
        shared = ["-r", "-k", "6", "--shared-palette", "-q"]
        code_sd, _, _ = cli("batch", tree, "-o", tmp_path / "sd", *shared, "--scheduler", address)
    code_sl, _, _ = cli("batch", tree, "-o", tmp_path / "sl", *shared, "-j", "2")
    assert code_sd == code_sl == 3
    assert files_under(tmp_path / "sd") == files_under(tmp_path / "sl")
    for name in files_under(tmp_path / "sl"):
        assert (tmp_path / "sd" / name).read_bytes() == (tmp_path / "sl" / name).read_bytes()
    assert "palette.json" in files_under(tmp_path / "sl")
    assert code_l == code_d == 3
    assert files_under(local) == files_under(remote) == EXPECTED
    for name in EXPECTED:
        assert (local / name).read_bytes() == (remote / name).read_bytes(), name
    rel_l = [{**d, "output": d["output"].replace(str(local), "")} for d in _without_time(out_l)]
    rel_d = [{**d, "output": d["output"].replace(str(remote), "")} for d in _without_time(out_d)]
    assert rel_l == rel_d
    assert "4 ok, 0 skipped, 1 failed (of 5)" in err_l and "4 ok, 0 skipped, 1 failed" in err_d
    assert "on Dask cluster at tcp://" in err_d


def test_quality_targets_name_each_output_after_its_k(cli, tree: Path, tmp_path: Path):
    out = tmp_path / "out"
    args = ["batch", tree, "-r", "-o", out, "--target-psnr", "28", "--skip-if-larger", "--json"]
    code, stdout, _ = cli(*args, "-j", "2")
    assert code == 3  # the broken file
    docs = {Path(d["input"]).name: d for d in map(json.loads, stdout.splitlines())}
    assert docs["broken.png"]["status"] == "failed"
    assert docs["broken.png"]["output"] == str(out / "sub" / "broken-k*.png")
    ok = [d for d in docs.values() if d["status"] == "ok"]
    assert ok and docs["a.png"]["status"] == "ok"  # a noisy PNG: much smaller
    for d in ok:
        assert d["psnr"] >= 28 and 2 <= d["k"] <= 256
        assert d["colors"] == d["k"] - d["transparent"]  # k entries, one may be transparent
        assert Path(d["output"]).name == f"{Path(d['input']).stem}-k{d['k']}.png"
        assert Path(d["output"]).is_file()
    for d in docs.values():
        if d["status"] == "skipped":  # --skip-if-larger: nothing written for it
            assert "not smaller than the input" in d["reason"]
            assert not list(Path(d["output"]).parent.glob(Path(d["output"]).name))
    # resume: outputs named after their k are found and skipped
    code, stdout, _ = cli(*args, "-j", "1")
    again = {Path(d["input"]).name: d for d in map(json.loads, stdout.splitlines())}
    for name, d in docs.items():
        if d["status"] == "ok":
            assert again[name]["status"] == "skipped" and again[name]["reason"] == "up to date"


def test_compress_options_apply_per_file_as_compress_does(cli, tree: Path, tmp_path: Path):
    pal = tmp_path / "brand.txt"
    pal.write_text("#000000\n#ff0000\n#00ff00\n#0000ff\n#ffffff\n")
    out = tmp_path / "out"
    code, _, stderr = cli("batch", tree, "-o", out, "--palette", pal, "-q", "-j", "1")
    assert code == 0, stderr
    allowed = {(0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)}
    for name in ("a-k16.png", "b-k16.png"):
        with Image.open(out / name) as im:
            assert {c for _, c in im.convert("RGB").getcolors()} <= allowed
    # dithering and a perceptual space: byte-identical to compress with the same options
    opts = ["-k", "6", "--dither", "fs", "--space", "oklab"]
    code, _, _ = cli("batch", tree / "a.png", "-o", tmp_path / "d", *opts, "-q", "-j", "1")
    assert code == 0
    code, _, _ = cli("compress", tree / "a.png", "-o", tmp_path / "one.png", *opts, "-q")
    assert code == 0
    assert (tmp_path / "d" / "a-k6.png").read_bytes() == (tmp_path / "one.png").read_bytes()
    rc, _, stderr = cli("batch", tree, "-o", out, "--palette", pal, "--shared-palette")
    assert rc == 2
    assert stderr == "kmeanscli: error: --shared-palette and --palette do not go together\n"
    # the defaults (restarts included) are compress's too: the same bytes for small k
    for k in ("4", "12"):
        code, _, _ = cli("batch", tree / "b.jpg", "-o", tmp_path / "def", "-k", k, "-q", "-j", "1")
        assert code == 0
        code, _, _ = cli("compress", tree / "b.jpg", "-o", tmp_path / f"b{k}.png", "-k", k, "-q")
        assert code == 0
        assert (tmp_path / "def" / f"b-k{k}.png").read_bytes() == (
            tmp_path / f"b{k}.png"
        ).read_bytes()
