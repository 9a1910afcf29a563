"""One image, one set of options: the same bytes from every command and every executor.

``compress`` (the CLI), ``batch`` on local workers (``-j 1`` and ``-j 2``), ``batch`` on a
Dask ``LocalCluster`` and ``compare`` (the PNG it measures) must write byte-identical files
for identical options, over a grid of k, colour spaces, engines and dithering. (Before the
options were one object, ``compress -k 8`` and ``batch -k 8`` disagreed on k-means++ starts.)
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import png_bytes, synthetic

from kmeanscli import QuantizeOptions
from kmeanscli.batch import BatchOptions, DaskExecutor, ProcessExecutor, plan, run_batch
from kmeanscli.cli.app import run
from kmeanscli.compare import compare_k

KS = (2, 8, 16, 256)
SPACES = ("rgb", "oklab", "lab")
ENGINES = ("lloyd", "minibatch")
DITHERS = ("none", "fs")
GRID = list(itertools.product(KS, SPACES, ENGINES, DITHERS))


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A photo-like RGB image with a few thousand colours and an RGBA one with soft alpha."""
    folder = tmp_path_factory.mktemp("identity-in")
    out = {}
    for name, pixels in (
        ("photo", synthetic(72, 54, seed=3)),
        ("alpha", synthetic(48, 40, alpha="partial", seed=4)),
    ):
        path = folder / f"{name}.png"
        path.write_bytes(png_bytes(pixels))
        out[name] = path
    return out


@pytest.fixture(scope="module")
def executors():
    """One local pool of each size and one Dask LocalCluster, shared by the whole grid."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    pools = {
        "j1": ProcessExecutor(jobs=1),
        "j2": ProcessExecutor(jobs=2),
        "dask": DaskExecutor(cluster.scheduler_address),
    }
    try:
        yield pools
    finally:
        for ex in pools.values():
            ex.close()
        cluster.close()


def _cli_args(options: QuantizeOptions) -> list[str]:
    args = ["-k", str(options.k), "--space", options.space, "--engine", options.engine]
    if options.dither != "none":
        args += ["--dither", options.dither]
    return args


@pytest.mark.parametrize(("k", "space", "engine", "dither"), GRID)
def test_every_command_and_executor_writes_the_same_bytes(
    tmp_path: Path, images: dict[str, Path], executors, k: int, space: str, engine: str, dither: str
) -> None:
    options = QuantizeOptions(k=k, space=space, engine=engine, dither=dither)
    for name, src in images.items():
        out = tmp_path / f"compress-{name}.png"
        code = run(["compress", str(src), "-o", str(out), "-q", *_cli_args(options)])
        assert code == 0
        reference = out.read_bytes()
        assert reference.startswith(b"\x89PNG")

        row = compare_k(src, [k], options).rows[0]
        assert row.png == reference, f"compare differs for {name}"
        assert row.bytes == len(reference)

    batch_options = BatchOptions(options)
    for label, executor in executors.items():
        outdir = tmp_path / label
        summary = run_batch(plan(list(images.values()), outdir, batch_options), executor)
        assert summary.ok == len(images), summary.failures
        for name in images:
            written = (outdir / f"{name}-k{k}.png").read_bytes()
            reference = (tmp_path / f"compress-{name}.png").read_bytes()
            assert written == reference, f"batch on {label} differs for {name}"


@pytest.mark.parametrize("k", [3, 8])
def test_cli_batch_matches_cli_compress_with_default_restarts(tmp_path: Path, k: int) -> None:
    """``batch -k 8`` and ``compress -k 8`` once used 1 and 3 k-means++ starts."""
    src = tmp_path / "in.png"
    src.write_bytes(png_bytes(synthetic(64, 48, seed=9)))
    assert run(["compress", str(src), "-k", str(k), "-o", str(tmp_path / "c.png"), "-q"]) == 0
    code = run(["batch", str(src), "-k", str(k), "-o", str(tmp_path / "b"), "-j", "1", "-q"])
    assert code == 0
    assert (tmp_path / "b" / f"in-k{k}.png").read_bytes() == (tmp_path / "c.png").read_bytes()


def test_json_reports_agree_between_compress_and_batch(tmp_path: Path, capsys) -> None:
    src = tmp_path / "in.png"
    src.write_bytes(png_bytes(synthetic(40, 30, seed=2)))
    args = ["-k", "8", "--engine", "minibatch", "--space", "lab", "--json", "-q"]
    assert run(["compress", str(src), "-o", str(tmp_path / "c.png"), *args]) == 0
    one = json.loads(capsys.readouterr().out)
    assert run(["batch", str(src), "-o", str(tmp_path / "b"), "-j", "1", *args]) == 0
    line = json.loads(capsys.readouterr().out)
    for key in ("k", "colors", "bytes_out", "mse", "psnr", "engine", "space", "seed"):
        assert one[key] == line[key], key
    assert one["engine"] == "minibatch" and one["colors"] == 8
    assert np.isclose(one["mse"], line["mse"])
