"""Inputs as an attacker or an odd file system makes them (issue 30): files that never end,
names that are not text, text that means something to matplotlib, XML or a terminal. Each
case is skipped with a reason or refused in one line; none hangs, eats memory or crashes.
Commands that could hang run in a child process with a deadline."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file kinds")


def _imgclust(*args, timeout: float = 60) -> subprocess.CompletedProcess:
    """The command in a child process, killed (and the test failed) past ``timeout``."""
    environment = {**os.environ, "IMGCLUST_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "imgclust", *map(str, args)],
        capture_output=True,
        timeout=timeout,
        env=environment,
    )


def _colour_folder(root: Path, per: int = 6) -> Path:
    for g, colour in enumerate(((200, 40, 40), (40, 40, 200))):
        (root / str(g)).mkdir(parents=True)
        for i in range(per):
            pixels = np.clip(np.array(colour) + 6 * i, 0, 255).astype(np.uint8)
            Image.fromarray(np.broadcast_to(pixels, (24, 24, 3)).copy()).save(
                root / str(g) / f"{i}.png"
            )
    return root


def test_pipes_and_devices_among_images_are_skipped(tmp_path):
    images = _colour_folder(tmp_path / "images")
    os.mkfifo(images / "0" / "pipe.png")
    (images / "0" / "zero.jpg").symlink_to("/dev/zero")
    (images / "1" / "random.png").symlink_to("/dev/urandom")
    out = tmp_path / "out"
    done = _imgclust("group", images, "-k", "2", "-o", out, "-q")
    assert done.returncode == 0, done.stderr.decode()
    with open(out / "skipped.csv", newline="") as handle:
        skipped = {row["path"]: row["reason"] for row in csv.DictReader(handle)}
    assert skipped == {
        "0/pipe.png": "is a named pipe (FIFO), not a file of image data; skipped",
        "0/zero.jpg": "is a character device, not a file of image data; skipped",
        "1/random.png": "is a character device, not a file of image data; skipped",
    }
    with open(out / "assignments.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 12


@pytest.mark.parametrize("command", ["segment", "classify", "edges"])
def test_a_pipe_given_as_the_input_is_one_line(tmp_path, command):
    if command == "classify":
        pytest.importorskip("rasterio", reason="the raster extra is not installed")
    pipe = tmp_path / "scene.tif"
    os.mkfifo(pipe)
    done = (
        _imgclust(command, pipe, "-k", "3", "-o", tmp_path / "out")
        if command != "edges"
        else (_imgclust(command, pipe, "-o", tmp_path / "out"))
    )
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr.decode()
    assert "named pipe (FIFO)" in lines[0] and "Traceback" not in lines[0]
    assert not (tmp_path / "out").exists()


def test_names_that_are_not_text_and_dollar_folders_are_grouped(tmp_path):
    from click.testing import CliRunner

    from imgclust.cli import cli

    root = tmp_path / "images"
    for folder, colour in (("Price $5", (200, 40, 40)), ("$$", (40, 40, 200))):
        (root / folder).mkdir(parents=True)
        for i in range(6):
            pixels = np.clip(np.array(colour) + 6 * i, 0, 255).astype(np.uint8)
            image = Image.fromarray(np.broadcast_to(pixels, (24, 24, 3)).copy())
            image.save(root / folder / f"{i}.png")
    latin1 = os.fsencode(root / "$$") + b"/caf\xe9.png"  # an old archive's Latin-1 name
    with open(latin1, "wb") as handle:
        handle.write((root / "$$" / "0.png").read_bytes())
    (root / "$$" / "\x1b[2Jclear.png").write_bytes((root / "$$" / "1.png").read_bytes())
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["group", str(root), "-k", "2", "--labels", "folders", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output  # the escape sequence is shown, not obeyed
    text = (out / "assignments.csv").read_bytes().decode("utf-8")  # valid UTF-8
    rows = {r["path"]: r for r in csv.DictReader(text.splitlines())}
    assert rows["$$/caf\\xe9.png"]["label"] == "$$" and "$$/\\x1b[2Jclear.png" in rows
    assert rows["Price $5/0.png"]["label"] == "Price $5"
    assert json_file(out / "evaluation.json")["accuracy_majority"] == 1.0
    assert (out / "confusion.png").is_file() and (out / "embedding.png").is_file()
    exported = [p.name for p in (out / "clusters").rglob("*.png")]
    assert len(exported) == 14 and any(name.endswith("_caf_.png") for name in exported)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "caf\\xe9.png" in page and "\x1b" not in page


def json_file(path: Path) -> dict:
    import json

    return json.loads(path.read_text(encoding="utf-8"))


def test_an_error_about_an_odd_name_stays_one_line(tmp_path):
    from click.testing import CliRunner

    from imgclust.cli import cli

    missing = tmp_path / "two\nlines\x1b[2J.png"
    result = CliRunner().invoke(cli, ["segment", str(missing), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "two\\nlines\\x1b[2J.png" in lines[0] and "\x1b" not in lines[0]


def _declared_input_model(path: Path, side) -> Path:
    """Pool, flatten, 1,000 logits: an image input of ``side`` x ``side`` (None: free)."""
    from onnx import TensorProto, helper, numpy_helper

    from tests.test_embed import _save

    weights = numpy_helper.from_array(np.ones((1000, 3), np.float32), "fc.weight")
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc.weight"], ["logits"], transB=1),
    ]
    dims = ["N", 3, side or "H", side or "W"]
    data = helper.make_tensor_value_info("input", TensorProto.FLOAT, dims)
    output = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])
    return _save(path, nodes, [data], output, [weights], producer_name="pytorch")


@pytest.mark.parametrize(("side", "size"), [(100_000, None), (100_000, 32), (None, 60_000)])
def test_a_model_input_too_large_for_memory_is_refused_first(tmp_path, side, size):
    pytest.importorskip("onnx", reason="the embed extra is not installed")
    pytest.importorskip("onnxruntime", reason="the embed extra is not installed")
    model = _declared_input_model(tmp_path / "huge.onnx", side)
    images = _colour_folder(tmp_path / "images")
    extra = ["--embed-size", size] if size else []
    done = _imgclust("group", images, "--features", f"embed:{model}", *extra, "-o", tmp_path / "o")
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr.decode()
    assert "more than imgclust feeds a model (4096 a side at most" in lines[0]


def _write_scene(path: Path, values: np.ndarray) -> Path:
    """``values`` (bands, rows, columns) as a GeoTIFF in UTM, 30 m pixels."""
    rasterio = pytest.importorskip("rasterio", reason="the raster extra is not installed")
    from rasterio.transform import Affine

    count, height, width = values.shape
    profile = {
        "driver": "GTiff", "width": width, "height": height, "count": count,
        "dtype": values.dtype.name, "crs": "EPSG:32616",
        "transform": Affine(30, 0, 500000, 0, -30, 4000000),
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values)
    return path


def _small_scene(tmp_path: Path, side: int = 64) -> Path:
    values = np.random.default_rng(0).integers(0, 1000, (3, side, side)).astype("uint16")
    return _write_scene(tmp_path / "scene.tif", values)


def test_a_continuous_reference_is_refused_at_once(tmp_path):
    rasterio = pytest.importorskip("rasterio", reason="the raster extra is not installed")
    scene = _small_scene(tmp_path)
    assert _imgclust("classify", scene, "-k", "3", "-o", tmp_path / "c", "-q").returncode == 0
    with rasterio.open(scene) as src:
        profile = {**src.profile, "count": 1, "dtype": "float32"}
    reference = tmp_path / "reflectance.tif"
    with rasterio.open(reference, "w", **profile) as dst:
        dst.write(np.random.default_rng(1).random((1, 64, 64)).astype("float32"))
    done = _imgclust("evaluate", tmp_path / "c" / "classes.tif", reference, "-o", tmp_path / "e")
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr.decode()
    assert "more than 1,000 distinct values, not whole numbers" in lines[0]
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("name", ["for\x1best", "water\tfall", "new\nline"])
def test_a_control_character_in_a_class_name_is_one_line(tmp_path, name):
    from click.testing import CliRunner

    from imgclust.cli import cli

    scene = _small_scene(tmp_path)
    names = f"{name},fields,town"
    result = CliRunner().invoke(
        cli, ["classify", str(scene), "-k", "3", "--names", names, "-o", str(tmp_path / "c")]
    )
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "control character" in lines[0] and "\x1b" not in lines[0]
    assert not (tmp_path / "c").exists()


def test_markup_in_a_class_name_stays_well_formed_xml(tmp_path):
    import xml.dom.minidom

    from click.testing import CliRunner

    from imgclust.cli import cli

    scene = _small_scene(tmp_path)
    names = 'a<b>&"c,forêt ДЖ,$5 town'
    out = tmp_path / "c"
    result = CliRunner().invoke(
        cli, ["classify", str(scene), "-k", "3", "--names", names, "-o", str(out), "-q"]
    )
    assert result.exit_code == 0, result.output
    for written in ("classes.tif.aux.xml", "classes.qml"):
        document = xml.dom.minidom.parse(str(out / written))  # raises if not well-formed
        assert 'a<b>&"c' in document.toxml() or "a&lt;b&gt;&amp;" in document.toxml()


def _classify(scene: Path, out: Path, *extra: str):
    from click.testing import CliRunner

    from imgclust.cli import cli

    return CliRunner().invoke(cli, ["classify", str(scene), "-k", "3", "-o", str(out), *extra])


def test_a_same_size_edit_right_after_a_run_is_never_replaced(tmp_path):
    scene = _small_scene(tmp_path)
    out = tmp_path / "classes"
    assert _classify(scene, out, "-q").exit_code == 0
    style = out / "classes.qml"
    edited = style.read_text().replace("#1f77b4", "#ff0000")  # as `sed -i`: a new file
    assert edited != style.read_text()
    replacement = out / "edited.tmp"
    replacement.write_text(edited)
    os.replace(replacement, style)
    again = _classify(scene, out, "--overwrite", "-q")
    assert again.exit_code == 1 and "classes.qml" in again.output
    assert "changed since imgclust wrote it" in again.output
    assert style.read_text() == edited  # the user's edit is kept


def test_a_copy_of_an_output_folder_is_still_imgclusts(tmp_path):
    import shutil

    scene = _small_scene(tmp_path)
    out = tmp_path / "classes"
    assert _classify(scene, out, "-q").exit_code == 0
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, copy_function=shutil.copy)  # `cp -r`: new times, new inodes
    assert _classify(scene, copy, "--overwrite", "-q").exit_code == 0


def test_a_record_stamp_that_is_no_number_claims_nothing(tmp_path):
    import json

    scene = _small_scene(tmp_path)
    out = tmp_path / "classes"
    assert _classify(scene, out, "-q").exit_code == 0
    record = out / ".imgclust-outputs.json"
    data = json.loads(record.read_text())
    name = sorted(data["files"])[0]
    text = record.read_text().replace(str(data["files"][name][0]), "1e400", 1)
    record.write_text(text)
    again = _classify(scene, out, "--overwrite", "-q")
    assert again.exit_code == 1 and "Traceback" not in again.output
    assert "cannot be read" in again.output  # the record is refused, every file kept


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["edges", "{photo}", "--sigma", "1e9"], "is wider than the image"),
        (["segment", "{photo}", "--superpixels", "50", "--compactness", "1e-300"],
         "must be from 0.001 to 10,000"),
        (["segment", "{photo}", "-k", "3", "--spatial", "1e300"],
         "must be a finite number from 0 to 1,000"),
        (["group", "{folder}", "--method", "hdbscan", "--min-cluster-size", "500"],
         "--min-cluster-size 500 is more than the 12 images"),
    ],
)  # fmt: skip
def test_values_that_would_eat_memory_or_break_a_library_are_one_line(tmp_path, args, said):
    from click.testing import CliRunner

    from imgclust.cli import cli

    photo = tmp_path / "photo.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(photo)
    folder = _colour_folder(tmp_path / "images")
    filled = [a.format(photo=photo, folder=folder) for a in args]
    result = CliRunner().invoke(cli, [*filled, "-o", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and said in lines[0] and "a bug in imgclust" not in lines[0]
    assert not (tmp_path / "out").exists()


def test_identical_images_make_one_cluster_and_say_so(tmp_path):
    from imgclust import cluster_images

    root = tmp_path / "same"
    root.mkdir()
    for i in range(5):
        Image.fromarray(np.full((30, 30, 3), 77, np.uint8)).save(root / f"{i}.png")
    for reduce in ("tsne", "umap", "pca"):
        result = cluster_images(
            root, features="colorhist", reduce=reduce, n_clusters=3, cache=False
        )
        assert result.n_clusters == 1
        assert any(
            "found 1 cluster where 3 were asked" in w and "1 distinct feature vector" in w
            for w in result.warnings
        ), result.warnings
        if reduce != "pca":  # -k auto by the BIC maps the rows twice more, at other seeds
            chosen = cluster_images(
                root, features="colorhist", reduce=reduce, k_rule="bic", cache=False
            )
            assert chosen.n_clusters == 1 and "BIC" in chosen.sweep.rule


def test_odd_output_places_are_handled(tmp_path):
    from click.testing import CliRunner

    from imgclust.cli import cli

    folder = _colour_folder(tmp_path / "images")
    long_name = tmp_path / ("r" * 245)  # legal: 255 bytes is the limit of a name
    result = CliRunner().invoke(cli, ["group", str(folder), "-k", "2", "-o", str(long_name), "-q"])
    assert result.exit_code == 0, result.output
    assert (long_name / "assignments.csv").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".r")] == []  # no staging
    taken = tmp_path / "taken"
    (taken / ".imgclust-outputs.json").mkdir(parents=True)  # a folder where the record goes
    result = CliRunner().invoke(
        cli, ["group", str(folder), "-k", "2", "-o", str(taken), "--overwrite"]
    )
    assert result.exit_code == 1 and "is not imgclust's record" in result.output
    assert sorted(p.name for p in taken.iterdir()) == [".imgclust-outputs.json"]


def test_copied_exports_get_the_mode_the_umask_gives(tmp_path):
    import stat

    from click.testing import CliRunner

    from imgclust.cli import cli

    folder = _colour_folder(tmp_path / "images")
    for photo in folder.rglob("*.png"):
        photo.chmod(0o600)  # private photos
    previous = os.umask(0o022)
    try:
        out = tmp_path / "out"
        result = CliRunner().invoke(
            cli, ["group", str(folder), "-k", "2", "--export", "copy", "-o", str(out), "-q"]
        )
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.output
    modes = {stat.S_IMODE(p.stat().st_mode) for p in (out / "clusters").rglob("*.png")}
    assert modes == {0o644}


def test_a_complex_raster_is_one_line(tmp_path):
    values = np.random.default_rng(0).normal(size=(1, 32, 32)) * (1 + 1j)
    scene = _write_scene(tmp_path / "slc.tif", values.astype(np.complex64))
    done = _imgclust("classify", scene, "-k", "3", "-o", tmp_path / "out")
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr.decode()
    assert "holds complex numbers (complex64" in lines[0]


def _cache_folder(cache: Path) -> Path:
    (folder,) = (cache / "features").iterdir()
    return folder


def test_a_damaged_or_planted_cache_never_serves_its_vectors(tmp_path):
    from imgclust import cluster_images

    images = _colour_folder(tmp_path / "images")
    cache = tmp_path / "cache"
    first = cluster_images(images, features="colorhist", n_clusters=2, cache=cache)
    folder = _cache_folder(cache)
    (features_file,) = folder.glob("*.features.npy")
    keys = np.load(features_file.with_name(features_file.name.replace(".features.", ".keys.")))
    # a planted shard with more vectors than the real one, of another width
    planted = np.random.default_rng(0).random((3 * len(keys), 7)).astype(np.float32)
    np.save(folder / "planted.features.npy", planted)
    np.save(folder / "planted.keys.npy", np.concatenate([keys, keys, keys[::-1]]))
    again = cluster_images(images, features="colorhist", n_clusters=2, cache=cache)
    assert again.extraction.cache_hits == len(keys)  # the real shard, not the planted one
    np.testing.assert_array_equal(again.extraction.features, first.extraction.features)
    # NaN in the real shard: those images are read again, not clustered on NaN
    damaged = np.load(features_file)
    damaged[:] = np.nan
    np.save(features_file, damaged)
    third = cluster_images(images, features="colorhist", n_clusters=2, cache=cache)
    assert third.extraction.cache_hits < len(keys)
    np.testing.assert_array_equal(third.extraction.features, first.extraction.features)


def test_a_model_that_gives_nan_is_one_line(tmp_path):
    pytest.importorskip("onnx", reason="the embed extra is not installed")
    pytest.importorskip("onnxruntime", reason="the embed extra is not installed")
    from onnx import TensorProto, helper, numpy_helper

    from tests.test_embed import _save

    weights = numpy_helper.from_array(np.ones((1000, 3), np.float32), "fc.weight")
    minus = numpy_helper.from_array(np.array(-1.0, np.float32), "minus")
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Mul", ["pooled", "minus"], ["negative"]),
        helper.make_node("Sqrt", ["negative"], ["nan"]),  # sqrt of negative: NaN
        helper.make_node("Flatten", ["nan"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc.weight"], ["logits"], transB=1),
    ]
    data = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 16, 16])
    output = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])
    model = _save(tmp_path / "nan.onnx", nodes, [data], output, [weights, minus])
    images = _colour_folder(tmp_path / "images")
    done = _imgclust(
        "group", images, "--features", f"embed:{model}", "-k", "2", "-o", tmp_path / "o"
    )
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr.decode()
    assert "gave NaN or infinite values for 12 of 12 images" in lines[0]


@pytest.mark.parametrize("location", ["/dev/zero", "../outside.data", "fifo.data"])
def test_an_odd_weights_location_is_one_line(tmp_path, location):
    onnx = pytest.importorskip("onnx", reason="the embed extra is not installed")
    pytest.importorskip("onnxruntime", reason="the embed extra is not installed")
    from tests.test_bad_input import _linear_model

    model_path = tmp_path / "models" / "linear.onnx"
    model_path.parent.mkdir()
    _linear_model(model_path, np.eye(3))
    (tmp_path / "outside.data").write_bytes((model_path.parent / "weights.data").read_bytes())
    os.mkfifo(model_path.parent / "fifo.data")
    model = onnx.load(str(model_path), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save(model, str(model_path))
    images = _colour_folder(tmp_path / "images")
    done = _imgclust(
        "group", images, "--features", f"embed:{model_path}", "-k", "2", "-o", tmp_path / "o"
    )
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr.decode()
    assert "weights file" in lines[0] and "Traceback" not in lines[0]


def _listener(speaks: bytes | None):
    """A TCP server on 127.0.0.1 that accepts and then says ``speaks`` (or nothing) and
    waits; the port, and a function that stops it."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    held = []

    def serve():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            held.append(connection)
            if speaks:
                connection.sendall(speaks)

    threading.Thread(target=serve, daemon=True).start()

    def stop():
        server.close()
        for connection in held:
            connection.close()

    return server.getsockname()[1], stop


@pytest.mark.parametrize(
    ("speaks", "said"),
    [(None, "nothing answered within 2 s"), (b"SSH-2.0-OpenSSH_9.2p1\r\n", "said b'SSH-2.0")],
)
def test_a_scheduler_address_where_dask_is_not_is_one_line(tmp_path, monkeypatch, speaks, said):
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    import time

    port, stop = _listener(speaks)
    images = _colour_folder(tmp_path / "images")
    started = time.monotonic()
    monkeypatch.setenv("DASK_IMGCLUST__CONNECT_TIMEOUT", "2s")  # read by the child
    try:
        done = _imgclust(
            "group", images, "-k", "2", "-o", tmp_path / "o", "--scheduler",
            f"tcp://127.0.0.1:{port}", timeout=60,
        )  # fmt: skip
    finally:
        stop()
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr.decode()
    assert "no Dask scheduler answers" in lines[0] and said in lines[0]
    assert time.monotonic() - started < 30


def test_more_local_workers_than_the_machine_can_run_is_one_line(tmp_path):
    from click.testing import CliRunner

    from imgclust.cli import cli

    images = _colour_folder(tmp_path / "images")
    too_many = 4 * (os.cpu_count() or 1) + 1
    result = CliRunner().invoke(
        cli, ["group", str(images), "-k", "2", "-q", "--scheduler", f"local:{too_many}",
              "-o", str(tmp_path / "o")],
    )  # fmt: skip
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and f"local:{too_many} would start" in lines[0]


@pytest.mark.parametrize("export", ["hardlink", "copy"])
def test_a_copy_of_a_group_folder_with_its_exports_is_still_imgclusts(tmp_path, export):
    import shutil

    from click.testing import CliRunner

    from imgclust.cli import cli

    images = _colour_folder(tmp_path / "images")
    out = tmp_path / "groups"
    args = ["group", str(images), "-k", "2", "--export", export, "-q"]
    assert CliRunner().invoke(cli, [*args, "-o", str(out)]).exit_code == 0
    assert len(list((out / "clusters").rglob("*.png"))) == 12
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, copy_function=shutil.copy)  # `cp -r`
    again = CliRunner().invoke(cli, [*args, "-o", str(copy), "--overwrite"])
    assert again.exit_code == 0, again.output
    # an exported copy edited since is the user's: kept, and in the way
    edited = sorted((copy / "clusters" / "0").iterdir())[0]
    if export == "copy":
        edited.write_bytes(edited.read_bytes() + b"\0")
        refused = CliRunner().invoke(cli, [*args, "-o", str(copy), "--overwrite"])
        assert refused.exit_code == 1 and "changed since imgclust wrote it" in refused.output


def test_a_full_disk_while_classifying_is_one_line(tmp_path):
    import resource

    scene = _small_scene(tmp_path, side=512)

    def small_files():  # as `ulimit -f 40`: a write past 40 KiB fails (Python ignores SIGXFSZ)
        resource.setrlimit(resource.RLIMIT_FSIZE, (40 << 10, 40 << 10))

    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "imgclust", "classify", str(scene), "-k", "3", "-o", str(out)],
        capture_output=True, timeout=120, preexec_fn=small_files,
    )  # fmt: skip
    last = done.stderr.decode().strip().splitlines()[-1]
    assert done.returncode == 1 and last.startswith("Error:"), done.stderr.decode()
    assert "a bug in imgclust" not in last and ("disk may be full" in last or "large" in last)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["scene.tif"]


def test_one_image_jobs_take_a_name_that_is_not_utf8(tmp_path):
    from click.testing import CliRunner

    from imgclust.cli import cli

    photo = os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.png")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(photo)
    for command, extra in (("segment", ["-k", "3"]), ("edges", [])):
        out = tmp_path / command
        result = CliRunner().invoke(cli, [command, photo, *extra, "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert "caf\\xe9.png" in (out / "report.html").read_text(encoding="utf-8")
    scene = os.fsdecode(os.fsencode(tmp_path) + b"/sc\xe9ne.tif")
    os.link(_small_scene(tmp_path), scene)
    result = CliRunner().invoke(cli, ["classify", scene, "-k", "3", "-o", str(tmp_path / "c")])
    assert result.exit_code == 1 and "is not UTF-8" in result.output
    assert "sc\\xe9ne.tif" in result.output and "a bug" not in result.output
