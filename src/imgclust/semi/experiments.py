"""The seeds' experiments, from imgclust's own code: ``imgclust experiment ...``.

The setting of Géron, *Hands-On Machine Learning*, chapter 9: scikit-learn's digits, the first
1,400 images to train and the remaining 397 to test, a logistic regression
(``max_iter=10000``) on the 64 pixel values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from imgclust._progress import ProgressFactory, no_progress

__all__ = [
    "REFERENCE",
    "ExperimentRow",
    "preprocessing_comparison",
    "semi_supervised_table",
]

#: Test accuracies the issue measured with scikit-learn 1.9.1 in the same setting.
REFERENCE = {
    "all labels": 0.909,
    "first labels only": 0.758,
    "representatives": 0.839,
    "propagated to whole clusters": 0.859,
    "propagated to the closest 20%": 0.877,
    "k-means pipeline": 0.912,
}


@dataclass
class ExperimentRow:
    """One line of an experiment: how the training set was made and what it gave.

    Accuracies are means over the runs (seeds); ``*_min`` and ``test_accuracy_std`` tell how
    much they move from seed to seed.
    """

    name: str
    training_images: float
    person_labels: int
    label_accuracy: float
    test_accuracy: float
    reference: float | None = None
    label_accuracy_min: float | None = None
    test_accuracy_min: float | None = None
    test_accuracy_std: float = 0.0
    runs: int = 1

    def as_dict(self) -> dict:
        return dict(vars(self))


def _mean_row(runs: list[ExperimentRow]) -> ExperimentRow:
    tests = np.array([r.test_accuracy for r in runs])
    labels = np.array([r.label_accuracy for r in runs])
    first = runs[0]
    return ExperimentRow(
        first.name,
        float(np.mean([r.training_images for r in runs])),
        first.person_labels,
        float(labels.mean()),
        float(tests.mean()),
        REFERENCE.get(first.name),
        float(labels.min()),
        float(tests.min()),
        float(tests.std()),
        len(runs),
    )


def _digits(n_train: int, n_test: int | None):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    end = len(X) if n_test is None else n_train + n_test
    return X[:n_train], y[:n_train], X[n_train:end], y[n_train:end]


def _logistic():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=10_000)


def _score(X, y, X_test, y_test) -> float:
    return float(_logistic().fit(X, y).score(X_test, y_test))


def _closest(clusters, distances, percentile) -> np.ndarray:
    keep = np.zeros(len(clusters), dtype=bool)
    for c in np.unique(clusters):
        members = clusters == c
        keep |= members & (distances <= np.percentile(distances[members], percentile))
    return keep


def semi_supervised_table(
    n_train: int = 1400,
    n_clusters: int = 50,
    *,
    percentile: float = 20,
    n_test: int | None = None,
    seeds: Sequence[int] = tuple(range(10)),
    progress: ProgressFactory = no_progress,
) -> list[ExperimentRow]:
    """Label a few, learn many, on the digits: the reference table and imgclust's defaults.

    The first rows redo the book's steps with :class:`imgclust.KMeans` on the raw pixels (one
    k-means++ run, as scikit-learn's default); the last row is what ``imgclust
    representatives`` and ``imgclust propagate`` give with their defaults, the representatives
    labelled with their true labels. Every row is averaged over the ``seeds``: one seed's
    clusters move the figures by about 0.015 (their standard deviation over ten seeds), so a
    single run cannot be compared with another implementation's single run.

    Parameters
    ----------
    n_train : int, default=1400
        The first images train, the rest test.
    n_clusters : int, default=50
        Clusters, hence labels a person gives.
    percentile : float, default=20
        The closest share of each cluster of the partial propagation.
    n_test : int, optional
        Test on this many images after the training ones (default: all the others).
    seeds : sequence of int, default=0..9
    progress : callable, optional

    Returns
    -------
    list of ExperimentRow
    """
    X, y, X_test, y_test = _digits(n_train, n_test)
    runs: list[list[ExperimentRow]] = []
    with progress("semi-supervised experiment", len(seeds)) as advance:
        for seed in seeds:
            runs.append(_one_run(X, y, (X_test, y_test), n_clusters, percentile, seed))
            advance()
    rows = [_mean_row([run[i] for run in runs]) for i in range(len(runs[0]))]
    if percentile != 20:
        rows[4].reference = None
    return rows


def _one_run(X, y, test, n_clusters, percentile, seed) -> list[ExperimentRow]:
    from imgclust.cluster.kmeans import KMeans

    first = slice(0, n_clusters)
    rows = [
        ExperimentRow("all labels", len(X), len(X), 1.0, _score(X, y, *test)),
        ExperimentRow(
            "first labels only", n_clusters, n_clusters, 1.0, _score(X[first], y[first], *test)
        ),
    ]
    kmeans = KMeans(n_clusters=n_clusters, random_state=seed)
    distances = kmeans.fit_transform(X)
    representatives = distances.argmin(axis=0)
    score = _score(X[representatives], y[representatives], *test)
    rows.append(ExperimentRow("representatives", n_clusters, n_clusters, 1.0, score))
    propagated = y[representatives][kmeans.labels_]
    whole = np.ones(len(X), dtype=bool)
    rows.append(
        _propagated_row("propagated to whole clusters", X, y, propagated, whole, test, n_clusters)
    )
    own = distances[np.arange(len(X)), kmeans.labels_]
    keep = _closest(kmeans.labels_, own, percentile)
    name = f"propagated to the closest {percentile:g}%"
    rows.append(_propagated_row(name, X, y, propagated, keep, test, n_clusters))
    rows.append(_pipeline_row(X, y, *test, n_clusters, seed))
    rows.append(_imgclust_row(len(X), len(test[0]), n_clusters, seed))
    return rows


def _propagated_row(name, X, y, propagated, keep, test, n_labels) -> ExperimentRow:
    correct = float(np.mean(propagated[keep] == y[keep]))
    accuracy = _score(X[keep], propagated[keep], *test)
    return ExperimentRow(name, int(keep.sum()), n_labels, correct, accuracy)


def _pipeline_row(X, y, X_test, y_test, n_clusters, random_state) -> ExperimentRow:
    from sklearn.pipeline import make_pipeline

    from imgclust.cluster.kmeans import KMeans

    pipeline = make_pipeline(KMeans(n_clusters=n_clusters, random_state=random_state), _logistic())
    accuracy = float(pipeline.fit(X, y).score(X_test, y_test))
    return ExperimentRow("k-means pipeline", len(X), len(X), 1.0, accuracy)


def _imgclust_row(n_train, n_test, n_clusters, random_state) -> ExperimentRow:
    from imgclust.collection.sources import open_source
    from imgclust.semi.propagate import make_classifier, propagate_labels
    from imgclust.semi.representatives import find_representatives

    reps = find_representatives(
        open_source(dataset="digits").subset(range(n_train + n_test)),
        n_clusters=n_clusters,
        holdout=n_test,
        holdout_from="end",
        random_state=random_state,
        cache=False,
    )
    result = reps.clustering
    truth = np.array(result.truth)
    seeds = {c: truth[row] for c, row in enumerate(reps.rows)}
    propagation = propagate_labels(
        result.labels,
        result.distances,
        reps.rows,
        seeds,
        features=result.extraction.features,
        embedding=result.reduction.embedding,
    )
    labelled = propagation.labelled
    labels = propagation.labels[labelled].astype(str)
    model = make_classifier("logistic").fit(result.extraction.features[labelled], labels)
    accuracy = float(model.score(reps.test_features, np.array(reps.test_truth)))
    return ExperimentRow(
        "imgclust: representatives + propagate (defaults)",
        int(labelled.sum()),
        n_clusters,
        float(np.mean(labels == truth[labelled])),
        accuracy,
    )


def preprocessing_comparison(
    n_train: int = 1400,
    n_clusters: int = 50,
    *,
    grid: Sequence[int] = (10, 30, 50, 70, 90, 110),
    cv: int = 3,
    random_state: int = 42,
    progress: ProgressFactory = no_progress,
) -> list[dict]:
    """Logistic regression on the pixels against the same after a k-means pipeline step.

    Rows: the regression alone; with :class:`imgclust.KMeans` (``n_clusters``) before it; and
    with the number of clusters chosen by :class:`~sklearn.model_selection.GridSearchCV` over
    ``grid`` (``cv``-fold, on the training images only).
    """
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    from imgclust.cluster.kmeans import KMeans

    X, y, X_test, y_test = _digits(n_train, None)
    rows = [
        {"name": "logistic regression on the pixels", "test_accuracy": _score(X, y, X_test, y_test)}
    ]
    with progress("preprocessing experiment", 2) as advance:
        row = _pipeline_row(X, y, X_test, y_test, n_clusters, random_state)
        rows.append(
            {
                "name": f"k-means({n_clusters}) distances, then the regression",
                "test_accuracy": row.test_accuracy,
                "reference": REFERENCE["k-means pipeline"],
            }
        )
        advance()
        pipeline = Pipeline(
            [("kmeans", KMeans(random_state=random_state)), ("logistic", _logistic())]
        )
        search = GridSearchCV(pipeline, {"kmeans__n_clusters": list(grid)}, cv=cv)
        search.fit(X, y)
        best = search.best_params_["kmeans__n_clusters"]
        rows.append(
            {
                "name": f"k-means(K by {cv}-fold grid search: {best}), then the regression",
                "test_accuracy": float(search.score(X_test, y_test)),
                "cv_accuracy": float(search.best_score_),
                "n_clusters": int(best),
            }
        )
        advance()
    return rows
