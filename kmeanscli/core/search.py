"""Choosing k from a quality target: the smallest k that reaches it, by bisection on k.

A target is a floor on PSNR or SSIM, or a ceiling on the mean CIEDE2000 ΔE. The search
assumes that quality does not get worse as k grows (**monotonicity**). That is how colour
quantization behaves in practice: more palette entries can only serve the colours better, and
the k-means core refines every palette on the full histogram. It is not a theorem for a
heuristic clustering, so the guarantee is the one a bisection gives: the chosen ``k`` meets
the target and ``k - 1`` was measured and misses it (unless ``k`` is the lowest allowed). The
search measures about eight values of k instead of all 255.

Pure: numpy in, numpy out; it raises and never prints.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..constants import MAX_COLORS
from ..errors import TargetNotMetError
from .metrics import delta_e, ssim
from .quantize import QuantizeResult, quantize

__all__ = ["METRICS", "Quantizer", "SearchResult", "Target", "search_k"]

METRICS = ("psnr", "ssim", "delta_e")
"""The metrics a target can be set on."""

Quantizer = Callable[[np.ndarray, int], QuantizeResult]
"""Something that quantizes ``pixels`` to ``k`` colours, e.g. ``partial(quantize, seed=1)``."""


@dataclass(frozen=True)
class Target:
    """A quality to reach: ``psnr`` ≥ value (dB), ``ssim`` ≥ value, or ``delta_e`` ≤ value.

    Raises
    ------
    ValueError
        For an unknown metric or a value that no image can have or every image has.
    """

    metric: str
    value: float

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; use one of {', '.join(METRICS)}.")
        v = self.value
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"the {self.metric} target must be a finite number; got {v!r}.")
        if self.metric == "psnr" and v <= 0:
            raise ValueError(f"a PSNR target must be above 0 dB; got {v:g}.")
        if self.metric == "ssim" and not -1.0 < v <= 1.0:
            raise ValueError(f"an SSIM target must be in (-1, 1]; got {v:g}.")
        if self.metric == "delta_e" and v < 0:
            raise ValueError(f"a ΔE ceiling must be 0 or more; got {v:g}.")

    def met(self, score: float) -> bool:
        """Whether a measured value of this metric reaches the target (NaN never does)."""
        if math.isnan(score):
            return False
        return score <= self.value if self.metric == "delta_e" else score >= self.value

    def describe(self) -> str:
        """The target for people: ``PSNR ≥ 35 dB``, ``SSIM ≥ 0.95``, ``ΔE ≤ 2``."""
        return {
            "psnr": f"PSNR ≥ {self.value:g} dB",
            "ssim": f"SSIM ≥ {self.value:g}",
            "delta_e": f"ΔE ≤ {self.value:g}",
        }[self.metric]

    def format(self, score: float) -> str:
        """A measured value of this metric for people."""
        if self.metric == "psnr":
            return "lossless" if math.isinf(score) else f"PSNR {score:.2f} dB"
        return f"SSIM {score:.4f}" if self.metric == "ssim" else f"ΔE {score:.3f}"


def measure(metric: str, original: np.ndarray, result: QuantizeResult) -> float:
    """The value of ``metric`` for ``result`` against the ``original`` pixels."""
    if metric == "psnr":
        return result.psnr
    if result.lossless:
        return 1.0 if metric == "ssim" else 0.0
    image = result.image()
    if original.ndim == 2:  # (N, C) pixels: SSIM and ΔE need an image; a one-row one will do
        original, image = original[None], image[None]
    return ssim(original, image) if metric == "ssim" else delta_e(original, image)


@dataclass(frozen=True, eq=False)
class SearchResult:
    """The outcome of :func:`search_k`.

    Attributes
    ----------
    k : int
        The chosen k: the smallest found that meets every target.
    result : QuantizeResult
        The quantization at ``k``.
    scores : dict
        ``{metric: value}`` at ``k`` for the targeted metrics.
    tried : dict
        ``{k: {metric: value}}`` for every k the bisection measured, in the order measured.
    """

    k: int
    result: QuantizeResult
    scores: dict[str, float]
    tried: dict[int, dict[str, float]] = field(default_factory=dict)

    @property
    def below(self) -> dict[str, float] | None:
        """The scores at ``k - 1`` (measured and missing the target), if k is not the lowest."""
        return self.tried.get(self.k - 1)


def search_k(
    pixels: np.ndarray,
    targets: Target | Sequence[Target],
    quantizer: Quantizer | None = None,
    *,
    k_min: int = 2,
    k_max: int = MAX_COLORS,
    progress: Callable[[int], None] | None = None,
) -> SearchResult:
    """The smallest k in ``k_min..k_max`` whose quantization meets every target.

    Bisection on k: ``lo`` is the largest k known to miss, ``hi`` the smallest known to meet
    (starting just outside the range), and the midpoint is measured until they are adjacent.
    That takes ``ceil(log2(k_max - k_min + 2))`` quantizations (8 for 2..256). It relies on
    quality not decreasing with k (see the module notes).

    Parameters
    ----------
    pixels : ndarray of uint8, shape (H, W, 3|4)
        The image.
    targets : Target or sequence of Target
        Every one must be met.
    quantizer : callable, optional
        ``quantizer(pixels, k) -> QuantizeResult``; default :func:`kmeanscli.quantize` with
        its default options (pass ``functools.partial(quantize, seed=...)`` to change them).
    k_min, k_max : int
        The range of k searched (2 and 256 by default).
    progress : callable, optional
        Called with each k before it is measured.

    Returns
    -------
    SearchResult

    Raises
    ------
    TargetNotMetError
        When even ``k_max`` colours miss a target.
    ValueError
        For no targets or a bad range.
    """
    goals = [targets] if isinstance(targets, Target) else list(targets)
    if not goals:
        raise ValueError("give at least one target.")
    if not 1 <= k_min <= k_max <= MAX_COLORS:
        raise ValueError(f"need 1 <= k_min <= k_max <= {MAX_COLORS}; got {k_min}, {k_max}.")
    run = quantizer or quantize
    tried: dict[int, dict[str, float]] = {}
    best: tuple[int, QuantizeResult] | None = None
    lo, hi = k_min - 1, k_max + 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if progress is not None:
            progress(mid)
        result = run(pixels, mid)
        values: dict[str, float] = {}
        ok = True
        for goal in goals:  # stop measuring at the first target missed
            values[goal.metric] = measure(goal.metric, pixels, result)
            if not goal.met(values[goal.metric]):
                ok = False
                break
        tried[mid] = values
        if ok:
            hi, best = mid, (mid, result)
        else:
            lo = mid
    if best is None:
        at_max = tried[k_max]
        missed = next(g for g in goals if not g.met(at_max[g.metric]))
        raise TargetNotMetError(
            f"{missed.describe()} is out of reach: {k_max} colours give "
            f"{missed.format(at_max[missed.metric])}"
        )
    k, result = best
    return SearchResult(k=k, result=result, scores=tried[k], tried=tried)
