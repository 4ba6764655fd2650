"""Groups corrected by a person: ``review.json`` in an output folder, its edits, and applying
them (``imgclust review``).

A review starts from the clusters of ``embedding.csv`` and keeps every change in
``review.json`` at once (a staging folder merged into the output folder: a temporary file, a
rename, and the folder's record updated, so ``--overwrite`` still knows the file is
imgclust's). Closing the page loses nothing; a second session resumes from the file.

Edits: move images to another cluster or a new one, merge a cluster into another, split a
cluster in two (k-means on its images' places on the map, the space the map's clusters were
found in), name a cluster, undo. :func:`apply_review` then runs ``group`` again on the same
images with the same settings (features from the cache, the map from ``embedding.csv``) and
the reviewed clusters in place of the clustering, so that ``clusters/``, the galleries, the
report, ``clusters.json`` and the saved model all follow the review.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imgclust.errors import InvalidParameterError
from imgclust.io.outputs import StagedOutputDir, json_text
from imgclust.report.image_map import (
    MapPoints,
    cluster_table,
    map_payload,
    read_embedding_csv,
    read_map_data,
)

__all__ = ["REVIEW_FILE", "ReviewStore", "ReviewedGroups", "applied_review", "run_record"]

#: Settings of a run that ``review --apply`` does not repeat (the result is the same).
_NOT_REPEATED = ("scheduler", "workers", "reviewed")

REVIEW_FILE = "review.json"
#: The summary that tells each kind of reviewable folder.
SUMMARIES = {"group": "clusters.json", "representatives": "representatives.json"}
FORMAT = "imgclust-review"
VERSION = 1
_UNDO_DEPTH = 50
_MAX_NAME = 100


def ids_digest(ids: list[str]) -> str:
    """A digest of the images' ids in order: a review belongs to one run's images."""
    digest = hashlib.blake2b(digest_size=16)
    for image_id in ids:
        digest.update(image_id.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()


@dataclass
class ReviewedGroups:
    """The clusters a person settled on, by image id, to apply to a run's images."""

    ids: list[str]
    clusters: np.ndarray
    xy: np.ndarray
    names: dict[int, str] = field(default_factory=dict)
    changes: int = 0

    def for_rows(self, ids: list[str]) -> tuple[np.ndarray, dict[int, str], np.ndarray]:
        """Clusters (renumbered 0 for the largest, as ``group`` numbers them; noise -1), names
        and map places of the images ``ids``, which must be the reviewed images."""
        if ids != self.ids:
            known = set(self.ids)
            new = sum(1 for i in ids if i not in known)
            gone = len(known - set(ids))
            raise InvalidParameterError(
                f"the images changed since the reviewed run ({new} new, {gone} gone or no "
                "longer readable); run 'imgclust group' again and review its results"
            )
        found = [c for c in np.unique(self.clusters) if c >= 0]
        sizes = {c: int(np.sum(self.clusters == c)) for c in found}
        order = sorted(found, key=lambda c: (-sizes[c], c))
        renumber = {int(old): new for new, old in enumerate(order)}
        labels = np.array([renumber.get(int(c), -1) for c in self.clusters], dtype=np.int64)
        names = {renumber[c]: name for c, name in self.names.items() if c in renumber and name}
        return labels, names, self.xy


class ReviewStore:
    """The review of an output folder of ``imgclust group``: its images, their clusters as a
    person corrects them, the names, and ``review.json``, saved on every change.

    Parameters
    ----------
    folder : path
        An output folder of ``imgclust group`` (with ``embedding.csv``).
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.kind = (
            "representatives"
            if (self.folder / SUMMARIES["representatives"]).is_file()
            and not (self.folder / SUMMARIES["group"]).is_file()
            else "group"
        )
        try:
            summary = json.loads((self.folder / SUMMARIES[self.kind]).read_text(encoding="utf-8"))
            ids, xy, clusters, labels = read_embedding_csv(self.folder)
            names = self._names(summary)
        except FileNotFoundError as exc:
            missing = Path(exc.filename or "").name
            raise InvalidParameterError(
                f"{self.folder}: not an output folder of 'imgclust group' or 'imgclust "
                f"representatives' ({missing} is missing)"
            ) from None
        except (OSError, ValueError, KeyError, UnicodeDecodeError, RecursionError) as exc:
            raise InvalidParameterError(
                f"{self.folder}: its results are damaged ({exc}); run 'imgclust {self.kind}' again"
            ) from None
        self.summary = summary
        self.ids = ids
        self.xy = xy
        self.labels = labels
        self.digest = ids_digest(ids)
        self.clusters = clusters.copy()
        self.names = names
        self.changes = 0
        self.applied = False
        self._undo: list[tuple[np.ndarray, dict[int, str]]] = []
        self.map_data = read_map_data(self.folder)
        if (self.folder / REVIEW_FILE).exists():
            self._load()

    def _names(self, summary) -> dict[int, str]:
        """The names the folder gives its clusters: those of an applied review (group), or the
        labels of the representatives (``labels.csv``, else ``to_label.csv``)."""
        if not isinstance(summary, dict):
            raise ValueError("its summary is not a JSON object")
        if self.kind == "group":
            return {
                int(c["cluster"]): str(c["name"])
                for c in summary.get("clusters", [])
                if isinstance(c, dict) and c.get("name")
            }
        with open(self.folder / "to_label.csv", newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        cluster_of = {row["path"]: int(row["cluster"]) for row in rows}
        names = {int(row["cluster"]): row.get("label") or "" for row in rows}
        typed = self.folder / "labels.csv"
        if typed.is_file():  # what 'imgclust label' saved
            with open(typed, newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    if row.get("path") in cluster_of:
                        names[cluster_of[row["path"]]] = row.get("label") or ""
        return {c: name.strip() for c, name in names.items() if name and name.strip()}

    def run_options(self) -> tuple[str | None, dict]:
        """The images and the settings of the run that made the folder, to repeat it."""
        run = self.summary.get("run")
        if not isinstance(run, dict):
            raise InvalidParameterError(
                f"{self.folder}: {SUMMARIES[self.kind]} does not say how the folder was made "
                "(from images in memory, or by an earlier imgclust); from Python, run it again "
                f"with the same images and reviewed=ReviewStore({str(self.folder)!r}).reviewed()"
            )
        options = dict(run)
        return options.pop("images", None), options

    def _load(self) -> None:
        path = self.folder / REVIEW_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT or data.get("version") != VERSION:
                raise ValueError("not a review of this imgclust")
            clusters = np.array(data["clusters"], dtype=np.int64)
            names = {int(k): v for k, v in data["names"].items()}
            changes = int(data["changes"])
            if clusters.shape != (len(self.ids),) or clusters.min(initial=0) < -1:
                raise ValueError("its clusters do not fit the images")
            if not all(_a_name(v) for v in names.values()):
                raise ValueError(f"a name is not printable text of at most {_MAX_NAME} characters")
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise InvalidParameterError(
                f"{path} cannot be read ({exc}); move it away to start the review afresh"
            ) from None
        if data.get("images") != self.digest:
            raise InvalidParameterError(
                f"{path} reviews other images than this folder's results (the folder was made "
                "again since); move it away to start the review afresh"
            )
        self.clusters, self.names, self.changes = clusters, names, changes
        self.applied = bool(data.get("applied"))

    # -- what the page shows -------------------------------------------------------------
    def cluster_table(self) -> list[dict]:
        return cluster_table(self.clusters, self.names)

    def state(self) -> dict:
        """The clusters of every image and the cluster table, as the page reads them."""
        return {
            "c": self.clusters.tolist(),
            "clusters": self.cluster_table(),
            "changes": self.changes,
            "applied": self.applied,
            "can_undo": bool(self._undo),
        }

    def payload(self) -> dict:
        """The map's data (:func:`~imgclust.report.image_map.map_payload`) with the reviewed
        clusters."""
        if self.map_data is not None and self.map_data.get("n") == len(self.ids):
            data = dict(self.map_data)
        else:  # no report was written: the map without thumbnails
            data = map_payload(MapPoints(self.ids, self.xy, self.clusters))
        data.update(c=self.clusters.tolist(), clusters=self.cluster_table(), links=None)
        return data

    # -- edits -------------------------------------------------------------------------------
    def edit(self, action: dict) -> dict:
        """Apply one edit (ValueError, with what was wrong, for a malformed one), save, and
        return the new :meth:`state`."""
        kind = action.get("action")
        before = (self.clusters.copy(), dict(self.names))
        if kind == "move":
            self._move(_rows(action.get("rows"), len(self.ids)), action.get("to"))
        elif kind == "merge":
            self._merge(self._cluster(action.get("from")), self._cluster(action.get("into")))
        elif kind == "split":
            self._split(self._cluster(action.get("cluster")))
        elif kind == "name":
            self._name(self._cluster(action.get("cluster")), action.get("name"))
        elif kind == "undo":
            if not self._undo:
                raise ValueError("nothing to undo")
            self.clusters, self.names = self._undo.pop()
            self.changes += 1
            self._save_or_restore(before)
            return self.state()
        else:
            raise ValueError("unknown action: move, merge, split, name or undo")
        self._undo = [*self._undo, before][-_UNDO_DEPTH:]
        self.changes += 1
        self.applied = False
        self._save_or_restore(before)
        return self.state()

    def _cluster(self, value) -> int:
        if type(value) is not int or not 0 <= value <= len(self.ids):
            raise ValueError("a cluster is a whole number of the map's clusters")
        if not (self.clusters == value).any():
            raise ValueError(f"there is no cluster {value}")
        return value

    def _new_cluster(self) -> int:
        return int(self.clusters.max(initial=-1)) + 1

    def _move(self, rows: np.ndarray, to) -> None:
        target = self._new_cluster() if to == "new" else self._cluster(to)
        self.clusters[rows] = target

    def _merge(self, source: int, target: int) -> None:
        if source == target:
            raise ValueError("a cluster cannot be merged into itself")
        self.clusters[self.clusters == source] = target
        if source in self.names and not self.names.get(target):
            self.names[target] = self.names[source]
        self.names.pop(source, None)

    def _split(self, cluster: int) -> None:
        from sklearn.cluster import KMeans

        members = np.flatnonzero(self.clusters == cluster)
        places = self.xy[members]
        if len(np.unique(places, axis=0)) < 2:
            raise ValueError(f"cluster {cluster} cannot be split: its images lie on one point")
        halves = KMeans(n_clusters=2, n_init=4, random_state=0).fit_predict(places)
        smaller = 1 if np.sum(halves == 1) <= np.sum(halves == 0) else 0
        self.clusters[members[halves == smaller]] = self._new_cluster()

    def _name(self, cluster: int, name) -> None:
        if not _a_name(name):
            raise ValueError(f"a name is printable text of at most {_MAX_NAME} characters")
        if name.strip():
            self.names[cluster] = name.strip()
        else:
            self.names.pop(cluster, None)

    # -- the file ----------------------------------------------------------------------------
    def _save_or_restore(self, before: tuple[np.ndarray, dict[int, str]]) -> None:
        """Save; if the file cannot be written (a full disk), go back to ``before`` so that
        what the page is told stays what the file holds."""
        try:
            self.save()
        except BaseException:
            self.clusters, self.names = before
            self.changes -= 1
            raise

    def document(self) -> dict:
        names = {c: n for c, n in self.names.items() if (self.clusters == c).any()}
        return _document(self.digest, self.clusters, names, self.changes, self.applied)

    def save(self) -> None:
        """Write ``review.json`` into the folder, whole or not at all, and record it."""
        with StagedOutputDir(self.folder, merge=True, names=[REVIEW_FILE]) as stage:
            (stage.path / REVIEW_FILE).write_text(
                json_text(self.document(), indent=None), encoding="utf-8"
            )

    def reviewed(self) -> ReviewedGroups:
        names = {c: n for c, n in self.names.items() if (self.clusters == c).any()}
        return ReviewedGroups(self.ids, self.clusters.copy(), self.xy, names, self.changes)


def applied_review(ids: list[str], clusters: np.ndarray, names: dict[int, str], changes: int):
    """The text of ``review.json`` once a review is applied: the applied clusters and names
    (numbered as the new results number them), so that a later review starts from them."""
    document = _document(ids_digest(ids), clusters, names, changes, True)
    return json_text(document, indent=None)


def _document(digest: str, clusters, names: dict[int, str], changes: int, applied: bool) -> dict:
    return {
        "format": FORMAT,
        "version": VERSION,
        "images": digest,
        "changes": changes,
        "applied": applied,
        "names": {str(c): n for c, n in sorted(names.items())},
        "clusters": np.asarray(clusters).astype(int).tolist(),
    }


def _a_name(value) -> bool:
    """Printable text (a file, a page and a model can hold it) of at most the allowed length."""
    return isinstance(value, str) and value.isprintable() and len(value) <= _MAX_NAME


def run_record(images, options: dict, **writing) -> dict | None:
    """How a run can be made again on the same images (the ``run`` of ``clusters.json`` and
    ``representatives.json``, which ``imgclust review --apply`` repeats): the settings of the
    clustering and of the writing (``writing``: export, model, report), paths made absolute.
    None when it cannot be (images in memory, a feature extractor object)."""
    if images is not None and not isinstance(images, (str, os.PathLike)):
        return None
    record = {k: v for k, v in options.items() if k not in _NOT_REPEATED}
    if not isinstance(record.get("features", "auto"), str):
        return None
    labels = record.get("labels")
    if isinstance(labels, (str, os.PathLike)) and labels != "folders":
        record["labels"] = str(Path(labels).resolve())
    elif labels is not None and labels != "folders":
        record["labels"] = [None if v is None else str(v) for v in labels]
    if isinstance(record.get("cache"), (str, os.PathLike)):
        record["cache"] = str(Path(record["cache"]).resolve())
    record.update(writing, images=None if images is None else str(Path(images).resolve()))
    try:
        json.dumps(record)
    except (TypeError, ValueError):
        return None
    return record


def _rows(value, count: int) -> np.ndarray:
    """Image rows of a request: a non-empty list of distinct whole numbers below ``count``."""
    if not isinstance(value, list) or not value:
        raise ValueError("rows must be a non-empty list of image numbers")
    if not all(type(v) is int and 0 <= v < count for v in value):
        raise ValueError(f"rows must be whole numbers from 0 to {count - 1}")
    return np.unique(np.array(value, dtype=np.int64))
