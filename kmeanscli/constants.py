"""Defaults and names shared by the library and the CLI, in a module that imports nothing heavy.

The command modules need these while Typer builds ``kmeanscli --help``; keeping them here
lets the help start without importing numpy or the library. Each default is defined once,
here, and :class:`kmeanscli.QuantizeOptions` takes it from here.
"""

from __future__ import annotations

MAX_COLORS = 256
"""A palette image holds at most 256 entries."""

DEFAULT_K = 16
"""Colours in the output unless told otherwise."""

DEFAULT_DOMINANT_K = 6
"""Colours ``kmeanscli palette`` (``dominant_colors``) shows unless told otherwise."""

ENGINES: tuple[str, ...] = ("lloyd", "minibatch")
"""The k-means engines: our exact weighted Lloyd, scikit-learn's ``MiniBatchKMeans``."""

DEFAULT_ENGINE = "lloyd"
"""The engine unless told otherwise (measured better on the bundled photos: see the README)."""

SPACES: tuple[str, ...] = ("rgb", "oklab", "lab")
"""Colour spaces k-means can cluster in."""

DEFAULT_SPACE = "rgb"
"""The colour space k-means clusters in unless told otherwise."""

DITHERS: tuple[str, ...] = ("none", "fs")
"""Dithering methods: none, or Floyd–Steinberg."""

DEFAULT_MAX_ITER = 30
"""Lloyd iterations on the coarsest level of the colour histogram (``--max-iter``); for the
``minibatch`` engine, passes over the histogram."""

DEFAULT_REFINE_ITER = 5
"""Lloyd iterations on the distinct colours, after the binned levels."""

DEFAULT_BATCH_SIZE = 4096
"""``MiniBatchKMeans`` mini-batch size of the ``minibatch`` engine (``--batch-size``)."""

AUTO_RESTARTS_MAX_K = 8
"""Several k-means++ starts are made by default up to this k (see ``auto_restarts``)."""

DEFAULT_KS = (4, 8, 16, 32, 64, 128, 256)
"""The k values ``compare`` sweeps by default."""

BATCH_FORMATS: dict[str, str] = {"png": ".png", "webp": ".webp", "gif": ".gif"}
"""``batch --format`` names and their file extensions."""

PNG_LEVELS: tuple[int, ...] = (0, 1, 2)
"""PNG compression levels: 0 zlib (fastest), 1 libdeflate, 2 libdeflate with row filters."""
AUTO_PNG_LEVEL_MAX_PIXELS = 4_000_000
"""With no level given, images below this many pixels get PNG level 1, larger ones level 0."""
