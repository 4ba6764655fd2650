"""The clustering methods behind ``group``, by name, and the sweep that chooses K.

Every method returns labels ``0..K-1`` (``-1`` for the noise of DBSCAN and HDBSCAN), renumbered
by decreasing cluster size (ties by the first member), so that cluster 0 is always the largest
and the numbering does not depend on the method's internal order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from imgclust.errors import InvalidParameterError, MissingDependencyError

__all__ = [
    "K_RULES",
    "METHODS",
    "ClusterMethod",
    "KSweepScores",
    "fit_method",
    "linkage_matrix",
    "mean_silhouette",
    "mixture_bic",
    "renumber",
    "sweep_k",
    "sweep_sample",
]

# k-medoids holds the n x n distance matrix: 30,000 images take 7 GB.
_KMEDOIDS_MAX = 30_000


@dataclass(frozen=True)
class ClusterMethod:
    """A clustering method: its name, whether it takes K, and how to run it."""

    name: str
    takes_k: bool
    run: Callable[..., tuple[np.ndarray, np.ndarray | None]]  # -> labels, medoid indices
    summary: str


#: Past this many rows, k-means runs its restarts on a seeded sample of this many rows, then
#: Lloyd's iterations on every row from the best of them: the restarts stop growing with the
#: collection (as ``segment`` runs them on a summary of the colours).
KMEANS_SAMPLE_ROWS = 100_000


def _kmeans(X, n_clusters, random_state, n_init=10, **_):
    from imgclust.cluster.kmeans import KMeans

    if len(X) > KMEANS_SAMPLE_ROWS:
        rng = np.random.default_rng(random_state)
        sample = np.sort(rng.choice(len(X), KMEANS_SAMPLE_ROWS, replace=False))
        start = KMeans(n_clusters, n_init=n_init, random_state=random_state).fit(X[sample])
        model = KMeans(n_clusters, init=start.cluster_centers_, n_init=1).fit(X)
        return model.labels_, None
    model = KMeans(n_clusters, n_init=n_init, random_state=random_state).fit(X)
    return model.labels_, None


def _minibatch(X, n_clusters, random_state, **_):
    from sklearn.cluster import MiniBatchKMeans

    model = MiniBatchKMeans(n_clusters, n_init=3, batch_size=1024, random_state=random_state)
    return model.fit_predict(X), None


def _agglomerative(X, n_clusters, random_state, details=None, **_):
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(n_clusters, linkage="ward", compute_distances=True).fit(X)
    if details is not None:
        details["linkage"] = linkage_matrix(model.children_, model.distances_, len(X))
    return model.labels_, None


def linkage_matrix(children: np.ndarray, distances: np.ndarray, n_samples: int) -> np.ndarray:
    """scipy's linkage matrix ``Z`` of a fitted agglomerative tree (scikit-learn's
    ``children_`` and ``distances_``): the tree the labels were cut from, for
    ``scipy.cluster.hierarchy.dendrogram``."""
    counts = np.zeros(len(children))
    for i, merge in enumerate(children):
        counts[i] = sum(1 if child < n_samples else counts[child - n_samples] for child in merge)
    return np.column_stack([children, distances, counts]).astype(np.float64)


def _kmedoids(X, n_clusters, random_state, **_):
    try:
        import kmedoids
    except ImportError:
        raise MissingDependencyError(
            "k-medoids needs kmedoids: pip install 'imgclust[all]'"
        ) from None
    if len(X) > _KMEDOIDS_MAX:
        raise InvalidParameterError(
            f"k-medoids keeps all pairwise distances; {len(X):,} images is more than "
            f"{_KMEDOIDS_MAX:,}: use --method kmeans or minibatch"
        )
    from sklearn.metrics import pairwise_distances

    distances = pairwise_distances(X.astype(np.float64))
    model = kmedoids.KMedoids(
        n_clusters, method="fasterpam", init="build", random_state=random_state
    )
    model.fit(distances)
    return np.asarray(model.labels_), np.asarray(model.medoid_indices_)


def _default_eps(X: np.ndarray, min_samples: int) -> float:
    """The 95th percentile of the distance of each point to its min_samples-th neighbour."""
    from sklearn.neighbors import NearestNeighbors

    k = min(min_samples, len(X) - 1)
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X)
    return float(np.percentile(distances[:, k], 95)) or 1e-9


def _dbscan(X, n_clusters, random_state, eps=None, min_samples=None, **_):
    from sklearn.cluster import DBSCAN

    min_samples = min_samples or 15
    eps = eps or _default_eps(X, min_samples)
    return DBSCAN(eps=eps, min_samples=min_samples).fit_predict(X), None


def _hdbscan(X, n_clusters, random_state, min_samples=None, min_cluster_size=None, **_):
    from sklearn.cluster import HDBSCAN

    size = min_cluster_size or max(5, min(15, len(X) // 20))
    for name, value in (("--min-cluster-size", size), ("--min-samples", min_samples)):
        if value is not None and value > len(X):
            raise InvalidParameterError(
                f"{name} {value} is more than the {len(X)} images that were read; give at "
                f"most {len(X)}"
            )
    model = HDBSCAN(min_cluster_size=size, min_samples=min_samples, copy=True)
    return model.fit_predict(X), None


#: The clustering methods by name.
METHODS: dict[str, ClusterMethod] = {
    m.name: m
    for m in (
        ClusterMethod("kmeans", True, _kmeans, "k-means (k-means++, 10 restarts)"),
        ClusterMethod("minibatch", True, _minibatch, "mini-batch k-means (scikit-learn)"),
        ClusterMethod("agglomerative", True, _agglomerative, "agglomerative, Ward linkage"),
        ClusterMethod("kmedoids", True, _kmedoids, "k-medoids (FasterPAM)"),
        ClusterMethod("dbscan", False, _dbscan, "DBSCAN (noise = -1)"),
        ClusterMethod("hdbscan", False, _hdbscan, "HDBSCAN (noise = -1)"),
    )
}


def get_method(name: str) -> ClusterMethod:
    """The method called ``name``; an unknown name gets the list of known ones."""
    if name not in METHODS:
        raise InvalidParameterError(
            f"unknown clustering method {name!r}; the methods are: {', '.join(METHODS)}"
        )
    return METHODS[name]


def renumber(labels: np.ndarray, medoids: np.ndarray | None = None):
    """Renumber clusters by decreasing size (noise stays -1); reorder medoids the same way."""
    labels = np.asarray(labels, dtype=np.int64)
    found = np.unique(labels[labels >= 0])
    sizes = np.array([np.sum(labels == c) for c in found])
    first = np.array([np.argmax(labels == c) for c in found])
    order = found[np.lexsort((first, -sizes))] if found.size else found
    mapping = np.full(labels.max(initial=-1) + 2, -1, dtype=np.int64)
    mapping[order + 1] = np.arange(order.size)
    new = mapping[labels + 1]
    if medoids is not None:
        medoids = np.asarray(medoids)[np.argsort(mapping[np.arange(len(medoids)) + 1])]
    return new, medoids


def fit_method(
    X: np.ndarray,
    method: str,
    n_clusters: int | None,
    random_state: int,
    details: dict | None = None,
    **options: Any,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Cluster ``X``; returns renumbered labels and, for k-medoids, the medoid indices.

    ``details``, a dict, receives what a method has beyond labels: ``"linkage"`` (scipy's
    linkage matrix) for agglomerative.
    """
    spec = get_method(method)
    if len(X) < 2:
        raise InvalidParameterError(
            f"grouping needs at least 2 images and {len(X)} could be read; add images "
            "(or check why the others cannot be read)"
        )
    if spec.takes_k:
        if n_clusters is None:
            raise InvalidParameterError(f"{method} needs the number of clusters (-k N or -k auto)")
        if not 1 <= n_clusters <= len(X):
            raise InvalidParameterError(
                f"n_clusters={n_clusters} is more than the {len(X)} images that were read; "
                f"choose K from 1 to {len(X)}"
                if n_clusters > len(X)
                else f"n_clusters={n_clusters} must be at least 1"
            )
    labels, medoids = spec.run(X, n_clusters, random_state, details=details, **options)
    return renumber(labels, medoids)


#: The rules a sweep over K can choose by.
K_RULES = ("silhouette", "bic")
#: Rows the silhouettes and the mixture likelihoods of a sweep are computed on (a seeded
#: sample past it).
_SWEEP_SAMPLE = 5000


@dataclass
class KSweepScores:
    """Scores of a sweep over K (the table of ``choose_k.csv``).

    Each K is fitted once (k-means with 3 restarts instead of 10; the chosen K is fitted again
    with 10). Two rules choose K:

    - ``"silhouette"``: the K with the highest silhouette (on a seeded sample of at most
      5,000 images);
    - ``"bic"``: the K whose clusters, taken as Gaussians (each its own mean and covariance,
      its share of the images as weight), explain the space best by the Bayesian information
      criterion (lower is better), the curve averaged over the space and its ``resampled``
      views (maps of other seeds), each relative to its own minimum. Meant for 2-D maps,
      where clusters are compact blobs.

    The elbow (the knee of the within-cluster sum of squares, Kneedle), the Davies-Bouldin
    index (lower is better) and the Calinski-Harabasz index (higher is better) are reported
    beside them, and the elbow decides when neither rule can score.
    """

    ks: np.ndarray
    wcss: np.ndarray
    silhouette: np.ndarray
    davies_bouldin: np.ndarray
    calinski_harabasz: np.ndarray
    best_k: int
    elbow_k: int | None
    rule: str
    bic: np.ndarray | None = None

    def to_rows(self) -> list[dict]:
        bic = self.bic if self.bic is not None else np.full(len(self.ks), np.nan)
        return [
            {
                "k": int(k),
                "silhouette": float(s),
                "davies_bouldin": float(d),
                "calinski_harabasz": float(c),
                "wcss": float(w),
                **({"bic": float(b)} if self.bic is not None else {}),
                "chosen": int(k) == self.best_k,
            }
            for k, s, d, c, w, b in zip(
                self.ks,
                self.silhouette,
                self.davies_bouldin,
                self.calinski_harabasz,
                self.wcss,
                bic,
                strict=True,
            )
        ]


def _wcss(X: np.ndarray, labels: np.ndarray) -> float:
    total = 0.0
    for c in np.unique(labels[labels >= 0]):
        members = X[labels == c]
        total += float(((members - members.mean(axis=0)) ** 2).sum())
    return total


def mixture_bic(X: np.ndarray, labels: np.ndarray) -> float:
    """The Bayesian information criterion of a partition taken as a Gaussian mixture: each
    cluster a Gaussian of its members' mean and covariance, weighted by its share of the rows
    (the classification likelihood; lower is better). Infinite when a cluster has too few
    members for a covariance (at most as many as dimensions); noise (-1) is left out.

    Parameters
    ----------
    X : (n, d) ndarray
    labels : (n,) int ndarray
    """
    X = np.asarray(X, dtype=np.float64)
    kept = labels >= 0
    X, labels = X[kept], labels[kept]
    n, d = X.shape
    clusters = np.unique(labels)
    log_likelihood = 0.0
    for c in clusters:
        members = X[labels == c]
        if len(members) <= d:
            return np.inf
        centred = members - members.mean(axis=0)
        covariance = centred.T @ centred / (len(members) - 1)
        covariance += np.eye(d) * (1e-9 * max(float(np.trace(covariance)) / d, 1e-12))
        sign, log_det = np.linalg.slogdet(covariance)
        if sign <= 0:
            return np.inf
        mahalanobis = np.einsum("ij,ij->i", centred @ np.linalg.inv(covariance), centred)
        log_likelihood += -0.5 * float(mahalanobis.sum())
        log_likelihood += -0.5 * len(members) * (log_det + d * np.log(2 * np.pi))
        log_likelihood += len(members) * np.log(len(members) / n)
    k = len(clusters)
    parameters = k * (d + d * (d + 1) / 2) + k - 1
    return -2.0 * log_likelihood + parameters * np.log(n)


def mean_silhouette(distances: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette coefficient from a precomputed distance matrix.

    The same value as ``sklearn.metrics.silhouette_score(distances, labels,
    metric="precomputed")`` (a member of a cluster of one scores 0; NaN with fewer than two
    clusters), from one matrix product per K: the sweep scores about 20 values of K on the
    same matrix, where scikit-learn's row-by-row reduction takes ten times longer.
    """
    present, codes = np.unique(labels, return_inverse=True)
    n, k = len(codes), len(present)
    if k < 2 or k >= n:
        return np.nan
    members = np.zeros((n, k), dtype=distances.dtype)
    members[np.arange(n), codes] = 1
    sums = (distances @ members).astype(np.float64)  # each row's summed distance to each cluster
    sizes = members.sum(axis=0, dtype=np.float64)
    own_size = sizes[codes]
    inner = sums[np.arange(n), codes] / np.maximum(own_size - 1, 1)
    mean_other = sums / sizes
    mean_other[np.arange(n), codes] = np.inf
    nearest = mean_other.min(axis=1)
    widest = np.maximum(inner, nearest)
    scores = np.divide(nearest - inner, widest, out=np.zeros(n), where=widest > 0)
    scores[own_size == 1] = 0.0
    return float(scores.mean())


def sweep_k(
    X: np.ndarray,
    method: str,
    ks: Sequence[int],
    random_state: int = 0,
    progress=None,
    *,
    rule: str = "silhouette",
    resampled: Sequence[np.ndarray] = (),
    **options: Any,
) -> KSweepScores:
    """Cluster ``X`` for every K in ``ks`` and score each clustering (see :class:`KSweepScores`).

    ``rule`` chooses K (``"silhouette"`` or ``"bic"``); ``resampled`` are other views of a
    seeded sample of at most 5,000 rows of ``X`` (maps of other seeds), clustered too with
    ``"bic"``: the sample is ``sweep_sample(len(X), random_state)``.
    """
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, pairwise_distances

    from imgclust._progress import no_progress
    from imgclust.cluster.choose_k import knee_point

    if not get_method(method).takes_k:
        raise InvalidParameterError(f"{method} finds the number of clusters itself; drop -k auto")
    if rule not in K_RULES:
        raise InvalidParameterError(f"unknown rule {rule!r}; the rules are: {', '.join(K_RULES)}")
    ks = sorted({k for k in ks if 1 <= k <= len(X)})
    if not ks:
        raise InvalidParameterError(f"no K in the range fits the {len(X)} images that were read")
    # One distance matrix on a seeded sample, shared by every K's silhouette.
    sample = sweep_sample(len(X), random_state)
    distances = pairwise_distances(X[sample])
    views = [X[sample], *resampled] if rule == "bic" else []
    rows, bic = [], []
    with (progress or no_progress)("choosing K", len(ks) * (1 + len(resampled))) as advance:
        for k in ks:
            labels, _ = fit_method(X, method, k, random_state, **{"n_init": 3, **options})
            scores = [np.nan, np.nan, np.nan]
            if 2 <= k < len(X) and len(np.unique(labels)) > 1:
                scores = [
                    mean_silhouette(distances, labels[sample]),
                    davies_bouldin_score(X, labels),
                    calinski_harabasz_score(X, labels),
                ]
            rows.append([_wcss(X, labels), *scores])
            advance()
            if views:
                bic.append(_view_bics(views, labels[sample], method, k, random_state, options))
                advance(len(resampled))
    wcss, silhouette, db, ch = (np.array(col, dtype=np.float64) for col in zip(*rows, strict=True))
    ks_array = np.array(ks)
    elbow = knee_point(ks_array, wcss)
    bic_curve = _mean_relative(np.array(bic).T) if views else None
    if bic_curve is not None and np.isfinite(bic_curve).any():
        best = int(ks_array[np.nanargmin(bic_curve)])
        rule_text = "lowest BIC of the clusters as Gaussians" + (
            f" (mean over {len(views)} maps)" if len(views) > 1 else ""
        )
    elif np.isfinite(silhouette).any():
        best, rule_text = int(ks_array[np.nanargmax(silhouette)]), "highest silhouette"
    elif elbow is not None:
        best, rule_text = elbow, "knee of the within-cluster sum of squares"
    else:
        best, rule_text = ks[0], "smallest K (no silhouette and no knee)"
    return KSweepScores(ks_array, wcss, silhouette, db, ch, best, elbow, rule_text, bic_curve)


def sweep_sample(n: int, random_state: int) -> np.ndarray | slice:
    """The rows a sweep scores: all of them up to 5,000, else a seeded sample of 5,000."""
    if n <= _SWEEP_SAMPLE:
        return slice(None)
    return np.sort(np.random.default_rng(random_state).choice(n, _SWEEP_SAMPLE, replace=False))


def _view_bics(views, labels, method, k, random_state, options) -> list[float]:
    """The mixture BIC of each view: the first with ``labels``, the others clustered anew."""
    values = [mixture_bic(views[0], labels)]
    for view in views[1:]:
        found, _ = fit_method(view, method, k, random_state, **{"n_init": 3, **options})
        values.append(mixture_bic(view, found))
    return values


def _mean_relative(curves: np.ndarray) -> np.ndarray:
    """The mean of several curves, each taken relative to its own finite minimum (a view's
    BIC depends on its scale); infinite where any curve is."""
    relative = []
    for curve in curves:
        finite = np.isfinite(curve)
        relative.append(curve - (curve[finite].min() if finite.any() else 0.0))
    return np.mean(relative, axis=0)
