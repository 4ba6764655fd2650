"""Compiled loops of the raster passes: candidate keys of the sample, and one fused pass that
computes the features of a strip, labels each valid pixel and adds it to its class sums.

Private: callers pass C-contiguous arrays of the documented dtypes. Rows are processed in
parallel with per-row partial sums, reduced in row order, so results do not depend on the
number of threads.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@nb.njit(cache=True, inline="always")
def splitmix64(position, seed):
    """SplitMix64's finaliser of ``position + (seed + 1) * golden``: a bijection of uint64."""
    z = np.uint64(position) + np.uint64(seed) * _GOLDEN + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@nb.njit(cache=True, nogil=True)
def candidates(valid, first_position, seed, threshold, local, keys):
    """Valid pixels of a strip whose key is <= ``threshold``: fills ``local`` (flat index in
    the strip) and ``keys``; returns how many, and how many valid pixels there were."""
    n = 0
    n_valid = 0
    for i in range(valid.shape[0]):
        if valid[i]:
            n_valid += 1
            key = splitmix64(first_position + i, seed)
            if key <= threshold:
                local[n] = i
                keys[n] = key
                n += 1
    return n, n_valid


@nb.njit(cache=True, parallel=True, nogil=True)
def classify_strip(
    data, valid, n_bands, index_a, index_b, mean, scale, centers, codes, sums, squares, counts
):
    """Label every valid pixel of a strip and add it to the per-row class sums.

    data : (n_read, h, w) float32; the first ``n_bands`` rows are the band features
    valid : (h, w) bool
    index_a, index_b : (n_indices,) int64 rows of ``data`` of each normalised difference
    mean, scale : (n_features,) float64, centers : (k, n_features) float32
    codes : (h, w) output, 0 for invalid pixels, else 1 + the nearest centre
    sums, squares : (m, k + 1, n_features) float64, counts : (m, k + 1) int64, zeroed: the
    partial sums of ``m`` chunks of rows; the features are added centred on ``mean``
    """
    h, w = valid.shape
    n_features = mean.shape[0]
    k = centers.shape[0]
    m = counts.shape[0]
    rows_per_chunk = (h + m - 1) // m
    for chunk in nb.prange(m):
        # One row at a time, each step a loop over the row's pixels that the compiler turns
        # into SIMD code; per pixel the arithmetic and its order are those of a plain
        # pixel-by-pixel loop, so the codes and sums do not depend on this layout. The
        # nearest-centre loop repeats the one of cluster/_kernels.py on purpose: numba's
        # on-disk cache is keyed on the calling file only, so a compiled helper shared across
        # the two files would leave stale machine code here after an edit over there.
        raw = np.empty((n_features, w))
        scaled = np.empty((n_features, w), dtype=np.float32)
        distance = np.empty(w)
        best = np.empty(w)
        best_j = np.empty(w, dtype=np.int64)
        for r in range(chunk * rows_per_chunk, min(h, (chunk + 1) * rows_per_chunk)):
            for f in range(n_bands):
                for c in range(w):
                    raw[f, c] = data[f, r, c]
            for j in range(index_a.shape[0]):
                for c in range(w):
                    a = data[index_a[j], r, c]
                    b = data[index_b[j], r, c]
                    total = a + b
                    raw[n_bands + j, c] = (a - b) / total if total != 0 else 0.0
            for f in range(n_features):
                for c in range(w):
                    scaled[f, c] = np.float32((raw[f, c] - mean[f]) / scale[f])
            best[:] = np.inf
            best_j[:] = 0
            for j in range(k):
                distance[:] = 0.0
                for f in range(n_features):
                    centre = centers[j, f]
                    for c in range(w):
                        t = scaled[f, c] - centre
                        distance[c] += t * t
                for c in range(w):
                    if distance[c] < best[c]:
                        best[c] = distance[c]
                        best_j[c] = j
            for c in range(w):
                if not valid[r, c]:
                    codes[r, c] = 0
                    continue
                code = best_j[c] + 1
                codes[r, c] = code
                counts[chunk, code] += 1
                for f in range(n_features):
                    d = raw[f, c] - mean[f]
                    sums[chunk, code, f] += d
                    squares[chunk, code, f] += d * d
