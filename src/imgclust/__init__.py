"""imgclust: cluster images.

Colour segmentation and quantization of photos (:func:`segment`), and the weighted k-means
engine behind it (:class:`KMeans`).
"""

from importlib.metadata import PackageNotFoundError, version

from imgclust.cluster import KMeans, k_means, kmeans_plusplus
from imgclust.errors import ImgclustError
from imgclust.pixels import Segmentation, segment

try:
    __version__ = version("imgclust")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "ImgclustError",
    "KMeans",
    "Segmentation",
    "__version__",
    "k_means",
    "kmeans_plusplus",
    "segment",
]
