"""``kmeanscli palette``: the dominant colours of an image."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..constants import DEFAULT_DOMINANT_K
from ..errors import OutputError, UsageError
from .console import Stages, out_console, print_line, progress_enabled
from .inputs import check_plot_path, read_stdin, same_path
from .options import Force, Json, MaxPixels, PaletteOut, Plot, Quiet, quantize_options
from .outcome import declare, results_printed

if TYPE_CHECKING:
    from ..api import PaletteReport
    from ..options import QuantizeOptions


def render_palette(report: PaletteReport, console: Console) -> None:
    """The colours as a table: swatch, hex, RGB, share of pixels."""
    from ..core import palette_io

    print_line(console, f"{report.input}: {len(report.colors)} dominant colours ({report.space})")
    table = Table()
    table.add_column("", no_wrap=True)
    table.add_column("hex", no_wrap=True)
    table.add_column("RGB", justify="right", no_wrap=True)
    table.add_column("share", justify="right", no_wrap=True)
    for c, share in zip(report.colors, report.shares, strict=True):
        hex_code = palette_io.to_hex(c)
        swatch = Text("      ", style=f"on {hex_code}")
        rgb = f"{int(c[0]):3d} {int(c[1]):3d} {int(c[2]):3d}"
        table.add_row(swatch, hex_code, rgb, f"{100 * share:5.1f}%")
    console.print(table)


@quantize_options(k=DEFAULT_DOMINANT_K, k_min=1, palette=False, dither=False, targets=False)
def palette(
    input: Annotated[
        str,
        typer.Argument(metavar="IN", help="Image to read, or - for stdin."),
    ],
    *,
    options: QuantizeOptions,
    json_out: Json = False,
    plot: Plot = None,
    palette_out: PaletteOut = None,
    force: Force = False,
    max_pixels: MaxPixels = None,
    quiet: Quiet = False,
) -> None:
    """Show the dominant colours of an image, most used first, with colour swatches.

    The colours are fitted with k-means as compress fits its palette; the table goes to
    stdout.

    Examples:

      kmeanscli palette photo.jpg -k 6

      kmeanscli palette photo.jpg --json | jq -r '.colors[].hex'

      kmeanscli palette photo.jpg -k 8 --plot colours.png --palette-out p.gpl
    """
    from ..api import dominant_colors, palette_bytes
    from ..core import palette_io
    from ..imageio import atomic_write

    declare(input, json=json_out, quiet=quiet)
    if plot is not None:
        check_plot_path(plot, None if input == "-" else Path(input), None, force=force)
    if palette_out is not None:
        palette_io.format_of(palette_out)
        if palette_out.is_dir():
            raise OutputError(f"{palette_out}: is a directory")
        if input != "-" and same_path(palette_out, Path(input)):
            raise OutputError(f"{palette_out}: is the input file; refusing to overwrite it")
        if plot is not None and same_path(plot, palette_out):
            raise UsageError("--plot and --palette-out need different files")
        if palette_out.exists() and not force:
            raise OutputError(f"{palette_out}: already exists (use --force to overwrite)")
    src: str | Path | bytes = read_stdin() if input == "-" else Path(input)
    with Stages(progress_enabled(quiet)) as stages:
        report = dominant_colors(
            src, options, max_pixels=max_pixels, input_name=input, progress=stages
        )
    if palette_out is not None:
        data = palette_bytes(palette_out, report.colors, report.pixels)
        with atomic_write(palette_out) as fh:
            fh.write(data)
    if json_out:
        sys.stdout.write(json.dumps(report.to_dict()) + "\n")
        sys.stdout.flush()
        results_printed()
    else:
        render_palette(report, out_console())
    if plot is not None:
        from .. import plots

        plots.save_palette_figure(
            plot, report.colors, report.shares, title=f"{report.input}: dominant colours"
        )
