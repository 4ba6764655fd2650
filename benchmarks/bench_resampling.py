"""Which resampling puts a coarser band onto a finer grid best, for classification.

Run from the repository root (``pip install ".[all]"``, GDAL's ``gdalwarp`` and
``gdal_translate`` on the path)::

    python benchmarks/bench_resampling.py [--big] [--workdir DIR]

For each scene, some bands are averaged to 2 or 3 times the pixel size (``gdalwarp -r
average``, as a sensor's coarser bands are), and ``classify_raster`` classifies the mixed
stack with each way of putting them back onto the fine grid (``stack.UPSAMPLING``). Each is
scored by the adjusted Rand index of its classes against the classes of the scene with every
band at full resolution, for K = 4 and 8, mean (and lowest) over seeds 0-2.

Scenes, of three kinds, from ``../shared/data``: the Landsat 8 bands (7-band multispectral,
30 m; B5-B7 made coarser), ``RGB.byte.tif`` (an aerial RGB scene; blue made coarser), a
camera photo (``sunset_by_Aitzol_Berasategi.jpg`` at a quarter size, written as a GeoTIFF;
blue made coarser), and with ``--big`` the 45.7 MP noisy Landsat scene of ``bench_raster.py``
(``_tile_scene(folder, 11, noisy=True)``) split into one file per band, with its seconds.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from sklearn.metrics import adjusted_rand_score

from imgclust.raster import stack
from imgclust.raster.classify import classify_raster

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
WAYS = ("cubic", "bilinear", "nearest")


def _band_files(source: Path, folder: Path) -> list[Path]:
    """One GeoTIFF per band of ``source``."""
    with rasterio.open(source) as ds:
        count = ds.count
    files = []
    for band in range(1, count + 1):
        path = folder / f"b{band}.tif"
        if not path.exists():
            command = ["gdal_translate", "-q", "-b", str(band), "-co", "TILED=YES",
                       "-co", "COMPRESS=DEFLATE", str(source), str(path)]  # fmt: skip
            subprocess.run(command, check=True)
        files.append(path)
    return files


def _coarser(files: list[Path], bands: set[int], factor: int, folder: Path) -> list[Path]:
    """``files`` with ``bands`` (1-based) averaged to ``factor`` times their pixel size."""
    mixed = []
    for band, path in enumerate(files, start=1):
        if band not in bands:
            mixed.append(path)
            continue
        coarse = folder / f"{path.stem}_x{factor}.tif"
        if not coarse.exists():
            with rasterio.open(path) as ds:
                size = str(ds.res[0] * factor)
            subprocess.run(["gdalwarp", "-q", "-tr", size, size, "-r", "average", str(path),
                            str(coarse)], check=True)  # fmt: skip
        mixed.append(coarse)
    return mixed


def _photo(folder: Path) -> Path:
    path = folder / "photo.tif"
    if not path.exists():
        with Image.open(SHARED / "photos" / "sunset_by_Aitzol_Berasategi.jpg") as image:
            image = image.convert("RGB").reduce(4)
        pixels = np.asarray(image).transpose(2, 0, 1)
        with rasterio.open(path, "w", driver="GTiff", width=pixels.shape[2],
                           height=pixels.shape[1], count=3, dtype="uint8", crs="EPSG:32630",
                           transform=rasterio.Affine(1, 0, 0, 0, -1, 0)) as dst:  # fmt: skip
            dst.write(pixels)
    return path


def _classes(files, out: Path, k: int, seed: int, way: str) -> tuple[np.ndarray, float]:
    stack.UPSAMPLING = way
    started = time.perf_counter()
    classify_raster(files, out, k, random_state=seed, report=False, overwrite=True)
    seconds = time.perf_counter() - started
    with rasterio.open(out / "classes.tif") as ds:
        return ds.read(1), seconds


def _ari(a: np.ndarray, b: np.ndarray) -> float:
    valid = np.flatnonzero(((a > 0) & (b > 0)).ravel())
    rows = valid[:: max(1, len(valid) // 200_000)]
    return adjusted_rand_score(a.ravel()[rows], b.ravel()[rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big", action="store_true", help="Also the 45.7 MP scene (slow).")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="imgclust-bench-resampling-"))
    landsat = sorted((SHARED / "landsat8").glob("l8_B*.tif"))
    scenes = [
        ("Landsat 8, B5-B7 at 2x", lambda d: landsat, {5, 6, 7}, 2),
        ("Landsat 8, B5-B7 at 3x", lambda d: landsat, {5, 6, 7}, 3),
        ("RGB.byte aerial, blue at 2x", lambda d: _band_files(SHARED / "RGB.byte.tif", d), {3}, 2),
        ("camera photo, blue at 2x", lambda d: _band_files(_photo(d), d), {3}, 2),
    ]
    if args.big:
        import sys

        sys.path.insert(0, str(Path(__file__).parent))
        from bench_raster import _tile_scene

        def tiled(folder: Path) -> list[Path]:
            return _band_files(_tile_scene(folder, 11, noisy=True), folder)

        scenes.append(("45.7 MP Landsat, B5-B7 at 2x", tiled, {5, 6, 7}, 2))
    print("| scene | K | " + " | ".join(f"{w}: mean ARI (lowest)" for w in WAYS) + " |")
    print("|---|---|" + "---|" * len(WAYS))
    for name, files_of, bands, factor in scenes:
        folder = root / name.split(",")[0].replace(" ", "_")
        folder.mkdir(parents=True, exist_ok=True)
        full = files_of(folder)
        mixed = _coarser(full, bands, factor, folder)
        seconds = {w: [] for w in WAYS}
        for k in (4, 8):
            scores = {w: [] for w in WAYS}
            for seed in (0, 1, 2):
                reference, _ = _classes(full, folder / "full", k, seed, WAYS[0])
                for way in WAYS:
                    codes, took = _classes(mixed, folder / way, k, seed, way)
                    scores[way].append(_ari(codes, reference))
                    seconds[way].append(took)
            cells = [f"{np.mean(scores[w]):.3f} ({min(scores[w]):.3f})" for w in WAYS]
            print(f"| {name} | {k} | " + " | ".join(cells) + " |", flush=True)
        print(f"<!-- {name}: median seconds "
              + ", ".join(f"{w} {np.median(seconds[w]):.2f}" for w in WAYS) + " -->")  # fmt: skip
    stack.UPSAMPLING = "cubic"


if __name__ == "__main__":
    main()
