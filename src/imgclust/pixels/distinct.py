"""The distinct colours of an 8-bit RGB image and the look-up back to its pixels.

A photo has far fewer distinct colours than pixels. Counting them takes one pass over the
pixels with a table of 2**24 counters indexed by the packed colour ``r << 16 | g << 8 | b``;
labelling every pixel afterwards takes one more pass through the same table. The table (64 MiB)
is allocated once per process and cleared entry by entry after use, because first touching
fresh memory costs more here than the passes themselves.
"""

from __future__ import annotations

import threading

import numpy as np

from imgclust._native import call

__all__ = ["DistinctColours", "distinct_colours"]

_TABLE_SIZE = 1 << 24
_table_lock = threading.Lock()
_table: np.ndarray | None = None


def _shared_table() -> np.ndarray:
    """The process-wide zeroed table of 2**24 uint32 (callers hold ``_table_lock``)."""
    global _table
    if _table is None:
        table = np.empty(_TABLE_SIZE, dtype=np.uint32)  # empty+fill lets NumPy use huge pages
        table.fill(0)
        _table = table
    return _table


class DistinctColours:
    """The distinct colours of some pixels, with their counts.

    Attributes
    ----------
    colors : (M, 3) uint8 ndarray
        Each distinct colour once, in order of first appearance.
    counts : (M,) int64 ndarray
        How many pixels have each colour.
    """

    def __init__(self, keys: np.ndarray, counts: np.ndarray) -> None:
        self._keys = keys
        self.counts = counts
        self.colors = np.stack(
            [(keys >> 16) & 0xFF, (keys >> 8) & 0xFF, keys & 0xFF], axis=1
        ).astype(np.uint8)

    def __len__(self) -> int:
        return int(self._keys.shape[0])

    def lookup(
        self,
        pixels: np.ndarray,
        values: np.ndarray,
        include: np.ndarray | None = None,
        *,
        dtype=np.uint8,
    ) -> np.ndarray:
        """Give every pixel the value of its colour.

        Parameters
        ----------
        pixels : (N, 3) uint8 ndarray
            The pixels that were counted (or any pixels of those colours).
        values : (M,) integer ndarray
            One value per distinct colour, e.g. its cluster.
        include : (N,) bool ndarray, optional
            Pixels left out get the largest value of ``dtype``.
        dtype : {uint8, uint16, uint32}, default=uint8
            Type of the result; ``values`` must be below its largest value.

        Returns
        -------
        (N,) ndarray of ``dtype``
        """
        with _table_lock:
            table = _shared_table()
            _fill(table, self._keys, values.astype(np.uint32))
            out = np.empty(pixels.shape[0], dtype=dtype)
            args = (np.ascontiguousarray(pixels, dtype=np.uint8), _mask_arg(include), table, out)
            try:
                call("lookup", *args, int(np.iinfo(dtype).max))
            finally:
                _fill(table, self._keys, np.zeros(len(self), dtype=np.uint32))
        return out


def _mask_arg(include: np.ndarray | None) -> np.ndarray:
    if include is None:
        return np.empty(0, dtype=np.bool_)
    return np.ascontiguousarray(include, dtype=np.bool_)


def _fill(table: np.ndarray, keys: np.ndarray, values: np.ndarray) -> None:
    call("fill", table, keys, values)


def distinct_colours(pixels: np.ndarray, include: np.ndarray | None = None) -> DistinctColours:
    """Count the distinct colours of ``pixels``.

    Parameters
    ----------
    pixels : (N, 3) uint8 ndarray, C-contiguous
        RGB pixels.
    include : (N,) bool ndarray, optional
        Only these pixels are counted.

    Returns
    -------
    DistinctColours
    """
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    with _table_lock:
        table = _shared_table()
        keys = np.empty(min(pixels.shape[0], _TABLE_SIZE), dtype=np.uint32)
        args = (pixels, _mask_arg(include), table, keys)
        n_distinct = call("count", *args)
        keys = keys[:n_distinct].copy()
        counts = np.empty(n_distinct, dtype=np.int64)
        call("collect_and_clear", table, keys, counts)
    return DistinctColours(keys, counts)
