"""What ``imgclust representatives`` and ``imgclust propagate`` call.

``representatives`` writes a whole folder through a staging folder. ``propagate`` adds
``propagated.csv`` and ``propagation.json`` to that folder (and rewrites its ``report.html``)
through a staging folder merged into it, and refuses to replace them without ``overwrite``.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

from imgclust._progress import ProgressFactory, no_progress
from imgclust.collection.outputs import clustering_points, write_map
from imgclust.collection.review import REVIEW_FILE, ReviewStore, applied_review, run_record
from imgclust.errors import InvalidParameterError, OutputExistsError
from imgclust.io.outputs import (
    StagedOutputDir,
    check_output_dir,
    csv_text,
    json_text,
    output_names,
    record_output,
)
from imgclust.report.semi_report import write_semi_report
from imgclust.semi.propagate import (
    DEFAULT_EDIT,
    check_options,
    make_classifier,
    propagate_labels,
)
from imgclust.semi.representatives import (
    find_representatives,
    load_state,
    read_to_label,
    write_representatives,
)

__all__ = [
    "apply_representatives_review",
    "read_representative_labels",
    "run_propagate",
    "run_representatives",
]

LABELS_FILE = "labels.csv"
_OUTPUTS = ("propagated.csv", "propagation.json")
#: What ``representatives`` may write at the top of its output folder.
REPRESENTATIVES_OUTPUTS = (
    "to_label.csv", "thumbnails", "representatives.png", "assignments.csv", "skipped.csv",
    "embedding.png", "embedding.csv", "representatives.npz", "representatives.json", "map",
    "report.html", "review.json",
)  # fmt: skip


def run_representatives(
    images: str | os.PathLike | None,
    output: str | os.PathLike,
    *,
    overwrite: bool = False,
    report: bool = True,
    progress: ProgressFactory = no_progress,
    **options,
) -> dict:
    """Find the representatives (:func:`find_representatives`) and write them into ``output``,
    with ``report.html`` unless ``report`` is false."""
    reviewed = options.get("reviewed")
    without = (set() if report else {"map"}) | (set() if reviewed else {REVIEW_FILE})
    names = output_names(REPRESENTATIVES_OUTPUTS, report=report, without=without)
    check_output_dir(output, overwrite=overwrite, names=names)
    output = Path(output)
    run = run_record(images, options, report=report)
    reps = find_representatives(images, exclude=[output], progress=progress, **options)
    with StagedOutputDir(output, overwrite=overwrite, names=names) as stage:
        with progress("writing outputs", 1) as advance:
            summary = write_representatives(reps, stage.path, run)
            result = reps.clustering
            if reviewed is not None:
                text = applied_review(result.ids, result.labels, result.names, reviewed.changes)
                (stage.path / REVIEW_FILE).write_text(text, encoding="utf-8")
            advance()
        if report:
            write_map(result, clustering_points(result), stage.path, output, progress)
            write_semi_report(stage.path, summary)
    return record_output(summary, output, report)


def apply_representatives_review(
    folder: str | os.PathLike, *, progress: ProgressFactory = no_progress
) -> dict:
    """Apply the review of a representatives folder: ``representatives`` runs again with the
    reviewed clusters (features from the cache, the same hold-out, the map of
    ``embedding.csv``); each cluster's name becomes its representative's label in
    ``to_label.csv``, for ``propagate --labels FOLDER/to_label.csv``."""
    store = ReviewStore(folder)
    images, options = store.run_options()
    return run_representatives(
        images, folder, overwrite=True, progress=progress, reviewed=store.reviewed(), **options
    )


def read_representative_labels(folder: str | os.PathLike, labels_csv: str | os.PathLike):
    """Cluster -> label from a CSV of path,label naming representatives of ``folder``.

    Rows with an empty label are left out (their clusters stay unlabelled); a path that is not
    a representative, or a file without a single label, is an error.
    """
    by_path = {row["path"]: int(row["cluster"]) for row in read_to_label(folder)}
    path = Path(labels_csv)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidParameterError(
            f"{path}: the labels cannot be read ({exc}); label the representatives with "
            "'imgclust label' or fill the label column of to_label.csv"
        ) from None
    if rows and not {"path", "label"} <= set(rows[0]):
        raise InvalidParameterError(f"{path}: needs a header row with 'path' and 'label' columns")
    unknown = [r["path"] for r in rows if r["path"] not in by_path]
    if unknown:
        shown = ", ".join(unknown[:3]) + (" ..." if len(unknown) > 3 else "")
        raise InvalidParameterError(
            f"{path}: {len(unknown)} path(s) are not representatives ({shown}); label the "
            "paths listed in to_label.csv"
        )
    seeds = {by_path[r["path"]]: r["label"].strip() for r in rows if (r["label"] or "").strip()}
    if not seeds:
        raise InvalidParameterError(
            f"{path}: no representative has a label; label at least two classes with "
            "'imgclust label' (or 'imgclust review') or in the label column of to_label.csv"
        )
    return seeds, len(by_path)


def _train(state, propagation, classifier: str, random_state: int) -> dict:
    labelled = propagation.labelled
    y = propagation.labels[labelled].astype(str)
    model = make_classifier(classifier, random_state)
    model.fit(state["features"][labelled], y)
    result: dict = {"classifier": classifier, "trained_on": int(labelled.sum())}
    test_truth = state["test_truth"]
    known = test_truth != ""  # saved as "" where unknown
    result["test_images"] = int(known.sum())
    if known.any():
        predicted = model.predict(state["test_features"][known])
        result["test_accuracy"] = float(np.mean(predicted == test_truth[known]))
    return result


def _default_labels(folder: Path) -> Path:
    """``to_label.csv`` once a review is applied (the clusters' names are its labels; the
    labels typed earlier went into the review), else what ``imgclust label`` saved
    (``labels.csv``), else ``to_label.csv`` filled by hand."""
    try:
        applied = json.loads((folder / REVIEW_FILE).read_text(encoding="utf-8"))["applied"]
    except (OSError, ValueError, KeyError, TypeError):
        applied = False
    typed = folder / LABELS_FILE
    return typed if typed.exists() and applied is not True else folder / "to_label.csv"


def run_propagate(
    folder: str | os.PathLike,
    *,
    labels: str | os.PathLike | None = None,
    percentile: float = 100,
    edit: int = DEFAULT_EDIT,
    rule: str = "cluster",
    train: str | None = None,
    random_state: int = 0,
    overwrite: bool = False,
    report: bool = True,
    progress: ProgressFactory = no_progress,
) -> dict:
    """Spread the labels of ``folder``'s representatives; optionally train a classifier.

    Parameters
    ----------
    folder : path
        A folder written by ``imgclust representatives``.
    labels : path, optional
        CSV of path,label (default ``folder/labels.csv``, as ``imgclust label`` saves it; the
        label column of ``folder/to_label.csv`` where there is none, or once a review is
        applied: the clusters' names are written there).
    percentile, edit, rule
        See :func:`imgclust.semi.propagate.propagate_labels`.
    train : {"logistic", "knn", "svm", "forest"}, optional
        Train this classifier on the propagated set; with held-out images of known label, its
        test accuracy is reported.
    overwrite : bool
        Replace an earlier ``propagated.csv``.
    report : bool, default=True
        Rewrite the folder's ``report.html`` with the labels and what became of them.
    progress : callable, optional
        Progress factory (see :mod:`imgclust._progress`).

    Returns
    -------
    dict
        The content of ``propagation.json``.
    """
    folder = Path(folder)
    check_options(percentile, edit, rule)
    if train is not None:
        make_classifier(train)
    state = load_state(folder)
    if labels is None:  # what 'imgclust label' saved, else the labels of to_label.csv
        labels = (
            folder / LABELS_FILE if (folder / LABELS_FILE).exists() else folder / "to_label.csv"
        )
    seeds, n_representatives = read_representative_labels(folder, labels)
    existing = [name for name in _OUTPUTS if (folder / name).exists()]
    if existing and not overwrite:
        raise OutputExistsError(f"{folder / existing[0]} exists; pass --overwrite to replace it")
    check_output_dir(
        folder, merge=True, names=output_names((*_OUTPUTS, "report.html"), report=report)
    )
    with progress("spreading the labels", 1) as advance:
        propagation = propagate_labels(
            state["clusters"],
            state["distances"],
            state["representatives"],
            seeds,
            features=state["features"],
            embedding=state["embedding"],
            percentile=percentile,
            edit=edit,
            rule=rule,
        )
        advance()
    labelled = propagation.labelled
    summary: dict = {
        "folder": str(folder),
        "rule": rule,
        "percentile": percentile,
        "edit": edit,
        "representatives": n_representatives,
        "labelled_representatives": len(seeds),
        "classes": len(set(seeds.values())),
        "images": len(labelled),
        "labelled_images": int(labelled.sum()),
        "dropped_by_editing": int(propagation.edited.sum()),
        "images_per_label": _images_per_label(propagation.labels[labelled]),
    }
    truth = state["truth"]
    checkable = labelled & (truth != "")
    if checkable.any():
        right = propagation.labels[checkable].astype(str) == truth[checkable]
        summary["label_accuracy"] = float(right.mean())
        summary["label_accuracy_of"] = int(checkable.sum())
    if train:
        with progress(f"training a {train} classifier", 1) as advance:
            summary["training"] = _train(state, propagation, train, random_state)
            advance()
    with progress("writing outputs", 1) as advance:
        _write_propagation(folder, state, propagation, summary, seeds, report)
        advance()
    return summary


def _images_per_label(labels: np.ndarray) -> dict[str, int]:
    names, counts = np.unique(labels.astype(str), return_counts=True)
    return {str(name): int(count) for name, count in zip(names, counts, strict=True)}


def _write_propagation(folder: Path, state, propagation, summary, seeds, report: bool) -> None:
    labelled = propagation.labelled
    rows = [
        [
            state["ids"][i],
            propagation.labels[i],
            int(state["ranks"][i]),
            int(propagation.original[i]),
        ]
        for i in np.flatnonzero(labelled)
    ]
    names = output_names((*_OUTPUTS, "report.html"), report=report)
    with StagedOutputDir(folder, merge=True, names=names) as stage:
        header = ["path", "label", "rank", "original"]
        (stage.path / "propagated.csv").write_text(csv_text(header, rows), encoding="utf-8")
        (stage.path / "propagation.json").write_text(json_text(summary), encoding="utf-8")
        if report:
            representatives = json.loads((folder / "representatives.json").read_text())
            write_semi_report(
                folder, representatives, propagation=summary, seeds=seeds, into=stage.path
            )
    if report:
        summary["report"] = str(folder / "report.html")
