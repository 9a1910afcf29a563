"""Many images at once: planning, parallel execution, resume and a shared palette.

The orchestration behind ``kmeanscli batch``, usable without the CLI; it never prints.

- :func:`plan` turns files, folders and path lists into :class:`Task` s (input -> output under
  an output folder that mirrors the input tree) and decides what is already up to date.
- An :class:`Executor` runs per-file tasks: :class:`ProcessExecutor` (a local process pool,
  heavy imports and BLAS/OpenMP thread limits set once per worker) or :class:`DaskExecutor`
  (an existing Dask distributed cluster). Both run the same task functions, which call
  :func:`kmeanscli.compress_file`: there is one code path per file.
- :func:`run_batch` runs a plan on an executor, reports every finished file through a callback
  (:class:`BatchEvent`) and returns a :class:`BatchSummary`. Ctrl-C (``KeyboardInterrupt``)
  stops the workers, removes their temporary files and returns the summary so far.

Example::

    from kmeanscli.batch import BatchOptions, ProcessExecutor, plan, run_batch

    p = plan(["photos"], "out", BatchOptions(k=16), recursive=True)
    with ProcessExecutor(jobs=2) as ex:
        summary = run_batch(p, ex, on_event=print)
    print(summary.ok, summary.failed, summary.ratio)
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from .constants import BATCH_FORMATS as FORMATS
from .constants import DEFAULT_MAX_ITER
from .errors import InputError, KmeansCliError, NotSmallerError, OutputError, UsageError

if TYPE_CHECKING:
    from .core.search import Target

__all__ = [
    "FORMATS",
    "PALETTE_FILE",
    "BatchEvent",
    "BatchOptions",
    "BatchSummary",
    "DaskExecutor",
    "Executor",
    "FileResult",
    "Plan",
    "ProcessExecutor",
    "Task",
    "WorkerDied",
    "compress_task",
    "fit_palette_task",
    "histogram_task",
    "image_extensions",
    "make_executor",
    "plan",
    "read_path_list",
    "run_batch",
]


PALETTE_FILE = "palette.json"
"""Name of the shared palette written in the output folder."""

_HISTOGRAM_COLORS = 16_384  # per-image sample size of a shared-palette histogram ...
_HISTOGRAM_MIN_COLORS = 1_024  # ... down to this for very large sets,
_HISTOGRAM_BUDGET = 2_000_000  # so that all of them hold about this many colours


@dataclass(frozen=True)
class BatchOptions:
    """The ``compress`` options applied to every file (see :func:`kmeanscli.compress_file`)."""

    k: int = 16
    seed: int = 0
    max_iter: int = DEFAULT_MAX_ITER
    batch_size: int = 4096  # MiniBatchKMeans, for the shared palette only
    strip: bool = False
    max_pixels: int | None = None
    format: str = "png"
    space: str = "rgb"
    dither: str = "none"
    dither_strength: float = 1.0
    keep_colors: tuple[str, ...] = ()
    restarts: int = 1
    palette: str | None = None
    """A fixed palette file (``--palette``): every file is mapped onto it, no k-means."""
    targets: tuple[Target, ...] = ()
    """Quality targets (:func:`kmeanscli.core.search.make_targets`): each file gets the
    smallest k that meets them, and its output is named after that k."""
    skip_if_larger: bool = False
    """Write nothing for a file whose output would not be smaller (reported as skipped)."""

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise UsageError(
                f"unknown batch format {self.format!r}; use one of {', '.join(FORMATS)}"
            )
        object.__setattr__(self, "targets", tuple(self.targets))
        object.__setattr__(self, "keep_colors", tuple(self.keep_colors))

    @property
    def extension(self) -> str:
        """The output files' extension, with its dot."""
        return FORMATS[self.format]


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
    """

    kind: str
    stage: str
    done: int
    total: int
    result: FileResult | None = None


@dataclass
class BatchSummary:
    """The outcome of :func:`run_batch`."""

    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    total: int = 0
    interrupted: bool = False
    stopped: bool = False
    """Stopped early by ``fail_fast``."""
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


# --------------------------------------------------------------------------- planning


def image_extensions() -> frozenset[str]:
    """File extensions (lower case, with the dot) of the image formats Pillow reads."""
    from PIL import Image

    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def read_path_list(stream: TextIO) -> list[str]:
    """Newline-separated paths (blank lines ignored), as ``find`` prints them."""
    return [line.rstrip("\r\n") for line in stream if line.strip()]


def _matcher(globs: Sequence[str] | None) -> Callable[[str], bool]:
    if globs:
        patterns = [g.lower() for g in globs]
        return lambda name: any(fnmatch.fnmatchcase(name.lower(), p) for p in patterns)
    exts = image_extensions()
    return lambda name: os.path.splitext(name)[1].lower() in exts


def _walk(
    root: Path, recursive: bool, match: Callable[[str], bool], skip: str | None
) -> list[Path]:
    found: list[Path] = []
    if not recursive:
        with os.scandir(root) as it:
            entries = sorted(it, key=lambda e: e.name)
        return [
            root / e.name
            for e in entries
            if not e.name.startswith(".") and e.is_file() and match(e.name)
        ]
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".") and os.path.abspath(os.path.join(dirpath, d)) != skip
        )
        here = Path(dirpath)
        found.extend(
            here / name for name in sorted(filenames) if not name.startswith(".") and match(name)
        )
    return found


def _mtime_ns(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _newest_output(
    folder: Path, stem: str, ext: str, listings: dict[Path, list[os.DirEntry[str]]]
) -> int | None:
    """The newest modification time of ``<stem>-k<digits><ext>`` in ``folder``."""
    if folder not in listings:
        try:
            with os.scandir(folder) as it:
                listings[folder] = list(it)
        except OSError:
            listings[folder] = []
    pattern = re.compile(rf"{re.escape(stem)}-k\d+{re.escape(ext)}")
    times = [e.stat().st_mtime_ns for e in listings[folder] if pattern.fullmatch(e.name)]
    return max(times, default=None)


def plan(
    inputs: Sequence[str | os.PathLike[str]],
    outdir: str | os.PathLike[str],
    options: BatchOptions | None = None,
    *,
    recursive: bool = False,
    globs: Sequence[str] | None = None,
    force: bool = False,
) -> Plan:
    """Find the input files and decide where each goes and whether it needs work.

    Parameters
    ----------
    inputs : sequence of paths
        Image files and folders. Files are taken as given; folders are searched for files
        matching ``globs`` (``recursive`` descends into sub-folders; hidden files and
        folders are left out).
    outdir : path
        The output folder. A folder input's tree is mirrored under it; the given files keep
        their paths relative to their deepest common folder. Each output is named as
        ``compress`` names it: ``<stem>-k<K>.<ext>`` (with quality targets, K is the one
        chosen for the file, so the planned output is the pattern ``<stem>-k*.<ext>``).
    options : BatchOptions, optional
    recursive : bool, optional
    globs : sequence of str, optional
        File-name patterns (``fnmatch``, case-insensitive) for folder searches; default: the
        extensions of the image formats Pillow reads.
    force : bool, optional
        Redo outputs that are newer than their input (by default they are skipped).

    Returns
    -------
    Plan

    Raises
    ------
    InputError
        An input path that does not exist, or no input file at all.
    OutputError
        ``outdir`` exists and is not a folder.
    """
    options = options or BatchOptions()
    out_root = Path(outdir)
    if out_root.exists() and not out_root.is_dir():
        raise OutputError(f"{out_root}: exists and is not a folder")
    out_abs = os.path.abspath(out_root)
    match = _matcher(globs)
    ext = options.extension
    # with quality targets each file's k (so its output's name) is known only once done
    suffix = f"-k{'*' if options.targets else options.k}{ext}"

    pairs: list[tuple[Path, Path]] = []  # (input as shown, path relative to the output root)
    files: list[Path] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            for f in _walk(p, recursive, match, out_abs):
                pairs.append((f, f.relative_to(p)))
        elif p.exists():
            files.append(p)
        else:
            raise InputError(f"{p}: no such file or folder")
    if files:
        base = os.path.commonpath([os.path.dirname(os.path.abspath(f)) for f in files])
        pairs.extend((f, Path(os.path.relpath(os.path.abspath(f), base))) for f in files)
    if not pairs:
        raise InputError("no image files found in the inputs (see --glob and --recursive)")

    outputs: dict[str, Path] = {}
    entries: list[tuple[Path, Path]] = []
    seen: set[str] = set()
    for src, rel in pairs:
        key = os.path.abspath(src)
        if key in seen:
            continue
        seen.add(key)
        dst = out_root / rel.parent / f"{rel.stem}{suffix}"
        entries.append((src, dst))
    stems: dict[str, set[str]] = {}  # output folder -> stems of the inputs written there
    for src, dst in entries:
        stems.setdefault(os.path.abspath(dst.parent), set()).add(Path(src).stem)
    named = re.compile(rf"(.+)-k\d+{re.escape(ext)}")
    listings: dict[Path, list[os.DirEntry[str]]] = {}

    tasks: list[Task] = []
    skipped: list[Task] = []
    failed: list[FileResult] = []
    for src, dst in entries:
        own = named.fullmatch(src.name)
        if own and own.group(1) in stems.get(os.path.abspath(src.parent), ()):
            continue  # an output of this batch (OUTDIR = an input folder): not an input
        task = Task(str(src), str(dst))
        other = outputs.get(os.path.abspath(dst))
        if other is not None:
            failed.append(
                FileResult(
                    task.input,
                    task.output,
                    "failed",
                    error=f"{src}: its output {dst} is already the output of {other}; "
                    "rename one of them or run them separately",
                )
            )
            continue
        outputs[os.path.abspath(dst)] = src
        if options.targets:
            out_time = _newest_output(dst.parent, src.stem, ext, listings)
        else:
            out_time = _mtime_ns(dst)
        in_time = _mtime_ns(src)
        if not force and out_time is not None and in_time is not None and out_time >= in_time:
            skipped.append(task)
        else:
            tasks.append(task)
    return Plan(out_root, options, tasks, skipped, failed, force)


# --------------------------------------------------------------------------- tasks


def _reason(exc: BaseException, name: str | None = None) -> str:
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


def compress_task(task: Task, options: BatchOptions, palette: np.ndarray | None) -> FileResult:
    """Compress one file with :func:`kmeanscli.compress_file` (runs in a worker).

    Errors become a failed :class:`FileResult` with the reason; nothing is raised.
    """
    from .api import compress_file

    global _busy
    folder = Path(task.output).parent
    _busy = True
    try:
        report = compress_file(
            task.input,
            None if options.targets else task.output,  # named after the k found
            options.k,
            seed=options.seed,
            max_iter=options.max_iter,
            force=True,  # the plan decided: the output is missing or older than its input
            strip=options.strip,
            max_pixels=options.max_pixels,
            format=options.format.upper(),
            input_name=task.input,
            space=options.space,
            dither=options.dither,
            dither_strength=options.dither_strength,
            keep_colors=list(options.keep_colors) or None,
            palette=palette if palette is not None else options.palette,
            restarts=options.restarts,
            targets=options.targets,
            skip_if_larger=options.skip_if_larger,
            default_dir=folder,
        )
    except NotSmallerError as exc:
        return FileResult(task.input, task.output, "skipped", reason=_reason(exc, task.input))
    except _Terminated:
        os._exit(128 + signal.SIGTERM)  # a stopped pool worker: no further task
    except Exception as exc:
        return FileResult(task.input, task.output, "failed", error=_reason(exc, task.input))
    finally:
        _busy = False
    return FileResult(task.input, report.output, "ok", report=report.to_dict())


def histogram_task(
    task: Task, options: BatchOptions, max_colors: int = _HISTOGRAM_COLORS
) -> tuple[np.ndarray, np.ndarray, bool] | FileResult:
    """One file's sampled RGBA colour histogram for a shared palette (runs in a worker).

    Returns ``(colors, counts, has_transparent_pixels)``, or a failed :class:`FileResult`.
    """
    from .core.palette import color_histogram
    from .imageio import decode

    global _busy
    _busy = True
    try:
        pixels = decode(task.input, max_pixels=options.max_pixels, name=task.input).pixels
        colors, counts = color_histogram(pixels, max_colors=max_colors, seed=options.seed)
    except _Terminated:
        os._exit(128 + signal.SIGTERM)
    except Exception as exc:
        return FileResult(task.input, task.output, "failed", error=_reason(exc, task.input))
    finally:
        _busy = False
    transparent = pixels.shape[-1] == 4 and bool((pixels[..., 3] == 0).any())
    return colors, counts, transparent


def fit_palette_task(
    histogram: tuple[np.ndarray, np.ndarray], options: BatchOptions, k: int
) -> np.ndarray:
    """:func:`kmeanscli.core.palette.fit_palette` on a merged histogram (runs in a worker)."""
    from .core.palette import fit_palette

    return fit_palette(
        [histogram], k, seed=options.seed, max_iter=options.max_iter, batch_size=options.batch_size
    )


# --------------------------------------------------------------------------- executors


Outcome = tuple[Any, Any, BaseException | None]  # (item, result, exception)


class Executor:
    """Runs one function over many items somewhere and yields the outcomes as they finish.

    Subclasses implement :meth:`map_unordered`, :meth:`terminate` and :meth:`close`. Use as
    a context manager.
    """

    description = "executor"

    def map_unordered(
        self, fn: Callable[..., Any], items: Sequence[Any], *args: Any
    ) -> Iterator[Outcome]:
        """Yield ``(item, fn(item, *args), None)`` or ``(item, None, exception)``."""
        raise NotImplementedError

    def terminate(self) -> None:
        """Stop all work now (running tasks included); no partial output is left."""

    def close(self) -> None:
        """Release the workers."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.terminate()
        self.close()


class WorkerDied(KmeansCliError):
    """The worker process running a file died (killed, e.g. for lack of memory)."""


class _Terminated(BaseException):
    """Raised in a pool worker by SIGTERM: unwinds the task (atomic_write removes its
    temporary file), then the task function ends the worker process."""


_busy = False  # a pool worker is running one of the task functions below


def _on_sigterm(_signum: int, _frame: Any) -> None:
    if _busy:
        raise _Terminated()  # unwind the task: atomic_write removes its temporary file
    os._exit(128 + signal.SIGTERM)  # between tasks: nothing to clean up


def _stop_processes(procs: list[Any], grace: float = 2.0) -> None:
    """SIGTERM, then SIGKILL what is still alive after ``grace`` seconds."""
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + grace
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()  # e.g. blocked on a lock a dead worker held
            p.join(1.0)


def _processes_of(pool: Any) -> list[Any]:
    return list((getattr(pool, "_processes", None) or {}).values())


def _init_worker(threads: int) -> None:
    """Pool initializer: Ctrl-C is the parent's business; heavy imports and limits once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    import numpy  # noqa: F401  (loads BLAS, so the limit reaches it)
    import PIL.Image  # noqa: F401
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)


class ProcessExecutor(Executor):
    """A local pool of ``jobs`` worker processes.

    Each worker imports numpy and Pillow once and limits its BLAS threads (threadpoolctl)
    to ``threads`` (default: cores // jobs, at least 1), so the workers don't oversubscribe
    the cores (the k-means steps take their thread count from that limit). Workers do not
    import scikit-learn (1.2-1.8 s) unless they fit a ``--shared-palette``. When a worker
    dies (e.g. killed for lack of memory), a new pool takes over;
    the files that were in hand are retried one at a time, so only the file that kills its
    worker fails (with :class:`WorkerDied`).
    """

    def __init__(self, jobs: int | None = None, *, threads: int | None = None) -> None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        self.jobs = max(1, jobs or cores)
        self.threads = threads or max(1, cores // self.jobs)
        self.description = f"{self.jobs} local worker process{'es' if self.jobs > 1 else ''}"
        self._pool: Any = None
        self._running: dict[Any, Any] = {}

    def _new_pool(self) -> Any:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        methods = mp.get_all_start_methods()
        if "forkserver" in methods:
            ctx = mp.get_context("forkserver")  # no fork of this (threaded) process
            # Heavy imports happen once, in the fork server; every worker starts with them
            # (and the caller's __main__ is not re-imported).
            ctx.set_forkserver_preload(["kmeanscli.batch", "kmeanscli.core.quantize", "PIL.Image"])
        else:
            ctx = mp.get_context("spawn")
        return ProcessPoolExecutor(
            max_workers=self.jobs,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(self.threads,),
        )

    def map_unordered(
        self, fn: Callable[..., Any], items: Sequence[Any], *args: Any
    ) -> Iterator[Outcome]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        pending = deque(items)
        suspects: deque[Any] = deque()  # in hand when a worker died: retried one at a time
        window = 2 * self.jobs
        while pending or suspects or self._running:
            if self._pool is None:
                self._pool = self._new_pool()
            alone = bool(suspects)
            if alone:
                if not self._running:
                    item = suspects.popleft()
                    self._running[self._pool.submit(fn, item, *args)] = item
            else:
                while pending and len(self._running) < window:
                    item = pending.popleft()
                    self._running[self._pool.submit(fn, item, *args)] = item
            done, _ = wait(list(self._running), return_when=FIRST_COMPLETED)
            hit: list[Any] = []
            for fut in done:
                item = self._running.pop(fut)
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    hit.append(item)
                except Exception as exc:
                    yield item, None, exc
                else:
                    yield item, result, None
            if hit:
                hit.extend(self._running.values())
                self._running.clear()
                broken, self._pool = self._pool, None
                procs = _processes_of(broken)
                broken.shutdown(wait=False, cancel_futures=True)
                _stop_processes(procs)  # its queues may be dirty: no survivor waits on them
                if alone:  # it ran alone: this one killed its worker
                    for item in hit:
                        yield item, None, WorkerDied("its worker process died (out of memory?)")
                else:
                    suspects.extend(hit)

    def in_flight(self) -> list[Any]:
        """Items submitted and not yet returned."""
        return list(self._running.values())

    def terminate(self) -> None:
        pool, self._pool = self._pool, None
        self._running.clear()
        if pool is None:
            return
        procs = _processes_of(pool)
        pool.shutdown(wait=False, cancel_futures=True)
        _stop_processes(procs)  # SIGTERM: a running task unwinds, removing its temporary file

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


class DaskExecutor(Executor):
    """The same per-file tasks on an existing Dask distributed cluster.

    ``address`` is the scheduler's (``tcp://host:8786``). The workers must have kmeanscli
    installed and see the input and output paths as this machine does (a shared file
    system). Dask is imported only here: ``pip install 'kmeanscli[dask]'``.
    """

    def __init__(self, address: str, *, timeout: float = 10.0) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise KmeansCliError(
                "--scheduler needs Dask distributed, which is not installed: "
                "pip install 'kmeanscli[dask]'"
            ) from None
        import logging

        logging.getLogger("distributed").setLevel(logging.ERROR)  # no log lines on stderr
        try:
            self._client = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise KmeansCliError(
                f"cannot connect to the Dask scheduler at {address}: {_reason(exc)}"
            ) from exc
        n = len(self._client.scheduler_info().get("workers", {}))
        self.description = f"Dask cluster at {address} ({n} worker{'s' if n != 1 else ''})"
        self._futures: dict[Any, Any] = {}

    def map_unordered(
        self, fn: Callable[..., Any], items: Sequence[Any], *args: Any
    ) -> Iterator[Outcome]:
        from distributed import as_completed

        if not items:
            return
        self._futures = {self._client.submit(fn, item, *args, pure=False): item for item in items}
        for fut in as_completed(list(self._futures), loop=self._client.loop):
            item = self._futures.pop(fut)
            try:
                result = fut.result()
            except Exception as exc:
                yield item, None, exc
            else:
                yield item, result, None

    def in_flight(self) -> list[Any]:
        """Items submitted and not yet returned."""
        return list(self._futures.values())

    def terminate(self) -> None:
        futures, self._futures = list(self._futures), {}
        if futures:
            self._client.cancel(futures)

    def close(self) -> None:
        self._client.close()


def make_executor(jobs: int | None = None, scheduler: str | None = None) -> Executor:
    """A :class:`DaskExecutor` when ``scheduler`` is given, else a :class:`ProcessExecutor`."""
    if scheduler:
        return DaskExecutor(scheduler)
    return ProcessExecutor(jobs)


# --------------------------------------------------------------------------- running


def _remove_temporaries(tasks: Iterable[Task]) -> None:
    """Remove ``atomic_write`` temporary files of outputs that were being written."""
    by_folder: dict[Path, set[str]] = {}
    for t in tasks:
        dst = Path(t.output)
        by_folder.setdefault(dst.parent, set()).add(dst.name)
    for folder, names in by_folder.items():
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            if e.name.startswith(".") and e.name.endswith(".tmp"):
                target = e.name[1:].rsplit(".", 2)[0]
                if target in names or any(
                    "*" in n and fnmatch.fnmatchcase(target, n) for n in names
                ):
                    with contextlib.suppress(OSError):
                        os.unlink(e.path)


def _palette_json(palette: np.ndarray, options: BatchOptions, files: int) -> bytes:
    """``palette.json`` in the format ``--palette`` reads (:mod:`kmeanscli.core.palette_io`)."""
    from .core.palette_io import dumps

    name = f"kmeanscli batch --shared-palette: k={options.k}, seed={options.seed}, {files} files"
    return dumps(palette, "json", name=name)


def _read_palette(path: Path) -> list[list[int]] | None:
    from .core.palette_io import loads

    try:
        return loads(path.read_bytes(), "json", name=str(path)).astype(int).tolist()
    except (OSError, KmeansCliError):
        return None


def run_batch(
    the_plan: Plan,
    executor: Executor,
    *,
    on_event: Callable[[BatchEvent], None] | None = None,
    shared_palette: bool = False,
    fail_fast: bool = False,
) -> BatchSummary:
    """Run a plan: compress every file it lists, reporting each as it finishes.

    Parameters
    ----------
    the_plan : Plan
        From :func:`plan`.
    executor : Executor
        Where the per-file tasks run.
    on_event : callable, optional
        Called in this process with each :class:`BatchEvent`.
    shared_palette : bool, optional
        Fit one palette on the colour histograms of all inputs (each colour weighted by its
        pixel count; each image's histogram sampled to at most 16,384 colours, fewer - down
        to 1,024 - when there are more than about 120 files, and the merged one to 65,536),
        write it to ``OUTDIR/palette.json`` and map every file onto it. The fit runs on the
        executor too. When it differs from the ``palette.json`` already there, the
        outputs that would have been skipped are redone.
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
    if shared_palette and the_plan.options.targets:
        raise UsageError("--shared-palette cannot go with quality targets (each file's own k)")
    if shared_palette and the_plan.options.palette:
        raise UsageError("--shared-palette and --palette do not go together")
    emit = on_event or (lambda _e: None)
    started = time.perf_counter()
    options = the_plan.options
    summary = BatchSummary(total=the_plan.total)
    todo = list(the_plan.tasks)
    skipped = list(the_plan.skipped)
    outdir = the_plan.outdir
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        if not os.access(outdir, os.W_OK | os.X_OK):
            raise PermissionError(13, "permission denied")
    except OSError as exc:
        raise OutputError(
            f"{outdir}: cannot create the output folder: {exc.strerror or exc}"
        ) from exc

    done = 0

    def finish(result: FileResult) -> None:
        nonlocal done
        done += 1
        summary.results.append(result)
        emit(BatchEvent("file", "compress", done, the_plan.total, result))

    palette: np.ndarray | None = None
    try:
        for result in the_plan.failed:
            finish(result)
        if fail_fast and summary.failed:
            summary.stopped = True
            return summary

        if shared_palette:
            everything = todo + skipped
            order = {t: i for i, t in enumerate(everything)}
            emit(BatchEvent("stage", "histograms", 0, len(everything)))
            per_file = _HISTOGRAM_BUDGET // max(1, len(everything))
            per_file = min(_HISTOGRAM_COLORS, max(_HISTOGRAM_MIN_COLORS, per_file))
            found: dict[int, tuple[np.ndarray, np.ndarray]] = {}
            bad: set[Task] = set()
            transparent = False
            outcomes = executor.map_unordered(histogram_task, everything, options, per_file)
            for n, (task, out, exc) in enumerate(outcomes, start=1):
                if exc is not None:
                    out = FileResult(
                        task.input, task.output, "failed", error=_reason(exc, task.input)
                    )
                if isinstance(out, FileResult):
                    bad.add(task)
                    finish(out)
                    if fail_fast:
                        executor.terminate()
                        summary.stopped = True
                        return summary
                else:
                    found[order[task]] = (out[0], out[1])
                    transparent = transparent or out[2]
                emit(BatchEvent("histogram", "histograms", n, len(everything)))
            todo = [t for t in todo if t not in bad]
            skipped = [t for t in skipped if t not in bad]
            if found:
                from .core.palette import DEFAULT_MAX_COLORS, merge_histograms, sample_histogram

                emit(BatchEvent("stage", "palette", 0, 1))
                k = min(options.k, 255) if transparent else options.k
                # merged in input order (not arrival order): the same palette every run
                merged = merge_histograms(found[i] for i in sorted(found))
                merged = sample_histogram(*merged, DEFAULT_MAX_COLORS, seed=options.seed)
                # the fit runs where the files do: a worker, with its thread limits
                ((_, palette, exc),) = list(
                    executor.map_unordered(fit_palette_task, [merged], options, k)
                )
                if exc is not None:
                    raise InputError(f"cannot fit a shared palette: {_reason(exc)}") from exc
                path = outdir / PALETTE_FILE
                text = _palette_json(palette, options, len(found))
                if _read_palette(path) != palette.astype(int).tolist():
                    todo, skipped = todo + skipped, []  # outputs made with another palette
                    from .imageio import atomic_write

                    with atomic_write(path) as fh:
                        fh.write(text)
                summary.palette_path = str(path)
                summary.palette = palette

        for task in skipped:
            finish(FileResult(task.input, task.output, "skipped", reason="up to date"))

        emit(BatchEvent("stage", "compress", done, the_plan.total))
        for folder in sorted({Path(t.output).parent for t in todo}):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"{folder}: cannot create folder: {exc.strerror or exc}") from exc
        for task, out, exc in executor.map_unordered(compress_task, todo, options, palette):
            if exc is not None:
                out = FileResult(task.input, task.output, "failed", error=_reason(exc, task.input))
            finish(out)
            if fail_fast and out.status == "failed":
                _stop(executor, todo)
                summary.stopped = True
                break
    except KeyboardInterrupt:
        _stop(executor, todo)
        summary.interrupted = True
    finally:
        summary.seconds = time.perf_counter() - started
    return summary


def _stop(executor: Executor, tasks: list[Task]) -> None:
    try:
        executor.terminate()
    except KeyboardInterrupt:  # a second Ctrl-C: still clean up
        executor.terminate()
    _remove_temporaries(tasks)
