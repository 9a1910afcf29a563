"""The data of a batch run: its options, tasks, per-file results, events and summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import BATCH_FORMATS as FORMATS
from ..constants import PNG_LEVELS
from ..errors import KmeansCliError
from ..options import OptionsError, QuantizeOptions

__all__ = [
    "FORMATS",
    "PALETTE_FILE",
    "BatchEvent",
    "BatchOptions",
    "BatchSummary",
    "FileResult",
    "Plan",
    "Task",
    "describe_error",
]

PALETTE_FILE = "palette.json"
"""Name of the shared palette written in the output folder."""


@dataclass(frozen=True)
class BatchOptions:
    """What is done to every file of a batch.

    ``quantize`` holds the ``compress`` options (the same object
    :func:`kmeanscli.compress_file` takes, so a file gets the same bytes as from
    ``compress``); the others are the batch's own: the output ``format``, ``strip``,
    ``optimize`` and ``max_pixels`` as for ``compress_file``, ``skip_if_larger`` (a file
    whose output would not be smaller is reported as skipped) and ``shared_palette`` (one
    palette fitted on all files, see :func:`kmeanscli.batch.run_batch`).

    Raises
    ------
    OptionsError
        For an unknown format, or a shared palette with a fixed palette or quality targets.
    """

    quantize: QuantizeOptions = field(default_factory=QuantizeOptions)
    format: str = "png"
    strip: bool = False
    optimize: int | None = None
    max_pixels: int | None = None
    skip_if_larger: bool = False
    shared_palette: bool = False

    def __post_init__(self) -> None:
        if self.optimize is not None and self.optimize not in PNG_LEVELS:
            raise OptionsError("{} must be 0, 1 or 2", "optimize")
        if self.format not in FORMATS:
            raise OptionsError(f"{{}} must be one of {', '.join(FORMATS)}", "format")
        if self.shared_palette and self.quantize.targets:
            raise OptionsError(
                "{} cannot go with {} (each file's own k)", "shared_palette", "targets"
            )
        if self.shared_palette and self.quantize.palette is not None:
            raise OptionsError("{} and {} do not go together", "shared_palette", "palette")

    @property
    def extension(self) -> str:
        """The output files' extension, with its dot."""
        return FORMATS[self.format]


def describe_error(exc: BaseException, name: str | None = None) -> str:
    """A one-line reason, starting with the file's name when there is one."""
    if isinstance(exc, KmeansCliError):
        text = str(exc)
    elif isinstance(exc, MemoryError):
        text = "out of memory"
    else:
        text = f"{type(exc).__name__}: {exc}".rstrip(": ")
    text = " ".join(text.split())
    if name and not text.startswith(name):
        text = f"{name}: {text}"
    return text


@dataclass(frozen=True)
class Task:
    """One input file and the output it goes to (paths as they are shown to the user)."""

    input: str
    output: str


@dataclass(frozen=True)
class FileResult:
    """How one file went: ``status`` is ``"ok"``, ``"skipped"`` or ``"failed"``.

    ``report`` holds :meth:`kmeanscli.CompressReport.to_dict` for a compressed file;
    ``error`` the reason of a failure, ``reason`` that of a skip. With quality targets the
    ``output`` of a file not compressed is a pattern, ``<stem>-k*.<ext>``.
    """

    input: str
    output: str
    status: str
    error: str | None = None
    report: dict[str, Any] | None = None
    reason: str | None = None
    """Why a file was skipped (``up to date``, or why its output was not written)."""

    @classmethod
    def failure(cls, task: Task, exc: BaseException) -> FileResult:
        """A failed file, with the reason of ``exc``."""
        return cls(task.input, task.output, "failed", error=describe_error(exc, task.input))

    @property
    def bytes_in(self) -> int:
        """Input size of a compressed file (0 otherwise)."""
        return int(self.report["bytes_in"]) if self.report else 0

    @property
    def bytes_out(self) -> int:
        """Output size of a compressed file (0 otherwise)."""
        return int(self.report["bytes_out"]) if self.report else 0

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` line: the ``compress`` fields (when compressed) plus ``status``."""
        out: dict[str, Any] = dict(self.report) if self.report else {}
        out.setdefault("input", self.input)
        out.setdefault("output", self.output)
        out["status"] = self.status
        if self.reason is not None:
            out["reason"] = self.reason
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass(frozen=True)
class Plan:
    """What a batch run will do.

    ``tasks`` are the files to compress, ``skipped`` those whose output is up to date, and
    ``failed`` those refused before any work (e.g. two inputs that would write one output).
    """

    outdir: Path
    options: BatchOptions
    tasks: list[Task]
    skipped: list[Task] = field(default_factory=list)
    failed: list[FileResult] = field(default_factory=list)
    force: bool = False

    @property
    def total(self) -> int:
        """Number of input files found."""
        return len(self.tasks) + len(self.skipped) + len(self.failed)


@dataclass(frozen=True)
class BatchEvent:
    """A progress event from :func:`run_batch`.

    ``kind`` is ``"stage"`` when a stage starts (``stage`` = ``"histograms"``, ``"palette"``
    or ``"compress"``), ``"histogram"`` when one file's colour histogram is done, and
    ``"file"`` when a file is finished (``result`` set). ``done``/``total`` count the files
    of the current stage (for ``"file"`` events, skipped and refused files included).
    ``kind`` is ``"workers"`` when a Dask cluster has no worker left (``workers`` = 0: the
    run waits) and when workers are back (``workers`` > 0).
    """

    kind: str
    stage: str
    done: int
    total: int
    result: FileResult | None = None
    workers: int | None = None


@dataclass
class BatchSummary:
    """The outcome of :func:`run_batch`."""

    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    total: int = 0
    interrupted: bool = False
    stopped: bool = False
    """Stopped early by ``fail_fast``."""
    no_workers: str | None = None
    """Why the run stopped when a Dask cluster had no worker left (``worker_wait``)."""
    unfinished: list[str] = field(default_factory=list)
    """The inputs not done when the run stopped early (Ctrl-C, ``fail_fast``, no workers)."""
    palette_path: str | None = None
    palette: np.ndarray | None = None

    def _count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def ok(self) -> int:
        """Files compressed."""
        return self._count("ok")

    @property
    def skipped(self) -> int:
        """Files whose output was already up to date."""
        return self._count("skipped")

    @property
    def failed(self) -> int:
        """Files that failed."""
        return self._count("failed")

    @property
    def not_done(self) -> int:
        """Files not reached (interrupted or stopped early)."""
        return self.total - len(self.results)

    @property
    def bytes_in(self) -> int:
        """Total input size of the compressed files."""
        return sum(r.bytes_in for r in self.results)

    @property
    def bytes_out(self) -> int:
        """Total output size of the compressed files."""
        return sum(r.bytes_out for r in self.results)

    @property
    def ratio(self) -> float:
        """``bytes_out / bytes_in`` of the compressed files (nan when none)."""
        return self.bytes_out / self.bytes_in if self.bytes_in else float("nan")

    @property
    def failures(self) -> list[FileResult]:
        """The failed files, in the order they failed."""
        return [r for r in self.results if r.status == "failed"]
