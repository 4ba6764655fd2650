"""``report.html`` of a representatives folder: written by ``representatives``, rewritten by
``propagate`` with the labels and what became of them (one folder, one page)."""

from __future__ import annotations

import csv
from pathlib import Path

from imgclust.report.html import Report
from imgclust.report.image_map import read_map_data

__all__ = ["write_semi_report"]


def _representatives_facts(summary: dict) -> list[tuple[str, object]]:
    facts: list[tuple[str, object]] = [
        ("images clustered", f"{summary['clustered']:,}"),
        ("held out (test)", f"{summary['held_out']:,}"),
        ("skipped", f"{summary['skipped']:,}"),
        ("representatives", summary["n_clusters"]),
    ]
    if "cluster_purity" in summary:
        facts.append(("cluster purity (known labels)", f"{summary['cluster_purity']:.3f}"))
    return facts


def _propagation_facts(propagation: dict) -> list[tuple[str, object]]:
    facts: list[tuple[str, object]] = [
        (
            "representatives labelled",
            f"{propagation['labelled_representatives']} of {propagation['representatives']}",
        ),
        ("classes", propagation["classes"]),
        ("images labelled", f"{propagation['labelled_images']:,} of {propagation['images']:,}"),
        ("dropped by editing", f"{propagation['dropped_by_editing']:,}"),
    ]
    if "label_accuracy" in propagation:
        facts.append(("labels right (known labels)", f"{propagation['label_accuracy']:.3f}"))
    training = propagation.get("training") or {}
    if "test_accuracy" in training:
        facts.append(
            (f"test accuracy ({training['classifier']})", f"{training['test_accuracy']:.3f}")
        )
    return facts


def _skipped(folder: Path) -> list[list[str]]:
    path = folder / "skipped.csv"
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return [[row["path"], row["reason"]] for row in csv.DictReader(handle)]


def write_semi_report(
    folder: str | Path,
    summary: dict,
    *,
    propagation: dict | None = None,
    seeds: dict[int, str] | None = None,
    into: str | Path | None = None,
) -> Path:
    """Write ``report.html`` for a folder of ``imgclust representatives``.

    Parameters
    ----------
    folder : path
        The folder (or its staging folder), with the outputs already in it.
    summary : dict
        The content of ``representatives.json``.
    propagation : dict, optional
        The content of ``propagation.json``, once ``propagate`` has run.
    seeds : dict, optional
        Cluster -> the label a person gave its representative.
    into : path, optional
        Write the page there (a staging folder) instead of into ``folder``.
    """
    folder = Path(folder)
    seeds = seeds or {}
    earlier = [summary["command"]] if propagation is not None and summary.get("command") else []
    report = Report("imgclust representatives", summary["source"], earlier_commands=earlier)
    report.facts(_representatives_facts(summary))
    if propagation is not None:
        report.heading("Propagation")
        report.facts(_propagation_facts(propagation))
        report.table(["label", "images"], list(propagation["images_per_label"].items()))
    report.heading("The representatives")
    if propagation is None:
        report.text(
            "Label these images with 'imgclust label' on this folder (or fill the label "
            "column of to_label.csv), then run 'imgclust propagate' on it."
        )
    reps = summary["representatives"]
    report.gallery(
        folder,
        [
            (
                f"thumbnails/{r['cluster']}.png",
                f"cluster {r['cluster']} ({r['size']} images): "
                + (f"labelled {seeds[r['cluster']]}" if r["cluster"] in seeds else r["path"]),
            )
            for r in reps
        ],
        thumbnails=True,
    )
    report.table(
        ["cluster", "images", "representative", "label"],
        [[r["cluster"], r["size"], r["path"], seeds.get(r["cluster"], "")] for r in reps],
    )
    report.heading("The map")
    report.interactive_map(read_map_data(folder))
    report.figure(folder, "embedding.png", "The images on a 2-D map; representatives ringed")
    report.heading("Skipped files")
    skipped = _skipped(folder)
    if skipped:
        report.table(["file", "reason"], skipped)
    else:
        report.text("None: every file was read.")
    parameters = dict(summary.get("parameters", {}))
    parameters.pop("feature_settings", None)
    timings = dict(summary.get("timings_s", {}))
    if propagation is not None:
        parameters.update(
            {f"propagate {k}": propagation[k] for k in ("rule", "percentile", "edit")}
        )
        if propagation.get("training"):
            parameters["propagate train"] = propagation["training"]["classifier"]
    report.files(folder, *([into] if into is not None else []))
    return report.write(folder, parameters, timings, into=into)
