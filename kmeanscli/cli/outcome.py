"""How a run that did not succeed ends: a line on stderr and, with ``--json``, a JSON object.

:func:`kmeanscli.cli.app.run` (the one error handler) keeps a :class:`RunState` for the run
(:func:`running`); a command says early what it works on (:func:`declare`), so that a
failure still gives a ``jq`` pipeline one JSON object on stdout, as ``batch --json`` gives
one per file.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from .console import error

__all__ = [
    "RunState",
    "command_line",
    "declare",
    "failed",
    "results_printed",
    "running",
    "skipped",
]


@dataclass
class RunState:
    """The command line, and what the running command declared: its input, ``--json`` and
    ``--quiet``."""

    argv: list[str] = field(default_factory=list)
    input: str | None = None
    json: bool = False
    quiet: bool = False


_STATE: ContextVar[RunState | None] = ContextVar("kmeanscli_run_state", default=None)


@contextlib.contextmanager
def running(state: RunState) -> Iterator[None]:
    """Make ``state`` the one the commands see while ``run()`` runs them."""
    token = _STATE.set(state)
    try:
        yield
    finally:
        _STATE.reset(token)


def _state() -> RunState | None:
    return _STATE.get()


def command_line() -> list[str]:
    """The arguments ``run()`` was given (empty outside it)."""
    state = _state()
    return list(state.argv) if state is not None else []


def declare(input: str | None, *, json: bool = False, quiet: bool = False) -> None:
    """Called by a command before any check: from here on a failure names ``input`` and,
    with ``json``, prints one JSON object on stdout too."""
    state = _state()
    if state is not None:
        state.input, state.json, state.quiet = input, json, quiet


def results_printed() -> None:
    """The command's JSON is on stdout: a later failure adds no second JSON document."""
    state = _state()
    if state is not None:
        state.json = False


def _json(state: RunState, doc: dict[str, object]) -> None:
    if state.json:
        sys.stdout.write(json.dumps({"input": state.input, **doc}) + "\n")
        sys.stdout.flush()


def failed(state: RunState, message: str, code: int) -> int:
    """``kmeanscli: error: message`` on stderr (and the JSON object); returns ``code``."""
    error(message)
    _json(state, {"status": "failed", "error": " ".join(message.split()), "exit_code": code})
    return code


def skipped(state: RunState, message: str, code: int) -> int:
    """A decision, not a failure (``--skip-if-larger``): ``kmeanscli: skipped: message`` on
    stderr unless quiet (and the JSON object); returns ``code``."""
    text = " ".join(message.split())
    if not state.quiet:
        sys.stderr.write(f"kmeanscli: skipped: {text}\n")
        sys.stderr.flush()
    _json(state, {"status": "skipped", "reason": text, "exit_code": code})
    return code
