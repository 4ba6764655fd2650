"""``imgclust choose-k``: elbow and silhouette over a range of K."""

from __future__ import annotations

import click

from imgclust.cli._options import (
    Reporter,
    default_output,
    image_options,
    load_mask,
    output_options,
    report_option,
    seed_option,
    space_option,
)
from imgclust.cluster.choose_k import parse_k_range
from imgclust.pixels.jobs import run_choose_k


@click.command("choose-k")
@click.argument("image", type=click.Path(dir_okay=False))
@click.option(
    "-k",
    "--n-clusters",
    "k",
    default="auto",
    show_default=True,
    help="auto: choose K (as segment and group take it).",
)
@click.option(
    "--k-range", default="2-16", show_default=True, help="K values tried: 2-16, 2-16:2 or 2,4,8."
)
@click.option("--k", "old_k_range", default=None, hidden=True, help="Deprecated: --k-range.")
@space_option
@click.option(
    "--n-init", type=click.IntRange(min=1), default=4, show_default=True, help="Attempts per K."
)
@seed_option
@image_options
@report_option
@output_options
def command(
    image,
    k,
    k_range,
    old_k_range,
    color_space,
    n_init,
    seed,
    max_pixels,
    mask,
    no_report,
    output,
    overwrite,
    as_json,
    quiet,
):
    """Score K for IMAGE by the elbow of the inertia and the silhouette; pick one.

    K is the knee of the inertia curve (Kneedle); with no knee, the best silhouette. Writes
    choose_k.png, choose_k.csv and report.html.
    """
    if str(k).lower() != "auto":
        raise click.BadParameter(
            f"{k!r}: choose-k chooses K; give the values to try with --k-range", param_hint="-k"
        )
    if old_k_range is not None:  # earlier versions' spelling, kept for one release
        if not quiet:
            click.echo(
                "imgclust: --k is deprecated and will be removed; write -k auto --k-range "
                f"{old_k_range} (as segment and group take it)",
                err=True,
            )
        k_range = old_k_range
    reporter = Reporter(quiet=quiet, as_json=as_json)
    output = output or default_output(image, "choose-k")
    result = run_choose_k(
        image,
        output,
        k_values=parse_k_range(k_range),
        progress=reporter.bar,
        mask=load_mask(mask, max_pixels),
        overwrite=overwrite,
        report=not no_report,
        max_pixels=max_pixels,
        step=reporter.step,
        color_space=color_space.lower(),
        n_init=n_init,
        random_state=seed,
    )
    table = "  ".join(f"K={r['k']}: {r['silhouette']:.3f}" for r in result["scores"])
    reporter.summary(
        "imgclust choose-k",
        [
            ("chosen K", f"{result['best_k']} ({result['rule']})"),
            ("silhouette", table),
            ("outputs", result["output"]),
        ],
        result,
    )
