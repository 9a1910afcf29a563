"""Small input/output checks shared by the commands (stdin, files that must not be clobbered)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError, OutputError, UsageError

if TYPE_CHECKING:
    from ..options import QuantizeOptions

__all__ = ["check_palette_paths", "check_plot_path", "read_stdin", "same_path"]


def same_path(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (the library's check, imported when needed)."""
    from ..imageio import same_file

    return same_file(a, b)


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


def check_plot_path(plot: Path, src: Path | None, out: Path | None, *, force: bool) -> None:
    """Refuse a --plot file that is the input or the output, or exists without --force."""
    if plot.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise UsageError(f"{plot}: --plot writes .png, .svg or .pdf files")
    folder = plot.parent if str(plot.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{plot}: folder {folder} does not exist")
    if src is not None and same_path(plot, src):
        raise OutputError(f"{plot}: --plot is the input file; refusing to overwrite it")
    if out is not None and same_path(plot, out):
        raise UsageError(f"{plot}: --plot and the output are the same file")
    if plot.exists() and not force:
        raise OutputError(f"{plot}: already exists (use --force to overwrite)")
    from ..imageio import check_writable_folder

    check_writable_folder(plot)


def check_palette_paths(
    options: QuantizeOptions, palette_out: Path | None = None, plot: Path | None = None
) -> None:
    """Palette files with an extension we cannot read or write are a usage error before any
    work, and so is one file for both --plot and --palette-out."""
    from ..core import palette_io
    from ..imageio import FORMATS

    if isinstance(options.palette, str):
        palette_io.format_of(options.palette, images=tuple(FORMATS))
    if palette_out is not None:
        palette_io.format_of(palette_out)
        if plot is not None and same_path(plot, palette_out):
            raise UsageError("--plot and --palette-out need different files")
