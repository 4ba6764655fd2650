"""Colour spaces in which pixels are clustered.

Every space maps RGB in [0, 1] to three features where Euclidean distance means something:

- ``"rgb"``: R, G, B in 0-255.
- ``"lab"``: CIE L*a*b* (D65), L in 0-100 and a, b roughly -100..100; distances follow
  perceived colour differences (CIE76). Computed here in NumPy with scikit-image's constants
  and formulas (a test holds the two together): importing scikit-image's colour module costs
  0.2 s (it imports scipy.linalg), more than the whole clustering of a 12-megapixel photo.
- ``"hsv"``: the HSV cone, ``(100 s v cos 2πh, 100 s v sin 2πh, 100 v)``. Hue is an angle, so
  it is placed on a circle: red at h=0.99 and h=0.01 are neighbours, and the hue of greys and
  dark pixels, which is arbitrary, carries no weight.
"""

from __future__ import annotations

import numpy as np

from imgclust.errors import InvalidParameterError

__all__ = ["COLOR_SPACES", "rgb_to_features", "space_range"]

COLOR_SPACES = ("rgb", "lab", "hsv")

# Span of the features of each space, used to scale pixel coordinates for spatial features.
_RANGE = {"rgb": 255.0, "lab": 100.0, "hsv": 100.0}


#: sRGB (D65) to CIE XYZ, as in scikit-image's ``rgb2xyz``.
_XYZ_FROM_RGB = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
#: The D65 white point, 2-degree observer (scikit-image's default for ``xyz2lab``).
_D65_WHITE = np.array([0.95047, 1.0, 1.08883])


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
        Computed in float32 (enough for 8-bit colours, and faster), returned as float64
        because the k-means loops run fastest on one float type.
    """
    space = check_color_space(color_space)
    if space == "lab":
        return _srgb_to_lab(rgb if rgb.dtype == np.uint8 else np.asarray(rgb, dtype=np.float32))
    unit = rgb.astype(np.float32) / np.float32(255) if rgb.dtype == np.uint8 else rgb
    unit = np.asarray(unit, dtype=np.float32)
    if space == "rgb":
        return unit.astype(np.float64) * 255.0
    from skimage import color  # imports scipy.linalg: only where HSV is asked for

    hsv = color.rgb2hsv(unit[:, None, :])[:, 0, :].astype(np.float32)
    angle = np.float32(2 * np.pi) * hsv[:, 0]
    radius = np.float32(100) * hsv[:, 1] * hsv[:, 2]
    cone = np.stack([radius * np.cos(angle), radius * np.sin(angle), np.float32(100) * hsv[:, 2]])
    return np.ascontiguousarray(cone.T, dtype=np.float64)


def _linearise(unit: np.ndarray) -> np.ndarray:
    """sRGB gamma expansion of values in [0, 1] (float32)."""
    return np.where(
        unit > 0.04045,
        ((unit + np.float32(0.055)) / np.float32(1.055)) ** np.float32(2.4),
        unit / np.float32(12.92),
    ).astype(np.float32)


#: The gamma expansion of every 8-bit value: a look-up instead of a power per channel.
_LINEAR_UINT8 = _linearise(np.arange(256, dtype=np.float32) / np.float32(255))


def _srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65, 2 degrees) of sRGB colours (uint8, or floats in [0, 1]), computed in
    float32 with the formulas and constants of scikit-image's ``rgb2lab``.

    The 3x3 products are written out per channel: a matrix product would go through BLAS,
    whose threads then spin on the second core for nothing at this size.
    """
    linear = _LINEAR_UINT8[rgb] if rgb.dtype == np.uint8 else _linearise(rgb)
    channels = [linear[:, c] for c in range(3)]
    xyz = [
        sum(channels[c] * np.float32(_XYZ_FROM_RGB[row, c]) for c in range(3))
        / np.float32(_D65_WHITE[row])
        for row in range(3)
    ]
    fx, fy, fz = (
        np.where(v > 0.008856, np.cbrt(v), np.float32(7.787) * v + np.float32(16.0 / 116.0))
        for v in xyz
    )
    lab = np.empty((rgb.shape[0], 3), dtype=np.float64)
    lab[:, 0] = np.float32(116.0) * fy - np.float32(16.0)
    lab[:, 1] = np.float32(500.0) * (fx - fy)
    lab[:, 2] = np.float32(200.0) * (fy - fz)
    return lab
