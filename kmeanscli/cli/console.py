"""Rich consoles and the one place where errors become a line on stderr."""

from __future__ import annotations

import os
import sys
import threading
from types import TracebackType

from rich.console import Console
from rich.status import Status

__all__ = ["Stages", "err_console", "error", "human_bytes", "out_console", "warn"]

_STAGE_TEXT = {
    "decode": "Decoding",
    "histogram": "Counting colours",
    "fit": "Fitting k-means",
    "refine": "Refining the palette",
    "assign": "Mapping pixels",
    "dither": "Dithering",
    "encode": "Encoding",
    "measure": "Measuring the file written",
}


def err_console() -> Console:
    """A console on stderr (messages, reports, progress); honours NO_COLOR."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def out_console() -> Console:
    """A console on stdout for tables; never narrower than its table when piped.

    Rich falls back to 80 columns when stdout is not a terminal, which would cut the
    columns of a wide table written to a file or a pipe.
    """
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=max(console.width, 160))
    return console


def error(message: str) -> None:
    """Print one ``kmeanscli: error: ...`` line on stderr, without markup or wrapping."""
    text = " ".join(str(message).split())
    sys.stderr.write(f"kmeanscli: error: {text}\n")
    sys.stderr.flush()


def warn(message: str, *, quiet: bool = False) -> None:
    """Print one ``kmeanscli: warning: ...`` line on stderr (nothing when quiet)."""
    if not quiet:
        text = " ".join(str(message).split())
        sys.stderr.write(f"kmeanscli: warning: {text}\n")
        sys.stderr.flush()


def progress_enabled(quiet: bool) -> bool:
    """Progress is shown only on a terminal, never when quiet or with TERM=dumb."""
    return not quiet and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


class Stages:
    """A spinner on stderr naming the current stage; it appears only after ``delay`` seconds.

    Use as a context manager and call it with a stage name (the core's ``progress``
    callback). Disabled, it does nothing at all.
    """

    def __init__(self, enabled: bool, *, delay: float = 0.5) -> None:
        self._enabled = enabled
        self._delay = delay
        self._text = "Working"
        self._lock = threading.Lock()
        self._status: Status | None = None
        self._timer: threading.Timer | None = None

    def __call__(self, stage: str) -> None:
        with self._lock:
            self._text = _STAGE_TEXT.get(stage, stage.capitalize())
            if self._status is not None:
                self._status.update(f"{self._text}…")

    def _show(self) -> None:
        with self._lock:
            if self._timer is None:  # already stopped
                return
            self._status = Status(f"{self._text}…", console=err_console(), spinner="dots")
            self._status.start()

    def __enter__(self) -> Stages:
        if self._enabled:
            self._timer = threading.Timer(self._delay, self._show)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        timer = self._timer
        if timer is not None:
            timer.cancel()
        with self._lock:
            self._timer = None
            if self._status is not None:
                self._status.stop()
                self._status = None


def human_bytes(n: float) -> str:
    """A size for people: ``950 B``, ``62.5 kB``, ``1.2 MB``."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n} B"  # pragma: no cover
