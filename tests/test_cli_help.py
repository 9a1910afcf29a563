"""What ``--help`` shows: every bracket, real metavars, panels, defaults once, examples whole."""

from __future__ import annotations

import contextlib
import io
import re

import pytest
import typer

import kmeanscli
from kmeanscli.cli.app import app

COMMANDS = ("compress", "compare", "batch", "palette")


def _help(cli, *argv: str, columns: int = 80) -> str:
    r = cli(*argv, "--help", env={"COLUMNS": str(columns)})
    assert r.code == 0 and r.stderr == "", r.stderr
    return r.stdout


def _texts(command) -> list[str]:
    """The help strings of a command as written in the source: its own and its params'."""
    texts = [command.help or ""]
    texts += [getattr(p, "help", None) or "" for p in command.params]
    return texts


def _squeeze(text: str) -> str:
    """The rendered help without panel borders and line breaks, for finding phrases."""
    text = re.sub(r"[│╭╮╰╯─]", " ", text)
    return " ".join(text.split())


@pytest.mark.parametrize("argv", [(), *((c,) for c in COMMANDS)])
def test_no_bracketed_text_disappears(cli, argv) -> None:
    """Rich markup would eat [dask] or [bold]: every [...] of the help strings is shown."""
    group = typer.main.get_command(app)
    command = group.commands[argv[0]] if argv else group
    shown = _squeeze(_help(cli, *argv, columns=400))
    bracketed = [m for text in _texts(command) for m in re.findall(r"\[[^\]\n]*\]", text)]
    for item in bracketed:
        assert " ".join(item.split()) in shown, item
    if argv == ("batch",):
        assert "pip install 'kmeanscli[dask]'" in shown


def test_help_texts_with_markup_print_as_written(cli, monkeypatch) -> None:
    """A help text that looks like markup is printed, not interpreted."""
    group = typer.main.get_command(app)
    command = group.commands["palette"]
    monkeypatch.setattr(command, "help", "Show [bold]colours[/bold] of a[1].png.\n\nMore.")
    ctx = typer.Context(command, info_name="palette")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        command.format_help(ctx, None)
    assert "Show [bold]colours[/bold] of a[1].png." in buf.getvalue()
    assert command.help == "Show [bold]colours[/bold] of a[1].png.\n\nMore."  # restored


@pytest.mark.parametrize("argv", [(), *((c,) for c in COMMANDS)])
def test_help_names_values_plainly(cli, argv) -> None:
    """No <bool> after flags, no <str>/<int range>/<list[str]> placeholders, no {IN} in the
    usage line, no [2<=x<=256] ranges (the texts say them in words), no line over 80."""
    text = _help(cli, *argv)
    for odd in ("<bool>", "<str>", "<int", "<float", "<list", " <path>", "<=x", "x>=", "{"):
        assert odd not in text, odd
    assert "[default:" not in text  # defaults are stated once, in words
    assert max(len(line) for line in text.splitlines()) <= 80


def test_usage_lines(cli) -> None:
    usage = {c: _help(cli, c).splitlines()[1].strip() for c in COMMANDS}
    assert usage == {
        "compress": "Usage: kmeanscli compress [OPTIONS] [IN]",
        "compare": "Usage: kmeanscli compare [OPTIONS] [IN [OTHER...]]",
        "batch": "Usage: kmeanscli batch [OPTIONS] INPUT...",
        "palette": "Usage: kmeanscli palette [OPTIONS] IN",
    }


def test_metavars_and_defaults(cli) -> None:
    text = _help(cli, "compress")
    for pattern in (
        r"--colors\s+-k\s+K\s+Palette size",
        r"--output\s+-o\s+OUT\s",
        r"--force\s+-f\s+Overwrite",
        r"--engine\s+lloyd\|minibatch\s+k-means engine",
        r"--space\s+rgb\|oklab\|lab\s+Colour space",
        r"--seed\s+N\s+Random seed",
        r"--keep-color\s+HEX\s",
        r"--target-psnr\s+DB\s",
    ):
        assert re.search(pattern, text), pattern
    flat = _squeeze(text)
    for default in ("Default: 16.", "Default: lloyd.", "Default: rgb.", "Default: 0."):
        assert flat.count(default) == 1, default
    assert "Default: png." in _squeeze(_help(cli, "batch"))


@pytest.mark.parametrize("command", COMMANDS)
def test_options_are_grouped_in_panels(cli, command) -> None:
    """No panel lists more than nine options; the same flag is in the same panel everywhere."""
    params = typer.main.get_command(app).commands[command].params
    panels: dict[str, list[str]] = {}
    for p in params:
        if isinstance(p, typer.core.TyperOption):
            panels.setdefault(getattr(p, "rich_help_panel", None) or "Options", []).append(p.name)
    assert max(len(names) for names in panels.values()) <= 9, panels
    text = _help(cli, command)
    for name in panels:
        assert f"╭─ {name} ─" in text, name
    where = {n: panel for panel, names in panels.items() for n in names}
    assert where["engine"] == where["seed"] == where["restarts"] == "k-means"
    if "target_psnr" in where:
        assert where["target_psnr"] == where["max_delta_e"] == "Quality targets"


@pytest.mark.parametrize("argv", [(), *((c,) for c in COMMANDS)])
def test_examples_are_shown_whole_and_indented(cli, argv) -> None:
    group = typer.main.get_command(app)
    command = group.commands[argv[0]] if argv else group
    examples = [line.strip() for line in (command.help or "").splitlines() if "kmeanscli " in line]
    examples = [e for e in examples if not e.startswith(("Run ", "'"))]
    assert len(examples) >= 2
    lines = _help(cli, *argv).splitlines()
    for example in examples:
        assert f"   {example}" in [line.rstrip() for line in lines], example


def test_version_short_flag(cli) -> None:
    for flag in ("-V", "--version"):
        r = cli(flag)
        assert (r.code, r.stdout, r.stderr) == (0, f"kmeanscli {kmeanscli.__version__}\n", "")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compress", "x.png", "-k", "1"], "-k must be between 2 and 256; got 1"),
        (["palette", "x.png", "--colors", "0"], "-k must be between 1 and 256; got 0"),
        (
            ["compress", "x.png", "--space", "hsv"],
            "--space must be one of rgb, oklab, lab; got 'hsv'",
        ),
        (["compress", "x.png", "--dither", "x"], "--dither must be one of none, fs; got 'x'"),
        (["compare", "x.png", "--max-iter", "0"], "--max-iter must be at least 1; got 0"),
        (
            ["compress", "x.png", "--dither-strength", "2"],
            "--dither-strength must be between 0 and 1; got 2",
        ),
        (
            ["compress", "x.png", "--target-psnr", "high"],
            "--target-psnr must be a number; got 'high'",
        ),
    ],
)
def test_parser_errors_in_the_users_terms(cli, argv, message) -> None:
    r = cli(*argv)
    hint = f" (see 'kmeanscli {argv[0]} --help')"
    assert (r.code, r.stdout, r.stderr) == (2, "", f"kmeanscli: error: {message}{hint}\n")
