"""What the GIS outputs cost on a large scene: overviews, a Cloud Optimized GeoTIFF, -k auto.

Run from the repository root (``pip install ".[all]"``; ``gdalinfo`` from Debian's gdal-bin
for the checks)::

    python benchmarks/bench_gis.py [--tiles 17] [--k 6] [--workdir DIR]

The scene is the seven Landsat 8 bands of ``../shared/data/landsat8`` tiled ``--tiles`` times
in each direction into one deflate-compressed GeoTIFF (17: 10,659 x 10,251 = 109 megapixels),
the large scene of ``bench_raster.py``. Each configuration runs the ``imgclust classify``
command in its own process, from the file to every output:

- ``-k K``: the default GeoTIFF (statistics, internal overviews by mode, attribute table,
  QGIS style);
- ``-k K --cog``: the same as a Cloud Optimized GeoTIFF (GDAL's COG driver);
- ``-k auto``: K chosen on the fitted sample first (2-12).

Reported: wall time, peak resident memory of the process, the size of ``classes.tif``, the
time of its own step (overviews, COG copy, K sweep, from ``classes.json``), and what
``gdalinfo -json`` finds: the layout, the attribute table, category names, overviews and
statistics.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _scene(workdir: Path, tiles: int) -> Path:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_raster import _tile_scene

    path = workdir / f"landsat8_x{tiles}.tif"
    return path if path.exists() else _tile_scene(workdir, tiles)


def _run(scene: Path, out: Path, args: list[str]) -> dict:
    command = [sys.executable, "-m", "imgclust", "classify", str(scene), "-o", str(out),
               "--overwrite", "-q", *args]  # fmt: skip
    start = time.perf_counter()
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the largest so far
    seconds = time.perf_counter() - start
    if status != 0:
        sys.exit(f"{' '.join(command)} failed ({status})")
    summary = json.loads((out / "classes.json").read_text())
    return {
        "seconds": seconds,
        "peak_mb": usage.ru_maxrss / 1024,
        "size_mb": (out / "classes.tif").stat().st_size / 1e6,
        "timings": summary["timings"],
        "k": summary["n_classes"],
        "gdal": _gdalinfo(out / "classes.tif"),
    }


def _gdalinfo(path: Path) -> str:
    program = shutil.which("gdalinfo")
    if program is None:
        return "no gdalinfo here"
    info = json.loads(
        subprocess.run([program, "-json", str(path)], capture_output=True, check=True).stdout
    )
    band = info["bands"][0]
    layout = info.get("metadata", {}).get("IMAGE_STRUCTURE", {}).get("LAYOUT", "GTiff")
    found = [
        f"layout {layout}",
        f"{len(info.get('rat', {}).get('row', []))} table rows",
        f"{len(band.get('categories', []))} categories",
        f"{len(band.get('overviews', []))} overviews",
        "statistics" if "STATISTICS_MEAN" in band.get("metadata", {}).get("", {}) else "no stats",
        f"CRS {'kept' if info.get('coordinateSystem') else 'missing'}",
        f"colour table {'kept' if band.get('colorTable') else 'missing'}",
    ]
    return ", ".join(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=17)
    parser.add_argument("--k", type=int, default=6)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-gis-"))
    workdir.mkdir(parents=True, exist_ok=True)
    scene = _scene(workdir, args.tiles)
    print(f"scene {scene} ({scene.stat().st_size / 1e6:.0f} MB)")
    print(
        "| run | wall (s) | peak RSS (MB) | classes.tif (MB) | its step (s) | gdalinfo finds |\n"
        "|---|---|---|---|---|---|"
    )
    for name, extra, step in (
        (f"-k {args.k}", ["-k", str(args.k)], "overviews"),
        (f"-k {args.k} --cog", ["-k", str(args.k), "--cog"], "cog"),
        ("-k auto (2-12)", ["-k", "auto"], "choose_k"),
    ):
        row = _run(scene, workdir / "out", extra)
        own = row["timings"].get(step)
        own_text = f"{own:.1f} ({step})" if own is not None else f"in classify ({step})"
        print(
            f"| {name} (K={row['k']}) | {row['seconds']:.1f} | {row['peak_mb']:.0f} | "
            f"{row['size_mb']:.1f} | {own_text} | {row['gdal']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
