"""kmeanscli: compress images by reducing them to k colours with k-means clustering.

The library API, usable without the command line::

    import numpy as np
    from kmeanscli import QuantizeOptions, compress_file, quantize

    result = quantize(pixels, 16, seed=0)        # pixels: uint8 (H, W, 3|4)
    report = compress_file("in.jpg", "out.png", QuantizeOptions(k=16))
    print(report.to_dict())
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public names -> the module that defines them. They are imported on first use (PEP 562), so
# `import kmeanscli` and the CLI's start-up stay fast and Ctrl-C during start-up is handled.
_EXPORTS: dict[str, str] = {
    "CompressReport": ".api",
    "PaletteReport": ".api",
    "compress_file": ".api",
    "default_output": ".api",
    "dominant_colors": ".api",
    "load_palette": ".api",
    "sample_image": ".api",
    "write_palette": ".api",
    "Comparison": ".compare",
    "compare_files": ".compare",
    "compare_k": ".compare",
    "floyd_steinberg": ".core.dither",
    "delta_e": ".core.metrics",
    "mse": ".core.metrics",
    "psnr": ".core.metrics",
    "ssim": ".core.metrics",
    "QuantizeResult": ".core.quantize",
    "quantize": ".core.quantize",
    "map_to_palette": ".core.remap",
    "OptionsError": ".options",
    "QuantizeOptions": ".options",
    "SearchResult": ".core.search",
    "Target": ".core.search",
    "search_k": ".core.search",
    "InputError": ".errors",
    "KmeansCliError": ".errors",
    "NotSmallerError": ".errors",
    "OutputError": ".errors",
    "TargetNotMetError": ".errors",
    "UsageError": ".errors",
}

if TYPE_CHECKING:  # pragma: no cover
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
    from .options import OptionsError, QuantizeOptions


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kmeanscli' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "Comparison",
    "CompressReport",
    "InputError",
    "KmeansCliError",
    "NotSmallerError",
    "OptionsError",
    "OutputError",
    "PaletteReport",
    "QuantizeOptions",
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
