"""The k-means engine without scikit-learn: seeding, Lloyd iterations, restarts.

:class:`imgclust.KMeans` wraps these functions in a scikit-learn estimator; the one-image
jobs call them directly so that a command does not pay for importing scikit-learn (about a
second) when it does not need it.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from imgclust.cluster import _loops
from imgclust.errors import InvalidParameterError

__all__ = [
    "MAX_SEED",
    "KMeansFit",
    "as_random_state",
    "fit_kmeans",
    "kmeans_plusplus",
    "lloyd",
    "nearest",
]

#: The largest seed NumPy's and scikit-learn's generators take.
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class KMeansFit:
    """Result of one k-means fit: the best of its restarts."""

    centers: np.ndarray
    labels: np.ndarray
    inertia: float
    n_iter: int
    #: With restarts on a summary (:func:`imgclust.cluster.summary.fit_with_summary`): the
    #: summary's size and the best restart's iterations there; ``n_iter`` is the refinement's.
    summary_size: int = 0
    summary_iter: int = 0


def as_random_state(seed: int | np.random.RandomState | None) -> np.random.RandomState:
    """A RandomState from a seed, as :func:`sklearn.utils.check_random_state` does it."""
    if seed is None:
        return np.random.mtrand._rand
    if isinstance(seed, np.random.RandomState):
        return seed
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise InvalidParameterError(
            f"seed {seed!r} must be a whole number from 0 to {MAX_SEED} (2**32 - 1)"
        )
    return np.random.RandomState(seed)


#: Rows per block of :func:`tolerance`'s sums.
_TOLERANCE_BLOCK = 1 << 16


def tolerance(X: np.ndarray, sample_weight: np.ndarray, tol: float) -> float:
    """Absolute tolerance: ``tol`` times the mean weighted per-feature variance, as scikit-learn.

    Summed by blocks of rows (matrix-vector products): ``np.average`` over a million 7-feature
    float32 rows made float64 copies of them all and took 0.1-0.3 s a call, this 0.025 s (a
    raster fit makes three calls).
    """
    if tol == 0:
        return 0.0
    blocks = range(0, X.shape[0], _TOLERANCE_BLOCK)
    total = float(sample_weight.sum())

    def weighted_sum(values) -> np.ndarray:
        return sum(sample_weight[i : i + _TOLERANCE_BLOCK] @ values(i) for i in blocks)

    mean = weighted_sum(lambda i: X[i : i + _TOLERANCE_BLOCK].astype(np.float64)) / total
    variances = weighted_sum(lambda i: (X[i : i + _TOLERANCE_BLOCK] - mean) ** 2) / total
    return float(np.mean(variances) * tol)


def _n_local_trials(n_clusters: int) -> int:
    return 2 + int(math.log(n_clusters))


def as_weights(sample_weight: np.ndarray | None, n_samples: int) -> np.ndarray:
    """Sample weights as a contiguous float64 array (ones when None)."""
    if sample_weight is None:
        return np.ones(n_samples, dtype=np.float64)
    return np.ascontiguousarray(sample_weight, dtype=np.float64)


def kmeans_plusplus(
    X: np.ndarray,
    n_clusters: int,
    *,
    sample_weight: np.ndarray | None = None,
    random_state: int | np.random.RandomState | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Choose initial centres with greedy weighted k-means++.

    Parameters
    ----------
    X : (n_samples, n_features) ndarray
        Data, float32 or float64.
    n_clusters : int
        Number of centres to choose.
    sample_weight : (n_samples,) ndarray, optional
        Weight of each sample; a sample of weight 2 counts as two copies of it.
    random_state : int, RandomState or None
        Seed for the draws.

    Returns
    -------
    centers : (n_clusters, n_features) ndarray
        The chosen centres, rows of ``X``.
    indices : (n_clusters,) ndarray of int64
        Their row indices in ``X``.
    """
    X = np.ascontiguousarray(X)
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    weights = as_weights(sample_weight, X.shape[0])
    rng = as_random_state(random_state)
    uniforms = rng.random_sample((n_clusters, _n_local_trials(n_clusters)))
    return _loops.kmeans_plusplus(X, weights, n_clusters, uniforms)


def _relocate_empty(X, centers, weights, min_dist) -> None:
    """Move the centre of each empty cluster onto the sample farthest from its own centre."""
    empty = np.flatnonzero(weights == 0)
    if empty.size == 0:
        return
    farthest = np.argsort(-min_dist, kind="stable")[: empty.size]
    centers[empty] = X[farthest]


def lloyd(
    X,
    weights,
    centers,
    max_iter: int,
    tol: float,
    epsilon: float | None = None,
    parallel: bool = True,
) -> KMeansFit:
    """Run Lloyd iterations from ``centers`` until no label changes or the shift is <= ``tol``
    (the summed squared movement of the centres, as scikit-learn). With ``epsilon``, stop
    instead once no centre moves more than ``epsilon`` (OpenCV's ``TERM_CRITERIA_EPS``).
    ``parallel=False`` keeps every loop on one thread (see :mod:`imgclust.cluster._loops`)."""
    n = X.shape[0]
    centers = centers.astype(np.float64, copy=True)
    labels = np.full(n, -1, dtype=np.int32)
    min_dist = np.empty(n, dtype=np.float64)
    step = _loops.e_step(X, weights, centers, labels, min_dist, parallel=parallel)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - n_iter is reported
        sums, cluster_weights, _, changed = step(X, weights, centers, labels, min_dist)
        if changed == 0:  # same labels as last time: the centres are already their means
            break
        new_centers = centers.copy()
        filled = cluster_weights > 0
        new_centers[filled] = sums[filled] / cluster_weights[filled, None]
        _relocate_empty(X, new_centers, cluster_weights, min_dist)
        moves = np.sum((new_centers - centers) ** 2, axis=1)
        centers = new_centers
        if epsilon is not None:
            if float(moves.max()) <= epsilon * epsilon:
                break
        elif float(moves.sum()) <= tol:
            break
    centers = centers.astype(X.dtype)
    # Final E-step so that labels and inertia belong to the centres that are returned.
    _loops.assign(X, centers, labels, min_dist, parallel=parallel)
    return KMeansFit(centers, labels, float(np.sum(weights * min_dist)), n_iter)


def nearest(X: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest centre of each row (int32) and the squared distance to it."""
    labels = np.empty(X.shape[0], dtype=np.int32)
    min_dist = np.empty(X.shape[0], dtype=np.float64)
    _loops.assign(X, np.ascontiguousarray(centers, dtype=X.dtype), labels, min_dist)
    return labels, min_dist


def _seeding_draws(X, weights, n_clusters: int, init: str, rng: np.random.RandomState):
    """The random draws of one seeding: sample indices ("random") or the uniforms of
    k-means++."""
    if init == "random":
        p = weights / weights.sum()
        return rng.choice(X.shape[0], size=n_clusters, replace=False, p=p)
    return rng.random_sample((n_clusters, _n_local_trials(n_clusters)))


def _seed_from_draws(X, weights, n_clusters: int, init: str, draws: np.ndarray) -> np.ndarray:
    if init == "random":
        return X[np.sort(draws)]
    return _loops.kmeans_plusplus(X, weights, n_clusters, draws)[0]


#: Distance terms (samples x centres x features) of one restart from which restarts run on
#: several threads: below it, starting the threads costs more than they save.
THREADED_RESTARTS_MIN_TERMS = 1 << 18


def _restart_threads(n_runs: int, X: np.ndarray, n_clusters: int) -> int:
    """Threads for ``n_runs`` restarts: one per core, or 1 when the data is small or large
    enough that each loop runs on all of numba's threads already."""
    terms = X.size * n_clusters
    if n_runs < 2 or not THREADED_RESTARTS_MIN_TERMS <= terms < _loops.PARALLEL_MIN_TERMS:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(n_runs, cores or 1))


def fit_kmeans(
    X: np.ndarray,
    weights: np.ndarray,
    n_clusters: int,
    *,
    init: str | np.ndarray = "k-means++",
    n_init: int = 1,
    max_iter: int = 300,
    tol: float = 1e-4,
    random_state: int | np.random.RandomState | None = None,
    epsilon: float | None = None,
    parallel: bool = True,
) -> KMeansFit:
    """Weighted k-means on validated data; the run with the lowest inertia of ``n_init``.

    ``X`` must be C-contiguous float32 or float64 and ``weights`` float64 (as
    :class:`imgclust.KMeans` ensures); ``tol`` is relative to the data's variance;
    ``epsilon``, if given, replaces it with OpenCV's rule (see :func:`lloyd`);
    ``parallel=False`` keeps every loop on one thread.

    The random draws of every restart are made first, in order, so that restarts can run on
    several threads (the loops release the GIL) and still give the result of running them one
    after another; of equal inertias the first restart wins.
    """
    rng = as_random_state(random_state)
    absolute_tol = tolerance(X, weights, tol)
    if isinstance(init, np.ndarray):
        centers = np.asarray(init, dtype=X.dtype)
        return lloyd(X, weights, centers, max_iter, absolute_tol, epsilon, parallel)
    draws = [_seeding_draws(X, weights, n_clusters, init, rng) for _ in range(n_init)]

    def restart(draw: np.ndarray) -> KMeansFit:
        centers = _seed_from_draws(X, weights, n_clusters, init, draw)
        return lloyd(X, weights, centers, max_iter, absolute_tol, epsilon, parallel)

    threads = _restart_threads(n_init, X, n_clusters)
    if threads == 1:
        runs = [restart(draw) for draw in draws]
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            runs = list(pool.map(restart, draws))
    return min(runs, key=lambda run: run.inertia)  # min() keeps the first of equal values
