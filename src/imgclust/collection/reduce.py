"""Reducing feature vectors before clustering: none, PCA, t-SNE or UMAP.

t-SNE and UMAP start from a PCA to at most 50 dimensions (the usual practice: it removes noise
and makes the neighbour search fast). The PCA is kept in the result: a saved model applies it
to new images, and ``assign`` places them by their nearest neighbours in that space, since a
t-SNE or UMAP map has no portable transform.

``scale="standard"`` standardises each feature (zero mean, unit variance over the images)
before anything else, so that the PCA works on correlations: every pixel or histogram bin
counts alike, however little it varies.

``normalize=True`` brings each row to unit length after the PCA, so that a map (t-SNE, UMAP)
and its neighbours follow the angles between the vectors (cosine), not their lengths: the
geometry of an image model's embeddings.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass

import numpy as np

from imgclust._progress import ProgressFactory, no_progress
from imgclust.errors import InvalidParameterError, MissingDependencyError

__all__ = ["REDUCTIONS", "SCALINGS", "Reduction", "map_rows", "reduce_features"]

#: The reductions by name.
REDUCTIONS = ("none", "pca", "tsne", "umap")
#: Feature scalings applied before the reduction.
SCALINGS = ("none", "standard")

_PRE_PCA = 50
# Measured on the digits and on a folder of 2,193 images: 400 iterations (250 of them with
# early exaggeration) cluster as well as scikit-learn's default of 1,000 in 40% of the time
# (digits: 0.943 at 1,000, 0.945 at 500 and 400, 0.940 at 350); larger collections keep 1,000.
_TSNE_ITERATIONS = 400


@dataclass
class Reduction:
    """Features in the space they are clustered in.

    Attributes
    ----------
    method : str
    embedding : (n, dims) float ndarray
        The space the clusters are found in.
    pca_mean, pca_components : ndarray or None
        The PCA applied first (``(x - mean) @ components.T``), if any.
    pre : (n, d) ndarray
        The features after the scaling and the PCA: where new images are placed by
        ``assign`` after a t-SNE or UMAP.
    scale_mean, scale_std : ndarray or None
        The standardisation applied before the PCA (``(x - mean) / std``), if any.
    normalized : bool
        Rows were brought to unit length after the PCA (``pre`` holds them so).
    """

    method: str
    embedding: np.ndarray
    pca_mean: np.ndarray | None
    pca_components: np.ndarray | None
    pre: np.ndarray
    scale_mean: np.ndarray | None = None
    scale_std: np.ndarray | None = None
    normalized: bool = False

    def project(self, features: np.ndarray) -> np.ndarray:
        """Apply the scaling, the PCA and the normalisation to new feature vectors."""
        return project(
            features,
            self.scale_mean,
            self.scale_std,
            self.pca_mean,
            self.pca_components,
            normalize=self.normalized,
        )


#: Rows handled at a time by the scaling and the projection (bounded memory).
_BLOCK = 8192
#: The PCA is fitted on at most this many rows (a seeded sample past it), then every row is
#: projected block by block: the time and memory of the fit stop growing with the collection.
_PCA_FIT_ROWS = 20_000


def project(
    features,
    scale_mean=None,
    scale_std=None,
    pca_mean=None,
    pca_components=None,
    advance=None,
    *,
    normalize: bool = False,
):
    """``features`` standardised (when ``scale_std`` is given), projected on the PCA (when
    ``pca_components`` is given) and brought to unit length (``normalize``), as float32, a
    block of rows at a time (the result is in a memory-mapped file when it is large:
    :class:`~imgclust.collection.extract.FeatureMatrix`); ``advance(rows)`` after each block."""
    from imgclust.collection.extract import allocate_rows

    X = np.asarray(features)
    if scale_std is None and pca_components is None and not normalize:
        if advance is not None:
            advance(len(X))
        return X.astype(np.float32, copy=False)
    dims = X.shape[1] if pca_components is None else len(pca_components)
    out = allocate_rows((len(X), dims))
    for start in range(0, len(X), _BLOCK):
        block = np.asarray(X[start : start + _BLOCK], dtype=np.float32)
        if scale_std is not None:
            block = (block - scale_mean) / scale_std
        if pca_components is not None:
            block = (block - pca_mean) @ pca_components.T
        if normalize:
            norms = np.linalg.norm(block, axis=1, keepdims=True)
            block = block / np.where(norms > 0, norms, 1)
        out[start : start + _BLOCK] = block
        if advance is not None:
            advance(len(block))
    return out


def _standardise(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler()  # a constant feature gets scale 1: it stays 0
    for start in range(0, len(features), _BLOCK):
        scaler.partial_fit(features[start : start + _BLOCK])
    return scaler.mean_.astype(np.float32), scaler.scale_.astype(np.float32)


def _pca(features: np.ndarray, dims: int, random_state: int, scale_mean=None, scale_std=None):
    """The mean and components of a PCA to ``dims``, fitted on the (scaled) rows, or on a
    seeded sample of :data:`_PCA_FIT_ROWS` of them."""
    from sklearn.decomposition import PCA

    dims = min(dims, features.shape[0], features.shape[1])
    rows = features
    if len(features) > _PCA_FIT_ROWS:
        picked = np.random.default_rng(random_state).choice(
            len(features), _PCA_FIT_ROWS, replace=False
        )
        rows = features[np.sort(picked)]
    rows = project(rows, scale_mean, scale_std)
    # Where scikit-learn picks its randomized solver (large data, few components), three power
    # iterations instead of seven: the same explained variance to five digits on the benchmark
    # folder (0.99542) in half the time.
    with warnings.catch_warnings():  # identical images: no variance to explain, no ratio
        warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
        model = PCA(n_components=dims, iterated_power=3, random_state=random_state).fit(rows)
    return model.mean_.astype(np.float32), model.components_.astype(np.float32)


def reduce_features(
    features: np.ndarray,
    method: str = "tsne",
    *,
    dims: int | None = None,
    random_state: int = 0,
    tsne_iterations: int | None = None,
    scale: str = "none",
    normalize: bool = False,
    progress: ProgressFactory = no_progress,
    given_map: np.ndarray | None = None,
) -> Reduction:
    """Reduce ``features`` with ``method`` to ``dims`` dimensions.

    Parameters
    ----------
    features : (n, d) ndarray
    method : {"none", "pca", "tsne", "umap"}
    dims : int, optional
        Output dimensions: 50 for PCA (at most n and d), 2 for t-SNE and UMAP.
    random_state : int
    tsne_iterations : int, optional
        t-SNE iterations, 250 of them early exaggeration (default 400 up to 10,000 images, else
        1,000, scikit-learn's default). The map keeps growing with iterations, so a DBSCAN
        radius tuned on one map does not carry over to a map made with another count.
    scale : {"none", "standard"}, default="none"
        ``"standard"``: each feature to zero mean and unit variance first.
    normalize : bool, default=False
        Bring each row to unit length after the PCA, before a t-SNE or UMAP map (cosine
        geometry; the embeddings of image models are compared so).
    progress : callable, optional
        Progress factory: t-SNE advances every 50 iterations and UMAP every epoch (read from
        what scikit-learn and umap-learn print, which is not shown).
    given_map : (n, dims) ndarray, optional
        The t-SNE or UMAP map of these features made before (a reviewed run's, read back from
        ``embedding.csv``), used instead of mapping again.

    Returns
    -------
    Reduction
    """
    if method not in REDUCTIONS:
        raise InvalidParameterError(
            f"unknown reduction {method!r}; the reductions are: {', '.join(REDUCTIONS)}"
        )
    if scale not in SCALINGS:
        raise InvalidParameterError(
            f"unknown scaling {scale!r}; the scalings are: {', '.join(SCALINGS)}"
        )
    if dims is not None and dims < 1:
        raise InvalidParameterError(f"dims={dims} must be at least 1")
    features = np.asarray(features)
    n = len(features)
    mean = components = None
    scale_mean = scale_std = None
    pca_dims = (dims or _PRE_PCA) if method == "pca" else _PRE_PCA
    with_pca = method == "pca" or (
        method != "none" and features.shape[1] > _PRE_PCA and n > _PRE_PCA
    )
    title = "PCA" if with_pca else "scaling"
    bar = progress if with_pca or scale == "standard" else no_progress  # else nothing to do
    with bar(f"{title} of {n:,} images", 2 * n) as advance:
        if scale == "standard":
            scale_mean, scale_std = _standardise(features)
        scaling = {"scale_mean": scale_mean, "scale_std": scale_std}
        if with_pca:
            mean, components = _pca(features, pca_dims, random_state, **scaling)
        advance(n)  # the fit, then the projection block by block
        pre = project(
            features,
            pca_mean=mean,
            pca_components=components,
            advance=advance,
            normalize=normalize,
            **scaling,
        )
    if method in ("none", "pca"):
        return Reduction(method, pre, mean, components, pre, **scaling, normalized=normalize)
    if given_map is not None and given_map.shape == (n, dims or 2):
        embedding = np.asarray(given_map, dtype=np.float32)
    else:
        embedding = map_rows(pre, method, dims or 2, random_state, tsne_iterations, progress)
    return Reduction(method, embedding, mean, components, pre, **scaling, normalized=normalize)


def map_rows(
    pre: np.ndarray,
    method: str,
    dims: int,
    random_state: int,
    tsne_iterations: int | None = None,
    progress: ProgressFactory = no_progress,
) -> np.ndarray:
    """A t-SNE or UMAP map of rows already scaled, projected and normalised (a
    :attr:`Reduction.pre`) with ``random_state``: the run's map, or another view of the same
    images. Identical rows map to one point: t-SNE's PCA start divides by their zero spread,
    and scikit-learn's Barnes-Hut tree then segfaulted."""
    if _all_the_same(pre):
        return np.zeros((len(pre), dims), dtype=np.float32)
    if method == "tsne":
        return _tsne(pre, dims, random_state, tsne_iterations, progress)
    if method == "umap":
        return _umap(pre, dims, random_state, progress)
    raise InvalidParameterError(f"{method!r} makes no map; the maps are tsne and umap")


def _all_the_same(rows: np.ndarray) -> bool:
    """Whether every row equals the first (identical images): their map is one point."""
    first = np.asarray(rows[:1])
    return all(
        (np.asarray(rows[start : start + _BLOCK]) == first).all()
        for start in range(0, len(rows), _BLOCK)
    )


#: Seconds between the updates UMAP's tqdm prints for the progress bar.
_BAR_INTERVAL = 0.2


class _ProgressReader(io.TextIOBase):
    """A text stream that turns what a library prints about its progress into a count: each
    line (or carriage-return update) matching ``pattern`` calls ``seen`` with its number."""

    def __init__(self, pattern: str, seen: Callable[[int], None]) -> None:
        self.pattern = re.compile(pattern)
        self.seen = seen
        self.pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.pending += text
        *complete, self.pending = re.split(r"[\r\n]", self.pending)
        for line in complete:
            match = self.pattern.search(line)
            if match:
                self.seen(int(match.group(1)))
        return len(text)


def _counter(advance) -> Callable[[int], None]:
    """``seen(done)`` for a running total: advances the bar by what was done since."""
    state = {"done": 0}

    def seen(done: int) -> None:
        if done > state["done"]:
            advance(done - state["done"])
            state["done"] = done

    return seen


def _tsne(
    features: np.ndarray,
    dims: int,
    random_state: int,
    iterations: int | None,
    progress: ProgressFactory = no_progress,
) -> np.ndarray:
    from sklearn.manifold import TSNE

    n = len(features)
    if n < 5:
        raise InvalidParameterError(
            f"t-SNE needs at least 5 images (got {n}); use --reduce pca or none"
        )
    if iterations is not None and iterations < 250:
        raise InvalidParameterError(f"t-SNE needs at least 250 iterations, not {iterations}")
    if dims > 3:
        raise InvalidParameterError(f"t-SNE maps to 1, 2 or 3 dimensions, not {dims}")
    total = iterations or (_TSNE_ITERATIONS if n <= 10_000 else 1000)
    tsne = TSNE(
        n_components=dims,
        perplexity=min(30.0, (n - 1) / 3.0),
        init="pca",
        max_iter=total,
        random_state=random_state,
        verbose=2,  # "[t-SNE] Iteration 50: ..." every 50 iterations: the progress bar's
    )
    with progress(f"t-SNE of {n:,} images", total) as advance:
        seen = _counter(advance)
        with redirect_stdout(_ProgressReader(r"\[t-SNE\] Iteration (\d+)", seen)):
            embedding = tsne.fit_transform(features)
        seen(total)  # it may stop early, once converged
    return embedding.astype(np.float32)


#: UMAP's settings for clustering (umap-learn's "Using UMAP for clustering"): points of a
#: cluster packed together (``min_dist=0``), 15 neighbours.
_UMAP_NEIGHBOURS = 15
_UMAP_MIN_DIST = 0.0
#: Passes of UMAP's optimisation: 100 up to 10,000 images, 50 past (umap-learn takes 500 and
#: 200). Fewer passes lost nothing measurable and the passes are most of UMAP's time: on 10,000
#: MNIST digits (HOG, k-means, 3 seeds) 50, 100 and 200 epochs gave an adjusted Rand index of
#: 0.938-0.940, 0.939-0.940 and 0.938-0.942 (1.1, 1.9 and 3.7 s); on 30,000 made digits
#: (``bench_scale.py``, 2 seeds) 50 epochs 0.911, 100 epochs 0.833, 200 epochs 0.833-0.852.
_UMAP_EPOCHS = (100, 50)
_UMAP_FEW_EPOCHS_FROM = 10_000
#: Past this many images UMAP maps a seeded sample of this many (landmarks), and every other
#: image is placed at the mean position of its nearest landmarks (in the PCA space the map was
#: made from): the map's cost stops growing, the placement grows linearly. The neighbours of
#: the landmarks are found exactly (4 s for 50,000 on 2 cores; 16 s for 100,000).
UMAP_LANDMARKS = 50_000
_PLACEMENT_NEIGHBOURS = 5


def umap_epochs(n: int) -> int:
    """The number of UMAP epochs for ``n`` points (see :data:`_UMAP_EPOCHS`)."""
    return _UMAP_EPOCHS[0] if n <= _UMAP_FEW_EPOCHS_FROM else _UMAP_EPOCHS[1]


def nearest_neighbours(
    features: np.ndarray,
    k: int,
    progress: ProgressFactory = no_progress,
    queries: np.ndarray | None = None,
    title: str = "neighbours",
) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` nearest neighbours among the rows of ``features`` of every row of
    ``queries`` (default: of ``features`` itself, each row first among its own):
    ``(indices, distances)``, in blocks of rows so memory stays bounded."""
    from sklearn.neighbors import NearestNeighbors

    queries = features if queries is None else queries
    n = len(queries)
    search = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(features)
    indices = np.empty((n, k), dtype=np.int64)
    distances = np.empty((n, k), dtype=np.float32)
    block = 4096
    with progress(f"{title} of {n:,} images", n) as advance:
        for start in range(0, n, block):
            rows = slice(start, min(start + block, n))
            d, i = search.kneighbors(np.asarray(queries[rows], dtype=np.float32))
            indices[rows], distances[rows] = i, d
            advance(rows.stop - rows.start)
    return indices, distances


#: The numba functions of umap-learn that a UMAP from known neighbours compiles, and that
#: umap-learn compiles afresh in every process (about 3.5 s: the reduction of 10,000 MNIST
#: digits took 7.1-7.7 s with them compiled and 3.8 s with them loaded from numba's cache).
_UMAP_KERNELS = (
    ("umap.umap_", "smooth_knn_dist"),
    ("umap.umap_", "compute_membership_strengths"),
    ("umap.layouts", "_nb_optimize_layout_euclidean_single_epoch"),
)


def _cache_umap_kernels() -> None:
    """Have numba keep the machine code of umap-learn's kernels on disk, as ``cache=True``
    does for its other functions: numba's own cache (next to umap-learn's sources, or in the
    user's cache folder when that is read-only), checked against the source files by numba.
    Only a kernel not compiled yet is touched; any failure leaves umap-learn as it is."""
    import importlib

    for module, name in _UMAP_KERNELS:
        try:
            kernel = getattr(importlib.import_module(module), name)
            if not kernel.signatures:
                kernel.enable_caching()
        except Exception:  # another umap-learn: it just compiles, as it always did
            continue


def _place_on_landmarks(
    features: np.ndarray, landmarks: np.ndarray, mapped: np.ndarray, progress
) -> np.ndarray:
    """The map of every row: the landmarks where UMAP put them, every other row at the mean
    position of its :data:`_PLACEMENT_NEIGHBOURS` nearest landmarks."""
    others = np.ones(len(features), dtype=bool)
    others[landmarks] = False
    rest = np.flatnonzero(others)
    indices, _ = nearest_neighbours(
        np.asarray(features[landmarks]),
        _PLACEMENT_NEIGHBOURS,
        progress,
        queries=_Rows(features, rest),
        title="placing the rest",
    )
    embedding = np.empty((len(features), mapped.shape[1]), dtype=np.float32)
    embedding[landmarks] = mapped
    embedding[rest] = mapped[indices].mean(axis=1)
    return embedding


class _Rows:
    """Rows ``rows`` of ``array``, read a block at a time (``len`` and slicing only)."""

    def __init__(self, array: np.ndarray, rows: np.ndarray) -> None:
        self.array, self.rows = array, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, block: slice) -> np.ndarray:
        return np.asarray(self.array[self.rows[block]])


def _umap(
    features: np.ndarray, dims: int, random_state: int, progress: ProgressFactory = no_progress
) -> np.ndarray:
    try:
        import umap
    except ImportError:
        raise MissingDependencyError(
            "UMAP needs umap-learn: pip install 'imgclust[umap]'"
        ) from None
    _cache_umap_kernels()
    n = len(features)
    if n < 4:
        raise InvalidParameterError(f"UMAP needs at least 4 images (got {n}); use --reduce pca")
    landmarks = None
    if n > UMAP_LANDMARKS:
        rng = np.random.default_rng(random_state)
        landmarks = np.sort(rng.choice(n, UMAP_LANDMARKS, replace=False))
    mapped = features if landmarks is None else np.asarray(features[landmarks])
    m = len(mapped)
    neighbours = min(_UMAP_NEIGHBOURS, m - 1)
    indices, distances = nearest_neighbours(mapped, neighbours, progress)
    epochs = umap_epochs(m)
    with progress(f"UMAP of {m:,} images", epochs) as advance:
        seen = _counter(advance)
        reader = _ProgressReader(r"(\d+)/\d+ \[", seen)  # tqdm's "80/200 ["
        model = umap.UMAP(
            n_components=dims,
            n_neighbors=neighbours,
            min_dist=_UMAP_MIN_DIST,
            random_state=random_state,
            n_jobs=1,
            n_epochs=epochs,
            precomputed_knn=(indices, distances, None),
            verbose=True,
            tqdm_kwds={"file": reader, "mininterval": _BAR_INTERVAL, "ascii": True},
        )
        with redirect_stdout(reader), warnings.catch_warnings():
            # umap-learn warns that a seed disables its threads: one thread is our choice
            warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
            # neighbours found here serve the map only; new images are placed by ``assign``
            warnings.filterwarnings("ignore", message="precomputed_knn", category=UserWarning)
            embedding = model.fit_transform(mapped)
        seen(epochs)
    if landmarks is not None:
        embedding = _place_on_landmarks(features, landmarks, embedding, progress)
    return np.asarray(embedding, dtype=np.float32)
