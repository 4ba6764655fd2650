"""Compiled loops behind the weighted k-means engine (called through
:mod:`imgclust.cluster._loops`).

Private: callers pass C-contiguous float arrays of matching dtype, non-negative weights and
in-range sizes; nothing here validates. Each loop comes in a serial and a parallel version.
Both split the samples into the same fixed chunks, which do not depend on the thread count,
and reduce the partial sums in chunk order, so results are bit-identical whatever the version
and the number of threads. The serial versions are also compiled ahead of time (see
:mod:`imgclust._native`), so this module must import nothing from imgclust.
"""

from __future__ import annotations

import numba as nb
import numpy as np

#: Samples per chunk (a fixed partition keeps the sums deterministic).
CHUNK = 8192


@nb.njit(cache=True, inline="always")
def _sqdist(X, i, C, j):
    s = 0.0
    for f in range(X.shape[1]):
        t = X[i, f] - C[j, f]
        s += t * t
    return s


@nb.njit(cache=True)
def _partials(n, k, d):
    """Zeroed per-chunk partial sums, weights, inertia and change counts for ``n`` samples."""
    m = max(1, (n + CHUNK - 1) // CHUNK)
    return np.zeros((m, k, d)), np.zeros((m, k)), np.zeros(m), np.zeros(m, dtype=np.int64)


@nb.njit(cache=True)
def _reduce_chunks(sums, weights, inertia, changed):
    """Sum the per-chunk partials in chunk order (the same order whatever the threads)."""
    total_sums = np.zeros(sums.shape[1:])
    total_weights = np.zeros(weights.shape[1])
    total_inertia = 0.0
    total_changed = 0
    for c in range(sums.shape[0]):
        total_sums += sums[c]
        total_weights += weights[c]
        total_inertia += inertia[c]
        total_changed += changed[c]
    return total_sums, total_weights, total_inertia, total_changed


@nb.njit(cache=True, inline="always")
def _accumulate_chunk(X, w, centers, labels, min_dist, c, sums, weights, inertia, changed):
    """One chunk of the E-step for any number of features.

    The chunk is copied feature-major, and the distances to each centre are summed feature by
    feature in loops over the chunk's samples that LLVM vectorises. Per sample that is the
    arithmetic of a sample-by-sample loop in the same order, so the result is bit-identical.
    """
    n, d = X.shape
    k = centers.shape[0]
    lo = c * CHUNK
    size = min(n, lo + CHUNK) - lo
    columns = np.empty((d, size), dtype=X.dtype)
    for i in range(size):
        for f in range(d):
            columns[f, i] = X[lo + i, f]
    best = np.full(size, np.inf)
    best_j = np.zeros(size, dtype=np.int64)
    distance = np.empty(size)
    for j in range(k):
        distance[:] = 0.0
        for f in range(d):
            centre = centers[j, f]
            column = columns[f]
            for i in range(size):
                t = column[i] - centre
                distance[i] += t * t
        for i in range(size):
            if distance[i] < best[i]:
                best[i] = distance[i]
                best_j[i] = j
    for i in range(size):
        b = best_j[i]
        if labels[lo + i] != b:
            changed[c] += 1
            labels[lo + i] = b
        min_dist[lo + i] = best[i]
        wi = w[lo + i]
        inertia[c] += wi * best[i]
        weights[c, b] += wi
        for f in range(d):
            sums[c, b, f] += wi * columns[f, i]


@nb.njit(cache=True, parallel=True, nogil=True)
def assign_and_accumulate_parallel(X, w, centers, labels, min_dist):
    """One Lloyd E-step with the sums for the M-step.

    Writes the nearest centre of each sample into ``labels`` and its squared distance into
    ``min_dist``. Returns the weighted coordinate sums per cluster ``(k, d)``, the weight per
    cluster ``(k,)``, the weighted inertia, and how many labels changed.
    """
    sums, weights, inertia, changed = _partials(X.shape[0], centers.shape[0], X.shape[1])
    for c in nb.prange(sums.shape[0]):
        _accumulate_chunk(X, w, centers, labels, min_dist, c, sums, weights, inertia, changed)
    return _reduce_chunks(sums, weights, inertia, changed)


@nb.njit(cache=True, nogil=True)
def assign_and_accumulate_serial(X, w, centers, labels, min_dist):
    """:func:`assign_and_accumulate_parallel` on one thread."""
    sums, weights, inertia, changed = _partials(X.shape[0], centers.shape[0], X.shape[1])
    for c in range(sums.shape[0]):
        _accumulate_chunk(X, w, centers, labels, min_dist, c, sums, weights, inertia, changed)
    return _reduce_chunks(sums, weights, inertia, changed)


@nb.njit(cache=True, inline="always")
def _accumulate_chunk_3d(X, w, centers, labels, min_dist, c, sums, weights, inertia, changed):
    n = X.shape[0]
    k = centers.shape[0]
    for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
        x0 = X[i, 0]
        x1 = X[i, 1]
        x2 = X[i, 2]
        best = np.inf
        best_j = 0
        for j in range(k):
            t0 = x0 - centers[j, 0]
            t1 = x1 - centers[j, 1]
            t2 = x2 - centers[j, 2]
            s = t0 * t0 + t1 * t1 + t2 * t2
            if s < best:
                best = s
                best_j = j
        if labels[i] != best_j:
            changed[c] += 1
            labels[i] = best_j
        min_dist[i] = best
        wi = w[i]
        inertia[c] += wi * best
        weights[c, best_j] += wi
        sums[c, best_j, 0] += wi * x0
        sums[c, best_j, 1] += wi * x1
        sums[c, best_j, 2] += wi * x2


@nb.njit(cache=True, parallel=True, nogil=True)
def assign_and_accumulate_3d_parallel(X, w, centers, labels, min_dist):
    """:func:`assign_and_accumulate_parallel` for three features, the point kept in registers."""
    sums, weights, inertia, changed = _partials(X.shape[0], centers.shape[0], 3)
    for c in nb.prange(sums.shape[0]):
        _accumulate_chunk_3d(X, w, centers, labels, min_dist, c, sums, weights, inertia, changed)
    return _reduce_chunks(sums, weights, inertia, changed)


@nb.njit(cache=True, nogil=True)
def assign_and_accumulate_3d_serial(X, w, centers, labels, min_dist):
    """:func:`assign_and_accumulate_3d_parallel` on one thread."""
    sums, weights, inertia, changed = _partials(X.shape[0], centers.shape[0], 3)
    for c in range(sums.shape[0]):
        _accumulate_chunk_3d(X, w, centers, labels, min_dist, c, sums, weights, inertia, changed)
    return _reduce_chunks(sums, weights, inertia, changed)


@nb.njit(cache=True, inline="always")
def _assign_one(X, centers, labels, min_dist, i):
    best = np.inf
    best_j = 0
    for j in range(centers.shape[0]):
        s = _sqdist(X, i, centers, j)
        if s < best:
            best = s
            best_j = j
    labels[i] = best_j
    min_dist[i] = best


@nb.njit(cache=True, parallel=True, nogil=True)
def assign_parallel(X, centers, labels, min_dist):
    """Nearest centre (into ``labels``) and squared distance (into ``min_dist``) per sample."""
    for i in nb.prange(X.shape[0]):
        _assign_one(X, centers, labels, min_dist, i)


@nb.njit(cache=True, nogil=True)
def assign_serial(X, centers, labels, min_dist):
    """:func:`assign_parallel` on one thread."""
    for i in range(X.shape[0]):
        _assign_one(X, centers, labels, min_dist, i)


@nb.njit(cache=True, inline="always")
def _chunk_potential(X, w, closest, cand, c):
    acc = 0.0
    for i in range(c * CHUNK, min(X.shape[0], (c + 1) * CHUNK)):
        s = _sqdist(X, i, X, cand)
        acc += w[i] * min(s, closest[i])
    return acc


@nb.njit(cache=True, parallel=True, nogil=True)
def potential_parallel(X, w, closest, cand):
    """Weighted potential if sample ``cand`` were added as a centre (chunk sums in order)."""
    m = max(1, (X.shape[0] + CHUNK - 1) // CHUNK)
    part = np.zeros(m)
    for c in nb.prange(m):
        part[c] = _chunk_potential(X, w, closest, cand, c)
    total = 0.0
    for c in range(m):
        total += part[c]
    return total


@nb.njit(cache=True, nogil=True)
def potential_serial(X, w, closest, cand):
    """:func:`potential_parallel` on one thread (the same sums in the same order)."""
    m = max(1, (X.shape[0] + CHUNK - 1) // CHUNK)
    total = 0.0
    for c in range(m):
        total += _chunk_potential(X, w, closest, cand, c)
    return total


@nb.njit(cache=True, inline="always")
def _update_one(X, closest, cand, i):
    s = _sqdist(X, i, X, cand)
    if s < closest[i]:
        closest[i] = s


@nb.njit(cache=True, parallel=True, nogil=True)
def update_closest_parallel(X, closest, cand):
    """Lower ``closest`` to the squared distance to sample ``cand`` where that is nearer."""
    for i in nb.prange(X.shape[0]):
        _update_one(X, closest, cand, i)


@nb.njit(cache=True, nogil=True)
def update_closest_serial(X, closest, cand):
    """:func:`update_closest_parallel` on one thread."""
    for i in range(X.shape[0]):
        _update_one(X, closest, cand, i)
