"""Many images at once: planning, parallel execution, resume and a shared palette.

The orchestration behind ``kmeanscli batch``, usable without the CLI; it never prints.

- :mod:`.model`: :class:`BatchOptions` (the :class:`~kmeanscli.QuantizeOptions` of every
  file plus the batch's own), :class:`Task`, :class:`FileResult`, :class:`Plan`,
  :class:`BatchEvent` and :class:`BatchSummary`.
- :mod:`.plan`: :func:`plan` turns files, folders and path lists into tasks (input ->
  output under an output folder that mirrors the input tree) and decides what is up to date.
- :mod:`.tasks`: what runs in a worker; each file goes through
  :func:`kmeanscli.compress_file`, so there is one code path per file.
- :mod:`.executors`: :class:`ProcessExecutor` (a local process pool, heavy imports and thread
  limits set once per worker) or :class:`DaskExecutor` (an existing Dask cluster).
- :mod:`.run`: :func:`run_batch` runs a plan on an executor, reports every finished file
  through a callback and returns the summary. Ctrl-C (``KeyboardInterrupt``) stops the
  workers, removes their temporary files and returns the summary so far.

Example::

    from kmeanscli import QuantizeOptions
    from kmeanscli.batch import BatchOptions, make_executor, plan, run_batch

    p = plan(["photos"], "out", BatchOptions(QuantizeOptions(k=16)), recursive=True)
    with make_executor(jobs=2) as ex:
        summary = run_batch(p, ex, on_event=print)
    print(summary.ok, summary.failed, summary.ratio)
"""

from __future__ import annotations

from .executors import (
    DaskExecutor,
    Executor,
    NoWorkers,
    ProcessExecutor,
    SchedulerError,
    WorkerDied,
    make_executor,
    parse_scheduler_address,
)
from .model import (
    FORMATS,
    PALETTE_FILE,
    BatchEvent,
    BatchOptions,
    BatchSummary,
    FileResult,
    Plan,
    Task,
)
from .plan import image_extensions, plan, read_path_list
from .run import run_batch
from .tasks import compress_task, fit_palette_task, histogram_task

__all__ = [
    "FORMATS",
    "PALETTE_FILE",
    "BatchEvent",
    "BatchOptions",
    "BatchSummary",
    "DaskExecutor",
    "Executor",
    "FileResult",
    "NoWorkers",
    "Plan",
    "ProcessExecutor",
    "SchedulerError",
    "Task",
    "WorkerDied",
    "compress_task",
    "fit_palette_task",
    "histogram_task",
    "image_extensions",
    "make_executor",
    "parse_scheduler_address",
    "plan",
    "read_path_list",
    "run_batch",
]
