"""The batch library: fixed palettes (core/palette.py), planning and running (kmeanscli.batch)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import photo, save
from PIL import Image

from kmeanscli import QuantizeOptions, Target
from kmeanscli.batch import (
    BatchOptions,
    FileResult,
    ProcessExecutor,
    Task,
    compress_task,
    plan,
    read_path_list,
    run_batch,
)
from kmeanscli.core.palette import color_histogram, fit_palette, merge_histograms
from kmeanscli.errors import InputError, OutputError
from kmeanscli.options import OptionsError


def colours_of(path: Path) -> set[tuple[int, ...]]:
    with Image.open(path) as im:
        rgba = np.asarray(im.convert("RGBA")).reshape(-1, 4)
    return {tuple(int(v) for v in c) for c in np.unique(rgba, axis=0)}


# --------------------------------------------------------------------------- core/palette


def test_fit_palette_gives_exactly_k_distinct_colours_deterministically() -> None:
    hists = [color_histogram(photo(s)) for s in range(3)]
    p1 = fit_palette(hists, 12, seed=3)
    p2 = fit_palette(hists, 12, seed=3)
    assert p1.shape == (12, 3) and p1.dtype == np.uint8
    assert len(np.unique(p1, axis=0)) == 12
    np.testing.assert_array_equal(p1, p2)


def test_fit_palette_keeps_all_colours_when_fewer_than_k() -> None:
    img = np.zeros((4, 4, 3), np.uint8)
    img[:2] = (10, 20, 30)
    pal = fit_palette([color_histogram(img)], 8)
    assert {tuple(c) for c in pal.tolist()} == {(0, 0, 0), (10, 20, 30)}


def test_histograms_are_weighted_by_pixel_count() -> None:
    red = np.zeros((10, 10, 3), np.uint8)
    red[...] = (255, 0, 0)
    blue = np.zeros((2, 2, 3), np.uint8)
    blue[...] = (0, 0, 255)
    colors, weights = merge_histograms([color_histogram(red), color_histogram(blue)])
    got = {tuple(c): w for c, w in zip(colors.tolist(), weights.tolist(), strict=True)}
    assert got == {(255, 0, 0): 100.0, (0, 0, 255): 4.0}
    # k=1 over both: the one colour sits at the pixel-weighted mean
    (only,) = fit_palette([color_histogram(red), color_histogram(blue)], 1).tolist()
    assert only == [round(255 * 100 / 104), 0, round(255 * 4 / 104)]


def test_sampled_histograms_keep_their_total_weight() -> None:
    colors, counts = color_histogram(photo(1, (64, 64)), max_colors=500, seed=0)
    assert len(colors) <= 500
    assert counts.sum() == pytest.approx(64 * 64)


def test_histograms_leave_out_transparent_pixels_and_ignore_alpha() -> None:
    img = photo(2, alpha=True)
    colors, counts = color_histogram(img)
    assert colors.shape[1] == 3
    assert counts.sum() == int((img[..., 3] > 0).sum())


# --------------------------------------------------------------------------- planning


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """in/a.png, in/b.jpg, in/sub/c.png (alpha), in/sub/deep/d.webp, a corrupt PNG,
    a text file and a hidden file."""
    root = tmp_path / "in"
    save(root / "a.png", photo(0))
    save(root / "b.jpg", photo(1))
    save(root / "sub" / "c.png", photo(2, alpha=True))
    save(root / "sub" / "deep" / "d.webp", photo(3))
    (root / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a PNG")
    (root / "notes.txt").write_text("not an image\n")
    save(root / ".hidden.png", photo(4))
    return root


def _pairs(p) -> list[tuple[str, str]]:
    return sorted((t.input, t.output) for t in p.tasks)


def test_plan_mirrors_the_tree_and_keeps_only_images(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    p = plan([tree], out, BatchOptions(QuantizeOptions(k=8)), recursive=True)
    assert _pairs(p) == sorted(
        [
            (str(tree / "a.png"), str(out / "a-k8.png")),
            (str(tree / "b.jpg"), str(out / "b-k8.png")),
            (str(tree / "sub" / "c.png"), str(out / "sub" / "c-k8.png")),
            (str(tree / "sub" / "broken.png"), str(out / "sub" / "broken-k8.png")),
            (str(tree / "sub" / "deep" / "d.webp"), str(out / "sub" / "deep" / "d-k8.png")),
        ]
    )
    assert not p.skipped and not p.failed and p.total == 5
    assert not out.exists()  # planning writes nothing


def test_plan_without_recursion_and_with_globs(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    top = plan([tree], out)
    assert [Path(t.input).name for t in top.tasks] == ["a.png", "b.jpg"]
    pngs = plan([tree], out, recursive=True, globs=["*.PNG"])
    assert sorted(Path(t.input).name for t in pngs.tasks) == ["a.png", "broken.png", "c.png"]
    webp = plan([tree], out, BatchOptions(format="webp"), recursive=True, globs=["d.*"])
    assert [t.output for t in webp.tasks] == [str(out / "sub" / "deep" / "d-k16.webp")]


def test_plan_of_a_file_list_mirrors_from_their_common_folder(tree: Path, tmp_path: Path) -> None:
    text = f"{tree / 'sub' / 'c.png'}\n\n{tree / 'sub' / 'deep' / 'd.webp'}\r\n"
    import io

    files = read_path_list(io.StringIO(text))
    assert files == [str(tree / "sub" / "c.png"), str(tree / "sub" / "deep" / "d.webp")]
    p = plan(files, tmp_path / "o", BatchOptions(QuantizeOptions(k=4), format="gif"))
    assert _pairs(p) == [
        (files[0], str(tmp_path / "o" / "c-k4.gif")),
        (files[1], str(tmp_path / "o" / "deep" / "d-k4.gif")),
    ]


def test_plan_refuses_two_inputs_with_one_output(tmp_path: Path) -> None:
    save(tmp_path / "in" / "x.png", photo(0))
    save(tmp_path / "in" / "x.jpg", photo(1))
    p = plan([tmp_path / "in"], tmp_path / "out")
    assert [Path(t.input).name for t in p.tasks] == ["x.jpg"]
    (refused,) = p.failed
    assert refused.input.endswith("x.png") and refused.status == "failed"
    assert "already the output of" in (refused.error or "")


def test_plan_skips_outputs_newer_than_their_input_unless_forced(tree: Path, tmp_path: Path):
    out = tmp_path / "out"
    (out).mkdir()
    fresh = out / "a-k16.png"
    fresh.write_bytes(b"done before")
    stale = out / "b-k16.png"
    stale.write_bytes(b"older than its input")
    old = (tree / "b.jpg").stat().st_mtime - 100
    os.utime(stale, (old, old))
    p = plan([tree], out)
    assert [t.output for t in p.skipped] == [str(fresh)]
    assert [t.output for t in p.tasks] == [str(stale)]
    forced = plan([tree], out, force=True)
    assert not forced.skipped and len(forced.tasks) == 2


def test_plan_never_takes_its_own_outputs_as_inputs(tree: Path) -> None:
    inside = tree / "out"  # OUTDIR inside the input folder: not searched
    save(inside / "a-k16.png", photo(0))
    p = plan([tree], inside, recursive=True)
    assert all(not t.input.startswith(str(inside)) for t in p.tasks + p.skipped)
    # OUTDIR = the input folder: existing outputs are not inputs of a rerun
    save(tree / "a-k16.png", photo(0))
    same = plan([tree], tree)
    assert sorted(Path(t.input).name for t in same.tasks + same.skipped) == ["a.png", "b.jpg"]


def test_plan_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or folder"):
        plan([tmp_path / "missing"], tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image files"):
        plan([tmp_path / "empty"], tmp_path / "out")
    save(tmp_path / "a.png", photo(0))
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        plan([tmp_path / "a.png"], tmp_path / "file")


def test_batch_options_refuse_what_does_not_go_together() -> None:
    with pytest.raises(OptionsError) as bad_format:
        BatchOptions(format="jpeg")
    assert str(bad_format.value) == "format must be one of png, webp, gif"
    assert bad_format.value.fields == ("format",)
    targets = QuantizeOptions(targets=(Target("psnr", 30),))
    with pytest.raises(OptionsError) as with_targets:
        BatchOptions(targets, shared_palette=True)
    assert str(with_targets.value) == "shared_palette cannot go with targets (each file's own k)"
    fixed = QuantizeOptions(palette=np.array([[0, 0, 0], [255, 255, 255]], np.uint8))
    with pytest.raises(OptionsError) as with_palette:
        BatchOptions(fixed, shared_palette=True)
    assert str(with_palette.value) == "shared_palette and palette do not go together"
    # each alone is fine
    assert BatchOptions(targets).quantize.targets == targets.targets
    assert BatchOptions(QuantizeOptions(k=8), shared_palette=True).shared_palette


# --------------------------------------------------------------------------- running


def test_compress_task_is_compress_file(tmp_path: Path) -> None:
    from kmeanscli import compress_file

    src = save(tmp_path / "p.png", photo(7))
    options = BatchOptions(QuantizeOptions(k=6))
    ok = compress_task(Task(str(src), str(tmp_path / "t.png")), options, None)
    compress_file(src, tmp_path / "c.png", 6)  # the defaults of every layer are the same
    assert ok.status == "ok" and ok.report is not None and ok.report["colors"] == 6
    assert (tmp_path / "t.png").read_bytes() == (tmp_path / "c.png").read_bytes()
    bad = compress_task(
        Task(str(tmp_path / "nope.png"), str(tmp_path / "n.png")), BatchOptions(), None
    )
    assert bad.status == "failed" and "no such file" in (bad.error or "")
    assert bad.to_dict()["status"] == "failed"


@pytest.fixture(scope="module")
def pool():
    with ProcessExecutor(jobs=2) as ex:
        yield ex


def test_run_batch_reports_every_file_and_keeps_going(pool, tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    events = []
    p = plan([tree], out, BatchOptions(QuantizeOptions(k=8)), recursive=True)
    summary = run_batch(p, pool, on_event=events.append)
    assert (summary.ok, summary.skipped, summary.failed, summary.not_done) == (4, 0, 1, 0)
    (failure,) = summary.failures
    assert failure.input.endswith("broken.png")
    assert (failure.error or "").startswith(f"{failure.input}: not an image")
    files = [e.result for e in events if e.kind == "file"]
    assert sorted(r.input for r in files) == sorted(t.input for t in p.tasks)
    assert [e.done for e in events if e.kind == "file"] == [1, 2, 3, 4, 5]
    assert sorted(str(f.relative_to(out)) for f in out.rglob("*") if f.is_file()) == [
        "a-k8.png",
        "b-k8.png",
        os.path.join("sub", "c-k8.png"),
        os.path.join("sub", "deep", "d-k8.png"),
    ]
    for r in summary.results:
        if r.status == "ok":
            assert r.report is not None  # k = 8 entries; c.png's include its transparent one
            assert r.report["colors"] == (7 if r.input.endswith("c.png") else 8)
            assert len(colours_of(Path(r.output))) == 8  # k = 8 palette entries, always
    assert summary.bytes_in == sum(r.bytes_in for r in files)
    # a second run skips what is done and retries the failure
    again = run_batch(plan([tree], out, BatchOptions(QuantizeOptions(k=8)), recursive=True), pool)
    assert (again.ok, again.skipped, again.failed) == (0, 4, 1)


def test_run_batch_fail_fast_stops_at_the_first_failure(pool, tree: Path, tmp_path: Path):
    p = plan([tree / "sub"], tmp_path / "out", recursive=True, globs=["broken.png"])
    summary = run_batch(p, pool, fail_fast=True)
    assert summary.stopped and summary.failed == 1


def test_shared_palette_every_output_uses_only_its_colours(pool, tree: Path, tmp_path: Path):
    out = tmp_path / "out"
    options = BatchOptions(QuantizeOptions(k=6), shared_palette=True)
    p = plan([tree], out, options, recursive=True, globs=["*.png", "*.jpg", "*.webp"])
    summary = run_batch(p, pool)
    assert (summary.ok, summary.failed) == (4, 1)
    from kmeanscli.api import load_palette

    palette = load_palette(out / "palette.json")  # what --palette reads
    assert palette.shape == (5, 3)  # c.png has transparent pixels: 5 colours + that entry
    assert "k=6" in json.loads((out / "palette.json").read_text())["name"]
    allowed = {(*c, 255) for c in palette.tolist()}
    allowed.add((0, 0, 0, 0))  # the transparent entry of images with transparent pixels
    used: set[tuple[int, ...]] = set()
    for r in summary.results:
        if r.status == "ok":
            got = colours_of(Path(r.output))
            assert got <= allowed, r.output
            used |= got
    assert len(used) >= 5
    np.testing.assert_array_equal(summary.palette, palette)
    doc = (out / "palette.json").read_bytes()
    # the same run again: same palette, everything up to date
    again = run_batch(plan([tree], out, options, recursive=True), pool)
    assert (again.ok, again.skipped) == (0, 4)
    assert (out / "palette.json").read_bytes() == doc


def test_shared_palette_is_the_palette_compress_fits(pool, tmp_path: Path) -> None:
    """One fit for both: the shared palette of one image is the palette compress gives it."""
    from kmeanscli import compress_file
    from kmeanscli.api import load_palette

    src = save(tmp_path / "in" / "a.png", photo(0))
    for k in (6, 12):  # 3 k-means++ starts, then 1
        out = tmp_path / f"out{k}"
        options = BatchOptions(QuantizeOptions(k=k), shared_palette=True)
        summary = run_batch(plan([src], out, options), pool)
        assert (summary.ok, summary.failed) == (1, 0)
        own = tmp_path / f"own{k}.json"
        compress_file(src, tmp_path / f"own{k}.png", k, palette_out=own)
        shared = load_palette(out / "palette.json")
        assert sorted(shared.tolist()) == sorted(load_palette(own).tolist())
        assert colours_of(out / f"a-k{k}.png") == colours_of(tmp_path / f"own{k}.png")


def test_fileresult_json_fields() -> None:
    r = FileResult("a.png", "out/a-k16.png", "skipped")
    assert r.to_dict() == {"input": "a.png", "output": "out/a-k16.png", "status": "skipped"}
    assert r.bytes_in == 0


def _die_on_three(item: int) -> int:
    if item == 3:
        os._exit(9)  # as if killed for lack of memory
    return item * 10


def _blas_threads(_item: int) -> list[int]:
    from threadpoolctl import threadpool_info

    return sorted({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})


def test_a_dead_worker_fails_only_its_own_file(pool) -> None:
    from kmeanscli.batch import WorkerDied

    outcomes = {item: (res, exc) for item, res, exc in pool.map_unordered(_die_on_three, range(8))}
    assert sorted(outcomes) == list(range(8))
    assert isinstance(outcomes[3][1], WorkerDied)
    assert {i: r for i, (r, e) in outcomes.items() if e is None} == {
        i: i * 10 for i in range(8) if i != 3
    }


def test_workers_limit_their_blas_threads(pool) -> None:
    """The workers' BLAS limit (which the Lloyd steps also take their thread count from)."""
    ((_item, limits, exc),) = list(pool.map_unordered(_blas_threads, [0]))
    assert exc is None and limits == [pool.threads]


def test_plan_with_quality_targets_uses_name_patterns(tmp_path: Path) -> None:
    src = save(tmp_path / "a.png", photo(0))
    options = BatchOptions(QuantizeOptions(targets=(Target("psnr", 30),)))
    p = plan([src], tmp_path, options)  # OUTDIR = the input folder
    assert [t.output for t in p.tasks] == [str(tmp_path / "a-k*.png")]
    save(tmp_path / "a-k37.png", photo(1))  # an earlier run chose k=37
    again = plan([tmp_path], tmp_path, options)
    assert [t.input for t in again.skipped] == [str(src)] and not again.tasks
    assert plan([tmp_path], tmp_path, options, force=True).tasks == again.skipped
