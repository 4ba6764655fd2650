"""Choosing K for the colour segmentation of one image."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import numpy as np

from imgclust.cluster.choose_k import KSweep, sweep_scores
from imgclust.errors import InvalidParameterError
from imgclust.io.images import DEFAULT_MAX_PIXELS
from imgclust.pixels.colorspace import check_color_space, rgb_to_features
from imgclust.pixels.distinct import distinct_colours
from imgclust.pixels.segment import prepare_image

__all__ = ["choose_k"]

DEFAULT_SILHOUETTE_SAMPLE = 4000


def _colour_set(prepared, space: str, rng: np.random.Generator, sample_size: int):
    """Features, weights and distinct count to sweep on: distinct colours (8-bit) or a sample."""
    flat = prepared.rgb.reshape(-1, 3)
    include = None if prepared.include is None else prepared.include.reshape(-1)
    if flat.dtype == np.uint8:
        distinct = distinct_colours(flat, include)
        features = rgb_to_features(distinct.colors, space)
        return features, distinct.counts.astype(np.float64), len(distinct)
    index = np.arange(flat.shape[0]) if include is None else np.flatnonzero(include)
    if index.size > sample_size:
        index = np.sort(rng.choice(index, size=sample_size, replace=False))
    features = rgb_to_features(flat[index], space)
    return features, np.ones(index.size), np.unique(features, axis=0).shape[0]


def choose_k(
    image: str | os.PathLike | np.ndarray,
    k_values: Iterable[int] = range(2, 17),
    *,
    color_space: str = "lab",
    n_init: int = 4,
    random_state: int = 0,
    mask: np.ndarray | None = None,
    silhouette_sample: int = DEFAULT_SILHOUETTE_SAMPLE,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    progress: Callable[[int], None] | None = None,
) -> KSweep:
    """Score each K for the colour segmentation of an image and pick one.

    For each K: the within-cluster sum of squares over all pixels (the elbow curve, exact for
    8-bit images through their distinct colours) and the mean silhouette of a seeded sample of
    ``silhouette_sample`` pixels. K is picked at the knee of the inertia curve (Kneedle); when
    the curve has no knee, the K with the best silhouette is taken.

    Parameters
    ----------
    image : path or (H, W[, C]) ndarray
        As for :func:`imgclust.segment`.
    k_values : iterable of int, default=range(2, 17)
        Values of K to try (at least three for a knee).
    color_space, n_init, random_state, mask, max_pixels
        As for :func:`imgclust.segment`.
    silhouette_sample : int, default=4000
        Pixels drawn (weighted by colour counts) to compute the silhouette on.
    progress : callable, optional
        Called with each K once it is done.

    Returns
    -------
    KSweep
    """
    space = check_color_space(color_space)
    ks = sorted({int(k) for k in k_values})
    if not ks or ks[0] < 1:
        raise InvalidParameterError(f"k_values={ks} must hold integers >= 1")
    prepared = prepare_image(image, mask, max_pixels=max_pixels)
    rng = np.random.default_rng(random_state)
    features, weights, n_distinct = _colour_set(prepared, space, rng, 500_000)
    if ks[-1] > n_distinct:
        raise InvalidParameterError(
            f"K={ks[-1]} is more than the {n_distinct} distinct colours in the image; "
            f"try K up to {n_distinct}"
        )
    probabilities = weights / weights.sum()
    sample = rng.choice(features.shape[0], size=silhouette_sample, p=probabilities)
    return sweep_scores(
        features,
        weights,
        ks,
        sample=sample,
        n_init=n_init,
        random_state=random_state,
        progress=progress,
    )
