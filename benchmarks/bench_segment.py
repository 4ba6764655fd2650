"""Colour segmentation: imgclust against scikit-learn, OpenCV and faiss on real photos.

Run from the repository root (peers come with ``pip install ".[bench]"``)::

    python benchmarks/bench_segment.py [--photos ../shared/data/photos] [--k 8 16]

Every method clusters the same decoded pixels in RGB 0-255 and labels every pixel; inertia is
then computed the same way for all of them (sum over all pixels of the squared distance to the
centre of its label). Times are wall-clock seconds in this one process: imgclust's is the
median of three runs after a warm-up (its loops are compiled when the package is built; the
warm-up allocates its colour table); each peer runs once. The floor is one pass over the
pixels: ``np.bincount`` of the colours packed beforehand into uint32. The second table times
the whole ``imgclust segment`` command (default Lab space), from the JPEG to every written
output, against decoding the JPEG and writing ``segmented.png`` alone, both as programs of
their own (see :func:`command_table`).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import imgclust

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = REPO.parent / "shared" / "data" / "photos"


def inertia_rgb(pixels: np.ndarray, labels: np.ndarray, centers: np.ndarray) -> float:
    """Sum over all pixels of the squared RGB distance to the centre of its label."""
    total = 0.0
    centers = np.asarray(centers, dtype=np.float64)
    for start in range(0, pixels.shape[0], 1 << 21):
        chunk = pixels[start : start + (1 << 21)].astype(np.float64)
        diff = chunk - centers[labels[start : start + (1 << 21)]]
        total += float(np.einsum("ij,ij->", diff, diff))
    return total


def timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def run_imgclust(image, k):
    seg = imgclust.segment(image, k, color_space="rgb", random_state=0)
    return seg.label_map.reshape(-1), seg.centers  # every pixel's label (uint8 for K <= 255)


def run_sklearn(pixels, k):
    from sklearn.cluster import KMeans

    km = KMeans(k, n_init=1, random_state=0).fit(pixels)
    return km.labels_, km.cluster_centers_


def run_minibatch(pixels, k):
    """MiniBatchKMeans fitted on a 1M-pixel sample, then predicting every pixel.

    Given every pixel it draws each batch by weighted sampling over all of them (about 120 ms
    a step at 13 MP in scikit-learn 1.9), which ran past 300 s here; a sample is how it is used.
    """
    from sklearn.cluster import MiniBatchKMeans

    rng = np.random.default_rng(0)
    sample = pixels[rng.choice(pixels.shape[0], size=1_000_000, replace=False)]
    km = MiniBatchKMeans(k, n_init=1, random_state=0, batch_size=4096).fit(sample)
    return km.predict(pixels), km.cluster_centers_


def run_cv2(pixels, k):
    import cv2

    cv2.setRNGSeed(0)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 300, 1e-4)
    _, labels, centers = cv2.kmeans(pixels, k, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
    return labels.reshape(-1), centers


def run_faiss(pixels, k):
    import faiss

    km = faiss.Kmeans(3, k, seed=0)
    km.train(pixels)
    _, labels = km.index.search(pixels, 1)
    return labels.reshape(-1), km.centroids


def pack(image):
    """Colours packed as ``r << 16 | g << 8 | b`` (uint32), one per pixel."""
    return (
        (image[:, :, 0].astype(np.uint32) << 16)
        | (image[:, :, 1].astype(np.uint32) << 8)
        | image[:, :, 2]
    ).reshape(-1)


def available(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def clustering_table(photos: list[Path], ks: list[int]) -> None:
    print(
        "| photo | K | method | time (s) | peer time / imgclust time "
        "| inertia (RGB, all pixels) | inertia / imgclust's |"
    )
    print("|---|---|---|---|---|---|---|")
    for path in photos:
        image = np.asarray(Image.open(path).convert("RGB"))
        pixels = image.reshape(-1, 3).astype(np.float32)
        imgclust.segment(image[:64, :64], 2, random_state=0)  # warm-up: compiled loops, buffers
        run_imgclust(image, 2)
        packed = pack(image)
        np.bincount(packed, minlength=1 << 24)  # first touch of the output memory, not timed
        floor_time, _ = timed(lambda packed=packed: np.bincount(packed, minlength=1 << 24))
        for k in ks:
            times = []
            for _ in range(3):
                t, (labels, centers) = timed(lambda k=k, image=image: run_imgclust(image, k))
                times.append(t)
            ours_time = statistics.median(times)
            ours_inertia = inertia_rgb(image.reshape(-1, 3), labels, centers)
            rows = [("imgclust.segment (rgb)", ours_time, ours_inertia)]
            peers = [
                ("scikit-learn KMeans(n_init=1)", run_sklearn, "sklearn"),
                ("scikit-learn MiniBatchKMeans (1M sample)", run_minibatch, "sklearn"),
                ("cv2.kmeans (attempts=1, ++)", run_cv2, "cv2"),
                ("faiss Kmeans", run_faiss, "faiss"),
            ]
            for name, function, module in peers:
                if not available(module):
                    continue
                t, (labels, centers) = timed(lambda f=function, k=k, pixels=pixels: f(pixels, k))
                rows.append(
                    (name, t, inertia_rgb(image.reshape(-1, 3), np.asarray(labels), centers))
                )
            rows.append(("floor: np.bincount of the packed colours", floor_time, float("nan")))
            megapixels = image.shape[0] * image.shape[1] / 1e6
            for name, t, inertia in rows:
                print(
                    f"| {path.stem[:20]} ({megapixels:.1f} MP) | {k} | {name} | {t:.3f} | "
                    f"{t / ours_time:.1f}x | {inertia:.4e} | {inertia / ours_inertia:.4f} |",
                    flush=True,
                )


def _best_of(runs: int, function) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def _command_seconds(path: Path, k: int, folder: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            *(sys.executable, "-m", "imgclust.cli", "segment", str(path), "-k", str(k)),
            *("-o", folder, "-q", "--overwrite"),
        ],
        check=True,
    )
    return time.perf_counter() - start


#: The pair as a program of its own: Python with NumPy and Pillow decodes the JPEG and writes
#: the command's segmented pixels as PNG with the command's settings. It first loads those
#: pixels from the command's segmented.png and prints how long that took, which is then
#: taken off its time: that load is not part of the pair.
_PAIR_PROGRAM = """
import sys, time
import numpy
from PIL import Image
start = time.perf_counter()
segmented = Image.open(sys.argv[2])
segmented.load()
setup = time.perf_counter() - start
Image.open(sys.argv[1]).convert("RGB")
segmented.save(sys.argv[3], compress_level=int(sys.argv[4]))
print(setup)
"""


def _pair_seconds(path: Path, segmented: str, folder: str, level: int) -> float:
    start = time.perf_counter()
    arguments = [str(path), segmented, f"{folder}/pair.png", str(level)]
    out = subprocess.run(
        [sys.executable, "-c", _PAIR_PROGRAM, *arguments],
        check=True,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - start - float(out.stdout)


def command_table(photos: list[Path], k: int, runs: int = 5) -> None:
    """The whole command against decoding the JPEG and writing ``segmented.png`` alone.

    Both run as programs of their own, alternately, ``runs`` times each after a warm-up, and
    the medians are compared: the command (``python -m imgclust.cli segment PHOTO -k K -q``)
    and the pair (:data:`_PAIR_PROGRAM`: start Python with NumPy and Pillow, decode, write).
    Also shown, as this benchmark measured the pair before: the start of Python with NumPy
    and Pillow as a program plus, in this process, the best of ``runs`` decodes and writes
    (warm memory, so lower than the pair as a program). "Segmentation" is the clustering and
    labelling alone, in this process (median of ``runs``).
    """
    from imgclust.report.pixel_outputs import FAST_PNG

    start = _best_of(
        runs, lambda: subprocess.run([sys.executable, "-c", "import numpy, PIL.Image"], check=True)
    )
    print()
    print(
        "| photo | whole command (s) | pair as a program (s) | command minus pair (s) "
        "| bar: minus pair < pair | pair by parts, in process (s) | segmentation in-process (s) |"
    )
    print("|---|---|---|---|---|---|---|")
    level = FAST_PNG["compress_level"]
    for path in photos:
        with tempfile.TemporaryDirectory() as tmp:
            _command_seconds(path, k, f"{tmp}/cmd")  # warm-up (and the segmented pixels)
            segmented_png = f"{tmp}/cmd/segmented.png"
            _pair_seconds(path, segmented_png, tmp, level)
            commands, pairs = [], []
            for _ in range(runs):
                commands.append(_command_seconds(path, k, f"{tmp}/cmd"))
                pairs.append(_pair_seconds(path, segmented_png, tmp, level))
            segmented = Image.open(segmented_png)
            segmented.load()
            decode = _best_of(runs, lambda p=path: Image.open(p).convert("RGB"))
            write = _best_of(runs, lambda s=segmented, t=tmp: s.save(f"{t}/plain.png", **FAST_PNG))
        image = np.asarray(Image.open(path).convert("RGB"))
        imgclust.segment(image, k, color_space="rgb", random_state=0)
        seg_times = []
        for _ in range(runs):
            t = time.perf_counter()
            imgclust.segment(image, k, random_state=0)
            seg_times.append(time.perf_counter() - t)
        command, pair = statistics.median(commands), statistics.median(pairs)
        verdict = "met" if command - pair < pair else "not met"
        print(
            f"| {path.stem[:20]} | {command:.2f} | {pair:.2f} | {command - pair:.2f} | {verdict} "
            f"| {start + decode + write:.2f} | {statistics.median(seg_times):.2f} |",
            flush=True,
        )
    print(f"\nPython start with NumPy and Pillow: {start:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--k", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--only-command", action="store_true", help="only the whole-command table")
    args = parser.parse_args()
    photos = sorted(args.photos.glob("*.jpg"))
    if not photos:
        sys.exit(f"no .jpg photos in {args.photos}")
    if not args.only_command:
        clustering_table(photos, args.k)
    command_table(photos, args.k[0])


if __name__ == "__main__":
    main()
