"""Classifying a large raster here, and on local Dask clusters of one and two workers.

Run from the repository root (``pip install ".[all]"``)::

    python benchmarks/bench_dask.py [--tiles 37] [--k 6] [--workers 1,2] [--workdir DIR]

The scene is the seven Landsat 8 bands of ``../shared/data/landsat8`` tiled ``--tiles`` times
in each direction into one deflate-compressed GeoTIFF (37: 23,199 x 22,311 = 518 megapixels,
7 GB of pixels). Each configuration runs ``classify_raster`` in its own process, from the file
to every output, with the same seed:

- ``here``: no scheduler (strips read one ahead in a thread, classified here);
- ``local:N``: a ``LocalCluster`` of N worker processes (one thread each) started by that
  process; the workers read, sample and classify the strips, the process fits and writes.

Reported: wall time (cluster start-up included), speed-up over ``here``, peak resident memory
of the client process and of each worker (``getrusage`` in the worker), and whether
``classes.tif`` holds exactly the codes of the run here (a hash over the decoded pixels).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
LANDSAT = REPO.parent / "shared" / "data" / "landsat8"
BANDS = [LANDSAT / f"l8_B{i}.tif" for i in range(1, 8)]


def tile_scene(folder: Path, tiles: int) -> Path:
    """The Landsat bands tiled ``tiles`` x ``tiles`` times into one GeoTIFF (kept if there)."""
    from bench_raster import _tile_scene  # the scene of bench_raster.py, at another size

    path = folder / f"landsat8_x{tiles}.tif"
    return path if path.exists() else _tile_scene(folder, tiles)


def codes_hash(path: Path) -> str:
    """BLAKE2b of the decoded class codes, read by blocks of rows."""
    import rasterio

    digest = hashlib.blake2b(digest_size=16)
    with rasterio.open(path) as src:
        for row in range(0, src.height, 2048):
            window = rasterio.windows.Window(0, row, src.width, min(2048, src.height - row))
            digest.update(np.ascontiguousarray(src.read(1, window=window)).tobytes())
    return digest.hexdigest()


def _worker_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(config: str, scene: str, k: int, out: str) -> dict:
    """One configuration, in this (child) process."""
    from imgclust.distributed import dask_client
    from imgclust.raster.classify import classify_raster

    start = time.perf_counter()
    scheduler = None if config == "here" else config
    with dask_client(scheduler) as client:
        result = classify_raster(scene, out, k, random_state=0, overwrite=True, scheduler=client)
        workers = [] if client is None else sorted(client.run(_worker_peak_mb).values())
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "client_peak_mb": _worker_peak_mb(),
        "worker_peak_mb": workers,
        "timings": result.summary["timings"],
    }


def measure(config: str, scene: Path, k: int, out: Path) -> dict:
    command = [sys.executable, __file__, "--child", config, "--k", str(k), "--out", str(out)]
    done = subprocess.run([*command, str(scene)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{config} failed:\n{done.stderr[-3000:]}")
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    measured["codes"] = codes_hash(out / "classes.tif")
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=37)
    parser.add_argument("--k", type=int, default=6)
    parser.add_argument("--workers", default="1,2", help="cluster sizes, e.g. 1,2")
    parser.add_argument("--workdir", default=None, help="where the scene and outputs go")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    parser.add_argument("scene", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child, args.scene, args.k, args.out)))
        return
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-dask-"))
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    scene = tile_scene(work, args.tiles)
    import rasterio

    with rasterio.open(scene) as src:
        megapixels = src.width * src.height / 1e6
        size = f"{src.width} x {src.height} x {src.count} bands"
    print(f"scene: {scene} ({size}, {megapixels:.0f} MP; {time.perf_counter() - start:.0f} s)")
    configs = ["here", *(f"local:{n}" for n in args.workers.split(","))]
    results = {c: measure(c, scene, args.k, work / c.replace(":", "-")) for c in configs}
    base = results["here"]
    print(f"\nK={args.k}, seed 0, {os.cpu_count()} CPUs\n")
    print("| run | wall s | MP/s | speed-up | client peak MB | worker peak MB | same codes |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for config, r in results.items():
        workers = ", ".join(f"{m:,.0f}" for m in r["worker_peak_mb"]) or "-"
        print(
            f"| {config} | {r['seconds']:.1f} | {megapixels / r['seconds']:.1f} | "
            f"{base['seconds'] / r['seconds']:.2f}x | {r['client_peak_mb']:,.0f} | {workers} | "
            f"{'yes' if r['codes'] == base['codes'] else 'NO'} |"
        )
    print("\nstages (s):")
    for config, r in results.items():
        print(f"  {config}: " + "  ".join(f"{k} {v:.1f}" for k, v in r["timings"].items()))


if __name__ == "__main__":
    main()
