"""Grouping a folder of images: imgclust against clustimage, and the seed's digits table.

Run from the repository root::

    python -m venv /tmp/clustimage-venv && /tmp/clustimage-venv/bin/pip install clustimage
    python benchmarks/bench_group.py --clustimage-python /tmp/clustimage-venv/bin/python

clustimage pins its own stack (OpenCV, its own scikit-learn needs), so it runs from its own
virtual environment; without ``--clustimage-python`` (or ``$CLUSTIMAGE_PYTHON``) only imgclust
is measured.

The folder (written once into ``--workdir``): scikit-learn's 1,797 digits upscaled to 64x64
PNG in one folder per digit, and the photos of ``../shared/data/photos`` cut into 256x256 JPEG
tiles in one folder per photo: 2,193 images, 12 labels.

Each tool runs in its own process, from the files on disk to its result, with its defaults:

- imgclust: ``imgclust group FOLDER --labels folders --no-cache`` (every output written,
  hard links in ``clusters/``), then once more with the feature cache warm;
- clustimage: ``Clustimage().fit_transform(FOLDER)`` (its defaults: PCA features of 128x128
  colour images, agglomerative clustering, K by silhouette, a t-SNE for its plots).

Images per second is images over wall time; peak memory is the process's peak resident set
size; accuracy is the share of images whose cluster's majority label (the folder name) is
their own, computed here the same way for both from their assignments.

``--digits`` also prints the seed's table on the digits (majority mapping, fixed seed).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO.parent / "shared" / "data" / "photos"

CLUSTIMAGE_CHILD = """
import json, sys
from clustimage import Clustimage
result = Clustimage(verbose="error").fit_transform(sys.argv[1])
json.dump({"paths": [str(p) for p in result["pathnames"]],
           "clusters": [int(c) for c in result["labels"]]}, open(sys.argv[2], "w"))
"""


def write_folder(root: Path) -> int:
    """The digits as 64x64 PNGs and the photos as 256x256 JPEG tiles; returns the count."""
    from PIL import Image
    from sklearn.datasets import load_digits

    if (root / "done").exists():
        return int((root / "done").read_text())
    digits = load_digits()
    for i, (image, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        folder = root / "digits" / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        pixels = Image.fromarray((image * (255 / 16)).astype(np.uint8))
        pixels.resize((64, 64), Image.Resampling.BILINEAR).save(folder / f"digit_{i:04d}.png")
    count = len(digits.images)
    for photo in sorted(PHOTOS.glob("*.jpg")):
        rgb = np.asarray(Image.open(photo).convert("RGB"))
        folder = root / "photos" / photo.stem.split("_")[0]
        folder.mkdir(parents=True, exist_ok=True)
        for r in range(rgb.shape[0] // 256):
            for c in range(rgb.shape[1] // 256):
                tile = rgb[r * 256 : (r + 1) * 256, c * 256 : (c + 1) * 256]
                Image.fromarray(tile).save(folder / f"tile_{r:02d}_{c:02d}.jpg", quality=90)
                count += 1
    (root / "done").write_text(str(count))
    return count


def _run(command: list[str], env: dict | None = None) -> dict:
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    return {
        "seconds": time.perf_counter() - start,
        "peak_mb": usage.ru_maxrss / 1024,
        "failed": status != 0,
    }


def _accuracy(pairs: list[tuple[str, int]]) -> float:
    """Majority-mapping accuracy with each image's parent folder name as its label."""
    by_cluster: dict[int, Counter] = {}
    for path, cluster in pairs:
        by_cluster.setdefault(cluster, Counter())[Path(path).parent.name] += 1
    return sum(c.most_common(1)[0][1] for c in by_cluster.values()) / len(pairs)


def run_imgclust(folder: Path, work: Path, cache: Path, name: str) -> dict:
    out = work / name
    command = [
        sys.executable,
        "-m",
        "imgclust",
        "group",
        str(folder),
        "-o",
        str(out),
        "--labels",
        "folders",
        "--overwrite",
        "-q",
    ]
    env = {**os.environ, "IMGCLUST_CACHE_DIR": str(cache)}
    measured = _run(command, env)
    with open(out / "assignments.csv", newline="") as handle:
        pairs = [(row["path"], int(row["cluster"])) for row in csv.DictReader(handle)]
    summary = json.loads((out / "clusters.json").read_text())
    return {
        **measured,
        "accuracy": _accuracy(pairs),
        "images": len(pairs),
        "clusters": summary["n_clusters"],
    }


def run_clustimage(python: str, folder: Path, work: Path) -> dict:
    result_file = work / "clustimage.json"
    measured = _run([python, "-c", CLUSTIMAGE_CHILD, str(folder), str(result_file)])
    if measured["failed"]:
        return measured
    data = json.loads(result_file.read_text())
    pairs = list(zip(data["paths"], data["clusters"], strict=True))
    return {
        **measured,
        "accuracy": _accuracy(pairs),
        "images": len(pairs),
        "clusters": len(set(data["clusters"])),
    }


def digits_table() -> None:
    """The seed's experiments on the digits, with imgclust, fixed seed 0."""
    from imgclust import cluster_images

    rows = [
        ("k-means on raw pixels", {"reduce": "none", "n_clusters": 10}, "about 0.79"),
        ("t-SNE then k-means", {"reduce": "tsne", "n_clusters": 10}, "0.93"),
        (
            "DBSCAN on the t-SNE map (eps=5, min_samples=15; 1,000 t-SNE iterations as the seed)",
            {
                "reduce": "tsne",
                "tsne_iterations": 1000,
                "method": "dbscan",
                "method_options": {"eps": 5, "min_samples": 15},
            },
            "0.79",
        ),
        ("DBSCAN on the t-SNE map (defaults: eps estimated)", {"method": "dbscan"}, ""),
        ("group --dataset digits -k 10 (defaults)", {"n_clusters": 10}, "bar: 0.90"),
        ("group --dataset digits (defaults, -k auto)", {}, ""),
    ]
    print("\n| digits (1,797) | accuracy (majority) | one-to-one | ARI | clusters | seed | s |")
    print("|---|---|---|---|---|---|---|")
    for name, options, seed in rows:
        start = time.perf_counter()
        result = cluster_images(dataset="digits", cache=False, random_state=0, **options)
        seconds = time.perf_counter() - start
        e = result.evaluation
        print(
            f"| {name} | {e['accuracy_majority']:.3f} | {e['accuracy_one_to_one']:.3f} | "
            f"{e['adjusted_rand_index']:.3f} | {result.n_clusters} | {seed} | {seconds:.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench_group")
    parser.add_argument("--clustimage-python", default=os.environ.get("CLUSTIMAGE_PYTHON"))
    parser.add_argument("--digits", action="store_true", help="Also print the digits table.")
    args = parser.parse_args()
    folder = args.workdir / "images"
    count = write_folder(folder)
    cache = args.workdir / "cache"
    if cache.exists():
        import shutil

        shutil.rmtree(cache)
    print(f"{count} images in {folder}")
    results = {"imgclust": run_imgclust(folder, args.workdir, cache, "imgclust-out")}
    results["imgclust, cache warm"] = run_imgclust(folder, args.workdir, cache, "imgclust-out")
    if args.clustimage_python:
        results["clustimage"] = run_clustimage(args.clustimage_python, folder, args.workdir)
    print(
        "\n| tool | time (s) | images/s | speed vs clustimage | peak RSS (MB) | "
        "memory vs clustimage | accuracy | clusters |"
    )
    print("|---|---|---|---|---|---|---|---|")
    peer = results.get("clustimage")
    for name, r in results.items():
        if r.get("failed"):
            print(f"| {name} | failed | | | | | | |")
            continue
        speed = memory = ""
        if peer and not peer.get("failed"):
            speed = f"{peer['seconds'] / r['seconds']:.1f}x"
            memory = f"{r['peak_mb'] / peer['peak_mb']:.2f}"
        print(
            f"| {name} | {r['seconds']:.2f} | {r['images'] / r['seconds']:.0f} | {speed} | "
            f"{r['peak_mb']:.0f} | {memory} | {r['accuracy']:.3f} | {r['clusters']} |"
        )
    if args.digits:
        digits_table()


if __name__ == "__main__":
    main()
