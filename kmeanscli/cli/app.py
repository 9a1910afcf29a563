"""The ``kmeanscli`` Typer application and its single error handler."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from .. import __version__
from ..errors import KmeansCliError, NotSmallerError, TargetNotMetError, UsageError
from ..options import OptionsError
from .console import error
from .help import Command, Group, usage_message
from .options import FLAGS
from .outcome import RunState, failed, running, skipped
from .status import ExitStatus

app = typer.Typer(
    name="kmeanscli",
    help=(
        "Compress images by reducing them to k colours with k-means clustering.\n\n"
        "Run 'kmeanscli COMMAND --help' for a command's options and examples; "
        "'kmeanscli --install-completion' adds tab completion to your shell.\n\n"
        "Examples:\n\n"
        "  kmeanscli compress photo.jpg -k 16 -o photo.png\n\n"
        "  cat a.png | kmeanscli compress - -k 8 -o - > b.png\n\n"
        "  kmeanscli compress --sample"
    ),
    no_args_is_help=True,
    cls=Group,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"kmeanscli {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Compress images by reducing them to k colours with k-means clustering."""


def _register() -> None:
    """Add the commands (their modules know nothing of ``app``: no import loop)."""
    from .batch import batch
    from .compare import compare
    from .compress import compress
    from .palette import palette
    from .report import report

    for command in (compress, compare, report, batch, palette):
        # extra arguments reach compress, which answers several images with the batch command
        extra = {"allow_extra_args": True} if command is compress else None
        app.command(cls=Command, context_settings=extra)(command)


_register()


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` and return the exit status (never raises for user errors)."""
    command = typer.main.get_command(app)
    args = list(argv) if argv is not None else sys.argv[1:]
    if not args:
        # Bare `kmeanscli` is a usage error: the help goes to stderr (stdout is for results).
        with contextlib.redirect_stdout(sys.stderr):
            command.main(args=["--help"], prog_name="kmeanscli", standalone_mode=False)
        return ExitStatus.USAGE
    state = RunState(argv=args)
    try:
        with running(state):
            rv = command.main(args=args, prog_name="kmeanscli", standalone_mode=False)
    except OptionsError as exc:  # the library's words, with our flags
        return failed(state, exc.render(FLAGS), ExitStatus.USAGE)
    except UsageError as exc:
        return failed(state, str(exc), ExitStatus.USAGE)
    except TargetNotMetError as exc:
        return failed(state, str(exc), ExitStatus.TARGET_NOT_MET)
    except NotSmallerError as exc:  # a decision, not a failure
        return skipped(state, str(exc), ExitStatus.SKIPPED_NOT_SMALLER)
    except KmeansCliError as exc:
        return failed(state, str(exc), ExitStatus.FAILURE)
    except typer.Abort:
        error("interrupted")
        return ExitStatus.INTERRUPTED
    except KeyboardInterrupt:
        error("interrupted")
        return ExitStatus.INTERRUPTED
    except typer.TyperException as exc:  # Click's usage errors
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        code = int(getattr(exc, "exit_code", ExitStatus.USAGE))
        return failed(state, f"{usage_message(exc)}{hint}", code)
    except BrokenPipeError:
        _silence_stdout()
        return ExitStatus.FAILURE
    except OSError as exc:  # stdout unwritable (disk full, I/O error): one line, no traceback
        _silence_stdout()
        where = f"{exc.filename}: " if exc.filename else "cannot write to stdout: "
        error(f"{where}{exc.strerror or exc}")
        return ExitStatus.FAILURE
    if rv == ExitStatus.INTERRUPTED:
        error("interrupted")
    return int(rv) if isinstance(rv, int) else ExitStatus.OK


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
