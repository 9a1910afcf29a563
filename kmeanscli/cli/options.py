"""Option definitions shared by the commands (one place, so flags read the same everywhere).

The options that decide how an image is quantized form one group, added to a command by
:func:`quantize_options`: the command receives one :class:`kmeanscli.QuantizeOptions`, built
once here from the flags that were given (a flag left out takes the library's one default).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from ..constants import (
    AUTO_RESTARTS_MAX_K,
    DEFAULT_BATCH_SIZE,
    DEFAULT_K,
    DEFAULT_KS,
    DITHERS,
    ENGINES,
    SPACES,
)
from ..errors import UsageError

# The panels of --help, so that no panel lists more than about eight options.
COLOURS = "Colours"
PALETTES = "Palettes"
TARGETS = "Quality targets"
KMEANS = "k-means"
FILES = "Files"
FIGURES = "Figures"
PERFORMANCE = "Performance"

FLAGS: dict[str, str] = {
    "k": "-k/--colors",
    "engine": "--engine",
    "space": "--space",
    "seed": "--seed",
    "max_iter": "--max-iter",
    "restarts": "--restarts",
    "batch_size": "--batch-size",
    "dither": "--dither",
    "dither_strength": "--dither-strength",
    "palette": "--palette",
    "keep_colors": "--keep-color",
    "targets": "a quality target (--target-psnr, --target-ssim, --max-delta-e)",
    "format": "--format",
    "shared_palette": "--shared-palette",
    "optimize": "--optimize",
}
"""How the CLI names the fields of the library's options (for its error messages)."""


def _colors_option(default_k: int, minimum: int = 2) -> Any:
    return Annotated[
        int | None,
        typer.Option(
            "-k",
            "--colors",
            min=minimum,
            max=256,
            metavar="K",
            show_default=False,
            help=(
                f"Palette size, {minimum} to 256: at most K entries, a transparent one included. "
                if minimum == 2
                else f"How many colours, {minimum} to 256. "
            )
            + f"Default: {default_k}.",
        ),
    ]


Colors = _colors_option(DEFAULT_K)
Seed = Annotated[
    int,
    typer.Option(
        "--seed",
        min=0,
        max=2**32 - 1,
        metavar="N",
        rich_help_panel=KMEANS,
        help="Random seed, 0 to 4294967295: the same input, options and seed give "
        "byte-identical output.",
    ),
]
MaxIter = Annotated[
    int,
    typer.Option(
        "--max-iter",
        min=1,
        metavar="N",
        rich_help_panel=KMEANS,
        help="lloyd: maximum Lloyd iterations on the coarse colour histogram (the finer "
        "levels get fewer); minibatch: passes over the histogram.",
    ),
]
BatchSize = Annotated[
    int | None,
    typer.Option(
        "--batch-size",
        min=16,
        metavar="N",
        show_default=False,
        rich_help_panel=KMEANS,
        help="Mini-batch size of the minibatch engine (only with --engine minibatch), at "
        "least 16. "
        f"Default: {DEFAULT_BATCH_SIZE}.",
    ),
]
Force = Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing output file.")]
Strip = Annotated[
    bool,
    typer.Option(
        "--strip",
        rich_help_panel=FILES,
        help="Drop the ICC colour profile and the resolution (dpi) instead of copying them.",
    ),
]
Optimize = Annotated[
    int | None,
    typer.Option(
        "--optimize",
        "-O",
        min=0,
        max=2,
        metavar="LEVEL",
        show_default=False,
        rich_help_panel=FILES,
        help="PNG compression: 0 zlib (fastest), 1 libdeflate (about 7 % smaller), 2 also "
        "tries row filters (about 10 % smaller again, 0.1-0.35 s per 0.3 MP). Default: 1 below "
        "4 MP, 0 from there. For WebP, libwebp's effort (2: about 5 % smaller, 3 s per 0.3 MP).",
    ),
]
MaxPixels = Annotated[
    int | None,
    typer.Option(
        "--max-pixels",
        min=1,
        metavar="N",
        rich_help_panel=FILES,
        help="Accept images up to N pixels. Default: Pillow's decompression-bomb limit, "
        "about 89 million.",
    ),
]
Json = Annotated[
    bool, typer.Option("--json", help="Print the report as JSON on stdout (and nothing else).")
]
Csv = Annotated[
    bool, typer.Option("--csv", help="Print the report as CSV on stdout (and nothing else).")
]
Quiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress, report or warnings; errors only.")
]
Preview = Annotated[
    bool,
    typer.Option(
        "--preview",
        rich_help_panel=FIGURES,
        help="Show the --plot figure in a window (without a display: a warning, no window).",
    ),
]
Plot = Annotated[
    Path | None,
    typer.Option(
        "--plot",
        metavar="FILE",
        dir_okay=False,
        rich_help_panel=FIGURES,
        help="Write the preview figure to FILE (.png, .svg or .pdf) without a display.",
    ),
]

Methods = Annotated[
    str | None,
    typer.Option(
        "--methods",
        metavar="M,M,...",
        help="Quantizers to compare at each k: kmeans (with --engine), minibatch (the "
        "minibatch engine), mediancut, octree (Pillow's median cut and fast octree, no "
        "dither). Default: kmeans.",
    ),
]


# The choices of --space, --engine and --dither, from the library's lists.
SpaceName = Enum("SpaceName", {name: name for name in SPACES}, type=str)
EngineName = Enum("EngineName", {name: name for name in ENGINES}, type=str)
DitherName = Enum("DitherName", {name: name for name in DITHERS}, type=str)


def k_list_option(what: str, more: str = "") -> Any:
    """``-k K,K,...`` of ``compare`` and ``report``: the k values to ``what`` (``more``
    adds to the note on the default)."""
    return Annotated[
        str | None,
        typer.Option(
            "-k",
            "--colors",
            metavar="K,K,...",
            help=f"The k values to {what}, 2 to 256, separated by commas. Default: "
            + ",".join(map(str, DEFAULT_KS))
            + f" (none with a quality target: only the k values the search tries{more}).",
        ),
    ]


Space = Annotated[
    SpaceName,
    typer.Option(
        "--space",
        case_sensitive=False,
        metavar="|".join(SPACES),
        rich_help_panel=COLOURS,
        help="Colour space k-means clusters in and where 'nearest colour' is measured: rgb "
        "(best PSNR), oklab or lab (perceptual; lab gives the lowest CIEDE2000 error).",
    ),
]
Engine = Annotated[
    EngineName,
    typer.Option(
        "--engine",
        case_sensitive=False,
        metavar="|".join(ENGINES),
        rich_help_panel=KMEANS,
        help="k-means engine: lloyd (exact weighted Lloyd on the colour histogram, coarse "
        "to fine) or minibatch (scikit-learn's MiniBatchKMeans on the weighted histogram).",
    ),
]
Dither = Annotated[
    DitherName,
    typer.Option(
        "--dither",
        case_sensitive=False,
        metavar="|".join(DITHERS),
        rich_help_panel=COLOURS,
        help="Error diffusion onto the palette: none, or fs (Floyd–Steinberg).",
    ),
]
DitherStrength = Annotated[
    float,
    typer.Option(
        "--dither-strength",
        min=0.0,
        max=1.0,
        metavar="0..1",
        rich_help_panel=COLOURS,
        help="Share of the error that --dither fs diffuses, 0 to 1 (1 = full Floyd–Steinberg).",
    ),
]
PaletteOut = Annotated[
    Path | None,
    typer.Option(
        "--palette-out",
        metavar="FILE",
        dir_okay=False,
        rich_help_panel=PALETTES,
        help="Also write the palette: .gpl (GIMP), .json (hex, RGB, pixel share), .txt "
        "(hex per line), .act (Adobe) or .png (swatch strip).",
    ),
]
PaletteIn = Annotated[
    Path | None,
    typer.Option(
        "--palette",
        metavar="FILE",
        dir_okay=False,
        rich_help_panel=PALETTES,
        help="Use this palette instead of k-means (.gpl .json .txt .act, or an image whose "
        "colours are taken); every pixel goes to its nearest palette colour. Not with -k.",
    ),
]
KeepColor = Annotated[
    list[str] | None,
    typer.Option(
        "--keep-color",
        metavar="HEX",
        rich_help_panel=PALETTES,
        help="Lock this colour (#rrggbb) into the fitted palette; repeat for more.",
    ),
]
Restarts = Annotated[
    int | None,
    typer.Option(
        "--restarts",
        min=1,
        max=100,
        metavar="N",
        rich_help_panel=KMEANS,
        help="Independent k-means++ starts, 1 to 100; the palette with the lowest error is kept; "
        f"each start costs one fit. Default: 3 for k <= {AUTO_RESTARTS_MAX_K}, else 1.",
    ),
]
PlotColors = Annotated[
    Path | None,
    typer.Option(
        "--plot-colors",
        metavar="FILE",
        dir_okay=False,
        rich_help_panel=FIGURES,
        help="Write the image's colours as a 3D RGB point cloud with the palette marked, and "
        "the palette swatches, to FILE (.png, .svg or .pdf). Its k: the chosen one with a "
        "target, else the smallest -k, else 16 (alone, only k=16 is fitted).",
    ),
]
Sample = Annotated[
    bool,
    typer.Option(
        "--sample",
        help="Use the built-in sample photo (scikit-learn's china.jpg) as IN; an output "
        "named after it goes to the current folder.",
    ),
]
TargetPsnr = Annotated[
    float | None,
    typer.Option(
        "--target-psnr",
        rich_help_panel=TARGETS,
        metavar="DB",
        help="Quality target: the smallest k (2-256) whose PSNR is at least DB decibels.",
    ),
]
TargetSsim = Annotated[
    float | None,
    typer.Option(
        "--target-ssim",
        rich_help_panel=TARGETS,
        metavar="S",
        help="Quality target: the smallest k (2-256) whose SSIM is at least S (up to 1).",
    ),
]
MaxDeltaE = Annotated[
    float | None,
    typer.Option(
        "--max-delta-e",
        rich_help_panel=TARGETS,
        metavar="E",
        help="Quality target: the smallest k (2-256) whose mean CIEDE2000 ΔE is at most E "
        "(about 1 is barely visible).",
    ),
]
SkipIfLarger = Annotated[
    bool,
    typer.Option(
        "--skip-if-larger",
        rich_help_panel=TARGETS,
        help="Write nothing when the output would not be smaller than the input (compress "
        "then exits with status 98; batch reports the file as skipped).",
    ),
]


def _targets(psnr: float | None, ssim: float | None, delta_e: float | None) -> tuple:
    """The quality targets given, checked (naming the flag of a bad one)."""
    from ..core.search import Target

    out = []
    for metric, flag, value in (
        ("psnr", "--target-psnr", psnr),
        ("ssim", "--target-ssim", ssim),
        ("delta_e", "--max-delta-e", delta_e),
    ):
        if value is not None:
            try:
                out.append(Target(metric, float(value)))
            except ValueError as exc:
                raise UsageError(f"{flag} {value}: {str(exc).rstrip('.')}") from None
    return tuple(out)


def _default(field: str, kind: Any = None) -> Any:
    """The library's one default of a :class:`kmeanscli.QuantizeOptions` field (as the
    CLI's enum ``kind`` when given), shown in ``--help``."""
    from ..options import QuantizeOptions

    value = QuantizeOptions.__dataclass_fields__[field].default
    return kind(value) if kind is not None else value


# The group: CLI parameter -> (annotation, default shown, the QuantizeOptions field it sets).
# A flag left out is not passed on: the field keeps the library's default.
_GROUP: dict[str, tuple[Any, Any, str]] = {
    "colors": (Colors, None, "k"),
    "engine": (Engine, _default("engine", EngineName), "engine"),
    "space": (Space, _default("space", SpaceName), "space"),
    "dither": (Dither, _default("dither", DitherName), "dither"),
    "dither_strength": (DitherStrength, _default("dither_strength"), "dither_strength"),
    "palette": (PaletteIn, None, "palette"),
    "keep_color": (KeepColor, None, "keep_colors"),
    "restarts": (Restarts, None, "restarts"),
    "seed": (Seed, _default("seed"), "seed"),
    "max_iter": (MaxIter, _default("max_iter"), "max_iter"),
    "batch_size": (BatchSize, None, "batch_size"),
    "target_psnr": (TargetPsnr, None, "targets"),
    "target_ssim": (TargetSsim, None, "targets"),
    "max_delta_e": (MaxDeltaE, None, "targets"),
}
_TARGET_FLAGS = ("target_psnr", "target_ssim", "max_delta_e")
_CTX = "quantize_options_context"  # the Typer context, to see which flags were given


def given_flags(ctx: typer.Context, names: list[str]) -> list[str]:
    """Which of these parameters of the running command were given on the command line."""
    given = []
    for name in names:
        source = ctx.get_parameter_source(name)
        if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
            given.append(name)
    return given


def build_options(ctx: typer.Context, values: dict[str, Any]) -> Any:
    """One :class:`kmeanscli.QuantizeOptions` from the group's values: only the flags given
    are passed, so every other field keeps the library's default."""
    from ..options import QuantizeOptions

    given = set(given_flags(ctx, list(values)))
    fields: dict[str, Any] = {}
    for name, value in values.items():
        field = _GROUP[name][2]
        if name in given and field != "targets":
            fields[field] = value.value if isinstance(value, Enum) else value
    if "palette" in fields:
        fields["palette"] = str(fields["palette"])
    targets = _targets(*(values.get(n) for n in _TARGET_FLAGS))
    if targets:
        fields["targets"] = targets
    return QuantizeOptions(**fields)


def quantize_options(
    *,
    k: int | None = DEFAULT_K,
    k_min: int = 2,
    palette: bool = True,
    dither: bool = True,
    targets: bool = True,
    batch_size: bool = True,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the quantization options to a command; it gets ``options: QuantizeOptions``.

    ``k`` is the default shown for ``-k`` (None: the command has its own ``-k``) and
    ``k_min`` its smallest value; ``palette``, ``dither``, ``targets`` and ``batch_size``
    say whether those flags belong to the group on this command.
    """
    left_out = {
        "colors": k is None,
        "palette": not palette,
        "dither": not dither,
        "dither_strength": not dither,
        "batch_size": not batch_size,
        **dict.fromkeys(_TARGET_FLAGS, not targets),
    }
    names = [n for n in _GROUP if not left_out.get(n, False)]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command)
        own = [
            p.replace(annotation=_evaluate(p.annotation, command))
            for p in signature.parameters.values()
            if p.name not in ("options", "ctx")
        ]
        group = []
        for name in names:
            annotation, default, _field = _GROUP[name]
            if name == "colors" and (k, k_min) != (DEFAULT_K, 2):
                annotation = _colors_option(k, minimum=k_min)
            group.append(
                inspect.Parameter(
                    name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default
                )
            )
        # the command's own arguments first, then the group, then its other options
        arguments = [p for p in own if p.default is inspect.Parameter.empty or _is_argument(p)]
        rest = [p for p in own if p not in arguments]
        context = inspect.Parameter(
            _CTX, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context, default=None
        )
        params = [
            *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in arguments),
            *group,
            *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in rest),
            context,
        ]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            values = {name: kwargs.pop(name) for name in names}
            ctx = kwargs.pop(_CTX)
            if "ctx" in signature.parameters:  # the command wants its Typer context too
                kwargs["ctx"] = ctx
            return command(**kwargs, options=build_options(ctx, values))

        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper

    return decorate


def _evaluate(annotation: Any, command: Callable[..., Any]) -> Any:
    """A string annotation (``from __future__ import annotations``) as its object."""
    if isinstance(annotation, str):
        return eval(annotation, command.__globals__)
    return annotation


def _is_argument(param: inspect.Parameter) -> bool:
    metadata = getattr(param.annotation, "__metadata__", ())
    return any(isinstance(m, typer.models.ArgumentInfo) for m in metadata)
