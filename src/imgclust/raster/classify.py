"""Unsupervised land-cover classes of a raster, block by block, georeferencing kept.

Two passes, so memory stays bounded whatever the scene size:

1. read a seeded spread of the file's own windows (an eighth of them at least), draw a seeded
   sample of their valid pixels (:mod:`imgclust.raster.sampling`), measure the feature
   scaling on it and fit k-means on it (restarts on a subsample, the best one refined on the
   whole sample);
2. read the scene in strips of whole rows (about four million pixels), one strip per core at
   a time, give every valid pixel the class of its nearest centre, write the strip into
   ``classes.tif``, and add it to the class statistics and the thumbnails.

Classes are numbered by the mean of their centre over the scaled band features, darkest
first: code 1 is the class with the lowest (standardised) reflectance, code K the highest.
Code 0 is nodata.
"""

from __future__ import annotations

import bisect
import csv
import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from imgclust import _native
from imgclust._progress import ProgressFactory, no_progress
from imgclust.cluster.choose_k import KSweep, sweep_scores
from imgclust.cluster.engine import KMeansFit, fit_kmeans
from imgclust.cluster.summary import fit_with_summary
from imgclust.distributed import dask_client, describe_cluster, map_in_order
from imgclust.errors import InvalidParameterError
from imgclust.io.outputs import (
    StagedOutputDir,
    check_output_dir,
    json_text,
    output_names,
    record_output,
)
from imgclust.raster import gis
from imgclust.raster._rasterio import GDAL_OPTIONS, gdal_writes, rasterio
from imgclust.raster.features import FeatureSpec, SpectralIndex, parse_index
from imgclust.raster.model import RasterModel, default_colors, parse_colors, parse_names
from imgclust.raster.products import open_product
from imgclust.raster.sampling import PixelSampler
from imgclust.raster.stack import BandStack, Block, MaskSpec, parse_band_list, parse_mask

__all__ = ["CLASSIFY_OUTPUTS", "RasterClassification", "classify_raster"]

#: What ``classify`` may write at the top of its output folder.
CLASSIFY_OUTPUTS = (
    "classes.tif", "classes.tif.aux.xml", "classes.qml", "classes.json", "classes.csv",
    "quicklook.png", "classes.png", "model.json", "choose_k.csv", "choose_k.png", "report.html",
)  # fmt: skip
#: The values of K ``n_clusters="auto"`` tries by default.
DEFAULT_K_VALUES = tuple(range(2, 13))
_SWEEP_SAMPLE = 100_000

#: Distance terms (pixels x features x K) of the fitting sample from which k-means refines it on
#: all threads. Below (a million pixels, 7 bands, K up to 38), one thread: 20 iterations on
#: 1M x 7 x 6 took 0.66-0.69 s and as many CPU s, against 0.41 s and 0.80 CPU s on two
#: threads, which need numba imported and its threads started first (0.97 s in a fresh
#: process; the other raster loops are compiled ahead of time).
PARALLEL_FIT_MIN_TERMS = 1 << 28
#: Sampled pixels of the coarse k-means step (see _kmeans).
COARSE_SAMPLE = 250_000
#: Partial class sums per strip, by pixel column modulo this (see raster/_kernels.py).
STAT_LANES = 4
DEFAULT_SAMPLE_SIZE = 1_000_000
DEFAULT_BLOCK_PIXELS = 4 << 20
THUMBNAIL_SIDE = 1024
TILE = 512
SMALL_TILE = 256


@dataclass
class RasterClassification:
    """What :func:`classify_raster` wrote, and its summary (the content of ``classes.json``)."""

    model: RasterModel
    summary: dict
    output: Path
    files: list[str] = field(default_factory=list)


# -- statistics and thumbnails, accumulated strip by strip ---------------------------------


class _ClassStats:
    """Per class: pixel count, and sums of the features (centred on the model's mean)."""

    def __init__(self, n_classes: int, n_features: int, shift: np.ndarray) -> None:
        self.counts = np.zeros(n_classes + 1, dtype=np.int64)
        self.sums = np.zeros((n_classes + 1, n_features))
        self.squares = np.zeros((n_classes + 1, n_features))
        # the kernel centres float32 features on float32(mean)
        self.shift = np.asarray(shift, dtype=np.float32).astype(np.float64)

    @staticmethod
    def buffers(n_classes: int, n_features: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Zeroed partial sums, squares and counts of one strip (by lane, see the kernel)."""
        lanes = STAT_LANES
        return (
            np.zeros((lanes, n_classes + 1, n_features)),
            np.zeros((lanes, n_classes + 1, n_features)),
            np.zeros((lanes, n_classes + 1), dtype=np.int64),
        )

    def add(self, sums: np.ndarray, squares: np.ndarray, counts: np.ndarray) -> None:
        for lane in range(counts.shape[0]):  # in order: the same sums whatever the threads
            self.sums += sums[lane]
            self.squares += squares[lane]
            self.counts += counts[lane]

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        n = np.maximum(self.counts[1:], 1)[:, None]
        mean = self.sums[1:] / n
        var = np.maximum(self.squares[1:] / n - mean * mean, 0.0)
        return mean + self.shift, np.sqrt(var)


class _Thumbnails:
    """Every ``stride``-th row and column of the quicklook bands and of the class codes."""

    def __init__(self, width: int, height: int, n_bands: int) -> None:
        self.stride = max(1, math.ceil(max(width, height) / THUMBNAIL_SIDE))
        rows, cols = -(-height // self.stride), -(-width // self.stride)
        self.bands = np.zeros((n_bands, rows, cols), dtype=np.float32)
        self.valid = np.zeros((rows, cols), dtype=bool)
        self.codes = np.zeros((rows, cols), dtype=np.uint16)

    def put(self, piece: tuple | None) -> None:
        """Place a strip's rows on the thumbnails (``piece`` from :func:`_thumbnail_rows`)."""
        if piece is None:
            return
        target, bands, valid, codes = piece
        self.bands[:, target] = bands
        self.valid[target] = valid
        self.codes[target] = codes


def _thumbnail_rows(
    row: int, stride: int, data: np.ndarray, bands: list[int], valid: np.ndarray, codes
) -> tuple | None:
    """The rows and columns of a strip that fall on the thumbnail grid, or None."""
    local = np.arange((-row) % stride, valid.shape[0], stride)
    if local.size == 0:
        return None
    target = (row + local) // stride
    picked = data[:, local][bands][..., ::stride]
    return target, picked, valid[local, ::stride], codes[local, ::stride]


# -- the passes ----------------------------------------------------------------------------


#: The sample is drawn from at least this share of the scene's windows (see _draw_sample).
SAMPLE_WINDOW_SHARE = 1 / 8
#: ... and from windows holding at least this many valid pixels per pixel sampled.
SAMPLE_OVERDRAW = 2
#: Pixels a sampling window holds at least (whole blocks of the file; see sample_windows).
SAMPLE_WINDOW_PIXELS = 1 << 16
#: Bytes of sampling windows kept in memory for the classifying pass, which then does not
#: decompress them again (see _draw_sample). An eighth of a 45.7 MP 7-band uint16 scene is
#: 86 MB.
KEPT_WINDOW_BYTES = 192 << 20


def window_order(n_windows: int, n_first: int, seed: int) -> np.ndarray:
    """A seeded order of ``n_windows`` windows (in raster order) whose first ``n_first`` are
    spread over the scene: one drawn from each of ``n_first`` runs of consecutive windows,
    then the others in random order."""
    rng = np.random.default_rng(seed)
    edges = np.linspace(0, n_windows, n_first + 1).astype(np.int64)
    first = rng.integers(edges[:-1], edges[1:])
    rest = np.setdiff1d(np.arange(n_windows), first)
    return np.concatenate([first, rng.permutation(rest)]).astype(np.int64)


def _draw_sample(
    stack: BandStack,
    spec: FeatureSpec,
    size: int,
    seed: int,
    progress,
    client=None,
    keep_bytes: int = 0,
) -> tuple[np.ndarray, int, list[Block]]:
    """The sampled pixels' values ``(n, len(read_bands))``, the number of valid pixels among
    those read, and the windows read, up to ``keep_bytes`` of them (bands in their own type),
    for the classifying pass.

    Only part of the scene is decompressed. The scene is cut along its file's own blocks
    (:meth:`BandStack.sample_windows`); a seeded choice of windows spread over the whole scene
    (one from each run of consecutive windows) is read: at least ``SAMPLE_WINDOW_SHARE`` of
    them, and enough to hold ``SAMPLE_OVERDRAW`` times ``size`` pixels. Where they hold fewer
    valid pixels than that (a scene mostly nodata), more windows are read, in a seeded random
    order, until they do or the scene is read whole. The sample is the ``size`` valid pixels
    read with the smallest keys (:class:`PixelSampler`): the same pixels whatever the strips
    of the classifying pass and on a Dask cluster.
    """
    windows = stack.sample_windows(SAMPLE_WINDOW_PIXELS)
    n_pixels = stack.width * stack.height
    share = max(SAMPLE_WINDOW_SHARE, SAMPLE_OVERDRAW * size / n_pixels)
    n_first = min(len(windows), math.ceil(share * len(windows)))
    order = window_order(len(windows), n_first, seed)
    # candidates only under a bar that leaves about twice the sample from the first windows
    first_pixels = sum(windows[i][2] * windows[i][3] for i in order[:n_first])
    arguments = (size, stack.width, seed, first_pixels, 2.0)
    sampler = PixelSampler(*arguments)
    keep = _windows_to_keep(stack, spec.read_bands, [windows[i] for i in order], keep_bytes)
    kept: list[Block] = []
    wanted = min(SAMPLE_OVERDRAW * size, n_pixels)
    read, label = 0, "sampling valid pixels"
    while read < len(order) and sampler.n_valid < wanted:
        batch = [windows[i] for i in order[read : read + n_first]]
        read += len(batch)
        with progress(label, len(batch)) as advance:
            parts = _sample_parts(stack, spec.read_bands, batch, arguments, client, keep)
            for held, block in parts:
                sampler.merge(*held)
                if block is not None:
                    kept.append(block)
                advance()
        label = "sampling more windows (much of the scene is nodata)"
    if not sampler.complete:  # too few valid pixels under the bar: every one is a candidate
        arguments = (size, stack.width, seed)
        sampler = PixelSampler(*arguments)
        batch = [windows[i] for i in order[:read]]
        with progress("sampling valid pixels (again, without a bar)", len(batch)) as advance:
            for held, _ in _sample_parts(stack, spec.read_bands, batch, arguments, client):
                sampler.merge(*held)
                advance()
    return sampler.result()[1], sampler.n_valid, kept


def _windows_to_keep(stack: BandStack, bands: list[int], windows: list, budget: int) -> frozenset:
    """The first of ``windows`` whose blocks (``bands`` in their own type, and validity) fit
    in ``budget`` bytes."""
    pixel_bytes = len(bands) * stack.read_dtype(bands).itemsize + 1
    keep = []
    for window in windows:
        budget -= window[2] * window[3] * pixel_bytes
        if budget < 0:
            break
        keep.append(window)
    return frozenset(keep)


def _sample_parts(
    stack: BandStack,
    bands: list[int],
    windows: list,
    arguments: tuple,
    client,
    keep: frozenset = frozenset(),
):
    """For each window, in order: its sample candidates (``PixelSampler.held``, from samplers
    made with ``arguments``), and its block if it is one to ``keep`` (else None)."""
    candidates = partial(_window_candidates, bands=bands, sampler=arguments, keep=keep)
    return _over_windows(stack, candidates, windows, client)


def _window_candidates(
    stack: BandStack,
    window: tuple,
    *,
    bands: list[int],
    sampler: tuple,
    keep: frozenset = frozenset(),
    buffers=None,
) -> tuple[tuple, Block | None]:
    """The sample candidates of one window ``(row, col, n_rows, n_cols)``, and its block if
    it is in ``keep``."""
    row, col, n_rows, n_cols = window
    kept = window in keep
    buffer = None if kept else _thread_buffer(buffers, stack, bands, n_rows * n_cols)
    block = stack.read(bands, row, n_rows, col, n_cols, as_float=False, buffer=buffer)
    part = PixelSampler(*sampler)
    part.add(row, block.data, block.valid, col)
    return part.held(), block if kept else None


def _over_windows(stack: BandStack, function, windows: list, client):
    """``function(stack, window, buffers=...)`` for each window, in order: on this machine's
    cores (:meth:`BandStack.map_windows`, each thread reading into its own buffer), or on the
    Dask cluster of ``client``."""
    if client is None:
        return stack.map_windows(partial(function, buffers=threading.local()), windows)
    return map_in_order(client, _on_worker, windows, stack=stack.reopen_arguments(), task=function)


def _on_worker(window: tuple, *, stack: dict, task):
    """On a Dask worker: open the stack (``BandStack.reopen_arguments``), run
    ``task(stack, window)``."""
    with rasterio().Env(**GDAL_OPTIONS), BandStack(**stack) as opened:
        return task(opened, window)


def _thread_buffer(buffers, stack: BandStack, bands: list[int], pixels: int):
    """This thread's flat buffer (in ``buffers``, a ``threading.local``; None without one)
    for ``pixels`` pixels of ``bands`` in their own type, grown when too small."""
    if buffers is None:
        return None
    size, dtype = len(bands) * pixels, stack.read_dtype(bands)
    buffer = getattr(buffers, "data", None)
    if buffer is None or buffer.size < size or buffer.dtype != dtype:
        buffer = buffers.data = np.empty(size, dtype=dtype)
    return buffer


def _sample_features(spec: FeatureSpec, values: np.ndarray, n_valid: int) -> np.ndarray:
    """The scaled features of the sample (the scaling is measured on it, in ``spec``)."""
    if n_valid == 0:
        raise InvalidParameterError(
            "the scene is all nodata: no valid pixel to classify (check --nodata and the bands)"
        )
    raw = spec.raw_features(values)
    spec.fit_scaling(raw)
    return spec.transform(raw)


def _choose_k(X: np.ndarray, k_values, random_state: int, n_init: int, progress) -> KSweep:
    """The K sweep of ``n_clusters="auto"`` on the fitted sample (at most 100,000 of its
    pixels, seeded): the same rule and figure as ``segment -k auto`` and ``choose-k`` (the
    knee of the inertia curve, else the best silhouette of a seeded 4,000 of them)."""
    ks = sorted({int(k) for k in k_values})
    if not ks or ks[0] < 1 or ks[-1] > X.shape[0]:
        raise InvalidParameterError(
            f"K values {ks} must lie between 1 and the {X.shape[0]} pixels sampled"
        )
    rng = np.random.default_rng(random_state)
    if X.shape[0] > _SWEEP_SAMPLE:  # the curves' shape, at a tenth of the cost
        X = X[np.sort(rng.choice(X.shape[0], size=_SWEEP_SAMPLE, replace=False))]
    sample = rng.choice(X.shape[0], size=min(4000, X.shape[0]), replace=False)
    with progress(f"choosing K among {ks[0]}..{ks[-1]}", len(ks)) as advance:
        return sweep_scores(
            X,
            np.ones(X.shape[0]),
            ks,
            sample=sample,
            n_init=min(n_init, 4),
            random_state=random_state,
            progress=lambda k: advance(),
        )


def _fit(
    spec: FeatureSpec,
    X: np.ndarray,
    n_clusters: int,
    *,
    colors,
    names,
    random_state: int,
    n_init: int,
    max_iter: int,
    tol: float,
) -> RasterModel:
    if n_clusters > X.shape[0]:
        raise InvalidParameterError(
            f"K={n_clusters} is larger than the {X.shape[0]} valid pixels sampled; "
            "choose a smaller K"
        )
    n_distinct = np.unique(X, axis=0).shape[0] if X.shape[0] <= 100_000 else X.shape[0]
    if n_clusters > n_distinct:
        raise InvalidParameterError(
            f"K={n_clusters} is larger than the {n_distinct} distinct pixel values in the "
            "scene; choose a smaller K"
        )
    fit = _kmeans(X, n_clusters, n_init=n_init, max_iter=max_iter, tol=tol, seed=random_state)
    brightness = fit.centers[:, : len(spec.bands)].mean(axis=1) if spec.bands else fit.centers[:, 0]
    order = np.argsort(brightness, kind="stable")
    colours = default_colors(n_clusters) if colors is None else parse_colors(colors, n_clusters)
    return RasterModel(
        spec,
        fit.centers[order].astype(np.float64),
        colours,
        float(fit.inertia),
        int(fit.n_iter),
        int(random_state),
        int(X.shape[0]),
        None if names is None else parse_names(names, n_clusters),
    )


def _kmeans(X: np.ndarray, n_clusters: int, *, n_init, max_iter, tol, seed) -> KMeansFit:
    """k-means on the sample: restarts on a summary, refined on a seeded subsample of
    ``COARSE_SAMPLE`` pixels, then on the whole sample from there.

    On the 1M-pixel sample of the 45.7 MP bench scene (seeds 0-2) the coarse step cut the
    iterations on the whole sample from 5-21 to 2-9 and the fit from 0.8-1.4 CPU s to
    0.6-0.9, for an inertia as low (1066297-1066343 against 1066222-1066445).
    """
    parallel = X.size * n_clusters >= PARALLEL_FIT_MIN_TERMS
    weights = np.ones(X.shape[0])
    options = {"n_init": n_init, "max_iter": max_iter, "tol": tol, "random_state": seed}
    if X.shape[0] <= 2 * COARSE_SAMPLE:
        return fit_with_summary(X, weights, n_clusters, parallel=parallel, **options)
    coarse = np.random.default_rng(seed).choice(X.shape[0], COARSE_SAMPLE, replace=False)
    coarse.sort()
    start = fit_with_summary(X[coarse], weights[coarse], n_clusters, parallel=parallel, **options)
    return fit_kmeans(
        X, weights, n_clusters, init=start.centers, max_iter=max_iter, tol=tol, parallel=parallel
    )


def _output_profile(stack: BandStack, n_classes: int) -> dict:
    dtype = "uint8" if n_classes <= 255 else "uint16"
    # tiles of 512, or of 256 for a scene smaller than that (GDAL pads the last tiles)
    tile = TILE if min(stack.width, stack.height) >= TILE else SMALL_TILE
    profile = {
        "driver": "GTiff",
        "width": stack.width,
        "height": stack.height,
        "count": 1,
        "dtype": dtype,
        "nodata": 0,
        "crs": stack.crs,
        "transform": stack.transform,
        "compress": "deflate",
        "zlevel": 1,  # a seventh of level 6's time (45.7 MP: 0.23 s, 1.68 s), 14% more bytes
        "num_threads": "all_cpus",
        "bigtiff": "if_safer",
    }
    profile.update(tiled=True, blockxsize=tile, blockysize=tile)
    if not stack.georeferenced:  # the same pixel grid as the input, and no invented place
        del profile["crs"], profile["transform"]
    return profile


class _StripClassifier:
    """Classifies one strip: what it needs is small, so it travels to Dask workers whole."""

    def __init__(self, model: RasterModel, preview_bands: list[int], dtype: str, stride: int):
        spec = model.features
        self.read_bands = spec.read_bands + [b for b in preview_bands if b not in spec.read_bands]
        self.preview_rows = [self.read_bands.index(b) for b in preview_bands]
        position = {band: i for i, band in enumerate(self.read_bands)}
        self.index_a = np.array([position[i.a] for i in spec.indices], dtype=np.int64)
        self.index_b = np.array([position[i.b] for i in spec.indices], dtype=np.int64)
        self.n_bands = len(spec.bands)
        self.mean, self.scale = spec.mean, spec.scale
        self.centers = np.ascontiguousarray(model.centers, dtype=np.float32)
        self.n_classes, self.n_features = model.n_classes, spec.n_features
        self.dtype, self.stride = dtype, stride

    def __call__(self, block) -> tuple:
        """``(row, codes, sums, squares, counts, thumbnail rows)`` of ``block``."""
        codes = np.empty(block.shape, dtype=self.dtype)
        sums, squares, counts = _ClassStats.buffers(self.n_classes, self.n_features)
        _native.call(
            "classify_strip",
            block.data,
            block.valid,
            self.n_bands,
            self.index_a,
            self.index_b,
            self.mean,
            self.scale,
            self.centers,
            codes,
            sums,
            squares,
            counts,
        )
        thumb = _thumbnail_rows(
            block.row, self.stride, block.data, self.preview_rows, block.valid, codes
        )
        return block.row, codes, sums, squares, counts, thumb


def _classify_strip(
    stack: BandStack,
    strip: tuple[int, int],
    *,
    classifier: _StripClassifier,
    known: dict[int, list[Block]],
    buffers=None,
):
    """Read one strip of ``stack`` (into this thread's buffer, see :func:`_thread_buffer`;
    the blocks of ``known`` under the strip's first row are taken from memory, and dropped)
    and classify it."""
    buffer = _thread_buffer(buffers, stack, classifier.read_bands, strip[1] * stack.width)
    blocks = known.pop(strip[0], [])
    block = stack.read(classifier.read_bands, *strip, as_float=False, buffer=buffer, known=blocks)
    return classifier(block)


def _known_by_strip(blocks: list[Block], strips: list[tuple[int, int]]) -> dict[int, list[Block]]:
    """``blocks`` that lie within one strip, by the strip's first row."""
    firsts = [row for row, _ in strips]
    known: dict[int, list[Block]] = {}
    for block in blocks:
        index = bisect.bisect_right(firsts, block.row) - 1
        first, n_rows = strips[index]
        if block.row + block.shape[0] <= first + n_rows:
            known.setdefault(first, []).append(block)
    return known


def _classify_pass(
    stack: BandStack,
    model: RasterModel,
    preview_bands: list[int],
    path: Path,
    progress,
    client=None,
    known: list[Block] | None = None,
) -> tuple[_ClassStats, _Thumbnails]:
    """Classify every strip and write ``path``; ``known``: blocks read by the sampling, of
    the bands the pass reads (taken out of the list as they are used)."""
    rio = rasterio()
    stats = _ClassStats(model.n_classes, model.features.n_features, model.features.mean)
    thumbs = _Thumbnails(stack.width, stack.height, len(preview_bands))
    profile = _output_profile(stack, model.n_classes)
    classifier = _StripClassifier(model, preview_bands, profile["dtype"], thumbs.stride)
    strips = stack.windows(DEFAULT_BLOCK_PIXELS)
    by_strip = _known_by_strip(known or [], strips)
    if known:
        known.clear()  # each block is freed once its strip is classified
    task = partial(_classify_strip, classifier=classifier, known=by_strip)
    results = _over_windows(stack, task, strips, client)
    with rio.open(path, "w", **profile) as dst, progress("classifying", len(strips)) as advance:
        for row, codes, sums, squares, counts, thumb in results:
            stats.add(sums, squares, counts)  # in strip order: the same sums on a cluster
            dst.write(codes, 1, window=rio.windows.Window(0, row, stack.width, codes.shape[0]))
            thumbs.put(thumb)
            advance()
        dst.write_colormap(1, _colormap(model.colors))
        dst.set_band_description(1, "imgclust class")
        dst.update_tags(1, **gis.band_statistics(stats.counts, stack.width, stack.height))
    return stats, thumbs


def _colormap(colors) -> dict:
    table = {0: (0, 0, 0, 0)}
    table.update({i: (*c, 255) for i, c in enumerate(colors, start=1)})
    return table


# -- choices -------------------------------------------------------------------------------


def _preview_bands(stack: BandStack, rgb, bands: list[int] | None) -> tuple[list[int], str]:
    """Bands of the quicklook and how they were chosen: ``rgb``, else red/green/blue by
    colour interpretation, else by the bands' names, else the first three chosen, else the
    first three bands (or the first band, in grey)."""
    if rgb is not None:
        chosen = _band_numbers(stack, rgb)
        if len(chosen) not in (1, 3):
            raise InvalidParameterError("--rgb takes three bands (red,green,blue) or one (grey)")
        stack.check_bands(chosen)
        return chosen, "--rgb"
    colour = stack.colour_bands()
    if colour is not None:
        return colour, "the colour interpretation the file gives its bands"
    named = stack.named_colour_bands()
    if named is not None:
        return named
    if bands:
        chosen = bands[:3] if len(bands) >= 3 else bands[:1]
        return chosen, "the first bands chosen (no band says it is red, green or blue)"
    first = [1, 2, 3] if stack.count >= 3 else [1]
    return first, "the first bands (no band says it is red, green or blue; --rgb chooses)"


def _band_numbers(stack: BandStack, bands) -> list[int] | None:
    """Band numbers from numbers or names (``"B04,B03"``, ``"red,nir"``: a band's name, its
    description or its file's name, in any case)."""
    if bands is None:
        return None
    parts = bands.split(",") if isinstance(bands, str) else list(bands)
    parts = [str(p).strip() for p in parts if str(p).strip()]
    if all(p.isdigit() for p in parts):
        return parse_band_list(",".join(parts))
    lowered = [name.lower() for name in stack.names]
    unknown = [p for p in parts if not p.isdigit() and p.lower() not in lowered]
    if unknown:
        raise InvalidParameterError(
            f"no band is called {', '.join(unknown)}; the bands are: {', '.join(stack.names)}"
        )
    return [int(p) if p.isdigit() else lowered.index(p.lower()) + 1 for p in parts]


def _stack_arguments(sources, bands, nodata, resolution, masks, mask_scl):
    """How to open the stack (:class:`BandStack`'s arguments), and the Sentinel-2 product
    the sources are, if they are one."""
    masks = [m if isinstance(m, MaskSpec) else parse_mask(m) for m in masks]
    paths = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    product = open_product(paths[0]) if len(paths) == 1 else None
    if product is None:
        arguments = {"paths": paths, "nodata": nodata, "resolution": resolution, "masks": masks}
        return arguments, None
    wanted = None
    if bands is not None:
        wanted = [b.strip() for b in (bands.split(",") if isinstance(bands, str) else bands)]
    files, names, scl = product.inputs(wanted, mask_scl)
    arguments = {
        "paths": files,
        "nodata": 0 if nodata is None else nodata,  # Sentinel-2's no-data value
        "resolution": resolution,
        "masks": masks + scl,
        "names": names,
    }
    return arguments, product


def _reading(stack: BandStack, product, preview: list[int], reason: str) -> dict:
    """How the scene was read: the product, the grid and its resampling, the masks, and the
    quicklook's bands."""
    reading: dict = {
        "quicklook": {"bands": preview, "names": [stack.names[b - 1] for b in preview],
                      "chosen_by": reason},
    }  # fmt: skip
    if product is not None:
        reading["product"] = product.describe()
    if stack.georeferenced:
        reading["resolution"] = abs(stack.transform.a)
    if stack.resampling:
        reading["resampling"] = stack.resampling
    if stack.masks:
        reading["masks"] = [m.describe() for m in stack.masks]
    return reading


def _feature_spec(stack, bands, indices, scaling) -> FeatureSpec:
    chosen = _band_numbers(stack, bands) or list(range(1, stack.count + 1))
    parsed = [i if isinstance(i, SpectralIndex) else parse_index(i) for i in indices]
    spec = FeatureSpec(chosen, parsed, scaling)
    stack.check_bands(spec.read_bands)
    return spec


# -- the job -------------------------------------------------------------------------------


def classify_raster(
    sources: str | os.PathLike | Sequence[str | os.PathLike],
    output: str | os.PathLike,
    n_clusters: int | str = 6,
    *,
    k_values: Sequence[int] = DEFAULT_K_VALUES,
    names: str | Sequence[str] | None = None,
    cog: bool = False,
    bands: str | Sequence[int] | None = None,
    indices: Sequence[str | SpectralIndex] = (),
    scaling: str = "standard",
    nodata: float | None = None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    random_state: int = 0,
    n_init: int = 8,
    max_iter: int = 300,
    tol: float = 1e-4,
    model: str | os.PathLike | RasterModel | None = None,
    colors: str | Sequence[str] | None = None,
    rgb: str | Sequence[int] | None = None,
    stretch: tuple[float, float] = (2.0, 98.0),
    resolution: float | None = None,
    masks: Sequence[str | MaskSpec] = (),
    mask_scl: bool = True,
    overwrite: bool = False,
    report: bool = True,
    progress: ProgressFactory = no_progress,
    scheduler=None,
) -> RasterClassification:
    """Classify a raster into ``n_clusters`` unsupervised classes and write the results.

    Parameters
    ----------
    sources : path or sequence of paths
        One multi-band raster, or one single-band file per band, stacked in the order given
        (anything GDAL reads: GeoTIFF, JP2, ...), or a Sentinel-2 product as downloaded (its
        ``.SAFE`` folder or ``.zip``). Files of one CRS and one extent at different
        resolutions are read on one grid (``resolution``).
    output : path
        Output folder; refused if it holds files, unless ``overwrite``.
    n_clusters : int or "auto", default=6
        Number of classes K (ignored with ``model``). ``"auto"`` sweeps ``k_values`` on the
        fitted sample and keeps the knee of the inertia curve (else the best silhouette),
        writing ``choose_k.csv`` and ``choose_k.png``.
    k_values : sequence of int, default=2..12
        The values of K tried by ``"auto"``.
    names : "water,forest,..." or list of str, optional
        Class names, code 1 first (default ``class 1``...); with ``model``, they replace the
        model's. Kept in ``model.json``, the attribute table, the QGIS style and the report.
    cog : bool, default=False
        Write ``classes.tif`` as a Cloud Optimized GeoTIFF (GDAL's COG driver).
    bands : "4,3,2", "B02,B03,B04" or list, optional
        Bands used as features: numbers, 1-based in the stack, or names (a product's band
        names, or the bands' descriptions or file names); default all (for a Sentinel-2
        product B02, B03, B04, B08, B11 and B12).
    indices : list of str or SpectralIndex
        Spectral indices added as features, e.g. ``"ndvi:nir=8,red=4"`` (see
        :mod:`imgclust.raster.features`).
    scaling : {"standard", "none"}, default="standard"
        Per-feature standardisation over the sampled valid pixels, or raw values.
    nodata : float, optional
        Overrides the files' nodata value. NaN and the dataset mask always exclude a pixel,
        and a pixel missing in any band is excluded.
    sample_size : int, default=1_000_000
        Valid pixels the model is fitted on: a seeded random sample of the valid pixels of a
        seeded spread of the file's own windows (at least an eighth of them; see
        ``_draw_sample``), so that sampling does not decompress the whole scene.
    random_state : int, default=0
        Seed of the sample and of k-means: the same seed gives the same classes.
    n_init, max_iter, tol
        As in :class:`imgclust.KMeans`.
    model : path or RasterModel, optional
        A ``model.json`` from an earlier run: apply its classes instead of fitting.
    colors : "c1,c2,..." or list, optional
        Class colours (any matplotlib colour); default tab10/tab20.
    rgb : "r,g,b" or list of int, optional
        Bands of the quicklook; default the bands marked red, green and blue, else those the
        band names say are (descriptions, Sentinel-2 and Landsat band names), else the first
        three of ``bands``, else bands 1-3; the summary says which and why.
    stretch : (low, high), default=(2, 98)
        Percentiles of the quicklook's contrast stretch.
    resolution : float, optional
        Pixel size of the grid the bands are classified on, in the CRS's units; default the
        files' own, or the finest of them. Coarser bands are resampled by cubic convolution
        onto a finer grid, finer ones averaged onto a coarser grid (said in the summary and
        ``model.json``).
    masks : list of "FILE:VALUES" or MaskSpec
        Quality bands whose marked pixels are left out, as ``scl.jp2:3,8,9`` (values) or
        ``QA_PIXEL.TIF:bits=1,3,4`` (any of these bits set, Landsat's quality band).
    mask_scl : bool, default=True
        With a Sentinel-2 Level-2A product, leave out what its scene classification marks as
        no data, saturated, cloud shadow, cloud or cirrus (:data:`~imgclust.raster.products.
        SCL_LEFT_OUT`).
    overwrite : bool
    report : bool, default=True
        Also write ``report.html``, a page with every figure and table.
    progress : callable
        Progress factory (see :mod:`imgclust._progress`).
    scheduler : str or distributed.Client, optional
        Read, sample and classify the strips on a Dask cluster: ``"tcp://host:8786"``,
        ``"local:N"`` or a client (see :mod:`imgclust.distributed`). The files must be
        readable by every worker at the same path. The result is the same as without.

    Returns
    -------
    RasterClassification
        The model and the summary written to ``classes.json``.
    """
    timings: dict[str, float] = {}
    outputs = output_names(
        CLASSIFY_OUTPUTS,
        report=report,
        without=() if n_clusters == "auto" and model is None else ("choose_k.csv", "choose_k.png"),
    )
    check_output_dir(output, overwrite=overwrite, names=outputs)
    _check_numbers(n_clusters, sample_size, stretch, model)
    if names is not None and model is None and n_clusters != "auto":
        parse_names(names, n_clusters)  # before any work
    sweep = None
    rio = rasterio()
    opening, product = _stack_arguments(sources, bands, nodata, resolution, masks, mask_scl)
    with (
        _single_threaded_blas(),
        rio.Env(**GDAL_OPTIONS),
        BandStack(**opening) as stack,
        dask_client(scheduler) as client,
    ):
        start = time.perf_counter()
        bands = None if product is not None else _band_numbers(stack, bands)
        preview, preview_reason = _preview_bands(stack, rgb, bands)
        kept: list[Block] = []
        if model is None:
            spec = _feature_spec(stack, bands, indices, scaling)
            # the sampled windows serve the classifying pass when it reads the same bands here
            # (on a Dask cluster they stay on the worker that read them)
            keep = client is None and set(preview) <= set(spec.read_bands)
            values, n_valid, kept = _draw_sample(
                stack,
                spec,
                sample_size,
                random_state,
                progress,
                client,
                keep_bytes=KEPT_WINDOW_BYTES if keep else 0,
            )
            X = _sample_features(spec, values, n_valid)
            timings["sample"] = time.perf_counter() - start
            if n_clusters == "auto":
                start = time.perf_counter()
                sweep = _choose_k(X, k_values, random_state, n_init, progress)
                n_clusters = sweep.best_k
                timings["choose_k"] = time.perf_counter() - start
            start = time.perf_counter()
            with progress(f"fitting {n_clusters} classes", 1) as advance:
                fitted = _fit(
                    spec,
                    X,
                    n_clusters,
                    colors=colors,
                    names=names,
                    random_state=random_state,
                    n_init=n_init,
                    max_iter=max_iter,
                    tol=tol,
                )
                advance()
            timings["fit"] = time.perf_counter() - start
        else:
            fitted = model if isinstance(model, RasterModel) else RasterModel.load(model)
            stack.check_bands(fitted.features.read_bands)
            if colors is not None:
                fitted.colors = parse_colors(colors, fitted.n_classes)
            if names is not None:
                fitted.names = parse_names(names, fitted.n_classes)
        staged = StagedOutputDir(output, overwrite=overwrite, names=outputs)
        with gdal_writes(output), staged as stage:
            start = time.perf_counter()
            written = stage.path / (".classes.striped.tif" if cog else "classes.tif")
            stats, thumbs = _classify_pass(
                stack, fitted, preview, written, progress, client, known=kept
            )
            timings["classify"] = time.perf_counter() - start
            if not cog:
                start = time.perf_counter()
                with progress("overviews", 1) as advance:
                    gis.build_overviews(written)
                    advance()
                timings["overviews"] = time.perf_counter() - start
            else:
                start = time.perf_counter()
                with progress("cloud optimized GeoTIFF", 1) as advance:
                    gis.write_cog(written, stage.path / "classes.tif")
                    written.unlink()
                    advance()
                timings["cog"] = time.perf_counter() - start
            if stats.counts[1:].sum() == 0:
                raise InvalidParameterError(
                    "the scene is all nodata: no valid pixel to classify (check --nodata)"
                )
            summary = _summary(stack, fitted, stats, sources, model is not None)
            summary.update(_reading(stack, product, preview, preview_reason))
            summary["cog"] = bool(cog)
            if sweep is not None:
                summary["chosen_k"] = {"k": sweep.best_k, "rule": sweep.rule}
            summary["timings"] = timings
            if client is not None:
                summary["dask"] = describe_cluster(client)
            with progress("writing outputs", 1) as advance:
                _write_outputs(stage.path, fitted, stats, thumbs, summary, stretch)
                if sweep is not None:
                    from imgclust.report.pixel_outputs import save_choose_k

                    save_choose_k(sweep, stage.path)
                if report:
                    from imgclust.report.raster_report import write_classify_report

                    write_classify_report(summary, stage.path, sweep=sweep)
                advance()
            files = sorted(p.name for p in stage.path.iterdir() if p.name[0] != ".")
    record_output(summary, output, report)
    return RasterClassification(fitted, summary, Path(output), files)


def _single_threaded_blas():
    """A context in which BLAS runs on the calling thread only.

    ``classify`` keeps every core busy with its own threads; its few BLAS calls (sums over
    the sample) are small, and OpenBLAS's threads would spin on the other cores after each
    one, for up to 0.1 s: 0.25 CPU s of a 45.7 MP run when NumPy was loaded before the
    ``imgclust`` command could set ``OPENBLAS_THREAD_TIMEOUT`` (a program calling the
    library).
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def _check_numbers(n_clusters, sample_size, stretch, model) -> None:
    whole = isinstance(n_clusters, (int, np.integer)) and n_clusters >= 1
    if model is None and not whole and n_clusters != "auto":
        raise InvalidParameterError(f"K={n_clusters} must be a whole number of at least 1 or auto")
    if sample_size < 1:
        raise InvalidParameterError(f"sample size {sample_size} must be at least 1")
    low, high = stretch
    if not 0 <= low < high <= 100:
        raise InvalidParameterError(
            f"stretch {low}-{high} must be two percentiles with 0 <= low < high <= 100"
        )


# -- outputs -------------------------------------------------------------------------------


def _summary(stack: BandStack, model: RasterModel, stats: _ClassStats, sources, applied) -> dict:
    mean, std = stats.mean_std()
    n_valid = int(stats.counts[1:].sum())
    names = [stack.names[b - 1] for b in model.features.bands] + [
        i.label for i in model.features.indices
    ]
    area_unit = _area_unit(stack)
    classes = []
    for i in range(model.n_classes):
        pixels = int(stats.counts[i + 1])
        area = pixels * stack.pixel_area
        entry = {
            "code": i + 1,
            "name": model.class_names[i],
            "color": "#{:02x}{:02x}{:02x}".format(*model.colors[i]),
            "pixels": pixels,
            "fraction": pixels / n_valid if n_valid else 0.0,
            "area": area,
            "area_unit": area_unit,
        }
        if stack.metres:
            entry["hectares"] = area / 10_000
        entry["mean"] = {n: float(v) for n, v in zip(names, mean[i], strict=True)}
        entry["std"] = {n: float(v) for n, v in zip(names, std[i], strict=True)}
        classes.append(entry)
    paths = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    return {
        "inputs": [str(p) for p in paths],
        "width": stack.width,
        "height": stack.height,
        "crs": stack.crs.to_string() if stack.crs else None,
        "georeferenced": stack.georeferenced,
        "transform": list(stack.transform)[:6] if stack.georeferenced else None,
        "pixel_area": stack.pixel_area,
        "n_classes": model.n_classes,
        "class_order": "by the mean of the centre over the scaled band features, lowest first",
        "valid_pixels": n_valid,
        "nodata_pixels": int(stack.width * stack.height - n_valid),
        "features": names,
        "scaling": model.features.scaling,
        "model_applied": bool(applied),
        "inertia": model.inertia,
        "n_iter": model.n_iter,
        "seed": model.random_state,
        "sample_size": model.sample_size,
        "classes": classes,
    }


def _area_unit(stack: BandStack) -> str:
    if stack.crs is None:
        return "pixels"
    if stack.metres:
        return "m2"
    unit = stack.crs.linear_units if stack.crs.is_projected else "degree"
    return f"{unit}2"


def _write_outputs(folder: Path, model, stats, thumbs, summary, stretch) -> None:
    from imgclust.report import raster_plots
    from imgclust.report.plots import FAST_PNG, RLE_PNG

    picture, undrawn = raster_plots.classes_figure(thumbs.codes, summary["classes"])
    if undrawn:
        summary.setdefault("warnings", []).append(
            "no font here has every character of "
            + ", ".join(repr(name) for name in undrawn)
            + ": the legend of classes.png shows them with boxes (the names are right in "
            "classes.tif, classes.qml, classes.csv and the report); install a font that has "
            "them, such as Noto (fonts-noto-cjk for Chinese, Japanese and Korean)"
        )
    reading = {
        k: summary[k] for k in ("product", "resolution", "resampling", "masks") if k in summary
    }
    model.save(folder / "model.json", reading)
    (folder / "classes.json").write_text(json_text(summary))
    _write_csv(folder / "classes.csv", summary)
    gis.write_attribute_table(folder / "classes.tif", summary["classes"])
    gis.write_qml(folder / "classes.qml", summary["classes"])
    quicklook = raster_plots.quicklook(thumbs.bands, thumbs.valid, stretch)
    quicklook.save(folder / "quicklook.png", **RLE_PNG)
    picture.save(folder / "classes.png", **FAST_PNG)


def _write_csv(path: Path, summary: dict) -> None:
    names = summary["features"]
    fields = ["code", "name", "color", "pixels", "fraction", "area", "area_unit"]
    if summary["classes"] and "hectares" in summary["classes"][0]:
        fields.append("hectares")
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(fields + [f"mean_{n}" for n in names] + [f"std_{n}" for n in names])
        for c in summary["classes"]:
            writer.writerow(
                [c[f] for f in fields]
                + [c["mean"][n] for n in names]
                + [c["std"][n] for n in names]
            )
