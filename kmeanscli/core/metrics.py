"""Error metrics between an original image and its quantized version.

Both images are ``uint8`` arrays of the same shape ``(..., C)`` with ``C`` = 3 (RGB) or 4
(RGBA). The error is the mean over every pixel and every channel. For RGBA images a pixel that
is fully transparent in both images counts as exact (its RGB values are invisible).
"""

from __future__ import annotations

import math

import numpy as np


def squared_error_sum(original: np.ndarray, quantized: np.ndarray) -> int:
    """Sum of squared channel differences, as an exact integer."""
    if original.shape != quantized.shape:
        raise ValueError(f"images have different shapes: {original.shape} and {quantized.shape}.")
    a = original.reshape(-1, original.shape[-1]).astype(np.int32)
    b = quantized.reshape(-1, quantized.shape[-1]).astype(np.int32)
    if a.shape[1] == 4:
        hidden = (a[:, 3] == 0) & (b[:, 3] == 0)
        a[hidden, :3] = 0
        b[hidden, :3] = 0
    diff = a - b
    return int(np.einsum("ij,ij->", diff, diff, dtype=np.int64))


def mse(original: np.ndarray, quantized: np.ndarray) -> float:
    """Mean squared error per channel in 8-bit units (0 for identical images)."""
    n = original.size
    if n == 0:
        raise ValueError("cannot compute the error of an empty image.")
    return squared_error_sum(original, quantized) / n


def psnr_from_mse(value: float) -> float:
    """Peak signal-to-noise ratio in dB for an MSE in 8-bit units (``inf`` when 0)."""
    if value <= 0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / value)


def psnr(original: np.ndarray, quantized: np.ndarray) -> float:
    """PSNR in dB between two 8-bit images (``inf`` for identical images)."""
    return psnr_from_mse(mse(original, quantized))
