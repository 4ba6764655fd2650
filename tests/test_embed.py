"""Image models as people find them, built here with the onnx package in the shapes real files
have: old IR versions that list their weights as inputs, a batch fixed at one, float16 inputs,
class probabilities as the only output, Caffe's BGR preprocessing, NHWC TensorFlow exports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

onnx = pytest.importorskip("onnx", reason="the embed extra (onnx) is not installed")
pytest.importorskip("onnxruntime", reason="the embed extra (onnxruntime) is not installed")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from imgclust.cli import cli  # noqa: E402
from imgclust.collection.features import OnnxEmbedding  # noqa: E402
from imgclust.collection.onnx_model import PRESETS, inspect_model  # noqa: E402
from imgclust.errors import InvalidParameterError  # noqa: E402

SIZE = 16
CLASSES = 1000


def _save(path: Path, nodes, inputs, output, initializers, *, opset=13, ir=8, **extra) -> Path:
    graph = helper.make_graph(nodes, "model", inputs, [output], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], **extra)
    model.ir_version = ir
    onnx.save(model, path)
    return path


def _zoo_classifier(path: Path, *, dtype=TensorProto.FLOAT16, batch=1, producer="onnx-caffe2"):
    """SqueezeNet's head: features (a 1x1 convolution with identity weights, so the embedding
    is the mean of each input channel), a 1x1 convolution to 1,000 classes, global pooling,
    softmax. Batch fixed, float16, weights also listed as inputs (IR 3)."""
    rng = np.random.default_rng(0)
    np_type = np.float16 if dtype == TensorProto.FLOAT16 else np.float32
    weights = {
        "identity": np.eye(3, dtype=np_type).reshape(3, 3, 1, 1),
        "classifier": rng.normal(size=(CLASSES, 3, 1, 1)).astype(np_type),
    }
    initializers = [numpy_helper.from_array(w, name) for name, w in weights.items()]
    data = helper.make_tensor_value_info("data_0", dtype, [batch, 3, SIZE, SIZE])
    weight_inputs = [
        helper.make_tensor_value_info(t.name, dtype, list(t.dims)) for t in initializers
    ]
    nodes = [
        helper.make_node("Conv", ["data_0", "identity"], ["features"]),
        helper.make_node("Dropout", ["features"], ["dropped"]),
        helper.make_node("Conv", ["dropped", "classifier"], ["class_map"]),
        helper.make_node("GlobalAveragePool", ["class_map"], ["pooled"]),
        helper.make_node("Softmax", ["pooled"], ["softmaxout_1"]),
    ]
    output = helper.make_tensor_value_info("softmaxout_1", dtype, [batch, CLASSES, 1, 1])
    return _save(
        path, nodes, [data, *weight_inputs], output, initializers, opset=7, ir=3,
        producer_name=producer,
    )  # fmt: skip


def _torchvision_like(path: Path, *, pin_batch: bool = False):
    """Pool, flatten, Gemm to 1,000 logits (no softmax), any batch; with ``pin_batch`` a
    Reshape to (1, 3) that only a batch of one satisfies."""
    rng = np.random.default_rng(1)
    gemm = rng.normal(size=(CLASSES, 3)).astype(np.float32)
    initializers = [numpy_helper.from_array(gemm, "fc.weight")]
    nodes = [helper.make_node("GlobalAveragePool", ["input"], ["pooled"])]
    if pin_batch:
        initializers.append(numpy_helper.from_array(np.array([1, 3], np.int64), "shape"))
        nodes.append(helper.make_node("Reshape", ["pooled", "shape"], ["flat"]))
        batch = 1
    else:
        nodes.append(helper.make_node("Flatten", ["pooled"], ["flat"]))
        batch = "N"
    nodes.append(helper.make_node("Gemm", ["flat", "fc.weight"], ["logits"], transB=1))
    data = helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, SIZE, SIZE])
    output = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, CLASSES])
    return _save(path, nodes, [data], output, initializers, producer_name="pytorch")


def _tensorflow_like(path: Path):
    """NHWC input, ReduceMean over space, MatMul + bias, softmax: a tf2onnx export."""
    rng = np.random.default_rng(2)
    initializers = [
        numpy_helper.from_array(rng.normal(size=(3, CLASSES)).astype(np.float32), "dense/W"),
        numpy_helper.from_array(np.zeros(CLASSES, np.float32), "dense/b"),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["features"], axes=[1, 2], keepdims=0),
        helper.make_node("MatMul", ["features", "dense/W"], ["dense"]),
        helper.make_node("Add", ["dense", "dense/b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"]),
    ]
    data = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", SIZE, SIZE, 3])
    output = helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", CLASSES])
    return _save(path, nodes, [data], output, initializers, opset=13, producer_name="tf2onnx")


def _image(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))


def _channel_means(image: Image.Image, preset: str) -> np.ndarray:
    """The L2-normalised mean of each channel of ``image`` preprocessed by ``preset``, in the
    order the model takes them."""
    pre = PRESETS[preset]
    pixels = np.asarray(image, dtype=np.float32)
    if pre.order == "BGR":
        pixels = pixels[:, :, ::-1]
    values = (pixels * pre.scale - np.array(pre.mean)) / np.array(pre.std)
    means = values.reshape(-1, 3).mean(axis=0)
    return means / np.linalg.norm(means)


def test_a_zoo_classifier_is_read_as_it_is(tmp_path):
    path = _zoo_classifier(tmp_path / "squeezenet_like.onnx")
    spec = inspect_model(path)
    assert (spec.input_name, spec.layout, spec.height, spec.width) == ("data_0", "nchw", 16, 16)
    assert spec.dtype == np.float16 and spec.batch == 1
    assert spec.embedding == "dropped" and not spec.embedding_is_output  # before the classifier
    assert spec.preset == "caffe" and "onnx-caffe2" in spec.preset_source
    extractor = OnnxEmbedding(path)
    images = [_image(seed) for seed in range(5)]
    vectors = extractor.finish(np.stack([extractor.prepare(i) for i in images]))
    assert vectors.shape == (5, 3)  # the pooled features, not 1,000 class probabilities
    expected = np.stack([_channel_means(i, "caffe") for i in images])
    np.testing.assert_allclose(vectors, expected, atol=2e-3)  # float16 inside the model


def test_a_model_pinned_to_one_image_runs_one_at_a_time(tmp_path):
    path = _torchvision_like(tmp_path / "pinned.onnx", pin_batch=True)
    extractor = OnnxEmbedding(path)
    assert extractor.spec.batch == 1 and extractor.spec.embedding == "flat"
    images = [_image(seed) for seed in range(3)]
    vectors = extractor.finish(np.stack([extractor.prepare(i) for i in images]))
    assert extractor._batch == 1  # a batch of two was tried and refused by the Reshape
    expected = np.stack([_channel_means(i, "imagenet") for i in images])
    np.testing.assert_allclose(vectors, expected, atol=1e-5)


def test_a_torchvision_export_gives_its_features_before_the_classifier(tmp_path):
    path = _torchvision_like(tmp_path / "resnet_like.onnx")
    spec = inspect_model(path)
    assert spec.embedding == "flat" and spec.preset == "imagenet" and spec.batch is None
    extractor = OnnxEmbedding(path)
    images = [_image(seed) for seed in range(40)]  # more than one batch of 32
    vectors = extractor.finish(np.stack([extractor.prepare(i) for i in images]))
    expected = np.stack([_channel_means(i, "imagenet") for i in images])
    np.testing.assert_allclose(vectors, expected, atol=1e-5)


def test_a_tensorflow_export_is_nhwc_with_tf_preprocessing(tmp_path):
    path = _tensorflow_like(tmp_path / "efficientnet_like.onnx")
    spec = inspect_model(path)
    assert spec.layout == "nhwc" and spec.preset == "tf" and spec.embedding == "features"
    extractor = OnnxEmbedding(path)
    images = [_image(seed) for seed in range(3)]
    vectors = extractor.finish(np.stack([extractor.prepare(i) for i in images]))
    expected = np.stack([_channel_means(i, "tf") for i in images])
    np.testing.assert_allclose(vectors, expected, atol=1e-5)


def test_flags_override_what_is_read(tmp_path):
    path = _zoo_classifier(tmp_path / "m.onnx", dtype=TensorProto.FLOAT)
    assert OnnxEmbedding(path, preset="imagenet").spec.preset == "imagenet"
    logits = OnnxEmbedding(path, layer="class_map")
    assert logits.spec.embedding == "class_map"
    image = _image(0)
    assert logits.finish(logits.prepare(image)[None]).shape == (1, CLASSES)
    with pytest.raises(InvalidParameterError, match="no tensor named 'nope'"):
        OnnxEmbedding(path, layer="nope")
    with pytest.raises(InvalidParameterError, match="unknown preprocessing"):
        OnnxEmbedding(path, preset="opencv")


def test_preprocessing_from_the_models_metadata(tmp_path):
    path = _torchvision_like(tmp_path / "m.onnx")
    model = onnx.load(path)
    helper.set_model_props(model, {"Image.BitmapPixelFormat": "Bgr8"})  # Windows ML's key
    onnx.save(model, path)
    assert inspect_model(path).preset == "caffe"
    helper.set_model_props(model, {"imgclust.preprocessing": "tf"})
    onnx.save(model, path)
    assert (inspect_model(path).preset, inspect_model(path).preset_source) == (
        "tf",
        "the model's metadata",
    )


def test_a_model_without_an_image_input_is_one_line(tmp_path, colour_folder):
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 10])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])
    path = _save(tmp_path / "tabular.onnx", nodes, [x], y, [])
    result = CliRunner().invoke(
        cli, ["group", str(colour_folder), "--features", f"embed:{path}", "-k", "3",
              "-o", str(tmp_path / "o")],
    )  # fmt: skip
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "one image input of shape (N, 3, H, W)" in result.output
    assert "found inputs: x [None, 10]" in result.output


def test_group_with_a_zoo_model_as_it_is(tmp_path, colour_folder):
    path = _zoo_classifier(tmp_path / "squeezenet_like.onnx")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["group", str(colour_folder), "--features", f"embed:{path}", "--reduce", "none",
              "-k", "3", "--labels", "folders", "--no-cache", "-o", str(out), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    import json

    summary = json.loads(result.output)
    assert summary["evaluation"]["accuracy_majority"] == 1.0  # three flat colours


# --- named models -------------------------------------------------------------------------


class _Server:
    """A file server on 127.0.0.1 that counts its requests."""

    def __init__(self, folder: Path) -> None:
        import functools
        import threading
        from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[str] = []
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append(self.path)
                super().do_GET()

        self.httpd = ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder))
        )
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_named_model_is_downloaded_once_and_checked(served_model, colour_folder, tmp_path):
    from contextlib import contextmanager

    from imgclust.collection.features import make_extractor
    from imgclust.collection.model_zoo import model_path

    server, model = served_model
    advanced = []

    @contextmanager
    def progress(message, total):
        yield lambda n=1: advanced.append(n)

    extractor = make_extractor("embed:tiny", progress=progress)
    assert extractor.spec.preset == "caffe"  # the registry's, not the default
    assert extractor.model.parent == tmp_path / ".feature-cache" / "models"
    assert sum(advanced) == model.size and server.requests == ["/tiny.onnx"]
    assert model_path("tiny") == extractor.model and len(server.requests) == 1  # cached
    result = CliRunner().invoke(
        cli, ["group", str(colour_folder), "--features", "embed:tiny", "-k", "3", "--no-cache",
              "--reduce", "none", "--labels", "folders", "-o", str(tmp_path / "o"), "-q"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(server.requests) == 1
    assert sorted(p.name for p in extractor.model.parent.iterdir()) == ["tiny.onnx"]  # no .part


def test_a_download_with_the_wrong_digest_is_refused(served_model, monkeypatch):
    from imgclust.collection import model_zoo

    _, model = served_model
    wrong = model_zoo.NamedModel(**{**vars(model), "digest": "sha256:" + "0" * 64})
    monkeypatch.setitem(model_zoo.MODELS, "tiny", wrong)
    with pytest.raises(InvalidParameterError, match="is not the published tiny"):
        model_zoo.model_path("tiny")
    assert not (model_zoo._models_cache() / "tiny.onnx").exists()
    assert not list(model_zoo._models_cache().iterdir())  # no partial file left


def test_offline_says_which_file_to_put_where(served_model, tmp_path, monkeypatch, colour_folder):
    from imgclust.collection import model_zoo

    server, model = served_model
    server.stop()
    result = CliRunner().invoke(
        cli, ["group", str(colour_folder), "--features", "embed:tiny", "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"download {model.url}" in result.output
    assert str(model_zoo._models_cache() / "tiny.onnx") in result.output
    # the file put by hand into $IMGCLUST_MODELS_DIR is used, offline
    local = tmp_path / "by-hand"
    local.mkdir()
    (local / "tiny.onnx").write_bytes((tmp_path / "published" / "tiny.onnx").read_bytes())
    monkeypatch.setenv(model_zoo.MODELS_DIR_ENV, str(local))
    assert model_zoo.model_path("tiny") == local / "tiny.onnx"
    (local / "tiny.onnx").write_bytes(b"not the model")
    with pytest.raises(InvalidParameterError, match="is not the published tiny"):
        model_zoo.model_path("tiny")


def test_the_registry_names_published_files_with_digests():
    from imgclust.collection.model_zoo import MODELS
    from imgclust.collection.onnx_model import PRESETS

    assert {"mobilenetv2", "resnet50", "efficientnet-lite4", "clip-vit-b32"} <= set(MODELS)
    for name, model in MODELS.items():
        algorithm, _, value = model.digest.partition(":")
        assert name == model.name and model.url.startswith("https://")
        assert (algorithm, len(value)) in (("sha256", 64), ("md5", 32)), name
        assert int(value, 16) >= 0 and model.preset in PRESETS
    assert len({m.file for m in MODELS.values()}) == len(MODELS)
    with pytest.raises(InvalidParameterError, match="the named models are: mobilenetv2"):
        from imgclust.collection.model_zoo import model_path

        model_path("vgg-giant")


def test_assign_with_a_saved_model_of_embeddings(tmp_path, colour_folder):
    path = _zoo_classifier(tmp_path / "squeezenet_like.onnx")
    out = tmp_path / "groups"
    runner = CliRunner()
    args = ["--features", f"embed:{path}", "--embed-preset", "imagenet", "-k", "3"]
    made = runner.invoke(
        cli, ["group", str(colour_folder), *args, "--no-cache", "--save-model", "-o", str(out)]
    )
    assert made.exit_code == 0, made.output
    assigned = runner.invoke(
        cli, ["assign", str(out / "model"), str(colour_folder), "-o", str(tmp_path / "a"), "--json"]
    )
    assert assigned.exit_code == 0, assigned.output
    # the same preprocessing (the preset given) and layer, reused
    assert_assigned_as_grouped(out, tmp_path / "a", colour_folder)


def assert_assigned_as_grouped(grouped_out: Path, assigned_out: Path, folder: Path) -> None:
    """``assign``'s clusters of the images of ``folder`` are those ``group`` gave them."""
    import csv

    with open(grouped_out / "assignments.csv", newline="") as handle:
        grouped = {r["path"]: r["cluster"] for r in csv.DictReader(handle)}
    with open(assigned_out / "assignments.csv", newline="") as handle:
        again = {Path(r["path"]).relative_to(folder).as_posix(): r["cluster"]
                 for r in csv.DictReader(handle)}  # fmt: skip
    assert again == grouped
