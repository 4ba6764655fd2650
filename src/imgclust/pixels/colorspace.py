"""Colour spaces in which pixels are clustered.

Every space maps RGB in [0, 1] to three features where Euclidean distance means something:

- ``"rgb"``: R, G, B in 0-255.
- ``"lab"``: CIE L*a*b* (D65), L in 0-100 and a, b roughly -100..100; distances follow
  perceived colour differences (CIE76).
- ``"hsv"``: the HSV cone, ``(100 s v cos 2πh, 100 s v sin 2πh, 100 v)``. Hue is an angle, so
  it is placed on a circle: red at h=0.99 and h=0.01 are neighbours, and the hue of greys and
  dark pixels, which is arbitrary, carries no weight.
"""

from __future__ import annotations

import numpy as np
from skimage import color

from imgclust.errors import InvalidParameterError

__all__ = ["COLOR_SPACES", "rgb_to_features", "space_range"]

COLOR_SPACES = ("rgb", "lab", "hsv")

# Span of the features of each space, used to scale pixel coordinates for spatial features.
_RANGE = {"rgb": 255.0, "lab": 100.0, "hsv": 100.0}


def check_color_space(color_space: str) -> str:
    """Return the space's name in lower case, or raise listing the spaces that exist."""
    name = str(color_space).lower()
    if name not in COLOR_SPACES:
        raise InvalidParameterError(
            f"color_space={color_space!r} is not known; choose one of {', '.join(COLOR_SPACES)}"
        )
    return name


def space_range(color_space: str) -> float:
    """Typical span of the features of ``color_space`` (255 for RGB, 100 for Lab and HSV)."""
    return _RANGE[check_color_space(color_space)]


def rgb_to_features(rgb: np.ndarray, color_space: str) -> np.ndarray:
    """Convert colours to clustering features.

    Parameters
    ----------
    rgb : (N, 3) ndarray
        uint8 colours, or floats in [0, 1].
    color_space : {"rgb", "lab", "hsv"}
        Target space.

    Returns
    -------
    features : (N, 3) float64 ndarray
        Computed in float32 (enough for 8-bit colours and twice as fast in scikit-image),
        returned as float64 because the k-means loops run fastest on one float type.
    """
    space = check_color_space(color_space)
    unit = rgb.astype(np.float32) / np.float32(255) if rgb.dtype == np.uint8 else rgb
    unit = np.asarray(unit, dtype=np.float32)
    if space == "rgb":
        return unit.astype(np.float64) * 255.0
    if space == "lab":
        return np.ascontiguousarray(color.rgb2lab(unit[:, None, :])[:, 0, :], dtype=np.float64)
    hsv = color.rgb2hsv(unit[:, None, :])[:, 0, :].astype(np.float32)
    angle = np.float32(2 * np.pi) * hsv[:, 0]
    radius = np.float32(100) * hsv[:, 1] * hsv[:, 2]
    cone = np.stack([radius * np.cos(angle), radius * np.sin(angle), np.float32(100) * hsv[:, 2]])
    return np.ascontiguousarray(cone.T, dtype=np.float64)
