"""``kmeanscli report``: one self-contained HTML page to judge a compression by eye."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..constants import DEFAULT_KS
from ..errors import OutputError, TargetNotMetError, UsageError
from .compare import json_records, parse_k_list, parse_methods
from .console import Stages, err_console, human_bytes, progress_enabled, warn
from .inputs import read_stdin, same_path
from .options import (
    Force,
    MaxPixels,
    Methods,
    Optimize,
    Quiet,
    Sample,
    Strip,
    k_list_option,
    quantize_options,
)
from .outcome import declare

if TYPE_CHECKING:
    from ..batch import BatchSummary
    from ..options import QuantizeOptions

HTML_SUFFIXES = (".html", ".htm")


def check_report_path(out: Path, inputs: list[Path], *, force: bool) -> None:
    """Refuse a report path before any work: not .html (usage), an input, an existing file
    without --force, or a folder that is missing (failures)."""
    if out.suffix.lower() not in HTML_SUFFIXES:
        raise UsageError(f"{out}: the report is an HTML page; give a .html file")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{out}: folder {folder} does not exist")
    if any(same_path(out, i) for i in inputs):
        raise OutputError(f"{out}: is an input file; refusing to overwrite it")
    if out.is_dir():
        raise OutputError(f"{out}: is a folder")
    if out.exists() and not force:
        raise OutputError(f"{out}: already exists (use --force to overwrite)")
    from ..imageio import check_writable_folder

    check_writable_folder(out)


@quantize_options(k=None, palette=False, batch_size=False)
def report(
    file: Annotated[
        str | None,
        typer.Argument(
            metavar="IN",
            show_default=False,
            help="The image (or - for stdin).",
        ),
    ] = None,
    output: Annotated[
        str,
        typer.Option(
            "-o",
            "--output",
            metavar="OUT.html",
            show_default=False,
            help="The HTML page to write, or - for stdout.",
        ),
    ] = ...,  # type: ignore[assignment]
    ks: k_list_option("show") = None,  # type: ignore[valid-type]
    methods: Methods = None,
    *,
    options: QuantizeOptions,
    force: Force = False,
    strip: Strip = False,
    optimize: Optimize = None,
    max_pixels: MaxPixels = None,
    quiet: Quiet = False,
    sample: Sample = False,
) -> None:
    """Write one HTML page to judge the results by eye: before/after, numbers, palettes.

    The page shows what `compare` measures (the same rows as `compare --json`), and for
    each result a split view against the original with a shared zoom (up to 8:1, pixels as
    blocks), its numbers and its palette; a size-versus-PSNR chart; with a quality target,
    the chosen k highlighted. One file: images, styles and scripts inline, nothing
    fetched, so it works offline and can be mailed or archived.

    Examples:

      kmeanscli report photo.jpg -o report.html

      kmeanscli report photo.jpg -k 8,16,32 --methods kmeans,octree -o report.html

      kmeanscli report --sample --target-psnr 30 -o report.html
    """
    declare("china.jpg" if sample else file, quiet=quiet)
    if sample and file is not None:
        raise UsageError("give either IN or --sample, not both")
    if not sample and file is None:
        raise UsageError("missing IN: give an image path, - for stdin, or --sample")
    targets = options.targets
    k_values = parse_k_list(ks) if ks is not None else ([] if targets else list(DEFAULT_KS))
    chosen_methods = parse_methods(methods) if methods is not None else ("kmeans",)
    if targets and not {"kmeans", "minibatch"} & set(chosen_methods):
        raise UsageError("quality targets choose k for kmeans: add kmeans to --methods")
    out = None if output == "-" else Path(output)
    if out is not None:
        check_report_path(out, [Path(file)] if file not in (None, "-") else [], force=force)

    from ..compare import compare_k
    from ..report import render_report

    with Stages(progress_enabled(quiet)) as stages:
        if sample:
            from ..api import sample_image

            src: str | Path | bytes = sample_image()
            name = "china.jpg"
        elif file == "-":
            src, name = read_stdin(), "-"
        else:
            src, name = Path(str(file)), str(file)
        comparison = compare_k(
            src,
            k_values,
            options,
            methods=chosen_methods,
            strip=strip,
            optimize=optimize,
            max_pixels=max_pixels,
            input_name=name,
            progress=stages,
        )
        stages("writing the report")
        page = render_report(comparison, records=json_records(comparison), options=options)
        _write(page, out)

    for note in comparison.warnings:
        warn(note, quiet=quiet)
    if not quiet and out is not None:
        results = len(comparison.rows)
        err_console().print(
            f"{out}: {human_bytes(len(page))}, {results} result{'s' * (results != 1)}",
            markup=False,
            highlight=False,
        )
    if comparison.target_error is not None:
        raise TargetNotMetError(comparison.target_error)


def _write(page: bytes, out: Path | None) -> None:
    if out is None:
        sys.stdout.buffer.write(page)
        sys.stdout.flush()
        return
    from ..imageio import atomic_write

    with atomic_write(out) as fh:
        fh.write(page)


def write_batch_report(out: Path, summary: BatchSummary, *, quiet: bool) -> None:
    """``batch --report``: the page of the run, written atomically; its size on stderr."""
    from ..report.batch import render_batch_report

    page = render_batch_report(summary, page=out)
    _write(page, out)
    if not quiet:
        err_console().print(
            f"report   {out} ({human_bytes(len(page))})", markup=False, highlight=False
        )
