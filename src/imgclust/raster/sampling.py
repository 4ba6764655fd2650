"""A seeded random sample of the valid pixels of a raster, whatever its size and windows.

Each pixel gets a 64-bit key from a bijective integer hash (SplitMix64's finaliser) of its
position in the raster and the seed; the sample is the ``n`` valid pixels with the smallest
keys, in raster order. Keys are uniform and independent of how the raster is split into
windows, so a windowed and an in-memory run draw exactly the same pixels, while memory stays
bounded: at most ``3 n`` candidates are kept between windows.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PixelSampler"]


class PixelSampler:
    """Keep the ``size`` valid pixels with the smallest keys over a stream of windows.

    Parameters
    ----------
    size : int
        Pixels wanted.
    width : int
        Raster width, to number the pixels.
    seed : int
    n_pixels : int, optional
        Pixels that will be offered. When given, keys above ``headroom * size / n_pixels`` of
        their range are not even kept as candidates; if fewer than ``size`` valid pixels fall
        under that bar (more than ``1 - 1 / headroom`` of the pixels are nodata),
        :attr:`complete` is False and the caller offers the windows again to a sampler without
        ``n_pixels``.
    headroom : float, default=4
    """

    def __init__(
        self,
        size: int,
        width: int,
        seed: int,
        n_pixels: int | None = None,
        headroom: float = 4.0,
    ) -> None:
        self.size = int(size)
        self.width = int(width)
        self.seed = int(seed)
        self.n_valid = 0
        self._keys: list[np.ndarray] = []
        self._positions: list[np.ndarray] = []
        self._values: list[np.ndarray] = []
        self._held = 0
        self._threshold = np.uint64(np.iinfo(np.uint64).max)
        self._capped = n_pixels is not None and headroom * self.size < n_pixels
        if self._capped:
            self._threshold = np.uint64(int(headroom * self.size / n_pixels * 2.0**64))

    @property
    def complete(self) -> bool:
        """Whether the sample holds the ``size`` smallest keys (or every valid pixel)."""
        return not self._capped or self._held >= self.size

    def add(self, row: int, data: np.ndarray, valid: np.ndarray, col: int = 0) -> None:
        """Offer a window whose first pixel is at ``(row, col)``: ``data`` (bands, h, w) of any
        type (the kept values become float32), ``valid`` (h, w)."""
        from imgclust import _native

        valid = np.ascontiguousarray(valid)
        local = np.empty(valid.size, dtype=np.int64)
        keys = np.empty(valid.size, dtype=np.uint64)
        n, n_valid = _native.call(
            "candidates", valid, row, col, self.width, self.seed, self._threshold, local, keys
        )
        local, keys = local[:n], keys[:n]
        # np.take: a third of the time of fancy indexing here
        values = np.take(data.reshape(data.shape[0], -1), local, axis=1).T.astype(np.float32)
        w = valid.shape[1]
        positions = (row + local // w) * self.width + col + local % w
        self.merge(keys, positions, values, n_valid)

    def merge(
        self, keys: np.ndarray, positions: np.ndarray, values: np.ndarray, n_valid: int
    ) -> None:
        """Add candidates another sampler (of the same size, width and seed) :meth:`held`."""
        self.n_valid += int(n_valid)
        if keys.size == 0:
            return
        self._keys.append(keys)
        self._positions.append(positions)
        self._values.append(values)
        self._held += keys.size
        if self._held > 3 * self.size:  # 3: the bar of the windowed sample keeps about 2
            self._shrink()

    def held(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """The candidates kept so far ``(keys, positions, values, n_valid)``, for :meth:`merge`.

        The smallest ``size`` keys of a union are the smallest of the union of each part's
        smallest: a sample drawn in parts (a strip per Dask task) and merged is the sample
        drawn in one pass.
        """
        if not self._keys:
            return (
                np.empty(0, np.uint64),
                np.empty(0, np.int64),
                np.empty((0, 0), np.float32),
                self.n_valid,
            )
        if len(self._keys) == 1:  # one window's candidates: no copy
            return self._keys[0], self._positions[0], self._values[0], self.n_valid
        return (
            np.concatenate(self._keys),
            np.concatenate(self._positions),
            np.concatenate(self._values),
            self.n_valid,
        )

    def _shrink(self) -> None:
        """Keep the ``size`` smallest keys. The kept rows are taken part by part in their
        order: gathering them at random from one concatenation of every candidate's values
        took up to 0.3 s for a million of two million."""
        keys = np.concatenate(self._keys)
        kept = np.sort(np.argpartition(keys, self.size - 1)[: self.size])
        bounds = np.cumsum([0] + [part.size for part in self._keys])
        cuts = np.searchsorted(kept, bounds)
        pieces = [
            kept[a:b] - start for start, a, b in zip(bounds[:-1], cuts[:-1], cuts[1:], strict=True)
        ]
        parts = zip(self._keys, self._positions, self._values, pieces, strict=True)
        kept_parts = [
            (np.take(k, i), np.take(p, i), np.take(v, i, axis=0)) for k, p, v, i in parts if i.size
        ]
        self._keys = [k for k, _, _ in kept_parts]
        self._positions = [p for _, p, _ in kept_parts]
        self._values = [v for _, _, v in kept_parts]
        self._held = self.size
        self._threshold = keys[kept].max()

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """The sample: pixel positions (sorted) and their values ``(n, bands)``."""
        if self._held > self.size:
            self._shrink()
        if not self._keys:
            return np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.float32)
        positions = np.concatenate(self._positions)
        values = np.concatenate(self._values)
        order = np.argsort(positions, kind="stable")
        return np.take(positions, order), np.take(values, order, axis=0)
