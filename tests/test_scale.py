"""Large collections: batched HOG, the feature matrix on disk, the sampled PCA, UMAP from
exact neighbours with its kernels cached, and the size rules of the defaults."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image
from sklearn.neighbors import NearestNeighbors

from imgclust import cluster_images
from imgclust.collection import extract, reduce
from imgclust.collection.extract import FeatureCache, extract_features
from imgclust.collection.features import HogFeatures, hog_batch
from imgclust.collection.group import AUTO_EMBED_MAP_MIN, AUTO_TSNE_MAX, auto_reduction
from imgclust.collection.sources import open_source


@pytest.mark.parametrize(
    ("shape", "orientations", "cell", "block"),
    [((28, 28), 12, 4, 2), ((16, 16), 12, 4, 2), ((64, 64), 9, 8, 2), ((30, 33), 7, 5, 3)],
)
def test_hog_batch_is_scikit_images_hog(shape, orientations, cell, block):
    from skimage.feature import hog

    rng = np.random.default_rng(0)
    images = (rng.integers(0, 256, (12, *shape)) / 255).astype(np.float32)
    images[:4] = np.round(images[:4] * 4) / 4  # flat patches and angles on the bin edges
    expected = np.stack(
        [hog(x, orientations, (cell, cell), (block, block), feature_vector=True) for x in images]
    )
    got = hog_batch(images, orientations, cell, block)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-7)


def test_hog_root_is_the_square_root_of_the_histograms():
    rng = np.random.default_rng(1)
    picture = Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8))
    plain = HogFeatures(size=28, pixels_per_cell=4, orientations=12)
    rooted = HogFeatures(size=28, pixels_per_cell=4, orientations=12, root=True)
    batch = np.stack([plain.prepare(picture)])
    np.testing.assert_allclose(rooted.finish(batch), np.sqrt(plain.finish(batch)), rtol=1e-6)
    assert plain.key() != rooted.key()  # separate caches
    assert "root" not in plain.settings()  # plain HOG keeps its cache name


def _grey_folder(root, count, side=12, seed=0):
    rng = np.random.default_rng(seed)
    root.mkdir()
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).save(root / f"{i}.png")
    return root


def test_a_large_feature_matrix_lives_in_an_unlinked_file_with_the_same_rows(tmp_path, monkeypatch):
    folder = _grey_folder(tmp_path / "images", 40)
    (folder / "broken.png").write_bytes(b"not a png")
    source = open_source(folder)
    extractor = HogFeatures(size=12, pixels_per_cell=4, orientations=6)
    in_memory = extract_features(source, extractor)
    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setattr(extract, "MEMORY_BYTES", 1024)
    on_disk = extract_features(source, extractor, chunk_size=7, spill_folder=spill)
    assert isinstance(on_disk.features, np.memmap)
    assert not isinstance(in_memory.features, np.memmap)
    np.testing.assert_array_equal(on_disk.features, in_memory.features)
    np.testing.assert_array_equal(on_disk.kept, in_memory.kept)
    assert len(on_disk.skipped) == 1 and len(on_disk.features) == 40
    assert list(spill.iterdir()) == []  # unlinked at once: nothing is left behind


def test_the_cache_is_written_from_the_matrix_and_serves_the_same_rows(tmp_path, monkeypatch):
    folder = _grey_folder(tmp_path / "images", 30)
    source = open_source(folder)
    extractor = HogFeatures(size=12, pixels_per_cell=4, orientations=6)
    monkeypatch.setattr(extract, "MEMORY_BYTES", 1024)
    first = extract_features(source, extractor, cache=FeatureCache(tmp_path / "c", extractor))
    again = extract_features(source, extractor, cache=FeatureCache(tmp_path / "c", extractor))
    assert first.cache_hits == 0 and again.cache_hits == 30
    np.testing.assert_array_equal(again.features, first.features)
    shards = sorted(p.name for p in (tmp_path / "c").rglob("*.npy"))
    assert len(shards) == 2 and not list((tmp_path / "c").rglob("*.tmp"))


def test_projection_by_blocks_equals_the_whole_and_the_pca_fit_samples_past_its_limit(
    monkeypatch,
):
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(5, 40))
    X = (rng.normal(size=(3000, 5)) @ basis + 0.01 * rng.normal(size=(3000, 40))).astype(np.float32)
    whole = reduce.reduce_features(X, "pca", dims=5, scale="standard")
    monkeypatch.setattr(reduce, "_BLOCK", 256)
    blocks = reduce.reduce_features(X, "pca", dims=5, scale="standard")
    np.testing.assert_allclose(blocks.embedding, whole.embedding, rtol=1e-4, atol=1e-4)
    monkeypatch.setattr(reduce, "_PCA_FIT_ROWS", 500)
    sampled = reduce.reduce_features(X, "pca", dims=5, scale="standard")
    # the same subspace from a sixth of the rows: principal angles near zero
    cosines = np.linalg.svd(sampled.pca_components @ whole.pca_components.T, compute_uv=False)
    assert cosines.min() > 0.999
    again = reduce.reduce_features(X, "pca", dims=5, scale="standard")
    np.testing.assert_array_equal(again.embedding, sampled.embedding)  # the same sample


def test_exact_neighbours_match_scikit_learn_by_blocks():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(5000, 6)).astype(np.float32)
    indices, distances = reduce.nearest_neighbours(X, 5)
    expected_d, expected_i = NearestNeighbors(n_neighbors=5).fit(X).kneighbors(X)
    np.testing.assert_allclose(distances, expected_d, rtol=1e-4, atol=1e-4)
    assert np.mean(indices == expected_i) > 0.999  # ties may swap
    assert np.all(indices[:, 0] == np.arange(5000))


def test_umap_kernels_are_cached_and_the_map_repeats_with_the_seed():
    pytest.importorskip("umap")
    X = np.random.default_rng(3).normal(size=(300, 10)).astype(np.float32)
    first = reduce.reduce_features(X, "umap", random_state=4)
    second = reduce.reduce_features(X, "umap", random_state=4)
    np.testing.assert_array_equal(first.embedding, second.embedding)
    import importlib

    from numba.core.caching import FunctionCache

    for module, name in reduce._UMAP_KERNELS:
        kernel = getattr(importlib.import_module(module), name)
        assert isinstance(kernel._cache, FunctionCache), name


def test_auto_reduction_by_size_and_features():
    assert auto_reduction("embed", AUTO_EMBED_MAP_MIN - 1) == "pca"
    assert auto_reduction("embed", AUTO_EMBED_MAP_MIN) == "umap"
    assert auto_reduction("embed", 10**6) == "umap"
    assert auto_reduction("hog", AUTO_TSNE_MAX) == "tsne"
    assert auto_reduction("hog", AUTO_TSNE_MAX + 1) == "umap"
    assert auto_reduction("colortexture", 50_000) == "umap"
    assert auto_reduction("hog", 10**6) == "umap"


def test_small_grey_collections_group_by_stroke_shape(tmp_path):
    """Three shapes drawn with random shifts and stroke widths: the default (HOG of the
    strokes) separates them; it is what the 28x28 digits are grouped on."""
    from skimage.draw import disk, line, rectangle_perimeter

    rng = np.random.default_rng(0)
    root = tmp_path / "shapes"
    for kind in ("ring", "cross", "box"):
        (root / kind).mkdir(parents=True)
        for i in range(20):
            canvas = np.zeros((28, 28), np.uint8)
            dx, dy = rng.integers(-2, 3, 2)
            if kind == "ring":
                canvas[disk((14 + dy, 14 + dx), 9, shape=canvas.shape)] = 255
                canvas[disk((14 + dy, 14 + dx), 6, shape=canvas.shape)] = 0
            elif kind == "cross":
                for r0, c0, r1, c1 in ((6, 6, 21, 21), (6, 21, 21, 6)):
                    rr, cc = line(r0 + dy, c0 + dx, r1 + dy, c1 + dx)
                    canvas[rr, cc] = 255
            else:
                rr, cc = rectangle_perimeter((7 + dy, 7 + dx), (20 + dy, 20 + dx), shape=(28, 28))
                canvas[rr, cc] = 255
            noise = rng.normal(0, 12, canvas.shape)
            image = np.clip(canvas + noise, 0, 255).astype(np.uint8)
            Image.fromarray(image).save(root / kind / f"{i}.png")
    result = cluster_images(root, n_clusters=3, labels="folders", cache=False)
    assert result.extractor.name == "hog" and result.parameters["reduce"] == "tsne"
    assert result.evaluation["adjusted_rand_index"] > 0.9
    # in a linear space the strokes' shapes tell the kinds apart, their pixels do not
    shapes = cluster_images(root, reduce="pca", n_clusters=3, labels="folders", cache=False)
    pixels = cluster_images(
        root, features="pixels", reduce="pca", n_clusters=3, labels="folders", cache=False
    )
    assert shapes.evaluation["adjusted_rand_index"] > 0.9
    assert pixels.evaluation["adjusted_rand_index"] < 0.7


def test_no_feature_file_is_left_in_the_temporary_folder(tmp_path, monkeypatch):
    folder = _grey_folder(tmp_path / "images", 25, side=20)
    spill = tmp_path / "tmp"
    spill.mkdir()
    monkeypatch.setattr(extract, "MEMORY_BYTES", 512)
    monkeypatch.setenv("TMPDIR", str(spill))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(spill))
    result = cluster_images(folder, n_clusters=2, reduce="pca", cache=False)
    assert isinstance(result.extraction.features, np.memmap)
    assert os.listdir(spill) == []


def test_kmeans_past_its_sample_size_restarts_on_a_sample_and_converges_on_all(monkeypatch):
    from imgclust.cluster import methods
    from imgclust.cluster.kmeans import KMeans

    rng = np.random.default_rng(5)
    centres = rng.normal(0, 10, (6, 3))
    X = (centres[rng.integers(0, 6, 6000)] + rng.normal(size=(6000, 3))).astype(np.float32)
    full, _ = methods.fit_method(X, "kmeans", 6, 0)
    monkeypatch.setattr(methods, "KMEANS_SAMPLE_ROWS", 600)
    sampled, _ = methods.fit_method(X, "kmeans", 6, 0)
    again, _ = methods.fit_method(X, "kmeans", 6, 0)
    np.testing.assert_array_equal(sampled, again)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(full, sampled) > 0.99
    # Lloyd ran on every row: the centres are the means of their members
    model = KMeans(6, init=np.stack([X[sampled == c].mean(0) for c in range(6)]), n_init=1)
    np.testing.assert_array_equal(model.fit(X).labels_, sampled)


def test_past_its_landmarks_umap_maps_a_sample_and_places_the_rest_beside_their_neighbours(
    monkeypatch,
):
    pytest.importorskip("umap")
    rng = np.random.default_rng(6)
    centres = rng.normal(0, 8, (4, 10))
    truth = rng.integers(0, 4, 1200)
    X = (centres[truth] + rng.normal(size=(1200, 10))).astype(np.float32)
    monkeypatch.setattr(reduce, "UMAP_LANDMARKS", 300)
    calls: list = []
    result = reduce.reduce_features(X, "umap", random_state=0, progress=_recording(calls))
    again = reduce.reduce_features(X, "umap", random_state=0)
    np.testing.assert_array_equal(result.embedding, again.embedding)
    assert result.embedding.shape == (1200, 2) and np.isfinite(result.embedding).all()
    assert any("UMAP of 300 images" in message for message, _, _ in calls)
    assert any("placing the rest of 900 images" in message for message, _, _ in calls)
    from sklearn.metrics import adjusted_rand_score

    from imgclust.cluster.methods import fit_method

    labels, _ = fit_method(result.embedding, "kmeans", 4, 0)
    assert adjusted_rand_score(truth, labels) > 0.95


def _recording(calls):
    import contextlib

    @contextlib.contextmanager
    def progress(message, total=None):
        steps: list = []
        calls.append((message, total, steps))
        yield lambda n=1: steps.append(n)

    return progress


def test_the_command_line_sets_hog_cells_and_root(tmp_path):
    from click.testing import CliRunner

    from imgclust.cli import cli

    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        ["group", "--dataset", "digits", "--features", "hog", "--size", "16", "--hog-cell",
         "4", "--hog-root", "--reduce", "pca", "-k", "10", "--no-cache", "-q", "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    import json

    settings = json.loads((out / "clusters.json").read_text())["parameters"]["feature_settings"]
    assert settings == {
        "name": "hog",
        "size": 16,
        "orientations": 9,
        "pixels_per_cell": 4,
        "cells_per_block": 2,
        "root": True,
    }
