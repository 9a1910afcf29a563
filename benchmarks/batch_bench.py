"""Batch throughput: ``kmeanscli batch -j 2`` against pngquant on the same photos.

Builds 44 PNG photos of 0.1-1 MP from the images that ship with scikit-learn and
scikit-image (crops and resizes, deterministic), then times, on the same files:

- ``pngquant 16 --nofs --ext -q.png FILES...`` (one invocation, its own threads), if found;
- ``kmeanscli batch IN -o OUT -k 16 -j 2`` (a cold start: worker start-up included),

sampling the resident memory of every batch worker process while it runs.

Run: ``.venv/bin/python benchmarks/batch_bench.py [--jobs 2] [--files 44] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image


def sources() -> list[np.ndarray]:
    import skimage.data as data
    from sklearn.datasets import load_sample_images

    imgs = list(load_sample_images().images)
    for name in (
        "astronaut",
        "coffee",
        "chelsea",
        "rocket",
        "immunohistochemistry",
        "hubble_deep_field",
        "retina",
    ):
        imgs.append(np.asarray(getattr(data, name)())[..., :3])
    return imgs


def make_photos(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    imgs = sources()
    paths = []
    for i in range(n):
        src = imgs[i % len(imgs)]
        h, w = src.shape[:2]
        target = rng.uniform(0.1e6, 1.0e6)  # pixels
        ch = int(rng.integers(h // 2, h + 1))
        cw = int(rng.integers(w // 2, w + 1))
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        crop = Image.fromarray(np.ascontiguousarray(src[y : y + ch, x : x + cw]))
        scale = (target / (ch * cw)) ** 0.5
        crop = crop.resize((max(8, int(cw * scale)), max(8, int(ch * scale))), Image.LANCZOS)
        path = folder / f"photo{i:02d}.png"
        crop.save(path)
        paths.append(path)
    return paths


def rss_sampler(parent: int, stop: threading.Event, peaks: dict[int, int]) -> None:
    """Peak RSS (kB) of every descendant of ``parent`` (Linux /proc)."""
    while not stop.is_set():
        kids = {parent}
        for _ in range(4):
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open(f"/proc/{pid}/stat") as fh:
                        ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                    if ppid in kids:
                        kids.add(int(pid))
                except OSError:
                    pass
        for pid in kids - {parent}:
            try:
                with open(f"/proc/{pid}/status") as fh:
                    for line in fh:
                        if line.startswith("VmRSS:"):
                            peaks[pid] = max(peaks.get(pid, 0), int(line.split()[1]))
            except OSError:
                pass
        stop.wait(0.2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--files", type=int, default=44)
    ap.add_argument("--keep", type=Path, default=None, help="build the photos here and keep them")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="kmeanscli-bench-"))
    src = work / "in"
    photos = sorted(src.glob("*.png")) if src.is_dir() else []
    if len(photos) != args.files:
        shutil.rmtree(src, ignore_errors=True)
        photos = make_photos(src, args.files)
    mpx = sum(Image.open(p).size[0] * Image.open(p).size[1] for p in photos) / 1e6
    size = sum(p.stat().st_size for p in photos)
    print(f"{len(photos)} photos, {mpx:.1f} MP, {size / 1e6:.1f} MB of PNG")

    pq = shutil.which("pngquant")
    if pq:
        for f in src.glob("*-q.png"):
            f.unlink()
        t = time.perf_counter()
        subprocess.run(
            [pq, "16", "--nofs", "--ext", "-q.png", "--force", *map(str, photos)], check=False
        )
        t_pq = time.perf_counter() - t
        out_pq = sum(p.stat().st_size for p in src.glob("*-q.png"))
        for f in src.glob("*-q.png"):
            f.unlink()
        print(
            f"pngquant: {t_pq:.2f} s, {len(photos) / t_pq:.2f} files/s, {out_pq / 1e6:.2f} MB out"
        )
    else:
        t_pq = None
        print("pngquant: not installed")

    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    exe = [
        sys.executable,
        "-m",
        "kmeanscli",
        "batch",
        str(src),
        "-o",
        str(out),
        "-k",
        "16",
        "-j",
        str(args.jobs),
        "-q",
    ]
    stop, peaks = threading.Event(), {}
    t = time.perf_counter()
    proc = subprocess.Popen(exe)
    sampler = threading.Thread(target=rss_sampler, args=(proc.pid, stop, peaks), daemon=True)
    sampler.start()
    proc.wait()
    t_b = time.perf_counter() - t
    stop.set()
    sampler.join()
    out_b = sum(p.stat().st_size for p in out.rglob("*.png"))
    print(
        f"kmeanscli batch -j {args.jobs}: {t_b:.2f} s, {len(photos) / t_b:.2f} files/s, "
        f"{out_b / 1e6:.2f} MB out, exit {proc.returncode}"
    )
    workers = sorted(peaks.values(), reverse=True)
    if workers:
        print(
            "peak RSS of its child processes (MB): "
            + ", ".join(f"{kb / 1024:.0f}" for kb in workers)
        )
    if t_pq:
        print(f"batch / pngquant wall time: {t_b / t_pq:.2f}")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
