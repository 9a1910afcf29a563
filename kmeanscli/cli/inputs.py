"""Small input/output checks shared by the commands (stdin, files that must not be clobbered)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import InputError, UsageError

__all__ = ["read_stdin", "same_path"]


def read_stdin() -> bytes:
    """The image on stdin; refuses a terminal (nothing to read) and a closed stdin.

    Raises
    ------
    InputError
        stdin is closed or cannot be read.
    UsageError
        stdin is a terminal.
    """
    if sys.stdin is None:
        raise InputError("-: stdin is closed; pipe an image in or give a file")
    if sys.stdin.isatty():
        raise UsageError("-: stdin is a terminal; pipe an image in or give a file")
    try:
        return sys.stdin.buffer.read()
    except OSError as exc:
        raise InputError(f"-: cannot read stdin: {exc.strerror or exc}") from exc


def same_path(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (hard and symbolic links included)."""
    try:
        if a.exists() and b.exists():
            return a.samefile(b)
    except OSError:
        pass
    return a.resolve() == b.resolve()
