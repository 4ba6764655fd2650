"""``report.html`` of ``imgclust group``."""

from __future__ import annotations

from pathlib import Path

from imgclust.report.html import Report, per_label_rows

__all__ = ["write_assign_report", "write_group_report"]


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


def write_group_report(summary: dict, result, folder: Path, map_data: dict | None = None) -> Path:
    """Write ``report.html`` for a grouping whose other outputs are already in ``folder``;
    ``map_data`` (:func:`~imgclust.report.image_map.map_payload`) gives its interactive map."""
    report = Report("imgclust group", summary["source"]).facts(_facts(summary))
    parameters = summary["parameters"]  # which features and why (auto's choice), the map
    report.text(f"Features: {parameters['features']}; reduced by {parameters['reduce']}.")
    for warning in summary.get("warnings", []):
        report.text(f"Warning: {warning}.")
    report.heading("Map")
    report.interactive_map(map_data)
    report.heading("Clusters")
    report.figure(folder, "embedding.png", "The images on the 2-D map, coloured by cluster")
    report.figure(
        folder,
        "centers.png",
        f"Cluster centres: the {summary.get('centers_png') or 'image nearest each centre'}",
    )
    if (folder / "dendrogram.png").exists():
        report.figure(
            folder,
            "dendrogram.png",
            "The merge tree of agglomerative clustering (scipy's dendrogram of the same Ward "
            "linkage): branches in their cluster's colour, the cut into K dashed",
        )
    report.table(
        ["cluster", "name", "size", "image nearest the centre"],
        [
            [c["cluster"], c.get("name", ""), c["size"], c["representative"]]
            for c in summary["clusters"]
        ],
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
            per_label_rows(per_label),
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
        natural=True,
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
    report.files(folder)
    parameters = {k: v for k, v in summary["parameters"].items() if k != "feature_settings"}
    return report.write(folder, parameters, summary["timings_s"])


def write_assign_report(
    summary: dict, placement, folder: Path, map_data: dict | None = None
) -> Path:
    """Write ``report.html`` for an ``assign`` run whose other outputs are in ``folder``;
    ``map_data`` gives its interactive map (the new images on the training run's map)."""
    folder = Path(folder)
    report = Report("imgclust assign", summary["model"])
    report.facts(
        [
            ("images", f"{summary['images']:,}"),
            ("assigned", f"{summary['assigned']:,}"),
            ("skipped", f"{summary['skipped']:,}"),
            ("rule", summary["rule"]),
        ]
    )
    report.heading("Map (the new images where the training images near them lie)")
    report.interactive_map(map_data)
    report.heading("Clusters")
    names = summary.get("names", {})
    report.table(
        ["cluster", "name", "images"],
        [[c, names.get(c, ""), n] for c, n in summary["per_cluster"].items()],
    )
    report.heading("Galleries (the new images nearest each cluster's centre)")
    report.gallery(
        folder,
        [
            (f"galleries/cluster_{c}.jpg", f"cluster {c} ({n} images)")
            for c, n in summary["per_cluster"].items()
        ],
        natural=True,
    )
    report.heading("Images")
    ranks = placement.ranks
    report.table(
        ["image", "cluster", "distance", "rank"],
        [
            [image_id, int(c), f"{d:.4g}", int(r)]
            for image_id, c, d, r in zip(
                placement.ids, placement.labels, placement.distances, ranks, strict=True
            )
        ],
    )
    report.heading("Skipped files")
    if placement.extraction.skipped:
        report.table(["file", "reason"], [list(row) for row in placement.extraction.skipped])
    else:
        report.text("None: every file was read.")
    report.files(folder)
    return report.write(folder, {"model": summary["model"], "export": summary["export"]}, {})
