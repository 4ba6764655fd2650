"""Weighted k-means: a scikit-learn-compatible estimator on compiled loops."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
)
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from imgclust.cluster.engine import fit_kmeans, kmeans_plusplus, nearest
from imgclust.errors import InvalidParameterError

__all__ = ["KMeans", "k_means", "kmeans_plusplus"]


class KMeans(ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin, BaseEstimator):
    """K-means clustering with sample weights, on compiled parallel loops.

    The same objective and options as :class:`sklearn.cluster.KMeans` (Lloyd's algorithm,
    greedy k-means++ or random seeding, restarts, relative tolerance), with results that do not
    depend on the number of threads. A sample of weight ``w`` counts exactly as ``w`` copies of
    it, which is what makes clustering the distinct colours of an image, weighted by their
    counts, equal to clustering all of its pixels.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.
    init : {"k-means++", "random"} or ndarray of shape (n_clusters, n_features), default="k-means++"
        Seeding: greedy k-means++, ``n_clusters`` samples drawn with probability proportional
        to their weight, or the given centres (then a single run is made).
    n_init : int or "auto", default="auto"
        Number of runs from different seedings; the run with the lowest inertia is kept.
        ``"auto"`` means 1 for k-means++ and 10 for random seeding.
    max_iter : int, default=300
        Most Lloyd iterations of one run.
    tol : float, default=1e-4
        A run stops when the squared movement of the centres falls under ``tol`` times the
        mean variance of the features, or when no label changes.
    random_state : int, RandomState instance or None, default=None
        Seed of the seedings; an int gives the same result on every run.

    Attributes
    ----------
    cluster_centers_ : (n_clusters, n_features) ndarray
        The centres, in the dtype of the training data.
    labels_ : (n_samples,) ndarray of int32
        Cluster of each training sample.
    inertia_ : float
        Weighted sum of squared distances of the samples to their centres.
    n_iter_ : int
        Lloyd iterations of the best run.
    n_features_in_ : int
        Number of features seen in ``fit``.

    Notes
    -----
    As a transformer, it turns each sample into its distances to the ``n_clusters`` centres:
    clustering as a preprocessing step. In a :class:`~sklearn.pipeline.Pipeline` before a
    classifier, :class:`~sklearn.model_selection.GridSearchCV` can choose ``n_clusters``
    (``imgclust experiment preprocessing`` shows it on the digits).

    Examples
    --------
    >>> import numpy as np
    >>> from imgclust import KMeans
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 10.0], [10.0, 11.0]])
    >>> km = KMeans(n_clusters=2, random_state=0).fit(X)
    >>> sorted(km.cluster_centers_.tolist())
    [[0.0, 0.5], [10.0, 10.5]]
    """

    _parameter_constraints: dict = {  # noqa: RUF012 - scikit-learn's convention
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"k-means++", "random"}), np.ndarray],
        "n_init": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: str | np.ndarray = "k-means++",
        n_init: int | str = "auto",
        max_iter: int = 300,
        tol: float = 1e-4,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _resolved_n_init(self) -> int:
        if isinstance(self.init, np.ndarray):
            return 1
        if self.n_init == "auto":
            return 1 if self.init == "k-means++" else 10
        return int(self.n_init)

    def _check_init_array(self, X) -> None:
        init = np.asarray(self.init)
        if init.shape != (self.n_clusters, X.shape[1]):
            raise InvalidParameterError(
                f"init has shape {init.shape}; it must be (n_clusters, n_features) = "
                f"({self.n_clusters}, {X.shape[1]})"
            )

    def fit(self, X, y=None, sample_weight=None) -> KMeans:
        """Compute the clusters.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Weight of each sample (non-negative; at least one positive).

        Returns
        -------
        self : KMeans
            The fitted estimator.
        """
        self._validate_params()
        X = validate_data(self, X, dtype=[np.float64, np.float32], order="C", copy=False)
        weights = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        n_samples = X.shape[0]
        if n_samples < self.n_clusters:
            raise InvalidParameterError(
                f"n_samples={n_samples} should be >= n_clusters={self.n_clusters}"
            )
        if not np.any(weights > 0):
            raise InvalidParameterError("sample_weight is zero everywhere; give some weight")
        if isinstance(self.init, np.ndarray):
            self._check_init_array(X)
        best = fit_kmeans(
            X,
            weights,
            self.n_clusters,
            init=self.init,
            n_init=self._resolved_n_init(),
            max_iter=self.max_iter,
            tol=self.tol,
            random_state=self.random_state,
        )
        self.cluster_centers_, self.labels_ = best.centers, best.labels
        self.inertia_, self.n_iter_ = best.inertia, best.n_iter
        self._n_features_out = self.n_clusters
        return self

    def _check_X(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], order="C", reset=False)
        return X

    def _nearest(self, X):
        return nearest(X, self.cluster_centers_)

    def predict(self, X) -> np.ndarray:
        """Index of the nearest centre of each sample, ``(n_samples,)`` int32."""
        return self._nearest(self._check_X(X))[0]

    def fit_predict(self, X, y=None, sample_weight=None) -> np.ndarray:
        """Fit and return ``labels_``."""
        return self.fit(X, sample_weight=sample_weight).labels_

    def transform(self, X) -> np.ndarray:
        """Euclidean distance of each sample to each centre, ``(n_samples, n_clusters)``."""
        X = self._check_X(X)
        centers = self.cluster_centers_.astype(X.dtype, copy=False)
        sq = (
            np.einsum("ij,ij->i", X, X)[:, None]
            - 2.0 * (X @ centers.T)
            + np.einsum("ij,ij->i", centers, centers)[None, :]
        )
        return np.sqrt(np.maximum(sq, 0), dtype=X.dtype)

    def fit_transform(self, X, y=None, sample_weight=None) -> np.ndarray:
        """Fit and return the distances of the training samples to the centres."""
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def score(self, X, y=None, sample_weight=None) -> float:
        """Opposite of the weighted inertia of ``X`` on the fitted centres."""
        X = self._check_X(X)
        weights = _check_sample_weight(sample_weight, X, dtype=np.float64)
        return -float(np.sum(weights * self._nearest(X)[1]))


def k_means(
    X,
    n_clusters: int,
    *,
    sample_weight=None,
    **kwargs,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Fit :class:`KMeans` once and return ``(centers, labels, inertia)``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data.
    n_clusters : int
        Number of clusters.
    sample_weight : array-like of shape (n_samples,), optional
        Weight of each sample.
    **kwargs
        Other :class:`KMeans` parameters.

    Returns
    -------
    centers, labels, inertia
        As ``cluster_centers_``, ``labels_`` and ``inertia_``.
    """
    km = KMeans(n_clusters=n_clusters, **kwargs).fit(X, sample_weight=sample_weight)
    return km.cluster_centers_, km.labels_, km.inertia_
