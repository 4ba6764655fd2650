"""Whole collection jobs: what the ``group`` and ``assign`` commands (and ``demo``) call.

Each checks its output folder before any work, keeps the output folder out of the images it
reads, writes into a staging folder and returns the summary it wrote.
"""

from __future__ import annotations

import os
from pathlib import Path

from imgclust._progress import ProgressFactory, no_progress
from imgclust._text import printable
from imgclust.collection.extract import extract_features
from imgclust.collection.group import cluster_images
from imgclust.collection.model import GroupModel, save_model
from imgclust.collection.outputs import (
    Placement,
    check_export_mode,
    clustering_points,
    write_assign_outputs,
    write_group_outputs,
    write_map,
)
from imgclust.collection.review import REVIEW_FILE, ReviewStore, applied_review, run_record
from imgclust.collection.sources import IMAGE_SUFFIXES, ImageSource, scan_folder
from imgclust.errors import InvalidParameterError
from imgclust.io.images import DEFAULT_MAX_PIXELS
from imgclust.io.outputs import StagedOutputDir, check_output_dir, output_names, record_output
from imgclust.report.collection_report import write_assign_report, write_group_report

__all__ = ["ASSIGN_OUTPUTS", "GROUP_OUTPUTS", "apply_group_review", "run_assign", "run_group"]

#: What ``group`` and ``assign`` may write at the top of their output folders (checked
#: before any work: a folder of the user's called ``galleries`` is refused, never replaced).
GROUP_OUTPUTS = (
    "assignments.csv", "skipped.csv", "centers.png", "galleries", "embedding.png",
    "evaluation.json", "confusion.csv", "confusion.png", "choose_k.csv", "choose_k.png",
    "dendrogram.png", "clusters", "clusters.json", "model", "embedding.csv", "map",
    "report.html", "review.json",
)  # fmt: skip

ASSIGN_OUTPUTS = (
    "assignments.csv", "embedding.csv", "skipped.csv", "galleries", "clusters", "map",
    "report.html",
)  # fmt: skip


def run_group(
    images: str | os.PathLike | None,
    output: str | os.PathLike,
    *,
    export: str = "hardlink",
    save: bool = False,
    report: bool = True,
    overwrite: bool = False,
    progress: ProgressFactory = no_progress,
    **options,
) -> dict:
    """Group images (:func:`imgclust.cluster_images`) and write every output into ``output``.

    Parameters
    ----------
    images : path or None
        A folder or a ``.npy`` file (None with ``dataset=``).
    output : path
        Refused if it holds files, unless ``overwrite``. It may lie inside the image folder:
        it is never read as input.
    export : {"hardlink", "copy", "symlink", "none"}
        How ``clusters/<n>/`` is filled (hard links fall back to copies across file systems).
    save : bool
        Also write the model (``model/model.json`` and ``model/model.npz``) for ``assign``.
    report : bool
        Also write ``report.html``, a page with every figure and table.
    **options
        Passed to :func:`imgclust.cluster_images`.
    """
    check_export_mode(export)
    without = ({"clusters"} if export == "none" else set()) | (set() if save else {"model"})
    reviewed = options.get("reviewed")
    without |= (set() if report else {"map"}) | (set() if reviewed else {REVIEW_FILE})
    if options.get("method", "kmeans") != "agglomerative":
        without.add("dendrogram.png")
    names = output_names(GROUP_OUTPUTS, report=report, without=without)
    check_output_dir(output, overwrite=overwrite, names=names)
    output = Path(output)
    run = run_record(images, options, export=export, save=save, report=report)
    result = cluster_images(images, exclude=[output], progress=progress, **options)
    with StagedOutputDir(output, overwrite=overwrite, names=names) as stage:
        with progress("writing outputs", len(result.labels) + 1) as advance:
            summary = write_group_outputs(
                result,
                stage.path,
                export=export,
                advance=advance,
                digests=stage.digests,
                run=run,
            )
            if save:
                save_model(result, stage.path / "model")
            if reviewed is not None:
                text = applied_review(result.ids, result.labels, result.names, reviewed.changes)
                (stage.path / REVIEW_FILE).write_text(text, encoding="utf-8")
            advance()
        if report:
            payload = write_map(result, clustering_points(result), stage.path, output, progress)
            write_group_report(summary, result, stage.path, payload)
    record_output(summary, output, report)
    summary["result"] = result
    return summary


def apply_group_review(
    folder: str | os.PathLike, *, progress: ProgressFactory = no_progress
) -> dict:
    """Apply the review of a ``group`` output folder (``review.json``): ``group`` runs again
    on the same images with the same settings (features from the cache, the map of
    ``embedding.csv``) and the reviewed clusters and names, and replaces the folder's results
    (``clusters/``, galleries, report, ``clusters.json``, the model); the user's files are
    kept, as with ``--overwrite``. Returns the new summary."""
    store = ReviewStore(folder)
    images, options = store.run_options()
    options.setdefault("export", "hardlink")
    return run_group(
        images, folder, overwrite=True, progress=progress, reviewed=store.reviewed(), **options
    )


def _files_source(items: list[str], max_pixels: int | None) -> ImageSource:
    paths: list[Path] = []
    ids: list[str] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = scan_folder(path)
            paths.extend(found)
            ids.extend(printable(p.as_posix()) for p in found)
        else:  # a missing or unreadable file is reported in skipped.csv
            paths.append(path)
            ids.append(printable(str(item)))
    if not paths:
        raise InvalidParameterError(
            f"no image files found in {', '.join(items)} (looked for {', '.join(IMAGE_SUFFIXES)})"
        )
    return ImageSource("images", ids, paths=paths, max_pixels=max_pixels)


def run_assign(
    model: str | os.PathLike,
    images: list[str],
    output: str | os.PathLike,
    *,
    embed_model: str | os.PathLike | None = None,
    export: str = "hardlink",
    report: bool = True,
    overwrite: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    progress: ProgressFactory = no_progress,
) -> dict:
    """Put new images into the clusters of a saved model and write, as ``group`` does,
    ``assignments.csv``, ``skipped.csv``, ``galleries/``, ``clusters/<n>/`` (``export``) and
    ``report.html`` (unless ``report`` is false) into ``output``."""
    check_export_mode(export)
    without = ({"clusters"} if export == "none" else set()) | {"model"}
    without |= set() if report else {"map"}
    names = output_names(ASSIGN_OUTPUTS, report=report, without=without)
    check_output_dir(output, overwrite=overwrite, names=names)
    loaded = GroupModel.load(model)
    extractor = loaded.extractor(embed_model)
    source = _files_source(list(images), max_pixels)
    extraction = extract_features(source, extractor, progress=progress)
    labels, distances, xy = loaded.place(extraction.features)
    placement = Placement(
        source, extraction, labels, distances, len(loaded.centers), xy=xy, names=loaded.names
    )
    counts = {int(c): int((labels == c).sum()) for c in sorted(set(labels.tolist()))}
    summary = {
        "model": str(loaded.folder),
        "images": len(source),
        "assigned": len(placement.ids),
        "skipped": len(extraction.skipped),
        "per_cluster": counts,
        "rule": loaded.description["assign"],
        "export": export,
    }
    if loaded.names:
        summary["names"] = {c: loaded.names.get(c, "") for c in counts}
    with StagedOutputDir(output, overwrite=overwrite, names=names) as stage:
        with progress("writing outputs", len(placement.ids) + 1) as advance:
            summary["exported"] = write_assign_outputs(
                placement, stage.path, export=export, advance=advance, digests=stage.digests
            )
            advance()
        if report:
            payload = write_map(placement, placement.points(), stage.path, output, progress)
            write_assign_report(summary, placement, stage.path, payload)
    return record_output(summary, output, report)
