"""Canny edges with automatic thresholds."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage import color, feature, filters

from imgclust.errors import InvalidParameterError
from imgclust.io.images import DEFAULT_MAX_PIXELS
from imgclust.pixels.segment import prepare_image

__all__ = ["EdgeResult", "detect_edges"]


@dataclass(frozen=True)
class EdgeResult:
    """Result of :func:`detect_edges`.

    Attributes
    ----------
    edges : (H, W) bool ndarray
    low, high : float
        Hysteresis thresholds on the gradient magnitude (of the grey image in [0, 1]).
    sigma : float
        Gaussian blur applied before the gradient.
    automatic : bool
        Whether the thresholds were chosen automatically.
    """

    edges: np.ndarray
    low: float
    high: float
    sigma: float
    automatic: bool

    @property
    def fraction(self) -> float:
        """Share of pixels that are edges."""
        return float(self.edges.mean())


def _auto_thresholds(grey: np.ndarray, sigma: float) -> tuple[float, float]:
    """High = Otsu's threshold of the gradient magnitude, low = half of it."""
    smoothed = filters.gaussian(grey, sigma=sigma, mode="nearest", preserve_range=True)
    magnitude = np.hypot(ndi.sobel(smoothed, axis=0), ndi.sobel(smoothed, axis=1))
    if np.ptp(magnitude) == 0:
        return 0.0, 0.0
    high = float(filters.threshold_otsu(magnitude))
    return 0.5 * high, high


def detect_edges(
    image: str | os.PathLike | np.ndarray,
    *,
    sigma: float = 1.0,
    low: float | None = None,
    high: float | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> EdgeResult:
    """Canny edges of an image.

    Parameters
    ----------
    image : path or (H, W[, C]) ndarray
        As for :func:`imgclust.segment`; colour images are converted to grey.
    sigma : float, default=1.0
        Standard deviation of the Gaussian blur before the gradient.
    low, high : float, optional
        Hysteresis thresholds on the gradient magnitude of the grey image in [0, 1] (as
        :func:`skimage.feature.canny` takes them). Unless both are given, they are chosen
        automatically: ``high`` is Otsu's threshold of the blurred gradient magnitude and
        ``low`` half of it (Fang et al. 2009).

    Returns
    -------
    EdgeResult
    """
    if not (np.isfinite(sigma) and sigma >= 0):
        raise InvalidParameterError(f"sigma={sigma!r} must be a finite number >= 0")
    prepared = prepare_image(image, max_pixels=max_pixels)
    rgb = prepared.rgb
    side = max(rgb.shape[:2])
    if sigma > side:  # the blur's kernel grows with sigma: 1e9 asked for 60 GB
        raise InvalidParameterError(
            f"sigma={sigma:g} is wider than the image ({side} pixels): the blur would leave "
            "nothing to find; give a sigma of a few pixels (1 to 3 is usual)"
        )
    unit = rgb / np.float32(255) if rgb.dtype == np.uint8 else rgb
    grey = color.rgb2gray(unit).astype(np.float64)
    automatic = low is None or high is None
    if automatic:
        low, high = _auto_thresholds(grey, sigma)
    elif not 0 <= low <= high:
        raise InvalidParameterError(
            f"thresholds low={low} and high={high} must satisfy 0 <= low <= high"
        )
    edges = feature.canny(
        grey, sigma=sigma, low_threshold=low, high_threshold=high, mask=prepared.include
    )
    return EdgeResult(edges, float(low), float(high), float(sigma), automatic)
