"""Classes against a reference land-cover raster on the same grid.

The two rasters are read strip by strip into one contingency table (reference label by class),
ignoring pixels that are nodata in either; every score comes from that table:

- majority mapping: each class takes the reference label most of its pixels have (several
  classes may map to one label), as the usual cluster-to-label evaluation does;
- one-to-one mapping: the Hungarian assignment (:func:`scipy.optimize.linear_sum_assignment`)
  of classes to labels that maximises the pixels matched; unmatched classes count as errors;
- adjusted Rand index and normalised mutual information (arithmetic mean of the entropies,
  scikit-learn's default), from the same table.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclust.cluster.evaluation import contingency_scores, diagonal_order
from imgclust.errors import InvalidParameterError
from imgclust.io.outputs import (
    StagedOutputDir,
    check_output_dir,
    json_text,
    output_names,
    record_output,
)
from imgclust.raster._rasterio import GDAL_OPTIONS, rasterio
from imgclust.raster.stack import BandStack

__all__ = ["EVALUATE_OUTPUTS", "ClassEvaluation", "evaluate_classes"]

#: What ``evaluate`` may write at the top of its output folder.
EVALUATE_OUTPUTS = ("evaluation.json", "confusion.csv", "confusion.png", "report.html")


@dataclass
class ClassEvaluation:
    """Scores of classes against reference labels (the content of ``evaluation.json``)."""

    reference_labels: list
    classes: list
    contingency: np.ndarray  # (n_reference_labels, n_classes) pixel counts
    summary: dict


#: A reference (or a class raster) with more distinct values than this is refused: a map of
#: labels has a few dozen; a continuous band (reflectance, elevation) has one per pixel, and
#: the scores of a table that wide would take hours.
MAX_LABELS = 1000


def _contingency(classes: BandStack, reference: BandStack, progress) -> tuple:
    pairs: dict[tuple[float, float], int] = {}
    seen: tuple[set, set] = (set(), set())
    strips = classes.windows()
    with progress("comparing with the reference", len(strips)) as advance:
        for row, n_rows in strips:
            a = classes.read([1], row, n_rows)
            b = reference.read([1], row, n_rows)
            both = a.valid & b.valid
            if both.any():
                stacked = np.stack([b.data[0][both], a.data[0][both]], axis=1)
                values, counts = np.unique(stacked, axis=0, return_counts=True)
                for (ref, cls), count in zip(values.tolist(), counts.tolist(), strict=True):
                    pairs[(ref, cls)] = pairs.get((ref, cls), 0) + count
                seen[0].update(values[:, 0].tolist())
                seen[1].update(values[:, 1].tolist())
                _check_categorical(seen)
            advance()
    if not pairs:
        raise InvalidParameterError(
            "no pixel is valid in both rasters: nothing to compare (check their nodata)"
        )
    ref_labels = sorted({r for r, _ in pairs})
    class_labels = sorted({c for _, c in pairs})
    table = np.zeros((len(ref_labels), len(class_labels)), dtype=np.int64)
    r_index = {v: i for i, v in enumerate(ref_labels)}
    c_index = {v: i for i, v in enumerate(class_labels)}
    for (ref, cls), count in pairs.items():
        table[r_index[ref], c_index[cls]] = count
    return [_tidy(v) for v in ref_labels], [_tidy(v) for v in class_labels], table


def _check_categorical(seen: tuple[set, set]) -> None:
    for values, what in zip(seen, ("reference", "class raster"), strict=True):
        if len(values) > MAX_LABELS:
            continuous = any(not float(v).is_integer() for v in values)
            raise InvalidParameterError(
                f"the {what} holds more than {MAX_LABELS:,} distinct values"
                + (", not whole numbers" if continuous else "")
                + ": it looks like a continuous band, not a map of labels; give a raster of "
                "classes (one whole number per label)"
            )


def _tidy(value: float):
    return int(value) if float(value).is_integer() else float(value)


def _check_same_grid(classes: BandStack, reference: BandStack, names) -> None:
    if (classes.width, classes.height) != (reference.width, reference.height):
        raise InvalidParameterError(
            f"{names[0]} is {classes.width}x{classes.height} pixels but {names[1]} is "
            f"{reference.width}x{reference.height}: the reference must be on the same grid "
            "(resample it first, e.g. with gdalwarp -te ... -ts ...)"
        )
    if classes.crs != reference.crs or not classes.transform.almost_equals(reference.transform):
        raise InvalidParameterError(
            f"{names[0]} and {names[1]} are not on the same grid (CRS or transform differ); "
            "resample the reference first, e.g. with gdalwarp"
        )


def evaluate_classes(
    classes: str | os.PathLike,
    reference: str | os.PathLike,
    output: str | os.PathLike,
    *,
    classes_nodata: float | None = None,
    reference_nodata: float | None = None,
    overwrite: bool = False,
    report: bool = True,
    progress=None,
) -> ClassEvaluation:
    """Compare a class raster with a reference raster on the same grid; write the results.

    Writes ``evaluation.json`` (mappings, accuracies, ARI, NMI, per-label precision and
    recall), ``confusion.csv`` (reference label by class, pixel counts) and ``confusion.png``
    into ``output``, and ``report.html`` unless ``report`` is false. Pixels that are nodata in
    either raster are ignored.

    Parameters
    ----------
    classes, reference : path
        Single-band rasters (the first band is used) on the same grid.
    output : path
    classes_nodata, reference_nodata : float, optional
        Override the files' nodata values.
    overwrite : bool
    report : bool, default=True
    progress : callable, optional

    Returns
    -------
    ClassEvaluation
    """
    from imgclust._progress import no_progress

    progress = progress or no_progress
    names = output_names(EVALUATE_OUTPUTS, report=report)
    check_output_dir(output, overwrite=overwrite, names=names)
    rio = rasterio()
    with (
        rio.Env(**GDAL_OPTIONS),
        BandStack(classes, nodata=classes_nodata) as a,
        BandStack(reference, nodata=reference_nodata) as b,
    ):
        _check_same_grid(a, b, (Path(classes).name, Path(reference).name))
        start = time.perf_counter()
        ref_labels, class_labels, table = _contingency(a, b, progress)
        order = diagonal_order(table)  # each reference label's match under it
        class_labels, table = [class_labels[c] for c in order], table[:, order]
        seconds = time.perf_counter() - start
    summary = {
        "classes": str(classes),
        "reference": str(reference),
        "reference_labels": ref_labels,
        "class_labels": class_labels,
        "pixels": int(table.sum()),
        **contingency_scores(table, ref_labels, class_labels),
        "timings": {"compare": seconds},
    }
    with StagedOutputDir(output, overwrite=overwrite, names=names) as stage:
        _write(stage.path, table, ref_labels, class_labels, summary)
        if report:
            from imgclust.report.raster_report import write_evaluate_report

            write_evaluate_report(summary, stage.path)
    record_output(summary, output, report)
    return ClassEvaluation(ref_labels, class_labels, table, summary)


def _write(folder: Path, table, ref_labels, class_labels, summary) -> None:
    from imgclust.report.raster_plots import confusion_figure

    (folder / "evaluation.json").write_text(json_text(summary))
    with open(folder / "confusion.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["reference \\ class", *class_labels])
        for label, row in zip(ref_labels, table.tolist(), strict=True):
            writer.writerow([label, *row])
    title = (
        f"accuracy {summary['accuracy_majority']:.3f} (majority), "
        f"{summary['accuracy_one_to_one']:.3f} (one-to-one)"
    )
    confusion_figure(
        table, [str(v) for v in ref_labels], [str(v) for v in class_labels], title
    ).savefig(folder / "confusion.png")
