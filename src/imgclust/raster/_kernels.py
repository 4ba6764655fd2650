"""Compiled loops of the raster passes: candidate keys of the sample, and one fused pass that
computes the features of a strip, labels each valid pixel and adds it to its class sums.

Private: callers pass C-contiguous arrays of the documented dtypes. Each call runs on one
thread; callers run strips side by side and add their partial sums in strip order, so results
do not depend on the number of threads.
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
def candidates(valid, row, col, width, seed, threshold, local, keys):
    """Valid pixels of a window at ``(row, col)`` of a raster ``width`` wide whose key is <=
    ``threshold``: fills ``local`` (flat index in the window) and ``keys``; returns how many,
    and how many valid pixels there were."""
    n = 0
    n_valid = 0
    h, w = valid.shape
    for i in range(h):
        first_position = (row + i) * width + col
        for j in range(w):
            if valid[i, j]:
                n_valid += 1
                key = splitmix64(first_position + j, seed)
                if key <= threshold:
                    local[n] = i * w + j
                    keys[n] = key
                    n += 1
    return n, n_valid


@nb.njit(cache=True, nogil=True)
def classify_strip(
    data, valid, n_bands, index_a, index_b, mean, scale, centers, codes, sums, squares, counts
):
    """Label every valid pixel of a strip and add it to the class sums, on one thread (the
    passes run strips side by side).

    data : (n_read, h, w) of the bands' own type; the first ``n_bands`` rows are the band
        features
    valid : (h, w) bool
    index_a, index_b : (n_indices,) int64 rows of ``data`` of each normalised difference
    mean, scale : (n_features,) float64, centers : (k, n_features) float32
    codes : (h, w) output, 0 for invalid pixels, else 1 + the nearest centre
    sums, squares : (lanes, k + 1, n_features) float64, counts : (lanes, k + 1) int64,
        zeroed: partial sums by lane, ``lanes`` a power of two; pixel ``c`` of a row adds to
        lane ``c % lanes``, so that runs of one class do not make one long chain of dependent
        additions (4 lanes: 0.86-1.05 s per 45.7 MP against 1.17-1.33 with one); the features are
        added centred on ``mean``

    One row at a time, each step a loop over the row's pixels that the compiler turns into SIMD
    code. The features are those of the sample (:meth:`FeatureSpec.transform`): float32 values,
    indices in float32, centred on ``float32(mean)`` and divided by ``float32(scale)``;
    distances are float32 sums in feature order. The nearest-centre loop repeats the one of
    cluster/_kernels.py on purpose: numba's on-disk cache is keyed on the calling file only,
    so a compiled helper shared across the two files would leave stale machine code here after
    an edit over there.
    """
    h, w = valid.shape
    n_features = mean.shape[0]
    k = centers.shape[0]
    lanes = counts.shape[0]
    mask = lanes - 1
    centred = np.empty((n_features, w), dtype=np.float32)
    scaled = np.empty((n_features, w), dtype=np.float32)
    distance = np.empty(w, dtype=np.float32)
    best = np.empty(w, dtype=np.float32)
    label = np.empty(w, dtype=np.int64)
    row_sums = np.zeros((lanes, k + 1))
    row_squares = np.zeros((lanes, k + 1))
    for r in range(h):
        for f in range(n_features):
            shift = np.float32(mean[f])
            if f < n_bands:
                for c in range(w):
                    centred[f, c] = np.float32(data[f, r, c]) - shift
            else:
                a_row, b_row = index_a[f - n_bands], index_b[f - n_bands]
                for c in range(w):
                    a = np.float32(data[a_row, r, c])
                    b = np.float32(data[b_row, r, c])
                    total = a + b
                    value = (a - b) / total if total != 0 else np.float32(0.0)
                    centred[f, c] = value - shift
            spread = np.float32(scale[f])
            for c in range(w):
                scaled[f, c] = centred[f, c] / spread
        best[:] = np.inf
        label[:] = 1
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
                    label[c] = j + 1
        for c in range(w):
            if not valid[r, c]:
                label[c] = 0
            codes[r, c] = label[c]
            counts[c & mask, label[c]] += 1
        for f in range(n_features):
            row_sums[:] = 0.0
            row_squares[:] = 0.0
            for c in range(w):
                lane = c & mask
                d = np.float64(centred[f, c])
                row_sums[lane, label[c]] += d
                row_squares[lane, label[c]] += d * d
            for lane in range(lanes):
                for j in range(1, k + 1):
                    sums[lane, j, f] += row_sums[lane, j]
                    squares[lane, j, f] += row_squares[lane, j]
