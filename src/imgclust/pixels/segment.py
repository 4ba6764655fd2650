"""Colour segmentation and quantization of one image with k-means."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from imgclust.cluster.engine import nearest
from imgclust.cluster.summary import fit_with_summary
from imgclust.errors import InvalidParameterError
from imgclust.io.images import DEFAULT_MAX_PIXELS, read_image
from imgclust.pixels.colorspace import check_color_space, rgb_to_features, space_range
from imgclust.pixels.distinct import distinct_colours
from imgclust.pixels.superpixels import SLIC_SIDE, slic_superpixels, superpixel_stats

__all__ = ["Segmentation", "label_dtype", "prepare_image", "segment"]

#: Pixels drawn to fit on when the distinct-colour route does not apply.
DEFAULT_SAMPLE_SIZE = 500_000
#: Pixels converted to features at a time when every pixel is assigned.
_CHUNK = 1 << 20


@dataclass(frozen=True)
class PreparedImage:
    """An image brought to a common form: RGB pixels plus the pixels that take part."""

    rgb: np.ndarray  # (H, W, 3) uint8, or float32 in [0, 1]
    include: np.ndarray | None  # (H, W) bool, None when every pixel takes part

    @property
    def shape(self) -> tuple[int, int]:
        return self.rgb.shape[:2]

    @property
    def n_included(self) -> int:
        return int(
            self.rgb.shape[0] * self.rgb.shape[1]
            if self.include is None
            else np.count_nonzero(self.include)
        )


def label_dtype(n_clusters: int) -> np.dtype:
    """The smallest unsigned integer type that holds the labels ``0 .. n_clusters - 1`` and,
    as its maximum, one more value for excluded pixels: uint8 up to K = 255, then uint16 up
    to 65,535, then uint32."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if n_clusters <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise InvalidParameterError(f"n_clusters={n_clusters} is more than imgclust can label")


@dataclass(frozen=True, eq=False)
class Segmentation:
    """Result of :func:`segment`.

    Attributes
    ----------
    label_map : (H, W) ndarray of :func:`label_dtype` (uint8 for K <= 255)
        Cluster of each pixel; excluded pixels (transparent or masked) hold the type's
        maximum. The array ``labels.png`` holds, and a quarter of the memory of ``labels``.
    labels : (H, W) int32 ndarray
        Cluster of each pixel, ``-1`` where the pixel was excluded; made from ``label_map``
        when first asked for.
    palette : (K, 3) uint8 ndarray
        Mean RGB colour of each cluster's pixels, rounded.
    counts : (K,) int64 ndarray
        Pixels in each cluster.
    centers : (K, 3[+2]) float ndarray
        Cluster centres in the clustering features (``color_space`` units, then the scaled
        coordinates when ``spatial`` > 0).
    inertia : float
        Sum over the included pixels of the squared distance to their centre, in the
        clustering features.
    n_iter : int
        Lloyd iterations of the final refinement on all ``n_fit`` points (see ``fit_summary``
        for the restarts).
    color_space : str
    random_state : int
        The seed that was used (drawn at random and recorded when none was given).
    method : str
        ``"distinct-colours"`` (exact, every pixel) or ``"sample"`` (fit on a sample).
    n_distinct : int or None
        Distinct colours among the included pixels (distinct-colour route only).
    params : dict
        Every parameter of the run, for reports and for running it again.
    n_fit : int
        Points k-means was fitted on: the distinct colours, or the pixels of the sample.
    summary_size : int
        Points of the summary the restarts ran on (0 when they ran on all ``n_fit`` points).
    summary_iter : int
        Lloyd iterations of the best restart on the summary (0 without a summary).
    superpixel_map : (H, W) int32 ndarray or None
        With ``superpixels``: the superpixel of each pixel (``-1`` where excluded).
    """

    label_map: np.ndarray
    palette: np.ndarray
    counts: np.ndarray
    centers: np.ndarray
    inertia: float
    n_iter: int
    color_space: str
    random_state: int
    method: str
    n_distinct: int | None
    params: dict = field(default_factory=dict)
    n_fit: int = 0
    summary_size: int = 0
    summary_iter: int = 0
    superpixel_map: np.ndarray | None = None

    @property
    def n_clusters(self) -> int:
        return int(self.palette.shape[0])

    @property
    def fit_summary(self) -> str:
        """What k-means ran, in words: restarts, where they ran, and the final refinement."""
        n_init = self.params.get("n_init", 1)
        points = {
            "distinct-colours": "distinct colours",
            "superpixels": "superpixels (mean colours weighted by size)",
        }.get(self.method, "sampled pixels")
        restarts = f"{n_init} restart{'s' if n_init != 1 else ''}"
        if self.summary_size:
            summary = "colours" if self.params.get("spatial", 0) == 0 else "points"
            return (
                f"{restarts} on a summary of {self.summary_size:,} {summary} (best: "
                f"{self.summary_iter} iterations), then {self.n_iter} iteration"
                f"{'s' if self.n_iter != 1 else ''} on all {self.n_fit:,} {points}"
            )
        return f"{restarts} on all {self.n_fit:,} {points} (best: {self.n_iter} iterations)"

    @property
    def fractions(self) -> np.ndarray:
        """Share of the included pixels in each cluster; sums to 1."""
        return self.counts / self.counts.sum()

    @property
    def has_excluded(self) -> bool:
        """Whether some pixels were left out (transparent or masked)."""
        return bool(self.counts.sum() < self.label_map.size)

    @property
    def excluded_label(self) -> int:
        """The value of excluded pixels in ``label_map``: its type's maximum."""
        return int(np.iinfo(self.label_map.dtype).max)

    @cached_property
    def labels(self) -> np.ndarray:
        """(H, W) int32: cluster of each pixel, ``-1`` where the pixel was excluded."""
        labels = self.label_map.astype(np.int32)
        if self.has_excluded:
            labels[self.label_map == self.excluded_label] = -1
        return labels

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool: the pixels that were clustered."""
        return self.label_map != self.excluded_label

    def recolor(self, fill: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
        """The image with every pixel replaced by its cluster's palette colour.

        Parameters
        ----------
        fill : (3,) ints, default=(0, 0, 0)
            Colour of excluded pixels.

        Returns
        -------
        (H, W, 3) uint8 ndarray
        """
        fill = np.asarray(fill, dtype=np.uint8)
        if self.label_map.dtype.itemsize > 2:  # no table of 2**32 rows: label -1 picks fill
            return np.vstack([self.palette, fill[None, :]])[self.labels]
        table = np.empty((self.excluded_label + 1, 3), dtype=np.uint8)
        table[:] = fill
        table[: self.n_clusters] = self.palette
        return table[self.label_map]


def _as_rgb(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Split an array into RGB (uint8, or float32 in [0, 1]) and an alpha-based include mask."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise InvalidParameterError(
            f"image has shape {image.shape}; expected (H, W) grey or (H, W, C) with C = 1 (grey), "
            "2 (grey+alpha), 3 (RGB) or 4 (RGBA)"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InvalidParameterError(f"image has shape {image.shape}: it holds no pixels")
    colour = image[:, :, : 3 if image.shape[2] >= 3 else 1]
    alpha = image[:, :, -1] if image.shape[2] in (2, 4) else None
    colour = _to_unit_dtype(colour)
    if colour.shape[2] == 1:
        colour = np.repeat(colour, 3, axis=2)
    include = None if alpha is None else alpha > 0
    if colour.dtype != np.uint8:
        finite = np.isfinite(colour).all(axis=2)
        if not finite.all():
            include = finite if include is None else include & finite
            colour = np.where(finite[:, :, None], colour, 0).astype(np.float32)
    return np.ascontiguousarray(colour), include


def _to_unit_dtype(colour: np.ndarray) -> np.ndarray:
    """uint8 stays; other integers scale to [0, 1] by their maximum; floats must be in [0, 1]."""
    if colour.dtype == np.uint8:
        return colour
    if colour.dtype == np.bool_:
        return colour.astype(np.uint8) * np.uint8(255)
    if np.issubdtype(colour.dtype, np.integer):
        if np.issubdtype(colour.dtype, np.signedinteger) and colour.min() < 0:
            raise InvalidParameterError(
                f"image of dtype {colour.dtype} has negative values; give non-negative intensities"
            )
        top = 65535 if colour.max(initial=0) <= 65535 else np.iinfo(colour.dtype).max
        return (colour / np.float32(top)).astype(np.float32)
    if np.issubdtype(colour.dtype, np.floating):
        colour = colour.astype(np.float32, copy=False)
        finite = colour[np.isfinite(colour)]
        if finite.size and (finite.min() < 0 or finite.max() > 1):
            raise InvalidParameterError(
                f"float image has values in [{finite.min():g}, {finite.max():g}]; float images "
                "must lie in [0, 1] (divide by the maximum first)"
            )
        return colour
    raise InvalidParameterError(
        f"image dtype {colour.dtype} is not supported; give integers or floats"
    )


def prepare_image(
    image: str | os.PathLike | np.ndarray,
    mask: np.ndarray | None = None,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> PreparedImage:
    """Read (if a path) and normalise an image; combine alpha, non-finite values and ``mask``."""
    array = (
        read_image(image, max_pixels=max_pixels)
        if isinstance(image, (str, os.PathLike))
        else np.asarray(image)
    )
    rgb, include = _as_rgb(array)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != rgb.shape[:2]:
            raise InvalidParameterError(
                f"mask has shape {mask.shape} but the image is {rgb.shape[0]}x{rgb.shape[1]} "
                "(height x width); give a mask of the same size"
            )
        mask = mask.astype(bool)
        include = mask if include is None else include & mask
    if include is not None and not include.any():
        raise InvalidParameterError(
            "no pixel is left to cluster: the mask and the alpha channel exclude every pixel"
        )
    return PreparedImage(rgb, include)


def _finite(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and bool(np.isfinite(value))


def _check_superpixel_params(superpixels, compactness, superpixel_side, spatial) -> None:
    if superpixels is None:
        return
    checks = [
        (
            isinstance(superpixels, (int, np.integer)) and superpixels >= 1,
            f"superpixels={superpixels!r} must be an integer >= 1 or None",
        ),
        (
            _finite(compactness) and 1e-3 <= compactness <= 1e4,
            f"compactness={compactness!r} must be from 0.001 to 10,000 (SLIC's balance of "
            "colour and space; 10 is the default)",
        ),
        (
            superpixel_side is None
            or (isinstance(superpixel_side, (int, np.integer)) and superpixel_side >= 16),
            f"superpixel_side={superpixel_side!r} must be an integer >= 16 or None",
        ),
        (
            spatial == 0,
            "superpixels and spatial features do not combine: superpixels already make the "
            "segments coherent; leave spatial at 0",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise InvalidParameterError(message)


def _check_params(n_clusters, n_init, max_iter, tol, epsilon, spatial, init) -> None:
    checks = [
        (
            isinstance(n_clusters, (int, np.integer)) and n_clusters >= 1,
            f"n_clusters={n_clusters!r} must be an integer >= 1",
        ),
        (
            isinstance(n_init, (int, np.integer)) and n_init >= 1,
            f"n_init={n_init!r} must be an integer >= 1",
        ),
        (
            isinstance(max_iter, (int, np.integer)) and max_iter >= 1,
            f"max_iter={max_iter!r} must be an integer >= 1",
        ),
        (_finite(tol) and tol >= 0, f"tol={tol!r} must be a finite number >= 0"),
        (
            epsilon is None or (_finite(epsilon) and epsilon >= 0),
            f"epsilon={epsilon!r} must be a finite number >= 0 or None",
        ),
        (
            _finite(spatial) and 0 <= spatial <= 1000,
            f"spatial={spatial!r} must be a finite number from 0 to 1,000 (1 weighs the "
            "coordinates like the colours; past 1,000 the colours no longer count)",
        ),
        (
            init in ("k-means++", "random"),
            f"init={init!r} is not known; choose k-means++ or random",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise InvalidParameterError(message)


def _resolve_seed(random_state: int | None) -> int:
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if not isinstance(random_state, (int, np.integer)) or random_state < 0:
        raise InvalidParameterError(
            f"random_state={random_state!r} must be a non-negative integer or None"
        )
    return int(random_state)


def segment(
    image: str | os.PathLike | np.ndarray,
    n_clusters: int = 8,
    *,
    color_space: str = "lab",
    init: str = "k-means++",
    n_init: int = 8,
    max_iter: int = 300,
    tol: float = 1e-4,
    epsilon: float | None = None,
    random_state: int | None = None,
    spatial: float = 0.0,
    mask: np.ndarray | None = None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    superpixels: int | None = None,
    compactness: float = 10.0,
    superpixel_side: int | None = SLIC_SIDE,
) -> Segmentation:
    """Segment an image into ``n_clusters`` colours with k-means.

    For 8-bit images without spatial features, k-means runs on the distinct colours weighted by
    their pixel counts, which minimises exactly the same objective as k-means on every pixel,
    and every pixel is then labelled through one look-up table. Otherwise (16-bit or float
    images, ``spatial`` > 0) it fits on a seeded random sample of ``sample_size`` pixels and
    assigns every pixel to its nearest centre. Restarts run on a small summary of the data and
    the best is refined on all of it (see :mod:`imgclust.cluster.summary`).

    With ``superpixels``, scikit-image's SLIC first cuts the image into about that many
    superpixels; k-means runs on their mean colours weighted by their sizes, and every
    superpixel takes its cluster: segments that follow regions rather than single pixels.

    Parameters
    ----------
    image : path or (H, W[, C]) ndarray
        A file Pillow reads, or an array: grey, grey+alpha, RGB or RGBA; uint8, uint16, other
        integers (scaled by their maximum) or floats in [0, 1]. The caller's array is not changed.
    n_clusters : int, default=8
        Number of colours K.
    color_space : {"lab", "rgb", "hsv"}, default="lab"
        Space in which distances are measured (see :mod:`imgclust.pixels.colorspace`).
    init : {"k-means++", "random"}, default="k-means++"
        Seeding of each restart.
    n_init : int, default=8
        Restarts (each on a summary of the colours; see :mod:`imgclust.cluster.summary`); the
        one with the lowest inertia is kept.
    max_iter : int, default=300
        Most Lloyd iterations per run.
    tol : float, default=1e-4
        Relative tolerance on the movement of the centres, as in scikit-learn: a run stops
        when the summed squared movement of the centres is at most ``tol`` times the mean
        variance of the features.
    epsilon : float or None, default=None
        OpenCV's stop rule (``TERM_CRITERIA_EPS``) in place of ``tol``: a run stops when no
        centre moves more than ``epsilon``, in the units of ``color_space``.
    random_state : int or None, default=None
        Seed; the same seed gives the same result. ``None`` draws one, reported in the result.
    spatial : float, default=0
        Weight of the pixel coordinates as two extra features, for spatially coherent segments.
        Coordinates are divided by the longer side and multiplied by ``spatial`` times the span
        of the colour space (255 for RGB, 100 for Lab and HSV).
    mask : (H, W) bool ndarray, optional
        Only pixels where it is True are clustered. Pixels with alpha 0 and non-finite
        values are always excluded.
    sample_size : int, default=500000
        Pixels to fit on when the distinct-colour route does not apply.
    max_pixels : int or None
        Refuse image files larger than this many pixels.
    superpixels : int or None, default=None
        About how many SLIC superpixels to cluster instead of pixels (see
        :func:`imgclust.pixels.superpixels.slic_superpixels`).
    compactness : float, default=10
        SLIC's balance of colour and space (higher: squarer superpixels).
    superpixel_side : int or None, default=1024
        Longer side of the reduced image SLIC runs on; ``None`` runs it on every pixel (about
        25 times slower on a 12-megapixel photo).

    Returns
    -------
    Segmentation

    Raises
    ------
    InvalidParameterError
        Bad parameters, an empty mask, or more clusters than distinct colours.
    ImageReadError
        ``image`` is a path that cannot be read as an image.

    Examples
    --------
    >>> import numpy as np
    >>> from imgclust import segment
    >>> img = np.zeros((4, 4, 3), dtype=np.uint8)
    >>> img[:, 2:] = (255, 0, 0)
    >>> seg = segment(img, n_clusters=2, color_space="rgb", random_state=0)
    >>> sorted(seg.palette.tolist())
    [[0, 0, 0], [255, 0, 0]]
    >>> seg.fractions.tolist()
    [0.5, 0.5]
    """
    space = check_color_space(color_space)
    _check_params(n_clusters, n_init, max_iter, tol, epsilon, spatial, init)
    _check_superpixel_params(superpixels, compactness, superpixel_side, spatial)
    seed = _resolve_seed(random_state)
    prepared = prepare_image(image, mask, max_pixels=max_pixels)
    n_clusters = int(n_clusters)
    if n_clusters > prepared.n_included:
        raise InvalidParameterError(
            f"n_clusters={n_clusters} is more than the {prepared.n_included} pixels to cluster; "
            "choose a smaller K"
        )
    params = dict(
        n_clusters=n_clusters,
        color_space=space,
        init=init,
        n_init=int(n_init),
        max_iter=int(max_iter),
        tol=float(tol),
        epsilon=None if epsilon is None else float(epsilon),
        random_state=seed,
        spatial=float(spatial),
        sample_size=int(sample_size),
    )
    fit_options = {
        key: params[key] for key in ("init", "n_init", "max_iter", "tol", "epsilon", "random_state")
    }
    if superpixels is not None:
        params.update(
            superpixels=int(superpixels),
            compactness=float(compactness),
            superpixel_side=None if superpixel_side is None else int(superpixel_side),
        )
        slic_options = dict(
            n_segments=params["superpixels"],
            compactness=params["compactness"],
            max_side=params["superpixel_side"],
        )
        result = _segment_superpixels(prepared, n_clusters, space, slic_options, fit_options)
    elif prepared.rgb.dtype == np.uint8 and spatial == 0:
        result = _segment_distinct(prepared, n_clusters, space, fit_options)
    else:
        result = _segment_sampled(
            prepared, n_clusters, space, float(spatial), int(sample_size), fit_options
        )
    return Segmentation(**result, color_space=space, random_state=seed, params=params)


def _too_many_clusters(n_clusters: int, n_distinct: int) -> InvalidParameterError:
    return InvalidParameterError(
        f"n_clusters={n_clusters} is more than the {n_distinct} distinct colours in the image; "
        f"choose K <= {n_distinct}"
    )


def _segment_distinct(
    prepared: PreparedImage, n_clusters: int, space: str, fit_options: dict
) -> dict:
    height, width = prepared.shape
    pixels = prepared.rgb.reshape(-1, 3)
    include = None if prepared.include is None else prepared.include.reshape(-1)
    distinct = distinct_colours(pixels, include)
    if n_clusters > len(distinct):
        raise _too_many_clusters(n_clusters, len(distinct))
    features = rgb_to_features(distinct.colors, space)
    km = fit_with_summary(features, distinct.counts.astype(np.float64), n_clusters, **fit_options)
    colour_labels = km.labels
    counts = np.bincount(colour_labels, weights=distinct.counts, minlength=n_clusters)
    palette = _mean_colours(
        distinct.colors.astype(np.float64), colour_labels, distinct.counts, counts
    )
    label_map = distinct.lookup(pixels, colour_labels, include, dtype=label_dtype(n_clusters))
    return dict(
        label_map=label_map.reshape(height, width),
        palette=palette,
        counts=counts.astype(np.int64),
        centers=km.centers,
        inertia=float(km.inertia),
        method="distinct-colours",
        n_distinct=len(distinct),
        **_fit_facts(km, len(distinct)),
    )


def _segment_superpixels(
    prepared: PreparedImage, n_clusters: int, space: str, slic_options: dict, fit_options: dict
) -> dict:
    superpixel_map = slic_superpixels(prepared.rgb, include=prepared.include, **slic_options)
    stats = superpixel_stats(prepared.rgb, superpixel_map, space)
    n_superpixels = stats.sizes.shape[0]
    n_distinct = np.unique(stats.means, axis=0).shape[0]
    if n_clusters > n_distinct:
        raise InvalidParameterError(
            f"n_clusters={n_clusters} is more than the {n_distinct} superpixels of distinct "
            f"colour ({n_superpixels} were made); ask for more superpixels or a smaller K"
        )
    km = fit_with_summary(stats.means, stats.sizes, n_clusters, **fit_options)
    dtype = label_dtype(n_clusters)
    table = np.full(n_superpixels + 1, np.iinfo(dtype).max, dtype=dtype)  # -1: last entry
    table[:n_superpixels] = km.labels
    label_map = table[superpixel_map]
    counts = np.bincount(km.labels, weights=stats.sizes, minlength=n_clusters)
    sums = np.column_stack(
        [
            *(
                np.bincount(km.labels, weights=stats.rgb_sums[:, c], minlength=n_clusters)
                for c in range(3)
            ),
            counts,
        ]
    )
    return dict(
        label_map=label_map,
        palette=_mean_colours_from_sums(sums, prepared.rgb.dtype),
        counts=counts.astype(np.int64),
        centers=km.centers,
        inertia=stats.scatter + float(km.inertia),
        method="superpixels",
        n_distinct=None,
        superpixel_map=superpixel_map,
        **_fit_facts(km, n_superpixels),
    )


def _fit_facts(km, n_fit: int) -> dict:
    return dict(
        n_iter=int(km.n_iter),
        n_fit=int(n_fit),
        summary_size=int(km.summary_size),
        summary_iter=int(km.summary_iter),
    )


def _mean_colours(
    colours: np.ndarray, labels: np.ndarray, weights, totals: np.ndarray
) -> np.ndarray:
    """Weighted mean colour per cluster, rounded to uint8 (black for an empty cluster)."""
    k = totals.shape[0]
    sums = np.stack(
        [np.bincount(labels, weights=weights * colours[:, c], minlength=k) for c in range(3)],
        axis=1,
    )
    means = np.divide(sums, totals[:, None], out=np.zeros_like(sums), where=totals[:, None] > 0)
    return np.clip(np.rint(means), 0, 255).astype(np.uint8)


def _pixel_features(
    rgb_chunk: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    space: str,
    spatial: float,
    longer_side: int,
) -> np.ndarray:
    features = rgb_to_features(rgb_chunk, space)
    if spatial == 0:
        return features
    scale = np.float32(spatial * space_range(space) / longer_side)
    coords = np.stack([rows, cols], axis=1).astype(np.float32) * scale
    return np.ascontiguousarray(np.hstack([features, coords]))


def _segment_sampled(
    prepared: PreparedImage,
    n_clusters: int,
    space: str,
    spatial: float,
    sample_size: int,
    fit_options: dict,
) -> dict:
    height, width = prepared.shape
    flat = prepared.rgb.reshape(-1, 3)
    candidates = (
        np.arange(flat.shape[0])
        if prepared.include is None
        else np.flatnonzero(prepared.include.reshape(-1))
    )
    rng = np.random.default_rng(fit_options["random_state"])
    if candidates.size > sample_size:
        candidates = np.sort(rng.choice(candidates, size=sample_size, replace=False))
    longer = max(height, width)
    sample = _pixel_features(
        flat[candidates], candidates // width, candidates % width, space, spatial, longer
    )
    n_distinct_sample = np.unique(sample, axis=0).shape[0]
    if n_clusters > n_distinct_sample:
        raise _too_many_clusters(n_clusters, n_distinct_sample)
    km = fit_with_summary(sample, np.ones(sample.shape[0]), n_clusters, **fit_options)
    labels, inertia, sums = _assign_all(
        km, flat, prepared.include, space, spatial, width, longer, n_clusters
    )
    counts = sums[:, 3]
    palette = _mean_colours_from_sums(sums, prepared.rgb.dtype)
    label_map = labels.astype(label_dtype(n_clusters))  # -1 wraps to the type's maximum
    return dict(
        label_map=label_map.reshape(height, width),
        palette=palette,
        counts=counts.astype(np.int64),
        centers=km.centers,
        inertia=inertia,
        method="sample",
        n_distinct=None,
        **_fit_facts(km, sample.shape[0]),
    )


def _assign_all(km, flat, include, space, spatial, width, longer, n_clusters):
    """Label every pixel in chunks; return labels, inertia, per-cluster RGB sums and counts."""
    include_flat = None if include is None else include.reshape(-1)
    labels = np.full(flat.shape[0], -1, dtype=np.int32)
    sums = np.zeros((n_clusters, 4))
    inertia = 0.0
    for start in range(0, flat.shape[0], _CHUNK):
        index = np.arange(start, min(start + _CHUNK, flat.shape[0]))
        if include_flat is not None:
            index = index[include_flat[index]]
            if index.size == 0:
                continue
        features = _pixel_features(
            flat[index], index // width, index % width, space, spatial, longer
        )
        chunk_labels, min_dist = nearest(features, km.centers)
        labels[index] = chunk_labels
        inertia += float(min_dist.sum())
        colours = flat[index].astype(np.float64)
        for c in range(3):
            sums[:, c] += np.bincount(chunk_labels, weights=colours[:, c], minlength=n_clusters)
        sums[:, 3] += np.bincount(chunk_labels, minlength=n_clusters)
    return labels, inertia, sums


def _mean_colours_from_sums(sums: np.ndarray, dtype) -> np.ndarray:
    counts = sums[:, 3:4]
    means = np.divide(sums[:, :3], counts, out=np.zeros_like(sums[:, :3]), where=counts > 0)
    if dtype != np.uint8:
        means = means * 255.0
    return np.clip(np.rint(means), 0, 255).astype(np.uint8)
