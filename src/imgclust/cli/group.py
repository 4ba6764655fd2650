"""``imgclust group`` and ``imgclust assign``: a collection of images grouped by similarity."""

from __future__ import annotations

import math
from pathlib import Path

import click

from imgclust.cli._options import (
    FiniteFloat,
    Reporter,
    _compose,
    cluster_row,
    max_pixels_option,
    output_options,
    parse_k,
    report_option,
    scheduler_option,
    seed_option,
)
from imgclust.cluster.choose_k import parse_k_range
from imgclust.cluster.methods import K_RULES, METHODS
from imgclust.collection.onnx_model import PRESETS
from imgclust.collection.outputs import EXPORT_MODES
from imgclust.collection.reduce import REDUCTIONS, SCALINGS
from imgclust.collection.sources import DATASETS


def _floats(text: str | None, name: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not three numbers like 0.5,0.5,0.5", param_hint=name
        ) from None
    if len(values) != 3:
        raise click.BadParameter(f"{text!r} needs three values (R, G, B)", param_hint=name)
    if not all(math.isfinite(v) for v in values):
        raise click.BadParameter(f"{text!r} must be finite numbers", param_hint=name)
    return values


def collection_options(default_reduce: str = "auto", default_scale: str = "none"):
    """The inputs, features and reduction options of the commands that read a collection."""
    return _compose(
        click.argument("folder", required=False, type=click.Path()),
        click.option(
            "--dataset",
            type=click.Choice(DATASETS),
            help="Use a bundled dataset instead of FOLDER.",
        ),
        click.option(
            "--features",
            default="auto",
            show_default=True,
            help="auto (hog for small grey images like the digits; for photos the default "
            "image model, $IMGCLUST_DEFAULT_MODEL or mobilenetv2, downloaded once, else "
            "colortexture), pixels, colorhist, colortexture, hog, embed:MODEL.onnx (an "
            "image model run with ONNX Runtime) or embed:NAME (a named model).",
        ),
        click.option(
            "--size", type=click.IntRange(min=1), help="Image side for pixels (32) and hog (64)."
        ),
        click.option("--grey", is_flag=True, default=None, help="Pixels in grey levels, not RGB."),
        click.option(
            "--hog-cell",
            type=click.IntRange(min=1),
            help="HOG cell side in pixels (8; the auto features of small grey images: 4).",
        ),
        click.option(
            "--hog-root",
            is_flag=True,
            default=None,
            help="Square-root the HOG values (as the auto features of small grey images do).",
        ),
        click.option(
            "--embed-preset",
            type=click.Choice(["auto", *PRESETS]),
            help="Model input preprocessing: imagenet (RGB, ImageNet mean and std), caffe (BGR, "
            "0-255 minus the means), tf (RGB in [-1, 1]), raw (0-255); default auto: from the "
            "model's metadata or its exporter, else imagenet.",
        ),
        click.option(
            "--embed-layer",
            metavar="NAME",
            help="Tensor of the model taken as the embedding (default: the features before "
            "its classifier, found in the graph).",
        ),
        click.option(
            "--embed-size",
            type=click.IntRange(min=1),
            help="Input side for a model whose input size is not fixed (224).",
        ),
        click.option("--embed-mean", help="Input mean, R,G,B in [0, 1] (overrides the preset)."),
        click.option("--embed-std", help="Input std, R,G,B (overrides the preset)."),
        click.option(
            "--embed-layout",
            type=click.Choice(["nchw", "nhwc"]),
            help="Input layout (default: read from the model).",
        ),
        click.option(
            "--reduce",
            type=click.Choice(["auto", *REDUCTIONS]),
            default=default_reduce,
            show_default=True,
            help="Reduction before clustering (t-SNE and UMAP after a PCA to 50); auto: for "
            "an image model's embeddings UMAP (a PCA below 150 images), else t-SNE up to "
            "3,000 images and UMAP past that.",
        ),
        click.option(
            "--scale",
            type=click.Choice(SCALINGS),
            default=default_scale,
            show_default=True,
            help="'standard': every feature to zero mean and unit variance before the reduction.",
        ),
        click.option(
            "--dims",
            type=click.IntRange(min=1),
            help="Dimensions after the reduction (PCA 50, t-SNE/UMAP 2).",
        ),
        click.option(
            "--tsne-iterations",
            type=click.IntRange(min=250),
            help="t-SNE iterations (400; 1,000 past 10,000 images).",
        ),
        click.option(
            "--labels", help="Known labels to evaluate against: 'folders' or a CSV of path,label."
        ),
        click.option(
            "--cache", "cache_dir", type=click.Path(file_okay=False), help="Feature cache folder."
        ),
        click.option("--no-cache", is_flag=True, help="Neither read nor write the feature cache."),
        click.option(
            "--workers",
            type=click.IntRange(min=1),
            help="Decoding threads (default: one for small files, else one per CPU).",
        ),
        max_pixels_option("Skip"),
        seed_option,
        scheduler_option("Decode the images and extract their features"),
    )


def collection_arguments(options: dict) -> tuple[str | None, dict]:
    """The folder and the library keywords of :func:`collection_options`' values (popped)."""
    folder, dataset = options.pop("folder"), options.pop("dataset")
    if (folder is None) == (dataset is None):
        raise click.UsageError("give a FOLDER of images or --dataset, one of the two")
    cache_dir, no_cache = options.pop("cache_dir"), options.pop("no_cache")
    feature_options = {
        "size": options.pop("size"),
        "grey": options.pop("grey"),
        "pixels_per_cell": options.pop("hog_cell"),
        "root": options.pop("hog_root"),
        "input_size": options.pop("embed_size"),
        "mean": _floats(options.pop("embed_mean"), "--embed-mean"),
        "std": _floats(options.pop("embed_std"), "--embed-std"),
        "layout": options.pop("embed_layout"),
        "preset": options.pop("embed_preset"),
        "layer": options.pop("embed_layer"),
    }
    keywords = {
        "dataset": dataset,
        "features": options.pop("features"),
        "feature_options": feature_options,
        "reduce": options.pop("reduce"),
        "scale": options.pop("scale"),
        "dims": options.pop("dims"),
        "tsne_iterations": options.pop("tsne_iterations"),
        "labels": options.pop("labels"),
        "random_state": options.pop("seed"),
        "cache": False if no_cache else (cache_dir or True),
        "workers": options.pop("workers"),
        "max_pixels": options.pop("max_pixels"),
        "scheduler": options.pop("scheduler"),
    }
    return folder, keywords


def default_output(folder: str | None, dataset: str | None, suffix: str) -> str:
    """``<folder name>-<suffix>`` or ``<dataset>-<suffix>``."""
    if dataset:
        return f"{dataset}-{suffix}"
    return f"{Path(folder).resolve().name or 'images'}-{suffix}"


@click.command("group")
@collection_options()
@click.option(
    "--method",
    type=click.Choice(list(METHODS)),
    default="kmeans",
    show_default=True,
    help="Clustering method.",
)
@click.option(
    "-k",
    "--clusters",
    "k",
    default="auto",
    show_default=True,
    help="Number of clusters, or 'auto' (chosen over --k-range by --k-rule).",
)
@click.option(
    "--k-range",
    default="auto",
    show_default=True,
    help="K values tried by -k auto: 2-20, 2-20:2 or 2,4,8; auto: 2-20, with the bic rule up "
    "to 40 on large collections (one cluster per 25 images).",
)
@click.option(
    "--k-rule",
    type=click.Choice(["auto", *K_RULES]),
    default="auto",
    show_default=True,
    help="How -k auto chooses: bic (the clusters of the map as Gaussians, over maps of three "
    "seeds), silhouette (the highest); auto: bic for an image model's embeddings on a UMAP "
    "map, else silhouette.",
)
@click.option(
    "--eps", type=FiniteFloat(min=0, min_open=True), help="DBSCAN radius (default: estimated)."
)
@click.option(
    "--min-samples", type=click.IntRange(min=1), help="DBSCAN/HDBSCAN neighbourhood size."
)
@click.option("--min-cluster-size", type=click.IntRange(min=2), help="HDBSCAN smallest cluster.")
@click.option(
    "--export",
    type=click.Choice(EXPORT_MODES),
    default="hardlink",
    show_default=True,
    help="How OUTDIR/clusters/<n>/ is filled (originals are never moved or changed).",
)
@click.option("--save-model", is_flag=True, help="Write model/ for 'imgclust assign'.")
@report_option
@output_options
def command(
    method,
    k,
    k_range,
    k_rule,
    eps,
    min_samples,
    min_cluster_size,
    export,
    save_model,
    no_report,
    output,
    overwrite,
    as_json,
    quiet,
    **options,
):
    """Group the images of FOLDER (searched recursively) by similarity.

    Writes assignments.csv, clusters.json, centers.png, galleries/, embedding.png,
    skipped.csv, with -k auto choose_k.csv/png, with --labels evaluation.json and
    confusion.csv/png, and clusters/<n>/ into the output folder. FOLDER may also be a .npy
    array of images.
    """
    from imgclust.collection.jobs import run_group

    folder, keywords = collection_arguments(options)
    reporter = Reporter(quiet=quiet, as_json=as_json)
    output = output or default_output(folder, keywords["dataset"], "groups")
    summary = run_group(
        folder,
        output,
        method=method,
        n_clusters=parse_k(k),
        k_values=None if k_range == "auto" else parse_k_range(k_range),
        k_rule=k_rule,
        method_options={
            "eps": eps,
            "min_samples": min_samples,
            "min_cluster_size": min_cluster_size,
        },
        export=export,
        save=save_model,
        report=not no_report,
        overwrite=overwrite,
        progress=reporter.bar,
        **keywords,
    )
    summary.pop("result")
    reporter.summary("imgclust group", summary_rows(summary), summary)


def summary_rows(s: dict) -> list[tuple[str, str]]:
    """Lines of the closing summary of a grouping."""
    sizes = ", ".join(str(c["size"]) for c in s["clusters"][:20])
    rows = [
        (
            "images",
            f"{s['read']:,} read, {s['skipped']:,} skipped ({s['source']})"
            + (f", {s['cache_hits']:,} features from the cache" if s["cache_hits"] else ""),
        ),
        ("features", f"{s['parameters']['features']}, reduced by {s['parameters']['reduce']}"),
        (
            "clusters",
            f"{s['n_clusters']} ({s['parameters']['method']}"
            + (f", K by {s['choose_k']['rule']}" if "choose_k" in s else "")
            + ")",
        ),
        ("sizes", sizes + (f"; noise {s['noise']}" if s["noise"] else "")),
    ]
    if "silhouette" in s["scores"]:
        rows.append(("silhouette", f"{s['scores']['silhouette']:.3f}"))
    if "evaluation" in s:
        e = s["evaluation"]
        rows.append(
            (
                "accuracy",
                f"{e['accuracy_majority']:.3f} (majority mapping), "
                f"{e['accuracy_one_to_one']:.3f} (one-to-one)",
            )
        )
        rows.append(
            ("ARI / NMI", f"{e['adjusted_rand_index']:.3f} / {e['normalized_mutual_info']:.3f}")
        )
    if s["parameters"].get("dask"):
        rows.append(cluster_row(s["parameters"]["dask"]))
    rows.extend(("warning", text) for text in s.get("warnings", []))
    rows.append(("time", f"{s['timings_s']['total']:.1f} s"))
    rows.append(("outputs", s["output"]))
    return rows


@click.command("assign")
@click.argument("model", type=click.Path(exists=True))
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--embed-model", type=click.Path(dir_okay=False), help="Where the ONNX model is now.")
@click.option(
    "--export",
    type=click.Choice(EXPORT_MODES),
    default="hardlink",
    show_default=True,
    help="How clusters/<n>/ is filled (hard links fall back to copies across file systems).",
)
@max_pixels_option("Skip")
@report_option
@output_options
def assign_command(
    model, images, embed_model, export, max_pixels, no_report, output, overwrite, as_json, quiet
):
    """Put IMAGES (files or folders) into the clusters of MODEL (the model/ folder written by
    'imgclust group --save-model'). Writes, as group does, assignments.csv, skipped.csv,
    galleries/, clusters/<n>/ and report.html."""
    from imgclust.collection.jobs import run_assign

    reporter = Reporter(quiet=quiet, as_json=as_json)
    summary = run_assign(
        model,
        list(images),
        output or "assigned",
        embed_model=embed_model,
        export=export,
        report=not no_report,
        overwrite=overwrite,
        max_pixels=max_pixels,
        progress=reporter.bar,
    )
    per_cluster = ", ".join(f"{c}: {n}" for c, n in summary["per_cluster"].items())
    reporter.summary(
        "imgclust assign",
        [
            ("images", f"{summary['assigned']:,} assigned, {summary['skipped']:,} skipped"),
            ("per cluster", per_cluster or "-"),
            ("rule", summary["rule"]),
            ("outputs", summary["output"]),
        ],
        summary,
    )
