"""``imgclust evaluate``: classes against a reference land-cover raster."""

from __future__ import annotations

import click

from imgclust.cli._options import Reporter, output_options, report_option


@click.command("evaluate")
@click.argument("classes", type=click.Path(dir_okay=False))
@click.argument("reference", type=click.Path(dir_okay=False))
@click.option(
    "--reference-nodata",
    type=float,
    default=None,
    help="Nodata value of the reference (overrides the file's).",
)
@report_option
@output_options
def command(classes, reference, reference_nodata, no_report, output, overwrite, as_json, quiet):
    """Compare CLASSES (e.g. classes.tif) with REFERENCE labels on the same grid.

    Writes evaluation.json (majority and one-to-one mappings, accuracies, adjusted Rand index,
    normalised mutual information, per-label precision and recall), confusion.csv,
    confusion.png and report.html into the output folder.
    """
    from imgclust.raster.evaluate import evaluate_classes

    reporter = Reporter(quiet=quiet, as_json=as_json)
    output = output or "evaluation"
    result = evaluate_classes(
        classes,
        reference,
        output,
        reference_nodata=reference_nodata,
        overwrite=overwrite,
        report=not no_report,
        progress=reporter.bar,
    )
    s = result.summary
    rows = [
        ("pixels compared", f"{s['pixels']:,}"),
        (
            "accuracy",
            f"{s['accuracy_majority']:.3f} (majority mapping), "
            f"{s['accuracy_one_to_one']:.3f} (one-to-one)",
        ),
        ("adjusted Rand", f"{s['adjusted_rand_index']:.3f}"),
        ("NMI", f"{s['normalized_mutual_info']:.3f}"),
        ("outputs", s["output"]),
    ]
    reporter.summary("imgclust evaluate", rows, s)
