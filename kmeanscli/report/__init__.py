"""The HTML report: one self-contained page to judge a compression by eye.

:func:`render_report` turns a :class:`kmeanscli.compare.Comparison` (what ``compare`` and
``compare --json`` show) into the bytes of one HTML file: images inline as data URIs, CSS
and JavaScript inline, nothing fetched. It never prints and writes nothing. Jinja2 is
imported here, so import this package only when a report is asked for.
"""

from __future__ import annotations

from .html import ORIGINAL_PNG_MAX_BYTES, render_report

__all__ = ["ORIGINAL_PNG_MAX_BYTES", "render_report"]
