"""Per-file compute on a Dask cluster against the local pool, on the same photos (issue 12).

Builds the photos of ``batch_bench.py`` (40 by default), then runs, on the same files:

- ``kmeanscli batch IN -o OUT -k 16 -j 2 --json`` (the local pool);
- the same with ``MALLOC_TRIM_THRESHOLD_=65536``, as the Dask nanny starts its workers;
- the same with ``--scheduler`` on a ``distributed.LocalCluster`` of 2 worker processes of
  1 thread each, on 127.0.0.1 (started here, not timed);

and prints, for each, the wall time and the sum of the ``seconds`` field of the files' JSON
lines (each file's own compute, whatever the scheduling). It also prints what a task sees
inside each kind of worker: the BLAS/OpenMP thread limits (threadpoolctl), the thread
environment variables, and the thread count the k-means takes.

Run by hand, never in the tests: ``.venv/bin/python benchmarks/dask_bench.py [--files 40]
[--rounds 2] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from batch_bench import make_photos

ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_")


def probe() -> dict:
    """What a task sees where it runs (also run as a task, so it is importable)."""
    from threadpoolctl import threadpool_info

    from kmeanscli.core.kmeans import _threads

    return {
        "pid": os.getpid(),
        "env": {k: os.environ.get(k) for k in ENV_VARS},
        "pools": sorted(f"{lib['internal_api']}={lib['num_threads']}" for lib in threadpool_info()),
        "kmeans threads": _threads(),
    }


def run_batch(
    src: Path, out: Path, extra: list[str], env: dict[str, str]
) -> tuple[float, float, int]:
    """(wall s, summed per-file s, files ok) of one ``kmeanscli batch`` run."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "kmeanscli", "batch", str(src), "-o", str(out), "-k", "16"]
    t = time.perf_counter()
    r = subprocess.run(
        [*cmd, *extra, "--json", "-q"], capture_output=True, text=True, env={**os.environ, **env}
    )
    wall = time.perf_counter() - t
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
    ok = [d for d in docs if d["status"] == "ok"]
    return wall, sum(d["seconds"] for d in ok), len(ok)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2, help="runs of each, interleaved")
    ap.add_argument("--keep", type=Path, default=None, help="build the photos here and keep them")
    args = ap.parse_args()
    from distributed import Client, LocalCluster

    work = args.keep or Path(tempfile.mkdtemp(prefix="kmeanscli-dask-bench-"))
    src = work / "in"
    photos = sorted(src.glob("*.png")) if src.is_dir() else []
    if len(photos) != args.files:
        shutil.rmtree(src, ignore_errors=True)
        photos = make_photos(src, args.files)
    print(f"{len(photos)} photos; load average {os.getloadavg()[0]:.2f}")

    from concurrent.futures import ProcessPoolExecutor

    from kmeanscli.batch.tasks import init_worker

    with ProcessPoolExecutor(1, initializer=init_worker, initargs=(1,)) as pool:
        print("local -j 2 worker:", pool.submit(probe).result())
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    try:
        with Client(cluster.scheduler_address) as client:
            for info in client.run(probe).values():
                print("Dask worker (between tasks):", info)
            print("Dask worker (in a task):", client.submit(probe, pure=False).result())
        rows = []
        for i in range(args.rounds):
            for name, extra, env in (
                ("local -j 2", ["-j", "2"], {}),
                ("local -j 2, Dask's malloc env", ["-j", "2"], {"MALLOC_TRIM_THRESHOLD_": "65536"}),
                ("Dask, 2 workers x 1 thread", ["--scheduler", cluster.scheduler_address], {}),
            ):
                wall, summed, ok = run_batch(src, work / "out", extra, env)
                rows.append((i + 1, name, wall, summed, ok))
                print(f"round {i + 1}  {name:30} wall {wall:6.2f} s  per-file sum {summed:6.2f} s")
    finally:
        cluster.close()
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
