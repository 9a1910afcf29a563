"""``kmeanscli batch`` under signals: SIGINT, SIGTERM and SIGKILL of the main process or of its
process group end the run promptly, with the documented status, the summary, no partial
files, no process left behind and nothing but our own lines on stderr.

Each run is a real subprocess in its own session, so that its process group (the main
process, the multiprocessing fork server and resource tracker, the workers) can be found in
/proc even after the main process is gone.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import photo, save

from kmeanscli import QuantizeOptions
from kmeanscli.batch import BatchOptions, ProcessExecutor, plan, run_batch
from kmeanscli.cli.status import ExitStatus

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="finds the processes of a run in /proc"
)

ENV = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100", "TERM": "dumb"}
FILES = 14  # 192 x 192 photos: about 0.2-0.5 s each, so a run lasts a few seconds on 2 workers
TERMINATED = 128 + signal.SIGTERM  # 143, as a shell reports a process SIGTERM ended
PROMPT = 30.0  # a bound against hangs (the bug took 634 s), not a speed check: the run
# ends itself within 10 s of the first signal; the margin is for a loaded 2-core machine

# Every line `batch --json` (without -q) writes on stderr when stderr is not a terminal.
DOCUMENTED = re.compile(
    r"(ok|skipped|failed)  +\S.*"  # one line per file
    r"|(files|size|time|palette|status) .*"  # the summary
    r"|kmeanscli: error: interrupted"
    r"|"  # (Click's blank line when Ctrl-C lands outside the run itself)
)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("signals") / "in"
    for i in range(FILES):
        save(src / f"p{i:02d}.png", photo(i, (192, 192)))
    return src


def group_of(pgid: int) -> list[str]:
    """The live (not zombie) processes of a process group, as 'pid cmdline'."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state not in "ZX":
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry} {command}")
    return found


def children_of(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry))
    return kids


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except OSError:
        return False


def poll(condition: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


class Batch:
    """``kmeanscli batch IN -o OUT -j 2 --json`` in its own session, output to files."""

    def __init__(self, src: Path, tmp_path: Path) -> None:
        self.out = tmp_path / "out"
        self.stdout, self.stderr = tmp_path / "stdout", tmp_path / "stderr"
        cmd = [sys.executable, "-m", "kmeanscli", "batch", str(src), "-o", str(self.out)]
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            # files, not pipes: a process left behind must not keep the test waiting
            self.proc = subprocess.Popen(
                [*cmd, "-j", "2", "--json"],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=ENV,
                start_new_session=True,  # its own process group, numbered by its pid
            )
        self.pid = self.proc.pid

    def reported(self) -> int:
        return self.stdout.read_bytes().count(b"\n")

    def wait_for(self, condition: Callable[[], bool], what: str, *, may_end: bool = False) -> None:
        if not poll(condition, 60):
            self.kill_all()
            pytest.fail(f"timed out waiting for {what}")
        assert may_end or self.proc.poll() is None, f"the run ended before {what}"

    def send(self, sig: int, *, count: int = 1, group: bool = False) -> float:
        """Send ``sig`` ``count`` times, 1 ms apart; return the time of the first."""
        sent = time.monotonic()
        for i in range(count):
            if i:
                time.sleep(0.001)
            (os.killpg if group else os.kill)(self.pid, sig)
        return sent

    def wait(self, since: float) -> tuple[int, float]:
        try:
            code = self.proc.wait(timeout=PROMPT + 30)
        except subprocess.TimeoutExpired:
            self.kill_all()
            pytest.fail("the run did not end after the signal")
        return code, time.monotonic() - since

    def strays(self, timeout: float = 5.0) -> list[str]:
        """What is left of the run's process group after ``timeout`` seconds at most."""
        poll(lambda: not group_of(self.pid), timeout)
        left = group_of(self.pid)
        if left:
            self.kill_all()
        return left

    def kill_all(self) -> None:
        self.proc.kill()
        for line in group_of(self.pid):
            os.kill(int(line.split()[0]), signal.SIGKILL)
        self.proc.wait()

    def undocumented_stderr(self) -> list[str]:
        text = self.stderr.read_text(errors="replace")
        return [line for line in text.splitlines() if not DOCUMENTED.fullmatch(line)]

    def leftovers(self) -> list[str]:
        """Temporary or undecodable files in the output folder."""
        from PIL import Image

        bad = []
        for p in sorted(self.out.rglob("*")) if self.out.exists() else []:
            if p.name.startswith(".") or p.suffix != ".png":
                bad.append(p.name)
                continue
            try:
                with Image.open(p) as im:
                    im.load()
            except Exception:
                bad.append(p.name)
        return bad


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["KILL", "TERM"])
def test_killing_the_main_process_ends_its_workers(photos: Path, tmp_path: Path, sig) -> None:
    """Issue #12, fault 2: the fork server and workers died with the main process only."""
    run = Batch(photos, tmp_path)
    run.wait_for(lambda: run.reported() >= 1, "the first file")
    sent = run.send(sig)
    code, took = run.wait(sent)
    # a worker takes a moment to notice (a few ms): a file it was renaming into place then
    # may still land; later ones must not
    time.sleep(max(0.0, sent + 0.2 - time.monotonic()))
    written = sorted(p.name for p in run.out.iterdir())
    assert run.strays() == []
    time.sleep(0.5)  # anything still able to write has had the time to
    assert sorted(p.name for p in run.out.iterdir()) == written, "files written after the kill"
    assert run.leftovers() == []
    assert run.undocumented_stderr() == []
    if sig == signal.SIGTERM:
        assert code == TERMINATED
        assert took < PROMPT
        stderr = run.stderr.read_text()
        assert "status  interrupted" in stderr
        assert stderr.endswith("kmeanscli: error: interrupted\n")
        assert len(written) >= run.reported() >= 1
    else:
        assert code == -signal.SIGKILL


@pytest.mark.parametrize(
    ("sig", "group", "when"),
    [
        (signal.SIGINT, False, "start"),
        (signal.SIGINT, False, "middle"),
        (signal.SIGINT, False, "end"),
        (signal.SIGINT, True, "middle"),
        (signal.SIGTERM, False, "middle"),
        (signal.SIGTERM, True, "middle"),
    ],
    ids=["INT-start", "INT-middle", "INT-end", "INT-group", "TERM-middle", "TERM-group"],
)
def test_two_quick_signals_end_the_run_promptly_and_cleanly(
    photos: Path, tmp_path: Path, sig, group: bool, when: str
) -> None:
    """Issue #12, faults 3 and 8: two signals 1 ms apart (``timeout -s INT``, a double
    Ctrl-C) hung the exit; SIGTERM of the group printed resource-tracker warnings."""
    run = Batch(photos, tmp_path)
    if when == "start":  # the fork server is up: the pool is starting
        run.wait_for(lambda: any("forkserver" in p for p in group_of(run.pid)), "the pool")
    else:
        n = 1 if when == "middle" else FILES - 1
        run.wait_for(lambda: run.reported() >= n, f"{n} files", may_end=when == "end")
    if run.proc.poll() is not None:  # "end": the last file was quicker than the signals
        assert run.proc.returncode == ExitStatus.OK and run.strays() == []
        assert len(list(run.out.iterdir())) == FILES
        return
    sent = run.send(sig, count=2, group=group)
    code, took = run.wait(sent)
    assert run.strays() == []
    assert took < PROMPT
    stdout = run.stdout.read_text()
    results = [json.loads(line) for line in stdout.splitlines()]
    outputs = sorted(p.name for p in run.out.iterdir()) if run.out.exists() else []
    stderr = run.stderr.read_text()
    assert run.undocumented_stderr() == [], stderr
    assert run.leftovers() == []
    assert {Path(r["output"]).name for r in results} <= set(outputs)
    if code == ExitStatus.OK:  # the signals came after the last file: nothing to stop
        assert when == "end" and len(outputs) == FILES, stderr
        return
    expected = ExitStatus.INTERRUPTED if sig == signal.SIGINT else TERMINATED
    assert code == expected, stderr
    assert stderr.endswith("kmeanscli: error: interrupted\n")
    assert stderr.startswith("files ") or "\nfiles " in stderr  # the summary
    if len(outputs) < FILES:  # (a signal as the run ends: its summary may show all done)
        assert "\nstatus  interrupted: run the same command again to finish\n" in stderr


def test_a_ctrl_c_while_the_workers_stop_does_not_leave_them_running(
    photos: Path, tmp_path: Path, monkeypatch
) -> None:
    """Issue #12, fault 3, in-process: the second of two quick Ctrl-Cs landed while
    ``terminate()`` stopped the workers; it had already dropped the pool, so the retry
    stopped nothing and the workers kept writing files (and held up the exit)."""
    from multiprocessing.process import BaseProcess

    real_terminate = BaseProcess.terminate
    landed: list[int] = []

    def second_ctrl_c(self: BaseProcess) -> None:
        if not landed:  # as the first worker is being stopped
            landed.append(self.pid)
            raise KeyboardInterrupt
        real_terminate(self)

    workers: list[int] = []

    def first_ctrl_c(event) -> None:
        if event.kind == "file":  # the pool's workers: children of the fork server
            workers.extend(w for fs in children_of(os.getpid()) for w in children_of(fs))
            raise KeyboardInterrupt

    out = tmp_path / "out"
    the_plan = plan([photos], out, BatchOptions(QuantizeOptions(k=8)))
    monkeypatch.setattr(BaseProcess, "terminate", second_ctrl_c)
    with ProcessExecutor(jobs=2) as executor:
        summary = run_batch(the_plan, executor, on_event=first_ctrl_c)
        running = [pid for pid in workers if alive(pid)]
        written = sorted(p.name for p in out.iterdir())
        time.sleep(0.5)
        later = sorted(p.name for p in out.iterdir())
    assert summary.interrupted and landed
    assert len(workers) == 2 and running == []
    assert later == written and len(written) >= summary.ok == 1
    assert all(name.endswith(".png") and not name.startswith(".") for name in later)
