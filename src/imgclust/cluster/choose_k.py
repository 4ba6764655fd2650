"""Choosing the number of clusters: elbow (knee) of the inertia curve and silhouette."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imgclust.errors import InvalidParameterError

__all__ = ["KSweep", "knee_point", "parse_k_range", "sweep_scores"]


def knee_point(ks: np.ndarray, inertias: np.ndarray) -> int | None:
    """The K at the knee of a decreasing inertia curve, or None when there is none.

    The rule (Kneedle, Satopää et al. 2011, for a decreasing convex curve): scale K and the
    inertia to [0, 1], and take the K whose point lies farthest below the straight line from the
    first point to the last. A curve with no point below that line (a straight line, or fewer
    than three values of K) has no knee.

    Parameters
    ----------
    ks : (n,) ints, increasing
    inertias : (n,) floats

    Returns
    -------
    int or None

    Examples
    --------
    >>> knee_point(np.array([1, 2, 3, 4, 5]), np.array([100.0, 30.0, 20.0, 15.0, 12.0]))
    2
    """
    ks = np.asarray(ks, dtype=np.float64)
    inertias = np.asarray(inertias, dtype=np.float64)
    if ks.size < 3 or inertias[0] == inertias[-1]:
        return None
    x = (ks - ks[0]) / (ks[-1] - ks[0])
    y = (inertias - inertias[-1]) / (inertias[0] - inertias[-1])
    below_chord = (1.0 - x) - y  # chord from (0, 1) to (1, 0)
    best = int(np.argmax(below_chord))
    if below_chord[best] <= 1e-12:
        return None
    return int(ks[best])


def parse_k_range(text: str) -> list[int]:
    """Parse ``"2-16"``, ``"2,4,8"`` or ``"2-10:2"`` into a sorted list of K >= 1."""
    values: set[int] = set()
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part:
                span, _, step = part.partition(":")
                lo, hi = (int(v) for v in span.split("-", 1))
                values.update(range(lo, hi + 1, int(step) if step else 1))
            elif part:
                values.add(int(part))
    except ValueError:
        raise InvalidParameterError(
            f"K range {text!r} is not understood; write it as 2-16, 2-16:2 or 2,4,8"
        ) from None
    if not values or min(values) < 1:
        raise InvalidParameterError(f"K range {text!r} must name values of K >= 1")
    return sorted(values)


@dataclass(frozen=True)
class KSweep:
    """Scores of a sweep over K.

    Attributes
    ----------
    ks : (n,) int ndarray
    inertia : (n,) float ndarray
        Within-cluster sum of squares for each K.
    silhouette : (n,) float ndarray
        Mean silhouette on a seeded sample (NaN for K=1).
    best_k : int
        The chosen K (see ``rule``).
    rule : str
        How ``best_k`` was chosen.
    """

    ks: np.ndarray
    inertia: np.ndarray
    silhouette: np.ndarray
    best_k: int
    rule: str

    @classmethod
    def from_scores(cls, ks, inertia, silhouette) -> KSweep:
        """Pick K: the knee of the inertia curve; with no knee, the best silhouette."""
        ks = np.asarray(ks, dtype=np.int64)
        inertia = np.asarray(inertia, dtype=np.float64)
        silhouette = np.asarray(silhouette, dtype=np.float64)
        knee = knee_point(ks, inertia)
        if knee is not None:
            return cls(ks, inertia, silhouette, knee, "knee of the inertia curve (Kneedle)")
        if np.isfinite(silhouette).any():
            best = int(ks[np.nanargmax(silhouette)])
            return cls(
                ks, inertia, silhouette, best, "highest silhouette (the inertia curve has no knee)"
            )
        return cls(ks, inertia, silhouette, int(ks[0]), "smallest K (no knee and no silhouette)")

    def to_rows(self) -> list[dict]:
        """One dict per K: ``k``, ``inertia``, ``silhouette``, ``chosen``."""
        return [
            {
                "k": int(k),
                "inertia": float(i),
                "silhouette": float(s),
                "chosen": int(k) == self.best_k,
            }
            for k, i, s in zip(self.ks, self.inertia, self.silhouette, strict=True)
        ]


def sweep_scores(
    features: np.ndarray,
    weights: np.ndarray,
    ks,
    *,
    sample: np.ndarray,
    n_init: int,
    random_state: int,
    progress=None,
) -> KSweep:
    """Fit each K of ``ks`` (weighted k-means, restarts on a summary) and score it: the
    within-cluster sum of squares over all ``features`` and the mean silhouette of the rows
    ``sample`` (one distance matrix, shared by every K); K is chosen by
    :meth:`KSweep.from_scores`.

    ``progress`` is called with each K once it is done.
    """
    from imgclust.cluster.methods import mean_silhouette
    from imgclust.cluster.summary import fit_with_summary

    distances = _distances(features[sample])
    inertias, silhouettes = [], []
    for k in ks:
        km = fit_with_summary(features, weights, k, n_init=n_init, random_state=random_state)
        inertias.append(km.inertia)
        silhouettes.append(mean_silhouette(distances, km.labels[sample]))
        if progress is not None:
            progress(k)
    return KSweep.from_scores(ks, inertias, silhouettes)


def _distances(points: np.ndarray) -> np.ndarray:
    """Euclidean distances between all ``points`` (float32: enough to rank silhouettes)."""
    points = np.asarray(points, dtype=np.float64)
    squared = (points * points).sum(axis=1)
    products = points @ points.T
    return np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * products, 0.0)).astype(
        np.float32
    )
