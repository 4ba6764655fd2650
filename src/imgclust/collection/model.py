"""A portable model of a grouping (``model.json`` and ``model.npz``, no pickle) and ``assign``.

New images get the same features and the same PCA as the training images, then:

- after k-means, mini-batch k-means or k-medoids on features or a PCA: the nearest centre;
- otherwise (a t-SNE or UMAP map has no transform; agglomerative, DBSCAN and HDBSCAN have no
  centres that define their clusters): the majority cluster of the 10 nearest training images
  in the space before the map (noise images are not used).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imgclust.cluster.engine import nearest
from imgclust.collection.features import FEATURES, FeatureExtractor, OnnxEmbedding
from imgclust.collection.group import ImageClustering
from imgclust.collection.reduce import project
from imgclust.errors import InvalidParameterError
from imgclust.io.outputs import json_text
from imgclust.report.collection_plots import map_2d

__all__ = ["GroupModel", "save_model"]

FORMAT = "imgclust-group-model"
VERSION = 1
_CENTROID_METHODS = ("kmeans", "minibatch", "kmedoids")
_NEIGHBOURS = 10
#: Training images kept to place new images on the run's map (``assign``'s report), and the
#: neighbours a new image's place is the mean of.
MAP_SAMPLE = 5000
_MAP_NEIGHBOURS = 5


def save_model(result: ImageClustering, folder: str | os.PathLike) -> None:
    """Write ``model.json`` and ``model.npz`` into ``folder``."""
    from imgclust import __version__

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    reduction = result.reduction
    by_centre = result.method in _CENTROID_METHODS and reduction.method in ("none", "pca")
    feature_settings = result.extractor.settings()
    description = {
        "format": FORMAT,
        "version": VERSION,
        "imgclust_version": __version__,
        "features": {"name": result.extractor.name, "settings": feature_settings},
        "reduce": reduction.method,
        "method": result.method,
        "n_clusters": result.n_clusters,
        "assign": "nearest centre" if by_centre else f"{_NEIGHBOURS} nearest training images",
    }
    if reduction.normalized:  # rows brought to unit length after the PCA
        description["normalize_rows"] = True
    if isinstance(result.extractor, OnnxEmbedding):
        description["features"]["model_path"] = str(result.extractor.model.resolve())
    arrays = {"centers": result.centers.astype(np.float32)}
    for name in ("scale_mean", "scale_std", "pca_mean", "pca_components"):
        if getattr(reduction, name) is not None:
            arrays[name] = getattr(reduction, name)
    if not by_centre:
        clustered = result.labels >= 0
        arrays["reference"] = reduction.pre[clustered].astype(np.float32)
        arrays["reference_labels"] = result.labels[clustered].astype(np.int32)
    sample = np.random.default_rng(result.parameters.get("random_state", 0)).permutation(
        len(reduction.pre)
    )[:MAP_SAMPLE]
    sample.sort()
    arrays["map_reference"] = reduction.pre[sample].astype(np.float32)
    arrays["map_positions"] = map_2d(reduction.embedding)[sample].astype(np.float32)
    if result.names:
        description["names"] = {str(c): name for c, name in sorted(result.names.items())}
    np.savez_compressed(folder / "model.npz", **arrays)
    (folder / "model.json").write_text(json_text(description))


_ARRAYS = (
    "centers", "scale_mean", "scale_std", "pca_mean", "pca_components", "reference",
    "reference_labels", "map_reference", "map_positions",
)  # fmt: skip


def _checked_arrays(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays of ``model.npz``, refused (ValueError) unless their names, kinds and shapes
    fit together."""
    unknown = sorted(set(arrays) - set(_ARRAYS))
    if unknown or "centers" not in arrays:
        raise ValueError(f"model.npz holds {sorted(arrays)}, not the arrays of a model")
    for name, array in arrays.items():
        if name == "reference_labels":
            if array.dtype.kind not in "iu" or array.ndim != 1:
                raise ValueError("reference_labels must be whole numbers")
        elif array.dtype.kind != "f" or not np.isfinite(array).all():
            raise ValueError(f"{name} must hold finite numbers")
    width = arrays["centers"].shape[-1] if arrays["centers"].ndim == 2 else -1
    if "pca_components" in arrays:
        components = arrays["pca_components"]
        if components.ndim != 2 or arrays.get("pca_mean", np.empty(0)).shape != (
            components.shape[1],
        ):
            raise ValueError("the PCA arrays do not fit together")
    if "reference" in arrays:
        reference, labels = arrays["reference"], arrays.get("reference_labels")
        if reference.ndim != 2 or labels is None or len(labels) != len(reference):
            raise ValueError("the reference images and their labels do not fit together")
        width = reference.shape[1]
    if width < 1:
        raise ValueError("the centres must be a table of numbers")
    inputs = width
    if "pca_components" in arrays:
        if arrays["pca_components"].shape[0] != width:
            raise ValueError("the PCA does not give the dimensions the clusters are in")
        inputs = arrays["pca_components"].shape[1]
    if ("scale_mean" in arrays) != ("scale_std" in arrays):
        raise ValueError("the feature scaling is incomplete")
    if "scale_mean" in arrays and not (
        arrays["scale_mean"].shape == arrays["scale_std"].shape == (inputs,)
    ):
        raise ValueError("the feature scaling does not fit the features")
    if "reference_labels" in arrays and (arrays["reference_labels"] < 0).any():
        raise ValueError("reference_labels must not be negative")
    if ("map_reference" in arrays) != ("map_positions" in arrays):
        raise ValueError("the map sample is incomplete")
    if "map_reference" in arrays:
        sample, positions = arrays["map_reference"], arrays["map_positions"]
        if sample.ndim != 2 or sample.shape[1] != width or positions.shape != (len(sample), 2):
            raise ValueError("the map sample does not fit the clusters' space")
    return arrays


@dataclass
class GroupModel:
    """A saved grouping, loaded with :meth:`load`; :meth:`assign` places new feature vectors."""

    description: dict
    centers: np.ndarray
    scale_mean: np.ndarray | None = None
    scale_std: np.ndarray | None = None
    pca_mean: np.ndarray | None = None
    pca_components: np.ndarray | None = None
    reference: np.ndarray | None = None
    reference_labels: np.ndarray | None = None
    map_reference: np.ndarray | None = None
    map_positions: np.ndarray | None = None
    folder: Path = field(default_factory=Path)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> GroupModel:
        """Read a model saved by :func:`save_model`, with a one-line error (naming the file and
        what is wrong) when a file is missing, damaged or of another kind."""
        folder = Path(folder)
        if folder.is_file():
            folder = folder.parent
        not_a_model = f"{folder}: not a model saved by 'imgclust group --save-model'"
        try:
            description = json.loads((folder / "model.json").read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise InvalidParameterError(f"{not_a_model} (model.json: {exc})") from None
        if not isinstance(description, dict) or description.get("format") != FORMAT:
            raise InvalidParameterError(f"{not_a_model} (model.json is not an {FORMAT})")
        if description.get("version") != VERSION:
            raise InvalidParameterError(
                f"{folder}: model.json is an {FORMAT} of version {description.get('version')}; "
                f"this imgclust reads version {VERSION}"
            )
        try:
            with np.load(folder / "model.npz", allow_pickle=False) as saved:
                arrays = {name: saved[name] for name in saved.files}
        except Exception as exc:  # a damaged zip raises anything from zipfile, zlib, numpy
            raise InvalidParameterError(
                f"{folder}: model.npz cannot be read ({type(exc).__name__}: {exc}); save the "
                "model again with 'imgclust group --save-model'"
            ) from None
        try:
            model = cls(description, folder=folder, **_checked_arrays(arrays))
            model._check_description()
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            what = f"no {exc}" if isinstance(exc, KeyError) else str(exc)
            raise InvalidParameterError(
                f"{folder}: the model is damaged ({what}); save it again with "
                "'imgclust group --save-model'"
            ) from None
        return model

    def _check_description(self) -> None:
        """Every field :meth:`extractor` and :meth:`assign` read, of the right kind."""
        from imgclust.cluster.methods import METHODS
        from imgclust.collection.reduce import REDUCTIONS

        d = self.description
        features = d["features"]
        if features["name"] not in (*FEATURES, "embed"):
            raise ValueError(f"unknown features {features['name']!r}")
        if not isinstance(features["settings"], dict):
            raise TypeError("the feature settings are not a mapping")
        if d["reduce"] not in REDUCTIONS or d["method"] not in METHODS:
            raise ValueError(f"unknown reduction {d['reduce']!r} or method {d['method']!r}")
        if not isinstance(d["assign"], str) or not isinstance(d["n_clusters"], int):
            raise TypeError("'assign' must be text and 'n_clusters' a whole number")
        if self.reference is None and len(self.centers) != d["n_clusters"]:
            raise ValueError(f"{len(self.centers)} centres for {d['n_clusters']} clusters")
        names = d.get("names", {})
        if not isinstance(names, dict) or not all(
            isinstance(v, str) and v.isprintable() and k.isdigit() for k, v in names.items()
        ):
            raise ValueError("the cluster names are not a mapping of numbers to text")

    @property
    def names(self) -> dict[int, str]:
        """Names a person gave the clusters (``imgclust review``), by cluster."""
        return {int(k): v for k, v in self.description.get("names", {}).items()}

    def extractor(self, embed_model: str | os.PathLike | None = None) -> FeatureExtractor:
        """The feature extractor the model was trained with."""
        features = self.description["features"]
        settings = dict(features["settings"])
        if features["name"] != "embed":
            try:
                return FEATURES[features["name"]](**settings)
            except (TypeError, ValueError) as exc:
                raise InvalidParameterError(
                    f"{self.folder}: the feature settings in model.json are damaged ({exc})"
                ) from None
        path = embed_model or features.get("model_path")
        return OnnxEmbedding.from_settings(path, settings)

    def _n_input_features(self) -> int:
        if self.scale_mean is not None:
            return len(self.scale_mean)
        if self.pca_components is not None:
            return self.pca_components.shape[1]
        return (self.reference if self.reference is not None else self.centers).shape[1]

    def project(self, features: np.ndarray) -> np.ndarray:
        """Feature vectors in the space the model was fitted in (scaling, PCA, unit rows)."""
        expected = self._n_input_features()
        if features.shape[1] != expected:
            raise InvalidParameterError(
                f"{self.folder}: the model takes {expected} features per image and the images "
                f"gave {features.shape[1]}; the model is damaged or was made with other settings"
            )
        return project(
            features,
            self.scale_mean,
            self.scale_std,
            self.pca_mean,
            self.pca_components,
            normalize=bool(self.description.get("normalize_rows")),
        )

    def place(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`assign`, and where the images fall on the training run's 2-D map, from one
        projection of ``features``."""
        X = self.project(features)
        return (*self._assign_rows(X), self._map_places(X))

    def assign(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cluster of each feature vector and its distance (to the centre, or to the nearest
        training image of that cluster)."""
        return self._assign_rows(self.project(features))

    def _assign_rows(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.reference is None:
            labels, squared = nearest(np.ascontiguousarray(X, dtype=np.float32), self.centers)
            return labels, np.sqrt(squared)
        from sklearn.neighbors import NearestNeighbors

        k = min(_NEIGHBOURS, len(self.reference))
        distances, neighbours = NearestNeighbors(n_neighbors=k).fit(self.reference).kneighbors(X)
        votes = self.reference_labels[neighbours]
        labels = np.array([np.bincount(v, minlength=len(self.centers)).argmax() for v in votes])
        own_cluster = np.where(votes == labels[:, None], distances, np.inf).min(axis=1)
        return labels, own_cluster

    def _map_places(self, X: np.ndarray) -> np.ndarray:
        """The mean place on the training map of each row's nearest training images (a model
        saved without its map sample: the first two principal axes of the rows themselves)."""
        from sklearn.neighbors import NearestNeighbors

        if self.map_reference is None or not len(X):
            return map_2d(np.asarray(X, dtype=np.float64))
        k = min(_MAP_NEIGHBOURS, len(self.map_reference))
        _, neighbours = NearestNeighbors(n_neighbors=k).fit(self.map_reference).kneighbors(X)
        return self.map_positions[neighbours].mean(axis=1)
