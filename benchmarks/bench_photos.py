"""Photos grouped by what they show: the pipeline after an image model, measured on labelled sets.

Run from the repository root (``pip install ".[all]"``), after writing the sets with
``benchmarks/photo_sets.py`` (seven public labelled sets of six kinds, each drawn twice)::

    python benchmarks/bench_photos.py --sets DIR [--model ../shared/models/SqueezeNet_fp16.onnx]
        [--model OTHER.onnx ...] [--draw dev --draw check] [--seeds 0 1 2] [--views]
        [--workdir DIR]

For each model, set and draw the images are embedded once (the feature cache in ``--workdir``);
then, seed by seed, with the true number of classes as K:

- **pipelines**: the steps after the model, each from the library's own parts
  (:func:`~imgclust.collection.reduce.reduce_features`,
  :func:`~imgclust.cluster.methods.fit_method`): a PCA to 50 then k-means (the default before
  issue 29) or agglomerative (Ward) or spectral clustering (scikit-learn, 10-nearest-neighbour
  graph); t-SNE or UMAP of the PCA, its rows at unit length (cosine) or as they are, then
  k-means;
- **the command as a user runs it**: :func:`imgclust.cluster_images` with ``features="auto"``
  and the model pinned as the default (:func:`~imgclust.collection.model_zoo.set_default_model`),
  beside today's defaults before the change (colour and texture, t-SNE: also what a run gives
  offline, when the model cannot be had), with K given and with ``n_clusters="auto"`` (the K it
  chose by the BIC rule (the default here) and by the highest silhouette, over the same K
  range, and whether it is within one of the number of classes);
- with ``--views``, what is shown to the model: the whole image (the default), its centre
  square, the whole image and its mirror image averaged, five crops of 224 from the image at
  256 averaged.

Reported: accuracy after mapping each cluster to its majority label (the issue's measure),
the mean over the seeds and draws, and the lowest.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from imgclust.cluster.methods import fit_method  # noqa: E402
from imgclust.collection.extract import extract_features, open_cache  # noqa: E402
from imgclust.collection.features import OnnxEmbedding  # noqa: E402
from imgclust.collection.group import (  # noqa: E402
    auto_k_values,
    cluster_images,
    evaluate_against,
    read_labels,
)
from imgclust.collection.model_zoo import set_default_model  # noqa: E402
from imgclust.collection.reduce import reduce_features  # noqa: E402
from imgclust.collection.sources import open_source  # noqa: E402
from photo_sets import SETS  # noqa: E402

MODEL = REPO.parent / "shared" / "models" / "SqueezeNet_fp16.onnx"

#: (name, reduction, rows at unit length, method)
PIPELINES = (
    ("PCA 50, k-means (before)", "pca", False, "kmeans"),
    ("PCA 50, agglomerative", "pca", False, "agglomerative"),
    ("PCA 50, spectral", "pca", False, "spectral"),
    ("t-SNE, rows at unit length, k-means", "tsne", True, "kmeans"),
    ("UMAP, rows as they are, k-means", "umap", False, "kmeans"),
    ("UMAP, rows at unit length, k-means (default)", "umap", True, "kmeans"),
    ("UMAP, rows at unit length, agglomerative", "umap", True, "agglomerative"),
)


def accuracy(truth: list[str], labels: np.ndarray) -> float:
    return float(evaluate_against(truth, labels)["accuracy_majority"])


def cluster(X: np.ndarray, method: str, k: int, seed: int) -> np.ndarray:
    if method == "spectral":
        from sklearn.cluster import SpectralClustering

        return SpectralClustering(
            k, affinity="nearest_neighbors", n_neighbors=10, random_state=seed,
            assign_labels="cluster_qr",
        ).fit_predict(X)  # fmt: skip
    return fit_method(X, method, k, seed)[0]


class ViewEmbedding(OnnxEmbedding):
    """The model shown other views of each image, their embeddings averaged."""

    def __init__(self, model, view: str, **options) -> None:
        super().__init__(model, **options)
        self.view = view

    def settings(self) -> dict:
        return {**super().settings(), "view": self.view}

    def _views(self, image: Image.Image) -> list[Image.Image]:
        image = image.convert("RGB")
        if self.view == "centre":
            w, h = image.size
            side = min(w, h)
            left, top = (w - side) // 2, (h - side) // 2
            return [image.crop((left, top, left + side, top + side))]
        if self.view == "mirror":
            return [image, ImageOps.mirror(image)]
        if self.view == "five":
            big = image.resize((256, 256), Image.Resampling.BILINEAR, reducing_gap=2.0)
            corners = ((0, 0), (32, 0), (0, 32), (32, 32), (16, 16))
            return [big.crop((x, y, x + 224, y + 224)) for x, y in corners]
        return [image]

    def prepare(self, image: Image.Image) -> np.ndarray:
        return np.stack([super(ViewEmbedding, self).prepare(v) for v in self._views(image)])

    def finish(self, batch: np.ndarray) -> np.ndarray:
        n, views = batch.shape[:2]
        vectors = super().finish(batch.reshape(n * views, *batch.shape[2:]))
        mean = vectors.reshape(n, views, -1).mean(axis=1)
        return mean / np.linalg.norm(mean, axis=1, keepdims=True)


def embed(folder: Path, extractor, cache: Path):
    source = open_source(folder)
    extraction = extract_features(source, extractor, cache=open_cache(cache, extractor))
    truth = read_labels("folders", source)
    return np.asarray(extraction.features), [truth[i] for i in extraction.kept]


def summarise(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ({min(values):.3f})"


def table(title: str, rows: dict[str, dict[str, list[float]]], sets) -> None:
    print(f"\n{title}\n")
    print("| | " + " | ".join(s.name for s in sets) + " | mean |")
    print("|---|" + "---|" * (len(sets) + 1))
    for name, by_set in rows.items():
        cells = [summarise(by_set[s.name]) for s in sets]
        overall = statistics.mean(statistics.mean(by_set[s.name]) for s in sets)
        print(f"| {name} | " + " | ".join(cells) + f" | {overall:.3f} |")


def pipelines(model, folders, sets, seeds, cache) -> None:
    rows: dict[str, dict[str, list[float]]] = {name: {} for name, *_ in PIPELINES}
    for s in sets:
        for folder in folders[s.name]:
            features, truth = embed(folder, OnnxEmbedding(model), cache)
            k = len(set(truth))
            for name, reduction, normalize, method in PIPELINES:
                for seed in seeds:
                    X = reduce_features(
                        features, reduction, random_state=seed, normalize=normalize
                    ).embedding
                    score = accuracy(truth, cluster(X, method, k, seed))
                    rows[name].setdefault(s.name, []).append(score)
        print(f"  {model.name} {s.name}: pipelines done", file=sys.stderr, flush=True)
    table(f"Pipelines after {model.name} (K given; mean over draws and seeds, lowest)", rows, sets)


def commands(model, folders, sets, seeds, cache) -> None:
    rows: dict[str, dict[str, list[float]]] = {}
    chosen: dict[str, list[int]] = {}
    timings: dict[str, list[float]] = {}
    for s in sets:
        for folder in folders[s.name]:
            k = len({p.name for p in folder.iterdir() if p.is_dir()})
            k_values = auto_k_values(sum(1 for p in folder.rglob("*") if p.is_file()))
            for seed in seeds:
                for name, features in (
                    ("before: colour and texture, t-SNE (offline today)", "colortexture"),
                    (f"default: {model.name}, UMAP, k-means", "auto"),
                ):
                    started = time.perf_counter()
                    result = cluster_images(
                        folder, features=features, n_clusters=k, labels="folders",
                        random_state=seed, cache=cache,
                    )  # fmt: skip
                    timings.setdefault(name, []).append(time.perf_counter() - started)
                    score = result.evaluation["accuracy_majority"]
                    rows.setdefault(name, {}).setdefault(s.name, []).append(score)
                for rule in ("auto", "silhouette"):  # both rules over the same K
                    found = cluster_images(
                        folder, n_clusters="auto", k_rule=rule, labels="folders",
                        random_state=seed, cache=cache, k_values=k_values,
                    )  # fmt: skip
                    chosen.setdefault((rule, s.name), []).append(found.n_clusters)
        print(f"  {model.name} {s.name}: commands done", file=sys.stderr, flush=True)
    table(f"cluster_images with {model.name} as the default (K given)", rows, sets)
    print(f"\n-k auto with {model.name} (K chosen by each rule; runs within one of the classes)\n")
    print("| set | classes | K by BIC (default) | within one | K by silhouette | within one |")
    print("|---|---|---|---|---|---|")
    hits = {"auto": 0, "silhouette": 0}
    for s in sets:
        k = len({p.name for p in folders[s.name][0].iterdir() if p.is_dir()})
        cells = []
        for rule in ("auto", "silhouette"):
            found = chosen[(rule, s.name)]
            within = sum(abs(c - k) <= 1 for c in found)
            hits[rule] += within / len(found) >= 0.5
            cells += [", ".join(map(str, found)), f"{within} of {len(found)}"]
        print(f"| {s.name} | {k} | " + " | ".join(cells) + " |")
    print(
        f"\nsets where most runs are within one: BIC {hits['auto']} of {len(sets)}, "
        f"silhouette {hits['silhouette']} of {len(sets)}"
    )
    for name, seconds in timings.items():
        print(f"median seconds a run ({name}, cache warm): {statistics.median(seconds):.1f}")


def views(model, folders, sets, seeds, cache) -> None:
    rows: dict[str, dict[str, list[float]]] = {}
    for s in sets:
        for folder in folders[s.name]:
            for view in ("whole", "centre", "mirror", "five"):
                features, truth = embed(folder, ViewEmbedding(model, view), cache)
                k = len(set(truth))
                for seed in seeds:
                    X = reduce_features(
                        features, "umap", random_state=seed, normalize=True
                    ).embedding
                    score = accuracy(truth, cluster(X, "kmeans", k, seed))
                    rows.setdefault(view, {}).setdefault(s.name, []).append(score)
        print(f"  {model.name} {s.name}: views done", file=sys.stderr, flush=True)
    table(f"What {model.name} is shown (UMAP, k-means; K given)", rows, sets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", type=Path, required=True, help="photo_sets.py's --out")
    parser.add_argument("--model", type=Path, action="append")
    parser.add_argument("--draw", action="append", choices=("dev", "check"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", nargs="+", help="set names (default: all)")
    parser.add_argument("--views", action="store_true", help="also the views table")
    parser.add_argument("--no-pipelines", action="store_true")
    parser.add_argument("--no-commands", action="store_true")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    sets = [s for s in SETS if not args.only or s.name in args.only]
    draws = args.draw or ["dev", "check"]
    folders = {s.name: [args.sets / d / s.name for d in draws] for s in sets}
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-photos-"))
    cache = workdir / "feature-cache"
    print(f"draws {', '.join(draws)}; seeds {', '.join(map(str, args.seeds))}")
    for model in args.model or [MODEL]:
        set_default_model(model)
        if not args.no_pipelines:
            pipelines(model, folders, sets, args.seeds, cache)
        if not args.no_commands:
            commands(model, folders, sets, args.seeds, cache)
        if args.views:
            views(model, folders, sets, args.seeds, cache)
    set_default_model(None)


if __name__ == "__main__":
    main()
