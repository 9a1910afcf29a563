"""One frozen set of quantization options, with one default per knob, validated once.

:class:`QuantizeOptions` is what ``compress``, ``batch``, ``compare``, ``palette`` and the
library's :func:`~kmeanscli.compress_file`, :func:`~kmeanscli.compare_k`,
:func:`~kmeanscli.dominant_colors` and :mod:`kmeanscli.batch` all take, so the same options
give the same bytes everywhere. Derive variants with :func:`dataclasses.replace`.

Errors are :class:`OptionsError` (a :class:`~kmeanscli.errors.UsageError`, so a
``ValueError``) in the library's words, naming the fields; the CLI renders the same message
with its flags instead (:meth:`OptionsError.render`).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .constants import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_ENGINE,
    DEFAULT_K,
    DEFAULT_MAX_ITER,
    DEFAULT_SPACE,
    DITHERS,
    ENGINES,
    MAX_COLORS,
    SPACES,
)
from .errors import UsageError

if TYPE_CHECKING:
    import numpy as np

    from .core.search import Target

__all__ = ["OptionsError", "QuantizeOptions", "parse_color"]

RGB = tuple[int, int, int]


class OptionsError(UsageError):
    """Options that are out of range or do not go together.

    ``template`` is the message with one ``{}`` per name in ``fields``; ``str()`` fills in
    the field names, :meth:`render` any other names (the CLI's flags).
    """

    def __init__(self, template: str, *fields: str) -> None:
        self.template = template
        self.fields = fields
        super().__init__(self.render({}))

    def render(self, names: Mapping[str, str]) -> str:
        """The message with each field called by ``names[field]`` (default: its own name)."""
        return self.template.format(*(names.get(f, f) for f in self.fields))


def parse_color(value: str | Sequence[int]) -> RGB:
    """``"#ff8000"``, ``"ff8000"``, ``"#f80"`` or an (r, g, b) triple as an RGB tuple.

    Raises
    ------
    ValueError
        For anything else.
    """
    if isinstance(value, str):
        from .core.palette_io import parse_hex

        r, g, b = parse_hex(value)
        return int(r), int(g), int(b)
    rgb = tuple(int(v) for v in value)
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise ValueError(f"{tuple(value)!r} is not an (r, g, b) triple of 0..255")
    return rgb[0], rgb[1], rgb[2]


def _colors(value: Any) -> tuple[RGB, ...]:
    """Hex strings, triples or a uint8 (n, 3) array as a tuple of RGB tuples."""
    if value is None:
        return ()
    if hasattr(value, "tolist") and getattr(value, "ndim", 1) == 2:
        value = value.tolist()
    return tuple(parse_color(v) for v in value)


def _whole(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class QuantizeOptions:
    """How an image is reduced to a palette: every knob, with its one default.

    Parameters
    ----------
    k : int, optional
        Palette size, 1 to 256. None (the default) means 16, unless ``targets`` choose k or
        ``palette`` gives the colours; giving ``k`` with either is an error.
    engine : {"lloyd", "minibatch"}
        The k-means engine (see :mod:`kmeanscli.core.kmeans`).
    space : {"rgb", "oklab", "lab"}
        Colour space of the clustering and of "nearest colour".
    seed : int
        Random seed, 0 to 2**32 - 1.
    max_iter : int
        ``lloyd``: Lloyd iterations on the coarsest colour bins; ``minibatch``: passes.
    restarts : int, optional
        k-means++ starts, the best palette kept; None: 3 for k <= 8, else 1.
    batch_size : int, optional
        ``MiniBatchKMeans`` mini-batch size; only with ``engine="minibatch"`` (None: 4096).
    dither : {"none", "fs"}
        Floyd–Steinberg error diffusion onto the palette.
    dither_strength : float
        0 to 1, the share of the error diffused; other than 1 only with ``dither="fs"``.
    palette : path or uint8 array (m, 3), optional
        A fixed palette: no k-means, every pixel to its nearest palette colour. A path is
        kept as a string, an array as a tuple of RGB tuples.
    keep_colors : hex strings, triples or a uint8 (n, 3) array
        Colours locked into the fitted palette (stored as RGB tuples).
    targets : sequence of Target
        Quality targets: the smallest k meeting all of them is used.

    Raises
    ------
    OptionsError
        For a value out of range or options that do not go together.
    """

    k: int | None = None
    engine: str = DEFAULT_ENGINE
    space: str = DEFAULT_SPACE
    seed: int = 0
    max_iter: int = DEFAULT_MAX_ITER
    restarts: int | None = None
    batch_size: int | None = None
    dither: str = "none"
    dither_strength: float = 1.0
    palette: str | tuple[RGB, ...] | None = None
    keep_colors: tuple[RGB, ...] = ()
    targets: tuple[Target, ...] = field(default=())

    def __post_init__(self) -> None:
        palette = self.palette
        if palette is not None and not isinstance(palette, str):
            if isinstance(palette, os.PathLike):
                palette = os.fspath(palette)
            else:
                try:
                    palette = _colors(palette)
                except (TypeError, ValueError) as exc:
                    raise OptionsError(f"{{}}: {exc}", "palette") from None
            object.__setattr__(self, "palette", palette)
        try:
            object.__setattr__(self, "keep_colors", _colors(self.keep_colors))
        except (TypeError, ValueError) as exc:
            raise OptionsError(f"{{}}: {exc}", "keep_colors") from None
        object.__setattr__(self, "targets", tuple(self.targets))
        self._check_ranges()
        self._check_combinations()

    def _check_ranges(self) -> None:
        if self.k is not None and (not _whole(self.k) or not 1 <= self.k <= MAX_COLORS):
            raise OptionsError(f"{{}} must be a whole number from 1 to {MAX_COLORS}", "k")
        if self.engine not in ENGINES:
            raise OptionsError(f"{{}} must be one of {', '.join(ENGINES)}", "engine")
        if self.space not in SPACES:
            raise OptionsError(f"{{}} must be one of {', '.join(SPACES)}", "space")
        if not _whole(self.seed) or not 0 <= self.seed < 2**32:
            raise OptionsError("{} must be a whole number from 0 to 4294967295", "seed")
        if not _whole(self.max_iter) or self.max_iter < 1:
            raise OptionsError("{} must be at least 1", "max_iter")
        if self.restarts is not None and (
            not _whole(self.restarts) or not 1 <= self.restarts <= 100
        ):
            raise OptionsError("{} must be a whole number from 1 to 100", "restarts")
        if self.batch_size is not None and (not _whole(self.batch_size) or self.batch_size < 16):
            raise OptionsError("{} must be at least 16", "batch_size")
        if self.dither not in DITHERS:
            raise OptionsError(f"{{}} must be one of {', '.join(DITHERS)}", "dither")
        strength = self.dither_strength
        if not isinstance(strength, (int, float)) or not (
            math.isfinite(strength) and 0.0 <= strength <= 1.0
        ):
            raise OptionsError("{} must be from 0 to 1", "dither_strength")
        if len(self.keep_colors) > MAX_COLORS:
            raise OptionsError(f"{{}}: more than {MAX_COLORS} colours", "keep_colors")

    def _check_combinations(self) -> None:
        if self.palette is not None and self.k is not None:
            raise OptionsError(
                "{} and {} do not go together: the palette gives the colours", "palette", "k"
            )
        if self.palette is not None and self.keep_colors:
            raise OptionsError(
                "{} and {} do not go together: a given palette is used as it is",
                "palette",
                "keep_colors",
            )
        if self.palette is not None and self.targets:
            raise OptionsError(
                "{} and {} do not go together: the palette is fixed", "palette", "targets"
            )
        if self.targets and self.k is not None:
            raise OptionsError("give {} or {}, not both", "k", "targets")
        if self.batch_size is not None and self.engine != "minibatch":
            raise OptionsError(
                "{} is a setting of the minibatch engine ({} minibatch)", "batch_size", "engine"
            )
        if self.dither_strength != 1.0 and self.dither != "fs":
            raise OptionsError(
                "{} needs Floyd–Steinberg dithering ({} fs)", "dither_strength", "dither"
            )
        n_keep = len(set(self.keep_colors))
        if not self.targets and n_keep > self.colors:
            raise OptionsError(
                f"{n_keep} colours to keep ({{}}) do not fit in a palette of {{}} = {self.colors}",
                "keep_colors",
                "k",
            )

    @property
    def colors(self) -> int:
        """The palette size asked for: ``k``, or 16 when ``k`` is not given."""
        return DEFAULT_K if self.k is None else self.k

    @property
    def min_colors(self) -> int:
        """The smallest palette that holds the locked colours (2 at least): where a search
        for k starts."""
        return max(2, len(set(self.keep_colors)))

    @property
    def mini_batch_size(self) -> int:
        """The ``minibatch`` engine's mini-batch size (``batch_size`` or its default)."""
        return DEFAULT_BATCH_SIZE if self.batch_size is None else self.batch_size

    @property
    def dithering(self) -> bool:
        """Whether any error is diffused."""
        return self.dither == "fs" and self.dither_strength > 0

    def keep_array(self) -> np.ndarray | None:
        """The locked colours as a uint8 (n, 3) array, or None."""
        import numpy as np

        return (
            np.array(self.keep_colors, dtype=np.uint8).reshape(-1, 3) if self.keep_colors else None
        )

    @property
    def palette_given(self) -> bool:
        """True when the user gave colours (a fixed palette or colours to keep): the output
        file keeps the palette as it is, in its order."""
        return self.palette is not None or bool(self.keep_colors)

    def fit_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`kmeanscli.quantize` (all but ``k``)."""
        return {
            "engine": self.engine,
            "space": self.space,
            "seed": self.seed,
            "max_iter": self.max_iter,
            "restarts": self.restarts,
            "batch_size": self.mini_batch_size,
            "keep": self.keep_array(),
        }
