"""``kmeanscli batch``: many images, in parallel, resumable, optionally on a Dask cluster."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Column, Table
from rich.text import Text

from ..constants import BATCH_FORMATS as FORMATS
from ..errors import InputError, UsageError
from .console import (
    err_console,
    error,
    human_bytes,
    natural_width,
    print_fields,
    print_line,
    progress_enabled,
    size_change,
)
from .inputs import check_palette_paths
from .options import (
    FILES,
    PALETTES,
    PERFORMANCE,
    MaxPixels,
    Optimize,
    Quiet,
    SkipIfLarger,
    Strip,
    quantize_options,
)
from .status import ExitStatus

if TYPE_CHECKING:
    from ..batch import BatchEvent, BatchSummary, FileResult, Plan
    from ..options import QuantizeOptions

_NOT_DONE_SHOWN = 20  # files not done listed in the summary; the rest are counted

_STAGES = {
    "histograms": "Reading colours",
    "palette": "Fitting palette",
    "compress": "Compressing",
}


class _SavedColumn(ProgressColumn):
    """Bytes saved so far, files per second and failures (``rate=False``: no rate)."""

    def __init__(self, *, rate: bool = True, table_column: Column | None = None) -> None:
        super().__init__(table_column=table_column)
        self.rate = rate

    def render(self, task: Any) -> Text:
        f = task.fields
        parts: list[tuple[str, str]] = []
        if f.get("saved") is not None:
            parts.append((f"saved {human_bytes(f['saved'])}", "green"))
        if self.rate and f.get("rate"):
            parts.append((f"{f['rate']:.1f} files/s", ""))
        if f.get("failed"):
            parts.append((f"{f['failed']} failed", "bold red"))
        text = Text()
        for i, (part, style) in enumerate(parts):
            text.append(("  " if i else "") + part, style=style)
        return text


class _Bar(Progress):
    """The batch progress line, on one line whatever the terminal's width.

    At each refresh it takes the richest set of columns that fits the console with a bar
    of at least ``MIN_BAR`` cells (the bar takes the rest): then without the percentage and
    the rate, then without the bar, then the stage and the count alone.
    """

    MIN_BAR = 10

    def __init__(self, console: Console, **kwargs: Any) -> None:
        self._out = console  # Progress's own `console` exists only once it has started

        def fixed() -> Column:
            return Column(no_wrap=True)

        spinner = SpinnerColumn(table_column=fixed())
        stage = TextColumn("{task.description}", table_column=fixed())
        bar = BarColumn(bar_width=None, table_column=Column(ratio=1, no_wrap=True))
        count = MofNCompleteColumn(table_column=fixed())
        percent = TaskProgressColumn(table_column=fixed())
        eta = TextColumn("ETA", table_column=fixed())
        remaining = TimeRemainingColumn(table_column=fixed())
        self._layouts: list[tuple[ProgressColumn, ...]] = [
            (
                spinner,
                stage,
                bar,
                count,
                percent,
                _SavedColumn(table_column=fixed()),
                eta,
                remaining,
            ),
            (
                spinner,
                stage,
                bar,
                count,
                _SavedColumn(rate=False, table_column=fixed()),
                eta,
                remaining,
            ),
            (spinner, stage, bar, count, _SavedColumn(rate=False, table_column=fixed())),
            (spinner, stage, count, _SavedColumn(rate=False, table_column=fixed())),
            (stage, count),
        ]
        super().__init__(*self._layouts[0], console=console, expand=True, **kwargs)

    def make_tasks_table(self, tasks: Any) -> Table:
        self.columns = self._fitting(tasks)
        return super().make_tasks_table(tasks)

    def _fitting(self, tasks: Any) -> tuple[ProgressColumn, ...]:
        width = self._out.width
        for layout in self._layouts:
            if all(self._width(layout, task) <= width for task in tasks):
                return layout
        return self._layouts[-1]

    def _width(self, layout: tuple[ProgressColumn, ...], task: Any) -> int:
        """Cells the columns need, with one between each (the grid's padding)."""
        total = len(layout) - 1
        for column in layout:
            if isinstance(column, BarColumn):
                total += self.MIN_BAR
                continue
            shown = column(task)
            total += shown.cell_len if isinstance(shown, Text) else natural_width(self._out, shown)
        return total


class _Renderer:
    """Turns batch events into a progress bar (terminal), lines (pipe) or nothing (quiet)."""

    def __init__(
        self, *, quiet: bool, json_out: bool, bar: bool, worker_wait: float = 60.0
    ) -> None:
        self.quiet = quiet
        self.worker_wait = worker_wait
        self.stage_description = "Starting"
        self.json_out = json_out
        self.console: Console = err_console()
        self.progress: Progress | None = None
        self.task_id: Any = None
        self.saved = 0
        self.failed = 0
        self.compress_started: float | None = None
        self.compress_done = 0
        if bar and not quiet:
            self.progress = _Bar(
                self.console,
                transient=False,
                # --json lines stay on stdout; only a stdout that is the terminal too goes
                # through the bar, so the lines print above it instead of through it
                redirect_stdout=_isatty(sys.stdout),
                redirect_stderr=False,
            )

    def __enter__(self) -> _Renderer:
        if self.progress is not None:
            self.progress.start()
            self.task_id = self.progress.add_task("Starting", total=None, saved=None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def line(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(text, markup=False, highlight=False)
        elif not self.quiet:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def workers(self, event: BatchEvent) -> None:
        """The cluster ran out of workers (``event.workers == 0``), or has some again."""
        if event.workers == 0:
            text = (
                "waiting for workers: the Dask cluster has none "
                f"(the batch stops after {self.worker_wait:g} s without one)"
            )
            description = "Waiting for workers"
        else:
            n = event.workers
            text = f"{n} worker{'s' if n != 1 else ''} back: resuming"
            description = self.stage_description
        if self.progress is not None:
            self.progress.update(self.task_id, description=description)
            self.progress.console.print(text, markup=False, highlight=False)
        elif self.quiet:
            pass
        else:
            self.line(text)

    def __call__(self, event: BatchEvent) -> None:
        if event.kind == "workers":
            self.workers(event)
            return
        if event.kind == "stage":
            self.stage_description = _STAGES.get(event.stage, event.stage)
            if event.stage == "compress":
                self.compress_started = time.perf_counter()
            if self.progress is not None:
                self.progress.reset(  # also restarts the rate and ETA estimates
                    self.task_id,
                    description=_STAGES.get(event.stage, event.stage),
                    total=event.total if event.stage != "palette" else None,
                    completed=event.done,
                    saved=self.saved if event.stage == "compress" else None,
                    failed=self.failed,
                )
            elif event.stage == "histograms":
                self.line(f"reading the colours of {event.total} files for a shared palette")
            elif event.stage == "palette":
                self.line("fitting the shared palette")
            return
        if event.kind == "histogram":
            if self.progress is not None:
                self.progress.update(self.task_id, completed=event.done)
            return
        result = event.result
        assert result is not None
        if self.json_out:
            sys.stdout.write(json.dumps(result.to_dict()) + "\n")
            sys.stdout.flush()
        if result.status == "ok":
            self.saved += result.bytes_in - result.bytes_out
            self.compress_done += 1
        elif result.status == "failed":
            self.failed += 1
        if self.progress is not None:
            elapsed = time.perf_counter() - (self.compress_started or time.perf_counter())
            rate = self.compress_done / elapsed if elapsed > 0 and self.compress_done else None
            if result.status == "failed":
                self.progress.console.print(
                    Text.assemble(("✗ ", "bold red"), (result.error or "failed", "red"))
                )
            if self.compress_started is None:  # a file failed while reading colours
                self.progress.update(self.task_id, failed=self.failed)
            else:
                self.progress.update(
                    self.task_id,
                    completed=event.done,
                    total=event.total,
                    saved=self.saved,
                    rate=rate,
                    failed=self.failed,
                )
        elif self.quiet:
            if result.status == "failed":
                error(result.error or f"{result.input}: failed")
        else:
            self.line(_plain(result))


def _stdin_paths() -> list[str]:
    """The paths listed on stdin (``-``), one a line."""
    from ..batch import read_path_list

    if sys.stdin is None:
        raise InputError("-: stdin is closed; pipe a list of paths in, one a line")
    if _isatty(sys.stdin):
        raise UsageError("-: stdin is a terminal; pipe a list of paths in, one a line")
    try:
        return read_path_list(sys.stdin)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"-: cannot read the list of paths on stdin: {exc}") from exc


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _grew(result: FileResult) -> bool:
    """A compressed file whose output is larger than its input (compress warns of it too)."""
    return result.status == "ok" and result.bytes_out > result.bytes_in


def _plain(result: FileResult) -> str:
    if result.status == "ok":
        r = result.report or {}
        grew = ", larger than the input" if _grew(result) else ""
        return (
            f"ok       {result.input} -> {result.output}  "
            f"{human_bytes(result.bytes_in)} -> {human_bytes(result.bytes_out)} "
            f"({r.get('ratio', 0):.1%}{grew})"
        )
    if result.status == "skipped":
        if result.reason and result.reason.startswith(result.input):
            return f"skipped  {result.reason}"
        return f"skipped  {result.input} -> {result.output} ({result.reason or 'up to date'})"
    return f"failed   {result.error}"


def render_summary(summary: BatchSummary, *, where: str) -> None:
    """The final summary on stderr: counts, sizes, ratio, time, and each failure."""
    console = err_console()
    rows: list[tuple[str, str]] = []
    grew = sum(_grew(r) for r in summary.results)
    larger = f" ({grew} larger than the input)" if grew else ""
    counts = f"{summary.ok} ok{larger}, {summary.skipped} skipped, {summary.failed} failed"
    if summary.not_done:
        counts += f", {summary.not_done} not done"
    rows.append(("files", f"{counts} (of {summary.total})"))
    if summary.ok:
        ratio = summary.ratio
        rows.append(
            (
                "size",
                f"{human_bytes(summary.bytes_in)} → {human_bytes(summary.bytes_out)}  "
                f"({ratio:.1%} of the input, {size_change(ratio)})",
            )
        )
    rate = f", {summary.ok / summary.seconds:.2f} files/s" if summary.ok else ""
    rows.append(("time", f"{summary.seconds:.1f} s{rate} on {where}"))
    if summary.palette_path:
        rows.append(("palette", summary.palette_path))
    if summary.interrupted:
        rest = "run the same command again to finish" if summary.not_done else "every file done"
        rows.append(("status", f"interrupted: {rest}"))
    elif summary.no_workers:
        rows.append(("status", "stopped: no Dask worker left; run the same command to finish"))
    elif summary.stopped:
        rows.append(("status", "stopped at the first failure (--fail-fast)"))
    print_fields(console, rows)
    if summary.failures:
        console.print(Text(f"failures ({summary.failed}):", style="bold red"))
        for r in summary.failures:
            print_line(console, f"  {r.error or r.input}")
    if summary.no_workers and summary.unfinished:
        console.print(Text(f"not done ({len(summary.unfinished)}):", style="bold"))
        for path in summary.unfinished[:_NOT_DONE_SHOWN]:
            print_line(console, f"  {path}")
        if len(summary.unfinished) > _NOT_DONE_SHOWN:
            print_line(console, f"  ... and {len(summary.unfinished) - _NOT_DONE_SHOWN} more")


def _dry_run(the_plan: Plan, *, json_out: bool, quiet: bool) -> None:
    rows: list[tuple[str, str, str, str | None]] = [
        (t.input, t.output, "planned", None) for t in the_plan.tasks
    ]
    rows += [(t.input, t.output, "skipped", None) for t in the_plan.skipped]
    rows += [(r.input, r.output, "failed", r.error) for r in the_plan.failed]
    for src, dst, status, why in rows:
        if json_out:
            doc = {"input": src, "output": dst, "status": status}
            if why:
                doc["error"] = why
            sys.stdout.write(json.dumps(doc) + "\n")
        elif status == "planned":
            sys.stdout.write(f"{src} -> {dst}\n")
        elif status == "skipped":
            sys.stdout.write(f"{src} -> {dst} (up to date, skipped)\n")
        else:
            sys.stdout.write(f"{src} -> {dst} (refused: {why})\n")
    sys.stdout.flush()
    if not quiet:
        p = the_plan
        sys.stderr.write(
            f"dry run: {len(p.tasks)} planned, {len(p.skipped)} up to date, "
            f"{len(p.failed)} refused; nothing written\n"
        )
        sys.stderr.flush()


@quantize_options()
def batch(
    inputs: Annotated[
        list[str],
        typer.Argument(
            metavar="INPUT",
            show_default=False,
            help="Image files, folders, or - to read newline-separated paths from stdin.",
        ),
    ],
    outdir: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            metavar="OUTDIR",
            file_okay=False,
            help="Output folder (created if missing); the input tree is mirrored under it.",
        ),
    ],
    *,
    options: QuantizeOptions,
    strip: Strip = False,
    optimize: Optimize = None,
    max_pixels: MaxPixels = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="|".join(FORMATS),
            rich_help_panel=FILES,
            help="Output format of every file.",
            case_sensitive=False,
        ),
    ] = "png",
    recursive: Annotated[
        bool,
        typer.Option(
            "--recursive",
            "-r",
            rich_help_panel=FILES,
            help="Descend into sub-folders of folder inputs.",
        ),
    ] = False,
    globs: Annotated[
        list[str] | None,
        typer.Option(
            "--glob",
            metavar="PATTERN",
            rich_help_panel=FILES,
            help="File-name pattern for folder inputs, e.g. '*.png'; repeat for more. "
            "Default: every extension Pillow reads.",
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            metavar="N",
            show_default=False,
            rich_help_panel=PERFORMANCE,
            help="Worker processes. Default: the number of cores.",
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            metavar="ADDRESS",
            rich_help_panel=PERFORMANCE,
            help="Run on an existing Dask distributed cluster (e.g. tcp://host:8786); needs "
            "pip install 'kmeanscli[dask]' and paths the workers can see.",
        ),
    ] = None,
    scheduler_timeout: Annotated[
        float,
        typer.Option(
            "--scheduler-timeout",
            min=0.1,
            metavar="SECONDS",
            rich_help_panel=PERFORMANCE,
            help="With --scheduler: give up connecting after this long (a refused port fails "
            "at once).",
        ),
    ] = 5.0,
    worker_wait: Annotated[
        float,
        typer.Option(
            "--worker-wait",
            min=0,
            metavar="SECONDS",
            rich_help_panel=PERFORMANCE,
            help="With --scheduler: while the cluster has no worker, wait this long for one, "
            "then stop and list the files not done (exit status 4).",
        ),
    ] = 60.0,
    force: Annotated[
        bool,
        typer.Option(
            "--force", "-f", help="Redo outputs that already exist and are newer than the input."
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", "-n", help="List what would be done (on stdout) and stop."),
    ] = False,
    fail_fast: Annotated[
        bool,
        typer.Option(
            "--fail-fast", rich_help_panel=FILES, help="Stop at the first file that fails."
        ),
    ] = False,
    shared_palette: Annotated[
        bool,
        typer.Option(
            "--shared-palette",
            rich_help_panel=PALETTES,
            help="Fit one palette on all inputs, use it for every file and write it to "
            "OUTDIR/palette.json.",
        ),
    ] = False,
    json_out: Annotated[
        bool,
        typer.Option("--json", help="One JSON line per file on stdout as it finishes."),
    ] = False,
    quiet: Quiet = False,
    skip_if_larger: SkipIfLarger = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            metavar="PAGE.html",
            dir_okay=False,
            rich_help_panel=FILES,
            help="Also write one HTML page of the run: every file with thumbnails, sizes, "
            "ratio, PSNR and k, and a before/after view of each (replaced on every run).",
        ),
    ] = None,
) -> int:
    """Compress many images at once, in parallel, into an output folder.

    Each file is compressed as compress would, to OUTDIR/<path>/<stem>-k<K>.<ext>.

    Outputs newer than their input are skipped: run an interrupted batch again to finish it.

    Exit status 3: some files failed (the others were done). Exit status 4 (--scheduler):
    the Dask cluster had no worker for --worker-wait seconds; the files not done are listed
    and the same command finishes them.

    Examples:

      kmeanscli batch photos/ -r -o out/ -k 16

      find assets -name '*.png' | kmeanscli batch - -o small/ -j 4 --json

      kmeanscli batch frames/ -o out/ --shared-palette -k 32

      kmeanscli batch photos/ -r -o out/ --target-psnr 35 --skip-if-larger
    """
    from ..batch import BatchOptions, make_executor, parse_scheduler_address, plan, run_batch

    if scheduler and jobs is not None:
        raise UsageError("give -j/--jobs (local workers) or --scheduler (Dask), not both")
    if scheduler is not None:
        try:
            parse_scheduler_address(scheduler)
        except ValueError as exc:
            raise UsageError(f"--scheduler {scheduler!r}: {exc}") from None
    if inputs.count("-") > 1:
        raise UsageError("- (paths on stdin) can be given only once")
    batch_options = BatchOptions(
        options,
        format=fmt.lower(),
        strip=strip,
        optimize=optimize,
        max_pixels=max_pixels,
        skip_if_larger=skip_if_larger,
        shared_palette=shared_palette,
    )
    check_palette_paths(options)
    if isinstance(options.palette, str):
        from ..api import load_palette

        load_palette(options.palette)  # a bad palette file is one error before any work
    paths: list[str] = []
    for item in inputs:
        paths.extend(_stdin_paths() if item == "-" else [item])

    if report is not None:
        from .report import check_report_path

        check_report_path(report, [Path(p) for p in paths if p != "-"], force=True)
    the_plan = plan(paths, outdir, batch_options, recursive=recursive, globs=globs, force=force)
    if dry_run:
        _dry_run(the_plan, json_out=json_out, quiet=quiet)
        return ExitStatus.OK

    executor = make_executor(
        jobs, scheduler, scheduler_timeout=scheduler_timeout, worker_wait=worker_wait
    )
    renderer = _Renderer(
        quiet=quiet, json_out=json_out, bar=progress_enabled(quiet), worker_wait=worker_wait
    )
    summary: BatchSummary | None = None
    try:
        with executor, renderer:
            summary = run_batch(the_plan, executor, on_event=renderer, fail_fast=fail_fast)
    except KeyboardInterrupt:  # before run_batch took charge of Ctrl-C, or as it ended
        if summary is None:
            from ..batch import BatchSummary

            summary = BatchSummary(total=the_plan.total)
        summary.interrupted = True
    if not quiet:
        render_summary(summary, where=executor.description)
    if report is not None:
        from .report import write_batch_report

        write_batch_report(report, summary, quiet=quiet)
    if summary.interrupted:
        return ExitStatus.INTERRUPTED
    if summary.no_workers:
        error(summary.no_workers)
        return ExitStatus.NO_WORKERS
    if summary.failed:
        return ExitStatus.SOME_FAILED
    return ExitStatus.OK
