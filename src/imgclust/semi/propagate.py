"""Learn many: spread the labels of the representatives, then train on the result.

:func:`propagate_labels` works on arrays and is what ``imgclust propagate`` calls:

1. ``rule="cluster"`` gives each labelled cluster's label to its members whose distance to the
   centre is within the cluster's ``percentile`` (100: the whole cluster; 20: the seed's
   refinement, the closest fifth). ``rule="spread"`` runs scikit-learn's
   :class:`~sklearn.semi_supervised.LabelSpreading` over the 10-nearest-neighbour graph of the
   clustering space, from the representatives alone.
2. Editing (Wilson's edited nearest neighbours): a propagated label is dropped when another
   label is more common than its own among the image's ``edit`` nearest labelled neighbours,
   in the feature space (a tie keeps it).
   Clusters are found in a map of the images; this second look, in the space the classifier
   is trained in, catches most images that the map put in the wrong place. A person's own
   labels are never dropped.

:func:`make_classifier` gives the classifiers of :data:`CLASSIFIERS` that ``--train`` fits on
the propagated set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imgclust.errors import InvalidParameterError

__all__ = [
    "CLASSIFIERS",
    "PROPAGATION_RULES",
    "Propagation",
    "make_classifier",
    "propagate_labels",
]

#: How labels travel from the representatives.
PROPAGATION_RULES = ("cluster", "spread")
#: Neighbours consulted by the editing step (0 turns it off).
DEFAULT_EDIT = 30
_SPREAD_NEIGHBOURS = 10


@dataclass
class Propagation:
    """Labels spread from the representatives.

    Attributes
    ----------
    labels : (n,) object ndarray
        The label of each image, None where it got none (an unlabelled cluster, beyond the
        percentile, or dropped by the editing).
    original : (n,) bool ndarray
        The images a person labelled.
    edited : (n,) bool ndarray
        Images whose propagated label the editing step dropped.
    """

    labels: np.ndarray
    original: np.ndarray
    edited: np.ndarray

    @property
    def labelled(self) -> np.ndarray:
        """Mask of the images that carry a label."""
        return np.array([v is not None for v in self.labels], dtype=bool)


def check_options(percentile: float, edit: int, rule: str) -> None:
    if not 1 <= percentile <= 100:
        raise InvalidParameterError(
            f"percentile={percentile} is outside 1-100; give the share of each cluster, "
            "nearest its centre first, that takes the cluster's label"
        )
    if edit < 0:
        raise InvalidParameterError(f"edit={edit} must be 0 (off) or a number of neighbours")
    if rule not in PROPAGATION_RULES:
        raise InvalidParameterError(
            f"unknown rule {rule!r}; the rules are: {', '.join(PROPAGATION_RULES)}"
        )
    if rule == "spread" and percentile != 100:
        raise InvalidParameterError("a percentile applies to rule 'cluster' only")


def _by_cluster(clusters, distances, seeds, percentile) -> np.ndarray:
    labels = np.full(len(clusters), None, dtype=object)
    for cluster, label in seeds.items():
        members = np.flatnonzero(clusters == cluster)
        if len(members) == 0:
            continue
        cutoff = np.percentile(distances[members], percentile)
        labels[members[distances[members] <= cutoff]] = label
    return labels


def _by_spreading(embedding, representatives, seeds) -> np.ndarray:
    from sklearn.semi_supervised import LabelSpreading

    names = sorted(set(seeds.values()))
    code = {name: i for i, name in enumerate(names)}
    targets = np.full(len(embedding), -1)
    for cluster, label in seeds.items():
        targets[representatives[cluster]] = code[label]
    k = min(_SPREAD_NEIGHBOURS, len(embedding) - 1)
    model = LabelSpreading(kernel="knn", n_neighbors=k, max_iter=1000)
    model.fit(np.asarray(embedding, dtype=np.float64), targets)
    return np.array([names[i] for i in model.transduction_], dtype=object)


def _edit(features, labels, original, k) -> np.ndarray:
    """Mask of propagated labels outvoted by another label among their ``k`` nearest labelled
    neighbours."""
    from sklearn.neighbors import NearestNeighbors

    labelled = np.flatnonzero([v is not None for v in labels])
    if k == 0 or len(labelled) <= k:
        return np.zeros(len(labels), dtype=bool)
    names, codes = np.unique(labels[labelled].astype(str), return_inverse=True)
    model = NearestNeighbors(n_neighbors=k + 1).fit(features[labelled])
    neighbours = model.kneighbors(features[labelled], return_distance=False)[:, 1:]
    votes = np.zeros((len(labelled), len(names)), dtype=np.int64)
    np.add.at(votes, (np.repeat(np.arange(len(labelled)), k), codes[neighbours].ravel()), 1)
    own = votes[np.arange(len(labelled)), codes]
    contradicted = own < votes.max(axis=1)
    edited = np.zeros(len(labels), dtype=bool)
    edited[labelled[contradicted]] = True
    return edited & ~original


def propagate_labels(
    clusters: np.ndarray,
    distances: np.ndarray,
    representatives: np.ndarray,
    seeds: dict[int, str],
    *,
    features: np.ndarray | None = None,
    embedding: np.ndarray | None = None,
    percentile: float = 100,
    edit: int = DEFAULT_EDIT,
    rule: str = "cluster",
) -> Propagation:
    """Spread the labels of the representatives to the other images.

    Parameters
    ----------
    clusters : (n,) int ndarray
        Cluster of each image.
    distances : (n,) ndarray
        Distance of each image to its cluster's centre.
    representatives : (K,) int ndarray
        Row of each cluster's representative.
    seeds : dict
        Cluster -> the label a person gave its representative; clusters left out stay
        unlabelled (under rule "cluster").
    features : (n, d) ndarray, optional
        The space of the editing step (needed when ``edit`` > 0).
    embedding : (n, m) ndarray, optional
        The clustering space (needed by rule "spread").
    percentile : float, default=100
        Rule "cluster": the share of each cluster, nearest its centre first, that takes the
        label (1-100).
    edit : int, default=30
        Neighbours of the editing step; 0 keeps every propagated label.
    rule : {"cluster", "spread"}, default="cluster"

    Returns
    -------
    Propagation

    Examples
    --------
    >>> import numpy as np
    >>> clusters = np.array([0, 0, 0, 1, 1])
    >>> distances = np.array([0.1, 0.5, 0.9, 0.2, 0.4])
    >>> p = propagate_labels(clusters, distances, np.array([0, 3]), {0: "a", 1: "b"}, edit=0)
    >>> p.labels.tolist()
    ['a', 'a', 'a', 'b', 'b']
    """
    check_options(percentile, edit, rule)
    clusters = np.asarray(clusters)
    representatives = np.asarray(representatives, dtype=np.int64)
    if len({str(v) for v in seeds.values()}) < 2:
        raise InvalidParameterError(
            "only one class is labelled; label representatives of at least two classes"
        )
    if rule == "cluster":
        labels = _by_cluster(clusters, np.asarray(distances, dtype=np.float64), seeds, percentile)
    else:
        if embedding is None:
            raise InvalidParameterError("rule 'spread' needs the clustering space (embedding)")
        labels = _by_spreading(embedding, representatives, seeds)
    original = np.zeros(len(clusters), dtype=bool)
    for cluster, label in seeds.items():
        original[representatives[cluster]] = True
        labels[representatives[cluster]] = label
    edited = np.zeros(len(clusters), dtype=bool)
    if edit:
        if features is None:
            raise InvalidParameterError("editing needs the features (or edit=0)")
        edited = _edit(np.asarray(features, dtype=np.float32), labels, original, edit)
        labels[edited] = None
    return Propagation(labels, original, edited)


#: Classifiers ``propagate --train`` offers, with the settings used.
CLASSIFIERS = {
    "logistic": "LogisticRegression(max_iter=10000)",
    "knn": "KNeighborsClassifier(n_neighbors=5)",
    "svm": "SVC(kernel='rbf')",
    "forest": "RandomForestClassifier(n_estimators=200)",
}


def make_classifier(name: str, random_state: int = 0):
    """A fresh scikit-learn classifier of :data:`CLASSIFIERS`."""
    if name == "logistic":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(max_iter=10_000)
    if name == "knn":
        from sklearn.neighbors import KNeighborsClassifier

        return KNeighborsClassifier(n_neighbors=5)
    if name == "svm":
        from sklearn.svm import SVC

        return SVC(kernel="rbf", random_state=random_state)
    if name == "forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=200, random_state=random_state, n_jobs=1)
    raise InvalidParameterError(
        f"unknown classifier {name!r}; the classifiers are: {', '.join(CLASSIFIERS)}"
    )
