"""``report.html`` of the raster jobs: ``classify`` and ``evaluate``."""

from __future__ import annotations

from pathlib import Path

from imgclust.report.html import Report, Swatch, per_label_rows

__all__ = ["write_classify_report", "write_evaluate_report"]


def _area(entry: dict) -> str:
    if "hectares" in entry:
        return f"{entry['hectares']:,.1f} ha"
    if entry["area_unit"] == "pixels":
        return f"{entry['pixels']:,} pixels"
    return f"{entry['area']:,.4g} {entry['area_unit']}"


def _reading_lines(summary: dict) -> list[str]:
    """How the scene was read, in sentences: the product, the resampling, the masks."""
    lines = [f"Read from the {summary['product']}."] if "product" in summary else []
    for file, how in summary.get("resampling", {}).items():
        lines.append(f"{file} resampled onto the grid of {summary['resolution']:g}: {how}.")
    lines += [f"Left out: the pixels that {mask} marks." for mask in summary.get("masks", [])]
    return lines


def _classify_facts(summary: dict) -> list[tuple[str, object]]:
    valid = summary["valid_pixels"]
    total = valid + summary["nodata_pixels"]
    facts: list[tuple[str, object]] = [
        ("scene", f"{summary['width']:,} x {summary['height']:,} pixels"),
        ("classes", summary["n_classes"]),
        ("valid pixels", f"{valid:,} ({valid / total:.1%})" if total else "0"),
        ("features", len(summary["features"])),
        (
            "CRS",
            summary["crs"]
            or ("none" if summary.get("georeferenced") else "none: not georeferenced"),
        ),
    ]
    if summary.get("model_applied"):
        facts.append(("model", "applied from model.json"))
    elif summary.get("inertia") is not None:
        facts.append(("inertia (sample)", f"{summary['inertia']:.4g}"))
    return facts


def write_classify_report(summary: dict, folder: Path, *, sweep=None) -> Path:
    """Write ``report.html`` for a classification whose outputs are already in ``folder``.

    Parameters
    ----------
    summary : dict
        The content of ``classes.json`` (with ``timings``).
    folder : path
    sweep : KSweep, optional
        The K sweep of ``-k auto`` (its figure, ``choose_k.png``, is in ``folder``).
    """
    folder = Path(folder)
    names = summary["features"]
    report = Report("imgclust classify", ", ".join(summary["inputs"]))
    report.facts(_classify_facts(summary))
    for warning in summary.get("warnings", []):
        report.text(f"Warning: {warning}.")
    for line in _reading_lines(summary):
        report.text(line)
    quick = summary.get("quicklook") or {}
    shown = (
        f": {', '.join(quick['names'])} as red, green, blue ({quick['chosen_by']})"
        if len(quick.get("names", [])) == 3
        else ""
    )
    report.heading("The scene and its classes")
    report.gallery(
        folder,
        [
            ("quicklook.png", f"The input, contrast-stretched{shown}"),
            ("classes.png", "The classes, with their legend"),
        ],
    )
    report.heading("Classes")
    report.table(
        ["code", "name", "colour", "pixels", "fraction", "area", *(f"mean {n}" for n in names)],
        [
            [
                c["code"],
                c["name"],
                Swatch(c["color"]),
                f"{c['pixels']:,}",
                f"{c['fraction']:.4f}",
                _area(c),
                *(f"{c['mean'][n]:.4g}" for n in names),
            ]
            for c in summary["classes"]
        ],
    )
    report.text(
        f"Classes are numbered {summary['class_order']}; 0 is nodata in classes.tif. "
        "classes.tif.aux.xml holds their attribute table and names (GDAL reads it with the "
        "raster) and classes.qml their QGIS style"
        + (" ; classes.tif is a Cloud Optimized GeoTIFF." if summary.get("cog") else ".")
    )
    if sweep is not None:
        report.heading("Choosing K")
        report.text(f"K = {sweep.best_k}: {sweep.rule}, on the fitted sample.")
        report.figure(folder, "choose_k.png", "Inertia (elbow) and silhouette for each K")
        report.table(
            ["K", "inertia", "silhouette", "chosen"],
            [[r["k"], f"{r['inertia']:.4g}", f"{r['silhouette']:.3f}", "yes" if r["chosen"] else ""]
             for r in sweep.to_rows()],
        )  # fmt: skip
    report.heading("Spread of each feature (standard deviation)")
    report.table(
        ["code", *names],
        [[c["code"], *(f"{c['std'][n]:.4g}" for n in names)] for c in summary["classes"]],
    )
    parameters = {
        "features": ", ".join(names),
        "scaling": summary["scaling"],
        "seed": summary["seed"],
        "sample_size": summary["sample_size"],
        "iterations": summary["n_iter"],
        "transform": summary["transform"],
    }
    report.files(folder)
    return report.write(folder, parameters, summary.get("timings", {}))


def write_evaluate_report(summary: dict, folder: Path) -> Path:
    """Write ``report.html`` for an evaluation whose outputs are already in ``folder``."""
    folder = Path(folder)
    report = Report("imgclust evaluate", f"{summary['classes']} against {summary['reference']}")
    report.facts(
        [
            ("pixels compared", f"{summary['pixels']:,}"),
            ("accuracy (majority)", f"{summary['accuracy_majority']:.3f}"),
            ("accuracy (one-to-one)", f"{summary['accuracy_one_to_one']:.3f}"),
            ("adjusted Rand index", f"{summary['adjusted_rand_index']:.3f}"),
            ("normalised mutual info", f"{summary['normalized_mutual_info']:.3f}"),
        ]
    )
    report.heading("Confusion matrix")
    report.figure(folder, "confusion.png", "Reference labels (rows) by class (columns), pixels")
    report.heading("Each reference label")
    report.table(
        ["label", "precision", "recall"],
        per_label_rows(summary["per_label"]),
    )
    report.heading("Class to label")
    one_to_one = summary["one_to_one_mapping"]
    report.table(
        ["class", "label by majority", "label one-to-one"],
        [
            [c, label, one_to_one.get(str(c), "")]
            for c, label in summary["majority_mapping"].items()
        ],
    )
    report.files(folder)
    parameters = {"classes": summary["classes"], "reference": summary["reference"]}
    return report.write(folder, parameters, summary.get("timings", {}))
