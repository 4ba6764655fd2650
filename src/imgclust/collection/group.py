"""Grouping a collection of images by similarity: :func:`cluster_images`.

The flow is read -> features -> reduce -> cluster -> score: the images of a folder, a ``.npy``
array or a bundled dataset become feature vectors (:mod:`imgclust.collection.features`, cached
on disk by content), are reduced (:mod:`imgclust.collection.reduce`), clustered by a method of
the registry (:mod:`imgclust.cluster.methods`, with K chosen by a sweep when asked), and, when
labels are known, scored against them (:mod:`imgclust.cluster.evaluation`).
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from imgclust._progress import ProgressFactory, no_progress
from imgclust.cluster.methods import (
    KSweepScores,
    fit_method,
    get_method,
    sweep_k,
    sweep_sample,
)
from imgclust.collection.extract import Extraction, extract_features, open_cache
from imgclust.collection.features import FeatureExtractor, make_extractor
from imgclust.collection.model_zoo import ModelUnavailableError, default_model
from imgclust.collection.reduce import Reduction, map_rows, reduce_features
from imgclust.collection.sources import ImageSource, _array_source, open_source
from imgclust.distributed import dask_client, describe_cluster
from imgclust.errors import InvalidParameterError
from imgclust.io.images import DEFAULT_MAX_PIXELS, pillow_limit_lifted

__all__ = [
    "DEFAULT_K_VALUES",
    "ImageClustering",
    "cluster_images",
    "evaluate_against",
    "read_labels",
]

#: K values tried by ``n_clusters="auto"``.
DEFAULT_K_VALUES = tuple(range(2, 21))


@dataclass
class ImageClustering:
    """What :func:`cluster_images` found.

    Rows are the images that could be read, in the source's order (``ids``).

    Attributes
    ----------
    source : ImageSource
    extractor : FeatureExtractor
    extraction : Extraction
        Features, the source index of each row, the skipped files and the cache hits.
    reduction : Reduction
        The space the clusters were found in (``reduction.embedding``).
    method : str
    labels : (n,) int ndarray
        Cluster of each row, 0 the largest; -1 is noise (DBSCAN, HDBSCAN).
    centers : (K, dims) ndarray
        Mean of each cluster's members in the clustering space (k-medoids: the medoids).
    medoids : (K,) int ndarray
        Row of the member nearest each centre (k-medoids: the medoid).
    distances : (n,) ndarray
        Distance of each row to its cluster's centre (NaN for noise).
    ranks : (n,) int ndarray
        1 for the member nearest its centre, 2 for the next, ... (noise: in reading order).
    sweep : KSweepScores or None
        The sweep over K when ``n_clusters="auto"``.
    truth : list of str or None
        Known label of each row (None where unknown).
    evaluation : dict or None
        Scores against ``truth`` (see :func:`imgclust.cluster.evaluation.contingency_scores`).
    parameters : dict
    timings : dict
        Seconds spent reading, reducing and clustering.
    warnings : list of str
        What looks wrong about the result (e.g. a density method's one giant cluster).
    linkage : (n - 1, 4) ndarray or None
        Agglomerative: the merge tree the clusters were cut from, in scipy's linkage form.
    names : dict of int to str
        Names a person gave clusters (``imgclust review``).
    """

    source: ImageSource
    extractor: FeatureExtractor
    extraction: Extraction
    reduction: Reduction
    method: str
    labels: np.ndarray
    centers: np.ndarray
    medoids: np.ndarray
    distances: np.ndarray
    ranks: np.ndarray
    sweep: KSweepScores | None = None
    truth: list[str | None] | None = None
    evaluation: dict | None = None
    parameters: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    linkage: np.ndarray | None = None
    names: dict[int, str] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        """The id (relative path or row index) of each row."""
        return [self.source.ids[i] for i in self.extraction.kept]

    @property
    def n_clusters(self) -> int:
        return len(self.centers)

    def cluster_sizes(self) -> list[int]:
        return [int(np.sum(self.labels == c)) for c in range(self.n_clusters)]

    def summary(self) -> dict[str, Any]:
        """The content of ``clusters.json``."""
        ids = self.ids
        clusters = [
            {"cluster": c, "size": size, "representative": ids[int(self.medoids[c])]}
            | ({"name": self.names[c]} if self.names.get(c) else {})
            for c, size in enumerate(self.cluster_sizes())
        ]
        data: dict[str, Any] = {
            "source": self.source.name,
            "images": len(self.source),
            "read": len(self.labels),
            "skipped": len(self.extraction.skipped),
            "cache_hits": self.extraction.cache_hits,
            "n_clusters": self.n_clusters,
            "noise": int(np.sum(self.labels < 0)),
            "clusters": clusters,
            "parameters": self.parameters,
            "scores": _final_scores(self.reduction.embedding, self.labels),
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
        }
        if self.warnings:
            data["warnings"] = list(self.warnings)
        if self.sweep is not None:
            data["choose_k"] = {
                "best_k": self.sweep.best_k,
                "rule": self.sweep.rule,
                "elbow_k": self.sweep.elbow_k,
            }
        if self.evaluation is not None:
            data["evaluation"] = {
                k: self.evaluation[k]
                for k in (
                    "accuracy_majority",
                    "accuracy_one_to_one",
                    "adjusted_rand_index",
                    "normalized_mutual_info",
                    "purity",
                    "labelled_images",
                )
            }
        return data


def _final_scores(X: np.ndarray, labels: np.ndarray) -> dict:
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

    clustered = labels >= 0
    X, labels = X[clustered], labels[clustered]
    if len(np.unique(labels)) < 2 or len(np.unique(labels)) >= len(labels):
        return {}
    size = min(len(X), 5000)
    return {
        "silhouette": float(silhouette_score(X, labels, sample_size=size, random_state=0)),
        "davies_bouldin": float(davies_bouldin_score(X, labels)),
        "calinski_harabasz": float(calinski_harabasz_score(X, labels)),
    }


def read_labels(
    spec: str | os.PathLike | Sequence | None, source: ImageSource
) -> list[str | None] | None:
    """Known labels of the source's images: ``"folders"``, a CSV file, a list, or None.

    ``"folders"`` takes each file's parent folder name (files directly in the folder have
    none). A CSV file has a ``path`` and a ``label`` column (a header row is optional); paths
    are relative to the folder (or absolute), and a path that is not among the images is an
    error. ``None`` gives the dataset's own labels, if it has any.
    """
    if spec is None:
        return list(source.known_labels) if source.known_labels is not None else None
    if isinstance(spec, str) and spec == "folders":
        if source.paths is None:
            raise InvalidParameterError("--labels folders needs a folder of images")
        return [Path(i).parent.name if "/" in i else None for i in source.ids]
    if isinstance(spec, (str, os.PathLike)):
        return _labels_from_csv(Path(spec), source)
    values = [None if v is None else str(v) for v in spec]
    if len(values) != len(source):
        raise InvalidParameterError(
            f"{len(values)} labels were given for {len(source)} images; give one per image"
        )
    return values


def _labels_from_csv(path: Path, source: ImageSource) -> list[str | None]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle) if row]
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidParameterError(f"{path}: the labels file cannot be read ({exc})") from None
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]
    if any(len(row) < 2 for row in rows):
        raise InvalidParameterError(f"{path}: every row needs two columns, path and label")
    index = {i: n for n, i in enumerate(source.ids)}
    if source.root is not None:
        root = source.root.resolve()
        for n, p in enumerate(source.paths or []):
            index.setdefault(str(p.resolve()), n)
            index.setdefault(p.resolve().relative_to(root).as_posix(), n)
    labels: list[str | None] = [None] * len(source)
    unknown = []
    for name, label, *_ in rows:
        key = name if name in index else str(Path(name).resolve())
        if key not in index:
            unknown.append(name)
            continue
        labels[index[key]] = label
    if unknown:
        shown = ", ".join(unknown[:3]) + (" ..." if len(unknown) > 3 else "")
        raise InvalidParameterError(
            f"{path}: {len(unknown)} path(s) are not among the images ({shown}); paths are "
            "relative to the folder"
        )
    return labels


def _resolve_source(images, dataset, exclude, max_pixels) -> ImageSource:
    if isinstance(images, ImageSource):
        return images
    if isinstance(images, np.ndarray):
        if images.ndim not in (3, 4):
            raise InvalidParameterError(
                f"an array of images has shape (n, H, W) or (n, H, W, C), not {images.shape}"
            )
        return _array_source("array", images, None)
    return open_source(images, dataset=dataset, exclude=exclude, max_pixels=max_pixels)


#: Images at most this many pixels a side, in grey, are grouped on the shapes of their strokes.
_SMALL_SIDE = 64
_AUTO_SAMPLE = 20
#: The side small grey images are brought to for their HOG (cells of 4 pixels): their own side
#: within these bounds. Measured: the 8x8 digits at 16 (0.952 accuracy with t-SNE) against
#: 28 (0.881); MNIST's 28x28 digits at 28.
_HOG_SIDES = (16, 32)
_HOG_CELL = 4
_HOG_ORIENTATIONS = 12


def auto_features(source: ImageSource, random_state: int = 0) -> tuple[str, str]:
    """The features ``features="auto"`` takes for ``source``, and why.

    Small grey images (characters, digits, icons: at most 64 pixels a side) are grouped on the
    histograms of oriented gradients of their strokes (:func:`small_grey_hog`); anything else
    (photos, scenes, scans in colour) by what they show, on the embeddings of the default
    image model (``"embed:NAME"`` or ``"embed:PATH"``:
    :func:`~imgclust.collection.model_zoo.default_model`). A folder is judged on a seeded
    sample of 20 of its images. Nothing is downloaded here.
    """
    return _auto_choice(source, random_state)[:2]


def _auto_choice(source: ImageSource, random_state: int = 0) -> tuple[str, str, int | None]:
    """``(features, reason, typical side of the small grey images or None)``."""
    if source.array is not None:
        array = source.array
        grey = array.ndim == 3 or array.shape[3] == 1
        side = max(array.shape[1:3])
        small = side <= _SMALL_SIDE
    else:
        rng = np.random.default_rng(random_state)
        picked = rng.choice(len(source), min(_AUTO_SAMPLE, len(source)), replace=False)
        looks = [_small_grey(source, int(i)) for i in sorted(picked)]
        sides = [v for v in looks if v]
        looks = [v for v in looks if v is not None] or [False]
        grey = small = sum(bool(v) for v in looks) >= 0.8 * len(looks)
        side = int(np.median(sides)) if sides else None
    if grey and small:
        return "hog", f"small grey images (at most {_SMALL_SIDE} pixels a side)", side
    model, chooser = default_model()
    return f"embed:{model}", f"colour photos, grouped by what they show ({_whose(chooser)})", None


def _whose(chooser: str) -> str:
    """Which image model, in words: the default, or the one a setting pinned."""
    return "the default image model" if chooser == "the default" else f"the model of {chooser}"


def small_grey_hog(side: int | None) -> dict:
    """The HOG settings ``features="auto"`` takes for small grey images of ``side`` pixels.

    Square-rooted histograms (:class:`~imgclust.collection.features.HogFeatures` ``root``) of
    12 orientations in cells of 4 pixels, on the image at its own side held within 16-32
    pixels. Measured against their pixels (PCA, then t-SNE or UMAP, then k-means): the 8x8
    digits 0.947-0.951 accuracy (seeds 0-2) against 0.945; 10,000 MNIST digits an adjusted
    Rand index of 0.94 against 0.77 (UMAP), the pixels' 4s and 9s being one cluster.
    """
    low, high = _HOG_SIDES
    size = min(max(side or high, low), high)
    return {
        "size": size,
        "pixels_per_cell": _HOG_CELL,
        "orientations": _HOG_ORIENTATIONS,
        "root": True,
    }


def _small_grey(source: ImageSource, index: int) -> int | bool | None:
    """The side of image ``index`` if it is small and grey, False if not, None if it cannot
    be read."""
    try:
        data = source.read_bytes(index)
        with pillow_limit_lifted(), PILImage.open(io.BytesIO(data)) as header:
            if max(header.size) > _SMALL_SIDE:  # the header is enough: no decoding
                return False
        image = source.decode(index, data)
    except Exception:  # any file Pillow cannot read is left to the reading step to report
        return None
    side = max(image.size)
    if image.mode == "L":
        return side
    rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    return side if int(np.abs(rgb - rgb[:, :, :1]).max()) <= 8 else False


def _make_extractor(
    features,
    source: ImageSource,
    feature_options: dict,
    random_state: int = 0,
    progress: ProgressFactory = no_progress,
) -> tuple[FeatureExtractor, list[str]]:
    """The extractor of ``features`` for ``source`` and the warnings of the choice (the
    default image model could not be had, so colour and texture stand in for it)."""
    if isinstance(features, FeatureExtractor):
        return features, []
    options = dict(feature_options)
    if str(features) == "auto":
        features, reason, side = _auto_choice(source, random_state)
        if features == "hog":
            chosen = {k: v for k, v in options.items() if v is not None}
            options = {**small_grey_hog(side), **chosen}
            extractor, warnings = _make_extractor(features, source, options)
        else:
            extractor, warnings, fallback = _default_model_extractor(features, options, progress)
            reason = fallback or reason
        extractor.chosen = f"auto: {reason}"
        return extractor, warnings
    if str(features) == "pixels":
        native = source.native_size
        if options.get("size") is None:
            options["size"] = native if native is not None and native <= 64 else 32
        if options.get("grey") is None:
            options["grey"] = source.array is not None and source.array.ndim == 3
    return make_extractor(features, progress=progress, **options), []


#: Seconds the default model's download waits for the network before colour and texture
#: stand in for it.
_DEFAULT_MODEL_TIMEOUT = 30.0


def _default_model_extractor(
    features: str, options: dict, progress: ProgressFactory
) -> tuple[FeatureExtractor, list[str], str | None]:
    """The default image model's extractor (downloaded once if it is a named model), or,
    where it cannot be had (offline, no network, a broken download), colour and texture with
    a warning that says how to get the model: ``(extractor, warnings, the reason for the
    stand-in or None)``."""
    model, chooser = default_model()
    try:
        extractor = make_extractor(
            features, progress=progress, download_timeout=_DEFAULT_MODEL_TIMEOUT, **options
        )
    except ModelUnavailableError as exc:
        reason = f"colour photos; colour and texture stand in for the image model {model}"
        warning = (
            f"the photos were grouped on colour and texture, which tell what they show far "
            f"less well than the image model {model}: {exc}"
        )
        return make_extractor("colortexture", **options), [warning], reason
    except InvalidParameterError as exc:
        if chooser == "the default":
            raise
        raise InvalidParameterError(f"{exc} (the model of {chooser})") from None
    return extractor, [], None


def _centres(X, labels, medoids, n_clusters):
    if medoids is not None:
        centers = X[medoids]
    else:
        centers = np.stack([X[labels == c].mean(axis=0) for c in range(n_clusters)])
    distances = np.full(len(X), np.nan)
    ranks = np.zeros(len(X), dtype=np.int64)
    nearest = np.zeros(n_clusters, dtype=np.int64)
    for c in range(n_clusters):
        members = np.flatnonzero(labels == c)
        d = np.linalg.norm(X[members] - centers[c], axis=1)
        order = np.argsort(d, kind="stable")
        distances[members] = d
        ranks[members[order]] = np.arange(1, len(members) + 1)
        nearest[c] = members[order[0]]
    noise = np.flatnonzero(labels < 0)
    ranks[noise] = np.arange(1, len(noise) + 1)
    return centers, (medoids if medoids is not None else nearest), distances, ranks


def cluster_images(
    images: str | os.PathLike | np.ndarray | ImageSource | None = None,
    *,
    dataset: str | None = None,
    features: str | FeatureExtractor = "auto",
    feature_options: dict | None = None,
    reduce: str = "auto",
    dims: int | None = None,
    tsne_iterations: int | None = None,
    scale: str = "none",
    method: str = "kmeans",
    n_clusters: int | str | None = "auto",
    k_values: Sequence[int] | None = None,
    k_rule: str = "auto",
    method_options: dict | None = None,
    labels: str | os.PathLike | Sequence | None = None,
    random_state: int = 0,
    cache: bool | str | os.PathLike = True,
    workers: int | None = None,
    exclude: Sequence[os.PathLike] = (),
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    progress: ProgressFactory = no_progress,
    scheduler=None,
    reviewed=None,
) -> ImageClustering:
    """Group images by similarity.

    Parameters
    ----------
    images : path, ndarray or ImageSource
        A folder (read recursively), a ``.npy`` file of images, or an ``(n, H, W[, C])`` array.
    dataset : {"digits"}, optional
        Instead of ``images``: scikit-learn's digits, with their labels.
    features : {"auto", "pixels", "colorhist", "colortexture", "hog", "embed:MODEL.onnx", \
            "embed:NAME"} or FeatureExtractor
        ``"auto"`` (:func:`auto_features`): HOG for small grey images like the digits; for
        photos, the embeddings of the default image model
        (:func:`~imgclust.collection.model_zoo.default_model`, downloaded once), or colour and
        texture, with a warning, where that model cannot be had.
    feature_options : dict, optional
        Options of the extractor (``size``, ``grey``, ``bins``, ``input_size``, ``mean``,
        ``std``, ``layout``); pixels default to 32x32 RGB, or to the images' own size and grey
        for arrays of small grey images (the 8x8 digits).
    reduce : {"auto", "tsne", "pca", "umap", "none"}, default="auto"
        t-SNE and UMAP map to ``dims`` (2) dimensions after a PCA to 50 (for an image
        model's embeddings, each row of the PCA brought to unit length first). ``"auto"``
        (:func:`auto_reduction`): for an image model's embeddings UMAP from 150 images on,
        a PCA below; for other features t-SNE up to 3,000 images, UMAP past that (on 50,000
        landmarks past 50,000 images).
    dims : int, optional
    tsne_iterations : int, optional
        See :func:`~imgclust.collection.reduce.reduce_features`.
    scale : {"none", "standard"}, default="none"
        Standardise each feature before the reduction.
    method : {"kmeans", "minibatch", "agglomerative", "kmedoids", "dbscan", "hdbscan"}
    n_clusters : int or "auto", default="auto"
        ``"auto"`` sweeps ``k_values`` and keeps the K ``k_rule`` prefers (see
        :class:`~imgclust.cluster.methods.KSweepScores`). Ignored by DBSCAN and HDBSCAN.
    k_values : sequence of int, optional
        The K tried by ``n_clusters="auto"``: 2-20 by default, with the BIC rule up to 40 on
        large collections (:func:`auto_k_values`).
    k_rule : {"auto", "silhouette", "bic"}, default="auto"
        How ``n_clusters="auto"`` chooses: ``"bic"`` (the partition of the map that is the
        likeliest Gaussian mixture, averaged over the map and two maps of other seeds) for an
        image model's embeddings on a UMAP map, the highest silhouette otherwise (measured:
        ``docs/design.md``).
    method_options : dict, optional
        ``eps``, ``min_samples``, ``min_cluster_size`` for the density methods.
    labels : "folders", path to a CSV, sequence, or None
        Known labels to evaluate against (see :func:`read_labels`).
    random_state : int
        The same seed gives the same result.
    cache : bool or path
        Reuse and store features on disk (True: :func:`default_cache_dir`).
    workers : int, optional
        Decoding threads.
    exclude : paths
        Folders under ``images`` never read (the output folder).
    max_pixels : int or None
    progress : callable, optional
    scheduler : str or distributed.Client, optional
        Decode the images and extract their features on a Dask cluster: ``"tcp://host:8786"``,
        ``"local:N"`` or a client (see :mod:`imgclust.distributed`). The result is the same as
        without.
    reviewed : ReviewedGroups, optional
        Clusters a person settled on (:mod:`imgclust.collection.review`) for these images,
        which take the place of the clustering; the map is the reviewed run's.

    Returns
    -------
    ImageClustering

    Examples
    --------
    >>> from imgclust import cluster_images
    >>> result = cluster_images(dataset="digits", n_clusters=10, cache=False)  # doctest: +SKIP
    >>> round(result.evaluation["accuracy_majority"], 2)  # doctest: +SKIP
    0.94
    """
    started = time.perf_counter()
    source = _resolve_source(images, dataset, exclude, max_pixels)
    extractor, feature_warnings = _make_extractor(
        features, source, feature_options or {}, random_state, progress
    )
    spec = get_method(method)
    auto = isinstance(n_clusters, str)
    if auto and n_clusters != "auto":
        raise InvalidParameterError(f"n_clusters={n_clusters!r} must be a number or 'auto'")
    if spec.takes_k and not auto and (n_clusters is None or n_clusters < 1):
        raise InvalidParameterError(f"n_clusters={n_clusters} must be at least 1")
    truth_all = read_labels(labels, source)

    with dask_client(scheduler) as client:
        extraction = extract_features(
            source,
            extractor,
            cache=open_cache(cache, extractor),
            workers=workers,
            progress=progress,
            client=client,
        )
        cluster = describe_cluster(client) if client is not None else None
    read_done = time.perf_counter()
    if reduce == "auto":
        reduce = auto_reduction(extractor.name, len(extraction.features))
    given = names = given_map = None
    if reviewed is not None:
        given, names, given_map = reviewed.for_rows([source.ids[i] for i in extraction.kept])
    reduction = reduce_features(
        extraction.features,
        reduce,
        dims=dims,
        random_state=random_state,
        tsne_iterations=tsne_iterations,
        scale=scale,
        # an image model's embeddings are compared by their angles (measured: docs/design.md)
        normalize=extractor.name == "embed" and reduce in ("tsne", "umap"),
        progress=progress,
        given_map=given_map,
    )
    reduce_done = time.perf_counter()
    X = reduction.embedding
    options = {k: v for k, v in (method_options or {}).items() if v is not None}
    sweep = None
    k = rule = None
    if given is not None:
        pass  # the reviewed clusters take the place of the sweep and the fit
    elif spec.takes_k:
        if auto:
            rule = _k_rule(k_rule, extractor, reduction)
            sweep = sweep_k(
                X,
                method,
                auto_k_values(len(X), rule) if k_values is None else k_values,
                random_state,
                progress,
                rule=rule,
                resampled=_other_maps(reduction, rule, random_state, tsne_iterations, progress),
                **options,
            )
            k = sweep.best_k
        else:
            k = int(n_clusters)
    details: dict = {}
    if given is not None:
        labels_, medoids = given, None
    else:
        with progress(f"clustering ({method})", 1) as advance:
            labels_, medoids = fit_method(X, method, k, random_state, details=details, **options)
            advance()
    found = int(labels_.max(initial=-1) + 1)
    if found == 0:
        raise InvalidParameterError(
            f"{method} put every image into noise; loosen its parameters (a larger --eps or a "
            "smaller --min-samples)"
        )
    centers, medoids, distances, ranks = _centres(X, labels_, medoids, found)
    done = time.perf_counter()
    truth = [truth_all[i] for i in extraction.kept] if truth_all is not None else None
    result = ImageClustering(
        source,
        extractor,
        extraction,
        reduction,
        method,
        labels_,
        centers,
        medoids,
        distances,
        ranks,
        sweep,
        truth,
        parameters={
            "features": extractor.describe()
            + (f" ({extractor.chosen})" if getattr(extractor, "chosen", None) else ""),
            "feature_settings": {"name": extractor.name, **extractor.settings()},
            "reduce": reduce,
            "dims": int(X.shape[1]),
            "tsne_iterations": tsne_iterations,
            "scale": scale,
            "normalize_rows": reduction.normalized,
            "method": method,
            "n_clusters": found
            if given is not None
            else n_clusters
            if auto or not spec.takes_k
            else int(n_clusters),
            "k_rule": rule if auto and spec.takes_k else None,
            "method_options": options,
            "random_state": random_state,
        },
        timings={
            "read": read_done - started,
            "reduce": reduce_done - read_done,
            "cluster": done - reduce_done,
            "total": done - started,
        },
    )
    if cluster is not None:
        result.parameters["dask"] = cluster
    if given is not None:
        result.parameters["reviewed"] = {"changes": reviewed.changes}
        result.names = names
    result.linkage = details.get("linkage")
    result.warnings.extend(feature_warnings)
    result.warnings.extend(_lopsided(labels_, method, reduce))
    if k is not None and found < k:
        result.warnings.append(_fewer_clusters(np.asarray(X), method, found, k))
    if truth is not None:
        result.evaluation = evaluate_against(truth, labels_)
    return result


def _fewer_clusters(X: np.ndarray, method: str, found: int, k: int) -> str:
    """What to say when a method found fewer clusters than asked: why, when the images are
    too few kinds (identical images cannot make K clusters)."""
    said = f"{method} found {found} cluster{'s' if found != 1 else ''} where {k} were asked"
    distinct = len(np.unique(X, axis=0))
    if distinct >= k:
        return said
    return f"{said}: the images give only {distinct} distinct feature vector" + (
        "s" if distinct != 1 else ""
    )


#: Collections larger than this are mapped by UMAP rather than t-SNE by ``reduce="auto"``.
AUTO_TSNE_MAX = 3000
#: An image model's embeddings are mapped by UMAP from this many images on, below it reduced
#: by a PCA alone (measured on subsets of the photo sets: the map loses below 100 images).
AUTO_EMBED_MAP_MIN = 150


def auto_reduction(features: str, n_images: int) -> str:
    """The reduction ``reduce="auto"`` takes.

    The embeddings of an image model: UMAP of their PCA (each row brought to unit length),
    from :data:`AUTO_EMBED_MAP_MIN` images on, a PCA alone below (measured on seven labelled
    photo sets, ``benchmarks/bench_photos.py``). Other features: t-SNE up to
    :data:`AUTO_TSNE_MAX` images, UMAP past it (t-SNE's cost grows faster than UMAP's:
    measured in ``benchmarks/bench_scale.py``; past
    :data:`~imgclust.collection.reduce.UMAP_LANDMARKS` images UMAP maps a sample of that many
    and places the rest, so its cost and memory stop growing but for the placement)."""
    if features == "embed":
        return "umap" if n_images >= AUTO_EMBED_MAP_MIN else "pca"
    return "tsne" if n_images <= AUTO_TSNE_MAX else "umap"


def auto_k_values(n_images: int, rule: str = "bic") -> list[int]:
    """The K tried by ``n_clusters="auto"``: 2 to 20, and with the BIC rule on large
    collections up to one cluster per 25 images, at most 40 (so that 30 kinds of aerial scene
    in 1,200 images can be found; the silhouette, which favours few clusters, keeps 2-20)."""
    if rule != "bic":
        return list(DEFAULT_K_VALUES)
    return list(range(2, max(20, min(40, n_images // 25)) + 1))


def _k_rule(k_rule: str, extractor: FeatureExtractor, reduction: Reduction) -> str:
    if k_rule != "auto":
        return k_rule
    return "bic" if extractor.name == "embed" and reduction.method == "umap" else "silhouette"


#: Maps of other seeds the BIC rule averages over (beside the run's own map).
_OTHER_MAPS = 2


def _other_maps(reduction: Reduction, rule: str, random_state: int, iterations, progress):
    """With the BIC rule on a map, maps of the sweep's rows made with other seeds."""
    if rule != "bic" or reduction.method not in ("tsne", "umap"):
        return []
    rows = sweep_sample(len(reduction.pre), random_state)
    pre = np.asarray(reduction.pre[rows])
    dims = reduction.embedding.shape[1]
    return [
        map_rows(pre, reduction.method, dims, random_state + i, iterations, progress)
        for i in range(1, _OTHER_MAPS + 1)
    ]


#: A density method's result is reported as lopsided past these shares of the images.
_ONE_CLUSTER_SHARE = 0.6
_NOISE_SHARE = 0.5


def _lopsided(labels: np.ndarray, method: str, reduce: str) -> list[str]:
    """What to say when a density method put most images into one cluster or into noise."""
    if method not in ("dbscan", "hdbscan") or len(labels) == 0:
        return []
    n = len(labels)
    noise = float(np.mean(labels < 0))
    sizes = np.bincount(labels[labels >= 0]) if (labels >= 0).any() else np.zeros(1)
    largest = float(sizes.max() / n)
    scale = (
        " (the t-SNE map's scale grows with --tsne-iterations: a radius tuned on one map does "
        "not fit another)"
        if reduce == "tsne"
        else ""
    )
    if method == "dbscan" and largest > _ONE_CLUSTER_SHARE:
        return [
            f"dbscan put {largest:.0%} of the images into one cluster: --eps is too large for "
            f"this space{scale}; try a smaller --eps, or k-means (--method kmeans -k auto)"
        ]
    if method == "dbscan" and noise > _NOISE_SHARE:
        return [
            f"dbscan left {noise:.0%} of the images as noise: --eps is too small or "
            f"--min-samples too large for this space{scale}; try a larger --eps"
        ]
    if largest > _ONE_CLUSTER_SHARE:
        return [
            f"hdbscan put {largest:.0%} of the images into one cluster; try a smaller "
            "--min-cluster-size, or k-means (--method kmeans -k auto)"
        ]
    if noise > _NOISE_SHARE:
        return [
            f"hdbscan left {noise:.0%} of the images as noise; try a smaller --min-cluster-size "
            "or --min-samples"
        ]
    return []


def evaluate_against(truth: Sequence[str | None], labels: np.ndarray) -> dict | None:
    """Scores of ``labels`` against the known labels (rows without one are left out)."""
    from imgclust.cluster.evaluation import (
        contingency_scores,
        contingency_table,
        diagonal_order,
    )

    known = np.array([t is not None for t in truth])
    if not known.any():
        return None
    names = np.array([t for t in truth if t is not None])
    label_names, clusters, table = contingency_table(names, np.asarray(labels)[known])
    order = diagonal_order(table)  # the matrix reads like the articles': matches diagonal
    clusters, table = [clusters[c] for c in order], table[:, order]
    scores = contingency_scores(table, label_names, clusters)
    return {
        "labelled_images": int(known.sum()),
        "labels": label_names,
        "clusters": clusters,
        "confusion": table.tolist(),
        **scores,
    }
