"""Image embeddings per second: imgclust's extraction against the loop a user writes by hand.

Run from the repository root (``pip install ".[all]"``)::

    python benchmarks/bench_embed.py [--model ../shared/models/SqueezeNet_fp16.onnx]
        [--images 400] [--workdir DIR] [--runs 3]

The images are real photos: JPEG crops (seeded) written once into a temporary folder (or
``--workdir``). Both sides use the same model file and the same images, with the feature cache off:

- by hand: for each file, Pillow opens it, resizes it to the model's input, the pixels are
  normalised as the model wants (the preprocessing imgclust reads from the model, so both
  compute the same thing), and ``session.run`` is called on that one image, the way the ONNX
  Runtime examples do; the session is the model's own (its full graph, its fixed batch);
- imgclust: ``extract_features`` with ``OnnxEmbedding`` (decoding in threads overlapped with
  inference, batches of 32 where the graph allows, the layers after the embedding left out).

Two sets of photos: ``--images`` small ones (256-640 pixels a side, as scene and product
datasets are) and half as many camera-sized ones (2,000-3,000 pixels, cut from the shared
camera photos), where decoding dominates.

Reported: images per second of each (median of ``--runs`` after a warm-up), the ratio, and
the lowest cosine similarity between the two sides' embeddings of the same image (they
differ only by imgclust's reduced-scale JPEG decoding and float16 sums).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO.parent / "shared" / "models" / "SqueezeNet_fp16.onnx"


def make_photos(folder: Path, count: int, sides: tuple[int, int], seed: int = 0) -> list[Path]:
    """``count`` JPEG crops, ``sides[0]``-``sides[1]`` pixels a side, of real photos: the
    shared camera photos where ``../shared/data/photos`` is there, else scikit-image's (kept if
    already made)."""
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    shared = sorted((REPO.parent / "shared" / "data" / "photos").glob("*.jpg"))
    if shared and sides[1] > 640:
        photos = [np.asarray(Image.open(path).convert("RGB")) for path in shared]
    else:
        photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = folder / f"photo_{i:05d}.jpg"
        if not path.exists():
            photo = photos[i % len(photos)]
            side = int(rng.integers(min(photo.shape[:2]) // 2, min(photo.shape[:2])))
            y = int(rng.integers(0, photo.shape[0] - side + 1))
            x = int(rng.integers(0, photo.shape[1] - side + 1))
            crop = Image.fromarray(photo[y : y + side, x : x + side])
            target = int(rng.integers(sides[0], sides[1] + 1))
            crop.resize((target, target), Image.Resampling.BICUBIC).save(path, quality=90)
        paths.append(path)
    return paths


def hand_embeddings(paths: list[Path], model: Path, extractor) -> np.ndarray:
    """The hand loop's preprocessing, run to the tensor imgclust takes, for comparison."""
    import onnxruntime

    from imgclust.collection.onnx_model import _cut_at

    spec = extractor.spec
    probe = onnxruntime.InferenceSession(
        _cut_at(model, spec.embedding), providers=["CPUExecutionProvider"]
    )
    return np.concatenate(
        [probe.run(None, {spec.input_name: _by_hand(path, extractor)})[0] for path in paths]
    )


def _by_hand(path: Path, extractor) -> np.ndarray:
    """One image as a user's loop prepares it: Pillow resize, normalise, one-image batch."""
    spec, pre = extractor.spec, extractor.preprocessing
    with Image.open(path) as image:
        image = image.convert("RGB").resize((spec.width, spec.height), Image.BILINEAR)
        pixels = np.asarray(image, dtype=np.float32)
    if pre.order == "BGR":
        pixels = pixels[:, :, ::-1]
    mean, std = np.asarray(pre.mean, np.float32), np.asarray(pre.std, np.float32)
    tensor = ((pixels * pre.scale - mean) / std).transpose(2, 0, 1)[None]
    return tensor.astype(spec.dtype)


def hand_loop_seconds(paths: list[Path], model: Path, extractor) -> float:
    """The loop a user writes: the model as it is, one ``session.run`` per image."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = extractor.spec.input_name
    start = time.perf_counter()
    for path in paths:
        session.run(None, {name: _by_hand(path, extractor)})
    return time.perf_counter() - start


def imgclust_seconds(folder: Path, model: Path) -> tuple[float, np.ndarray]:
    from imgclust.collection.extract import extract_features
    from imgclust.collection.features import OnnxEmbedding
    from imgclust.collection.sources import open_source

    start = time.perf_counter()
    extraction = extract_features(open_source(folder), OnnxEmbedding(model))
    return time.perf_counter() - start, extraction.features


def measure(paths: list[Path], folder: Path, model: Path, runs: int) -> str:
    """One row of the table: both sides on ``paths``, medians of ``runs``."""
    from imgclust.collection.features import OnnxEmbedding

    extractor = OnnxEmbedding(model)
    imgclust_seconds(folder, model)  # warm-up: the session, the page cache
    hand_loop_seconds(paths[:20], model, extractor)
    ours, theirs = [], []
    for _ in range(runs):
        seconds, features = imgclust_seconds(folder, model)
        ours.append(seconds)
        theirs.append(hand_loop_seconds(paths, model, extractor))
    reference = hand_embeddings(paths[:50], model, extractor).astype(np.float32)
    reference = reference.mean(axis=(2, 3)) if reference.ndim == 4 else reference
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    cosine = float(np.min(np.sum(reference * features[:50], axis=1)))
    mine, hand = statistics.median(ours), statistics.median(theirs)
    return (
        f"| {len(paths) / hand:.1f} | {len(paths) / mine:.1f} | {hand / mine:.2f}x | {cosine:.4f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--workdir", type=Path, help="where the photos are made (kept)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not args.model.is_file():
        sys.exit(f"{args.model}: no such model (see ../shared/models/README.md)")
    from imgclust.collection.features import OnnxEmbedding

    print(f"{args.model.name}: {OnnxEmbedding(args.model).spec.describe()}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-embed-"))
    print(
        "| photos | by hand (images/s) | imgclust (images/s) | speed-up | lowest cosine "
        "between the two |\n|---|---|---|---|---|"
    )
    for name, count, sides in (
        ("small (256-640 px)", args.images, (256, 640)),
        ("camera (2,000-3,000 px)", max(1, args.images // 2), (2000, 3000)),
    ):
        folder = workdir / f"{sides[0]}-{sides[1]}"
        paths = make_photos(folder, count, sides)
        print(f"| {count} {name} " + measure(paths, folder, args.model, args.runs), flush=True)


if __name__ == "__main__":
    main()
