"""Multi-band rasters: unsupervised land-cover classes with the georeferencing kept.

Needs the ``raster`` extra (rasterio): ``pip install "imgclust[raster]"``.
"""

from imgclust.raster.classify import RasterClassification, classify_raster
from imgclust.raster.evaluate import ClassEvaluation, evaluate_classes

__all__ = ["ClassEvaluation", "RasterClassification", "classify_raster", "evaluate_classes"]
