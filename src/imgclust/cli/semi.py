"""``imgclust representatives``, ``label`` and ``propagate``: label a few, learn many."""

from __future__ import annotations

import math

import click

from imgclust.cli._options import (
    FiniteFloat,
    Reporter,
    output_options,
    parse_k,
    report_option,
    seed_option,
    serve_until_stopped,
    summary_options,
)
from imgclust.cli.group import collection_arguments, collection_options, default_output


def _holdout(text: str | None) -> float | int | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither a count nor a fraction", param_hint="--holdout"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise click.BadParameter(f"{text!r} must be a count or a fraction", param_hint="--holdout")
    return int(value) if value >= 1 and value.is_integer() else value


@click.command("representatives")
@collection_options(default_scale="standard")
@click.option(
    "-k",
    "--clusters",
    "k",
    default="50",
    show_default=True,
    help="Number of clusters: the images you will label (or 'auto').",
)
@click.option(
    "--method",
    type=click.Choice(["kmeans", "minibatch", "agglomerative", "kmedoids"]),
    default="kmeans",
    show_default=True,
    help="Clustering method.",
)
@click.option(
    "--holdout",
    help="Keep images out of the clustering as a test set: a count, or a fraction like 0.2.",
)
@click.option(
    "--holdout-from",
    type=click.Choice(["random", "end"]),
    default="random",
    show_default=True,
    help="Held-out images drawn at random (seeded), or the last ones in reading order.",
)
@report_option
@output_options
def representatives_command(
    k, method, holdout, holdout_from, no_report, output, overwrite, as_json, quiet, **options
):
    """Cluster the images of FOLDER and pick the one nearest each centre, to be labelled.

    Writes to_label.csv (path, cluster, an empty label column), representatives.png,
    thumbnails/, assignments.csv, embedding.png, report.html and what 'imgclust propagate'
    reads. Label them with 'imgclust label OUTDIR', or fill the label column of to_label.csv.
    """
    from imgclust.semi.jobs import run_representatives

    folder, keywords = collection_arguments(options)
    reporter = Reporter(quiet=quiet, as_json=as_json)
    output = output or default_output(folder, keywords["dataset"], "representatives")
    summary = run_representatives(
        folder,
        output,
        n_clusters=parse_k(k),
        method=method,
        holdout=_holdout(holdout),
        holdout_from=holdout_from,
        overwrite=overwrite,
        report=not no_report,
        progress=reporter.bar,
        **keywords,
    )
    rows = [
        (
            "images",
            f"{summary['clustered']:,} clustered, {summary['held_out']:,} held out, "
            f"{summary['skipped']:,} skipped",
        ),
        ("to label", f"{summary['n_clusters']} representatives (to_label.csv)"),
    ]
    if "cluster_purity" in summary:
        rows.append(("cluster purity", f"{summary['cluster_purity']:.3f} (known labels)"))
    rows.append(("next", f"imgclust label {output}"))
    rows.append(("outputs", summary["output"]))
    reporter.summary("imgclust representatives", rows, summary)


@click.command("label")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, help="Port (default: a free one)."
)
@click.option("--open/--no-open", "open_browser", default=True, help="Open the page in a browser.")
def label_command(folder, port, open_browser):
    """Label the representatives of FOLDER in the browser (a server on 127.0.0.1 only).

    Prints the page's address, with its secret token; every change is saved to
    FOLDER/labels.csv at once. Stop with Ctrl+C: nothing is lost.
    """
    from imgclust.semi.label_server import LabelServer

    server = LabelServer(folder, port=port)
    click.echo(f"Labelling {len(server.store.items)} representatives; open:\n  {server.url}")
    click.echo(f"Labels are saved to {server.store.path} as you type. Ctrl+C stops.")
    serve_until_stopped(server, open_browser)
    labelled = sum(1 for v in server.store.labels.values() if v)
    click.echo(f"{labelled} of {len(server.store.items)} labelled in {server.store.path}")


@click.command("propagate")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--labels",
    type=click.Path(dir_okay=False),
    help="CSV of path,label for the representatives (default: FOLDER/labels.csv).",
)
@click.option(
    "--percentile",
    type=FiniteFloat(),
    default=100,
    show_default=True,
    help="Share (1-100) of each cluster, nearest its centre first, that takes its label.",
)
@click.option(
    "--edit",
    type=click.IntRange(min=0),
    default=30,
    show_default=True,
    help="Drop a propagated label when another label is more common among its N nearest "
    "labelled images (0: keep all).",
)
@click.option(
    "--rule",
    type=click.Choice(["cluster", "spread"]),
    default="cluster",
    show_default=True,
    help="cluster: the representative's label to its cluster; spread: label spreading over "
    "the nearest-neighbour graph.",
)
@click.option(
    "--train",
    type=click.Choice(["logistic", "knn", "svm", "forest"]),
    help="Train this classifier on the propagated set (test accuracy on held-out images).",
)
@seed_option
@click.option("--overwrite", is_flag=True, help="Replace an earlier propagated.csv.")
@report_option
@summary_options
def propagate_command(
    folder, labels, percentile, edit, rule, train, seed, overwrite, no_report, as_json, quiet
):
    """Spread the labels of FOLDER's representatives to their clusters.

    Writes FOLDER/propagated.csv (path, label, rank in its cluster, original: 1 for the
    labels a person gave) and FOLDER/propagation.json, and adds the labels and what became of
    them to FOLDER/report.html.
    """
    from imgclust.semi.jobs import run_propagate

    reporter = Reporter(quiet=quiet, as_json=as_json)
    summary = run_propagate(
        folder,
        labels=labels,
        percentile=percentile,
        edit=edit,
        rule=rule,
        train=train,
        random_state=seed,
        overwrite=overwrite,
        report=not no_report,
        progress=reporter.bar,
    )
    rows = [
        (
            "labels",
            f"{summary['labelled_representatives']} of {summary['representatives']} "
            f"representatives, {summary['classes']} classes",
        ),
        (
            "propagated",
            f"{summary['labelled_images']:,} of {summary['images']:,} images labelled "
            f"({summary['dropped_by_editing']:,} dropped by editing)",
        ),
    ]
    if "label_accuracy" in summary:
        rows.append(("label accuracy", f"{summary['label_accuracy']:.3f} (known labels)"))
    training = summary.get("training")
    if training:
        text = f"{training['classifier']} on {training['trained_on']:,} images"
        if "test_accuracy" in training:
            text += (
                f", test accuracy {training['test_accuracy']:.3f} "
                f"on {training['test_images']:,} held-out images"
            )
        rows.append(("trained", text))
    rows.append(("outputs", f"{folder}/propagated.csv"))
    reporter.summary("imgclust propagate", rows, summary)
