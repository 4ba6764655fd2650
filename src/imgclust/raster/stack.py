"""A stack of raster bands, from one multi-band file or one file per band, read by windows.

Band numbers are 1-based, as GDAL counts: with several files, the bands of the first file come
first, then those of the second, and so on. All files must share width, height, transform and
CRS. A pixel is valid when it is valid in every band read: not equal to the band's nodata value
(the file's, or the one given), finite and within float32's range (features are float32), and
not masked by the dataset's mask.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclust._text import printable
from imgclust.errors import ImageReadError, InvalidParameterError
from imgclust.io.images import check_regular_file
from imgclust.raster._rasterio import rasterio

__all__ = ["BandStack", "Block", "MaskSpec", "parse_band_list", "parse_mask"]

_FLOAT32_MAX = float(np.finfo(np.float32).max)
#: GDAL resampling of a band onto a finer grid: cubic convolution gave classes closest to
#: those of the bands at full resolution on five scenes of three kinds, ahead of or tied
#: with bilinear and nearest (``benchmarks/bench_resampling.py``).
UPSAMPLING = "cubic"
#: ... and onto a coarser grid: the mean of the finer pixels a coarse pixel covers.
DOWNSAMPLING = "average"


def parse_band_list(text: str | Sequence[int] | None) -> list[int] | None:
    """``"4,3,2"`` -> ``[4, 3, 2]``; None stays None."""
    if text is None:
        return None
    if not isinstance(text, str):
        return [int(b) for b in text]
    try:
        bands = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise InvalidParameterError(
            f"bands {text!r} are not a comma-separated list of band numbers, e.g. 4,3,2"
        ) from None
    if not bands:
        raise InvalidParameterError("no band given; list band numbers, e.g. 4,3,2")
    return bands


@dataclass(frozen=True)
class _BandRef:
    """One band of the stack: which open dataset, which band of it, its name and nodata."""

    dataset: int
    band: int
    name: str
    nodata: float | None
    masked: bool  # the band has a per-dataset mask or alpha that read_masks must be asked for


@dataclass
class Block:
    """One window of the stack: the bands read (float32 unless asked otherwise), and which
    pixels are valid."""

    row: int
    col: int
    data: np.ndarray  # (n_bands, height, width)
    valid: np.ndarray  # (height, width) bool

    @property
    def shape(self) -> tuple[int, int]:
        return self.valid.shape


def _open(path: str | os.PathLike):
    rio = rasterio()
    try:
        os.fsdecode(path).encode("utf-8")
    except UnicodeEncodeError:  # rasterio hands GDAL the name as UTF-8
        raise ImageReadError(
            f"{printable(os.fsdecode(path))}: the file name is not UTF-8, which GDAL cannot "
            "open; rename the file (convmv converts old names) or link it under a UTF-8 name"
        ) from None
    inside_archive = os.fsdecode(path).startswith("/vsizip/")  # a band of a zipped product
    if not inside_archive and not Path(path).exists():
        raise ImageReadError(f"{path}: no such file")
    if not inside_archive and not Path(path).is_dir():  # GDAL reads some formats as folders
        check_regular_file(path)  # a FIFO or a device would hold GDAL for ever
    try:
        return rio.open(os.fsdecode(path) if inside_archive else path)
    except rio.errors.RasterioIOError as exc:
        reason = str(exc).splitlines()[0]
        raise ImageReadError(
            f"{path}: cannot be read as a raster ({reason}); give a GeoTIFF, JP2 or another "
            "format GDAL reads"
        ) from None


@dataclass(frozen=True)
class MaskSpec:
    """A quality band whose values mark pixels to leave out: ``values`` (a scene
    classification's cloud classes) or ``bits`` (any of these bits set, Landsat's QA_PIXEL)."""

    path: str
    values: tuple[int, ...] = ()
    bits: tuple[int, ...] = ()
    meaning: str = ""

    def hits(self, codes: np.ndarray) -> np.ndarray:
        """Where ``codes`` mark a pixel to leave out."""
        hit = np.isin(codes, self.values) if self.values else np.zeros(codes.shape, bool)
        if self.bits:
            flags = sum(1 << b for b in self.bits)
            hit |= (codes.astype(np.int64) & flags) != 0
        return hit

    def absolute(self) -> MaskSpec:
        path = self.path if str(self.path).startswith("/vsi") else str(Path(self.path).resolve())
        return MaskSpec(path, self.values, self.bits, self.meaning)

    def describe(self) -> str:
        what = f"values {', '.join(map(str, self.values))}" if self.values else ""
        if self.bits:
            what += (" or " if what else "") + f"bits {', '.join(map(str, self.bits))} set"
        return f"{_name(self.path)} ({what}{': ' + self.meaning if self.meaning else ''})"


def parse_mask(text: str) -> MaskSpec:
    """``FILE:VALUES`` -> a :class:`MaskSpec`: ``scl.jp2:3,8,9`` (values), ``QA_PIXEL.TIF:bits=
    1,3,4`` (bits, 0 the lowest), or both joined by ``;`` (``qa.tif:1;bits=3``)."""
    path, _, spec = str(text).rpartition(":")
    if not path or not spec:
        raise InvalidParameterError(
            f"--mask {text!r}: give FILE:VALUES (e.g. SCL.jp2:3,8,9,10) or FILE:bits=N,... "
            "(e.g. QA_PIXEL.TIF:bits=1,3,4)"
        )
    values: list[int] = []
    bits: list[int] = []
    try:
        for part in spec.split(";"):
            part = part.strip()
            if part.startswith("bits="):
                bits += [int(b) for b in part[5:].split(",") if b.strip()]
            else:
                values += [int(v) for v in part.split(",") if v.strip()]
    except ValueError:
        raise InvalidParameterError(
            f"--mask {text!r}: the values must be whole numbers, e.g. SCL.jp2:3,8,9,10"
        ) from None
    if (not values and not bits) or any(not 0 <= b < 64 for b in bits):
        raise InvalidParameterError(f"--mask {text!r}: give values, or bits from 0 to 63")
    return MaskSpec(path, tuple(values), tuple(bits))


@dataclass(frozen=True)
class _Grid:
    width: int
    height: int
    transform: object


def _band_number(name: str) -> tuple[int, str] | None:
    """A band's number and name from a name ending in one (``B4``, ``SR_B4``, ``l8_B4``,
    ``B04``); None otherwise."""
    match = re.search(r"(?:^|[_\-. ])(B(\d{1,2}))$", name.strip(), re.IGNORECASE)
    return (int(match.group(2)), match.group(1).upper()) if match else None


def _name(path) -> str:
    return Path(os.fsdecode(path)).name


def _bounds(ds) -> str:
    return ", ".join(f"{v:.6g}" for v in ds.bounds)


def _same_extent(a, b) -> bool:
    """Whether two grids cover one extent, to within one pixel of the coarser."""
    slack = max(abs(a.res[0]), abs(b.res[0]), abs(a.res[1]), abs(b.res[1]))
    return all(abs(x - y) <= slack for x, y in zip(a.bounds, b.bounds, strict=True))


class BandStack:
    """Bands of one or more raster files on one grid, read window by window.

    Parameters
    ----------
    paths : path or sequence of paths
        One multi-band file, or one file per band (stacked in the order given). Files on
        different grids of one extent (bands at 10, 20 and 60 m) are read on one grid.
    nodata : float, optional
        Overrides the nodata value of every band.
    resolution : float, optional
        Pixel size of the grid the bands are read on (in the CRS's units); default: the
        files' own grid, or the finest of them when they differ.
    masks : sequence of MaskSpec
        Quality bands whose marked pixels are left out (like nodata).
    names : sequence of str, optional
        A name per file of one band (a product's band names, ``B02``).

    Attributes
    ----------
    width, height : int
    crs : rasterio.crs.CRS or None
    transform : affine.Affine
    georeferenced : bool
        Whether the first file has a CRS, a geotransform or control points.
    resampling : dict
        File name -> how it was resampled onto the grid (empty when every file is on it).
    count : int
        Number of bands in the stack.
    names : list of str
        A name per band: the band description, else the file name (one file per band), else
        ``"band N"``.
    dtypes : list of str
    """

    def __init__(
        self,
        paths: str | os.PathLike | Sequence[str | os.PathLike],
        *,
        nodata: float | None = None,
        resolution: float | None = None,
        masks: Sequence[MaskSpec] = (),
        names: Sequence[str] | None = None,
    ) -> None:
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        if not paths:
            raise InvalidParameterError("no raster given")
        self.paths = [Path(p) if not str(p).startswith("/vsi") else p for p in paths]
        self.nodata_override = nodata
        self.resolution = resolution
        self.masks = list(masks)
        self._names = list(names) if names is not None else None
        self._datasets = []
        self._originals = []
        self._mask_datasets = []
        self._mask_sources = []
        try:
            for path in self.paths:
                self._datasets.append(_open(path))
            self._originals = list(self._datasets)
            self._check_types()
            grid = self._grid()
            self.resampling = self._put_on_grid(grid)
            for mask in self.masks:
                self._mask_datasets.append(self._mask_on_grid(mask, grid))
        except BaseException:
            self.close()
            raise
        self.width, self.height, self.transform = grid.width, grid.height, grid.transform
        self.crs = self._originals[0].crs
        first = self._originals[0]
        #: False for a picture with no CRS, no geotransform and no control points (a JPEG):
        #: its outputs get none either, and areas are counted in pixels.
        self.georeferenced = not (
            first.crs is None and first.transform.is_identity and not first.gcps[0]
        )
        self._bands = [
            self._band_ref(i, ds, b, nodata)
            for i, ds in enumerate(self._originals)
            for b in range(1, ds.count + 1)
        ]
        self.count = len(self._bands)
        self.names = [b.name for b in self._bands]
        self.dtypes = [self._datasets[b.dataset].dtypes[b.band - 1] for b in self._bands]

    def _grid(self) -> _Grid:
        """The grid every band is read on: the files' own when they share one; else (bands
        of one extent at several resolutions, a Sentinel-2 product) the finest of them, or
        ``resolution`` over the first file's extent."""
        first, first_path = self._originals[0], _name(self.paths[0])
        same = all(
            (ds.width, ds.height) == (first.width, first.height)
            and ds.transform.almost_equals(first.transform)
            for ds in self._originals[1:]
        )
        for ds, path in zip(self._originals[1:], self.paths[1:], strict=True):
            if ds.crs != first.crs:
                raise InvalidParameterError(
                    f"{_name(path)} is in {ds.crs} but {first_path} is in {first.crs}: the "
                    "bands must share one CRS (reproject them first, e.g. with gdalwarp -t_srs)"
                )
        if same and self.resolution is None:
            return _Grid(first.width, first.height, first.transform)
        for ds, path in zip(self._originals, self.paths, strict=True):
            if abs(ds.transform.b) > 1e-12 or abs(ds.transform.d) > 1e-12:
                raise InvalidParameterError(
                    f"{_name(path)} is rotated; resample it to a north-up grid first (gdalwarp)"
                )
            if not _same_extent(ds, first):
                raise InvalidParameterError(
                    f"{_name(path)} and {first_path} cover different extents "
                    f"({_bounds(ds)} and {_bounds(first)}): bands of different sizes must "
                    "cover one extent (clip them first, e.g. with gdalwarp -te)"
                )
        size = self.resolution or min(min(abs(ds.res[0]), abs(ds.res[1])) for ds in self._originals)
        if not size > 0 or not math.isfinite(size):
            raise InvalidParameterError(f"resolution {size} must be a positive number")
        left, bottom, right, top = first.bounds
        width = max(1, round((right - left) / size))
        height = max(1, round((top - bottom) / size))
        if width * height > 1 << 36:
            raise InvalidParameterError(
                f"a resolution of {size} makes a grid of {width}x{height} pixels; choose a "
                "coarser --resolution"
            )
        transform = rasterio().Affine(size, 0.0, left, 0.0, -size, top)  # north up
        return _Grid(width, height, transform)

    def _put_on_grid(self, grid: _Grid) -> dict[str, str]:
        """Read every file on ``grid``: a file on another grid through GDAL's warper
        (cubic convolution onto a finer grid, the average onto a coarser one). Returns what was
        resampled how, by file name."""
        done = {}
        for i, (ds, path) in enumerate(zip(self._originals, self.paths, strict=True)):
            if (ds.width, ds.height) == (grid.width, grid.height) and ds.transform.almost_equals(
                grid.transform
            ):
                continue
            how = UPSAMPLING if abs(ds.res[0]) > abs(grid.transform.a) else DOWNSAMPLING
            self._datasets[i] = self._on_grid(ds, grid, how)
            done[_name(path)] = f"{how} from {abs(ds.res[0]):g} to {abs(grid.transform.a):g}"
        return done

    def _mask_on_grid(self, mask: MaskSpec, grid: _Grid):
        """A quality band read on ``grid`` (nearest neighbour: its values are codes); it must
        cover the bands' extent in their CRS."""
        ds = _open(mask.path)
        self._mask_sources.append(ds)  # closed with the rest
        first = self._originals[0]
        if ds.crs != first.crs or not _same_extent(ds, first):
            raise InvalidParameterError(
                f"the mask {_name(mask.path)} does not cover the bands' extent in their CRS "
                f"({ds.crs}: {_bounds(ds)}; the bands: {first.crs}: {_bounds(first)})"
            )
        return self._on_grid(ds, grid, "nearest")

    @staticmethod
    def _on_grid(ds, grid: _Grid, how: str):
        """``ds`` as read on ``grid`` (itself when it is on it already)."""
        if (ds.width, ds.height) == (grid.width, grid.height) and ds.transform.almost_equals(
            grid.transform
        ):
            return ds
        rio = rasterio()
        from rasterio.vrt import WarpedVRT

        # Resampled values in float32: cubic convolution overshoots at sharp edges, and in
        # the band's own integer type a dark pixel beside a bright one was clamped to 0, the
        # nodata value of most products (pixels lost at every water edge). Codes stay codes.
        interpolated = how != "nearest"
        return WarpedVRT(
            ds,
            crs=ds.crs,
            transform=grid.transform,
            width=grid.width,
            height=grid.height,
            resampling=getattr(rio.enums.Resampling, how),
            **({"dtype": "float32"} if interpolated else {}),
        )

    def _check_types(self) -> None:
        """Bands of numbers on a line: complex values (a radar product's phase) have no order
        that classes could be made from."""
        for ds, path in zip(self._datasets, self.paths, strict=True):
            kinds = {np.dtype(t).kind for t in ds.dtypes}
            if "c" in kinds:
                raise InvalidParameterError(
                    f"{path.name} holds complex numbers ({', '.join(sorted(set(ds.dtypes)))}, a "
                    "radar product's amplitude and phase?); give real bands, e.g. the amplitude "
                    "(gdal_calc.py --calc='abs(A)')"
                )

    def _band_ref(self, index: int, ds, band: int, nodata: float | None) -> _BandRef:
        rio = rasterio()
        flags = ds.mask_flag_enums[band - 1]
        masked = rio.enums.MaskFlags.per_dataset in flags or rio.enums.MaskFlags.alpha in flags
        description = ds.descriptions[band - 1]
        if self._names is not None and index < len(self._names) and ds.count == 1:
            name = self._names[index]  # a band of a product, by its name (B02)
        elif description:
            name = description
        elif len(self._datasets) > 1 and ds.count == 1:
            name = Path(os.fsdecode(self.paths[index])).stem
        else:
            name = f"band {sum(d.count for d in self._datasets[:index]) + band}"
        value = ds.nodata if nodata is None else nodata
        return _BandRef(index, band, name, None if value is None else float(value), masked)

    def reopen_arguments(self) -> dict:
        """What opens this stack again elsewhere (a Dask worker, a thread): absolute paths,
        nodata, the grid's resolution, the masks and the band names."""
        return {
            "paths": [os.fsdecode(p) if str(p).startswith("/vsi") else str(Path(p).resolve())
                      for p in self.paths],
            "nodata": self.nodata_override,
            "resolution": self.resolution,
            "masks": [m.absolute() for m in self.masks],
            "names": self._names,
        }  # fmt: skip

    # -- context manager -------------------------------------------------------------------

    def close(self) -> None:
        """Close every file (the warped views first, then the files they read), once."""
        closed = set()
        views = [*self._mask_datasets, *self._datasets]
        for ds in [*views, *self._mask_sources, *self._originals]:
            if id(ds) not in closed:
                closed.add(id(ds))
                ds.close()
        self._datasets, self._originals = [], []
        self._mask_datasets, self._mask_sources = [], []

    def __enter__(self) -> BandStack:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- bands -----------------------------------------------------------------------------

    def check_bands(self, bands: Sequence[int]) -> None:
        """Raise a clear error when a band number is outside 1..count."""
        for b in bands:
            if not 1 <= b <= self.count:
                raise InvalidParameterError(
                    f"band {b} is out of range: the stack has {self.count} band"
                    f"{'s' if self.count > 1 else ''} (1-{self.count})"
                )

    def colour_bands(self) -> list[int] | None:
        """Bands whose colour interpretation is red, green and blue, in that order, if any."""
        rio = rasterio()
        wanted = [
            rio.enums.ColorInterp.red,
            rio.enums.ColorInterp.green,
            rio.enums.ColorInterp.blue,
        ]
        found = {}
        for number, ref in enumerate(self._bands, start=1):
            interp = self._originals[ref.dataset].colorinterp[ref.band - 1]
            if interp in wanted and interp not in found:
                found[interp] = number
        return [found[c] for c in wanted] if len(found) == 3 else None

    def named_colour_bands(self) -> tuple[list[int], str] | None:
        """Red, green and blue found by the bands' names: descriptions that say so, Sentinel-2
        names (B04, B03, B02), or Landsat band numbers where the files name the sensor
        (OLI/TIRS of Landsat 8 and 9: B4, B3, B2; TM and ETM+: B3, B2, B1), with a note of
        how they were found."""
        lowered = [name.strip().lower() for name in self.names]
        words = [lowered.index(w) + 1 for w in ("red", "green", "blue") if w in lowered]
        if len(words) == 3:
            return words, "the band descriptions red, green, blue"
        numbers = [_band_number(name) for name in self.names]
        sentinel2 = [n for n in ("B04", "B03", "B02") if n in [x[1] for x in numbers if x]]
        if len(sentinel2) == 3 and all(x and len(x[1]) == 3 for x in numbers if x):
            picked = [
                next(i + 1 for i, x in enumerate(numbers) if x and x[1] == n) for n in sentinel2
            ]
            return picked, "the Sentinel-2 band names B04, B03, B02"
        sensor = self._landsat_sensor()
        if sensor is None:
            return None
        wanted = (4, 3, 2) if sensor == "OLI" else (3, 2, 1)
        by_number = {x[0]: i + 1 for i, x in enumerate(numbers) if x}
        if all(n in by_number for n in wanted):
            shown = ", ".join(f"B{n}" for n in wanted)
            return [by_number[n] for n in wanted], f"the Landsat {sensor} band names {shown}"
        return None

    def _landsat_sensor(self) -> str | None:
        """``"OLI"`` (Landsat 8, 9) or ``"TM"`` (Landsat 4, 5, 7) from the files' names or a
        ``*_MTL.txt`` beside them; None when they do not say."""
        text = " ".join([*self.names, *(_name(p) for p in self.paths)]).upper()
        first = Path(os.fsdecode(self.paths[0]))
        if first.parent.is_dir():
            for mtl in sorted(first.parent.glob("*MTL.txt"))[:1]:
                with contextlib.suppress(OSError, UnicodeDecodeError):
                    text += " " + mtl.read_text(encoding="utf-8", errors="replace")[:20000].upper()
        if re.search(r"LC0[89]|LO0[89]|L[89]_|LANDSAT_[89]", text):
            return "OLI"
        if re.search(r"L[ET]0[457]|LANDSAT_[457]", text):
            return "TM"
        return None

    @property
    def pixel_area(self) -> float:
        """Area of one pixel in the CRS's units squared."""
        t = self.transform
        return abs(t.a * t.e - t.b * t.d)

    @property
    def metres(self) -> bool:
        """True when the CRS is projected with metres as its unit."""
        if self.crs is None or not self.crs.is_projected:
            return False
        units = (self.crs.linear_units or "").lower()
        return units in ("metre", "meter", "m", "metres", "meters")

    # -- reading ---------------------------------------------------------------------------

    def windows(self, block_pixels: int = 4 << 20, align: int = 512) -> list[tuple[int, int]]:
        """Strips of whole rows ``(row_off, n_rows)`` of about ``block_pixels`` pixels each.

        The strip height is a multiple of ``align`` (the output's tile height, and that of
        most tiled inputs) unless that would more than double the strip (images wider than
        ``2 * block_pixels / align``): a strip that cuts through a row of tiles makes GDAL
        decompress those tiles twice on reading and rewrite them on writing (a 10,659-pixel
        wide scene read in strips of 393 rows took twice as long as in strips of 512).
        """
        rows = max(1, block_pixels // max(1, self.width))
        if 2 * rows >= align:
            rows = max(align, rows - rows % align)
        return [(r, min(rows, self.height - r)) for r in range(0, self.height, rows)]

    def read(
        self,
        bands: Sequence[int],
        row: int = 0,
        n_rows: int | None = None,
        col: int = 0,
        n_cols: int | None = None,
        *,
        as_float: bool = True,
        buffer: np.ndarray | None = None,
        known: Sequence[Block] = (),
    ) -> Block:
        """Read ``bands`` (1-based) over rows ``row .. row + n_rows`` (and columns ``col ..
        col + n_cols``; default whole rows), with validity.

        As float32, or with ``as_float=False`` in the bands' own (common) type: the passes
        convert what they use themselves, cheaper than GDAL's conversion. ``buffer``, a flat
        array of that type at least as large, holds the data instead of a new array: a pass
        that reads strip after strip reuses its memory rather than having the system zero
        fresh pages for each (page zeroing was a tenth of ``classify``'s CPU samples under perf on
        a 45.7 MP scene). ``known``: blocks of the same bands and type read before, each lying
        inside the window; they are copied into place and only the rest of the window is read
        (the classifying pass does not decompress again the windows the sample was drawn from).
        """
        rio = rasterio()
        n_rows = self.height - row if n_rows is None else n_rows
        n_cols = self.width - col if n_cols is None else n_cols
        dtype = np.float32 if as_float else self.read_dtype(bands)
        shape = (len(bands), n_rows, n_cols)
        if buffer is None:
            data = np.empty(shape, dtype=dtype)
        else:
            data = buffer[: math.prod(shape)].reshape(shape)
        valid = np.ones((n_rows, n_cols), dtype=bool)
        for block in known:
            top, left = block.row - row, block.col - col
            height, width = block.shape
            inside = min(top, left) >= 0 and top + height <= n_rows and left + width <= n_cols
            if not inside or block.data.shape[0] != len(bands) or block.data.dtype != dtype:
                raise ValueError("a known block must hold the bands read, inside the window")
            data[:, top : top + height, left : left + width] = block.data
            valid[top : top + height, left : left + width] = block.valid
        boxes = [(b.row, b.col, *b.shape) for b in known]
        for r, c, h, w in uncovered((row, col, n_rows, n_cols), boxes):
            top, left = r - row, c - col
            self._read_into(
                bands,
                data[:, top : top + h, left : left + w],
                valid[top : top + h, left : left + w],
                rio.windows.Window(c, r, w, h),
            )
        return Block(row, col, data, valid)

    def _read_into(self, bands: Sequence[int], data: np.ndarray, valid: np.ndarray, window) -> None:
        """Read ``window`` of ``bands`` into ``data`` (a view of the caller's array) and clear
        ``valid`` where a pixel is not valid."""
        # One read per file for all its bands: a pixel-interleaved file decompresses each
        # block once instead of once per band.
        for dataset, positions in self._by_dataset(bands).items():
            ds = self._datasets[dataset]
            refs = [self._bands[bands[i] - 1] for i in positions]
            indexes = [r.band for r in refs]
            direct = positions == list(range(len(bands))) and all(
                np.dtype(ds.dtypes[b - 1]) == data.dtype for b in indexes
            )  # all the bands, of their own type: straight into place (GDAL follows a view's
            # strides)
            raw = ds.read(indexes, window=window, out=data if direct else None)
            for i, ref, layer in zip(positions, refs, raw, strict=True):
                self._update_valid(valid, layer, ref, ds, window)
                if not direct:
                    data[i] = layer
        for mask, ds in zip(self.masks, self._mask_datasets, strict=True):
            valid &= ~mask.hits(ds.read(1, window=window))

    def read_dtype(self, bands: Sequence[int]) -> np.dtype:
        """The type that holds every value of ``bands`` (their files' types promoted)."""
        refs = [self._bands[b - 1] for b in bands]
        return np.result_type(*(self._datasets[r.dataset].dtypes[r.band - 1] for r in refs))

    def _by_dataset(self, bands: Sequence[int]) -> dict[int, list[int]]:
        """Positions in ``bands`` grouped by the file they come from."""
        groups: dict[int, list[int]] = {}
        for i, number in enumerate(bands):
            groups.setdefault(self._bands[number - 1].dataset, []).append(i)
        return groups

    @staticmethod
    def _update_valid(valid: np.ndarray, raw: np.ndarray, ref: _BandRef, ds, window) -> None:
        if ref.nodata is not None and not math.isnan(ref.nodata):
            valid &= raw != ref.nodata  # a Python float: compared exactly, even out of range
        if raw.dtype.kind == "f":
            # NaN, infinities and values past float32's range (the type features are
            # computed in) are not measurements: such pixels are left out like nodata
            valid &= np.abs(raw) <= _FLOAT32_MAX
        if ref.masked:
            valid &= ds.read_masks(ref.band, window=window) != 0

    def sample_windows(self, min_pixels: int = 1 << 16) -> list[tuple[int, int, int, int]]:
        """The scene cut along the first file's own blocks into windows ``(row, col, n_rows,
        n_cols)``, in raster order: reading one decompresses only its blocks.

        Tiles of a tiled file (2x2 tiles, 4x4... when a tile has fewer than ``min_pixels``
        pixels), bands of whole rows of a striped one (as many strips as make ``min_pixels``).
        Blocks of more than 4M pixels (an image stored in one strip) are cut into 512x512
        windows. The windows depend on the file only, not on how the passes read it.
        """
        block_rows, block_cols = self._datasets[0].block_shapes[0]
        if block_rows * block_cols > 4 << 20:
            block_rows, block_cols = min(512, self.height), min(512, self.width)
        if block_cols >= self.width:
            strips = max(1, math.ceil(min_pixels / (block_rows * self.width)))
            rows, cols = block_rows * strips, self.width
        else:
            factor = 1
            while block_rows * block_cols * factor * factor < min_pixels:
                factor *= 2
            rows, cols = block_rows * factor, block_cols * factor
        return [
            (r, c, min(rows, self.height - r), min(cols, self.width - c))
            for r in range(0, self.height, rows)
            for c in range(0, self.width, cols)
        ]

    def map_windows(
        self,
        function: Callable,
        windows: Sequence,
        *,
        threads: int | None = None,
    ) -> Iterator:
        """``function(stack, window)`` for each window, in order, on every core.

        Each worker thread reads through its own open copy of the stack (a GDAL dataset must
        not be used by two threads at once; GDAL decompresses without holding Python's lock,
        and the compiled kernels release it too). At most ``threads + 1`` windows are in
        flight, so memory stays bounded. With one thread, or one window, it runs here.
        """
        from concurrent.futures import ThreadPoolExecutor

        threads = min(len(windows), threads or available_cores())
        if threads <= 1:
            for window in windows:
                yield function(self, window)
            return
        local, opened, lock = threading.local(), [], threading.Lock()

        def run(window):
            stack = getattr(local, "stack", None)
            if stack is None:
                stack = local.stack = BandStack(**self.reopen_arguments())
                with lock:
                    opened.append(stack)
            return function(stack, window)

        pool = ThreadPoolExecutor(max_workers=threads)
        pending: deque = deque()
        try:
            for window in windows:
                pending.append(pool.submit(run, window))
                if len(pending) > threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for stack in opened:
                stack.close()


def uncovered(
    window: tuple[int, int, int, int], boxes: Sequence[tuple[int, int, int, int]]
) -> list[tuple[int, int, int, int]]:
    """Rectangles ``(row, col, n_rows, n_cols)`` that cover what ``boxes`` (disjoint
    rectangles inside ``window``, in the same form) leave of ``window``: column bands between
    the boxes' edges, and in each the rows no box covers."""
    row, col, n_rows, n_cols = window
    edges = sorted(
        {col, col + n_cols, *(c for _, c, _, _ in boxes), *(c + w for _, c, _, w in boxes)}
    )
    pieces = []
    for left, right in itertools.pairwise(edges):
        spans = sorted((r, r + h) for r, c, h, w in boxes if c <= left and right <= c + w)
        top = row
        for start, end in spans:
            if start > top:
                pieces.append((top, left, start - top, right - left))
            top = max(top, end)
        if top < row + n_rows:
            pieces.append((top, left, row + n_rows - top, right - left))
    return pieces


def available_cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
