"""A stack of raster bands, from one multi-band file or one file per band, read by windows.

Band numbers are 1-based, as GDAL counts: with several files, the bands of the first file come
first, then those of the second, and so on. All files must share width, height, transform and
CRS. A pixel is valid when it is valid in every band read: not equal to the band's nodata value
(the file's, or the one given), finite and within float32's range (features are float32), and
not masked by the dataset's mask.
"""

from __future__ import annotations

import itertools
import math
import os
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

__all__ = ["BandStack", "Block", "parse_band_list"]

_FLOAT32_MAX = float(np.finfo(np.float32).max)


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
    if not Path(path).exists():
        raise ImageReadError(f"{path}: no such file")
    if not Path(path).is_dir():  # GDAL reads some formats as folders (a .SAFE product)
        check_regular_file(path)  # a FIFO or a device would hold GDAL for ever
    try:
        return rio.open(path)
    except rio.errors.RasterioIOError as exc:
        reason = str(exc).splitlines()[0]
        raise ImageReadError(
            f"{path}: cannot be read as a raster ({reason}); give a GeoTIFF, JP2 or another "
            "format GDAL reads"
        ) from None


class BandStack:
    """Bands of one or more raster files on one grid, read window by window.

    Parameters
    ----------
    paths : path or sequence of paths
        One multi-band file, or one file per band (stacked in the order given).
    nodata : float, optional
        Overrides the nodata value of every band.

    Attributes
    ----------
    width, height : int
    crs : rasterio.crs.CRS or None
    transform : affine.Affine
    count : int
        Number of bands in the stack.
    names : list of str
        A name per band: the band description, else the file name (one file per band), else
        ``"band N"``.
    dtypes : list of str
    """

    def __init__(
        self, paths: str | os.PathLike | Sequence[str | os.PathLike], *, nodata: float | None = None
    ) -> None:
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        if not paths:
            raise InvalidParameterError("no raster given")
        self.paths = [Path(p) for p in paths]
        self.nodata_override = nodata
        self._datasets = []
        try:
            for path in self.paths:
                self._datasets.append(_open(path))
            self._check_grid()
            self._check_types()
        except BaseException:
            self.close()
            raise
        first = self._datasets[0]
        self.width, self.height = first.width, first.height
        self.crs, self.transform = first.crs, first.transform
        self._bands = [
            self._band_ref(i, ds, b, nodata)
            for i, ds in enumerate(self._datasets)
            for b in range(1, ds.count + 1)
        ]
        self.count = len(self._bands)
        self.names = [b.name for b in self._bands]
        self.dtypes = [self._datasets[b.dataset].dtypes[b.band - 1] for b in self._bands]

    def _check_grid(self) -> None:
        first, first_path = self._datasets[0], self.paths[0].name
        for ds, path in zip(self._datasets[1:], self.paths[1:], strict=True):
            if (ds.width, ds.height) != (first.width, first.height):
                raise InvalidParameterError(
                    f"{path.name} is {ds.width}x{ds.height} pixels but {first_path} is "
                    f"{first.width}x{first.height}: the bands must share one grid "
                    "(resample them first, e.g. with gdalwarp)"
                )
            if ds.crs != first.crs:
                raise InvalidParameterError(
                    f"{path.name} is in {ds.crs} but {first_path} is in {first.crs}: the bands "
                    "must share one CRS (reproject them first, e.g. with gdalwarp -t_srs)"
                )
            if not ds.transform.almost_equals(first.transform):
                raise InvalidParameterError(
                    f"{path.name} and {first_path} have different transforms (origin or pixel "
                    "size): the bands must share one grid (resample them first, e.g. with "
                    "gdalwarp)"
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
        if description:
            name = description
        elif len(self._datasets) > 1 and ds.count == 1:
            name = self.paths[index].stem
        else:
            name = f"band {sum(d.count for d in self._datasets[:index]) + band}"
        value = ds.nodata if nodata is None else nodata
        return _BandRef(index, band, name, None if value is None else float(value), masked)

    def reopen_arguments(self) -> dict:
        """What opens this stack again elsewhere (a Dask worker): absolute paths, nodata."""
        return {"paths": [str(p.resolve()) for p in self.paths], "nodata": self.nodata_override}

    # -- context manager -------------------------------------------------------------------

    def close(self) -> None:
        """Close every file."""
        for ds in self._datasets:
            ds.close()
        self._datasets = []

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
            interp = self._datasets[ref.dataset].colorinterp[ref.band - 1]
            if interp in wanted and interp not in found:
                found[interp] = number
        return [found[c] for c in wanted] if len(found) == 3 else None

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
                stack = local.stack = BandStack(self.paths, nodata=self.nodata_override)
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
