"""Colour-space conversions: sRGB, linear RGB, OKLab and CIELAB (D65), vectorised in numpy.

Conventions
-----------
- **sRGB** values are 8-bit code values on a 0..255 scale (``uint8`` or float). Functions that
  return sRGB return float64 in 0..255, neither rounded nor clipped: the caller decides.
- **linear** RGB is on a 0..1 scale (the sRGB transfer function removed, IEC 61966-2-1).
- **OKLab** is Björn Ottosson's perceptual space (https://bottosson.github.io/posts/oklab/):
  ``L`` in 0..1 (white is ``(1, 0, 0)``), ``a`` and ``b`` roughly in -0.4..0.4.
- **CIELAB** is CIE 1976 L*a*b* relative to the D65 white point (2° observer), ``L*`` in
  0..100, with the same sRGB -> XYZ matrix as scikit-image's ``rgb2lab``.

All functions take arrays of shape ``(..., 3)`` and return float64 arrays of the same shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

from ..constants import SPACES

__all__ = [
    "SPACES",
    "Space",
    "from_space",
    "lab_to_srgb",
    "linear_to_oklab",
    "linear_to_srgb",
    "oklab_to_linear",
    "oklab_to_srgb",
    "srgb_to_lab",
    "srgb_to_linear",
    "srgb_to_oklab",
    "to_space",
]

Space = Literal["rgb", "oklab", "lab"]
"""The colour spaces k-means can cluster in."""

# Björn Ottosson's OKLab matrices (linear sRGB -> LMS, LMS^(1/3) -> Lab) and their inverses.
_RGB_TO_LMS = np.array(
    [
        [0.4122214708, 0.5363325363, 0.0514459929],
        [0.2119034982, 0.6806995451, 0.1073969566],
        [0.0883024619, 0.2817188376, 0.6299787005],
    ]
)
_LMS_TO_OKLAB = np.array(
    [
        [0.2104542553, 0.7936177850, -0.0040720468],
        [1.9779984951, -2.4285922050, 0.4505937099],
        [0.0259040371, 0.7827717662, -0.8086757660],
    ]
)
_OKLAB_TO_LMS = np.array(
    [
        [1.0, 0.3963377774, 0.2158037573],
        [1.0, -0.1055613458, -0.0638541728],
        [1.0, -0.0894841775, -1.2914855480],
    ]
)
_LMS_TO_RGB = np.array(
    [
        [4.0767416621, -3.3077115913, 0.2309699292],
        [-1.2684380046, 2.6097574011, -0.3413193965],
        [-0.0041960863, -0.7034186147, 1.7076147010],
    ]
)

# sRGB (D65) -> CIE XYZ, as in scikit-image, and the D65 reference white (2° observer).
_RGB_TO_XYZ = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
_D65 = np.array([0.95047, 1.0, 1.08883])
_DELTA = 6.0 / 29.0


def _as3(x: np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.shape[-1:] != (3,):
        raise ValueError(f"colours must have shape (..., 3); got {a.shape}.")
    return a


def srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    """sRGB code values (0..255) to linear RGB (0..1), with the exact sRGB transfer curve."""
    c = _as3(srgb) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """Linear RGB (0..1) to sRGB code values (0..255 as float64, not rounded or clipped).

    Negative values (out of gamut) keep their sign through the curve.
    """
    c = _as3(linear)
    mag = np.abs(c)
    curve = np.where(mag <= 0.0031308, 12.92 * mag, 1.055 * mag ** (1.0 / 2.4) - 0.055)
    return np.copysign(curve, c) * 255.0


def linear_to_oklab(linear: np.ndarray) -> np.ndarray:
    """Linear RGB (0..1) to OKLab."""
    lms = _as3(linear) @ _RGB_TO_LMS.T
    return np.cbrt(lms) @ _LMS_TO_OKLAB.T


def oklab_to_linear(lab: np.ndarray) -> np.ndarray:
    """OKLab to linear RGB (0..1; out-of-gamut colours fall outside it)."""
    lms = (_as3(lab) @ _OKLAB_TO_LMS.T) ** 3
    return lms @ _LMS_TO_RGB.T


def srgb_to_oklab(srgb: np.ndarray) -> np.ndarray:
    """sRGB code values (0..255) to OKLab."""
    return linear_to_oklab(srgb_to_linear(srgb))


def oklab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """OKLab to sRGB code values (0..255 as float64, not rounded or clipped)."""
    return linear_to_srgb(oklab_to_linear(lab))


def srgb_to_lab(srgb: np.ndarray) -> np.ndarray:
    """sRGB code values (0..255) to CIELAB (D65)."""
    xyz = (srgb_to_linear(srgb) @ _RGB_TO_XYZ.T) / _D65
    f = np.where(xyz > _DELTA**3, np.cbrt(xyz), xyz / (3 * _DELTA**2) + 4.0 / 29.0)
    out = np.empty_like(f)
    out[..., 0] = 116.0 * f[..., 1] - 16.0
    out[..., 1] = 500.0 * (f[..., 0] - f[..., 1])
    out[..., 2] = 200.0 * (f[..., 1] - f[..., 2])
    return out


def lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB (D65) to sRGB code values (0..255 as float64, not rounded or clipped)."""
    lab = _as3(lab)
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    xyz = np.where(f > _DELTA, f**3, 3 * _DELTA**2 * (f - 4.0 / 29.0)) * _D65
    return linear_to_srgb(xyz @ _XYZ_TO_RGB.T)


def _convert(x: np.ndarray, space: str, converters: dict[str, Callable]) -> np.ndarray:
    if space == "rgb":
        return _as3(x).copy()
    if space not in converters:
        raise ValueError(f"unknown colour space {space!r}; use one of {', '.join(SPACES)}.")
    return converters[space](x)


def to_space(srgb: np.ndarray, space: str) -> np.ndarray:
    """sRGB code values (0..255) to ``space`` ("rgb" returns them as float64 unchanged)."""
    return _convert(srgb, space, {"oklab": srgb_to_oklab, "lab": srgb_to_lab})


def from_space(values: np.ndarray, space: str) -> np.ndarray:
    """Colours in ``space`` back to sRGB code values (float64, not rounded or clipped)."""
    return _convert(values, space, {"oklab": oklab_to_srgb, "lab": lab_to_srgb})
