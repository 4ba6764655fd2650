"""The files ``group`` writes, and the export of images into one folder per cluster.

Export never moves or changes an original, and never writes outside ``OUTDIR/clusters``: the
name of each exported file is its rank in the cluster followed by its base name reduced to
letters, digits, ``.``, ``_`` and ``-`` (so ``../../x`` or a name with a slash cannot escape).
"""

from __future__ import annotations

import csv
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from imgclust.collection.extract import Extraction
from imgclust.collection.group import ImageClustering
from imgclust.collection.sources import ImageSource
from imgclust.errors import ImageReadError, InvalidParameterError
from imgclust.io.outputs import json_text
from imgclust.report.image_map import (
    SPRITE_SIDE,
    MapPoints,
    map_payload,
    write_embedding_csv,
    write_map_data,
    write_sprites,
)

__all__ = [
    "EXPORT_MODES",
    "Placement",
    "check_export_mode",
    "clustering_points",
    "export_clusters",
    "safe_file_name",
    "write_assign_outputs",
    "write_group_outputs",
    "write_map",
]

#: How ``--export`` fills ``clusters/<n>/``.
EXPORT_MODES = ("hardlink", "copy", "symlink", "none")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_GALLERY_SIZE = 36


def safe_file_name(name: str, rank: int) -> str:
    """``00012_name.jpg``: a rank and a base name that can only name a file in one folder."""
    base = _UNSAFE.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).lstrip(".")
    return f"{rank:05d}_{base[-120:] or 'image'}"


def _cluster_folder(cluster: int) -> str:
    return "noise" if cluster < 0 else str(cluster)


def check_export_mode(mode: str) -> None:
    """Refuse an export mode that is not one of :data:`EXPORT_MODES`."""
    if mode not in EXPORT_MODES:
        raise InvalidParameterError(
            f"unknown export {mode!r}; choose one of: {', '.join(EXPORT_MODES)}"
        )


def export_clusters(
    result: ImageClustering, folder: Path, mode: str, advance=None, digests: dict | None = None
) -> int:
    """Fill ``folder/clusters/<cluster>/`` with the images; returns how many were placed (an
    image removed since it was read is left out). ``advance(n)`` as images are placed.
    ``digests`` (a dict) receives the content digest of each placed file by its path relative
    to ``folder``: the bytes read for the features, so the record knows a copy or a hard link
    of a photo without reading it again."""
    check_export_mode(mode)
    advance = advance or (lambda n=1: None)
    if mode == "none":
        advance(len(result.extraction.kept))
        return 0
    root = (folder / "clusters").resolve()
    source = result.source
    placed = 0
    for cluster in sorted(set(result.labels.tolist())):
        (root / _cluster_folder(cluster)).mkdir(parents=True)
    for row, index in enumerate(result.extraction.kept):
        if row % _ADVANCE_EVERY == 0:
            advance(min(_ADVANCE_EVERY, len(result.extraction.kept) - row))
        target_dir = root / _cluster_folder(int(result.labels[row]))
        # the real base name (an id is escaped: its backslashes are not separators)
        base = source.paths[index].name if source.paths is not None else source.ids[index]
        name = safe_file_name(base, int(result.ranks[row]))
        if source.paths is None:
            name += ".png"
        if "/" in name or name in (".", ".."):  # cannot happen with safe names; belt and braces
            raise InvalidParameterError(f"refusing to export {name!r}: not a plain file name")
        try:
            _place(source, index, target_dir / name, mode)
        except (OSError, ImageReadError):
            continue  # removed or changed since it was read: one file is not worth the run
        placed += 1
        if digests is not None and source.paths is not None and result.extraction.digests:
            relative = (target_dir / name).relative_to(Path(folder).resolve()).as_posix()
            digests[relative] = result.extraction.digests[row]
    return placed


_ADVANCE_EVERY = 256


def _place(source, index: int, target: Path, mode: str) -> None:
    if source.paths is None:
        source.decode(index, b"").save(target)
        return
    original = source.paths[index].resolve()
    if mode == "symlink":
        os.symlink(original, target)
        return
    if mode == "hardlink":
        try:
            os.link(original, target)
            return
        except OSError:
            pass  # another file system, or links not allowed: copy instead
    # the bytes only: a new file gets the mode the umask gives (copy2 carried the photo's
    # permission bits over, a private photo's 0600 or a shared one's 0666 alike)
    shutil.copyfile(original, target)


def _write_csv(path: Path, header: list[str], rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _assignments(result: ImageClustering, folder: Path) -> None:
    header = ["path", "cluster", "distance", "rank"]
    truth = result.truth
    if truth is not None:
        header.append("label")
    rows = []
    for row, image_id in enumerate(result.ids):
        distance = result.distances[row]
        line = [
            image_id,
            int(result.labels[row]),
            "" if np.isnan(distance) else f"{distance:.6g}",
            int(result.ranks[row]),
        ]
        if truth is not None:
            line.append(truth[row] or "")
        rows.append(line)
    _write_csv(folder / "assignments.csv", header, rows)


def _files(result) -> list[Path] | None:
    """The file of each row (None for arrays and datasets)."""
    paths = result.source.paths
    return None if paths is None else [paths[int(i)] for i in result.extraction.kept]


def clustering_points(result: ImageClustering) -> MapPoints:
    """The images of a clustering as points of its map, with their clusters, ranks, known
    labels, cluster names and files."""
    return MapPoints.of(
        result.reduction.embedding,
        result.labels,
        result.ids,
        ranks=result.ranks,
        truth=result.truth,
        names=dict(result.names),
        files=_files(result),
    )


def write_map(result, points: MapPoints, folder: Path, final: Path, progress) -> dict:
    """The sprite sheets of ``result``'s images in ``folder/map`` (a staging folder), and the
    data of the report's map, its links relative to ``final`` (the output folder)."""
    count = len(points.ids)
    kept = result.extraction.kept
    with progress("thumbnails for the map", count) as advance:
        sheets = write_sprites(
            folder,
            count,
            lambda row: result.source.thumbnail(int(kept[row]), SPRITE_SIDE),
            advance,
        )
    payload = map_payload(points, sheets=sheets, folder=final)
    write_map_data(folder, payload)
    return payload


def _members_by_rank(result: ImageClustering, cluster: int, limit: int) -> list[int]:
    rows = np.flatnonzero(result.labels == cluster)
    return rows[np.argsort(result.ranks[rows], kind="stable")][:limit].tolist()


def _thumbnail(result: ImageClustering, row: int, size: int = 96) -> Image.Image:
    return result.source.thumbnail(int(result.extraction.kept[row]), size)


def _centre_images(result: ImageClustering) -> tuple[list[Image.Image], str]:
    """Each cluster's mean image (pixel features) or its member nearest the centre."""
    extractor = result.extractor
    if extractor.name == "pixels":
        shape = extractor.image_shape()
        tiles = []
        for c in range(result.n_clusters):
            mean = result.extraction.features[result.labels == c].mean(axis=0)
            tiles.append(
                Image.fromarray(np.clip(mean * 255, 0, 255).astype(np.uint8).reshape(shape))
            )
        return tiles, "mean image of each cluster"
    return [_thumbnail(result, int(m)) for m in result.medoids], "image nearest each centre"


def _galleries(result: ImageClustering, folder: Path) -> None:
    (folder / "galleries").mkdir()
    clusters = list(range(result.n_clusters)) + ([-1] if (result.labels < 0).any() else [])
    clusters = [c for c in clusters if (result.labels == c).any()]  # assign: empty ones
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for cluster in clusters:
            rows = _members_by_rank(result, cluster, _GALLERY_SIZE)
            tiles = list(pool.map(lambda r: _thumbnail(result, r), rows))
            _gallery(result, folder, cluster, rows, tiles)


def _gallery(result: ImageClustering, folder: Path, cluster: int, rows, tiles) -> None:
    from imgclust.report.collection_plots import contact_sheet

    captions = [Path(result.ids[r]).name for r in rows]
    sheet = contact_sheet(tiles, captions)
    sheet.save(folder / "galleries" / f"cluster_{_cluster_folder(cluster)}.jpg", quality=90)


def _centres_png(result: ImageClustering, folder: Path) -> str:
    from imgclust.report.collection_plots import contact_sheet

    tiles, what = _centre_images(result)
    sizes = result.cluster_sizes()
    captions = [f"{c}: {sizes[c]} images" for c in range(result.n_clusters)]
    contact_sheet(tiles, captions, tile=96, columns=min(10, len(tiles))).save(
        folder / "centers.png"
    )
    return what


def _evaluation(result: ImageClustering, folder: Path) -> None:
    from imgclust.report.raster_plots import confusion_figure

    evaluation = result.evaluation
    (folder / "evaluation.json").write_text(json_text(evaluation))
    labels, clusters = evaluation["labels"], evaluation["clusters"]
    table = np.array(evaluation["confusion"])
    _write_csv(
        folder / "confusion.csv",
        ["label \\ cluster", *clusters],
        [[label, *row] for label, row in zip(labels, table.tolist(), strict=True)],
    )
    title = (
        f"accuracy {evaluation['accuracy_majority']:.3f} (majority), "
        f"{evaluation['accuracy_one_to_one']:.3f} (one-to-one)"
    )
    figure = confusion_figure(
        table,
        [str(v) for v in labels],
        [str(v) for v in clusters],
        title,
        xlabel="cluster",
        ylabel="label",
    )
    figure.savefig(folder / "confusion.png")


def _sweep(result: ImageClustering, folder: Path) -> None:
    from imgclust.report.collection_plots import sweep_figure

    rows = result.sweep.to_rows()
    _write_csv(folder / "choose_k.csv", list(rows[0]), [list(r.values()) for r in rows])
    sweep_figure(result.sweep).savefig(folder / "choose_k.png")


@dataclass
class Placement:
    """New images placed into a saved grouping's clusters (``assign``), in the shape the
    exports and galleries of ``group`` read."""

    source: ImageSource
    extraction: Extraction
    labels: np.ndarray
    distances: np.ndarray
    n_clusters: int
    xy: np.ndarray | None = None
    names: dict[int, str] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return [self.source.ids[i] for i in self.extraction.kept]

    def points(self) -> MapPoints:
        """The new images as points of the training run's map."""
        xy = self.xy if self.xy is not None else np.zeros((len(self.labels), 2))
        return MapPoints(
            self.ids,
            xy,
            np.asarray(self.labels, dtype=np.int64),
            ranks=self.ranks,
            names=dict(self.names),
            files=_files(self),
        )

    @property
    def ranks(self) -> np.ndarray:
        """Each image's rank in its cluster, nearest first (1-based)."""
        ranks = np.zeros(len(self.labels), dtype=np.int64)
        for cluster in np.unique(self.labels):
            members = np.flatnonzero(self.labels == cluster)
            order = np.argsort(self.distances[members], kind="stable")
            ranks[members[order]] = np.arange(1, len(members) + 1)
        return ranks


def write_assign_outputs(
    placement: Placement,
    folder: Path,
    *,
    export: str = "hardlink",
    advance=None,
    digests: dict | None = None,
) -> int:
    """``assignments.csv``, ``skipped.csv``, ``galleries/`` and ``clusters/<n>/`` of an
    ``assign`` run; returns how many images were exported."""
    ranks = placement.ranks
    rows = [
        [image_id, int(c), f"{d:.6g}", int(r)]
        for image_id, c, d, r in zip(
            placement.ids, placement.labels, placement.distances, ranks, strict=True
        )
    ]
    _write_csv(folder / "assignments.csv", ["path", "cluster", "distance", "rank"], rows)
    write_embedding_csv(folder, placement.points())
    _write_csv(folder / "skipped.csv", ["path", "reason"], placement.extraction.skipped)
    view = _RankedView(placement, ranks)
    if len(placement.labels):
        _galleries(view, folder)
    return export_clusters(view, folder, export, advance, digests)


@dataclass
class _RankedView:
    """A placement with its ranks computed once, for the functions that read ``group``'s."""

    placement: Placement
    ranks: np.ndarray

    def __getattr__(self, name):
        return getattr(self.placement, name)


def write_group_outputs(
    result: ImageClustering,
    folder: str | os.PathLike,
    *,
    export: str = "hardlink",
    advance=None,
    digests: dict | None = None,
    run: dict | None = None,
) -> dict:
    """Write every output of ``group`` into ``folder`` (an existing, empty staging folder).

    Returns the summary written to ``clusters.json``, with ``exported`` added. ``advance(n)``
    as the images are exported (one step an image). ``run`` (how the run can be made again,
    for ``imgclust review --apply``) is written into ``clusters.json`` too.
    """
    from imgclust.report.collection_plots import embedding_figure

    folder = Path(folder)
    _assignments(result, folder)
    write_embedding_csv(folder, clustering_points(result))
    _write_csv(folder / "skipped.csv", ["path", "reason"], result.extraction.skipped)
    centres = _centres_png(result, folder)
    _galleries(result, folder)
    title = f"{result.n_clusters} clusters ({result.method} on {result.reduction.method})"
    embedding_figure(result.reduction.embedding, result.labels, result.truth, title).savefig(
        folder / "embedding.png"
    )
    if result.evaluation is not None:
        _evaluation(result, folder)
    if result.sweep is not None:
        _sweep(result, folder)
    if result.linkage is not None:
        from imgclust.report.collection_plots import dendrogram_figure

        dendrogram_figure(result.linkage, result.labels).savefig(folder / "dendrogram.png")
    summary = result.summary()
    summary["centers_png"] = centres
    summary["exported"] = export_clusters(result, folder, export, advance, digests)
    summary["export"] = export
    if run is not None:
        summary["run"] = run
    (folder / "clusters.json").write_text(json_text(summary, default=str))
    return summary
