"""Land-cover classes of a raster: imgclust against GRASS GIS, Spectral Python and scikit-learn.

Run from the repository root (peers: ``pip install ".[bench]"`` and the Debian package
``grass-core``)::

    python benchmarks/bench_raster.py [--k 6] [--tiles 11 17] [--noisy] [--repeats 3] \
        [--scene PATH ...]

Scenes: the seven Landsat 8 bands of ``../shared/data/landsat8`` (one file per band,
0.38 MP), and for each ``--tiles`` value a large scene written by tiling them into one 7-band
GeoTIFF (that many times in each direction: 11 makes 45.7 MP, 17 makes 109.3 MP), and any
raster file given with ``--scene`` (a real scene, or another layout of the same one). Every
method goes from the files on disk to a classified GeoTIFF with the same K:

- imgclust: the ``imgclust classify`` command (fit on a seeded sample of ``--sample`` valid
  pixels, standardised bands, block by block, all its outputs and its report);
- GRASS GIS: ``r.external`` links the bands, ``i.cluster`` (sampling interval chosen for about
  ``--sample`` pixels, at most 100,000: with more, i.cluster 8.2 merges its classes down to one
  within a few iterations, e.g. 1 class from the 378,081 pixels of the small scene against 6 from
  94,213 or 15,000) then ``i.maxlik``, ``r.out.gdal``;
- Spectral Python: ``spectral.kmeans`` on the in-memory standardised array (every pixel; it
  has no sampling), default 20 iterations;
- scikit-learn: ``KMeans(n_init=1)`` fitted on the same number of sampled standardised pixels
  of the in-memory array, then ``predict`` on every pixel;
- the plain scikit-learn pipeline a user writes for a scene larger than memory: a windowed
  rasterio read for a seeded sample, ``StandardScaler``, ``KMeans(n_init=1)``, ``predict``
  window by window into a tiled deflate GeoTIFF;
- the agreement check (not timed against imgclust): scikit-learn's ``KMeans(n_init=8)``
  fitted on exactly the pixels imgclust samples, with imgclust's scaling, predicting every
  pixel. The ARI column compares each map with this one: for imgclust it is the agreement
  with scikit-learn at the same seed and sample. The same fit at seed 1 shows how far
  scikit-learn agrees with itself there: where the k-means objective is flat (partitions whose
  inertias differ by 0.01%), two good fits can agree at an ARI near 0.9.

Each peer is measured in pairs with imgclust (imgclust, then the peer, ``--repeats`` times);
the table gives medians, and each ratio is the median of the pairs' ratios, so that load on
the machine hits both sides of a ratio alike. Under each large scene's table is the floor:
one decompression of the scene with rasterio (GDAL's defaults) plus one write of the class map
(tiled, deflate level 1, as imgclust writes it), measured in the benchmark's own process.

``--noisy`` builds the large scene from mirrored tiles with noise, so that no values repeat
(the plain tiling repeats one 0.38 MP scene, which flatters whatever profits from repeated
values). CPU seconds (user + system of the process and its children) are beside wall seconds.

Each method runs in its own process; peak memory is that process's own peak resident set size
(``VmHWM``), or its children's (GRASS) where larger. Throughput is megapixels per second of
wall time. On the small scene the inertia (within-class sum of squares over every valid pixel,
in the standardised space, each class around its own mean) is compared with scikit-learn's. On
every scene each method's number of classes in its map and the agreement of its map with the
same-sample scikit-learn map (adjusted Rand index; every 7th pixel on the large scenes) are in
the table, so that a method that classified nothing cannot pass for a fast one. Peers whose
in-memory array would not fit comfortably (``--max-memory-gb``) are skipped on large scenes.
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

import numpy as np

REPO = Path(__file__).resolve().parents[1]
LANDSAT = REPO.parent / "shared" / "data" / "landsat8"
BANDS = [LANDSAT / f"l8_B{i}.tif" for i in range(1, 8)]


# -- the methods, each run in a child process ------------------------------------------------


def _read_stack(paths: list[str]) -> tuple[np.ndarray, dict]:
    import rasterio

    layers = []
    for path in paths:
        with rasterio.open(path) as src:
            layers.append(src.read())
            profile = src.profile
    return np.concatenate(layers).astype(np.float32), profile


def _standardise(data: np.ndarray) -> np.ndarray:
    pixels = data.reshape(data.shape[0], -1).T
    pixels -= pixels.mean(axis=0)
    pixels /= pixels.std(axis=0)
    return pixels


def _write_classes(labels: np.ndarray, profile: dict, path: str) -> None:
    import rasterio

    profile = {**profile, "count": 1, "dtype": "uint8", "nodata": 0, "compress": "deflate"}
    profile.pop("blockxsize", None), profile.pop("blockysize", None)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write((labels + 1).astype(np.uint8).reshape(profile["height"], profile["width"]), 1)


def run_imgclust(paths, k, sample, out):
    """The ``imgclust classify`` command as a user runs it: every output, the report too."""
    from imgclust.cli import main

    rgb = _rgb(paths)
    sys.argv = ["imgclust", "classify", *paths, "-k", str(k), "--sample", str(sample)]
    sys.argv += ["--seed", "0", "-o", out, "-q", *(["--rgb", rgb] if rgb else [])]
    main()


def _rgb(paths):
    """Landsat's red, green and blue bands, where the stack has them."""
    if len(paths) == 7:
        return "4,3,2"
    import rasterio

    with rasterio.open(paths[0]) as src:
        return "4,3,2" if len(paths) == 1 and src.count >= 4 else None


def run_sklearn(paths, k, sample, out):
    from sklearn.cluster import KMeans

    data, profile = _read_stack(paths)
    pixels = _standardise(data)
    rng = np.random.default_rng(0)
    index = rng.choice(pixels.shape[0], size=min(sample, pixels.shape[0]), replace=False)
    km = KMeans(k, n_init=1, random_state=0).fit(pixels[np.sort(index)])
    labels = km.predict(pixels)
    os.makedirs(out)
    _write_classes(labels, profile, f"{out}/classes.tif")


def run_plain_windowed(paths, k, sample, out):
    """The pipeline a user writes for a scene larger than memory: a windowed rasterio read
    for a seeded sample of pixels, ``StandardScaler``, ``KMeans(n_init=1)``, then ``predict``
    window by window into a tiled, deflate-compressed GeoTIFF."""
    import rasterio
    from rasterio.windows import Window
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    sources = [rasterio.open(p) for p in paths]
    width, height = sources[0].width, sources[0].height
    rows = 512

    def windows():
        for top in range(0, height, rows):
            window = Window(0, top, width, min(rows, height - top))
            block = np.concatenate([src.read(window=window) for src in sources])
            yield window, block.reshape(block.shape[0], -1).T.astype(np.float32)

    rng = np.random.default_rng(0)
    share = min(1.0, sample / (width * height))
    picked = [block[rng.random(len(block)) < share] for _, block in windows()]
    scaler = StandardScaler().fit(np.concatenate(picked))
    km = KMeans(k, n_init=1, random_state=0).fit(scaler.transform(np.concatenate(picked)))
    profile = {
        **sources[0].profile, "count": 1, "dtype": "uint8", "nodata": 0, "compress": "deflate",
        "tiled": True, "blockxsize": 512, "blockysize": 512,
    }  # fmt: skip
    os.makedirs(out)
    with rasterio.open(f"{out}/classes.tif", "w", **profile) as dst:
        for window, block in windows():
            labels = km.predict(scaler.transform(block)) + 1
            dst.write(labels.astype(np.uint8).reshape(window.height, window.width), 1,
                      window=window)  # fmt: skip


def run_sklearn_same_sample(paths, k, sample, out, seed=0):
    """The agreement check: scikit-learn's ``KMeans(n_init=8, random_state=seed)`` fitted on
    the very pixels imgclust samples (its seeded windows and keys, seed 0) with imgclust's
    scaling, then ``predict`` window by window. Its map against imgclust's is the ARI at the
    same seed and sample; at seed 1 against seed 0, how far scikit-learn agrees with itself."""
    import rasterio
    from rasterio.windows import Window
    from sklearn.cluster import KMeans

    from imgclust._progress import no_progress
    from imgclust.raster import classify
    from imgclust.raster.stack import BandStack

    with rasterio.Env(**classify.GDAL_OPTIONS), BandStack(paths) as stack:
        spec = classify._feature_spec(stack, None, (), "standard")
        values, n_valid, _ = classify._draw_sample(stack, spec, sample, 0, no_progress)
        X = classify._sample_features(spec, values, n_valid)
        km = KMeans(k, n_init=8, random_state=seed).fit(X)
        profile = classify._output_profile(stack, k)
        os.makedirs(out)
        with rasterio.open(f"{out}/classes.tif", "w", **profile) as dst:
            for row, n_rows in stack.windows():
                block = stack.read(spec.read_bands, row, n_rows)
                pixels = block.data.reshape(block.data.shape[0], -1).T
                labels = km.predict(spec.transform(spec.raw_features(pixels))) + 1
                labels[~block.valid.reshape(-1)] = 0
                window = Window(0, row, stack.width, n_rows)
                dst.write(labels.astype(np.uint8).reshape(n_rows, -1), 1, window=window)


def run_spectral(paths, k, sample, out):
    import logging

    import spectral

    logging.getLogger("spectral").setLevel(logging.WARNING)  # a line per iteration otherwise
    data, profile = _read_stack(paths)
    pixels = _standardise(data)
    image = pixels.reshape(profile["height"], profile["width"], -1)
    labels, _ = spectral.kmeans(image, nclusters=k, max_iterations=20)
    os.makedirs(out)
    _write_classes(labels.reshape(-1), profile, f"{out}/classes.tif")


SAME_SAMPLE = "scikit-learn KMeans(n_init=8) on imgclust's sample (check)"
SAME_SAMPLE_SEED1 = "the same at seed 1 (scikit-learn's agreement with itself)"


def run_sklearn_same_sample_seed1(paths, k, sample, out):
    run_sklearn_same_sample(paths, k, sample, out, seed=1)


#: The most sample points given to i.cluster (see the module's docstring).
GRASS_SAMPLE_MAX = 100_000


def run_grass(paths, k, sample, out):
    import rasterio

    with rasterio.open(paths[0]) as src:
        n_pixels, count = src.width * src.height, src.count
    interval = max(1, int(np.ceil(np.sqrt(n_pixels / min(sample, GRASS_SAMPLE_MAX)))))
    if len(paths) == 1:
        names = [f"b.{i}" for i in range(1, count + 1)]
        link = f"r.external input={paths[0]} output=b -o --quiet"
    else:
        names = [f"b{i}" for i in range(1, len(paths) + 1)]
        link = "\n".join(
            f"r.external input={p} output={n} -o --quiet" for p, n in zip(paths, names, strict=True)
        )
    os.makedirs(out)
    script = Path(out) / "classify.sh"
    script.write_text(
        f"""set -e
{link}
g.region raster={names[0]}
i.group group=g subgroup=g input={",".join(names)} --quiet
i.cluster group=g subgroup=g signaturefile=sig classes={k} sample={interval},{interval} --quiet
i.maxlik group=g subgroup=g signaturefile=sig output=classes --quiet
r.out.gdal input=classes output={out}/classes.tif format=GTiff type=Byte \\
    createopt=COMPRESS=DEFLATE --quiet
"""
    )
    subprocess.run(
        ["grass", "--tmp-location", str(paths[0]), "--exec", "bash", str(script)],
        check=True,
        capture_output=True,
    )


METHODS = {
    "imgclust": run_imgclust,
    "GRASS i.cluster + i.maxlik": run_grass,
    "Spectral Python kmeans": run_spectral,
    "scikit-learn KMeans(n_init=1)": run_sklearn,
    "plain scikit-learn pipeline, windowed": run_plain_windowed,
    SAME_SAMPLE: run_sklearn_same_sample,
    SAME_SAMPLE_SEED1: run_sklearn_same_sample_seed1,
}
#: The agreement checks, run once per scene.
CHECKS = (SAME_SAMPLE, SAME_SAMPLE_SEED1)
#: Peers timed against imgclust in pairs.
PEERS = [m for m in METHODS if m != "imgclust" and m not in CHECKS]


# -- measuring -----------------------------------------------------------------------------


def _measure(method: str, paths: list[str], k: int, sample: int, out: str) -> dict:
    """Run one method in a child process; wall time and peak RSS of the child's tree."""
    start = time.perf_counter()
    child = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--child",
            method,
            "--k",
            str(k),
            "--sample",
            str(sample),
            "--out",
            out,
            *paths,
        ]
    )
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    cpu = usage.ru_utime + usage.ru_stime
    peak = Path(f"{out}.peak")
    peak_mb = float(peak.read_text()) if peak.exists() else float("nan")
    return {"seconds": seconds, "failed": status != 0, "peak_mb": peak_mb, "cpu": cpu}


def _report_peak(out: str) -> None:
    """In the child: its peak resident memory and its children's, in MB, into ``out.peak``.

    Not the ``ru_maxrss`` that ``wait4`` gives the parent: Linux carries the parent's resident
    size over into a child's at ``exec``, so every method would show the benchmark's own peak.
    ``VmHWM`` is the child's own address space since its ``exec``.
    """
    import resource

    own = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            own = int(line.split()[1]) / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    Path(f"{out}.peak").write_text(str(max(own, children)))


def _within_class_ss(paths: list[str], classes: str) -> float:
    import rasterio

    data, _ = _read_stack(paths)
    pixels = _standardise(data).astype(np.float64)
    with rasterio.open(classes) as src:
        labels = src.read(1).reshape(-1)
    total = 0.0
    for label in np.unique(labels):
        if label == 0:
            continue
        members = pixels[labels == label]
        total += float(((members - members.mean(axis=0)) ** 2).sum())
    return total


def _class_map(classes: str, step: int) -> np.ndarray:
    """Every ``step``-th pixel of a classified GeoTIFF's first band."""
    import rasterio

    with rasterio.open(classes) as src:
        return src.read(1).reshape(-1)[::step]


def _agreement(maps: dict, reference: str | None) -> dict:
    """``{method: (classes found, ARI against the reference's map)}``."""
    from sklearn.metrics import adjusted_rand_score

    found = {}
    for method, labels in maps.items():
        count = len(np.unique(labels[labels != 0]))
        ari = adjusted_rand_score(maps[reference], labels) if reference in maps else None
        found[method] = (count, ari)
    return found


def _tile_scene(folder: Path, tiles: int, noisy: bool = False) -> Path:
    """The bands tiled ``tiles`` times each way into one 7-band GeoTIFF. ``noisy``: every other
    tile mirrored and seeded Gaussian noise (sd 1% of each band's spread) added, so that no
    block of values repeats, as on a real scene."""
    import rasterio

    with rasterio.open(BANDS[0]) as src:
        profile = src.profile
        width, height, transform = src.width, src.height, src.transform
    path = folder / f"landsat8_x{tiles}{'_noisy' if noisy else ''}.tif"
    profile.update(
        count=len(BANDS),
        width=width * tiles,
        height=height * tiles,
        tiled=True,
        blockxsize=512,
        blockysize=512,
        compress="deflate",
        predictor=2,
        BIGTIFF="YES",
        num_threads="all_cpus",
    )
    profile["transform"] = transform
    with rasterio.open(path, "w", **profile) as dst:
        for i, band in enumerate(BANDS, start=1):
            with rasterio.open(band) as src:
                values = src.read(1)
            if noisy:
                _write_noisy_tiles(dst, i, values, tiles, seed=i)
            else:
                dst.write(np.tile(values, (tiles, tiles)), i)
            dst.set_band_description(i, band.stem)
    return path


def _write_noisy_tiles(dst, band: int, values: np.ndarray, tiles: int, seed: int) -> None:
    """Row of tiles by row of tiles: mirrored every other tile, with noise (uint16 kept)."""
    from rasterio.windows import Window

    rng = np.random.default_rng(seed)
    height, width = values.shape
    spread = float(values.std()) * 0.01
    top = np.iinfo(values.dtype).max
    for r in range(tiles):
        row = []
        for c in range(tiles):
            tile = values[::-1] if r % 2 else values
            tile = tile[:, ::-1] if c % 2 else tile
            noisy = np.rint(tile + rng.normal(0, spread, tile.shape))
            row.append(np.clip(noisy, 1, top).astype(values.dtype))
        dst.write(np.hstack(row), band, window=Window(0, r * height, width * tiles, height))


def _floor(paths: list[str], classes: str, workdir: str) -> dict:
    """The floor: decompress every band of the scene once with rasterio (windows of 512 whole
    rows, GDAL's defaults) and write imgclust's class map once as imgclust writes it (tiled,
    deflate level 1), in this process; the map is read into memory first, untimed."""
    import resource

    import rasterio
    from rasterio.windows import Window

    with rasterio.open(classes) as src:
        codes, profile = src.read(1), src.profile
    profile.update(compress="deflate", zlevel=1, tiled=True, blockxsize=512, blockysize=512)

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    start, start_cpu = time.perf_counter(), cpu()
    for path in paths:
        with rasterio.open(path) as src:
            for top in range(0, src.height, 512):
                src.read(window=Window(0, top, src.width, min(512, src.height - top)))
    read = {"seconds": time.perf_counter() - start, "cpu": cpu() - start_cpu}
    start, start_cpu = time.perf_counter(), cpu()
    with rasterio.open(f"{workdir}/floor.tif", "w", **profile) as dst:
        for top in range(0, codes.shape[0], 512):
            rows = codes[top : top + 512]
            dst.write(rows, 1, window=Window(0, top, codes.shape[1], rows.shape[0]))
    write = {"seconds": time.perf_counter() - start, "cpu": cpu() - start_cpu}
    return {"read": read, "write": write}


def _median(values: list[float]) -> float:
    return float(np.median(values))


def _run_pairs(paths, k, sample, tmp, args, skip: dict) -> tuple[dict, dict]:
    """imgclust and each peer back to back, ``--repeats`` times; every run's figures."""
    runs: dict[str, list[dict]] = {m: [] for m in METHODS}
    pairs: dict[str, list[tuple[dict, dict]]] = {m: [] for m in PEERS}
    outputs: dict[str, str] = {}
    for _ in range(args.repeats):
        for peer in PEERS:
            if peer in skip:
                continue
            pair = []
            for method in ("imgclust", peer):
                out = f"{tmp}/{sum(map(len, runs.values()))}"
                result = _measure(method, paths, k, sample, out)
                runs[method].append(result)
                pair.append(result)
                if not result["failed"]:
                    outputs[method] = out
            pairs[peer].append(tuple(pair))
    for index, check in enumerate(CHECKS):
        out = f"{tmp}/check-{index}"
        runs[check].append(_measure(check, paths, k, sample, out))
        if not runs[check][0]["failed"]:
            outputs[check] = out
    return {m: r for m, r in runs.items() if r}, {"pairs": pairs, "outputs": outputs}


def _scene_table(
    name: str, paths: list[str], k: int, sample: int, n_pixels: int, args, n_bands: int = 7
) -> None:
    available = _available()
    # in-memory arrays: float32 with standardised copies; Spectral Python works in float64
    need_gb = {
        "scikit-learn KMeans(n_init=1)": n_pixels * n_bands * 4 * 3 / 1e9,
        "Spectral Python kmeans": n_pixels * n_bands * 8 * 4 / 1e9,
    }
    skip = {m: "not installed" for m in METHODS if not available[m]}
    for method, gb in need_gb.items():
        if gb > args.max_memory_gb and method not in skip:
            skip[method] = f"skipped: needs about {gb:.0f} GB in memory"
    print(f"\n### {name}: {n_pixels / 1e6:.1f} MP, {n_bands} bands, K={k}, sample {sample:,}\n")
    print(
        f"Medians of {args.repeats} run(s); each peer ran right after an imgclust run, and its "
        "ratios are the medians of those pairs' ratios.\n"
    )
    print(
        "| method | time (s) | CPU (s) | MP/s | peer time / imgclust's | peer CPU / imgclust's "
        "| peak RSS (MB) | inertia / scikit-learn's | classes | ARI vs same-sample scikit-learn |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    step = 1 if n_pixels < 5_000_000 else 7
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        runs, extra = _run_pairs(paths, k, sample, tmp, args, skip)
        outputs = extra["outputs"]
        maps = {m: _class_map(f"{o}/classes.tif", step) for m, o in outputs.items()}
        inertia = {}
        if args.inertia:
            inertia = {m: _within_class_ss(paths, f"{o}/classes.tif") for m, o in outputs.items()}
        agreement = _agreement(maps, SAME_SAMPLE)
        reference = inertia.get("scikit-learn KMeans(n_init=1)")
        for method in METHODS:
            if method in skip:
                print(f"| {method} | {skip[method]} |||||||||")
                continue
            _print_row(method, runs[method], extra["pairs"].get(method), n_pixels, agreement,
                       inertia, reference)  # fmt: skip
        if "imgclust" in outputs:
            floor = _floor(paths, f"{outputs['imgclust']}/classes.tif", tmp)
            _print_floor(floor, runs["imgclust"])


def _print_row(method, results, pairs, n_pixels, agreement, inertia, reference) -> None:
    ok = [r for r in results if not r["failed"]]
    status = " (failed)" if len(ok) < len(results) else ""
    if not ok:
        print(f"| {method} (failed) |||||||||")
        return
    seconds, cpu = _median([r["seconds"] for r in ok]), _median([r["cpu"] for r in ok])
    peak = max(r["peak_mb"] for r in ok)
    ratio = cpu_ratio = "1.0x"
    if pairs:
        good = [(a, b) for a, b in pairs if not a["failed"] and not b["failed"]]
        ratio = f"{_median([b['seconds'] / a['seconds'] for a, b in good]):.2f}x"
        cpu_ratio = f"{_median([b['cpu'] / a['cpu'] for a, b in good]):.2f}x"
    elif method != "imgclust":
        ratio = cpu_ratio = ""
    count, ari = agreement.get(method, (None, None))
    counted = "" if count is None else str(count)
    agreed = "" if ari is None else f"{ari:.3f}"
    rel = f"{inertia[method] / reference:.4f}" if reference and method in inertia else ""
    print(
        f"| {method}{status} | {seconds:.2f} | {cpu:.2f} | {n_pixels / 1e6 / seconds:.2f} "
        f"| {ratio} | {cpu_ratio} | {peak:.0f} | {rel} | {counted} | {agreed} |",
        flush=True,
    )


def _print_floor(floor: dict, ours: list[dict]) -> None:
    read, write = floor["read"], floor["write"]
    seconds = read["seconds"] + write["seconds"]
    cpu = read["cpu"] + write["cpu"]
    ok = [r for r in ours if not r["failed"]]
    our_seconds, our_cpu = _median([r["seconds"] for r in ok]), _median([r["cpu"] for r in ok])
    print(
        f"\nFloor: one rasterio decompression of the scene {read['seconds']:.2f} s "
        f"({read['cpu']:.2f} CPU s) + one write of the class map {write['seconds']:.2f} s "
        f"({write['cpu']:.2f} CPU s) = {seconds:.2f} s, {cpu:.2f} CPU s; imgclust's whole "
        f"command takes {our_seconds / seconds:.2f}x that in wall time, "
        f"{our_cpu / cpu:.2f}x in CPU seconds.",
        flush=True,
    )


def _available() -> dict:
    import importlib.util

    return {
        "imgclust": True,
        "GRASS i.cluster + i.maxlik": shutil.which("grass") is not None,
        "Spectral Python kmeans": importlib.util.find_spec("spectral") is not None,
        "scikit-learn KMeans(n_init=1)": True,
        "plain scikit-learn pipeline, windowed": True,
        SAME_SAMPLE: True,
        SAME_SAMPLE_SEED1: True,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=6)
    parser.add_argument("--sample", type=int, default=1_000_000)
    parser.add_argument(
        "--tiles", type=int, nargs="+", default=[17], help="tiles per side of each big scene"
    )
    parser.add_argument("--repeats", type=int, default=1, help="imgclust-peer pairs per peer")
    parser.add_argument("--max-memory-gb", type=float, default=12.0)
    parser.add_argument("--workdir", default=None, help="where the big scene is written")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument(
        "--scene",
        action="append",
        default=[],
        help="also measure on this raster file (repeatable); e.g. a real scene",
    )
    parser.add_argument(
        "--noisy",
        action="store_true",
        help="mirror every other tile and add noise, so no values repeat (a realistic scene)",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        try:
            METHODS[args.child](args.paths, args.k, args.sample, args.out)
        finally:  # the imgclust command ends by raising SystemExit
            _report_peak(args.out)
        return
    small = [str(p) for p in BANDS]
    import rasterio

    with rasterio.open(BANDS[0]) as src:
        n_small = src.width * src.height
    args.inertia = True
    _scene_table("Landsat 8, one file per band", small, args.k, args.sample, n_small, args)
    args.inertia = False
    for scene in args.scene:
        with rasterio.open(scene) as src:
            n_pixels, n_bands = src.width * src.height, src.count
            name = f"{Path(scene).name}, {src.dtypes[0]}, {src.interleaving.name.lower()}"
        _scene_table(name, [scene], args.k, args.sample, n_pixels, args, n_bands)
    if args.skip_large:
        return
    for tiles in args.tiles:
        with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
            start = time.perf_counter()
            big = _tile_scene(Path(tmp), tiles, noisy=args.noisy)
            os.sync()  # the scene's write-back would otherwise land on the first method measured
            print(
                f"\n(wrote {big.name}, {big.stat().st_size / 1e9:.2f} GB, in "
                f"{time.perf_counter() - start:.0f} s)"
            )
            _scene_table(
                f"Landsat 8 tiled {tiles}x{tiles}"
                + (", mirrored, with noise" if args.noisy else "")
                + ", one 7-band file",
                [str(big)],
                args.k,
                args.sample,
                n_small * tiles**2,
                args,
            )
    settings = {"k": args.k, "sample": args.sample, "tiles": args.tiles, "repeats": args.repeats}
    settings["scenes"] = args.scene
    print(json.dumps({**settings, "noisy": args.noisy}))


if __name__ == "__main__":
    main()
