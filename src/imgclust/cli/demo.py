"""``imgclust demo``: the jobs on sample data that ships with scikit-image and scikit-learn."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import click
from PIL import Image

from imgclust.cli._options import Reporter, quiet_option
from imgclust.cli.segment import summary_rows
from imgclust.io.outputs import StagedOutputDir, csv_text
from imgclust.pixels.jobs import run_choose_k, run_edges, run_segment


@click.command("demo")
@click.option(
    "-o",
    "--output",
    default="imgclust-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for the demo's outputs (its earlier results there are replaced).",
)
@quiet_option
def command(output, quiet):
    """Segment scikit-image's astronaut photo, group scikit-learn's digits, label 50 of them
    and spread the labels; show every output.

    Nothing is downloaded: the photo ships with scikit-image, the digits with scikit-learn.
    """
    from skimage import data

    reporter = Reporter(quiet=quiet)
    start = time.perf_counter()
    out = Path(output)
    with StagedOutputDir(out, merge=True, names=("astronaut.png", "report.html")) as stage:
        Image.fromarray(data.astronaut()).save(stage.path / "astronaut.png")
    source = out / "astronaut.png"
    with _as_command("segment", source, "-k", 8, "-o", out / "segment", "--overwrite"):
        seg = run_segment(
            source,
            out / "segment",
            n_clusters=8,
            overwrite=True,
            step=reporter.step,
            random_state=0,
        )
    with _as_command("choose-k", source, "-o", out / "choose-k", "--overwrite"):
        choice = run_choose_k(
            source, out / "choose-k", overwrite=True, step=reporter.step, random_state=0
        )
    with _as_command("edges", source, "-o", out / "edges", "--overwrite"):
        edges = run_edges(source, out / "edges", overwrite=True, step=reporter.step, random_state=0)
    from imgclust.collection.jobs import run_group

    group_out = out / "group-digits"
    with _as_command(
        "group", "--dataset", "digits", "-k", 10, "--no-cache", "-o", group_out, "--overwrite"
    ):
        groups = run_group(
            None,
            group_out,
            dataset="digits",
            n_clusters=10,
            cache=False,
            overwrite=True,
            random_state=0,
            progress=reporter.bar,
        )
    propagation = _label_a_few(out / "representatives-digits", reporter)
    index = _index_report(out, seg, choice, edges, groups, propagation, time.perf_counter() - start)
    reporter.summary("imgclust demo: segment", summary_rows(seg), seg)
    reporter.summary(
        "imgclust demo: other jobs",
        [
            ("choose-k", f"K={choice['best_k']} ({choice['rule']}) -> {choice['output']}"),
            ("edges", f"{edges['edge_fraction']:.1%} edge pixels -> {edges['output']}"),
            (
                "group (digits)",
                f"{groups['n_clusters']} clusters, accuracy "
                f"{groups['evaluation']['accuracy_majority']:.3f} -> {groups['output']}",
            ),
            (
                "label a few (digits)",
                f"50 labels spread to {propagation['labelled_images']:,} images "
                f"({propagation['label_accuracy']:.1%} right), logistic regression test accuracy "
                f"{propagation['training']['test_accuracy']:.3f} -> {propagation['folder']}",
            ),
            ("all outputs", str(out.resolve())),
        ],
        {"report": str(index.resolve())},
    )


@contextmanager
def _as_command(*args):
    """Within the block, the reports' "run again" line is this command (the one that makes
    that page on its own), not ``imgclust demo``."""
    context = click.get_current_context(silent=True)
    if context is None:
        yield
        return
    saved = context.meta.get("imgclust.argv")
    context.meta["imgclust.argv"] = [str(a) for a in args]
    try:
        yield
    finally:
        context.meta["imgclust.argv"] = saved


def _index_report(out: Path, seg, choice, edges, groups, propagation, seconds) -> Path:
    """The demo's own page, linking each job's report."""
    from imgclust.report.index_report import write_index_report

    jobs = [
        ("segment", seg, f"{seg['n_clusters']} colours, inertia {seg['inertia']:.3g}"),
        ("choose-k", choice, f"K = {choice['best_k']}"),
        ("edges", edges, f"{edges['edge_fraction']:.1%} edge pixels"),
        ("group (digits)", groups,
         f"accuracy {groups['evaluation']['accuracy_majority']:.3f}"),
        ("label a few (digits)", propagation,
         f"{propagation['label_accuracy']:.1%} of labels right, test accuracy "
         f"{propagation['training']['test_accuracy']:.3f}"),
    ]  # fmt: skip
    with StagedOutputDir(out, merge=True, names=("report.html",)) as stage:
        write_index_report(
            out,
            "imgclust demo",
            [(name, Path(s["report"]).relative_to(out).as_posix(), text) for name, s, text in jobs],
            figures=[
                ("segment/comparison.png", "The astronaut in 8 colours"),
                ("group-digits/embedding.png", "The digits on a 2-D map, coloured by cluster"),
            ],
            timings={"total": seconds},
            into=stage.path,
        )
    return out / "report.html"


def _label_a_few(folder: Path, reporter: Reporter) -> dict:
    """Representatives of the first 1,400 digits, labelled with their true labels (standing in
    for a person with ``imgclust label``), propagated, and a classifier tested on the rest."""
    import csv

    from imgclust.semi.jobs import run_propagate, run_representatives

    with _as_command(
        "representatives", "--dataset", "digits", "-k", 50, "--holdout", 397,
        "--holdout-from", "end", "--no-cache", "-o", folder, "--overwrite",
    ):  # fmt: skip
        run_representatives(
            None,
            folder,
            dataset="digits",
            n_clusters=50,
            holdout=397,
            holdout_from="end",
            cache=False,
            overwrite=True,
            progress=reporter.bar,
        )
    with open(folder / "assignments.csv", newline="", encoding="utf-8") as handle:
        truth = {row["path"]: row["label"] for row in csv.DictReader(handle)}
    with open(folder / "to_label.csv", newline="", encoding="utf-8") as handle:
        paths = [row["path"] for row in csv.DictReader(handle)]
    with StagedOutputDir(folder, merge=True, names=("labels.csv",)) as stage:
        labels = csv_text(["path", "label"], [[path, truth[path]] for path in paths])
        (stage.path / "labels.csv").write_text(labels, encoding="utf-8")
    with _as_command("propagate", folder, "--train", "logistic", "--overwrite"):
        return run_propagate(folder, train="logistic", overwrite=True)
