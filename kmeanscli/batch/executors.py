"""Where a batch's per-file tasks run: a local process pool or a Dask cluster."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..errors import KmeansCliError
from .model import describe_error
from .tasks import init_worker

__all__ = [
    "DaskExecutor",
    "Executor",
    "NoWorkers",
    "ProcessExecutor",
    "SchedulerError",
    "WorkerDied",
    "make_executor",
    "parse_scheduler_address",
]


Outcome = tuple[Any, Any, BaseException | None]  # (item, result, exception)


class Executor:
    """Runs one function over many items somewhere and yields the outcomes as they finish.

    Subclasses implement :meth:`map_unordered`, :meth:`terminate` and :meth:`close`. Use as
    a context manager.
    """

    description = "executor"
    on_workers: Callable[[int], None] | None = None
    """Called with the number of workers when a cluster runs out of them (0) and when
    workers are back; set by :func:`~kmeanscli.batch.run_batch`."""

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


def _quiet_pool_manager() -> None:
    """Once workers are stopped by force, the pool's manager thread may trip over the
    queues being closed under it (``OSError: Bad file descriptor`` in ``terminate_broken``)
    and print a traceback: noise about a pool we stopped on purpose. Keep it off stderr;
    every other thread's exceptions are printed as before."""
    previous = threading.excepthook
    if getattr(previous, "kmeanscli", False):
        return

    def hook(args: Any) -> None:
        manager = type(args.thread).__name__ == "_ExecutorManagerThread"
        if manager and issubclass(args.exc_type, OSError):
            return
        previous(args)

    hook.kmeanscli = True  # type: ignore[attr-defined]
    threading.excepthook = hook


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
        _quiet_pool_manager()
        self._running.clear()
        self._stop_pool()
        self._cut_lifeline()

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        self._cut_lifeline()


class SchedulerError(KmeansCliError):
    """The Dask scheduler cannot be reached, or no worker was left to run the files."""


class NoWorkers(SchedulerError):
    """The Dask cluster had no worker for longer than the executor's ``worker_wait``."""


ADDRESS_EXAMPLE = "tcp://host:8786"

_ADDRESS = re.compile(
    r"(?:(?P<scheme>tcp|tls|ws|wss)://)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)"
    r":(?P<port>[0-9]{1,5})/?"
)


def parse_scheduler_address(address: str) -> tuple[str, str, int]:
    """``(address, host, port)`` of a Dask scheduler address such as ``tcp://host:8786``.

    The scheme (``tcp``, ``tls``, ``ws`` or ``wss``) defaults to ``tcp``; the port is
    required. Nothing is looked up or connected.

    Raises
    ------
    ValueError
        When ``address`` does not have that shape (e.g. ``foo``, ``host``, ``http://...``).
    """
    m = _ADDRESS.fullmatch(address.strip())
    if m is None or not 0 < int(m["port"]) < 65536:
        raise ValueError(f"not a scheduler address like {ADDRESS_EXAMPLE}")
    scheme = m["scheme"] or "tcp"
    return f"{scheme}://{m['host']}:{int(m['port'])}", m["host"].strip("[]"), int(m["port"])


def _reach(address: str, host: str, port: int, timeout: float) -> None:
    """Open and close a plain TCP connection to the scheduler's port, to tell a refused
    port (at once) from an unknown or unreachable host (after ``timeout``) in the user's
    words; Dask's own connect retries a refused port until its timeout and then says only
    "timed out"."""
    import socket

    where = f"cannot connect to the Dask scheduler at {address}"
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except socket.gaierror:
        raise SchedulerError(f"{where}: unknown host {host!r}") from None
    except ConnectionRefusedError:
        raise SchedulerError(
            f"{where}: connection refused (no scheduler listens on port {port})"
        ) from None
    except TimeoutError:
        raise SchedulerError(
            f"{where}: no answer within {timeout:g} s (host unreachable or port filtered; "
            "see --scheduler-timeout)"
        ) from None
    except OSError as exc:  # e.g. no route to host, network unreachable
        raise SchedulerError(f"{where}: {(exc.strerror or str(exc)).lower()}") from None


async def _identity(address: str) -> Any:
    from distributed.comm import connect

    comm = await connect(address)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()


def _ask_identity(address: str, timeout: float) -> None:
    """Ask the server at ``address`` who it is, within ``timeout``: Dask's own handshake
    waits without a limit for a server that accepts connections and never speaks."""
    import asyncio

    where = f"cannot connect to the Dask scheduler at {address}"
    try:
        answer = asyncio.run(asyncio.wait_for(_identity(address), timeout))
    except TimeoutError:
        raise SchedulerError(
            f"{where}: the port accepts connections, but no Dask scheduler answered within "
            f"{timeout:.3g} s"
        ) from None
    except Exception as exc:  # a server that speaks something else: any error of the protocol
        raise SchedulerError(f"{where}: not a Dask scheduler ({describe_error(exc)})") from None
    kind = answer.get("type") if isinstance(answer, dict) else None
    if kind != "Scheduler":
        raise SchedulerError(f"{where}: it is a Dask {kind or 'server'}, not the scheduler")


def _quiet_logs() -> None:
    """No log lines from Dask in this process: what matters is said in our messages (a
    lost result Dask computes again, a worker gone, a cancelled task are all expected).
    Dask's logging config sets some of its loggers' levels one by one (e.g.
    ``distributed.client: warning``), so each is set."""
    import logging

    names = [n for n in logging.root.manager.loggerDict if n.startswith("distributed.")]
    for name in ["distributed", *names]:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _connect(address: str, timeout: float) -> Any:
    """A Dask ``Client`` for ``address``, whose failed start leaves no noise.

    A ``Client`` that fails to connect is still finalised later, and its ``__del__`` then
    closes a connection that never was, with a ``TimeoutError`` traceback after 20 s: the
    subclass lets only a client that connected close itself there.
    """
    from distributed import Client

    class QuietClient(Client):  # type: ignore[misc, valid-type]
        connected = False

        def __del__(self) -> None:
            if self.connected:
                super().__del__()

    client = QuietClient(address, timeout=timeout, set_as_default=False)
    client.connected = True
    return client


M_MMAP_THRESHOLD = -3  # glibc mallopt(3)
_MMAP_THRESHOLD = 32 << 20  # glibc's own ceiling for its dynamic threshold (64-bit)
_tuned = False


def _tune_worker() -> None:
    """Once per Dask worker process: give back glibc's dynamic mmap threshold.

    The Dask nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``; setting any malloc
    threshold freezes glibc's mmap threshold at 128 KiB, so every array larger than that
    is a fresh ``mmap`` (page faults on every first touch) and a ``munmap`` when freed. Our
    per-file arrays are mostly larger: measured, a file cost 1.5-1.8x the compute of a
    local worker (benchmarks/RESULTS.md). Raising the mmap threshold to 32 MiB (where glibc's
    own dynamic threshold stops) reuses the heap again; the small trim threshold Dask asked
    for is kept. Nothing is changed when ``MALLOC_MMAP_THRESHOLD_`` is set (the worker's
    owner chose) or the C library is not glibc.
    """
    global _tuned
    if _tuned:
        return
    _tuned = True
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    import ctypes
    import platform

    if platform.libc_ver()[0] != "glibc":
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, _MMAP_THRESHOLD)


def _on_dask_worker(fn: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    """Run ``fn(*args)`` on a Dask worker; returns ``(worker address, result)``."""
    from distributed import get_worker

    _tune_worker()
    return get_worker().address, fn(*args)


class DaskExecutor(Executor):
    """The same per-file tasks on an existing Dask distributed cluster.

    ``address`` is the scheduler's (``tcp://host:8786``). The workers must have kmeanscli
    installed and see the input and output paths as this machine does (a shared file
    system). Dask is imported only here: ``pip install 'kmeanscli[dask]'``.

    Connecting takes at most ``timeout`` seconds; a refused port fails at once. While the
    cluster has no worker the executor reports it (``on_workers(0)``) and waits; after
    ``worker_wait`` seconds without one, :meth:`map_unordered` raises :class:`NoWorkers`
    (the files in hand are not done; a later run does them). A worker that dies mid-task
    loses nothing: Dask runs its tasks again elsewhere.

    Raises
    ------
    SchedulerError
        ``address`` is not a scheduler address, or no scheduler answers there.
    """

    POLL = 0.5  # seconds between looks at the worker count while nothing finishes

    def __init__(self, address: str, *, timeout: float = 5.0, worker_wait: float = 60.0) -> None:
        try:
            address, host, port = parse_scheduler_address(address)
        except ValueError as exc:
            raise SchedulerError(f"--scheduler {address!r}: {exc}") from None
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise KmeansCliError(
                "--scheduler needs Dask distributed, which is not installed: "
                "pip install 'kmeanscli[dask]'"
            ) from None
        _quiet_logs()
        self.address, self.worker_wait = address, worker_wait
        started = time.monotonic()
        _reach(address, host, port, timeout)
        if address.startswith(("tcp://", "ws://")):  # (TLS needs the security settings)
            _ask_identity(address, max(0.5, timeout - (time.monotonic() - started)))
        left = max(1.0, timeout - (time.monotonic() - started))
        try:
            self._client = _connect(address, left)
        except (OSError, TimeoutError, ValueError) as exc:
            raise SchedulerError(
                f"cannot connect to the Dask scheduler at {address}: {describe_error(exc)}"
            ) from None
        self.workers_used: set[str] = set()
        self._futures: dict[Any, Any] = {}

    @property
    def description(self) -> str:  # type: ignore[override]
        """Where the files ran, with the number of workers that ran at least one task."""
        n = len(self.workers_used)
        return f"Dask cluster at {self.address} ({n} worker{'s' if n != 1 else ''})"

    def _worker_count(self) -> int:
        try:
            return len(self._client.nthreads())
        except (OSError, TimeoutError) as exc:
            raise SchedulerError(
                f"lost the Dask scheduler at {self.address}: {describe_error(exc)}"
            ) from None

    def map_unordered(
        self, fn: Callable[..., Any], items: Sequence[Any], *args: Any
    ) -> Iterator[Outcome]:
        from distributed import as_completed

        if not items:
            return
        submit = self._client.submit
        self._futures = {
            submit(_on_dask_worker, fn, item, *args, pure=False): item for item in items
        }
        # with_results: the results come in the background, so that a result lost with its
        # worker (Dask computes it again) never blocks this loop, which watches the workers
        finished = as_completed(
            list(self._futures), loop=self._client.loop, with_results=True, raise_errors=False
        )
        last_progress = time.monotonic()
        waiting_since: float | None = None
        while self._futures:
            batch = finished.next_batch(block=False)
            if not batch:
                time.sleep(0.05)
                now = time.monotonic()
                if now - last_progress < self.POLL:
                    continue
                last_progress = now  # look again in POLL seconds
                workers = self._worker_count()
                if workers and waiting_since is not None:
                    waiting_since = None
                    self._notify(workers)
                elif not workers:
                    if waiting_since is None:
                        waiting_since = now
                        self._notify(0)
                    elif now - waiting_since >= self.worker_wait:
                        raise NoWorkers(
                            f"no Dask worker for {self.worker_wait:g} s at {self.address}: "
                            "stopped (--worker-wait)"
                        )
                continue
            last_progress = time.monotonic()
            if waiting_since is not None:
                waiting_since = None
                self._notify(self._worker_count())
            for fut, value in batch:
                item = self._futures.pop(fut, None)
                if item is None:  # cancelled by terminate()
                    continue
                if fut.status == "lost":  # done, then its result left with its worker:
                    self._futures[fut] = item  # Dask computes it again when it can
                    finished.add(fut)
                    continue
                if fut.status == "finished":
                    where, result = value
                    self.workers_used.add(where)
                    yield item, result, None
                else:  # error: (type, exception, traceback); cancelled: the exception
                    exc = value[1] if isinstance(value, tuple) else value
                    if not isinstance(exc, BaseException):
                        exc = RuntimeError(f"Dask task {fut.status}")
                    yield item, None, exc

    def _notify(self, workers: int) -> None:
        if self.on_workers is not None:
            self.on_workers(workers)

    def in_flight(self) -> list[Any]:
        """Items submitted and not yet returned."""
        return list(self._futures.values())

    def terminate(self) -> None:
        futures, self._futures = list(self._futures), {}
        if futures:
            self._client.cancel(futures)

    def close(self) -> None:
        self._client.close()


def make_executor(
    jobs: int | None = None,
    scheduler: str | None = None,
    *,
    scheduler_timeout: float = 5.0,
    worker_wait: float = 60.0,
) -> Executor:
    """A :class:`DaskExecutor` when ``scheduler`` is given, else a :class:`ProcessExecutor`.

    ``scheduler_timeout`` and ``worker_wait`` are the :class:`DaskExecutor`'s ``timeout``
    and ``worker_wait``.
    """
    if scheduler:
        return DaskExecutor(scheduler, timeout=scheduler_timeout, worker_wait=worker_wait)
    return ProcessExecutor(jobs)
