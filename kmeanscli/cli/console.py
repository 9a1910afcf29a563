"""Rich consoles and the one place where errors become a line on stderr."""

from __future__ import annotations

import os
import sys
import threading
from types import TracebackType

from rich.console import Console
from rich.status import Status
from rich.text import Text

__all__ = [
    "Stages",
    "err_console",
    "error",
    "fit_to_content",
    "human_bytes",
    "natural_width",
    "out_console",
    "print_fields",
    "print_line",
    "size_change",
    "warn",
]

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


def size_change(ratio: float) -> str:
    """``bytes_out / bytes_in`` in words that never mislead: ``3% smaller`` (not ``1.0×``),
    ``4.5× smaller``, ``12% larger``, ``2.3× larger``, ``the same size``."""
    if ratio <= 0:
        return "empty"
    if ratio < 1:
        if ratio <= 0.5:
            return f"{1 / ratio:.1f}× smaller"
        saved = 100 * (1 - ratio)
        return f"{saved:.0f}% smaller" if saved >= 0.5 else "less than 1% smaller"
    if ratio == 1:
        return "the same size"
    if ratio >= 2:
        return f"{ratio:.1f}× larger"
    grown = 100 * (ratio - 1)
    return f"{grown:.0f}% larger" if grown >= 0.5 else "less than 1% larger"


def fit_to_content(console: Console, renderable: object) -> None:
    """Widen a console that is not a terminal to the natural width of ``renderable``, so that
    piped output is never cut or wrapped (a terminal keeps its own width)."""
    if not console.is_terminal:
        console.width = max(console.width, natural_width(console, renderable))


def natural_width(console: Console, renderable: object) -> int:
    """How wide ``renderable`` is when nothing limits it (Rich's measure is capped at the
    console's width)."""
    options = console.options.update_width(100_000)
    return console.measure(renderable, options=options).maximum  # type: ignore[arg-type]


def print_fields(console: Console, rows: list[tuple[str, str]]) -> None:
    """``name  value`` lines, names in bold and aligned; values printed as they are (no
    markup), wrapped at the console's width, with no padding after them."""
    width = max((len(name) for name, _ in rows), default=0) + 2
    for name, value in rows:
        print_line(console, Text.assemble((name.ljust(width), "bold"), value))


def print_line(console: Console, text: str | Text) -> None:
    """One line of text, never read as markup: wrapped at a terminal's width (folding a
    long file name), left whole when piped."""
    if isinstance(text, str):
        text = Text(text)
    if console.is_terminal:
        console.print(text, soft_wrap=False, overflow="fold")
    else:
        console.print(text, soft_wrap=True)
