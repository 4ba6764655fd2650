"""Collections of images: reading, features, methods, evaluation, cache, export, model, CLI."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from sklearn.metrics import adjusted_rand_score

from imgclust import cluster_images
from imgclust.cli import cli
from imgclust.cluster.methods import METHODS, mean_silhouette, renumber
from imgclust.collection.features import ColorHistogram, make_extractor
from imgclust.collection.sources import decode_image, open_source, scan_folder
from imgclust.errors import ImageReadError, InvalidParameterError, OutputExistsError

from .conftest import COLOURS, PER_GROUP, _flat


def _shape(kind: str, seed: int, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((size, size), 20, dtype=np.uint8)
    yy, xx = np.mgrid[:size, :size]
    cy, cx = size / 2 + rng.uniform(-4, 4, 2)
    if kind == "disc":
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < (size / 3.5) ** 2] = 230
    elif kind == "hstripes":
        img[(yy // 8) % 2 == 0] = 230
    else:
        img[(xx // 8) % 2 == 0] = 230
    return np.clip(img + rng.integers(-10, 11, img.shape), 0, 255).astype(np.uint8)


def _truth(result) -> list[str]:
    return [Path(i).parent.name for i in result.ids]


def _csv_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


# --- reading -------------------------------------------------------------------------------


def test_scan_skips_hidden_and_excluded(tmp_path, colour_folder):
    (colour_folder / ".hidden").mkdir()
    Image.new("RGB", (4, 4)).save(colour_folder / ".hidden" / "x.png")
    (colour_folder / "out").mkdir()
    Image.new("RGB", (4, 4)).save(colour_folder / "out" / "y.png")
    (colour_folder / "notes.txt").write_text("not an image")
    found = scan_folder(colour_folder, exclude=[colour_folder / "out"])
    assert len(found) == 3 * PER_GROUP
    assert found == sorted(found)


def test_decode_handles_modes_orientation_and_frames(tmp_path):
    # EXIF orientation 6 (rotate 90 degrees clockwise) makes a 40x20 image 20x40.
    img = Image.fromarray(np.zeros((20, 40, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif)
    assert decode_image(path.read_bytes()).size == (20, 40)
    # 16-bit grey becomes 8-bit with the same relative levels.
    sixteen = Image.fromarray(np.full((5, 5), 65535, dtype=np.uint16))
    sixteen.save(tmp_path / "16.png")
    decoded = np.asarray(decode_image((tmp_path / "16.png").read_bytes()))
    assert decoded.dtype == np.uint8 and decoded.max() == 255
    # Transparent pixels are composited over white.
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "clear.png")
    assert np.asarray(decode_image((tmp_path / "clear.png").read_bytes())).min() == 255
    # A GIF gives its first frame.
    frames = [Image.new("P", (6, 6), i) for i in (1, 2)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert decode_image((tmp_path / "anim.gif").read_bytes()).size == (6, 6)


def test_decode_refuses_garbage_and_bombs(tmp_path):
    with pytest.raises(ImageReadError, match="not an image"):
        decode_image(b"definitely not an image")
    buffer = tmp_path / "big.png"
    Image.new("L", (100, 100)).save(buffer)
    with pytest.raises(ImageReadError, match="more than the limit"):
        decode_image(buffer.read_bytes(), max_pixels=50)


def test_jpeg_draft_decodes_smaller(tmp_path):
    Image.fromarray(np.zeros((512, 512, 3), dtype=np.uint8)).save(tmp_path / "big.jpg")
    small = decode_image((tmp_path / "big.jpg").read_bytes(), draft_size=64)
    assert 64 <= min(small.size) < 512


# --- features ------------------------------------------------------------------------------


def test_registry_lists_known_names():
    with pytest.raises(InvalidParameterError, match="auto, pixels, colorhist, colortexture"):
        make_extractor("sift")
    with pytest.raises(InvalidParameterError, match="kmeans, minibatch"):
        cluster_images(np.zeros((5, 4, 4), dtype=np.uint8), method="spectral", cache=False)


def test_colour_histogram_is_a_unit_vector():
    vector = ColorHistogram().prepare(Image.fromarray(_flat((200, 50, 50), 0)))
    assert vector.shape == (16 * 4 * 4,)
    assert np.sum(vector**2) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_recovers_flat_colour_groups(colour_folder, method):
    k = None if method in ("dbscan", "hdbscan") else 3
    result = cluster_images(
        colour_folder,
        features="pixels",
        feature_options={"size": 8},
        reduce="pca",
        dims=5,
        method=method,
        n_clusters=k,
        cache=False,
        random_state=0,
    )
    assert result.n_clusters == 3
    assert adjusted_rand_score(_truth(result), result.labels) == 1.0
    assert sorted(result.cluster_sizes()) == [PER_GROUP] * 3


@pytest.mark.parametrize("features", ["hog", "pixels"])
def test_shapes_are_recovered(features):
    kinds = ["disc", "hstripes", "vstripes"]
    images = np.stack([_shape(kind, 10 * i + j) for i, kind in enumerate(kinds) for j in range(12)])
    truth = np.repeat(np.arange(3), 12)
    result = cluster_images(
        images, features=features, reduce="pca", dims=10, n_clusters=3, cache=False
    )
    assert adjusted_rand_score(truth, result.labels) == 1.0


def test_clusters_are_numbered_by_size():
    labels, medoids = renumber(np.array([2, 2, 0, 1, 1, 1, -1]), np.array([10, 11, 12]))
    assert labels.tolist() == [1, 1, 2, 0, 0, 0, -1]
    assert medoids.tolist() == [11, 12, 10]


@pytest.mark.parametrize("k", [2, 5, 9])
def test_mean_silhouette_matches_scikit_learn(k):
    from sklearn.metrics import pairwise_distances, silhouette_score

    rng = np.random.default_rng(k)
    points = np.concatenate([rng.normal(c, 1.0, size=(40, 3)) for c in range(k)]) * 3
    labels = np.repeat(np.arange(k), 40)
    labels[rng.choice(len(labels), 30, replace=False)] = rng.integers(0, k, 30)  # some misplaced
    labels[0] = k + 3  # a cluster of one, and a gap in the numbering
    distances = pairwise_distances(points.astype(np.float32))
    expected = silhouette_score(distances, labels, metric="precomputed")
    assert mean_silhouette(distances, labels) == pytest.approx(expected, abs=1e-6)
    assert np.isnan(mean_silhouette(distances, np.zeros(len(labels), dtype=int)))


def test_onnx_embedding_from_a_model_built_here(tmp_path, colour_folder):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["embedding"]),
        ],
        "mean_colour",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 3, 32, 32])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [None, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = tmp_path / "mean_colour.onnx"
    onnx.save(model, path)
    result = cluster_images(
        colour_folder,
        features=f"embed:{path}",
        feature_options={"input_size": 32},
        reduce="none",
        n_clusters=3,
        cache=False,
    )
    assert result.extraction.features.shape == (3 * PER_GROUP, 3)
    np.testing.assert_allclose(np.linalg.norm(result.extraction.features, axis=1), 1, atol=1e-5)
    assert adjusted_rand_score(_truth(result), result.labels) == 1.0


# --- the whole job --------------------------------------------------------------------------


def test_digits_at_reduced_size_beat_raw_pixels():
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, truth = digits.images[:600], digits.target[:600]
    tsne = cluster_images(images, n_clusters=10, labels=list(truth), cache=False)
    raw = cluster_images(images, reduce="none", n_clusters=10, labels=list(truth), cache=False)
    assert tsne.evaluation["accuracy_majority"] > 0.85
    assert tsne.evaluation["accuracy_majority"] > raw.evaluation["accuracy_majority"]
    assert tsne.evaluation["labelled_images"] == 600


def test_same_seed_same_result(colour_folder):
    runs = [
        cluster_images(
            colour_folder, n_clusters="auto", k_values=[2, 3, 4], cache=False, random_state=7
        )
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0].labels, runs[1].labels)
    np.testing.assert_array_equal(runs[0].reduction.embedding, runs[1].reduction.embedding)
    assert runs[0].sweep.best_k == 3


def test_cache_skips_extraction_on_second_run(tmp_path, colour_folder):
    cache = tmp_path / "cache"
    first = cluster_images(colour_folder, reduce="pca", n_clusters=3, cache=cache)
    second = cluster_images(
        colour_folder, reduce="none", method="agglomerative", n_clusters=3, cache=cache
    )
    assert first.extraction.cache_hits == 0
    assert second.extraction.cache_hits == 3 * PER_GROUP
    np.testing.assert_array_equal(first.extraction.features, second.extraction.features)
    other = cluster_images(
        colour_folder, feature_options={"size": 8}, reduce="none", n_clusters=3, cache=cache
    )
    assert other.extraction.cache_hits == 0  # other settings, other cache


def test_corrupt_files_are_skipped(colour_folder):
    (colour_folder / "red" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (colour_folder / "empty.png").write_bytes(b"")
    result = cluster_images(colour_folder, reduce="pca", n_clusters=3, cache=False)
    skipped = dict(result.extraction.skipped)
    assert set(skipped) == {"red/broken.jpg", "empty.png"}
    assert len(result.labels) == 3 * PER_GROUP


def test_labels_csv_and_folders(tmp_path, colour_folder):
    source = open_source(colour_folder)
    table = tmp_path / "labels.csv"
    table.write_text("path,label\nred/red_00.jpg,warm\nblue/blue_01.png,cold\n")
    result = cluster_images(colour_folder, reduce="pca", n_clusters=3, labels=table, cache=False)
    assert result.evaluation["labelled_images"] == 2
    table.write_text("red/nope.jpg,warm\n")
    with pytest.raises(InvalidParameterError, match="not among the images"):
        cluster_images(source, reduce="pca", n_clusters=3, labels=table, cache=False)


def test_k_larger_than_images_is_refused(colour_folder):
    with pytest.raises(InvalidParameterError, match="more than the 60 images"):
        cluster_images(colour_folder, reduce="none", n_clusters=61, cache=False)


# --- command line ---------------------------------------------------------------------------


def test_group_command_writes_every_output(tmp_path, colour_folder):
    out = tmp_path / "out"
    result = _run(
        "group",
        colour_folder,
        "-o",
        out,
        "--labels",
        "folders",
        "-k",
        "auto",
        "--k-range",
        "2-5",
        "--no-cache",
        "--save-model",
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["n_clusters"] == 3 and summary["evaluation"]["accuracy_majority"] == 1.0
    for name in (
        "assignments.csv",
        "clusters.json",
        "centers.png",
        "embedding.png",
        "skipped.csv",
        "choose_k.csv",
        "choose_k.png",
        "evaluation.json",
        "confusion.csv",
        "confusion.png",
        "model/model.json",
        "model/model.npz",
    ):
        assert (out / name).is_file(), name
    assert len(list((out / "galleries").glob("*.jpg"))) == 3
    rows = _csv_rows(out / "assignments.csv")
    assert len(rows) == 3 * PER_GROUP
    assert {r["rank"] for r in rows if r["cluster"] == "0"} == {str(i) for i in range(1, 21)}
    exported = list((out / "clusters").rglob("*.*"))
    assert len(exported) == 3 * PER_GROUP


def test_export_never_escapes_and_never_touches_originals(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    names = ["x\\..\\..\\evil.png", "a b<>;|.png", "ünïcode.png", "x..png", "--dash.png"]
    for i, name in enumerate(names * 2):
        folder = root / f"g{i % 2}"
        folder.mkdir(exist_ok=True)
        Image.fromarray(_flat((40 * i, 90, 200 - 10 * i), i)).save(folder / name)
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*.png")}
    out = tmp_path / "out"
    for mode in ("copy", "hardlink", "symlink"):
        result = _run(
            "group",
            root,
            "-o",
            out,
            "--reduce",
            "none",
            "-k",
            "2",
            "--no-cache",
            "--export",
            mode,
            "--overwrite",
            "-q",
        )
        assert result.exit_code == 0, result.output
        exported = [p for p in (out / "clusters").rglob("*") if not p.is_dir()]
        assert len(exported) == 10
        for path in exported:
            assert path.parent.parent == out / "clusters"
            assert not path.name.startswith(".")
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*.png")}
    assert before == after


def test_output_inside_input_is_never_read_back(colour_folder):
    out = colour_folder / "results"
    for _ in range(2):
        result = _run(
            "group",
            colour_folder,
            "-o",
            out,
            "--reduce",
            "pca",
            "-k",
            "3",
            "--no-cache",
            "--export",
            "copy",
            "--overwrite",
            "--json",
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["read"] == 3 * PER_GROUP


@pytest.mark.parametrize("options", [[], ["--reduce", "pca", "--scale", "standard"]])
def test_assign_puts_images_into_saved_clusters(tmp_path, colour_folder, options):
    out = tmp_path / "out"
    args = ["group", colour_folder, "-o", out, "-k", "3", "--no-cache", "--save-model", "-q"]
    assert _run(*args, *options).exit_code == 0
    groups = {r["path"]: r["cluster"] for r in _csv_rows(out / "assignments.csv")}
    new = tmp_path / "new"
    new.mkdir()
    for name, colour in COLOURS.items():
        Image.fromarray(_flat(colour, 999)).save(new / f"{name}.png")
    result = _run("assign", out / "model", new, "-o", tmp_path / "assigned", "--json")
    assert result.exit_code == 0, result.output
    assigned = {
        Path(r["path"]).stem: r["cluster"]
        for r in _csv_rows(tmp_path / "assigned" / "assignments.csv")
    }
    for name in COLOURS:
        assert assigned[name] == groups[f"{name}/{name}_01.png"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--reduce", "none", "-k", "0"], 2, "must be at least 1"),
        (["--reduce", "none", "-k", "99"], 1, "more than the 60 images"),
        (["--labels", "missing.csv", "--reduce", "none", "-k", "3"], 1, "cannot be read"),
        (["--features", "sift"], 1, "unknown features"),
        (
            ["--method", "dbscan", "--reduce", "none", "--eps", "0.0001"],
            1,
            "every image into noise",
        ),
    ],
)
def test_group_bad_input_is_one_line(tmp_path, colour_folder, args, code, message):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["group", str(colour_folder), "-o", str(out), "--no-cache", *args]
    )
    assert result.exit_code == code
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_group_refuses_empty_unreadable_and_existing(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _run("group", empty, "-o", tmp_path / "o1", "--no-cache")
    assert result.exit_code == 1 and "no image files found" in result.output
    (empty / "bad.png").write_bytes(b"nope")
    result = _run("group", empty, "-o", tmp_path / "o2", "--no-cache")
    assert result.exit_code == 1 and "none of the 1 images could be read" in result.output
    (tmp_path / "o3").mkdir()
    (tmp_path / "o3" / "keep.txt").write_text("mine")
    result = _run("group", empty, "-o", tmp_path / "o3", "--no-cache")
    assert result.exit_code == 1 and "--overwrite" in result.output
    assert (tmp_path / "o3" / "keep.txt").read_text() == "mine"
    with pytest.raises(OutputExistsError):
        from imgclust.collection.jobs import run_group

        run_group(empty, tmp_path / "o3")


def test_umap_reduction_recovers_groups(colour_folder):
    result = cluster_images(
        colour_folder, feature_options={"size": 8}, reduce="umap", n_clusters=3, cache=False
    )
    assert result.reduction.embedding.shape == (3 * PER_GROUP, 2)
    assert adjusted_rand_score(_truth(result), result.labels) == 1.0


@pytest.mark.parametrize(("reduce", "method"), [("pca", "kmeans"), ("tsne", "agglomerative")])
def test_saved_model_gives_training_images_their_clusters(tmp_path, colour_folder, reduce, method):
    from imgclust.collection.model import GroupModel, save_model

    result = cluster_images(colour_folder, reduce=reduce, method=method, n_clusters=3, cache=False)
    save_model(result, tmp_path / "model")
    model = GroupModel.load(tmp_path / "model")
    assert ("reference" in np.load(tmp_path / "model" / "model.npz")) == (reduce == "tsne")
    labels, distances = model.assign(result.extraction.features)
    np.testing.assert_array_equal(labels, result.labels)
    assert np.all(np.isfinite(distances)) and np.all(distances >= 0)


# --- the default features --------------------------------------------------------------


def test_auto_features_are_hog_for_small_grey_images_and_the_image_model_for_photos(tmp_path):
    from imgclust.collection.group import _make_extractor, auto_features

    def make(*args):
        extractor, warnings = _make_extractor(*args)
        assert warnings == []
        return extractor

    digits = open_source(dataset="digits")
    assert auto_features(digits)[0] == "hog"
    extractor = make("auto", digits, {})
    # the 8x8 digits are brought to 16 pixels: 4-pixel cells need room
    assert extractor.settings() == {
        "size": 16,
        "orientations": 12,
        "pixels_per_cell": 4,
        "cells_per_block": 2,
        "root": True,
    }
    grey = tmp_path / "grey"
    grey.mkdir()
    for i in range(6):  # small grey icons saved as RGB files
        value = np.full((24, 24, 3), 40 * i, np.uint8)
        Image.fromarray(value).save(grey / f"{i}.png")
    assert auto_features(open_source(grey))[0] == "hog"
    assert make("auto", open_source(grey), {}).settings()["size"] == 24  # its own
    assert make("auto", open_source(grey), {"size": 20}).settings()["size"] == 20
    # an option given, even a false one, wins over the auto choice; None means "not given"
    assert make("auto", digits, {"root": False, "size": None}).root is False
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(6):
        Image.fromarray(_flat((200, 30 * i, 40), i, size=120)).save(photos / f"{i}.jpg")
    features, reason = auto_features(open_source(photos))  # named, not downloaded
    assert features == "embed:mobilenetv2" and "what they show" in reason
    # offline (as every test is) colour and texture stand in, and a warning says why and how
    extractor, warnings = _make_extractor("auto", open_source(photos), {})
    assert extractor.name == "colortexture" and "mobilenetv2" in extractor.chosen
    assert len(warnings) == 1 and "IMGCLUST_OFFLINE" in warnings[0]
    assert "download https://" in warnings[0] and "mobilenetv2-12.onnx" in warnings[0]


def test_the_default_groups_colour_and_texture(tmp_path):
    """Four kinds of image: two colours, each speckled or striped with the same share of
    dark pixels. Colour alone cannot tell the two textures apart (the same colours in the
    same amounts); the default descriptor tells all four kinds."""
    rng = np.random.default_rng(0)
    root = tmp_path / "kinds"
    for colour in ((200, 40, 40), (40, 40, 200)):
        for striped in (False, True):
            folder = root / f"{colour[0]}-{'striped' if striped else 'speckled'}"
            folder.mkdir(parents=True)
            for i in range(10):
                dark = (np.arange(96) // 3) % 2 == 0
                dark = np.repeat(dark[:, None], 96, axis=1)
                if not striped:  # the same dark pixels, scattered
                    dark = rng.permutation(dark.ravel()).reshape(96, 96)
                image = np.clip(np.array(colour) + rng.integers(-15, 16, (96, 96, 3)), 0, 255)
                image[dark] //= 3
                Image.fromarray(image.astype(np.uint8)).save(folder / f"{i}.png")
    result = cluster_images(root, n_clusters=4, labels="folders", cache=False)
    assert result.parameters["features"].startswith("colortexture")  # offline: no model
    assert result.evaluation["accuracy_majority"] == 1.0
    colour_only = cluster_images(
        root, features="colorhist", n_clusters=4, labels="folders", cache=False
    )
    assert colour_only.evaluation["accuracy_majority"] < 1.0


# --- what a newcomer is told: the merge tree, lopsided density clusters, progress -------


@pytest.mark.parametrize("seed", range(3))
def test_agglomerative_keeps_the_tree_its_clusters_were_cut_from(seed):
    from scipy.cluster.hierarchy import fcluster, ward

    from imgclust.cluster.methods import fit_method

    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(c, 1.0, (40, 4)) for c in (0, 5, 10, 15)])
    details: dict = {}
    labels, _ = fit_method(X, "agglomerative", 4, seed, details=details)
    Z = details["linkage"]
    reference = ward(X)  # scipy's own Ward linkage of the same points
    np.testing.assert_allclose(np.sort(Z[:, 2]), np.sort(reference[:, 2]), rtol=1e-9)
    assert Z[-1, 3] == len(X)
    cut = fcluster(Z, 4, criterion="maxclust")
    assert adjusted_rand_score(cut, labels) == 1.0


def test_dendrogram_colours_each_cluster_s_branches_and_nothing_above_the_cut():
    from imgclust.cluster.methods import fit_method
    from imgclust.report.collection_plots import _node_clusters, dendrogram_figure

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(c, 0.5, (30, 2)) for c in (0, 6, 12)])
    details: dict = {}
    labels, _ = fit_method(X, "agglomerative", 3, 0, details=details)
    nodes = _node_clusters(details["linkage"], labels)
    assert (nodes[: len(X)] == labels).all()
    assert (nodes[-2:] == -1).all() and (nodes[len(X) : -2] >= 0).all()  # K-1 merges above
    figure = dendrogram_figure(details["linkage"], labels, leaves=12)
    assert "90 images" in figure.axes[0].get_title()


@pytest.mark.parametrize("seed", range(3))
def test_dbscan_with_one_giant_cluster_says_so(colour_folder, seed):
    result = cluster_images(
        colour_folder, reduce="pca", method="dbscan", method_options={"eps": 1e6},
        cache=False, random_state=seed,
    )  # fmt: skip
    assert result.n_clusters == 1
    assert any("into one cluster" in w and "--eps" in w for w in result.warnings)
    sensible = cluster_images(  # features named: offline, the default would warn of that
        colour_folder,
        features="colortexture",
        reduce="pca",
        method="dbscan",
        cache=False,
        random_state=seed,
    )
    assert sensible.warnings == []


def _recording_progress(calls: list):
    from contextlib import contextmanager

    @contextmanager
    def progress(message: str, total: int):
        steps: list[int] = []
        calls.append((message, total, steps))
        yield lambda n=1: steps.append(n)

    return progress


def test_tsne_and_umap_show_real_progress(monkeypatch):
    from imgclust.collection import reduce
    from imgclust.collection.reduce import reduce_features

    monkeypatch.setattr(reduce, "_BAR_INTERVAL", 0)  # every epoch, however fast the run

    features = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)
    for method in ("tsne", "umap"):
        calls: list = []
        reduce_features(features, method, progress=_recording_progress(calls))
        (message, total, steps) = calls[-1]
        assert method.replace("tsne", "t-SNE").upper() in message.upper()
        assert total >= 100 and sum(steps) == total
        # advanced as it ran, read from what the library prints, not once at the end
        assert len(steps) >= 4 and steps[0] < total


def test_progress_reader_counts_tqdm_and_tsne_lines():
    from imgclust.collection.reduce import _counter, _ProgressReader

    steps: list[int] = []
    seen = _counter(lambda n=1: steps.append(n))
    reader = _ProgressReader(r"(\d+)/\d+ \[", seen)
    reader.write("Epochs completed:   0%| 0/200 [00:00]\rEpochs completed:  40%| 80/")
    reader.write("200 [00:01]\rEpochs completed: 100%| 200/200 [00:02]\n")
    assert steps == [80, 120]
    lines: list[int] = []
    tsne = _ProgressReader(r"\[t-SNE\] Iteration (\d+)", lines.append)
    tsne.write("[t-SNE] Iteration 50: error = 1.2\n[t-SNE] KL divergence\n[t-SNE] Iteration 100:")
    tsne.write("\n")
    assert lines == [50, 100]


# --- choosing K on a map: the clusters as Gaussians -----------------------------------------


def _blobs(seed: int, k: int = 4, per: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """``k`` elongated Gaussian blobs in 2-D, well apart, each turned at random."""
    rng = np.random.default_rng(seed)
    points, labels = [], []
    for c in range(k):
        angle = rng.uniform(0, np.pi)
        turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        spread = rng.normal(size=(per, 2)) * [3.0, 0.7]
        points.append(spread @ turn.T + [30.0 * (c % 2), 30.0 * (c // 2)])
        labels.append(np.full(per, c))
    return np.concatenate(points), np.concatenate(labels)


@pytest.mark.parametrize("seed", range(5))
def test_the_mixture_bic_is_lowest_for_the_blobs_as_they_are(seed):
    from imgclust.cluster.methods import fit_method, mixture_bic, sweep_k

    X, truth = _blobs(seed)
    true_bic = mixture_bic(X, truth)
    for k in (2, 3, 6, 8):
        labels, _ = fit_method(X, "kmeans", k, seed)
        assert mixture_bic(X, labels) > true_bic, k
    sweep = sweep_k(X, "kmeans", range(2, 11), seed, rule="bic")
    assert sweep.best_k == 4 and "BIC" in sweep.rule
    assert sweep.bic[sweep.ks.tolist().index(4)] == 0.0  # the curve is relative to its lowest
    assert [row["bic"] for row in sweep.to_rows()] == sweep.bic.tolist()
    # other views of the same rows (here turned and scaled: another map) are averaged in
    turned = X @ np.array([[0.0, 2.0], [-2.0, 0.0]]) + 5.0
    both = sweep_k(X, "kmeans", range(2, 11), seed, rule="bic", resampled=[turned])
    assert both.best_k == 4 and "mean over 2 maps" in both.rule


def test_the_mixture_bic_needs_room_for_each_covariance():
    from imgclust.cluster.methods import mixture_bic

    X, truth = _blobs(0, k=2, per=10)
    assert np.isfinite(mixture_bic(X, truth))
    tiny = truth.copy()
    tiny[:2] = 5  # a cluster of two points in 2-D has no covariance to speak of
    assert mixture_bic(X, tiny) == np.inf
    noisy = truth.copy()
    noisy[:3] = -1  # noise is left out, not a cluster
    assert mixture_bic(X, noisy) == pytest.approx(mixture_bic(X[3:], truth[3:]))
    from imgclust.cluster.methods import sweep_k

    with pytest.raises(InvalidParameterError, match="unknown rule 'gap'"):
        sweep_k(X, "kmeans", [2, 3], rule="gap")


def test_the_k_range_grows_with_the_collection():
    from imgclust.collection.group import auto_k_values

    assert auto_k_values(60) == list(range(2, 21))
    assert auto_k_values(600) == list(range(2, 25))
    assert auto_k_values(1200) == list(range(2, 41))  # 30 kinds of aerial scene can be found
    assert auto_k_values(10**6)[-1] == 40
    assert auto_k_values(1200, "silhouette") == list(range(2, 21))  # the digits' as before


def test_k_auto_by_the_bic_rule_on_the_command_line(tmp_path):
    root = tmp_path / "png"  # one file type: JPEG's shifted colours would make sub-groups
    for g, colour in enumerate(COLOURS.values()):
        (root / str(g)).mkdir(parents=True)
        for i in range(PER_GROUP):
            Image.fromarray(_flat(colour, 100 * g + i)).save(root / str(g) / f"{i}.png")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["group", str(root), "--features", "colorhist", "--reduce", "pca",
              "--dims", "2", "--k-rule", "bic", "--k-range", "2-6", "--no-cache",
              "-o", str(out), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["n_clusters"] == 3  # three flat colours
    assert summary["parameters"]["k_rule"] == "bic"
    assert "BIC" in summary["choose_k"]["rule"] and "maps" not in summary["choose_k"]["rule"]
    with open(out / "choose_k.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["k"]) for r in rows] == [2, 3, 4, 5, 6] and "bic" in rows[0]
    assert min(rows, key=lambda r: float(r["bic"]))["k"] == "3"
    assert "BIC" in (out / "report.html").read_text()
