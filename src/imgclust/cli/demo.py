"""``imgclust demo``: the jobs on sample data that ships with scikit-image and scikit-learn."""

from __future__ import annotations

from pathlib import Path

import click
from PIL import Image

from imgclust.cli._options import Reporter
from imgclust.cli.segment import summary_rows
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
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
def command(output, quiet):
    """Segment scikit-image's astronaut photo, group scikit-learn's digits, show every output.

    Nothing is downloaded: the photo ships with scikit-image, the digits with scikit-learn.
    """
    from skimage import data

    reporter = Reporter(quiet=quiet)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    photo = data.astronaut()
    Image.fromarray(photo).save(out / "astronaut.png")
    source = out / "astronaut.png"
    seg = run_segment(
        source, out / "segment", n_clusters=8, overwrite=True, step=reporter.step, random_state=0
    )
    choice = run_choose_k(
        source, out / "choose-k", overwrite=True, step=reporter.step, random_state=0
    )
    edges = run_edges(source, out / "edges", overwrite=True, step=reporter.step, random_state=0)
    from imgclust.collection.jobs import run_group

    groups = run_group(
        None,
        out / "group-digits",
        dataset="digits",
        n_clusters=10,
        cache=False,
        overwrite=True,
        random_state=0,
        progress=reporter.bar,
    )
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
            ("all outputs", str(out.resolve())),
        ],
        {},
    )
