"""Option definitions shared by the commands (one place, so flags read the same everywhere)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

Colors = Annotated[
    int,
    typer.Option(
        "-k",
        "--colors",
        min=2,
        max=256,
        help="Number of colours in the output, 2 to 256.",
    ),
]
Seed = Annotated[
    int,
    typer.Option(
        "--seed",
        min=0,
        max=2**32 - 1,
        help="Random seed: the same input, options and seed give byte-identical output.",
    ),
]
MaxIter = Annotated[
    int,
    typer.Option(
        "--max-iter",
        min=1,
        help="Maximum k-means (Lloyd) iterations on the coarse colour histogram; "
        "the finer levels get fewer.",
    ),
]
BatchSize = Annotated[
    int,
    typer.Option(
        "--batch-size", min=16, help="MiniBatchKMeans mini-batch size of --shared-palette."
    ),
]
Force = Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing output file.")]
Strip = Annotated[
    bool, typer.Option("--strip", help="Drop the ICC colour profile instead of copying it.")
]
MaxPixels = Annotated[
    int | None,
    typer.Option(
        "--max-pixels",
        min=1,
        metavar="N",
        help="Accept images up to N pixels (default: Pillow's decompression-bomb limit, "
        "about 89 million).",
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
        help="Show the --plot figure in a window (without a display: a warning, no window).",
    ),
]
Plot = Annotated[
    Path | None,
    typer.Option(
        "--plot",
        metavar="FILE",
        dir_okay=False,
        help="Write the preview figure to FILE (.png, .svg or .pdf) without a display.",
    ),
]


class SpaceName(str, Enum):
    """Colour spaces for ``--space``."""

    rgb = "rgb"
    oklab = "oklab"
    lab = "lab"


class DitherName(str, Enum):
    """Dithering methods for ``--dither``."""

    none = "none"
    fs = "fs"


Space = Annotated[
    SpaceName,
    typer.Option(
        "--space",
        case_sensitive=False,
        help="Colour space k-means clusters in and where 'nearest colour' is measured: rgb "
        "(best PSNR), oklab or lab (perceptual; lab gives the lowest CIEDE2000 error).",
    ),
]
Dither = Annotated[
    DitherName,
    typer.Option(
        "--dither",
        case_sensitive=False,
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
        help="Share of the error that --dither fs diffuses (1 = full Floyd–Steinberg).",
    ),
]
PaletteOut = Annotated[
    Path | None,
    typer.Option(
        "--palette-out",
        metavar="FILE",
        dir_okay=False,
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
        help="Use this palette instead of k-means (.gpl .json .txt .act, or an image whose "
        "colours are taken); every pixel goes to its nearest palette colour. Not with -k.",
    ),
]
KeepColor = Annotated[
    list[str] | None,
    typer.Option(
        "--keep-color",
        metavar="HEX",
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
        help="Independent k-means++ starts; the palette with the lowest error is kept; "
        "each start costs one fit. Default: 3 for k <= 8, else 1.",
    ),
]
PlotColors = Annotated[
    Path | None,
    typer.Option(
        "--plot-colors",
        metavar="FILE",
        dir_okay=False,
        help="Write the image's colours as a 3D RGB point cloud with the palette marked, and "
        "the palette swatches, to FILE (.png, .svg or .pdf).",
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
        metavar="DB",
        help="Quality target: the smallest k (2-256) whose PSNR is at least DB decibels.",
    ),
]
TargetSsim = Annotated[
    float | None,
    typer.Option(
        "--target-ssim",
        metavar="S",
        help="Quality target: the smallest k (2-256) whose SSIM is at least S (up to 1).",
    ),
]
MaxDeltaE = Annotated[
    float | None,
    typer.Option(
        "--max-delta-e",
        metavar="E",
        help="Quality target: the smallest k (2-256) whose mean CIEDE2000 ΔE is at most E "
        "(about 1 is barely visible).",
    ),
]
SkipIfLarger = Annotated[
    bool,
    typer.Option(
        "--skip-if-larger",
        help="Write nothing when the output would not be smaller than the input (compress "
        "then exits with status 98; batch reports the file as skipped).",
    ),
]
