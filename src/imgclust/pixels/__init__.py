"""One image: colour spaces, distinct colours, segmentation, edges."""

from imgclust.pixels.colorspace import COLOR_SPACES, rgb_to_features
from imgclust.pixels.segment import Segmentation, segment

__all__ = ["COLOR_SPACES", "Segmentation", "rgb_to_features", "segment"]
