"""Running a batch plan on an executor: the shared palette, the files, Ctrl-C, the summary."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from ..errors import InputError, KmeansCliError, OutputError
from .executors import Executor, NoWorkers
from .model import (
    PALETTE_FILE,
    BatchEvent,
    BatchOptions,
    BatchSummary,
    FileResult,
    Plan,
    Task,
    describe_error,
)
from .tasks import compress_task, fit_palette_task, histogram_task

__all__ = ["run_batch"]

_HISTOGRAM_COLORS = 16_384  # per-image sample size of a shared-palette histogram ...
_HISTOGRAM_MIN_COLORS = 1_024  # ... down to this for very large sets,
_HISTOGRAM_BUDGET = 2_000_000  # so that all of them hold about this many colours


def _remove_temporaries(tasks: Iterable[Task]) -> None:
    """Remove the temporary files of these outputs that no process is writing: those of an
    interrupted run, or left by a worker that was killed (:func:`remove_stale_temporaries`)."""
    from ..imageio import remove_stale_temporaries

    by_folder: dict[Path, set[str]] = {}
    for t in tasks:
        dst = Path(t.output)
        by_folder.setdefault(dst.parent, set()).add(dst.name)
    for folder, names in by_folder.items():
        remove_stale_temporaries(folder, names)


def _palette_json(palette: np.ndarray, options: BatchOptions, files: int) -> bytes:
    """``palette.json`` in the format ``--palette`` reads (:mod:`kmeanscli.core.palette_io`)."""
    from ..core.palette_io import dumps

    q = options.quantize
    name = f"kmeanscli batch --shared-palette: k={q.colors}, seed={q.seed}, {files} files"
    return dumps(palette, "json", name=name)


def _read_palette(path: Path) -> list[list[int]] | None:
    from ..core.palette_io import loads

    try:
        return loads(path.read_bytes(), "json", name=str(path)).astype(int).tolist()
    except (OSError, KmeansCliError):
        return None


def run_batch(
    the_plan: Plan,
    executor: Executor,
    *,
    on_event: Callable[[BatchEvent], None] | None = None,
    fail_fast: bool = False,
) -> BatchSummary:
    """Run a plan: compress every file it lists, reporting each as it finishes.

    With ``shared_palette`` in the plan's options, one palette is first fitted on the colour
    histograms of all inputs (each colour weighted by its pixel count; each image's histogram
    sampled to at most 16,384 colours, fewer - down to 1,024 - when there are more than about
    120 files, and the merged one to 65,536) with the same fit and options as ``compress``,
    written to ``OUTDIR/palette.json``, and every file is mapped onto it. The fit runs on the
    executor too. When it differs from the ``palette.json`` already there, the outputs that
    would have been skipped are redone.

    Parameters
    ----------
    the_plan : Plan
        From :func:`plan`.
    executor : Executor
        Where the per-file tasks run.
    on_event : callable, optional
        Called in this process with each :class:`BatchEvent`.
    fail_fast : bool, optional
        Stop at the first failure (the summary's ``stopped`` is then True).

    Returns
    -------
    BatchSummary
        With ``interrupted`` set when Ctrl-C stopped the run; files not reached are not in
        ``results`` and a later run does them.

    Raises
    ------
    OutputError
        The output folder cannot be created or written.
    """
    run = _Run(the_plan, executor, on_event or (lambda _e: None), fail_fast)
    executor.on_workers = run.workers
    run.make_outdir()
    try:
        run.refused()
        if the_plan.options.shared_palette:
            run.fit_shared_palette(run.read_histograms())
        run.compress()
    except _Stopped:
        run.summary.stopped = True
    except NoWorkers as exc:
        _stop(executor, run.todo)
        run.summary.no_workers = str(exc)
    except KeyboardInterrupt:
        _stop(executor, run.todo)
        run.summary.interrupted = True
    finally:
        executor.on_workers = None
        run.summary.seconds = time.perf_counter() - run.started
        run.summary.unfinished = run.unfinished()
    return run.summary


class _Stopped(Exception):
    """``fail_fast``: a file failed."""


class _Run:
    """:func:`run_batch`'s stages, in order: make_outdir -> refused -> (read_histograms ->
    fit_shared_palette) -> compress."""

    def __init__(
        self,
        the_plan: Plan,
        executor: Executor,
        emit: Callable[[BatchEvent], None],
        fail_fast: bool,
    ) -> None:
        self.started = time.perf_counter()
        self.plan, self.executor, self.emit, self.fail_fast = the_plan, executor, emit, fail_fast
        self.options = the_plan.options
        self.summary = BatchSummary(total=the_plan.total)
        self.todo = list(the_plan.tasks)
        self.skipped = list(the_plan.skipped)
        self.palette: np.ndarray | None = None
        self.done = 0
        self.stage = "compress"

    def workers(self, n: int) -> None:
        """The executor's cluster has ``n`` workers now (0: it waits for some)."""
        self.emit(BatchEvent("workers", self.stage, self.done, self.plan.total, workers=n))

    def unfinished(self) -> list[str]:
        """The inputs with no result yet, in plan order."""
        finished = {r.input for r in self.summary.results}
        return [t.input for t in self.plan.tasks + self.plan.skipped if t.input not in finished]

    def finish(self, result: FileResult, *, stop: bool = True) -> None:
        """Report a finished file; with ``fail_fast`` a failure stops the run (``stop``)."""
        self.done += 1
        self.summary.results.append(result)
        self.emit(BatchEvent("file", "compress", self.done, self.plan.total, result))
        if stop and self.fail_fast and result.status == "failed":
            raise _Stopped

    def make_outdir(self) -> None:
        outdir = self.plan.outdir
        try:
            outdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"{outdir}: cannot create the output folder: {exc.strerror or exc}"
            ) from exc
        from ..imageio import cannot_create_in

        reason = cannot_create_in(outdir)
        if reason is not None:
            raise OutputError(f"{outdir}: the output folder is not writable ({reason})")

    def refused(self) -> None:
        """The files the plan refused (e.g. two inputs with one output)."""
        for result in self.plan.failed:
            self.finish(result, stop=False)
        if self.fail_fast and self.plan.failed:
            raise _Stopped

    def read_histograms(self) -> list[tuple[np.ndarray, np.ndarray, bool]]:
        """Every input's colour histogram, in input order; failed files are finished."""
        everything = self.todo + self.skipped
        order = {t: i for i, t in enumerate(everything)}
        self.stage = "histograms"
        self.emit(BatchEvent("stage", "histograms", 0, len(everything)))
        per_file = _HISTOGRAM_BUDGET // max(1, len(everything))
        per_file = min(_HISTOGRAM_COLORS, max(_HISTOGRAM_MIN_COLORS, per_file))
        found: dict[int, tuple[np.ndarray, np.ndarray, bool]] = {}
        bad: set[Task] = set()
        outcomes = self.executor.map_unordered(histogram_task, everything, self.options, per_file)
        for n, (task, out, exc) in enumerate(outcomes, start=1):
            if exc is not None:
                out = FileResult.failure(task, exc)
            if isinstance(out, FileResult):
                bad.add(task)
                try:
                    self.finish(out)
                except _Stopped:
                    self.executor.terminate()
                    raise
            else:
                found[order[task]] = out
            self.emit(BatchEvent("histogram", "histograms", n, len(everything)))
        self.todo = [t for t in self.todo if t not in bad]
        self.skipped = [t for t in self.skipped if t not in bad]
        # in input order (not arrival order): the same palette every run
        return [found[i] for i in sorted(found)]

    def fit_shared_palette(self, histograms: list[tuple[np.ndarray, np.ndarray, bool]]) -> None:
        """Fit the shared palette (on a worker) and write ``palette.json`` when it changed."""
        if not histograms:
            return
        from ..core.palette import DEFAULT_MAX_COLORS, merge_histograms, sample_histogram

        self.stage = "palette"
        self.emit(BatchEvent("stage", "palette", 0, 1))
        q = self.options.quantize
        k = q.colors - 1 if any(h[2] for h in histograms) else q.colors  # + transparent
        merged = merge_histograms((colors, counts) for colors, counts, _ in histograms)
        merged = sample_histogram(*merged, DEFAULT_MAX_COLORS, seed=q.seed)
        ((_, palette, exc),) = list(
            self.executor.map_unordered(fit_palette_task, [merged], self.options, k)
        )
        if exc is not None:
            raise InputError(f"cannot fit a shared palette: {describe_error(exc)}") from exc
        path = self.plan.outdir / PALETTE_FILE
        if _read_palette(path) != palette.astype(int).tolist():
            self.todo, self.skipped = self.todo + self.skipped, []  # made with another palette
            from ..imageio import atomic_write

            with atomic_write(path) as fh:
                fh.write(_palette_json(palette, self.options, len(histograms)))
        self.summary.palette_path = str(path)
        self.summary.palette = self.palette = palette

    def compress(self) -> None:
        """Report the up-to-date files, then compress the others as they finish (first
        removing what an earlier run that was killed left half-written)."""
        _remove_temporaries([*self.todo, *self.skipped])
        for task in self.skipped:
            self.finish(FileResult(task.input, task.output, "skipped", reason="up to date"))
        self.stage = "compress"
        self.emit(BatchEvent("stage", "compress", self.done, self.plan.total))
        for folder in sorted({Path(t.output).parent for t in self.todo}):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"{folder}: cannot create folder: {exc.strerror or exc}") from exc
        outcomes = self.executor.map_unordered(compress_task, self.todo, self.options, self.palette)
        for task, out, exc in outcomes:
            try:
                self.finish(out if exc is None else FileResult.failure(task, exc))
            except _Stopped:
                _stop(self.executor, self.todo)
                raise


def _stop(executor: Executor, tasks: list[Task]) -> None:
    """Stop the executor (however many Ctrl-Cs land meanwhile), then remove temporaries."""
    while True:
        try:
            executor.terminate()  # (it finishes what an interrupted call left)
            break
        except KeyboardInterrupt:  # another Ctrl-C: the clean-up is what it asks for
            continue
    _remove_temporaries(tasks)
