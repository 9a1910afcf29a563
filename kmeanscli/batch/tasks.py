"""What runs in a worker: one file compressed, one file's colour histogram, one shared fit.

The task functions never raise for a bad file: errors become a failed :class:`FileResult`.
:func:`init_worker` prepares a local pool worker (signals, heavy imports, thread limits).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NotSmallerError
from .model import BatchOptions, FileResult, Task, describe_error

__all__ = ["compress_task", "fit_palette_task", "histogram_task", "init_worker"]


class _Terminated(BaseException):
    """Raised in a pool worker by SIGTERM: unwinds the task (atomic_write removes its
    temporary file), then the task ends the worker process."""


_busy = False  # a pool worker is running one of the task functions below


def _on_sigterm(_signum: int, _frame: Any) -> None:
    global _busy
    if _busy:
        _busy = False  # a second SIGTERM while this one unwinds ends the worker at once
        raise _Terminated()  # unwind the task: atomic_write removes its temporary file
    os._exit(128 + signal.SIGTERM)  # between tasks, or stopping again: end now


@contextmanager
def _task() -> Iterator[None]:
    """Mark the worker busy; a SIGTERM inside unwinds the task, then ends the worker."""
    global _busy
    _busy = True
    try:
        yield
    except _Terminated:
        os._exit(128 + signal.SIGTERM)  # a stopped pool worker: no further task
    finally:
        _busy = False


_LIFELINE_GRACE = 3.0  # seconds a worker has to unwind after its parent is gone


def _watch_lifeline(lifeline: Any) -> None:
    """Wait until the pool's parent closes the lifeline (or dies), then stop this worker.

    The parent never writes: end of file means "stop". SIGTERM makes the running task
    unwind (removing its temporary file) and end the worker; when that cannot happen in
    time (a long call that never returns to Python), the worker ends anyway.
    """
    with suppress(EOFError, OSError):
        lifeline.recv_bytes()
    os.kill(os.getpid(), signal.SIGTERM)
    threading.Event().wait(_LIFELINE_GRACE)
    os._exit(128 + signal.SIGKILL)


def _stop_if_terminated(unraisable: Any) -> None:
    """A SIGTERM that lands in code whose exceptions Python cannot raise (a weakref
    callback during an import, a finaliser) would print "Exception ignored" and let the
    task go on: end the worker instead (the parent removes its temporary file)."""
    if isinstance(unraisable.exc_value, _Terminated):
        os._exit(128 + signal.SIGTERM)
    sys.__unraisablehook__(unraisable)


def init_worker(threads: int, lifeline: Any = None) -> None:
    """Pool initializer: Ctrl-C is the parent's business; heavy imports and limits once.

    ``lifeline`` (a :class:`multiprocessing.connection.Connection`, read end): the worker
    stops when it reaches end of file, i.e. when every process that can write to it is gone.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    sys.unraisablehook = _stop_if_terminated
    if lifeline is not None:
        name = "kmeanscli-lifeline"
        threading.Thread(target=_watch_lifeline, args=(lifeline,), name=name, daemon=True).start()
    import numpy  # noqa: F401  (loads BLAS, so the limit reaches it)
    import PIL.Image  # noqa: F401
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)


def compress_task(task: Task, options: BatchOptions, palette: np.ndarray | None) -> FileResult:
    """Compress one file with :func:`kmeanscli.compress_file` (runs in a worker).

    ``palette`` is the batch's shared palette, if any: the file is mapped onto it.
    """
    from ..api import compress_file

    quantize = options.quantize
    if palette is not None:  # the shared fit already placed the locked colours
        quantize = dataclasses.replace(quantize, palette=palette, k=None, keep_colors=())
    with _task():
        try:
            report = compress_file(
                task.input,
                None if quantize.targets else task.output,  # named after the k found
                quantize,
                force=True,  # the plan decided: the output is missing or older than its input
                strip=options.strip,
                optimize=options.optimize,
                max_pixels=options.max_pixels,
                format=options.format.upper(),
                input_name=task.input,
                skip_if_larger=options.skip_if_larger,
                default_dir=Path(task.output).parent,
            )
        except NotSmallerError as exc:
            reason = describe_error(exc, task.input)
            return FileResult(task.input, task.output, "skipped", reason=reason)
        except Exception as exc:
            return FileResult.failure(task, exc)
    return FileResult(task.input, report.output, "ok", report=report.to_dict())


def histogram_task(
    task: Task, options: BatchOptions, max_colors: int
) -> tuple[np.ndarray, np.ndarray, bool] | FileResult:
    """One file's sampled colour histogram for a shared palette (runs in a worker).

    Returns ``(colors, counts, has_transparent_pixels)``, or a failed :class:`FileResult`.
    """
    from ..core.palette import color_histogram
    from ..imageio import decode

    with _task():
        try:
            pixels = decode(task.input, max_pixels=options.max_pixels, name=task.input).pixels
            seed = options.quantize.seed
            colors, counts = color_histogram(pixels, max_colors=max_colors, seed=seed)
        except Exception as exc:
            return FileResult.failure(task, exc)
    transparent = pixels.shape[-1] == 4 and bool((pixels[..., 3] == 0).any())
    return colors, counts, transparent


def fit_palette_task(
    histogram: tuple[np.ndarray, np.ndarray], options: BatchOptions, k: int
) -> np.ndarray:
    """:func:`kmeanscli.core.palette.fit_palette` on a merged histogram (runs in a worker):
    the same fit as ``compress`` makes, with the same options."""
    from ..core.palette import fit_palette

    return fit_palette([histogram], k, **options.quantize.fit_kwargs())
