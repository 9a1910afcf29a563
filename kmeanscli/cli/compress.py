"""``kmeanscli compress``: one image in, one palette image out."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import UsageError
from .console import (
    Stages,
    err_console,
    human_bytes,
    print_fields,
    print_line,
    progress_enabled,
    size_change,
    warn,
)
from .inputs import check_palette_paths, check_plot_path, read_stdin
from .options import (
    Force,
    Json,
    MaxPixels,
    PaletteOut,
    Plot,
    Preview,
    Quiet,
    Sample,
    SkipIfLarger,
    Strip,
    quantize_options,
)

if TYPE_CHECKING:
    from ..api import CompressReport
    from ..options import QuantizeOptions


def render_report(report: CompressReport) -> None:
    """The human summary of one compression, on stderr."""
    console = err_console()
    ratio = report.ratio
    quality = (
        "lossless"
        if report.lossless or report.mse == 0
        else f"PSNR {report.psnr:.2f} dB  (MSE {report.mse:.2f})"
    )
    print_line(console, f"{report.input} → {report.output}")
    print_fields(
        console,
        [
            (
                "size",
                f"{human_bytes(report.bytes_in)} → {human_bytes(report.bytes_out)}  "
                f"({ratio:.1%} of the input, {size_change(ratio)})",
            ),
            ("colours", f"{report.unique_colors_in:,} → {report.colors:,}"),
            ("quality", quality),
            ("time", f"{report.seconds:.2f} s"),
        ],
    )


@quantize_options()
def compress(
    input: Annotated[
        str | None,
        typer.Argument(
            metavar="IN",
            show_default=False,
            help="Image to compress, or - to read it from stdin.",
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="OUT",
            help="Output file (format from its extension: .png .gif .webp .bmp .tif .jpg), "
            "or - for PNG on stdout. Default: IN's folder, <stem>-k<K>.png.",
        ),
    ] = None,
    *,
    options: QuantizeOptions,
    palette_out: PaletteOut = None,
    force: Force = False,
    strip: Strip = False,
    max_pixels: MaxPixels = None,
    json_out: Json = False,
    quiet: Quiet = False,
    preview: Preview = False,
    plot: Plot = None,
    sample: Sample = False,
    skip_if_larger: SkipIfLarger = False,
) -> None:
    """Reduce an image to k colours and write it as a small palette image.

    The palette is fitted with k-means (or given with --palette) and every pixel goes to its
    nearest palette colour; the report goes to stderr.

    Examples:

      kmeanscli compress photo.jpg -k 16 -o photo.png

      cat a.png | kmeanscli compress - -k 8 -o - > b.png

      kmeanscli compress photo.jpg --json | jq .psnr

      kmeanscli compress photo.jpg -k 8 --dither fs --palette-out photo.gpl

      kmeanscli compress photo.jpg --palette brand.gpl -o photo.png

      kmeanscli compress photo.jpg --target-psnr 35 --skip-if-larger
    """
    from ..api import compress_file, default_output, sample_image
    from ..imageio import format_for

    if sample and input is not None:
        raise UsageError("give either IN or --sample, not both")
    if not sample and input is None:
        raise UsageError("missing IN: give an image path, - for stdin, or --sample")
    targets = options.targets
    src: str | Path | bytes
    if sample:
        src_path = sample_image()
        src, name = src_path, src_path.name
        out = output if output is not None else str(default_output(src_path.name, options.colors))
        if output is None and targets:
            out = None  # named after the chosen k, in the current folder
    elif input == "-":
        src, name = read_stdin(), "-"
        out = output if output is not None else "-"
    else:
        src, name = Path(input), input
        out = output

    to_stdout = out == "-"
    if to_stdout and json_out:
        why = "-o - (PNG on stdout)" if output == "-" else "stdin input, whose image goes to stdout"
        raise UsageError(f"--json prints on stdout, so it cannot go with {why}; give -o FILE")
    if to_stdout and sys.stdout.isatty():
        raise UsageError(
            "refusing to write image data to a terminal; redirect stdout or give -o FILE"
        )
    check_palette_paths(options, palette_out, plot)
    if plot is not None:
        src_file = src if isinstance(src, Path) else None
        out_file: Path | None = None
        if out is not None and not to_stdout:
            out_file = Path(out)
        elif out is None and src_file is not None and not targets:
            out_file = default_output(src_file, options.colors)
        check_plot_path(plot, src_file, out_file, force=force)
    if out is not None and not to_stdout:
        format_for(out)  # an unknown extension is a usage error before any work

    with Stages(progress_enabled(quiet)) as stages:
        report = compress_file(
            src,
            sys.stdout.buffer if to_stdout else out,
            options,
            force=force,
            strip=strip,
            max_pixels=max_pixels,
            format="PNG" if to_stdout else None,
            input_name=name,
            palette_out=palette_out,
            progress=stages,
            skip_if_larger=skip_if_larger,
            default_dir="." if sample else None,
        )

    for note in report.warnings:
        warn(note, quiet=quiet)
    if json_out:
        sys.stdout.write(json.dumps(report.to_dict()) + "\n")
        sys.stdout.flush()
    if not quiet:
        render_report(report)
        if report.search is not None:
            goals = " and ".join(t.describe() for t in options.targets)
            err_console().print(
                f"k={report.k}: the smallest k with {goals}", markup=False, highlight=False
            )
    if plot is not None or preview:
        from .. import plots

        assert report.original is not None and report.result is not None
        if plot is not None:
            plots.save_compress_figure(
                plot, report.original, report.result, title=f"{report.input}: k={report.k}"
            )
        if preview:
            shown = plots.show_compress_figure(
                report.original, report.result, title=f"{report.input}: k={report.k}"
            )
            if not shown:
                warn(
                    "no display for --preview; skipped (use --plot FILE to save the figure)",
                    quiet=quiet,
                )
