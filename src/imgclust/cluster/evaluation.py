"""Scores of clusters against known labels, all computed from one contingency table.

- majority mapping: each cluster takes the label most of its members have (several clusters
  may map to one label), as the usual cluster-to-label evaluation does; its accuracy is also
  called purity;
- one-to-one mapping: the Hungarian assignment (:func:`scipy.optimize.linear_sum_assignment`)
  of clusters to labels that maximises the members matched; unmatched clusters count as errors;
- adjusted Rand index and normalised mutual information (arithmetic mean of the entropies,
  scikit-learn's default);
- precision and recall of each label after the majority mapping.

The rasters' ``evaluate`` and the collections' ``group`` both use it.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "adjusted_rand_from_table",
    "contingency_scores",
    "contingency_table",
    "diagonal_order",
    "nmi_from_table",
]


def _comb2(x: np.ndarray) -> float:
    return float(np.sum(x * (x - 1) / 2.0))


def adjusted_rand_from_table(table: np.ndarray) -> float:
    """Adjusted Rand index of a contingency table (Hubert and Arabie, 1985)."""
    table = table.astype(np.float64)
    n = table.sum()
    index = _comb2(table)
    rows, cols = _comb2(table.sum(axis=1)), _comb2(table.sum(axis=0))
    expected = rows * cols / (n * (n - 1) / 2.0) if n > 1 else 0.0
    maximum = (rows + cols) / 2.0
    if maximum == expected:
        return 1.0
    return float((index - expected) / (maximum - expected))


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-np.sum(p * np.log(p)))


def nmi_from_table(table: np.ndarray) -> float:
    """Normalised mutual information (arithmetic normalisation) of a contingency table."""
    from sklearn.metrics import mutual_info_score

    h_rows, h_cols = _entropy(table.sum(axis=1)), _entropy(table.sum(axis=0))
    if h_rows == 0 and h_cols == 0:
        return 1.0
    mi = mutual_info_score(None, None, contingency=table)
    return float(mi / ((h_rows + h_cols) / 2.0)) if h_rows + h_cols > 0 else 0.0


def diagonal_order(table: np.ndarray) -> np.ndarray:
    """An order of the columns (clusters) of a (n_labels, n_clusters) table that puts each
    label's one-to-one match (Hungarian) under it, row by row, so that matches lie on the
    diagonal; clusters matched to no label follow, largest first."""
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(table, maximize=True)
    matched = [int(c) for _, c in sorted(zip(rows, cols, strict=True))]
    rest = [c for c in np.argsort(-table.sum(axis=0), kind="stable") if c not in matched]
    return np.array(matched + [int(c) for c in rest], dtype=np.int64)


def contingency_scores(table: np.ndarray, ref_labels: list, class_labels: list) -> dict:
    """Every score of a (n_labels, n_clusters) contingency table, as a JSON-ready dict.

    Keys: ``majority_mapping``, ``accuracy_majority``, ``one_to_one_mapping``,
    ``accuracy_one_to_one``, ``purity`` (equal to ``accuracy_majority``),
    ``adjusted_rand_index``, ``normalized_mutual_info`` and ``per_label`` (precision and
    recall of each label after the majority mapping).
    """
    from scipy.optimize import linear_sum_assignment

    total = int(table.sum())
    majority = table.argmax(axis=0)
    rows, cols = linear_sum_assignment(table, maximize=True)
    one_to_one = {class_labels[c]: ref_labels[r] for r, c in zip(rows, cols, strict=True)}
    precision, recall = _per_label(table, majority, ref_labels)
    return {
        "majority_mapping": {
            str(class_labels[c]): ref_labels[majority[c]] for c in range(len(class_labels))
        },
        "accuracy_majority": float(table.max(axis=0).sum() / total),
        "one_to_one_mapping": {str(k): v for k, v in one_to_one.items()},
        "accuracy_one_to_one": float(table[rows, cols].sum() / total),
        "purity": float(table.max(axis=0).sum() / total),
        "adjusted_rand_index": adjusted_rand_from_table(table),
        "normalized_mutual_info": nmi_from_table(table),
        "per_label": {
            str(label): {"precision": precision[i], "recall": recall[i]}
            for i, label in enumerate(ref_labels)
        },
    }


def _per_label(table: np.ndarray, majority: np.ndarray, ref_labels: list) -> tuple:
    """Precision and recall of each reference label after the majority mapping."""
    precision, recall = [], []
    for i in range(len(ref_labels)):
        predicted = table[:, majority == i].sum()
        correct = table[i, majority == i].sum()
        precision.append(float(correct / predicted) if predicted else math.nan)
        recall.append(float(correct / table[i].sum()) if table[i].sum() else math.nan)
    return precision, recall


def contingency_table(truth, clusters) -> tuple[list, list, np.ndarray]:
    """Labels, clusters and the (n_labels, n_clusters) table of counts of two label lists."""
    truth_values, truth_codes = np.unique(np.asarray(truth), return_inverse=True)
    cluster_values, cluster_codes = np.unique(np.asarray(clusters), return_inverse=True)
    table = np.zeros((len(truth_values), len(cluster_values)), dtype=np.int64)
    np.add.at(table, (truth_codes.ravel(), cluster_codes.ravel()), 1)
    return truth_values.tolist(), cluster_values.tolist(), table
