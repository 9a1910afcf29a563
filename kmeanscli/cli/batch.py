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
from rich.table import Table
from rich.text import Text

from ..constants import BATCH_FORMATS as FORMATS
from ..errors import InputError, UsageError
from .console import err_console, error, human_bytes, progress_enabled
from .inputs import check_palette_paths
from .options import MaxPixels, Quiet, SkipIfLarger, Strip, quantize_options
from .status import ExitStatus

if TYPE_CHECKING:
    from ..batch import BatchEvent, BatchSummary, FileResult, Plan
    from ..options import QuantizeOptions

_STAGES = {
    "histograms": "Reading colours",
    "palette": "Fitting palette",
    "compress": "Compressing",
}


class _SavedColumn(ProgressColumn):
    """Bytes saved so far, files per second and failures."""

    def render(self, task: Any) -> Text:
        f = task.fields
        text = Text()
        if f.get("saved") is not None:
            text.append(f"saved {human_bytes(f['saved'])}", style="green")
        rate = f.get("rate")
        if rate:
            text.append(f"  {rate:.1f} files/s")
        if f.get("failed"):
            text.append(f"  {f['failed']} failed", style="bold red")
        return text


class _Renderer:
    """Turns batch events into a progress bar (terminal), lines (pipe) or nothing (quiet)."""

    def __init__(self, *, quiet: bool, json_out: bool, bar: bool) -> None:
        self.quiet = quiet
        self.json_out = json_out
        self.console: Console = err_console()
        self.progress: Progress | None = None
        self.task_id: Any = None
        self.saved = 0
        self.failed = 0
        self.compress_started: float | None = None
        self.compress_done = 0
        if bar and not quiet:
            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                _SavedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
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

    def __call__(self, event: BatchEvent) -> None:
        if event.kind == "stage":
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
    """The final table on stderr: counts, sizes, ratio, time, and each failure."""
    console = err_console()
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    grew = sum(_grew(r) for r in summary.results)
    larger = f" ({grew} larger than the input)" if grew else ""
    counts = f"{summary.ok} ok{larger}, {summary.skipped} skipped, {summary.failed} failed"
    if summary.not_done:
        counts += f", {summary.not_done} not done"
    table.add_row("files", f"{counts} (of {summary.total})")
    if summary.ok:
        ratio = summary.ratio
        smaller = f"{1 / ratio:.1f}× smaller" if ratio < 1 else f"{ratio:.2f}× larger"
        table.add_row(
            "size",
            f"{human_bytes(summary.bytes_in)} → {human_bytes(summary.bytes_out)}  "
            f"({ratio:.1%} of the input, {smaller})",
        )
    rate = f", {summary.ok / summary.seconds:.2f} files/s" if summary.ok else ""
    table.add_row("time", f"{summary.seconds:.1f} s{rate} on {where}")
    if summary.palette_path:
        table.add_row("palette", Text(summary.palette_path))
    if summary.interrupted:
        table.add_row("status", Text("interrupted: run the same command again to finish"))
    elif summary.stopped:
        table.add_row("status", Text("stopped at the first failure (--fail-fast)"))
    console.print(table)
    if summary.failures:
        console.print(Text(f"failures ({summary.failed}):", style="bold red"))
        for r in summary.failures:
            console.print(Text(f"  {r.error or r.input}"), soft_wrap=True)


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
    max_pixels: MaxPixels = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="|".join(FORMATS),
            help="Output format of every file.",
            case_sensitive=False,
        ),
    ] = "png",
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Descend into sub-folders of folder inputs.")
    ] = False,
    globs: Annotated[
        list[str] | None,
        typer.Option(
            "--glob",
            metavar="PATTERN",
            help="File-name pattern for folder inputs, e.g. '*.png' (repeatable; default: "
            "every extension Pillow reads).",
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
            help="Worker processes (default: the number of cores).",
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            metavar="ADDRESS",
            help="Run on an existing Dask distributed cluster (e.g. tcp://host:8786); needs "
            "pip install 'kmeanscli\\[dask]' and paths the workers can see.",
        ),
    ] = None,
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
        bool, typer.Option("--fail-fast", help="Stop at the first file that fails.")
    ] = False,
    shared_palette: Annotated[
        bool,
        typer.Option(
            "--shared-palette",
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
) -> int:
    """Compress many images at once, in parallel, into an output folder.

    Each file is compressed as compress would, to OUTDIR/<path>/<stem>-k<K>.<ext>.

    Outputs newer than their input are skipped: run an interrupted batch again to finish it.

    Exit status 3: some files failed (the others were done).

    Examples:

      kmeanscli batch photos/ -r -o out/ -k 16

      find assets -name '*.png' | kmeanscli batch - -o small/ -j 4 --json

      kmeanscli batch frames/ -o out/ --shared-palette -k 32

      kmeanscli batch photos/ -r -o out/ --target-psnr 35 --skip-if-larger
    """
    from ..batch import BatchOptions, make_executor, plan, run_batch

    if scheduler and jobs is not None:
        raise UsageError("give -j/--jobs (local workers) or --scheduler (Dask), not both")
    if inputs.count("-") > 1:
        raise UsageError("- (paths on stdin) can be given only once")
    batch_options = BatchOptions(
        options,
        format=fmt.lower(),
        strip=strip,
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

    the_plan = plan(paths, outdir, batch_options, recursive=recursive, globs=globs, force=force)
    if dry_run:
        _dry_run(the_plan, json_out=json_out, quiet=quiet)
        return ExitStatus.OK

    executor = make_executor(jobs, scheduler)
    renderer = _Renderer(quiet=quiet, json_out=json_out, bar=progress_enabled(quiet))
    with executor, renderer:
        summary = run_batch(the_plan, executor, on_event=renderer, fail_fast=fail_fast)
    if not quiet:
        render_summary(summary, where=executor.description)
    if summary.interrupted:
        return ExitStatus.INTERRUPTED
    if summary.failed:
        return ExitStatus.SOME_FAILED
    return ExitStatus.OK
