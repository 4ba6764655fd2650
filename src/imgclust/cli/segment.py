"""``imgclust segment``: colour segmentation and quantization of one image."""

from __future__ import annotations

import click

from imgclust.cli._options import (
    FiniteFloat,
    Reporter,
    default_output,
    image_options,
    kmeans_options,
    load_mask,
    output_options,
    parse_k,
    report_option,
)
from imgclust.cluster.choose_k import parse_k_range
from imgclust.pixels.jobs import run_segment


def _human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def summary_rows(result: dict) -> list[tuple[str, str]]:
    """Lines of the closing summary of a segmentation."""
    image = result["image"]
    rows = [
        ("image", f"{image['path'] or 'array'} ({image['width']}x{image['height']})"),
        (
            "clusters",
            f"{result['n_clusters']} in {result['color_space'].upper()}"
            + (f" (K chosen: {result['chosen_k']['rule']})" if "chosen_k" in result else ""),
        ),
        ("palette", "  ".join(f"{c['hex']} {c['fraction']:.0%}" for c in result["clusters"][:16])),
        ("inertia", f"{result['inertia']:.4g}  (seed {result['seed']})"),
        ("k-means", result["fit"]["description"]),
    ]
    for row in result.get("superpixels", {}).get("comparison", []):
        rows.append(
            (
                f"{row['method']}",
                f"{row['seconds']:.2f} s, inertia {row['inertia']:.4g}, {row['regions']:,} regions",
            )
        )
    rows.extend(("warning", text) for text in result.get("warnings", []))
    if "indexed_png_bytes" in result:
        size = _human_size(result["indexed_png_bytes"])
        if "original_bytes" in result:
            size += f" (original file {_human_size(result['original_bytes'])})"
        rows.append(("indexed.png", size))
    timings = result.get("timings", {})
    rows.append(("time", "  ".join(f"{k} {v:.2f}s" for k, v in timings.items())))
    rows.append(("outputs", result["output"]))
    return rows


@click.command("segment")
@click.argument("image", type=click.Path(dir_okay=False))
@click.option(
    "-k",
    "--n-clusters",
    "k",
    default="8",
    show_default=True,
    callback=lambda c, p, v: parse_k(v),
    help="Number of colours, or 'auto' to choose it (see choose-k).",
)
@click.option("--k-range", default="2-16", show_default=True, help="Values of K tried by -k auto.")
@kmeans_options
@click.option(
    "--spatial",
    type=FiniteFloat(min=0),
    default=0.0,
    show_default=True,
    help="Weight of the pixel coordinates as features (spatially coherent segments).",
)
@click.option(
    "--superpixels",
    type=click.IntRange(min=1),
    default=None,
    help="Cluster about this many SLIC superpixels instead of pixels (region-coherent "
    "segments), compared with plain pixel k-means in the report.",
)
@click.option(
    "--compactness",
    type=FiniteFloat(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="SLIC's balance of colour and space (higher: squarer superpixels).",
)
@click.option(
    "--superpixel-side",
    type=click.IntRange(min=0),
    default=1024,
    show_default=True,
    help="Longer side of the reduced image SLIC runs on; 0 runs it on every pixel (about 25x "
    "slower on a 12 MP photo).",
)
@click.option(
    "--scatter-space",
    type=click.Choice(["rgb", "lab", "hsv"], case_sensitive=False),
    default=None,
    help="Colour space of the 3-D scatter colors3d.png [default: the clustering space].",
)
@image_options
@report_option
@output_options
def command(
    image,
    k,
    k_range,
    color_space,
    init,
    n_init,
    max_iter,
    tol,
    epsilon,
    seed,
    spatial,
    superpixels,
    compactness,
    superpixel_side,
    scatter_space,
    max_pixels,
    mask,
    no_report,
    output,
    overwrite,
    as_json,
    quiet,
):
    """Segment IMAGE into K colours with k-means and write the results.

    Writes segmented.png, labels.png, palette.json, palette.png, indexed.png, comparison.png,
    colors3d.png and report.html (and choose_k.png/.csv with -k auto) into the output folder.
    """
    reporter = Reporter(quiet=quiet, as_json=as_json)
    output = output or default_output(image, "segment")
    result = run_segment(
        image,
        output,
        n_clusters=k,
        k_values=parse_k_range(k_range),
        mask=load_mask(mask, max_pixels),
        overwrite=overwrite,
        report=not no_report,
        max_pixels=max_pixels,
        step=reporter.step,
        color_space=color_space.lower(),
        init=init,
        n_init=n_init,
        max_iter=max_iter,
        tol=tol,
        epsilon=epsilon,
        random_state=seed,
        spatial=spatial,
        scatter_space=None if scatter_space is None else scatter_space.lower(),
        **(
            {}
            if superpixels is None
            else dict(
                superpixels=superpixels,
                compactness=compactness,
                superpixel_side=superpixel_side or None,
            )
        ),
    )
    reporter.summary("imgclust segment", summary_rows(result), result)
