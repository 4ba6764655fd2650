"""Restarts on a small summary of the data, one refinement on all of it.

k-means from a single seeding is seed-sensitive on colour data, and restarts on millions of
weighted samples are slow. Each restart here runs on a summary of at most a few tens of
thousands of weighted points (a grid over the feature ranges, each cell replaced by the
weighted mean of its samples); the best seeding by inertia on the summary is then refined by
Lloyd's algorithm on the full data, where it converges in a few iterations. The refinement
minimises exactly the full objective, so the summary only decides where the run starts.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from imgclust.cluster.engine import KMeansFit, as_random_state, fit_kmeans

__all__ = ["fit_with_summary", "grid_summary"]

#: Below this many samples the restarts run on the data itself.
SUMMARY_THRESHOLD = 20_000


def grid_summary(
    X: np.ndarray, weights: np.ndarray, bins: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted means and total weights of the non-empty cells of a ``bins``-per-axis grid.

    Parameters
    ----------
    X : (n, d) ndarray with d <= 4
    weights : (n,) ndarray

    Returns
    -------
    means : (m, d) ndarray of X's dtype
    totals : (m,) float64 ndarray
    """
    lo = X.min(axis=0)
    span = np.maximum(X.max(axis=0) - lo, np.finfo(np.float32).eps)
    cells = np.minimum(((X - lo) / span * bins).astype(np.int64), bins - 1)
    cell = np.ravel_multi_index(tuple(cells.T), (bins,) * X.shape[1])
    n_cells = bins ** X.shape[1]
    totals = np.bincount(cell, weights=weights, minlength=n_cells)
    positive = np.flatnonzero(totals > 0)
    means = np.empty((positive.size, X.shape[1]), dtype=np.float64)
    for f in range(X.shape[1]):
        means[:, f] = np.bincount(cell, weights=weights * X[:, f], minlength=n_cells)[positive]
    totals = totals[positive]
    means /= totals[:, None]
    return means.astype(X.dtype), totals


def _restart_set(X, weights, n_clusters, rng):
    """The data the restarts run on: a grid summary, or a weighted subsample for wide data."""
    if X.shape[0] <= SUMMARY_THRESHOLD:
        return X, weights
    if X.shape[1] <= 4:
        means, totals = grid_summary(X, weights)
        if means.shape[0] >= 4 * n_clusters:
            return means, totals
    p = weights / weights.sum()
    idx = np.sort(rng.choice(X.shape[0], size=SUMMARY_THRESHOLD, replace=False, p=p))
    return X[idx], np.ones(idx.size)


def fit_with_summary(
    X: np.ndarray,
    weights: np.ndarray,
    n_clusters: int,
    *,
    init: str = "k-means++",
    n_init: int = 8,
    max_iter: int = 300,
    tol: float = 1e-4,
    random_state: int | None = None,
    epsilon: float | None = None,
    parallel: bool = True,
) -> KMeansFit:
    """Fit k-means on ``(X, weights)``: restarts on a summary, refinement on all samples.

    Parameters
    ----------
    X : (n, d) float ndarray
    weights : (n,) ndarray
        Sample weights (e.g. pixel counts of distinct colours).
    n_clusters, init, n_init, max_iter, tol, random_state
        As in :class:`imgclust.KMeans`; ``n_init`` seedings are each run to convergence on
        the summary and the best one is refined on ``X``.
    parallel : bool, default=True
        ``False`` keeps the refinement's loops on one thread whatever the size of ``X``
        (fewer CPU seconds, and a fresh process need not import numba).

    Returns
    -------
    KMeansFit
        Fitted on ``X``; ``labels`` and ``inertia`` refer to ``X``.
    """
    X = np.ascontiguousarray(X)
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    rng = as_random_state(random_state)
    options = {"max_iter": max_iter, "tol": tol, "epsilon": epsilon}
    restart_X, restart_w = _restart_set(X, weights, n_clusters, rng)
    if restart_X is X:
        return fit_kmeans(
            X, weights, n_clusters, init=init, n_init=n_init, random_state=rng, parallel=parallel,
            **options,
        )  # fmt: skip
    seeding = fit_kmeans(
        restart_X,
        np.ascontiguousarray(restart_w, dtype=np.float64),
        n_clusters,
        init=init,
        n_init=n_init,
        random_state=rng,
        **options,
    )
    final = fit_kmeans(X, weights, n_clusters, init=seeding.centers, parallel=parallel, **options)
    return replace(final, summary_size=int(restart_X.shape[0]), summary_iter=seeding.n_iter)
