"""The distinct colours of an 8-bit RGB image and the look-up back to its pixels.

A photo has far fewer distinct colours than pixels. Counting them takes one pass over the
pixels with a table of 2**24 counters indexed by the packed colour ``r << 16 | g << 8 | b``;
labelling every pixel afterwards takes one more pass through the same table. The table (64 MiB)
is allocated once per process and cleared entry by entry after use, because first touching
fresh memory costs more here than the passes themselves.
"""

from __future__ import annotations

import threading

import numba as nb
import numpy as np

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


@nb.njit(cache=True, nogil=True)
def _count(pixels, include, table, keys):
    """Count colours into ``table``; write each new packed colour to ``keys``; return how many."""
    n_distinct = 0
    use_mask = include.shape[0] > 0
    for i in range(pixels.shape[0]):
        if use_mask and not include[i]:
            continue
        key = (np.uint32(pixels[i, 0]) << 16) | (np.uint32(pixels[i, 1]) << 8) | pixels[i, 2]
        count = table[key]
        if count == 0:
            keys[n_distinct] = key
            n_distinct += 1
        table[key] = count + 1
    return n_distinct


@nb.njit(cache=True, nogil=True)
def _collect_and_clear(table, keys, counts):
    for j in range(keys.shape[0]):
        counts[j] = table[keys[j]]
        table[keys[j]] = 0


@nb.njit(cache=True, nogil=True)
def _fill(table, keys, values):
    for j in range(keys.shape[0]):
        table[keys[j]] = values[j]


@nb.njit(cache=True, parallel=True, nogil=True)
def _lookup(pixels, include, table, out, excluded):
    use_mask = include.shape[0] > 0
    for i in nb.prange(pixels.shape[0]):
        if use_mask and not include[i]:
            out[i] = excluded
        else:
            key = (np.uint32(pixels[i, 0]) << 16) | (np.uint32(pixels[i, 1]) << 8) | pixels[i, 2]
            out[i] = table[key]


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
        excluded: int = -1,
        dtype=np.int32,
    ) -> np.ndarray:
        """Give every pixel the value of its colour.

        Parameters
        ----------
        pixels : (N, 3) uint8 ndarray
            The pixels that were counted (or any pixels of those colours).
        values : (M,) integer ndarray
            One value per distinct colour, e.g. its cluster.
        include : (N,) bool ndarray, optional
            Pixels left out get ``excluded``.

        Returns
        -------
        (N,) ndarray of ``dtype``
        """
        with _table_lock:
            table = _shared_table()
            _fill(table, self._keys, values.astype(np.uint32))
            out = np.empty(pixels.shape[0], dtype=dtype)
            try:
                _lookup(pixels, _mask_arg(include), table, out, excluded)
            finally:
                _fill(table, self._keys, np.zeros(len(self), dtype=np.uint32))
        return out


def _mask_arg(include: np.ndarray | None) -> np.ndarray:
    return np.empty(0, dtype=np.bool_) if include is None else include


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
        n_distinct = _count(pixels, _mask_arg(include), table, keys)
        keys = keys[:n_distinct].copy()
        counts = np.empty(n_distinct, dtype=np.int64)
        _collect_and_clear(table, keys, counts)
    return DistinctColours(keys, counts)
