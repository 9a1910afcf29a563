"""Error metrics between an original image and its quantized version.

Both images are ``uint8`` arrays of the same shape ``(..., C)`` with ``C`` = 3 (RGB) or 4
(RGBA). The error is the mean over every pixel and every channel. For RGBA images a pixel that
is fully transparent in both images counts as exact (its RGB values are invisible).

The perceptual metrics, :func:`ssim` and :func:`delta_e`, come from scikit-image (imported only
when they are called). They need images of shape ``(H, W, C)``; RGBA images are first
composited over white, as a viewer would show them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Scores",
    "delta_e",
    "mse",
    "premultiplied_error",
    "psnr",
    "psnr_from_mse",
    "same_channels",
    "scores",
    "squared_error_sum",
    "ssim",
    "visible_colors",
    "visible_rgb",
    "weighted_squared_error",
]

_SSIM_WINDOW = 7  # scikit-image's default window for structural_similarity
_STRIP_PIXELS = 1 << 20  # pixels per strip: bounds the memory of the SSIM and ΔE passes


def squared_error_sum(original: np.ndarray, quantized: np.ndarray) -> float:
    """Sum of squared channel differences, exact.

    RGB: the 8-bit differences. RGBA: the differences of the colours as they are seen,
    premultiplied by their alpha (``r * a / 255`` ...), plus the alpha difference; so a
    colour hidden by a low alpha costs little and pixels transparent in both cost nothing.
    Summed in integers (``(r1 a1 - r2 a2)^2 + 255^2 (a1 - a2)^2``, over 255^2 at the end):
    the same value whatever the order of the pixels.
    """
    if original.shape != quantized.shape:
        raise ValueError(f"images have different shapes: {original.shape} and {quantized.shape}.")
    a = original.reshape(-1, original.shape[-1])
    b = quantized.reshape(-1, quantized.shape[-1])
    return premultiplied_error(a, b) if a.shape[1] == 4 else float(_int_sq(a, b))


def _int_sq(a: np.ndarray, b: np.ndarray, weights: np.ndarray | None = None) -> int:
    total = 0
    for start in range(0, len(a), _STRIP_PIXELS):  # bounded int64 temporaries
        diff = a[start : start + _STRIP_PIXELS].astype(np.int64) - b[start : start + _STRIP_PIXELS]
        per = np.einsum("ij,ij->i", diff, diff)
        total += int(
            per.sum() if weights is None else np.dot(per, weights[start : start + _STRIP_PIXELS])
        )
    return total


def weighted_squared_error(a: np.ndarray, b: np.ndarray, weights: np.ndarray) -> float:
    """:func:`squared_error_sum` of colour rows (uint8, (n, 3|4)) each counting ``weights``
    times (a histogram's pixel counts): the same value as summing every pixel."""
    if a.shape[1] == 4:
        return premultiplied_error(a, b, weights)
    return float(_int_sq(a, b, weights))


def premultiplied_error(a: np.ndarray, b: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Squared error of RGBA rows (uint8, (n, 4)) as they are seen, optionally weighted by
    integer ``weights`` (pixel counts): see :func:`squared_error_sum`."""

    def seen(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.int64)
        out = np.empty_like(x)
        out[:, :3] = x[:, :3] * x[:, 3:4]
        out[:, 3] = x[:, 3] * 255
        return out

    total = 0
    for start in range(0, len(a), _STRIP_PIXELS):
        stop = start + _STRIP_PIXELS
        w = None if weights is None else weights[start:stop]
        total += _int_sq(seen(a[start:stop]), seen(b[start:stop]), w)
    return total / 255**2


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


def same_channels(original: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both images with the same channels: when one is RGB and the other RGBA, the RGB one
    gets an opaque alpha channel (a file written without alpha is opaque)."""
    if original.shape[-1] == other.shape[-1]:
        return original, other

    def rgba(image: np.ndarray) -> np.ndarray:
        if image.shape[-1] == 4:
            return image
        alpha = np.full((*image.shape[:-1], 1), 255, dtype=np.uint8)
        return np.concatenate([image, alpha], axis=-1)

    return rgba(original), rgba(other)


def visible_colors(image: np.ndarray) -> int:
    """Distinct visible colours of an image: fully transparent pixels do not count (a
    palette's transparent entry is no colour), partly transparent ones count with alpha."""
    from .histogram import histogram

    flat = image.reshape(-1, image.shape[-1])
    if flat.shape[1] == 4:
        flat = flat[flat[:, 3] > 0]
    return len(histogram(np.ascontiguousarray(flat)).counts) if len(flat) else 0


def visible_rgb(image: np.ndarray) -> np.ndarray:
    """The image as a viewer shows it: RGB in 0..255, RGBA composited over white.

    Returns the input itself for RGB and a float64 array for RGBA.
    """
    if image.shape[-1] == 3:
        return image
    if image.shape[-1] != 4:
        raise ValueError(f"expected 3 (RGB) or 4 (RGBA) channels; got shape {image.shape}.")
    f = image.astype(np.float64)
    alpha = f[..., 3:4] / 255.0
    return f[..., :3] * alpha + 255.0 * (1.0 - alpha)


def _check_pair(original: np.ndarray, other: np.ndarray) -> None:
    if original.shape != other.shape:
        raise ValueError(f"images have different shapes: {original.shape} and {other.shape}.")
    if original.ndim != 3 or original.shape[-1] not in (3, 4):
        raise ValueError(f"expected images of shape (H, W, 3|4); got {original.shape}.")
    if original.size == 0:
        raise ValueError("cannot compare empty images.")


def _strip_rows(width: int) -> int:
    return max(4 * _SSIM_WINDOW, _STRIP_PIXELS // max(width, 1))


def ssim(original: np.ndarray, other: np.ndarray, *, strip_rows: int | None = None) -> float:
    """Mean structural similarity (SSIM) over the colour channels, 1.0 for identical images.

    scikit-image's ``structural_similarity`` with ``channel_axis=-1``, ``data_range=255`` and
    its default 7×7 uniform window (smaller, odd, for images under 7 pixels on a side).

    Parameters
    ----------
    original, other : ndarray of uint8, shape (H, W, 3|4)
    strip_rows : int, optional
        Large images are scored in horizontal strips of this many rows (with the window's
        overlap, so the value is the same as in one pass) to bound memory. Default: about a
        million pixels per strip.

    Returns
    -------
    float
        NaN for an image under 3 pixels on a side, where SSIM is undefined.
    """
    from skimage.metrics import structural_similarity  # heavy import, only when asked

    _check_pair(original, other)
    a, b = visible_rgb(original), visible_rgb(other)
    height, width = a.shape[:2]
    win = min(_SSIM_WINDOW, height, width)
    win -= 1 - win % 2  # odd
    if win < 3:
        return math.nan
    options = {"channel_axis": -1, "data_range": 255.0, "win_size": win}
    step = strip_rows or _strip_rows(width)
    if height <= step:
        return float(structural_similarity(a, b, **options))
    pad = (win - 1) // 2
    total = 0.0
    for top in range(pad, height - pad, step):
        bottom = min(top + step, height - pad)
        _, full = structural_similarity(
            a[top - pad : bottom + pad], b[top - pad : bottom + pad], full=True, **options
        )
        total += float(full[pad : pad + bottom - top, pad : width - pad].sum(dtype=np.float64))
    return total / ((height - 2 * pad) * (width - 2 * pad) * 3)


def delta_e(original: np.ndarray, other: np.ndarray) -> float:
    """Mean CIEDE2000 colour difference (ΔE00) per pixel; 0 for identical images.

    Both images go through scikit-image's ``rgb2lab`` (sRGB, D65) and ``deltaE_ciede2000``.
    About 1 is a just-noticeable difference; above about 5 the colours read as different.

    Parameters
    ----------
    original, other : ndarray of uint8, shape (H, W, 3|4)
    """
    from skimage.color import deltaE_ciede2000, rgb2lab  # heavy import, only when asked

    _check_pair(original, other)
    a = visible_rgb(original).reshape(-1, 3)
    b = visible_rgb(other).reshape(-1, 3)
    total = 0.0
    for start in range(0, len(a), _STRIP_PIXELS):
        la = rgb2lab(a[start : start + _STRIP_PIXELS].astype(np.float64) / 255.0)
        lb = rgb2lab(b[start : start + _STRIP_PIXELS].astype(np.float64) / 255.0)
        total += float(deltaE_ciede2000(la, lb, channel_axis=-1).sum(dtype=np.float64))
    return total / len(a)


@dataclass(frozen=True)
class Scores:
    """How close an image is to its original (see :func:`scores`)."""

    mse: float
    """Mean squared error per channel, 8-bit units."""
    psnr: float
    """PSNR in dB (``inf`` when identical)."""
    ssim: float
    """Mean SSIM, 1.0 when identical."""
    delta_e: float
    """Mean CIEDE2000 ΔE per pixel, 0 when identical."""


def scores(original: np.ndarray, other: np.ndarray, *, mse_value: float | None = None) -> Scores:
    """All four metrics of ``other`` against ``original``.

    ``mse_value`` may pass an MSE already known (a :class:`~kmeanscli.QuantizeResult` carries
    it) to skip recomputing it.
    """
    _check_pair(original, other)
    m = mse(original, other) if mse_value is None else float(mse_value)
    return Scores(
        mse=m, psnr=psnr_from_mse(m), ssim=ssim(original, other), delta_e=delta_e(original, other)
    )
