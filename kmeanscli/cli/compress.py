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
    Optimize,
    PaletteOut,
    Plot,
    Preview,
    Quiet,
    Sample,
    SkipIfLarger,
    Strip,
    quantize_options,
)
from .outcome import command_line, declare, results_printed

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


def _output_folder(output: str | None) -> Path | None:
    """``-o`` naming an existing folder: the output goes into it, named as by default."""
    if output is None or output == "-" or not Path(output).is_dir():
        return None
    return Path(output)


def _one_image_hint(inputs: list[str]) -> str:
    """The usage error for several images: the ``batch`` command line that does them."""
    import shlex

    argv = command_line()
    argv = argv[argv.index("compress") + 1 :] if "compress" in argv else inputs
    rest: list[str] = []
    outdir, value_of = "OUTDIR", None
    for arg in argv:
        if value_of is not None:
            if value_of in ("-o", "--output") and Path(arg).is_dir():
                outdir = arg  # already a folder: batch can write there
            value_of = None
        elif arg in ("-o", "--output", "--plot", "--palette-out"):
            value_of = arg  # compress's own output files: not batch options
        elif not (arg.startswith(("--output=", "--plot=", "--palette-out=")) or arg == "--preview"):
            rest.append(arg)
    line = shlex.join(["kmeanscli", "batch", *rest, "-o", outdir])
    return f"compress takes one image ({len(inputs)} given); for several, use batch: {line}"


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
    ctx: typer.Context,
    palette_out: PaletteOut = None,
    force: Force = False,
    strip: Strip = False,
    optimize: Optimize = None,
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

    if ctx.args:  # several images, as pngquant takes them: show the batch command
        raise UsageError(_one_image_hint([input or "", *ctx.args]))
    declare("china.jpg" if sample else input, json=json_out, quiet=quiet)
    if sample and input is not None:
        raise UsageError("give either IN or --sample, not both")
    if not sample and input is None:
        raise UsageError("missing IN: give an image path, - for stdin, or --sample")
    targets = options.targets
    src: str | Path | bytes
    out_dir = _output_folder(output)
    default_dir = out_dir if out_dir is not None else ("." if sample else None)
    if sample:
        src_path = sample_image()
        src, name = src_path, src_path.name
        out = output if output is not None else str(default_output(src_path.name, options.colors))
        if (output is None and targets) or out_dir is not None:
            out = None  # named after k (the chosen one with targets) in default_dir
    elif input == "-":
        if out_dir is not None:
            raise UsageError(f"-o {output}: is a folder, and stdin has no file name; give -o FILE")
        src, name = read_stdin(), "-"
        out = output if output is not None else "-"
    else:
        src, name = Path(input), input
        out = None if out_dir is not None else output

    to_stdout = out == "-"
    if to_stdout and json_out:
        declare(name, json=False)  # stdout is the image's: no JSON there
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
            base = src_file if default_dir is None else Path(default_dir) / src_file.name
            out_file = default_output(base, options.colors)
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
            optimize=optimize,
            max_pixels=max_pixels,
            format="PNG" if to_stdout else None,
            input_name=name,
            palette_out=palette_out,
            progress=stages,
            skip_if_larger=skip_if_larger,
            default_dir=default_dir,
        )

    for note in report.warnings:
        warn(note, quiet=quiet)
    if json_out:
        sys.stdout.write(json.dumps(report.to_dict()) + "\n")
        sys.stdout.flush()
        results_printed()
    elif not quiet:  # with --json, stderr keeps only the warnings
        render_report(report)
        if report.search is not None:
            goals = " and ".join(t.describe() for t in options.targets)
            err_console().print(
                f"k={report.k}: the smallest k with {goals}", markup=False, highlight=False
            )
    if plot is not None or preview:
        from .. import plots

        assert report.original is not None and report.result is not None
        title = f"{report.input} → {report.output}: k={report.k}"
        captions = {"bytes_in": report.bytes_in, "bytes_out": report.bytes_out}
        captions["psnr"] = report.psnr
        if plot is not None:
            plots.save_compress_figure(
                plot, report.original, report.result, title=title, **captions
            )
        if preview:
            shown = plots.show_compress_figure(
                report.original,
                report.result,
                title=title,
                before_show=lambda: preview_hint(quiet),
                **captions,
            )
            if not shown:
                warn(
                    "no display for --preview; skipped (use --plot FILE to save the figure)",
                    quiet=quiet,
                )


def preview_hint(quiet: bool) -> None:
    """Before the --preview window blocks: how to get the prompt back."""
    if not quiet:
        sys.stderr.write(
            "kmeanscli: preview: close the figure window (or press q in it) to finish\n"
        )
        sys.stderr.flush()
