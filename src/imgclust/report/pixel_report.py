"""``report.html`` of the one-image jobs: ``segment``, ``choose-k`` and ``edges``."""

from __future__ import annotations

from pathlib import Path

from imgclust.report.html import Report, Swatch

__all__ = ["write_choose_k_report", "write_edges_report", "write_segment_report"]


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _image_fact(image: dict) -> tuple[str, str]:
    pixels = image["pixels"]
    amount = f"{pixels / 1e6:.1f} MP" if pixels >= 100_000 else f"{pixels:,} pixels"
    return ("image", f"{image['width']} x {image['height']} ({amount})")


def _segment_facts(summary: dict) -> list[tuple[str, object]]:
    facts: list[tuple[str, object]] = [
        _image_fact(summary["image"]),
        ("colours", f"{summary['n_clusters']} in {summary['color_space'].upper()}"),
        ("distinct colours", f"{summary['n_distinct_colors']:,}")
        if summary.get("n_distinct_colors")
        else ("method", summary["method"]),
        ("inertia", f"{summary['inertia']:.4g}"),
    ]
    fit = summary.get("fit")
    if fit and fit["summary_size"]:
        iterations = f"{fit['summary_iter']} + {fit['refinement_iter']}"
    else:
        iterations = str(summary["n_iter"])
    facts.append(("iterations", iterations))
    if "chosen_k" in summary:
        facts.append(("K chosen by", summary["chosen_k"]["rule"]))
    facts.extend(("warning", text) for text in summary.get("warnings", []))
    if "indexed_png_bytes" in summary:
        size = _size(summary["indexed_png_bytes"])
        if "original_bytes" in summary:
            size += f" (original {_size(summary['original_bytes'])})"
        facts.append(("indexed.png", size))
    return facts


def _choose_k_section(report: Report, folder: Path, rows: list[dict], best_k: int, rule: str):
    report.heading("Choosing K")
    report.figure(folder, "choose_k.png", f"Elbow and silhouette: K = {best_k} by {rule}")
    report.table(
        ["K", "inertia", "silhouette", "chosen"],
        [
            [r["k"], f"{r['inertia']:.4g}", f"{r['silhouette']:.4f}", "yes" if r["chosen"] else ""]
            for r in rows
        ],
    )


def write_segment_report(
    summary: dict, folder: Path, *, sweep=None, timings: dict[str, float] | None = None
) -> Path:
    """Write ``report.html`` for a segmentation whose outputs are already in ``folder``.

    Parameters
    ----------
    summary : dict
        The content of ``palette.json``.
    folder : path
    sweep : KSweep, optional
        The K sweep of ``-k auto``.
    timings : dict, optional
    """
    folder = Path(folder)
    report = Report("imgclust segment", summary["image"]["path"] or "an array")
    report.facts(_segment_facts(summary))
    if "fit" in summary:
        fit = summary["fit"]
        report.text(f"K-means: {fit['description']}; each run stopped when {fit['stop_rule']}.")
    report.heading("Original and segmented")
    report.figure(folder, "comparison.png", "The original (left) beside the segmented image")
    report.heading("Palette")
    report.figure(folder, "palette.png", "The colours, each as wide as its share of the pixels")
    report.table(
        ["cluster", "colour", "RGB", "pixels", "fraction"],
        [
            [
                c["index"],
                Swatch(c["hex"]),
                " ".join(map(str, c["rgb"])),
                c["pixels"],
                f"{c['fraction']:.4f}",
            ]
            for c in summary["clusters"]
        ],
    )
    if "superpixels" in summary:
        _superpixel_section(report, folder, summary["superpixels"])
    report.heading("The pixels in colour space")
    space = summary.get("scatter_space", summary["color_space"]).upper()
    report.figure(folder, "colors3d.png", f"A sample of the pixels in {space}, coloured by cluster")
    if sweep is not None:
        _choose_k_section(report, folder, sweep.to_rows(), sweep.best_k, sweep.rule)
    report.files(folder)
    parameters = {
        "n_clusters": summary["n_clusters"],
        "color_space": summary["color_space"],
        "seed": summary["seed"],
        **summary.get("params", {}),
    }
    return report.write(folder, parameters, timings or {})


def _superpixel_section(report: Report, folder: Path, facts: dict) -> None:
    report.heading("Superpixels against every pixel")
    report.text(
        f"SLIC cut the image into {facts['made']} superpixels (asked: {facts['requested']}, "
        f"compactness {facts['compactness']:g}); k-means ran on their mean colours weighted by "
        "their sizes and each superpixel took its cluster. Plain k-means on every pixel ran "
        "with the same options for comparison. Inertia is measured on every pixel in both; "
        "fewer regions and a smaller boundary share mean more region-like segments."
    )
    report.figure(
        folder, "superpixels_vs_pixels.png", "Superpixel segmentation (left), every pixel (right)"
    )
    report.figure(folder, "superpixels.png", "The superpixels' outlines over the image")
    report.table(
        ["clustered", "seconds", "points fitted", "inertia", "regions", "boundary share"],
        [
            [
                row["method"],
                f"{row['seconds']:.2f}",
                f"{row['fitted_on']:,}",
                f"{row['inertia']:.4g}",
                f"{row['regions']:,}",
                f"{row['boundary_share']:.2%}",
            ]
            for row in facts["comparison"]
        ],
    )


def write_choose_k_report(
    sweep, folder: Path, *, source: str | None, parameters: dict, timings: dict[str, float]
) -> Path:
    """Write ``report.html`` for a K sweep whose ``choose_k.png`` is in ``folder``."""
    report = Report("imgclust choose-k", source or "an array")
    report.facts([("chosen K", sweep.best_k), ("rule", sweep.rule)])
    _choose_k_section(report, Path(folder), sweep.to_rows(), sweep.best_k, sweep.rule)
    report.files(folder)
    return report.write(folder, parameters, timings)


def write_edges_report(
    summary: dict, folder: Path, *, source: str | None, parameters: dict, timings: dict[str, float]
) -> Path:
    """Write ``report.html`` for the edges job whose images are in ``folder``."""
    folder = Path(folder)
    report = Report("imgclust edges", source or "an array")
    thresholds = f"{summary['low_threshold']:.4f} / {summary['high_threshold']:.4f}"
    report.facts(
        [
            ("thresholds low / high", thresholds),
            ("chosen", "automatically" if summary["automatic_thresholds"] else "by hand"),
            ("blur sigma", summary["sigma"]),
            ("edge pixels", f"{summary['edge_fraction']:.2%}"),
        ]
    )
    report.heading("Canny edges")
    report.figure(
        folder,
        "edges_preview.png",
        "The edges over the image and alone, shrunk so that every edge stays visible (the "
        "full-size edges.png and edges_overlay.png are under Files)",
    )
    if "segments_k" in summary:
        report.heading("Segment boundaries")
        report.figure(
            folder,
            "boundaries.png",
            f"Boundaries of the {summary['segments_k']}-colour segmentation over the image",
        )
    report.files(folder)
    return report.write(folder, parameters, timings)
