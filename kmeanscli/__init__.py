"""kmeanscli: compress images by reducing them to k colours with k-means clustering.

The library API, usable without the command line::

    import numpy as np
    from kmeanscli import quantize, compress_file

    result = quantize(pixels, 16, seed=0)        # pixels: uint8 (H, W, 3|4)
    report = compress_file("in.jpg", "out.png", 16)
    print(report.to_dict())
"""

from __future__ import annotations

from .api import (
    CompressReport,
    PaletteReport,
    compress_file,
    default_output,
    dominant_colors,
    load_palette,
    sample_image,
    write_palette,
)
from .compare import Comparison, compare_files, compare_k
from .core.dither import floyd_steinberg
from .core.metrics import delta_e, mse, psnr, ssim
from .core.quantize import QuantizeResult, quantize
from .core.remap import map_to_palette
from .core.search import SearchResult, Target, search_k
from .errors import (
    InputError,
    KmeansCliError,
    NotSmallerError,
    OutputError,
    TargetNotMetError,
    UsageError,
)

__version__ = "0.1.0"

__all__ = [
    "Comparison",
    "CompressReport",
    "InputError",
    "KmeansCliError",
    "NotSmallerError",
    "OutputError",
    "PaletteReport",
    "QuantizeResult",
    "SearchResult",
    "Target",
    "TargetNotMetError",
    "UsageError",
    "__version__",
    "compare_files",
    "compare_k",
    "compress_file",
    "default_output",
    "delta_e",
    "dominant_colors",
    "floyd_steinberg",
    "load_palette",
    "map_to_palette",
    "mse",
    "psnr",
    "quantize",
    "sample_image",
    "search_k",
    "ssim",
    "write_palette",
]
