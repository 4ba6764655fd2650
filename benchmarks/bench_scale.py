"""Grouping collections from 1,000 to 100,000 images: imgclust's defaults against the plain
pipelines a user writes, time and peak memory per step, in one run.

Run from the repository root::

    python benchmarks/bench_scale.py                      # 1k, 3k, 10k, 30k, 100k
    python benchmarks/bench_scale.py --folder MNIST_TEST  # a real labelled folder as well

The collections (written once into ``--workdir``) are 28x28 grey PNG digits made from
scikit-learn's 1,797 digits: each image is one of them upscaled and moved by a seeded random
affine map (rotation up to 12 degrees, scale 0.85-1.15, shift up to 2 pixels) with noise, one
folder per digit, so that no two images are the same. ``--folder`` adds a real labelled folder
(one sub-folder per label), e.g. the 10,000 test digits of MNIST as PNGs.

Each run is its own process, from the files on disk to the clusters (K = 10), after one
warm-up run of each that is not counted (numba's and the OS's caches as a user's second run):

- imgclust, the whole command: ``imgclust group FOLDER -k 10 --labels folders --no-cache``
  (every output and the report written);
- imgclust, by step: :func:`imgclust.cluster_images` with a progress callback that records the
  time and the process's peak resident memory as each step ends (reading, neighbours, UMAP or
  t-SNE, clustering);
- plain t-SNE: Pillow, scikit-learn's ``PCA(50)``, ``TSNE(2)`` and ``KMeans(10)``, defaults
  and ``random_state=0``;
- plain UMAP: the same with ``umap.UMAP(random_state=0)``.

A plain pipeline is not run past ``--max-tsne`` (30,000) and ``--max-umap`` (100,000) images:
its figures there, and every figure at 1,000,000 images, are projected from the growth between
the two largest measured sizes (time and memory as a power of the size), marked "projected".
Peak memory is the process's peak resident set size (``os.wait4``). ARI is against the digit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SIZES = (1_000, 3_000, 10_000, 30_000, 100_000)

PLAIN = r"""
import sys, time, pathlib
t0 = time.perf_counter()
import numpy as np
from PIL import Image
from sklearn.decomposition import PCA
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
root, how = pathlib.Path(sys.argv[1]), sys.argv[2]
paths = sorted(root.rglob("*.png"))
X = np.stack([np.asarray(Image.open(p).convert("L"), dtype=np.float32).ravel() for p in paths])
truth = [p.parent.name for p in paths]
t1 = time.perf_counter()
P = PCA(50, random_state=0).fit_transform(X)
if how == "tsne":
    from sklearn.manifold import TSNE
    E = TSNE(2, random_state=0).fit_transform(P)
else:
    import umap
    E = umap.UMAP(random_state=0).fit_transform(P)
t2 = time.perf_counter()
labels = KMeans(10, random_state=0).fit_predict(E)
t3 = time.perf_counter()
print({"read": t1 - t0, "reduce": t2 - t1, "cluster": t3 - t2,
       "ari": adjusted_rand_score(truth, labels)})
"""

BY_STEP = r"""
import contextlib, resource, sys, time
from imgclust import cluster_images
steps = []
start = time.perf_counter()

@contextlib.contextmanager
def progress(message, total=None):
    yield lambda n=1: None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    steps.append((message.split(" of ")[0], time.perf_counter() - start, peak))

result = cluster_images(sys.argv[1], n_clusters=10, labels="folders", cache=False,
                        progress=progress)
print({"steps": steps, "ari": result.evaluation["adjusted_rand_index"],
       "reduce": result.parameters["reduce"], "features": result.extractor.describe()})
"""


def write_collection(root: Path, count: int, seed: int = 0) -> Path:
    """``count`` 28x28 digit PNGs under ``root``/``count``/<digit>/ (made once)."""
    from PIL import Image
    from skimage.transform import AffineTransform, warp
    from sklearn.datasets import load_digits

    folder = root / str(count)
    if (folder / ".done").exists():
        return folder
    digits = load_digits()
    rng = np.random.default_rng(seed)
    bases = [
        np.asarray(
            Image.fromarray((image * (255 / 16)).astype(np.uint8)).resize(
                (20, 20), Image.Resampling.BILINEAR
            ),
            dtype=np.float64,
        )
        for image in digits.images
    ]
    for i in range(count):
        pick = int(rng.integers(len(bases)))
        canvas = np.zeros((28, 28))
        canvas[4:24, 4:24] = bases[pick] / 255
        angle = np.deg2rad(rng.uniform(-12, 12))
        scale = rng.uniform(0.85, 1.15)
        centre = np.array([13.5, 13.5])
        shift = rng.uniform(-2, 2, 2)
        to_centre = AffineTransform(translation=-centre)
        move = AffineTransform(scale=scale, rotation=angle, translation=centre + shift)
        warped = warp(canvas, (to_centre + move).inverse, order=1)
        noisy = np.clip(warped * 255 + rng.normal(0, 8, warped.shape), 0, 255)
        target = folder / str(digits.target[pick])
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(noisy.astype(np.uint8)).save(target / f"{i:07d}.png")
    (folder / ".done").write_text(str(count))
    return folder


def run(command: list[str], timeout: float | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak resident MB, stdout) of one child process."""
    started = time.perf_counter()
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO
    )
    out = child.stdout.read() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if child.returncode != 0:
        raise RuntimeError(f"{command[:4]} exited {child.returncode}")
    return wall, usage.ru_maxrss / 1024, out


def imgclust_command(folder: Path, workdir: Path) -> tuple[float, float, float]:
    out = Path(tempfile.mkdtemp(dir=workdir))
    wall, peak, _ = run(
        [sys.executable, "-m", "imgclust.cli", "group", str(folder), "-k", "10",
         "--labels", "folders", "--no-cache", "-q", "-o", str(out / "result")]
    )  # fmt: skip
    summary = json.loads((out / "result" / "clusters.json").read_text())
    return wall, peak, summary["evaluation"]["adjusted_rand_index"]


def by_step(folder: Path) -> dict:
    _, _, out = run([sys.executable, "-c", BY_STEP, str(folder)])
    return eval(out.strip().splitlines()[-1])  # our own child's repr of a dict


def plain(folder: Path, how: str) -> tuple[float, float, dict]:
    wall, peak, out = run([sys.executable, "-c", PLAIN, str(folder), how])
    return wall, peak, eval(out.strip().splitlines()[-1])


def projected(sizes: list[int], values: list[float], target: int) -> float:
    """``values`` at ``target``, from the power law through the two largest sizes."""
    (n1, v1), (n2, v2) = (sizes[-2], values[-2]), (sizes[-1], values[-1])
    power = np.log(v2 / v1) / np.log(n2 / n1)
    return v2 * (target / n2) ** power


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--folder", type=Path, help="a real labelled folder, measured too")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bscale")
    parser.add_argument("--max-tsne", type=int, default=30_000)
    parser.add_argument("--max-umap", type=int, default=100_000)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    folders = [(f"{n:,} made digits", n, write_collection(args.workdir, n)) for n in sizes]
    if args.folder is not None:
        count = sum(1 for _ in args.folder.rglob("*.png"))
        folders.append((f"{count:,} images of {args.folder.name}", count, args.folder))
    # warm-ups: numba's caches and the files in the OS's cache, as on a user's second run
    small = folders[0][2]
    imgclust_command(small, args.workdir)
    plain(small, "umap")
    rows, growth = [], {"imgclust": ([], [], []), "tsne": ([], [], []), "umap": ([], [], [])}
    for name, n, folder in folders:
        wall, peak, ari = imgclust_command(folder, args.workdir)
        steps = by_step(folder)
        row = {"name": name, "n": n, "imgclust": (wall, peak, ari), "steps": steps}
        for how, limit in (("tsne", args.max_tsne), ("umap", args.max_umap)):
            if n <= limit:
                p_wall, p_peak, found = plain(folder, how)
                row[how] = (p_wall, p_peak, found["ari"])
        rows.append(row)
        if folder != args.folder:
            for key in growth:
                if key in row:
                    growth[key][0].append(n)
                    growth[key][1].append(row[key][0])
                    growth[key][2].append(row[key][1])
        print(json.dumps(row, default=str), flush=True)
    print_tables(rows, growth)


def _cell(value) -> str:
    if value is None:
        return "not run"
    wall, peak, ari = value
    return f"{wall:,.1f} s, {peak:,.0f} MB, ARI {ari:.3f}"


def print_tables(rows: list[dict], growth: dict) -> None:
    print("\n| collection | imgclust group (whole command) | plain t-SNE | plain UMAP "
          "| faster plain / imgclust |")  # fmt: skip
    print("|---|---|---|---|---|")
    for row in rows:
        plains = [row[k][0] for k in ("tsne", "umap") if k in row]
        ratio = f"{min(plains) / row['imgclust'][0]:.1f}x" if plains else ""
        print(
            f"| {row['name']} | {_cell(row['imgclust'])} | {_cell(row.get('tsne'))} "
            f"| {_cell(row.get('umap'))} | {ratio} |"
        )
    print("\nProjected (power law through the two largest measured sizes):")
    print("| images | imgclust | plain t-SNE | plain UMAP |\n|---|---|---|---|")
    largest = max(growth["imgclust"][0]) if growth["imgclust"][0] else 0
    for target in sorted({*(r["n"] for r in rows if r["n"] > 0), 1_000_000}):
        if target <= largest and all(target in growth[k][0] for k in ("imgclust", "tsne", "umap")):
            continue
        cells = []
        for key in ("imgclust", "tsne", "umap"):
            sizes, walls, peaks = growth[key]
            if target in sizes or len(sizes) < 2:
                cells.append("measured" if target in sizes else "")
                continue
            t, m = projected(sizes, walls, target), projected(sizes, peaks, target)
            cells.append(f"{t:,.0f} s, {m:,.0f} MB (projected)")
        print(f"| {target:,} | " + " | ".join(cells) + " |")
    print("\nimgclust by step (seconds since start, peak MB when the step ended):")
    for row in rows:
        steps = "; ".join(f"{m} {t:.1f} s {p:,.0f} MB" for m, t, p in row["steps"]["steps"])
        print(f"- {row['name']} ({row['steps']['reduce']}, ARI "
              f"{row['steps']['ari']:.3f}): {steps}")  # fmt: skip


if __name__ == "__main__":
    main()
