"""Whole one-image jobs: read, compute, write every output into a folder that appears whole.

These are what the ``segment``, ``choose-k`` and ``edges`` commands (and ``demo``) call. Each
checks the output folder before doing any work, writes into a staging folder, and returns the
summary it wrote. Modules that are slow to import (scikit-learn, scipy.ndimage) are imported
by the job that needs them, so that ``imgclust segment`` starts fast.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext

import numpy as np

from imgclust._progress import ProgressFactory, no_progress
from imgclust.io.images import DEFAULT_MAX_PIXELS, image_to_array, open_image
from imgclust.io.outputs import StagedOutputDir, check_output_dir, output_names, record_output
from imgclust.pixels.segment import prepare_image, segment
from imgclust.report import plots
from imgclust.report.pixel_outputs import (
    PREVIEW_SIDE,
    save_choose_k,
    save_edges,
    save_segmentation,
    save_superpixel_comparison,
)
from imgclust.report.pixel_report import (
    write_choose_k_report,
    write_edges_report,
    write_segment_report,
)

__all__ = ["run_choose_k", "run_edges", "run_segment"]

Step = Callable[[str], AbstractContextManager]

#: What each job may write at the top of its output folder (checked before any work).
SEGMENT_OUTPUTS = (
    "segmented.png", "labels.png", "indexed.png", "palette.png", "palette.json",
    "comparison.png", "colors3d.png", "choose_k.png", "choose_k.csv", "superpixels.png",
    "superpixels_vs_pixels.png", "report.html",
)  # fmt: skip
SUPERPIXEL_OUTPUTS = ("superpixels.png", "superpixels_vs_pixels.png")
CHOOSE_K_OUTPUTS = ("choose_k.png", "choose_k.csv", "report.html")
EDGES_OUTPUTS = (
    "edges.png", "edges_overlay.png", "edges_preview.png", "boundaries.png", "edges.json",
    "report.html",
)  # fmt: skip


def _no_progress(message: str) -> AbstractContextManager:
    return nullcontext()


def _source(image) -> str | None:
    return str(image) if isinstance(image, (str, os.PathLike)) else None


def run_segment(
    image: str | os.PathLike | np.ndarray,
    output: str | os.PathLike,
    *,
    n_clusters: int | str = 8,
    k_values: Sequence[int] = tuple(range(2, 17)),
    mask: np.ndarray | None = None,
    overwrite: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    report: bool = True,
    step: Step = _no_progress,
    scatter_space: str | None = None,
    **segment_options,
) -> dict:
    """Segment an image and write every output into ``output``.

    Parameters
    ----------
    image : path or ndarray
    output : path
        Output folder; refused if it holds files, unless ``overwrite``.
    n_clusters : int or "auto"
        ``"auto"`` sweeps ``k_values`` with :func:`imgclust.pixels.choose_k.choose_k` first,
        and also writes ``choose_k.png`` and ``choose_k.csv``.
    mask : (H, W) bool ndarray, optional
    report : bool, default=True
        Also write ``report.html``, a page with every figure and table.
    step : callable, optional
        Context manager factory that shows progress for a named step.
    scatter_space : {"rgb", "lab", "hsv"}, optional
        Space of the 3-D scatter ``colors3d.png`` (default: the clustering space).
    **segment_options
        Passed to :func:`imgclust.segment` (color_space, init, n_init, max_iter, tol,
        epsilon, random_state, spatial, sample_size, superpixels, compactness,
        superpixel_side). With ``superpixels``, plain pixel k-means also runs with the same
        options, for ``superpixels_vs_pixels.png`` and the comparison in ``palette.json``.

    Returns
    -------
    dict
        The content of ``palette.json`` plus ``output`` and ``timings``.
    """
    auto = n_clusters == "auto"
    with_superpixels = segment_options.get("superpixels") is not None
    without = (() if auto else CHOOSE_K_OUTPUTS) + (() if with_superpixels else SUPERPIXEL_OUTPUTS)
    names = output_names(SEGMENT_OUTPUTS, report=report, without=without)
    check_output_dir(output, overwrite=overwrite, names=names)
    timings: dict[str, float] = {}
    with step("reading the image"), _timed(timings, "read"):
        prepared, preview = _read_with_preview(image, mask, max_pixels)
    sweep = None
    if n_clusters == "auto":
        choosing = step(f"choosing K among {k_values[0]}..{k_values[-1]}")
        with choosing, _timed(timings, "choose_k"):
            sweep = _sweep_k(prepared, k_values, segment_options)
        n_clusters = sweep.best_k
    with step(f"clustering into {n_clusters} colours"), _timed(timings, "segment"):
        seg = segment(prepared.rgb, int(n_clusters), mask=prepared.include, **segment_options)
    plain = None
    extra = {}
    warnings = _option_warnings(segment_options)
    if warnings:
        extra["warnings"] = warnings
    if with_superpixels:
        with step("clustering the pixels for comparison"):
            plain, extra["superpixels"] = _compare_with_pixels(
                seg, prepared, timings, segment_options
            )
    staged = StagedOutputDir(output, overwrite=overwrite, names=names)
    with step("writing the outputs"), staged as stage:
        with _timed(timings, "write"):
            if sweep is not None:
                extra["chosen_k"] = {"k": sweep.best_k, "rule": sweep.rule}
                save_choose_k(sweep, stage.path)
            if plain is not None:
                save_superpixel_comparison(seg, plain, prepared, stage.path)
            summary = save_segmentation(
                seg,
                prepared,
                stage.path,
                source=_source(image),
                extra=extra,
                preview=preview,
                scatter_space=scatter_space,
            )
        if report:
            write_segment_report(summary, stage.path, sweep=sweep, timings=timings)
    return _finish(summary, output, report, timings=timings)


#: A --tol at least this large is most likely OpenCV's epsilon carried over.
LARGE_TOL = 0.1


def _option_warnings(segment_options: dict) -> list[str]:
    """Warnings about options that most likely do not mean what the user meant."""
    tol = segment_options.get("tol", 0.0)
    if segment_options.get("epsilon") is None and tol >= LARGE_TOL:
        return [
            f"tol={tol:g} is relative (scikit-learn's meaning: the centres' squared movement "
            "against the colours' variance) and stops k-means after a few iterations; for "
            f"OpenCV's absolute epsilon use epsilon={tol:g} (--epsilon) instead"
        ]
    return []


def _compare_with_pixels(seg, prepared, timings: dict[str, float], segment_options: dict):
    """Plain pixel k-means with the same options beside a superpixel segmentation: the run
    and the facts of both (seconds, inertia on every pixel, regions, boundary share)."""
    options = {
        key: value
        for key, value in segment_options.items()
        if key not in ("superpixels", "compactness", "superpixel_side")
    }
    options["random_state"] = seg.random_state
    with _timed(timings, "pixel_kmeans"):
        plain = segment(prepared.rgb, seg.n_clusters, mask=prepared.include, **options)
    with _timed(timings, "compare"):
        rows = _comparison_rows(seg, plain, timings)
    facts = {
        "requested": seg.params["superpixels"],
        "made": seg.n_fit,
        "compactness": seg.params["compactness"],
        "superpixel_side": seg.params["superpixel_side"],
        "comparison": rows,
    }
    return plain, facts


def _comparison_rows(seg, plain, timings: dict[str, float]) -> list[dict]:
    from imgclust.pixels.superpixels import coherence  # scikit-image: import when used

    rows = []
    for name, result, seconds in (
        ("superpixels", seg, timings["segment"]),
        ("pixels", plain, timings["pixel_kmeans"]),
    ):
        rows.append(
            {
                "method": name,
                "seconds": seconds,
                "inertia": result.inertia,
                "fitted_on": result.n_fit,
                **coherence(result),
            }
        )
    return rows


def _read_with_preview(image, mask, max_pixels):
    """The prepared image and, for an RGB file without a mask, the original shrunk for
    comparison.png while Pillow still holds it (no full-size copy for Pillow to shrink later;
    with a mask the comparison shows the excluded pixels transparent, from the array)."""
    if not isinstance(image, (str, os.PathLike)):
        return prepare_image(image, mask, max_pixels=max_pixels), None
    with open_image(image, max_pixels=max_pixels) as img:
        array = image_to_array(img)
        preview = None
        if img.mode == "RGB" and mask is None:
            preview = plots.thumbnail(img, PREVIEW_SIDE)
    return prepare_image(array, mask), preview


def _sweep_k(prepared, k_values: Sequence[int], segment_options: dict):
    """The K sweep of ``segment -k auto``, with the options of the segmentation."""
    from imgclust.pixels.choose_k import choose_k  # scikit-learn: import when used

    options = {
        k: segment_options[k]
        for k in ("color_space", "n_init", "random_state")
        if k in segment_options
    }
    return choose_k(prepared.rgb, k_values, mask=prepared.include, **options)


def _finish(summary: dict, output, report: bool, **extra) -> dict:
    """Add the output folder (and its report) and ``extra`` to a job's summary."""
    summary.update(extra)
    return record_output(summary, output, report)


def run_choose_k(
    image: str | os.PathLike | np.ndarray,
    output: str | os.PathLike,
    *,
    k_values: Sequence[int] = tuple(range(2, 17)),
    mask: np.ndarray | None = None,
    overwrite: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    report: bool = True,
    step: Step = _no_progress,
    progress: ProgressFactory = no_progress,
    **options,
) -> dict:
    """Sweep K, write ``choose_k.csv`` and ``choose_k.png`` (and ``report.html`` unless
    ``report`` is false); return the chosen K and the table. ``progress`` (a progress factory)
    advances once per K."""
    from imgclust.pixels.choose_k import choose_k

    names = output_names(CHOOSE_K_OUTPUTS, report=report)
    check_output_dir(output, overwrite=overwrite, names=names)
    timings: dict[str, float] = {}
    with step("reading the image"), _timed(timings, "read"):
        prepared = prepare_image(image, mask, max_pixels=max_pixels)
    scoring = progress(f"scoring K = {k_values[0]}..{k_values[-1]}", len(k_values))
    with scoring as advance, _timed(timings, "choose_k"):
        sweep = choose_k(
            prepared.rgb,
            k_values,
            mask=prepared.include,
            progress=lambda k: advance(),
            **options,
        )
    staged = StagedOutputDir(output, overwrite=overwrite, names=names)
    with step("writing the outputs"), staged as stage:
        save_choose_k(sweep, stage.path)
        if report:
            parameters = {"k_values": ", ".join(map(str, k_values)), **options}
            write_choose_k_report(
                sweep, stage.path, source=_source(image), parameters=parameters, timings=timings
            )
    summary = {"best_k": sweep.best_k, "rule": sweep.rule, "scores": sweep.to_rows()}
    return _finish(summary, output, report, timings=timings)


@contextmanager
def _timed(timings: dict[str, float], name: str):
    start = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - start


def run_edges(
    image: str | os.PathLike | np.ndarray,
    output: str | os.PathLike,
    *,
    sigma: float = 1.0,
    low: float | None = None,
    high: float | None = None,
    n_clusters: int | None = 8,
    overwrite: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    report: bool = True,
    step: Step = _no_progress,
    progress: ProgressFactory = no_progress,
    **segment_options,
) -> dict:
    """Canny edges (``edges.png``, ``edges_overlay.png``) and, unless ``n_clusters`` is None,
    the boundaries of a ``n_clusters``-colour segmentation drawn over the image
    (``boundaries.png``); ``report.html`` unless ``report`` is false."""
    from imgclust.pixels.edges import detect_edges  # scipy.ndimage: import when used

    names = output_names(EDGES_OUTPUTS, report=report)
    check_output_dir(output, overwrite=overwrite, names=names)
    timings: dict[str, float] = {}
    steps = 3 if n_clusters is None else 4
    with progress("edges", steps) as advance:
        with step("reading the image"), _timed(timings, "read"):
            prepared = prepare_image(image, max_pixels=max_pixels)
        advance()
        with step("detecting edges"), _timed(timings, "edges"):
            result = detect_edges(prepared.rgb, sigma=sigma, low=low, high=high)
        advance()
        seg = None
        if n_clusters is not None:
            with step(f"segmenting into {n_clusters} colours"), _timed(timings, "segment"):
                seg = segment(prepared.rgb, n_clusters, mask=prepared.include, **segment_options)
            advance()
        summary, _ = _write_edges(
            output, overwrite, names, step, result, prepared, seg, image, report,
            {"sigma": sigma, "low": low, "high": high, "n_clusters": n_clusters,
             **segment_options},
            timings,
        )  # fmt: skip
        advance()
    return _finish(summary, output, report, timings=timings)


def _write_edges(
    output, overwrite, names, step, result, prepared, seg, image, report, parameters, timings
):
    staged = StagedOutputDir(output, overwrite=overwrite, names=names)
    with step("writing the outputs"), staged as stage:
        summary = save_edges(result, prepared, stage.path, seg)
        if report:
            write_edges_report(
                summary, stage.path, source=_source(image), parameters=parameters, timings=timings
            )
    return summary, stage
