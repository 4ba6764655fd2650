"""``imgclust classify``: unsupervised land-cover classes of a raster."""

from __future__ import annotations

from pathlib import Path

import click

from imgclust.cli._options import (
    FiniteFloat,
    Reporter,
    cluster_row,
    output_options,
    parse_k,
    report_option,
    scheduler_option,
    seed_option,
)


def _place(summary: dict) -> str:
    """The scene's CRS, in words where it has none."""
    if summary["crs"]:
        return summary["crs"]
    if summary.get("georeferenced"):
        return "no CRS, but a geotransform"
    return "not georeferenced: outputs on its pixel grid, areas in pixels"


def _rows(result) -> list[tuple[str, str]]:
    s = result.summary
    area = "hectares" if s["classes"] and "hectares" in s["classes"][0] else "area"
    names = [Path(p).name for p in s["inputs"]]
    scene = names[0] if len(names) == 1 else f"{names[0]} .. {names[-1]} ({len(names)} files)"
    rows = [
        ("scene", f"{scene} ({s['width']}x{s['height']}, {_place(s)})"),
        ("features", ", ".join(s["features"]) + f" (scaling: {s['scaling']})"),
        ("valid pixels", f"{s['valid_pixels']:,} ({s['nodata_pixels']:,} nodata)"),
    ]
    for c in s["classes"]:
        size = (
            f"{c['hectares']:,.0f} ha"
            if area == "hectares"
            else f"{c['pixels']:,} pixels"
            if c["area_unit"] == "pixels"
            else f"{c['area']:.4g} {c['area_unit']}"
        )
        label = f"{c['code']} {c['name']}"
        rows.append((label, f"{c['color']}  {c['fraction']:6.1%}  {size}"))
    if "dask" in s:
        rows.append(cluster_row(s["dask"]))
    if "chosen_k" in s:
        rows.append(("K", f"{s['chosen_k']['k']} ({s['chosen_k']['rule']})"))
    if "product" in s:
        rows.insert(1, ("product", s["product"]))
    for file, how in s.get("resampling", {}).items():
        rows.append(("resampled", f"{file}: {how}"))
    for mask in s.get("masks", []):
        rows.append(("masked", mask))
    quick = s["quicklook"]
    rows.append(("quicklook", f"{', '.join(quick['names'])} (by {quick['chosen_by']})"))
    rows.extend(("warning", text) for text in s.get("warnings", []))
    rows.append(("time", "  ".join(f"{k} {v:.2f}s" for k, v in s["timings"].items())))
    rows.append(("outputs", s["output"]))
    return rows


@click.command("classify")
@click.argument("rasters", nargs=-1, required=True, type=click.Path())
@click.option(
    "-k",
    "--n-clusters",
    "k",
    default=None,
    help="Number of classes, or auto: the knee of the inertia curve over --k-range (else the "
    "best silhouette), on the fitted sample.  [default: 6]",
)
@click.option("--k-range", default="2-12", show_default=True, help="K values tried by -k auto.")
@click.option(
    "--names",
    default=None,
    help='Class names, code 1 first, e.g. "water,forest,fields,town" (kept in the attribute '
    "table, the QGIS style, model.json and the report).",
)
@click.option(
    "--cog", is_flag=True, help="Write classes.tif as a Cloud Optimized GeoTIFF (GDAL's COG)."
)
@click.option(
    "--bands",
    default=None,
    help="Bands used as features: numbers, 1-based (4,3,2), or names (B02,B03,B04,B08 for a "
    "Sentinel-2 product, whose default is B02,B03,B04,B08,B11,B12; or the bands' descriptions).",
)
@click.option(
    "--resolution",
    type=FiniteFloat(min=0, min_open=True),
    default=None,
    help="Pixel size of the grid to classify on, in the CRS's units (e.g. 20). Default: the "
    "files' own, or the finest when bands differ (coarser bands resampled by cubic convolution).",
)
@click.option(
    "--mask",
    "masks",
    multiple=True,
    help="Leave out the pixels a quality band marks: FILE:VALUES (SCL.jp2:3,8,9,10) or "
    "FILE:bits=N,... (Landsat QA_PIXEL.TIF:bits=1,2,3,4: any of these bits set). Repeatable.",
)
@click.option(
    "--mask-scl/--no-mask-scl",
    default=True,
    show_default=True,
    help="With a Sentinel-2 L2A product, leave out what its scene classification marks as no "
    "data, saturated, cloud shadow, cloud or cirrus (classes 0, 1, 3, 8, 9, 10).",
)
@click.option(
    "--index",
    "indices",
    multiple=True,
    help="Spectral index as an extra feature, e.g. ndvi:nir=8,red=4 (repeatable; "
    "ndvi, ndwi, mndwi, ndbi, nd).",
)
@click.option(
    "--scaling",
    type=click.Choice(["standard", "none"]),
    default=None,
    help="Per-feature standardisation over the sampled valid pixels, or raw values."
    "  [default: standard]",
)
@click.option(
    "--nodata", type=float, default=None, help="Nodata value of every band (overrides the files')."
)
@click.option(
    "--sample",
    "sample_size",
    type=click.IntRange(min=1),
    default=1_000_000,
    show_default=True,
    help="Valid pixels the classes are fitted on, drawn from a seeded spread of the file's "
    "tiles (an eighth of them, or enough for twice the sample).",
)
@click.option(
    "--n-init",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="k-means attempts; the lowest inertia is kept.",
)
@click.option(
    "--model",
    type=click.Path(dir_okay=False),
    default=None,
    help="Apply the classes of a model.json from an earlier run instead of fitting.",
)
@click.option("--colors", default=None, help='Class colours, e.g. "#B90E0A,navy,green,#E1AD01".')
@click.option("--rgb", default=None, help="Bands of quicklook.png (red,green,blue), e.g. 4,3,2.")
@click.option(
    "--stretch",
    default="2-98",
    show_default=True,
    help="Percentiles of the quicklook's contrast stretch.",
)
@seed_option
@scheduler_option("Read, sample and classify the scene")
@report_option
@output_options
@click.pass_context
def command(
    ctx,
    rasters,
    k,
    k_range,
    names,
    cog,
    bands,
    indices,
    scaling,
    nodata,
    sample_size,
    n_init,
    model,
    colors,
    rgb,
    stretch,
    resolution,
    masks,
    mask_scl,
    seed,
    scheduler,
    no_report,
    output,
    overwrite,
    as_json,
    quiet,
):
    """Classify RASTERS into K land-cover classes with k-means.

    RASTERS is one multi-band file, one single-band file per band (stacked in the order
    given; bands of one extent at different resolutions are put on one grid), or a
    Sentinel-2 product as downloaded (its .SAFE folder or .zip). Writes classes.tif (GeoTIFF
    with the input's CRS and transform, codes 1..K, 0 = nodata, colour table, statistics,
    overviews), classes.tif.aux.xml (the attribute table and class names), classes.qml
    (QGIS style), classes.json, classes.csv, quicklook.png, classes.png, model.json and
    report.html into the output folder.
    """
    from imgclust.cluster.choose_k import parse_k_range
    from imgclust.raster.classify import classify_raster

    if model is not None:
        given = [
            name
            for name, value in (
                ("-k", k),
                ("--bands", bands),
                ("--index", indices),
                ("--scaling", scaling),
            )
            if value
        ]
        if given:
            raise click.UsageError(
                f"--model fixes the classes and features; drop {', '.join(given)}"
            )
    reporter = Reporter(quiet=quiet, as_json=as_json)
    output = output or _default_output(rasters[0])
    result = classify_raster(
        list(rasters),
        output,
        6 if k is None else parse_k(k),
        k_values=parse_k_range(k_range),
        names=names,
        cog=cog,
        bands=bands,
        indices=indices,
        scaling=scaling or "standard",
        nodata=nodata,
        sample_size=sample_size,
        random_state=seed,
        n_init=n_init,
        model=model,
        colors=colors,
        rgb=rgb,
        stretch=_parse_stretch(stretch),
        resolution=resolution,
        masks=masks,
        mask_scl=mask_scl,
        overwrite=overwrite,
        report=not no_report,
        progress=reporter.bar,
        scheduler=scheduler,
    )
    reporter.summary("imgclust classify", _rows(result), result.summary)


def _parse_stretch(text: str) -> tuple[float, float]:
    low, _, high = text.partition("-")
    try:
        return float(low), float(high)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not two percentiles like 2-98", param_hint="--stretch"
        ) from None


def _default_output(first: str) -> str:
    return f"{Path(first).stem}-classify"
