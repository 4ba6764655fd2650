"""``report.html`` of ``imgclust group``."""

from __future__ import annotations

from pathlib import Path

from imgclust.report.html import Report

__all__ = ["write_group_report"]


def _facts(summary: dict) -> list[tuple[str, object]]:
    facts: list[tuple[str, object]] = [
        ("images read", f"{summary['read']:,}"),
        ("skipped", f"{summary['skipped']:,}"),
        ("clusters", summary["n_clusters"]),
    ]
    if summary.get("noise"):
        facts.append(("noise", f"{summary['noise']:,}"))
    if "silhouette" in summary["scores"]:
        facts.append(("silhouette", f"{summary['scores']['silhouette']:.3f}"))
    if "evaluation" in summary:
        e = summary["evaluation"]
        facts.append(("accuracy (majority)", f"{e['accuracy_majority']:.3f}"))
        facts.append(("accuracy (one-to-one)", f"{e['accuracy_one_to_one']:.3f}"))
        facts.append(
            ("ARI / NMI", f"{e['adjusted_rand_index']:.3f} / {e['normalized_mutual_info']:.3f}")
        )
    facts.append(("time", f"{summary['timings_s']['total']:.1f} s"))
    return facts


def write_group_report(summary: dict, result, folder: Path) -> Path:
    """Write ``report.html`` for a grouping whose other outputs are already in ``folder``."""
    report = Report("imgclust group", summary["source"]).facts(_facts(summary))
    report.heading("Clusters")
    report.figure(folder, "embedding.png", "The images on the 2-D map, coloured by cluster")
    report.figure(folder, summary.get("centers_png") or "centers.png", "Cluster centres")
    report.table(
        ["cluster", "size", "image nearest the centre"],
        [[c["cluster"], c["size"], c["representative"]] for c in summary["clusters"]],
    )
    if result.sweep is not None:
        report.heading("Choosing K")
        report.figure(
            folder,
            "choose_k.png",
            f"K = {summary['choose_k']['best_k']} by {summary['choose_k']['rule']}",
        )
    if result.evaluation is not None:
        report.heading("Against the known labels")
        report.figure(folder, "confusion.png", "Confusion matrix")
        per_label = result.evaluation.get("per_label", {})
        report.table(
            ["label", "precision", "recall"],
            [
                [name, f"{v['precision']:.3f}", f"{v['recall']:.3f}"]
                for name, v in per_label.items()
            ],
        )
    report.heading("Galleries (members nearest each centre)")
    report.gallery(
        folder,
        [
            (
                f"galleries/cluster_{c['cluster']}.jpg",
                f"cluster {c['cluster']} ({c['size']} images)",
            )
            for c in summary["clusters"]
        ],
    )
    report.heading("Images")
    ids, truth = result.ids, result.truth
    report.table(
        ["image", "cluster", "distance", "rank", "known label"],
        (
            [
                ids[n],
                int(result.labels[n]),
                f"{result.distances[n]:.4g}",
                int(result.ranks[n]),
                (truth[n] or "") if truth is not None else "",
            ]
            for n in range(len(ids))
        ),
        total=len(ids),
    )
    report.heading("Skipped files")
    skipped = result.extraction.skipped
    if skipped:
        report.table(["file", "reason"], [list(row) for row in skipped])
    else:
        report.text("None: every file was read.")
    parameters = {k: v for k, v in summary["parameters"].items() if k != "feature_settings"}
    return report.write(folder, parameters, summary["timings_s"])
