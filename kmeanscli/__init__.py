"""kmeanscli: compress images by reducing them to k colours with k-means clustering.

The library API, usable without the command line::

    import numpy as np
    from kmeanscli import quantize, compress_file

    result = quantize(pixels, 16, seed=0)        # pixels: uint8 (H, W, 3|4)
    report = compress_file("in.jpg", "out.png", 16)
    print(report.to_dict())
"""

from __future__ import annotations

from .api import CompressReport, compress_file, default_output, sample_image
from .core.metrics import mse, psnr
from .core.quantize import QuantizeResult, quantize
from .errors import InputError, KmeansCliError, OutputError, UsageError

__version__ = "0.1.0"

__all__ = [
    "CompressReport",
    "InputError",
    "KmeansCliError",
    "OutputError",
    "QuantizeResult",
    "UsageError",
    "__version__",
    "compress_file",
    "default_output",
    "mse",
    "psnr",
    "quantize",
    "sample_image",
]
