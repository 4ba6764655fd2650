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

__all__ = ["GroupModel", "save_model"]

FORMAT = "imgclust-group-model"
VERSION = 1
_CENTROID_METHODS = ("kmeans", "minibatch", "kmedoids")
_NEIGHBOURS = 10


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
    np.savez_compressed(folder / "model.npz", **arrays)
    (folder / "model.json").write_text(json.dumps(description, indent=2))


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
    folder: Path = field(default_factory=Path)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> GroupModel:
        folder = Path(folder)
        if folder.is_file():
            folder = folder.parent
        try:
            description = json.loads((folder / "model.json").read_text())
            arrays = dict(np.load(folder / "model.npz", allow_pickle=False))
        except (OSError, ValueError) as exc:
            raise InvalidParameterError(
                f"{folder}: not a model saved by 'imgclust group --save-model' ({exc})"
            ) from None
        if description.get("format") != FORMAT or description.get("version") != VERSION:
            raise InvalidParameterError(
                f"{folder}: model.json is not an {FORMAT} of version {VERSION}"
            )
        return cls(description, folder=folder, **arrays)

    def extractor(self, embed_model: str | os.PathLike | None = None) -> FeatureExtractor:
        """The feature extractor the model was trained with."""
        features = self.description["features"]
        settings = dict(features["settings"])
        if features["name"] != "embed":
            return FEATURES[features["name"]](**settings)
        path = embed_model or features.get("model_path")
        extractor = OnnxEmbedding(
            path,
            input_size=settings["input_size"],
            mean=settings["mean"],
            std=settings["std"],
            layout=settings["layout"],
        )
        if extractor.settings()["model_hash"] != settings["model_hash"]:
            raise InvalidParameterError(
                f"{path} is not the ONNX model this grouping was made with (its content differs)"
            )
        return extractor

    def assign(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cluster of each feature vector and its distance (to the centre, or to the nearest
        training image of that cluster)."""
        X = project(features, self.scale_mean, self.scale_std, self.pca_mean, self.pca_components)
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
