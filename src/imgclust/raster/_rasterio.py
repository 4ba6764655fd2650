"""Import rasterio on first use, with a message that names the extra when it is missing."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from imgclust.errors import MissingDependencyError, OutputError


def rasterio():
    """The rasterio module, or a :class:`MissingDependencyError` naming the extra.

    rasterio's ``NotGeoreferencedWarning`` is silenced (only that warning): imgclust handles a
    raster without georeferencing itself (outputs on the same pixel grid with none, areas in
    pixels) and says so in its summary, and the warning, raised on every open, reached the
    terminal twice for a plain picture."""
    try:
        import rasterio as module
    except ImportError:
        raise MissingDependencyError(
            'raster jobs need rasterio: pip install "imgclust[raster]" (or "imgclust[all]")'
        ) from None
    warnings.filterwarnings("ignore", category=module.errors.NotGeoreferencedWarning)
    return module


#: GDAL settings for our reads and writes: a bounded block cache (GDAL's default is 5% of
#: the machine's memory, which would count against our peak), and compression on all cores.
GDAL_OPTIONS = {"GDAL_CACHEMAX": 256, "GDAL_NUM_THREADS": "1"}


@contextmanager
def gdal_writes(where) -> Iterator[None]:
    """GDAL's errors while the outputs are written (a full disk, a file size limit: GDAL
    reports them as its own error types, not ``OSError``) as one :class:`OutputError`."""
    rio = rasterio()
    from rasterio._err import CPLE_BaseError

    try:
        yield
    except (rio.errors.RasterioError, CPLE_BaseError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise OutputError(
            f"writing the results into {where} failed ({reason}): the disk may be full or a "
            "file size limit reached; nothing was changed there"
        ) from None
