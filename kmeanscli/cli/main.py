"""The console-script entry point, kept tiny so that Ctrl-C is handled from the first moment.

Everything heavy (Typer, Rich, numpy, and scikit-learn later) is imported inside
:func:`main`, under the same Ctrl-C handling as the work itself.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

_INTERRUPTED = 130


def _exit_interrupted() -> NoReturn:
    """Exit with 130 right away.

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
    os._exit(_INTERRUPTED)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run ``kmeanscli`` and exit with its status."""
    try:
        from .app import run

        code = run(argv)
    except KeyboardInterrupt:  # during start-up, before run() handles it
        sys.stderr.write("kmeanscli: error: interrupted\n")
        _exit_interrupted()
    if code == _INTERRUPTED:
        _exit_interrupted()
    sys.exit(code)
