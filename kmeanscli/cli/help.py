"""How ``--help`` and the parser's errors read.

Typer renders help with Rich: its markup would eat ``[dask]`` from a help text, it shows
``<bool>`` after flags that take no value and ``<str>`` after arguments already named, marks
a required argument ``{IN}`` in the usage line, and gives defaults in two styles. The command
classes here fix that for every command at once. :func:`usage_message` words the parser's
range and choice errors in the user's terms.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from enum import Enum
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

__all__ = ["Command", "Group", "usage_message"]


def _no_type(ctx: Any) -> None:
    return None


def _no_range() -> None:
    return None


def _default_text(param: TyperOption | TyperArgument) -> str | None:
    """The default Typer would show as ``[default: ...]``, or None."""
    if not param.show_default or getattr(param, "is_flag", False) or param.required:
        return None
    default = param.default
    if default is None or callable(default) or default in ((), []):
        return None
    if isinstance(default, Enum):
        default = default.value
    return str(default)


def _unwrap(text: str) -> str:
    """Prose paragraphs on one line each (Rich keeps single line breaks); indented ones,
    the examples, as they are."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(
        p if any(line[:1].isspace() for line in p.splitlines()) else " ".join(p.split("\n"))
        for p in paragraphs
    )


@contextlib.contextmanager
def _readable(params: list[Any], commands: list[Any]) -> Iterator[None]:
    """For the time of rendering: help texts escaped for Rich markup, each default stated
    once as ``Default: X.``, no value type after a flag or an argument."""
    saved: list[tuple[Any, str, Any]] = []

    def swap(obj: Any, attr: str, value: Any) -> None:
        saved.append((obj, attr, obj.__dict__.get(attr, _MISSING)))
        setattr(obj, attr, value)

    try:
        for command in commands:
            swap(command, "help", escape(_unwrap(command.help or "")))
            if command.short_help:
                swap(command, "short_help", escape(command.short_help))
        for param in params:
            text = getattr(param, "help", None) or ""
            default = _default_text(param) if isinstance(param, TyperOption) else None
            if default is not None:
                text = f"{text} Default: {default}."
                swap(param, "show_default", False)
            swap(param, "help", escape(text))
            if isinstance(param, TyperArgument) or getattr(param, "is_flag", False):
                swap(param, "display_type_rich", _no_type)
            # ranges are in the help texts, in words ("2 to 256")
            swap(param, "_get_number_range_help_str", _no_range)
        yield
    finally:
        for obj, attr, value in reversed(saved):
            if value is _MISSING:
                delattr(obj, attr)
            else:
                setattr(obj, attr, value)


_MISSING = object()


class Command(TyperCommand):
    """A Typer command whose help prints every bracket and names each value once."""

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:
        with _readable(self.get_params(ctx), [self]):
            super().format_help(ctx, formatter)

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        # Typer writes a required argument as {IN}; the usual convention is plain IN
        pieces = super().collect_usage_pieces(ctx)
        pieces = [p[1:].replace("}", "", 1) if p.startswith("{") else p for p in pieces]
        # and repeats a metavar that already says so: [IN [OTHER...]]...
        return [p[:-3] if p.endswith("...") and "..." in p[:-3] else p for p in pieces]


class Group(TyperGroup):
    """The application: its help escapes markup like :class:`Command`'s."""

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:
        commands = [self.commands[name] for name in self.list_commands(ctx)]
        with _readable(self.get_params(ctx), [self, *commands]):
            super().format_help(ctx, formatter)


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def usage_message(exc: Exception) -> str:
    """The message of a parser error; a bad number or choice in the user's terms.

    ``-k must be between 2 and 256; got 1``, ``--space must be one of rgb, oklab, lab; got
    'hsv'``, ``--seed must be a whole number; got 'x'``. Other errors keep Click's words.
    """
    fallback = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    param = getattr(exc, "param", None)
    errors = getattr(exc.__cause__, "errors", None)
    if param is None or not callable(errors):
        return fallback
    found = errors()
    if not found:
        return fallback
    kind, given = str(found[0].get("type", "")), found[0].get("input")
    name = param.opts[0] if isinstance(param, TyperOption) else param.human_readable_name
    choices = param.type_descriptor.choices
    if choices:
        names = ", ".join(str(c.value if isinstance(c, Enum) else c) for c in choices)
        return f"{name} must be one of {names}; got {given!r}"
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if kind.startswith(("greater_than", "less_than")):
        if low is not None and high is not None:
            return f"{name} must be between {_number(low)} and {_number(high)}; got {given}"
        if low is not None:
            return f"{name} must be at least {_number(low)}; got {given}"
        return f"{name} must be at most {_number(high)}; got {given}"
    if kind.startswith("int_"):
        return f"{name} must be a whole number; got {given!r}"
    if kind.startswith("float_"):
        return f"{name} must be a number; got {given!r}"
    return fallback
