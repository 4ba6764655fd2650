"""Bad numbers, damaged files and odd requests: one line and a non-zero exit, never a
traceback or a silent nonsense result; no crash at exit; a cache that never serves stale
features."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from imgclust.cli import cli
from imgclust.errors import InvalidParameterError

rasterio = pytest.importorskip("rasterio", reason="the raster extra (rasterio) is not installed")
from tests.test_raster import _planted, _write  # noqa: E402


def _run(*args, **kwargs):
    return CliRunner().invoke(cli, [str(a) for a in args], **kwargs)


def _one_line_error(result, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("Error:"), result.output
    return lines[-1]


def _strict_json(path: Path):
    """Parse as RFC 8259 JSON: NaN and Infinity are refused."""

    def refuse(constant):
        raise AssertionError(f"{path.name} holds {constant}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "images"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        colour = (200, 40, 40) if i % 2 else (40, 40, 200)
        pixels = np.clip(np.array(colour) + rng.integers(-12, 13, (16, 16, 3)), 0, 255)
        Image.fromarray(pixels.astype(np.uint8)).save(root / f"img{i:02d}.png")
    return root


# --- non-finite and out-of-range numbers -----------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "bad"), [(np.float32, np.inf), (np.float32, -np.inf), (np.float64, 1e39)]
)
def test_non_finite_or_huge_raster_values_are_nodata_not_one_class(tmp_path, dtype, bad):
    bands, truth, nodata = _planted(seed=2)
    values = bands.astype(dtype)
    broken = np.zeros(truth.shape, dtype=bool)
    broken[30:33, 40:44] = True  # a dozen pixels, in every class's reach
    values[1, broken] = bad
    path = _write(tmp_path / "scene.tif", values)
    out = tmp_path / "out"
    result = _run("classify", path, "-k", 4, "-o", out, "--no-report", "--json")
    assert result.exit_code == 0, result.output
    with rasterio.open(out / "classes.tif") as src:
        codes = src.read(1)
    assert (codes[broken] == 0).all()  # left out, as nodata
    assert len(np.unique(codes[~broken & ~nodata])) == 4  # not everything in class 1
    for name in ("model.json", "classes.json"):
        _strict_json(out / name)
    summary = json.loads(result.output)
    assert summary["nodata_pixels"] == int(nodata.sum() + broken.sum())


def test_a_model_with_an_unknown_inertia_round_trips(tmp_path):
    from imgclust.raster.classify import classify_raster
    from imgclust.raster.model import RasterModel

    bands, _, _ = _planted()
    path = _write(tmp_path / "scene.tif", bands)
    fitted = classify_raster(path, tmp_path / "out", 4, report=False)
    fitted.model.inertia = float("nan")
    fitted.model.save(tmp_path / "model.json")
    assert _strict_json(tmp_path / "model.json")["inertia"] is None
    assert np.isnan(RasterModel.load(tmp_path / "model.json").inertia)


@pytest.mark.parametrize("value", ["inf", "nan", "-1"])
def test_spatial_and_tol_must_be_finite(tmp_path, value):
    image = tmp_path / "x.png"
    Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3)).save(image)
    for option in ("--spatial", "--tol"):
        result = _run("segment", image, "-k", 2, option, value, "-o", tmp_path / "o")
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert not (tmp_path / "o").exists()
    from imgclust import segment

    with pytest.raises(InvalidParameterError, match="finite"):
        segment(np.zeros((4, 4, 3), np.uint8), 1, spatial=float(value))


def test_npy_images_with_nan_or_inf_are_skipped_and_reported(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.random((10, 8, 8)).astype(np.float32)
    images[:5] += 2.0  # two groups
    images[3, 2, 2] = np.nan
    images[7, 0, 0] = np.inf
    path = tmp_path / "images.npy"
    np.save(path, images)
    out = tmp_path / "out"
    result = _run("group", path, "-k", 2, "--reduce", "none", "-o", out, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["images"] == 10 and summary["skipped"] == 2
    skipped = (out / "skipped.csv").read_text()
    assert "3,holds NaN or infinite values" in skipped and "7,holds NaN" in skipped
    for name in ("clusters.json",):
        _strict_json(out / name)


# --- tracebacks instead of one line ----------------------------------------------------------


@pytest.mark.parametrize("command", ["segment", "group", "classify"])
def test_a_seed_past_two_to_the_32_is_a_usage_error(tmp_path, folder, command):
    target = folder if command == "group" else folder / "img00.png"
    result = _run(command, target, "--seed", 2**32, "-o", tmp_path / "o")
    assert result.exit_code == 2 and "0<=x<=4294967295" in result.output
    assert "Traceback" not in result.output


def test_a_seed_out_of_range_in_the_library_is_a_clear_error():
    from imgclust import KMeans
    from imgclust.cluster.engine import fit_kmeans

    with pytest.raises(ValueError, match="random_state"):  # scikit-learn's own check
        KMeans(2, random_state=2**32).fit(np.arange(20.0).reshape(10, 2))
    X = np.arange(20.0).reshape(10, 2)
    with pytest.raises(InvalidParameterError, match=r"2\*\*32 - 1"):
        fit_kmeans(X, np.ones(10), 2, random_state=2**32)


@pytest.fixture
def saved_model(tmp_path, folder) -> Path:
    out = tmp_path / "groups"
    args = ["-k", 2, "--reduce", "pca", "--no-cache", "--save-model", "-q", "-o", out]
    assert _run("group", folder, *args).exit_code == 0
    return out / "model"


@pytest.mark.parametrize(
    "damage",
    [
        lambda m: (m / "model.npz").write_bytes((m / "model.npz").read_bytes()[:200]),
        lambda m: (m / "model.npz").write_bytes(b"PK\x03\x04" + b"\x00" * 100),
        lambda m: np.savez(m / "model.npz", centers=np.array(["a", "b"])),
        lambda m: np.savez(m / "model.npz", other=np.zeros(3)),
        lambda m: _edit_json(m / "model.json", lambda d: d.pop("method")),
        lambda m: _edit_json(m / "model.json", lambda d: d.update(features=3)),
        lambda m: _edit_json(m / "model.json", lambda d: d["features"].update(settings=[1])),
        lambda m: _edit_json(m / "model.json", lambda d: d.update(n_clusters="two")),
        lambda m: _edit_json(m / "model.json", lambda d: d["features"].update(name="x")),
        lambda m: (m / "model.json").write_text("[" * 100_000),
        # sizes that would take all memory before anything else failed (issue 30)
        lambda m: _edit_json(m / "model.json", lambda d: _settings(d).update(size=10**9)),
        lambda m: _edit_json(m / "model.json", lambda d: _settings(d).update(size=1e400)),
        lambda m: _edit_json(m / "model.json", lambda d: _settings(d).update(bins=[10**6, 4, 4])),
    ],
)
def test_a_damaged_group_model_is_one_line(tmp_path, folder, saved_model, damage):
    damage(saved_model)
    result = _run("assign", saved_model, folder, "-o", tmp_path / "assigned")
    line = _one_line_error(result)
    assert str(saved_model) in line
    assert not (tmp_path / "assigned").exists()


def _settings(description: dict) -> dict:
    return description["features"]["settings"]


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.pop("centers"),
        lambda d: d.update(centers="many"),
        lambda d: d.update(colors=5),
        lambda d: d.update(features={"bands": ["x"]}),
        lambda d: d["features"].update(mean=None),
        lambda d: d["features"].update(scale=[0.0] * len(d["features"]["scale"])),
        lambda d: d.update(inertia="high"),
    ],
)
def test_a_damaged_raster_model_is_one_line(tmp_path, damage):
    bands, _, _ = _planted()
    path = _write(tmp_path / "scene.tif", bands)
    first = _run("classify", path, "-k", 3, "-o", tmp_path / "a", "--no-report", "-q")
    assert first.exit_code == 0
    _edit_json(tmp_path / "a" / "model.json", damage)
    result = _run("classify", path, "--model", tmp_path / "a" / "model.json", "-o", tmp_path / "b")
    assert "model.json" in _one_line_error(result)
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    "damage",
    [
        lambda f: (f / "representatives.npz").write_bytes(b"PK\x03\x04 damaged"),
        lambda f: (f / "representatives.npz").write_bytes(
            (f / "representatives.npz").read_bytes()[:300]
        ),
        lambda f: np.savez(f / "representatives.npz", ids=np.array(["a"])),
    ],
)
def test_a_damaged_representatives_file_is_one_line(tmp_path, folder, damage):
    reps = tmp_path / "reps"
    args = ["-k", 4, "--reduce", "pca", "--no-cache", "-q", "-o", reps]
    assert _run("representatives", folder, *args).exit_code == 0
    rows = (reps / "to_label.csv").read_text().splitlines()[1:]
    labels = "path,label\n" + "".join(f"{r.split(',')[0]},c{i % 2}\n" for i, r in enumerate(rows))
    (reps / "labels.csv").write_text(labels)
    damage(reps)
    line = _one_line_error(_run("propagate", reps))
    assert "representatives" in line and not (reps / "propagated.csv").exists()


def test_grouping_one_image_is_one_line(tmp_path, folder):
    one = tmp_path / "one"
    one.mkdir()
    (folder / "img00.png").rename(one / "img00.png")
    for method in ("kmeans", "agglomerative", "hdbscan"):
        result = _run(
            "group", one, "-k", 1, "--reduce", "none", "--method", method, "-o", tmp_path / "o"
        )
        assert "at least 2 images" in _one_line_error(result)
    assert not (tmp_path / "o").exists()


def test_an_unexpected_error_is_one_line_and_debug_shows_it(tmp_path, folder, monkeypatch):
    import imgclust.collection.jobs as jobs

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(jobs, "cluster_images", bug)
    result = _run("group", folder, "-o", tmp_path / "o")
    assert "unexpected ZeroDivisionError: a bug" in _one_line_error(result)
    monkeypatch.setenv("IMGCLUST_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        _run("group", folder, "-o", tmp_path / "o", catch_exceptions=False)


# --- no crash at exit, no thread left behind ---------------------------------------------------


def test_a_first_run_on_an_empty_compile_cache_exits_0(tmp_path):
    bands, _, _ = _planted()
    path = _write(tmp_path / "scene.tif", bands)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    done = subprocess.run(
        [sys.executable, "-m", "imgclust", "classify", str(path), "-k", "4", "-q",
         "-o", str(tmp_path / "out")],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stderr == "" and (tmp_path / "out" / "classes.tif").exists()


def test_jobs_leave_no_thread_running(tmp_path, folder):
    from imgclust.collection.jobs import run_group
    from imgclust.pixels.jobs import run_segment
    from imgclust.raster.classify import classify_raster

    before = set(threading.enumerate())
    bands, _, _ = _planted()
    classify_raster(_write(tmp_path / "scene.tif", bands), tmp_path / "c", 3)
    run_segment(folder / "img00.png", tmp_path / "s", n_clusters=2)
    run_group(folder, tmp_path / "g", n_clusters=2, reduce="pca", cache=False)
    assert set(threading.enumerate()) <= before


# --- quiet means quiet -----------------------------------------------------------------------


def test_quiet_silences_the_libraries_warnings(tmp_path):
    bands, _, _ = _planted()
    path = _write(tmp_path / "scene.tif", bands, crs=None, transform=None)  # rasterio warned
    env = {**os.environ, "PYTHONWARNINGS": "always"}  # every warning a library raises

    def classify(*extra):
        return subprocess.run(
            [sys.executable, "-m", "imgclust", "classify", str(path), "-k", "3", "--no-report",
             "--overwrite", "-o", str(tmp_path / "out"), *extra],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    loud = classify("--json")
    # a picture without georeferencing is handled, not warned about (issue 32)
    assert loud.returncode == 0 and "NotGeoreferencedWarning" not in loud.stderr
    quiet = classify("-q")
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == ""


# --- the feature cache ---------------------------------------------------------------------


def _linear_model(path: Path, weights: np.ndarray) -> None:
    """An ONNX model (mean colour times ``weights``) with its weights in an external file,
    as torch.onnx.export saves large models."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("MatMul", ["flat", "weights"], ["embedding"]),
        ],
        "linear",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 3, 16, 16])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [None, 3])],
        initializer=[numpy_helper.from_array(weights.astype(np.float32), "weights")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path, save_as_external_data=True, location="weights.data", size_threshold=0)


def test_the_cache_key_covers_an_onnx_models_external_weights(tmp_path, folder):
    from imgclust import cluster_images

    model = tmp_path / "linear.onnx"
    options = {
        "features": f"embed:{model}",
        "feature_options": {"input_size": 16},
        "reduce": "none",
        "n_clusters": 2,
    }
    _linear_model(model, np.eye(3))
    assert (tmp_path / "weights.data").exists()
    first = cluster_images(folder, cache=tmp_path / "cache", **options)
    onnx_bytes = model.read_bytes()
    permuted = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=np.float32)
    (tmp_path / "weights.data").write_bytes(permuted.tobytes())  # new weights in place
    assert model.read_bytes() == onnx_bytes  # the .onnx file itself did not change
    cached = cluster_images(folder, cache=tmp_path / "cache", **options)
    fresh = cluster_images(folder, cache=False, **options)
    np.testing.assert_allclose(cached.extraction.features, fresh.extraction.features)
    assert not np.allclose(cached.extraction.features, first.extraction.features)
    assert cached.extraction.cache_hits == 0


# --- Pillow's own size limit does not override --max-pixels ---------------------------------


def test_max_pixels_is_the_limit_not_pillows(tmp_path, folder):
    from PIL import Image as PILImage

    big = PILImage.new("L", (14_000, 13_000), 128)  # 182 MP: past Pillow's 179 MP error limit
    big.save(folder / "big.jpg", quality=50)
    del big
    limit_before = PILImage.MAX_IMAGE_PIXELS
    allowed = _run(
        "group", folder, "--max-pixels", 300_000_000, "-k", 2, "--reduce", "pca", "--no-cache",
        "-o", tmp_path / "a", "--json",
    )  # fmt: skip
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(allowed.output)["skipped"] == 0
    refused = _run(
        "group", folder, "--max-pixels", 100_000_000, "-k", 2, "--reduce", "pca", "--no-cache",
        "-o", tmp_path / "b", "--json",
    )  # fmt: skip
    assert json.loads(refused.output)["skipped"] == 1
    assert "more than the limit of 100,000,000" in (tmp_path / "b" / "skipped.csv").read_text()
    assert limit_before == PILImage.MAX_IMAGE_PIXELS  # Pillow's own setting is put back
