"""Exceptions raised by the kmeanscli library.

Every exception carries a message that is ready to show to a user as it is. The CLI maps
them to one line on stderr and an exit code (see :mod:`kmeanscli.cli.status`).
"""

from __future__ import annotations


class KmeansCliError(Exception):
    """Base class of every error kmeanscli raises on purpose."""


class InputError(KmeansCliError):
    """The input cannot be read or decoded as a supported still image."""


class OutputError(KmeansCliError):
    """The output cannot be written (missing folder, permissions, refusing to overwrite)."""


class UsageError(KmeansCliError, ValueError):
    """Arguments that do not fit together (also a ``ValueError`` for library callers)."""


class TargetNotMetError(KmeansCliError):
    """No k up to 256 reaches the asked quality target (``--target-psnr`` ...).

    The CLI exits with its own status for it (99, as pngquant does).
    """


class NotSmallerError(KmeansCliError):
    """The output would not be smaller than the input (``--skip-if-larger``).

    The CLI exits with its own status for it (98, as pngquant does).
    """
