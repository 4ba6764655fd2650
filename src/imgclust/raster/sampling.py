"""A seeded random sample of the valid pixels of a raster, whatever its size and windows.

Each pixel gets a 64-bit key from a bijective integer hash (SplitMix64's finaliser) of its
position in the raster and the seed; the sample is the ``n`` valid pixels with the smallest
keys, in raster order. Keys are uniform and independent of how the raster is split into
windows, so a windowed and an in-memory run draw exactly the same pixels, while memory stays
bounded: at most ``2 n`` candidates are kept between windows.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PixelSampler", "pixel_keys"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def pixel_keys(positions: np.ndarray, seed: int) -> np.ndarray:
    """Uniform 64-bit keys of pixel ``positions`` (row * width + col) for ``seed``."""
    with np.errstate(over="ignore"):
        z = positions.astype(np.uint64) + np.uint64(seed) * _GOLDEN + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        return z ^ (z >> np.uint64(31))


class PixelSampler:
    """Keep the ``size`` valid pixels with the smallest keys over a stream of windows.

    Parameters
    ----------
    size : int
        Pixels wanted.
    width : int
        Raster width, to number the pixels.
    seed : int
    """

    def __init__(self, size: int, width: int, seed: int) -> None:
        self.size = int(size)
        self.width = int(width)
        self.seed = int(seed)
        self.n_valid = 0
        self._keys: list[np.ndarray] = []
        self._positions: list[np.ndarray] = []
        self._values: list[np.ndarray] = []
        self._held = 0
        self._threshold = np.uint64(np.iinfo(np.uint64).max)

    def add(self, row: int, data: np.ndarray, valid: np.ndarray) -> None:
        """Offer a window of whole rows starting at ``row``: ``data`` (bands, h, w), ``valid``."""
        local = np.flatnonzero(valid.reshape(-1))
        self.n_valid += local.size
        positions = local + row * self.width
        keys = pixel_keys(positions, self.seed)
        keep = keys <= self._threshold
        local, positions, keys = local[keep], positions[keep], keys[keep]
        self._keys.append(keys)
        self._positions.append(positions)
        self._values.append(data.reshape(data.shape[0], -1)[:, local].T)
        self._held += keys.size
        if self._held > 2 * self.size:
            self._shrink()

    def _shrink(self) -> None:
        keys = np.concatenate(self._keys)
        order = np.argpartition(keys, self.size - 1)[: self.size]
        self._keys = [keys[order]]
        self._positions = [np.concatenate(self._positions)[order]]
        self._values = [np.concatenate(self._values)[order]]
        self._held = self.size
        self._threshold = self._keys[0].max()

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """The sample: pixel positions (sorted) and their values ``(n, bands)``."""
        if self._held > self.size:
            self._shrink()
        if not self._keys:
            return np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.float32)
        positions = np.concatenate(self._positions)
        values = np.concatenate(self._values)
        order = np.argsort(positions, kind="stable")
        return positions[order], values[order]
