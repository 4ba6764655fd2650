"""``imgclust review``: look at the groups of a ``group`` output folder and correct them."""

from __future__ import annotations

import click

from imgclust.cli._options import Reporter, serve_until_stopped, summary_options


@click.command("review")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--apply",
    "apply_review",
    is_flag=True,
    help="Apply the review saved in FOLDER/review.json: regroup the folder's results "
    "(clusters/, galleries, report, clusters.json, model; for representatives, to_label.csv "
    "with the names as labels) with the reviewed clusters and names.",
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, help="Port (default: a free one)."
)
@click.option("--open/--no-open", "open_browser", default=True, help="Open the page in a browser.")
@summary_options
def command(folder, apply_review, port, open_browser, as_json, quiet):
    """Review the groups of FOLDER (written by 'imgclust group' or 'representatives').

    Serves the map of every image on 127.0.0.1 (behind a secret token), where you move
    selected images to another cluster, merge, split and name clusters. Every change is saved
    to FOLDER/review.json at once: closing the page loses nothing, and a later review resumes.
    Stop with Ctrl+C, then run 'imgclust review FOLDER --apply'.
    """
    if apply_review:
        return _apply(folder, as_json, quiet)
    from imgclust.collection.review_server import ReviewServer

    server = ReviewServer(folder, port=port)
    store = server.store
    click.echo(f"Reviewing {len(store.ids):,} images in {len(store.cluster_table())} groups; open:")
    click.echo(f"  {server.url}")
    click.echo(f"Changes are saved to {store.folder / 'review.json'} at once. Ctrl+C stops.")
    serve_until_stopped(server, open_browser)
    click.echo(
        f"{store.changes} change(s) saved; apply them with: imgclust review {folder} --apply"
    )


def _apply(folder: str, as_json: bool, quiet: bool) -> None:
    from imgclust.cli.group import summary_rows
    from imgclust.reviews import apply_review

    reporter = Reporter(quiet=quiet, as_json=as_json)
    summary = apply_review(folder, progress=reporter.bar)
    summary.pop("result", None)
    if "clusters" in summary:  # a group folder
        rows = summary_rows(summary)
    else:
        named = sum(1 for r in summary["representatives"] if r.get("label"))
        rows = [
            ("clusters", f"{summary['n_clusters']} ({named} named: their labels in to_label.csv)"),
            ("next", f"imgclust propagate {folder}"),
            ("outputs", summary["output"]),
        ]
    reporter.summary("imgclust review --apply", rows, summary)
