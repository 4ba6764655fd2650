"""``imgclust edges``: Canny edges and segment boundaries."""

from __future__ import annotations

import click

from imgclust.cli._options import (
    FiniteFloat,
    Reporter,
    default_output,
    max_pixels_option,
    output_options,
    report_option,
    seed_option,
    space_option,
)
from imgclust.pixels.jobs import run_edges


@click.command("edges")
@click.argument("image", type=click.Path(dir_okay=False))
@click.option(
    "--sigma",
    type=FiniteFloat(min=0),
    default=1.0,
    show_default=True,
    help="Gaussian blur before the gradient.",
)
@click.option(
    "--low",
    type=FiniteFloat(min=0),
    default=None,
    help="Low hysteresis threshold (gradient of the grey image in 0-1); "
    "automatic unless given with --high.",
)
@click.option("--high", type=FiniteFloat(min=0), default=None, help="High hysteresis threshold.")
@click.option(
    "-k",
    "--n-clusters",
    "k",
    type=click.IntRange(min=0),
    default=8,
    show_default=True,
    help="Colours of the segmentation whose boundaries are drawn (0: none).",
)
@space_option
@seed_option
@max_pixels_option()
@report_option
@output_options
def command(
    image,
    sigma,
    low,
    high,
    k,
    color_space,
    seed,
    max_pixels,
    no_report,
    output,
    overwrite,
    as_json,
    quiet,
):
    """Canny edges of IMAGE, and the boundaries of its colour segments drawn over it.

    Writes edges.png, edges_overlay.png, edges_preview.png, boundaries.png, edges.json and
    report.html.
    """
    if (low is None) != (high is None):
        raise click.UsageError("give both --low and --high, or neither for automatic thresholds")
    reporter = Reporter(quiet=quiet, as_json=as_json)
    output = output or default_output(image, "edges")
    result = run_edges(
        image,
        output,
        sigma=sigma,
        low=low,
        high=high,
        n_clusters=k or None,
        overwrite=overwrite,
        report=not no_report,
        max_pixels=max_pixels,
        progress=reporter.bar,
        color_space=color_space.lower(),
        random_state=seed,
    )
    reporter.summary(
        "imgclust edges",
        [
            (
                "thresholds",
                f"low {result['low_threshold']:.4f}, high {result['high_threshold']:.4f}"
                + (" (automatic)" if result["automatic_thresholds"] else ""),
            ),
            ("edge pixels", f"{result['edge_fraction']:.1%}"),
            ("outputs", result["output"]),
        ],
        result,
    )
