"""Classify and group on a real Dask cluster (two worker processes on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import signal
from contextlib import contextmanager

import numpy as np
import pytest

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
rasterio = pytest.importorskip("rasterio", reason="the raster extra (rasterio) is not installed")
from click.testing import CliRunner  # noqa: E402
from PIL import Image  # noqa: E402

import imgclust.raster.classify as classify_module  # noqa: E402
from imgclust.cli import cli  # noqa: E402
from imgclust.collection.group import cluster_images  # noqa: E402
from imgclust.distributed import SCHEDULER_ENV, dask_client  # noqa: E402
from imgclust.errors import InvalidParameterError, MissingDependencyError  # noqa: E402
from imgclust.raster.classify import classify_raster  # noqa: E402
from tests.test_raster import _planted, _write  # noqa: E402


@pytest.fixture(scope="module")
def client():
    """``--scheduler local:2``: a local cluster of two worker processes."""
    with dask_client("local:2") as client:
        yield client


@pytest.fixture
def many_strips(monkeypatch):
    """Strips of a few rows, and sampling windows of a few strips of the file, so that a small
    scene is many tasks of both passes."""
    monkeypatch.setattr(classify_module, "DEFAULT_BLOCK_PIXELS", 2_000)
    monkeypatch.setattr(classify_module, "SAMPLE_WINDOW_PIXELS", 2_000)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    bands, _, _ = _planted(height=240, width=200, seed=1)
    return _write(tmp_path_factory.mktemp("scene") / "scene.tif", bands)


def _codes(folder):
    with rasterio.open(folder / "classes.tif") as src:
        return src.read(1), src.profile


def _comparable(summary: dict) -> str:
    kept = {k: v for k, v in summary.items() if k not in ("timings", "dask", "output", "report")}
    return json.dumps(kept, sort_keys=True, default=str)


def _assert_same_classification(local, remote) -> None:
    codes, profile = _codes(local.output)
    remote_codes, remote_profile = _codes(remote.output)
    assert np.array_equal(codes, remote_codes)
    assert profile["transform"] == remote_profile["transform"]
    assert profile["crs"] == remote_profile["crs"]
    assert _comparable(local.summary) == _comparable(remote.summary)
    np.testing.assert_array_equal(local.model.centers, remote.model.centers)
    for name in ("classes.csv", "quicklook.png", "classes.png"):
        assert (local.output / name).read_bytes() == (remote.output / name).read_bytes(), name


def test_classify_on_the_cluster_is_the_local_result(client, scene, tmp_path, many_strips):
    local = classify_raster(scene, tmp_path / "local", 4, random_state=3, sample_size=5_000)
    remote = classify_raster(
        scene, tmp_path / "remote", 4, random_state=3, sample_size=5_000, scheduler=client
    )
    with classify_module.BandStack(scene) as stack:  # really many tasks
        assert len(stack.windows(2_000)) > 20 and len(stack.sample_windows(2_000)) > 20
    _assert_same_classification(local, remote)
    assert remote.summary["dask"]["workers"] == 2 and "dask" not in local.summary


@pytest.fixture
def own_client():
    """A cluster of its own, for a test that kills one of its workers: the other tests must
    not find a cluster that is still replacing a worker."""
    with dask_client("local:2") as client:
        yield client


def test_a_worker_killed_mid_run_is_survived(own_client, scene, tmp_path, many_strips):
    client = own_client
    local = classify_raster(scene, tmp_path / "local", 4, random_state=5, sample_size=5_000)
    pids = client.run(os.getpid)
    killed = []

    @contextmanager
    def kill_on_tenth_strip(message, total):
        done = [0]

        def advance(n=1):
            done[0] += n
            if message == "classifying" and done[0] == 10:
                victim = sorted(pids.values())[0]
                os.kill(victim, signal.SIGKILL)
                killed.append((victim, total))

        yield advance

    remote = classify_raster(
        scene,
        tmp_path / "remote",
        4,
        random_state=5,
        sample_size=5_000,
        scheduler=client,
        progress=kill_on_tenth_strip,
    )
    victim, total = killed[0]
    assert total > 10  # it was killed with strips still to classify
    client.wait_for_workers(2, timeout=60)
    assert victim not in client.run(os.getpid).values()  # the nanny started a new one
    _assert_same_classification(local, remote)


def _image_folder(root):
    rng = np.random.default_rng(0)
    colours = np.array([[220, 30, 30], [30, 180, 40], [40, 40, 230]])
    for i in range(90):
        image = np.clip(colours[i % 3] + rng.normal(0, 25, (20, 20, 3)), 0, 255)
        Image.fromarray(image.astype(np.uint8)).save(root / f"image{i:03d}.png")
    (root / "broken.png").write_text("not an image")
    return root


def test_group_on_the_cluster_is_the_local_result(client, tmp_path):
    folder = _image_folder(tmp_path)
    options = {"reduce": "pca", "n_clusters": 3, "cache": False, "random_state": 0}
    local = cluster_images(folder, **options)
    remote = cluster_images(folder, **options, scheduler=client)
    assert np.array_equal(local.extraction.features, remote.extraction.features)
    assert np.array_equal(local.extraction.kept, remote.extraction.kept)
    assert (
        remote.extraction.skipped
        == local.extraction.skipped
        == [("broken.png", "not an image file that can be read")]
    )
    assert np.array_equal(local.labels, remote.labels)
    assert np.array_equal(local.distances, remote.distances)


def test_a_large_extraction_spreads_over_the_workers_into_the_same_matrix(
    client, tmp_path, monkeypatch
):
    """Many chunks, the feature matrix on disk and the cache: every worker takes chunks, and
    the rows, their order and the cache's content are those of a run here."""
    from imgclust.collection import extract
    from imgclust.collection.extract import FeatureCache, extract_features
    from imgclust.collection.features import HogFeatures
    from imgclust.collection.sources import open_source

    rng = np.random.default_rng(1)
    for i in range(400):
        grey = rng.integers(0, 256, (16, 16), dtype=np.uint8)
        Image.fromarray(grey).save(tmp_path / f"{i:04d}.png")
    (tmp_path / "0100.png").write_text("not an image")
    source = open_source(tmp_path)
    extractor = HogFeatures(size=16, pixels_per_cell=4, orientations=12, root=True)
    monkeypatch.setattr(extract, "MEMORY_BYTES", 4096)
    local = extract_features(source, extractor, chunk_size=20)
    with distributed.get_task_stream(client) as tasks:
        remote = extract_features(
            source,
            extractor,
            chunk_size=20,
            client=client,
            cache=FeatureCache(tmp_path.parent / "cache", extractor),
        )
    workers = {task["worker"] for task in tasks.data if "_extract" in str(task["key"])}
    assert len(workers) == 2
    assert isinstance(remote.features, np.memmap)
    np.testing.assert_array_equal(remote.features, local.features)
    np.testing.assert_array_equal(remote.kept, local.kept)
    assert remote.skipped == local.skipped and len(local.features) == 399
    cached = extract_features(
        source, extractor, cache=FeatureCache(tmp_path.parent / "cache", extractor)
    )
    assert cached.cache_hits == 399
    np.testing.assert_array_equal(cached.features, local.features)


def test_group_command_takes_the_scheduler_from_the_environment(client, tmp_path, monkeypatch):
    (tmp_path / "images").mkdir()
    _image_folder(tmp_path / "images")
    monkeypatch.chdir(tmp_path)  # a relative folder, as people type it
    runner = CliRunner()
    args = ["group", "images", "-k", "3", "--reduce", "pca", "--no-cache", "--no-report"]
    here = runner.invoke(cli, [*args, "-o", str(tmp_path / "here")], catch_exceptions=False)
    there = runner.invoke(
        cli,
        [*args, "-o", str(tmp_path / "there")],
        env={SCHEDULER_ENV: client.scheduler.address},
        catch_exceptions=False,
    )
    assert here.exit_code == there.exit_code == 0, there.output
    assert "dask" in there.output and "2 workers" in there.output
    assert "dask" not in here.output
    local = (tmp_path / "here" / "assignments.csv").read_text()
    assert local == (tmp_path / "there" / "assignments.csv").read_text()


@pytest.mark.parametrize(
    ("scheduler", "message"),
    [
        ("local:0", "give local:N"),
        ("local:many", "give local:N"),
        ("somehost:8786", "is not a Dask address"),
    ],
)
def test_bad_scheduler_is_one_clear_error(scheduler, message):
    with pytest.raises(InvalidParameterError, match=message), dask_client(scheduler):
        pass


def test_unreachable_scheduler_says_how_to_start_one():
    import dask

    with (
        dask.config.set({"imgclust.connect-timeout": "1s"}),
        pytest.raises(InvalidParameterError, match="start one with 'dask scheduler'"),
        dask_client("tcp://127.0.0.1:9"),
    ):
        pass


def test_missing_dask_names_the_extra(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "distributed", None)
    with pytest.raises(MissingDependencyError, match=r"imgclust\[dask\]"), dask_client("local:2"):
        pass


def test_the_command_line_reports_a_bad_scheduler_in_one_line(scene, tmp_path):
    result = CliRunner().invoke(
        cli, ["classify", str(scene), "-o", str(tmp_path / "out"), "--scheduler", "local:0"]
    )
    assert result.exit_code != 0
    assert "give local:N" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_python_m_imgclust_starts_its_own_local_cluster(scene, tmp_path):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "imgclust", "classify", str(scene), "-k", "4", "--no-report",
         "-o", str(tmp_path / "out"), "--scheduler", "local:1", "--json"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["dask"]["workers"] == 1 and summary["dask"]["scheduler"].startswith("tcp://")
    local = classify_raster(scene, tmp_path / "local", 4, report=False)
    assert np.array_equal(_codes(tmp_path / "out")[0], _codes(local.output)[0])
