"""Writing the results of the one-image jobs (segment, choose-k, edges) into a folder.

The file names and the keys of ``palette.json`` are a contract that scripts rely on (see the
README). Large PNGs are encoded in worker threads (zlib releases the GIL) while the plots are
drawn.
"""

from __future__ import annotations

import csv
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from imgclust import __version__
from imgclust.errors import InvalidParameterError
from imgclust.io.outputs import json_text
from imgclust.pixels.colorspace import check_color_space, rgb_to_features
from imgclust.report import plots
from imgclust.report.plots import FAST_PNG, RLE_PNG

__all__ = [
    "PREVIEW_SIDE",
    "save_choose_k",
    "save_edges",
    "save_segmentation",
    "save_superpixel_comparison",
]

SCATTER_SAMPLE = 20_000
#: Longer side of each picture in comparison.png.
PREVIEW_SIDE = 800


def _rgb_uint8(prepared) -> np.ndarray:
    rgb = prepared.rgb
    if rgb.dtype == np.uint8:
        return rgb
    return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)


def _with_alpha(rgb: np.ndarray, include: np.ndarray | None) -> np.ndarray:
    if include is None:
        return rgb
    return np.dstack([rgb, np.where(include, 255, 0).astype(np.uint8)])


def _labels_png_array(seg) -> np.ndarray:
    """The label map as ``labels.png`` holds it: uint8 for K <= 255, else uint16; excluded
    pixels hold the type's maximum."""
    if seg.label_map.dtype.itemsize > 2:
        raise InvalidParameterError(
            f"labels.png holds at most 65,535 clusters, not {seg.n_clusters}; choose a smaller K"
        )
    return seg.label_map


def _indexed_image(seg, label_map: np.ndarray) -> Image.Image | None:
    """The segmentation as a palette ('P' mode) image; None when K does not fit 256 entries.

    Pixel values are the labels of ``labels.png`` (excluded pixels 255, made transparent), so
    the one uint8 array serves ``labels.png``, ``indexed.png`` and ``segmented.png``.
    """
    excluded = seg.has_excluded
    if label_map.dtype != np.uint8 and not (seg.n_clusters == 256 and not excluded):
        return None
    img = Image.fromarray(label_map.astype(np.uint8, copy=False), mode="P")
    entries = np.zeros((256, 3), dtype=np.uint8)
    entries[: seg.n_clusters] = seg.palette
    img.putpalette(entries.tobytes())
    if excluded:
        img.info["transparency"] = 255
    return img


def _recoloured_image(seg, indexed: Image.Image | None) -> Image.Image:
    """``segmented.png``: from the palette image in one C pass (a NumPy take is 3x slower)."""
    if indexed is not None:
        return indexed.convert("RGBA" if "transparency" in indexed.info else "RGB")
    rgb = seg.recolor()
    if seg.has_excluded:
        return Image.fromarray(np.dstack([rgb, np.where(seg.mask, 255, 0).astype(np.uint8)]))
    return Image.fromarray(rgb)


def _save_png(image: Image.Image | np.ndarray, path: Path, **options) -> None:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    save_options = dict(options)
    if "transparency" in image.info:
        save_options["transparency"] = image.info["transparency"]
    image.save(path, format="PNG", **save_options)


def _scatter_sample(seg, prepared, seed: int, space: str):
    """About ``SCATTER_SAMPLE`` random clustered pixels: their features in ``space`` and their
    labels."""
    flat_labels = seg.label_map.reshape(-1)
    if flat_labels.size > SCATTER_SAMPLE:
        rng = np.random.default_rng(seed)
        index = np.sort(rng.choice(flat_labels.size, size=SCATTER_SAMPLE, replace=False))
    else:
        index = np.arange(flat_labels.size)
    index = index[flat_labels[index] != seg.excluded_label]
    features = rgb_to_features(prepared.rgb.reshape(-1, 3)[index], space)
    return features, flat_labels[index].astype(np.intp)


def _scatter_centres(seg, space: str) -> np.ndarray:
    """The centres drawn in ``space``: the fitted ones in the clustering space, else the
    clusters' mean colours converted."""
    if space == seg.color_space:
        return seg.centers
    return rgb_to_features(seg.palette, space)


def _stop_rule(params: dict) -> str:
    """When a k-means run stopped, as a clause: "each run stopped when ..."."""
    if params.get("epsilon") is not None:
        rule = f"no centre moved more than {params['epsilon']:g} (OpenCV's epsilon)"
    else:
        rule = (
            f"the centres' squared movement was at most {params.get('tol', 1e-4):g} x the "
            "features' variance (scikit-learn's tol)"
        )
    return f"{rule} or after {params.get('max_iter', 300)} iterations"


def _palette_json(seg, prepared, source: str | None, extra: dict) -> dict:
    height, width = prepared.shape
    clusters = [
        {
            "index": i,
            "rgb": [int(v) for v in seg.palette[i]],
            "hex": "#{:02x}{:02x}{:02x}".format(*(int(v) for v in seg.palette[i])),
            "pixels": int(seg.counts[i]),
            "fraction": float(seg.fractions[i]),
        }
        for i in range(seg.n_clusters)
    ]
    return {
        "clusters": clusters,
        "n_clusters": seg.n_clusters,
        "inertia": seg.inertia,
        "color_space": seg.color_space,
        "seed": seg.random_state,
        "n_iter": seg.n_iter,
        "fit": {
            "description": seg.fit_summary,
            "restarts": seg.params.get("n_init"),
            "fitted_on": seg.n_fit,
            "summary_size": seg.summary_size,
            "summary_iter": seg.summary_iter,
            "refinement_iter": seg.n_iter,
            "stop_rule": _stop_rule(seg.params),
        },
        "method": seg.method,
        "n_distinct_colors": seg.n_distinct,
        "image": {
            "path": source,
            "width": width,
            "height": height,
            "pixels": width * height,
            "clustered_pixels": int(seg.counts.sum()),
        },
        "params": seg.params,
        "imgclust_version": __version__,
        **extra,
    }


def save_segmentation(
    seg,
    prepared,
    folder: str | os.PathLike,
    *,
    source: str | None = None,
    extra: dict | None = None,
    preview: Image.Image | None = None,
    scatter_space: str | None = None,
) -> dict:
    """Write every output of a segmentation into ``folder`` and return the summary.

    Parameters
    ----------
    seg : Segmentation
    prepared : PreparedImage
        The image that was segmented (from :func:`imgclust.pixels.segment.prepare_image`).
    folder : path
        An existing, empty folder (the CLI passes a staging folder).
    source : str, optional
        Path of the input file, recorded in ``palette.json`` and used for the size comparison.
    extra : dict, optional
        More entries for ``palette.json``.
    preview : PIL.Image.Image, optional
        The original already shrunk to :data:`PREVIEW_SIDE` for ``comparison.png``, e.g. from
        the decoded file (faster than from ``prepared``); only when every pixel was clustered.
    scatter_space : {"rgb", "lab", "hsv"}, optional
        Space of ``colors3d.png``; default the clustering space (where the centres were fitted).

    Returns
    -------
    dict
        The content of ``palette.json``.
    """
    folder = Path(folder)
    label_map = _labels_png_array(seg)
    indexed = _indexed_image(seg, label_map)
    recoloured = _recoloured_image(seg, indexed)
    with ThreadPoolExecutor(max_workers=3) as pool:
        jobs = [
            pool.submit(_save_png, recoloured, folder / "segmented.png", **FAST_PNG),
            pool.submit(_save_png, label_map, folder / "labels.png", **RLE_PNG),
        ]
        if indexed is not None:
            jobs.append(pool.submit(_save_png, indexed, folder / "indexed.png", **RLE_PNG))
        plots.palette_image(seg.palette, seg.fractions).save(folder / "palette.png")
        if preview is None or prepared.include is not None:
            preview = _with_alpha(_rgb_uint8(prepared), prepared.include)
        plots.side_by_side(preview, recoloured, max_side=PREVIEW_SIDE).save(
            folder / "comparison.png", **FAST_PNG
        )
        space = check_color_space(scatter_space or seg.color_space)
        features, labels = _scatter_sample(seg, prepared, seg.random_state, space)
        centres = _scatter_centres(seg, space)
        plots.colors3d_figure(features, labels, seg.palette, centres, space).savefig(
            folder / "colors3d.png", pil_kwargs=FAST_PNG
        )
        for job in jobs:
            job.result()
    summary = _palette_json(seg, prepared, source, dict(extra or {}))
    summary["scatter_space"] = space
    written = sorted(p.name for p in folder.iterdir() if p.name[0] != ".")  # not the lock
    summary["files"] = [*written, "palette.json"]
    if indexed is not None:
        summary["indexed_png_bytes"] = (folder / "indexed.png").stat().st_size
        if source is not None and Path(source).is_file():
            summary["original_bytes"] = Path(source).stat().st_size
    (folder / "palette.json").write_text(json_text(summary))
    return summary


def save_superpixel_comparison(seg, plain, prepared, folder: str | os.PathLike) -> None:
    """``superpixels.png`` (the superpixels' outlines over the image) and
    ``superpixels_vs_pixels.png`` (the superpixel segmentation beside plain pixel k-means)."""
    from skimage.segmentation import find_boundaries

    folder = Path(folder)
    preview = np.asarray(plots.thumbnail(_rgb_uint8(prepared), PREVIEW_SIDE * 2))
    height, width = preview.shape[:2]
    rows = np.arange(height) * seg.superpixel_map.shape[0] // height
    cols = np.arange(width) * seg.superpixel_map.shape[1] // width
    small_map = seg.superpixel_map[rows[:, None], cols[None, :]]
    outlined = preview.copy()
    outlined[find_boundaries(small_map, mode="inner")] = (255, 255, 0)
    _save_png(outlined, folder / "superpixels.png", **FAST_PNG)
    k = seg.n_clusters
    plots.side_by_side(
        _recoloured_image(seg, None),
        _recoloured_image(plain, None),
        titles=(f"{seg.n_fit} superpixels, K={k}", f"every pixel, K={k}"),
        max_side=PREVIEW_SIDE,
    ).save(folder / "superpixels_vs_pixels.png", **FAST_PNG)


def save_choose_k(sweep, folder: str | os.PathLike) -> None:
    """Write ``choose_k.csv`` (k, inertia, silhouette, chosen) and ``choose_k.png``."""
    folder = Path(folder)
    with open(folder / "choose_k.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["k", "inertia", "silhouette", "chosen"])
        writer.writeheader()
        writer.writerows(sweep.to_rows())
    plots.choose_k_figure(sweep).savefig(folder / "choose_k.png")


def save_edges(result, prepared, folder: str | os.PathLike, seg=None) -> dict:
    """Write ``edges.png``, ``edges_overlay.png`` and, with ``seg``, ``boundaries.png``."""
    folder = Path(folder)
    rgb = _rgb_uint8(prepared)
    _save_png((result.edges * np.uint8(255)).astype(np.uint8), folder / "edges.png", **FAST_PNG)
    _save_png(plots.edges_overlay(rgb, result.edges), folder / "edges_overlay.png", **FAST_PNG)
    plots.edges_preview(rgb, result.edges).save(folder / "edges_preview.png", **FAST_PNG)
    summary = {
        "sigma": result.sigma,
        "low_threshold": result.low,
        "high_threshold": result.high,
        "automatic_thresholds": result.automatic,
        "edge_fraction": result.fraction,
    }
    if seg is not None:
        from skimage.segmentation import mark_boundaries

        boundaries = mark_boundaries(rgb, seg.label_map, color=(1, 1, 0), mode="thick")
        _save_png((boundaries * 255).astype(np.uint8), folder / "boundaries.png", **FAST_PNG)
        summary["segments_k"] = seg.n_clusters
    (folder / "edges.json").write_text(json_text(summary))
    return summary
