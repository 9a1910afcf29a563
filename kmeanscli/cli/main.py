"""The console-script entry point, kept tiny so that Ctrl-C is handled from the first moment.

Everything heavy (Typer, Rich, numpy, and scikit-learn later) is imported inside
:func:`main`, under the same Ctrl-C handling as the work itself.

SIGINT and SIGTERM are handled alike, once: the first one raises :class:`KeyboardInterrupt`
in the main thread (the command stops its work, removes partial files, prints what it has
to say); later ones are noted and ignored, so that a second Ctrl-C (or ``timeout -s INT``,
which sends two) cannot interrupt that clean-up half-way. Whatever happens, the process
ends at most ``_DEADLINE`` seconds after the first signal. The exit status is 130 after
SIGINT, 143 (128 + 15, what a shell reports for a process SIGTERM ended) after SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

from .status import ExitStatus

_INTERRUPTED = int(ExitStatus.INTERRUPTED)  # 128 + SIGINT
_TERMINATED = int(ExitStatus.TERMINATED)  # 128 + SIGTERM
_STATUS = {signal.SIGINT: _INTERRUPTED, signal.SIGTERM: _TERMINATED}
_DEADLINE = 10.0  # seconds after the first signal: the clean-up takes at most a few


class _Signals:
    """The process's SIGINT and SIGTERM handling (see the module docstring)."""

    first: int | None = None  # the first signal received
    raising = True  # the first signal raises KeyboardInterrupt (until the command is done)

    @classmethod
    def install(cls) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in _STATUS:
            if signal.getsignal(sig) is not signal.SIG_IGN:  # e.g. `cmd &` in a script
                signal.signal(sig, cls.handle)

    @classmethod
    def handle(cls, signum: int, _frame: Any) -> None:
        if cls.first is not None:
            return  # the clean-up the first one started is under way: let it finish
        cls.first = signum
        deadline = threading.Timer(_DEADLINE, os._exit, args=(_STATUS[signum],))
        deadline.daemon = True
        deadline.start()
        if cls.raising:
            raise KeyboardInterrupt


def _exit_interrupted(code: int = _INTERRUPTED) -> NoReturn:
    """Exit with ``code`` (130 or 143 after a signal, else the command's status) right away.

    A Ctrl-C that lands while an extension module initialises can leave CPython (3.11) marked
    as killed by SIGINT even though the KeyboardInterrupt was handled; the interpreter would
    then end by re-sending SIGINT to itself. Output files are already cleaned up by the time
    we get here: run the atexit handlers (process pools, semaphores), then skip the rest of
    interpreter shutdown and exit with the documented code.
    """
    import atexit

    with contextlib.suppress(Exception):
        atexit._run_exitfuncs()  # multiprocessing/executor clean-up (semaphores, workers)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _ignore_interrupts_python_cannot_raise(unraisable: Any) -> None:
    """A signal whose KeyboardInterrupt lands where Python cannot raise it (a finaliser,
    e.g. multiprocessing's semaphore clean-up) is not lost: :class:`_Signals` noted it and
    the exit status says so. Only its "Exception ignored" traceback is kept off stderr."""
    if not issubclass(unraisable.exc_type, KeyboardInterrupt):
        sys.__unraisablehook__(unraisable)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run ``kmeanscli`` and exit with its status."""
    _Signals.install()
    sys.unraisablehook = _ignore_interrupts_python_cannot_raise
    try:
        from .app import run

        code = run(argv)
        _Signals.raising = False  # done: a signal from here on changes only the status
    except KeyboardInterrupt:  # during start-up, before run() handles it, or just after
        sys.stderr.write("kmeanscli: error: interrupted\n")
        code = _INTERRUPTED
    _Signals.raising = False
    if _Signals.first is not None:
        if code != _INTERRUPTED:  # it came as the command ended: say so
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write("kmeanscli: error: interrupted\n")
        _exit_interrupted(_STATUS[_Signals.first])
    if code == _INTERRUPTED:
        _exit_interrupted()
    # Not sys.exit(): interpreter finalization puts the default SIGINT/SIGTERM handlers back,
    # so a signal landing in those last milliseconds would kill the process (status -2)
    # after a run that finished. Our handlers stay until the very end instead.
    _exit_interrupted(code)
