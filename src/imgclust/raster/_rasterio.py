"""Import rasterio on first use, with a message that names the extra when it is missing."""

from __future__ import annotations

from imgclust.errors import MissingDependencyError


def rasterio():
    """The rasterio module, or a :class:`MissingDependencyError` naming the extra."""
    try:
        import rasterio as module
    except ImportError:
        raise MissingDependencyError(
            'raster jobs need rasterio: pip install "imgclust[raster]" (or "imgclust[all]")'
        ) from None
    return module


#: GDAL settings for our reads and writes: a bounded block cache (GDAL's default is 5% of
#: the machine's memory, which would count against our peak), and compression on all cores.
GDAL_OPTIONS = {"GDAL_CACHEMAX": 256, "GDAL_NUM_THREADS": "1"}
