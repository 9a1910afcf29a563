"""Defaults shared by the library and the CLI, in a module that imports nothing heavy.

The command modules need these while Typer builds ``kmeanscli --help``; keeping them here
lets the help start without importing numpy or the library.
"""

from __future__ import annotations

DEFAULT_SPACE = "rgb"
"""The colour space k-means clusters in unless told otherwise."""

DEFAULT_MAX_ITER = 30
"""Lloyd iterations on the coarsest level of the colour histogram (``--max-iter``)."""

DEFAULT_KS = (4, 8, 16, 32, 64, 128, 256)
"""The k values ``compare`` sweeps by default."""

BATCH_FORMATS: dict[str, str] = {"png": ".png", "webp": ".webp", "gif": ".gif"}
"""``batch --format`` names and their file extensions."""
