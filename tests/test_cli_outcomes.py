"""What a person sees when a command does not simply succeed: several images given to
compress, -o naming a folder, --json failures, and what compare fits for --plot-colors."""

from __future__ import annotations

import json

from conftest import files_in
from PIL import Image


def test_several_images_to_compress_show_the_batch_command(cli, make_image, tmp_path):
    a = make_image("a.png")
    b = make_image("b.png", seed=1)
    before = files_in(tmp_path)
    line = cli("compress", a, b, "-k", "8", "--seed", "3").assert_one_error(2)
    assert line == (
        "kmeanscli: error: compress takes one image (2 given); for several, use batch: "
        f"kmeanscli batch {a} {b} -k 8 --seed 3 -o OUTDIR"
    )
    # -o naming a folder is kept (batch writes there); compress's own files are dropped
    out = tmp_path / "out"
    out.mkdir()
    line = cli("compress", a, "-o", out, b, "--plot", "p.png", "-q").assert_one_error(2)
    assert line.endswith(f"use batch: kmeanscli batch {a} {b} -q -o {out}")
    assert files_in(tmp_path) == before | {"out"} and files_in(out) == set()
    # an unknown flag is still Click's usage error
    cli("compress", a, "--bogus").assert_one_error(2, "No such option: --bogus")


def test_output_naming_a_folder_writes_the_default_name_into_it(cli, make_image, tmp_path):
    src = make_image("in.png")
    out = tmp_path / "out"
    out.mkdir()
    r = cli("compress", src, "-k", "8", "-o", out, "--json")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["output"] == str(out / "in-k8.png")
    assert files_in(out) == {"in-k8.png"}
    with Image.open(out / "in-k8.png") as im:
        assert len(im.getcolors()) == 8
    # as any output: not overwritten without --force
    cli("compress", src, "-k", "8", "-o", out).assert_one_error(1, "in-k8.png: already exists")
    # a quality target names it after the k chosen, still in the folder
    r = cli("compress", src, "--target-psnr", "20", "-o", out, "-q")
    assert r.code == 0, r.stderr
    assert len(files_in(out)) == 2
    # stdin has no name to give it
    r = cli("compress", "-", "-o", out, input=src.read_bytes())
    r.assert_one_error(2, "is a folder", "give -o FILE")


def test_json_failures_print_one_object_on_stdout(cli, make_image, tmp_path):
    missing = tmp_path / "nope.png"
    for command in ("compress", "compare", "palette"):
        r = cli(command, missing, "--json")
        assert r.code == 1
        assert r.stderr == f"kmeanscli: error: {missing}: no such file\n"
        assert json.loads(r.stdout) == {
            "input": str(missing),
            "status": "failed",
            "error": f"{missing}: no such file",
            "exit_code": 1,
        }
    # works once, then fails with JSON (the README's `| jq` example, run twice)
    src = make_image("in.png")
    assert cli("compress", src, "--json", "-k", "4").code == 0
    r = cli("compress", src, "--json", "-k", "4")
    assert r.code == 1
    doc = json.loads(r.stdout)
    assert doc["status"] == "failed" and doc["exit_code"] == 1
    assert doc["error"] == f"{tmp_path / 'in-k4.png'}: already exists (use --force to overwrite)"
    # usage errors found by the command too (not those of a command line Click cannot parse)
    r = cli("compress", src, "--json", "--sample")
    assert r.code == 2 and json.loads(r.stdout)["error"] == "give either IN or --sample, not both"
    r = cli("compress", src, "--json", "--bogus")
    assert r.code == 2 and r.stdout == ""
    # without --json, nothing on stdout
    r = cli("compress", src, "-k", "4")
    assert r.code == 1 and r.stdout == ""


def test_json_keeps_only_warnings_on_stderr(cli, make_image, tmp_path):
    src = make_image("in.png", colors=3)
    r = cli("compress", src, "-k", "8", "-o", tmp_path / "o.png", "--json")
    assert r.code == 0
    assert r.stderr == "kmeanscli: warning: the image has only 3 colours: all kept exactly\n"
    assert json.loads(r.stdout)["warnings"] == ["the image has only 3 colours: all kept exactly"]
    plain = cli("compress", src, "-k", "8", "-o", tmp_path / "p.png")
    assert "colours" in plain.stderr and "3 → 3" in plain.stderr  # the report, without --json


def test_plot_colors_alone_fits_only_the_default_k(cli, make_image, tmp_path):
    src = make_image("in.png")
    r = cli("compare", src, "--plot-colors", tmp_path / "c.png", "--json")
    assert r.code == 0, r.stderr
    assert [row["k"] for row in json.loads(r.stdout)] == [16]
    assert (tmp_path / "c.png").stat().st_size > 0
    r = cli("compare", src, "-k", "8,4", "--plot-colors", tmp_path / "d.png", "--json")
    assert [row["k"] for row in json.loads(r.stdout)] == [4, 8]
    # with --plot the table keeps every default k
    r = cli("compare", src, "--plot-colors", tmp_path / "e.png", "--plot", tmp_path / "f.png")
    assert r.code == 0, r.stderr
    ks = [line.split("│")[1].strip() for line in r.stdout.splitlines() if line.startswith("│")]
    assert ks == ["4", "8", "16", "32", "64", "128", "256"]
