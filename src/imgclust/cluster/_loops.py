"""Which version of each k-means loop runs, and k-means++ seeding around them.

Every loop of :mod:`imgclust.cluster._kernels` has a serial and a parallel version that give
bit-identical results. A call runs the serial one, compiled ahead of time when the package was
built (:mod:`imgclust._native`), unless it has at least :data:`PARALLEL_MIN_TERMS` distance
terms (samples x centres x features): only then does the work repay waking numba's threads
(about 3 ms a call) and, in a fresh process, importing numba and loading its cached code
(about 0.6 s). The colour summary of a photo (a few hundred thousand distinct colours, K up
to 16) stays below it; a raster sample of a million pixels with 7 bands does not.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np

from imgclust._native import LOOPS, loop

__all__ = ["PARALLEL_MIN_TERMS", "assign", "e_step", "kmeans_plusplus"]

#: Distance terms (samples x centres x features) from which a call runs on all threads.
PARALLEL_MIN_TERMS = 1 << 25


def _parallel(name: str) -> Callable:
    """The parallel JIT version, beside the serial one in the module :data:`LOOPS` names."""
    return getattr(importlib.import_module(LOOPS[name][0]), f"{name}_parallel")


def _choose(name: str, n_terms: int, *args, parallel: bool = True) -> Callable:
    if parallel and n_terms >= PARALLEL_MIN_TERMS:
        return _parallel(name)
    return loop(name, *args)


def e_step(X, w, centers, labels, min_dist, *, parallel: bool = True) -> Callable:
    """The Lloyd E-step loop for these arrays (three features have their own).

    The returned function, called as ``step(X, w, centers, labels, min_dist)`` with arrays
    of the same types, writes the nearest centre of each sample into ``labels`` and its
    squared distance into ``min_dist``, and returns the weighted coordinate sums per cluster
    ``(k, d)``, the weight per cluster ``(k,)``, the weighted inertia and how many labels
    changed. ``parallel=False`` keeps it on one thread whatever the size.
    """
    name = "assign_and_accumulate_3d" if X.shape[1] == 3 else "assign_and_accumulate"
    terms = X.size * centers.shape[0]
    return _choose(name, terms, X, w, centers, labels, min_dist, parallel=parallel)


def assign(X, centers, labels, min_dist, *, parallel: bool = True) -> None:
    """Nearest centre (into ``labels``) and squared distance (into ``min_dist``) per sample."""
    terms = X.size * centers.shape[0]
    _choose("assign", terms, X, centers, labels, min_dist, parallel=parallel)(
        X, centers, labels, min_dist
    )


def _pick(cumulative: np.ndarray, u: float) -> int:
    """Index drawn with probability proportional to the increments of ``cumulative``."""
    index = np.searchsorted(cumulative, u * cumulative[-1], side="right")
    return int(min(index, cumulative.shape[0] - 1))


def kmeans_plusplus(X, w, n_clusters: int, uniforms: np.ndarray):
    """Greedy weighted k-means++ seeding (Arthur and Vassilvitskii, 2007).

    ``uniforms`` is ``(n_clusters, n_local_trials)`` of draws in [0, 1): row 0 picks the first
    centre (column 0), each later row the candidates of one step. A sample is drawn with
    probability proportional to its weight times its squared distance to the nearest centre
    chosen so far, and of the candidates the one that lowers the potential most is kept. Drawing
    through cumulative sums makes a sample of weight 2 behave exactly like two copies of it.
    Returns the centres (rows of ``X``) and their indices.
    """
    closest = np.full(X.shape[0], np.inf)
    potential = _choose("potential", X.size, X, w, closest, 0)
    update_closest = _choose("update_closest", X.size, X, closest, 0)
    indices = np.empty(n_clusters, dtype=np.int64)
    indices[0] = _pick(np.cumsum(w), uniforms[0, 0])
    update_closest(X, closest, int(indices[0]))
    for c in range(1, n_clusters):
        cumulative = np.cumsum(w * closest)
        best_potential, best = np.inf, 0
        for u in uniforms[c]:
            candidate = _pick(cumulative, u)
            candidate_potential = potential(X, w, closest, candidate)
            if candidate_potential < best_potential:
                best_potential, best = candidate_potential, candidate
        update_closest(X, closest, best)
        indices[c] = best
    return X[indices], indices
