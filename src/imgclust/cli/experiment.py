"""``imgclust experiment``: the seeds' experiments, printed from imgclust's own code."""

from __future__ import annotations

import click

from imgclust.cli._options import Reporter, summary_options


@click.group("experiment")
def command() -> None:
    """Run an experiment on a bundled dataset and print its table."""


def _dataset_option(function):
    return click.option(
        "--dataset",
        type=click.Choice(["digits"]),
        default="digits",
        show_default=True,
        help="The dataset (the first 1,400 images train, the rest test).",
    )(function)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


@command.command("semi-supervised")
@_dataset_option
@click.option(
    "--runs",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Seeds 0..N-1; each figure is the mean over them.",
)
@summary_options
def semi_supervised(dataset, runs, as_json, quiet):
    """Label a few, learn many: logistic regression trained on 50 labels spread by k-means."""
    from imgclust.semi.experiments import semi_supervised_table

    reporter = Reporter(quiet=quiet, as_json=as_json)
    rows = semi_supervised_table(seeds=tuple(range(runs)), progress=reporter.bar)
    table = [
        (
            row.name,
            f"test {row.test_accuracy:.3f} (min {_fmt(row.test_accuracy_min)}), "
            f"reference {_fmt(row.reference)}, {row.training_images:,.0f} training images, "
            f"labels {row.label_accuracy:.3f} right (min {_fmt(row.label_accuracy_min)})",
        )
        for row in rows
    ]
    reporter.summary(
        f"imgclust experiment semi-supervised ({dataset}, mean of {runs} seeds)",
        table,
        {"dataset": dataset, "runs": runs, "rows": [row.as_dict() for row in rows]},
    )


@command.command("preprocessing")
@_dataset_option
@summary_options
def preprocessing(dataset, as_json, quiet):
    """Clustering as preprocessing: k-means distances before a logistic regression."""
    from imgclust.semi.experiments import preprocessing_comparison

    reporter = Reporter(quiet=quiet, as_json=as_json)
    rows = preprocessing_comparison(progress=reporter.bar)
    table = [
        (row["name"], f"test {row['test_accuracy']:.3f}, reference {_fmt(row.get('reference'))}")
        for row in rows
    ]
    reporter.summary(
        f"imgclust experiment preprocessing ({dataset})",
        table,
        {"dataset": dataset, "rows": rows},
    )
