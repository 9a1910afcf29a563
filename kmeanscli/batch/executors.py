"""Where a batch's per-file tasks run: a local process pool or a Dask cluster."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..errors import KmeansCliError
from .model import describe_error
from .tasks import init_worker

__all__ = ["DaskExecutor", "Executor", "ProcessExecutor", "WorkerDied", "make_executor"]


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


def _stop_processes(procs: list[Any], grace: float = 2.0) -> None:
    """SIGTERM, then SIGKILL what is still alive after ``grace`` seconds.

    Safe to call again on the same processes (e.g. after a second Ctrl-C interrupted it).
    """
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + grace
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()  # e.g. blocked on a lock a dead worker held
            p.join(1.0)


class _SignalsHeld:
    """Hold SIGINT and SIGTERM back (their Python handlers) for the length of a block.

    For the moments a pool starts a worker: a KeyboardInterrupt raised half-way through
    leaves a process the pool does not know of, that nobody stops, and that prints a
    traceback when it finds the pool's semaphores gone. The first signal that came meanwhile
    goes to its handler right after the block. Only in the main thread (where handlers run)
    and only for handlers written in Python (the default SIGTERM ends the process anyway).
    A plain class, not a generator: a signal landing as the block is entered or left
    finds either the old handler or the holding one, never neither.
    """

    def __enter__(self) -> _SignalsHeld:
        self.caught: list[tuple[int, Any]] = []
        self.saved: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            try:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    if callable(signal.getsignal(sig)):
                        self.saved[sig] = signal.signal(sig, self._hold)
            except BaseException:  # a signal landed before its handler was swapped
                self._restore()
                raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()
        if self.caught:
            signum, frame = self.caught[0]
            handler = signal.getsignal(signum)
            if callable(handler):
                handler(signum, frame)

    def _hold(self, signum: int, frame: Any) -> None:
        self.caught.append((signum, frame))

    def _restore(self) -> None:
        try:
            while self.saved:
                sig = next(iter(self.saved))
                signal.signal(sig, self.saved[sig])
                del self.saved[sig]
        finally:
            if self.saved:  # a handler already restored raised: restore the others anyway
                self._restore()


def _processes_of(pool: Any) -> list[Any]:
    return list((getattr(pool, "_processes", None) or {}).values())


def _quiet_resource_tracker() -> None:
    """Start multiprocessing's resource tracker with its stderr on /dev/null.

    When workers are stopped (Ctrl-C, SIGTERM, a dead worker), the tracker cleans up the
    pool's semaphores at exit, as it should, but also prints "leaked semaphore" and "No
    such file" warnings: noise after a clean, documented exit. The tracker inherits fd 2
    when it starts, so it is started here once, with fd 2 pointing at /dev/null.
    """
    from multiprocessing import resource_tracker

    saved = os.dup(2)  # (when it already runs, ensure_running() starts nothing)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        resource_tracker.ensure_running()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class ProcessExecutor(Executor):
    """A local pool of ``jobs`` worker processes.

    Each worker imports numpy and Pillow once and limits its BLAS threads (threadpoolctl)
    to ``threads`` (default: cores // jobs, at least 1), so the workers don't oversubscribe
    the cores (the k-means steps take their thread count from that limit). Workers do not
    import scikit-learn (1.2-1.8 s) unless the ``minibatch`` engine runs. When a worker
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
        self._lifeline: tuple[Any, Any] | None = None  # (read end for workers, write end)
        self._stopping: list[tuple[Any, list[Any]]] = []  # (pool, its processes) being stopped

    def _new_pool(self) -> Any:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        _quiet_resource_tracker()
        methods = mp.get_all_start_methods()
        if "forkserver" in methods:
            ctx = mp.get_context("forkserver")  # no fork of this (threaded) process
            # Heavy imports happen once, in the fork server; every worker starts with them
            # (and the caller's __main__ is not re-imported).
            ctx.set_forkserver_preload(["kmeanscli.batch", "kmeanscli.api", "PIL.Image"])
        else:
            ctx = mp.get_context("spawn")
        if self._lifeline is None:
            self._lifeline = ctx.Pipe(duplex=False)
        return ProcessPoolExecutor(
            max_workers=self.jobs,
            mp_context=ctx,
            initializer=init_worker,
            initargs=(self.threads, self._lifeline[0]),
        )

    def _stop_pool(self) -> None:
        """Stop the current pool's processes now; finish the stops a Ctrl-C interrupted.

        The pool and its processes are recorded before the pool is dropped, and dropped from
        the record only once stopped, so a second Ctrl-C landing anywhere in here leaves
        nothing that the next call does not stop.
        """
        if self._pool is not None:
            self._stopping.append((self._pool, _processes_of(self._pool)))
            self._pool = None
        while self._stopping:
            pool, procs = self._stopping[-1]
            pool.shutdown(wait=False, cancel_futures=True)
            _stop_processes(procs)  # SIGTERM: a running task unwinds, removing its temporary
            self._stopping.pop()

    def _cut_lifeline(self) -> None:
        """Close the lifeline: any worker still alive (or still starting) stops itself."""
        lifeline, self._lifeline = self._lifeline, None
        if lifeline is not None:
            for end in lifeline:
                end.close()

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
                with _SignalsHeld():
                    self._pool = self._new_pool()
            alone = bool(suspects)
            if alone:
                if not self._running:
                    self._submit(fn, suspects.popleft(), args)
            else:
                while pending and len(self._running) < window:
                    self._submit(fn, pending.popleft(), args)
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
                self._stop_pool()  # its queues may be dirty: no survivor waits on them
                if alone:  # it ran alone: this one killed its worker
                    for item in hit:
                        yield item, None, WorkerDied("its worker process died (out of memory?)")
                else:
                    suspects.extend(hit)

    def _submit(self, fn: Callable[..., Any], item: Any, args: tuple[Any, ...]) -> None:
        with _SignalsHeld():  # the pool may start a worker: not half-way
            self._running[self._pool.submit(fn, item, *args)] = item

    def in_flight(self) -> list[Any]:
        """Items submitted and not yet returned."""
        return list(self._running.values())

    def terminate(self) -> None:
        """Stop the workers now. Call it again if a Ctrl-C interrupts it: it finishes."""
        self._running.clear()
        self._stop_pool()
        self._cut_lifeline()

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        self._cut_lifeline()


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
                f"cannot connect to the Dask scheduler at {address}: {describe_error(exc)}"
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
