"""``batch --scheduler`` when the cluster misbehaves (issue 12): bad addresses, a refused or
silent port, every worker gone, one worker killed. Real ``LocalCluster``s with worker
processes, on 127.0.0.1 only."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import photo, save, subprocess_env

from kmeanscli.batch import DaskExecutor, SchedulerError, parse_scheduler_address
from kmeanscli.cli.status import ExitStatus

distributed = pytest.importorskip("distributed")

NOISE = ("Traceback", "Warning", "distributed.", "Exception ignored")


def kmeanscli(*args: str | Path, timeout: float = 120) -> tuple[int, str, str, float]:
    """``python -m kmeanscli ARGS``: (exit status, stdout, stderr, seconds)."""
    t = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "kmeanscli", *map(str, args)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=timeout,
    )
    return r.returncode, r.stdout, r.stderr, time.monotonic() - t


def cluster(n_workers: int = 2) -> distributed.LocalCluster:
    return distributed.LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )


def photos(folder: Path, n: int, size: int = 128) -> list[Path]:
    return [save(folder / f"p{i:02d}.png", photo(i, (size, size))) for i in range(n)]


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("tcp://127.0.0.1:8786", "tcp://127.0.0.1:8786"),
        ("127.0.0.1:8786", "tcp://127.0.0.1:8786"),
        ("scheduler.example.org:8786", "tcp://scheduler.example.org:8786"),
        ("tls://[::1]:8786/", "tls://[::1]:8786"),
    ],
)
def test_scheduler_addresses_accepted(address: str, expected: str) -> None:
    assert parse_scheduler_address(address)[0] == expected


@pytest.mark.parametrize("address", ["foo", "tcp://foo", "http://foo:8786", "foo:0", "a b:1", ""])
def test_bad_scheduler_address_is_one_usage_line_at_once(cli, tmp_path: Path, address: str):
    # before the fix: "cannot connect", then a Client.__del__ traceback after 20.8 s
    save(tmp_path / "a.png", photo(0))
    r = cli("batch", tmp_path / "a.png", "-o", tmp_path / "out", "--scheduler", address)
    assert r.code == ExitStatus.USAGE == 2
    assert r.stderr == (
        f"kmeanscli: error: --scheduler {address!r}: not a scheduler address like tcp://host:8786\n"
    )
    assert not (tmp_path / "out").exists()
    with pytest.raises(SchedulerError, match="not a scheduler address"):
        DaskExecutor(address)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused_port_says_refused_at_once(tmp_path: Path) -> None:
    # before the fix: "Timed out trying to connect ... after 10 s", after 10.9 s
    save(tmp_path / "a.png", photo(0))
    port = free_port()  # nothing listens there now
    code, out, err, seconds = kmeanscli(
        "batch", tmp_path / "a.png", "-o", tmp_path / "out", "--scheduler", f"127.0.0.1:{port}",
        "--scheduler-timeout", "120",
    )  # fmt: skip
    assert code == ExitStatus.FAILURE == 1
    assert out == ""
    assert err == (
        f"kmeanscli: error: cannot connect to the Dask scheduler at tcp://127.0.0.1:{port}: "
        f"connection refused (no scheduler listens on port {port})\n"
    )
    assert seconds < 100  # refused is said at once: it did not wait for the 120 s timeout


def test_silent_port_gives_up_after_the_scheduler_timeout(tmp_path: Path) -> None:
    """A port that accepts connections and never answers (Dask's own handshake would wait
    for ever): one line after --scheduler-timeout."""
    save(tmp_path / "a.png", photo(0))
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        code, _, err, seconds = kmeanscli(
            "batch",
            tmp_path / "a.png",
            "-o",
            tmp_path / "out",
            "--scheduler",
            f"tcp://127.0.0.1:{port}",
            "--scheduler-timeout",
            "1",
        )
    assert code == 1
    assert err == (
        f"kmeanscli: error: cannot connect to the Dask scheduler at tcp://127.0.0.1:{port}: "
        "the port accepts connections, but no Dask scheduler answered within 1 s\n"
    )
    assert seconds < 100  # a bound against hangs (Dask's handshake waits for ever)


@pytest.mark.parametrize(
    ("raised", "words"),
    [
        (
            TimeoutError(),
            "no answer within 5 s (host unreachable or port filtered; see --scheduler-timeout)",
        ),
        (socket.gaierror(-2, "Name or service not known"), "unknown host 'sched.invalid'"),
        (OSError(113, "No route to host"), "no route to host"),
    ],
)
def test_unreachable_host_in_the_users_words(monkeypatch, raised: OSError, words: str) -> None:
    def connect(*_args, **_kwargs):  # no packet leaves the machine
        raise raised

    monkeypatch.setattr(socket, "create_connection", connect)
    with pytest.raises(SchedulerError) as info:
        DaskExecutor("sched.invalid:8786")
    assert (
        str(info.value)
        == f"cannot connect to the Dask scheduler at tcp://sched.invalid:8786: {words}"
    )


def run_json(args: list[str | Path], on_first_line) -> tuple[int, list[dict], str]:
    """``batch ... --json`` in a subprocess; ``on_first_line()`` runs once the first file is
    reported. Returns (exit status, the JSON lines, stderr)."""
    cmd = [sys.executable, "-m", "kmeanscli", "batch", *map(str, args), "--json"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env()
    )
    watchdog = threading.Timer(150, proc.kill)  # never hang the test suite
    watchdog.start()
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()))
    reader.start()
    try:
        first = proc.stdout.readline()
        on_first_line()
        rest = proc.stdout.read()  # (communicate() would lose what readline() buffered)
        proc.wait(timeout=140)
        reader.join(10)
        err = errors[0]
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
    docs = [json.loads(line) for line in (first + rest).splitlines()]
    return proc.returncode, docs, err


def test_every_worker_gone_waits_visibly_then_stops_with_the_files_not_done(tmp_path: Path):
    # before the fix: no message at all while the batch waited, "(2 workers)" in the summary
    n = 30
    inputs = photos(tmp_path / "in", n, size=128)
    out = tmp_path / "out"
    with cluster(2) as c:
        args = ["--scheduler", c.scheduler_address, "--worker-wait", "2", "-k", "8"]
        code, docs, err = run_json([tmp_path / "in", "-o", out, *args], lambda: c.scale(0))
    assert code == ExitStatus.NO_WORKERS == 4, err
    assert [word for word in NOISE if word in err] == [], err
    assert "waiting for workers: the Dask cluster has none (the batch stops after 2 s" in err
    assert f"kmeanscli: error: no Dask worker for 2 s at {c.scheduler_address}: stopped" in err
    assert err.endswith("stopped (--worker-wait)\n")
    reported = {d["input"] for d in docs}
    assert [d for d in docs if d["status"] != "ok"] == []
    assert 1 <= len(reported) < n
    not_done = sorted(set(map(str, inputs)) - reported)
    listed = err.split(f"\nnot done ({len(not_done)}):\n")[1].splitlines()
    shown = [line.strip() for line in listed if line.startswith(f"  {tmp_path}")]
    assert shown == not_done[:20]  # in plan order
    if len(not_done) > 20:
        assert f"  ... and {len(not_done) - 20} more" in listed
    assert f"{len(reported)} ok, 0 skipped, 0 failed, {len(not_done)} not done (of {n})" in err
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left

    # the same command finishes the files not done
    with cluster(1) as c:
        code, stdout, err, _ = kmeanscli(
            "batch",
            tmp_path / "in",
            "-o",
            out,
            "-k",
            "8",
            "--json",
            "--scheduler",
            c.scheduler_address,
        )
    assert code == 0, err
    again = {d["input"]: d["status"] for d in map(json.loads, stdout.splitlines())}
    assert {i for i, status in again.items() if status == "ok"} <= set(not_done)
    assert len(again) == n and len(list(out.iterdir())) == n


def test_one_worker_killed_loses_nothing(tmp_path: Path) -> None:
    n = 24
    photos(tmp_path / "in", n, size=128)
    out = tmp_path / "out"
    with cluster(2) as c, distributed.Client(c.scheduler_address) as client:
        pids = client.run(os.getpid)  # the worker processes (each under its nanny)
        victim = sorted(pids.values())[0]
        args = ["--scheduler", c.scheduler_address, "-k", "8"]
        code, docs, err = run_json(
            [tmp_path / "in", "-o", out, *args], lambda: os.kill(victim, signal.SIGKILL)
        )
    assert code == ExitStatus.OK, err
    assert [word for word in NOISE if word in err] == [], err
    assert sorted(d["input"] for d in docs) == sorted(str(p) for p in (tmp_path / "in").iterdir())
    assert all(d["status"] == "ok" for d in docs)
    assert len(list(out.iterdir())) == n
    assert f"{n} ok, 0 skipped, 0 failed (of {n})" in err


def test_summary_counts_the_workers_that_ran_files(tmp_path: Path) -> None:
    save(tmp_path / "a.png", photo(0))
    with cluster(2) as c:
        code, _, err, _ = kmeanscli(
            "batch", tmp_path / "a.png", "-o", tmp_path / "out", "--scheduler", c.scheduler_address
        )
    assert code == 0, err
    assert f"on Dask cluster at {c.scheduler_address} (1 worker)" in err  # of 2: one file
