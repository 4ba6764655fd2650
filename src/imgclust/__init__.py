"""imgclust: cluster images.

Colour segmentation and quantization of photos (:func:`segment`), land-cover classes of
multi-band rasters (:func:`classify_raster`, :func:`evaluate_classes`), collections of images
grouped by similarity (:func:`cluster_images`), and the weighted k-means engine behind them
(:class:`KMeans`).

The public names are imported on first use (PEP 562), so that ``import imgclust`` and the
command-line program start fast: scikit-learn alone takes about a second to import and the
colour segmentation does not need it.
"""

from importlib import import_module

from imgclust.errors import ImgclustError

# The one place the version is written (pyproject.toml reads it from here): asking
# importlib.metadata instead costs every command about 40 ms.
__version__ = "0.1.0"

_LAZY = {
    "KMeans": "imgclust.cluster.kmeans",
    "k_means": "imgclust.cluster.kmeans",
    "kmeans_plusplus": "imgclust.cluster.engine",
    "Segmentation": "imgclust.pixels.segment",
    "segment": "imgclust.pixels.segment",
    "classify_raster": "imgclust.raster.classify",
    "evaluate_classes": "imgclust.raster.evaluate",
    "ImageClustering": "imgclust.collection.group",
    "cluster_images": "imgclust.collection.group",
    "set_default_model": "imgclust.collection.model_zoo",
}

__all__ = ["ImgclustError", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'imgclust' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
