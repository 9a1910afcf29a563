"""``kmeanscli compare``: what each k costs and buys, and which k meets a quality target."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..constants import DEFAULT_BATCH_SIZE, DEFAULT_K, DEFAULT_KS, MAX_COLORS
from ..errors import OutputError, TargetNotMetError, UsageError
from .compress import preview_hint
from .console import (
    Stages,
    err_console,
    fit_to_content,
    natural_width,
    out_console,
    print_line,
    progress_enabled,
    warn,
)
from .inputs import read_stdin, same_path
from .options import (
    FLAGS,
    KMEANS,
    Csv,
    Json,
    MaxPixels,
    Methods,
    Optimize,
    Plot,
    PlotColors,
    Preview,
    Quiet,
    Sample,
    Strip,
    k_list_option,
    quantize_options,
)
from .outcome import declare, results_printed

if TYPE_CHECKING:
    from ..compare import CompareRow, Comparison
    from ..options import QuantizeOptions


def _check_figure_path(path: Path, option: str) -> None:
    """Refuse a figure path before any work: usage error for the extension, failure for
    a folder that is missing or not writable."""
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise UsageError(f"{path}: {option} writes .png, .svg or .pdf files")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise OutputError(f"{path}: folder {folder} does not exist")
    if not folder.is_dir():
        raise OutputError(f"{path}: {folder} is not a folder")
    from ..imageio import check_writable_folder

    check_writable_folder(path)


def parse_k_list(text: str) -> list[int]:
    """``"4,8,16"`` -> ``[4, 8, 16]`` (sorted, without repeats).

    Raises
    ------
    UsageError
        For anything but integers from 2 to 256 separated by commas.
    """
    values: set[int] = set()
    for part in text.split(","):
        item = part.strip()
        try:
            k = int(item)
        except ValueError:
            raise UsageError(
                f"-k {text!r}: {item!r} is not a whole number; give k values like 4,8,16"
            ) from None
        if not 2 <= k <= MAX_COLORS:
            raise UsageError(f"-k {text!r}: {k} is out of range; each k must be 2 to {MAX_COLORS}")
        values.add(k)
    return sorted(values)


def parse_methods(text: str) -> tuple[str, ...]:
    """``"kmeans,octree"`` -> ``("kmeans", "octree")`` (k-means first, no repeats).

    Raises
    ------
    UsageError
        For a name other than ``kmeans``, ``mediancut`` or ``octree``.
    """
    names = [part.strip().lower() for part in text.split(",")]
    from ..compare import METHODS

    for name in names:
        if name not in METHODS:
            raise UsageError(
                f"--methods {text!r}: unknown method {name!r}; use {', '.join(METHODS)}"
            )
    return tuple(m for m in METHODS if m in names)


def _files_mode_check(
    paths: list[str],
    options: QuantizeOptions,
    *,
    ks: str | None,
    methods: str | None,
    plot_colors: Path | None,
) -> None:
    """Options for quantizing one image do not go with files to score."""
    import dataclasses

    from ..options import QuantizeOptions

    given = [
        flag
        for flag, value in (("-k", ks), ("--methods", methods), ("--plot-colors", plot_colors))
        if value is not None
    ]
    default = QuantizeOptions()
    given += [
        FLAGS[f.name]
        for f in dataclasses.fields(options)
        if getattr(options, f.name) != getattr(default, f.name)
    ]
    if given:
        raise UsageError(f"{given[0]} is for one image; it does not go with several files to score")
    if "-" in paths:
        raise UsageError("- (stdin) is for one image; give files to score by path")


def json_records(comparison: Comparison) -> list[dict[str, Any]]:
    """The JSON/CSV rows: the ``FIELDS``, plus ``file`` (files), ``method`` (with --methods
    other than k-means alone), ``engine`` (k-means rows) and ``chosen`` (with a quality
    target)."""
    with_method = comparison.methods not in ((), ("kmeans",))
    out = []
    for row in comparison.rows:
        record: dict[str, Any] = {}
        if row.file is not None:
            record["file"] = row.file
        if with_method:
            record["method"] = row.method
        if row.engine is not None:
            record["engine"] = row.engine
        record.update(row.to_dict())
        if comparison.targets:
            record["chosen"] = row.chosen
        out.append(record)
    return out


def _fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    return format(value, spec)


# The table's columns: key, header, header when narrow, and the order in which they are
# left out of a terminal too narrow for all of them (0: never).
_COLUMNS: tuple[tuple[str, str, str, int], ...] = (
    ("file", "file", "file", 0),
    ("method", "method", "method", 0),
    ("k", "k", "k", 0),
    ("colours", "colours", "cols", 4),
    ("bytes", "bytes", "kB", 0),
    ("bpp", "bpp", "bpp", 1),
    ("ratio", "ratio", "ratio", 0),
    ("MSE", "MSE", "MSE", 2),
    ("PSNR", "PSNR", "PSNR", 0),
    ("SSIM", "SSIM", "SSIM", 5),
    ("ΔE00", "ΔE00", "ΔE00", 6),
    ("seconds", "seconds", "s", 3),
)


def _cells(row: CompareRow, *, narrow: bool) -> dict[str, str]:
    s = row.scores
    return {
        "file": row.file or "",
        "method": row.method or "",
        "k": f"{row.k}" + (" ←" if row.chosen else ""),
        "colours": f"{row.colors:,}",
        "bytes": f"{row.bytes / 1000:,.1f}" if narrow else f"{row.bytes:,}",
        "bpp": f"{row.bpp:.2f}",
        "ratio": f"{row.ratio:.1%}",
        "MSE": _fmt(s.mse, ".2f"),
        "PSNR": _fmt(s.psnr, ".2f"),
        "SSIM": _fmt(s.ssim, ".4f"),
        "ΔE00": _fmt(s.delta_e, ".3f"),
        "seconds": _fmt(row.seconds, ".2f"),
    }


def _table(
    comparison: Comparison, keys: list[str], *, narrow: bool, numbered: bool = False
) -> Table:
    table = Table(header_style="bold")
    for key, header, short, _ in _COLUMNS:
        if key in keys:
            name = "#" if key == "file" and numbered else (short if narrow else header)
            left = key in ("file", "method")
            table.add_column(name, justify="left" if left else "right", no_wrap=True)
    for i, row in enumerate(comparison.rows, 1):
        cells = _cells(row, narrow=narrow)
        if numbered:
            cells["file"] = str(i)
        table.add_row(
            *(Text(cells[k]) for k in keys if k in cells), style="bold" if row.chosen else None
        )
    return table


def render_table(comparison: Comparison, console: Console) -> None:
    """The comparison as a Rich table: every column in full when piped; in a terminal too
    narrow for it, shorter units (kB, s) and then fewer columns, so that no cell is cut."""
    title = (
        f"{comparison.input}: {comparison.width}×{comparison.height}, {comparison.bytes_in:,} bytes"
    )
    keys = [key for key, *_ in _COLUMNS]
    if comparison.files_mode:
        keys = [k for k in keys if k not in ("k", "seconds")]
    else:
        keys.remove("file")
    if comparison.methods in ((), ("kmeans",)):
        keys.remove("method")
    print_line(console, Text(title))
    table = _table(comparison, keys, narrow=False)
    fit_to_content(console, table)
    width = console.width
    hidden: list[str] = []
    numbered = False
    if natural_width(console, table) > width:
        by_rank = sorted((rank, key) for key, _, _, rank in _COLUMNS if rank and key in keys)
        table = _table(comparison, keys, narrow=True)
        for _, key in by_rank:
            if natural_width(console, table) <= width:
                break
            keys.remove(key)
            hidden.append(key)
            table = _table(comparison, keys, narrow=True)
        if natural_width(console, table) > width and "file" in keys:
            numbered = True
            table = _table(comparison, keys, narrow=True, numbered=True)
    console.print(table)
    if numbered:
        for i, row in enumerate(comparison.rows, 1):
            console.print(Text(f"{i:>3}  {row.file}"), overflow="fold")
    if hidden:
        console.print(
            Text(
                f"({', '.join(hidden)} left out at {width} columns; --csv or --json gives "
                "every column)",
                style="dim",
            ),
            overflow="fold",
        )


def _write_csv(records: list[dict[str, Any]]) -> None:
    from ..compare import FIELDS

    keys = list(dict.fromkeys(key for record in records for key in record)) or list(FIELDS)
    writer = csv.DictWriter(sys.stdout, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: _csv_cell(v) for k, v in record.items()})


def _csv_cell(value: Any) -> Any:
    """A JSON value as a CSV cell: ``null`` empty, booleans spelt as in JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _target_summary(comparison: Comparison) -> str | None:
    found = comparison.search
    if found is None:
        return None
    goals = " and ".join(t.describe() for t in comparison.targets)
    got = ", ".join(t.format(found.scores[t.metric]) for t in comparison.targets)
    text = f"chosen k={found.k}: the smallest k with {goals} ({got}"
    below = found.below
    if below:
        missed = [t for t in comparison.targets if t.metric in below and not t.met(below[t.metric])]
        if missed:
            text += f"; k={found.k - 1} gives {missed[0].format(below[missed[0].metric])}"
    return text + f"; {len(found.tried)} k values tried)"


def _colors_k(ks: str | None, k_values: list[int]) -> int | None:
    """The k that --plot-colors shows: None for the chosen one (targets, or a file)."""
    if ks is None and DEFAULT_K in k_values:
        return DEFAULT_K  # compress's default
    return min(k_values, default=None)  # the smallest k given: the clearest picture


def _colors_source(comparison: Comparison, k: int | None) -> CompareRow:
    chosen = [row for row in comparison.rows if row.chosen]
    if chosen:
        return chosen[0]
    return next((row for row in comparison.rows if row.k == k), comparison.rows[0])


@quantize_options(k=None, palette=False, batch_size=False)
def compare(
    files: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="IN [OTHER...]",
            show_default=False,
            help="One image (or - for stdin) to quantize at each k; or an ORIGINAL followed "
            "by files made from it, by any tool, to score against it.",
        ),
    ] = None,
    ks: k_list_option(  # type: ignore[valid-type]
        "compare", f"; {DEFAULT_K} alone with --plot-colors and neither --plot nor --preview"
    ) = None,
    methods: Methods = None,
    *,
    options: QuantizeOptions,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            min=16,
            metavar="N",
            show_default=False,
            rich_help_panel=KMEANS,
            help="Mini-batch size of every minibatch fit, at least 16: the minibatch method's, "
            f"and the kmeans rows' with --engine minibatch. Default: {DEFAULT_BATCH_SIZE}.",
        ),
    ] = None,
    strip: Strip = False,
    optimize: Optimize = None,
    max_pixels: MaxPixels = None,
    json_out: Json = False,
    csv_out: Csv = False,
    quiet: Quiet = False,
    plot: Plot = None,
    preview: Preview = False,
    plot_colors: PlotColors = None,
    sample: Sample = False,
) -> None:
    """Compare k values: size, bits per pixel, MSE, PSNR, SSIM and ΔE00 for each.

    Each k is quantized like `compress` does (same seed, same bytes) and encoded as a palette
    PNG in memory. With --target-psnr, --target-ssim or --max-delta-e, a bisection finds the
    smallest k that meets the target. With several files, the first is the original and the
    others (made by any tool) are scored against it.

    --plot-colors shows the chosen k, else the smallest -k given, else k=16; asked for
    alone (no -k, --plot or --preview), only k=16 is fitted.

    Examples:

      kmeanscli compare photo.jpg

      kmeanscli compare photo.jpg -k 8,16,32 --methods kmeans,octree --plot rd.png

      kmeanscli compare photo.jpg --target-psnr 35 --json

      kmeanscli compare photo.jpg pngquant.png magick.png
    """
    from ..compare import compare_files, compare_k

    paths = list(files or [])
    name = "china.jpg" if sample else (paths[0] if paths else None)
    declare(name, json=json_out and not csv_out, quiet=quiet)
    if sample and paths:
        raise UsageError("give either IN or --sample, not both")
    if not sample and not paths:
        raise UsageError("missing IN: give an image path, - for stdin, or --sample")
    if json_out and csv_out:
        raise UsageError("give --json or --csv, not both")
    files_mode = len(paths) > 1
    targets = options.targets
    if files_mode:
        _files_mode_check(paths, options, ks=ks, methods=methods, plot_colors=plot_colors)
        if batch_size is not None:
            raise UsageError("--batch-size is for one image; it does not go with several files")
    k_values = parse_k_list(ks) if ks is not None else ([] if targets else list(DEFAULT_KS))
    if ks is None and not targets and plot_colors is not None and plot is None and not preview:
        k_values = [DEFAULT_K]  # only the colour figure is asked for: fit only the k it shows
    chosen_methods = parse_methods(methods) if methods is not None else ("kmeans",)
    if targets and not {"kmeans", "minibatch"} & set(chosen_methods):
        raise UsageError("quality targets choose k for kmeans: add kmeans to --methods")
    inputs = [Path(p) for p in paths if p != "-"]
    for path, option in ((plot, "--plot"), (plot_colors, "--plot-colors")):
        if path is not None:
            _check_figure_path(path, option)
            if any(same_path(path, i) for i in inputs):
                raise OutputError(f"{path}: {option} is an input file; refusing to overwrite it")
    if plot is not None and plot_colors is not None and plot.resolve() == plot_colors.resolve():
        raise UsageError("--plot and --plot-colors need different files")

    with Stages(progress_enabled(quiet)) as stages:
        if files_mode:
            comparison = compare_files(paths[0], paths[1:], max_pixels=max_pixels, progress=stages)
        else:
            if sample:
                from ..api import sample_image

                src_path = sample_image()
                src: str | Path | bytes = src_path
                name = src_path.name
            elif paths[0] == "-":
                src, name = read_stdin(), "-"
            else:
                src, name = Path(paths[0]), paths[0]
            comparison = compare_k(
                src,
                k_values,
                options,
                methods=chosen_methods,
                batch_size=batch_size,
                strip=strip,
                optimize=optimize,
                max_pixels=max_pixels,
                input_name=name,
                progress=stages,
            )

    for note in comparison.warnings:
        warn(note, quiet=quiet)
    if json_out:
        sys.stdout.write(json.dumps(json_records(comparison)) + "\n")
        results_printed()
    elif csv_out:
        _write_csv(json_records(comparison))
    else:
        render_table(comparison, out_console())
    sys.stdout.flush()
    summary = _target_summary(comparison)
    if summary and not quiet and not json_out:  # with --json, stderr keeps only warnings
        err_console().print(summary, markup=False, highlight=False)

    if comparison.rows and (plot is not None or preview or plot_colors is not None):
        _figures(
            comparison,
            plot=plot,
            preview=preview,
            plot_colors=plot_colors,
            colors_k=_colors_k(ks, k_values),
            quiet=quiet,
        )
    if comparison.target_error is not None:
        raise TargetNotMetError(comparison.target_error)


def _figures(
    comparison: Comparison,
    *,
    plot: Path | None,
    preview: bool,
    plot_colors: Path | None,
    colors_k: int | None,
    quiet: bool,
) -> None:
    from .. import plots

    title = f"{comparison.input}: {comparison.width}×{comparison.height}"
    if plot is not None:
        plots.save_figure(plot, plots.compare_figure(comparison, title=title))
    if plot_colors is not None:
        row = _colors_source(comparison, colors_k)
        assert row.result is not None
        plots.save_figure(
            plot_colors,
            plots.colors_figure(
                comparison.original, row.result, title=f"{comparison.input}: k={row.k}"
            ),
        )
    if preview:
        shown = plots.show_figure(
            lambda fig: plots.compare_figure(comparison, title=title, fig=fig),
            plots.compare_figure_size(comparison),
            before_show=lambda: preview_hint(quiet),
        )
        if not shown:
            warn(
                "no display for --preview; skipped (use --plot FILE to save the figure)",
                quiet=quiet,
            )
