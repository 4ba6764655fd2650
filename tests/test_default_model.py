"""Photos grouped by what they show with no flags: the default image model, pinned by a setting,
downloaded once from a server on 127.0.0.1, or missing (offline, no network, a download cut
short), when colour and texture stand in with one warning. Nothing is downloaded from outside:
the models are built here with the onnx package (``test_embed``'s helpers)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("onnx", reason="the embed extra (onnx) is not installed")
pytest.importorskip("onnxruntime", reason="the embed extra (onnxruntime) is not installed")

from imgclust.cli import cli
from imgclust.collection import model_zoo
from imgclust.collection.group import cluster_images
from imgclust.errors import InvalidParameterError
from tests.test_embed import _zoo_classifier, assert_assigned_as_grouped


def _group(folder: Path, out: Path, *args: str):
    return CliRunner().invoke(
        cli, ["group", str(folder), "-k", "3", "--labels", "folders", "-o", str(out), *args]
    )


@pytest.fixture
def online(monkeypatch):
    """Downloads allowed (from the test's own 127.0.0.1 server only)."""
    monkeypatch.delenv(model_zoo.OFFLINE_ENV, raising=False)


@pytest.fixture
def tiny(served_model, monkeypatch):
    """``test_embed``'s small model published on 127.0.0.1 as ``tiny``, made the default;
    offline again (a test asks for ``online`` to download)."""
    monkeypatch.setattr(model_zoo, "DEFAULT_MODEL", "tiny")
    monkeypatch.setenv(model_zoo.OFFLINE_ENV, "1")
    return served_model


def test_photos_are_grouped_by_the_model_the_environment_pins(tmp_path, colour_folder, monkeypatch):
    path = _zoo_classifier(tmp_path / "squeezenet_like.onnx")
    monkeypatch.setenv(model_zoo.DEFAULT_MODEL_ENV, str(path))
    out = tmp_path / "out"
    result = _group(colour_folder, out, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["parameters"]["features"].startswith("embed (squeezenet_like.onnx")
    assert "$IMGCLUST_DEFAULT_MODEL" in summary["parameters"]["features"]
    assert summary["evaluation"]["accuracy_majority"] == 1.0  # three flat colours
    assert "warnings" not in summary
    written = json.loads((out / "clusters.json").read_text())
    assert "auto: colour photos, grouped by what they show" in written["parameters"]["features"]
    assert "$IMGCLUST_DEFAULT_MODEL" in (out / "report.html").read_text()


def test_the_python_setting_wins_over_the_environment(tmp_path, colour_folder, monkeypatch):
    monkeypatch.setenv(model_zoo.DEFAULT_MODEL_ENV, str(tmp_path / "absent.onnx"))
    with pytest.raises(InvalidParameterError, match=r"absent.onnx.*IMGCLUST_DEFAULT_MODEL"):
        cluster_images(colour_folder, n_clusters=3, cache=False)
    model_zoo.set_default_model(_zoo_classifier(tmp_path / "m.onnx"))
    result = cluster_images(colour_folder, n_clusters=3, cache=False)
    assert result.extractor.name == "embed" and "set_default_model" in result.extractor.chosen
    model_zoo.set_default_model(None)
    assert model_zoo.default_model() == (str(tmp_path / "absent.onnx"), "$IMGCLUST_DEFAULT_MODEL")
    with pytest.raises(InvalidParameterError):
        model_zoo.set_default_model("  ")


def test_a_wrong_pinned_default_is_one_line(tmp_path, colour_folder, monkeypatch):
    monkeypatch.setenv(model_zoo.DEFAULT_MODEL_ENV, "vgg-giant")
    result = _group(colour_folder, tmp_path / "out")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "vgg-giant" in result.output and "$IMGCLUST_DEFAULT_MODEL" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_the_default_model_is_downloaded_once_saying_what(tmp_path, colour_folder, tiny, online):
    server, model = tiny
    cached = model_zoo._models_cache() / "tiny.onnx"
    first = _group(colour_folder, tmp_path / "a", "--json")
    assert first.exit_code == 0, first.output
    line = [t for t in first.stderr.splitlines() if t.startswith("downloading tiny")]
    assert len(line) == 1, first.stderr
    assert server.url("tiny.onnx") in line[0] and str(cached) in line[0]
    assert f"({model.size / 1e6:.1f} MB)" in line[0]
    assert server.requests == ["/tiny.onnx"] and cached.is_file()
    summary = json.loads(first.stdout)
    assert summary["parameters"]["features"].startswith("embed (tiny.onnx")
    assert "the default image model" in summary["parameters"]["features"]
    assert "warnings" not in summary
    again = _group(colour_folder, tmp_path / "b", "--json")
    assert again.exit_code == 0 and "downloading" not in again.stderr
    assert server.requests == ["/tiny.onnx"]  # kept, not fetched again
    assert sorted(p.name for p in cached.parent.iterdir()) == ["tiny.onnx"]


def test_quiet_keeps_the_download_line_to_itself(tmp_path, colour_folder, tiny, online):
    result = _group(colour_folder, tmp_path / "a", "-q")
    assert result.exit_code == 0, result.output
    assert result.output == "" and tiny[0].requests == ["/tiny.onnx"]


def _fallback_checks(result, folder: Path, tmp_path: Path, *reasons: str) -> dict:
    """The run went on with colour and texture, said so in one warning line that says how to
    get the model, and kept nothing partial."""
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["parameters"]["features"].startswith("colortexture")
    (warning,) = summary["warnings"]
    assert "\n" not in warning and "colour and texture" in warning
    assert "download http" in warning and "tiny.onnx" in warning
    for reason in reasons:
        assert reason in warning
    models = model_zoo._models_cache()
    assert not models.exists() or list(models.iterdir()) == []
    before = json.loads(
        _group(folder, tmp_path / "explicit", "--features", "colortexture", "--json").stdout
    )
    assert summary["evaluation"] == before["evaluation"]  # what the defaults gave before
    return summary


def test_offline_the_run_goes_on_with_colour_and_texture(tmp_path, colour_folder, tiny):
    result = _group(colour_folder, tmp_path / "out", "--json")
    _fallback_checks(result, colour_folder, tmp_path, "$IMGCLUST_OFFLINE")
    assert tiny[0].requests == []  # offline: not even tried


def test_without_a_network_the_run_goes_on(tmp_path, colour_folder, tiny, online):
    server, _ = tiny
    server.stop()  # nothing listens there any more
    result = _group(colour_folder, tmp_path / "out", "--json")
    _fallback_checks(result, colour_folder, tmp_path, "cannot be downloaded here")


class _CutShort(BaseHTTPRequestHandler):
    """Promises the whole file and sends half of it."""

    payload = b""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload[: len(self.payload) // 2])
        self.wfile.flush()
        self.close_connection = True


def test_a_download_cut_short_keeps_nothing(tmp_path, colour_folder, tiny, online, monkeypatch):
    _, model = tiny
    payload = (tmp_path / "published" / "tiny.onnx").read_bytes()
    handler = type("Handler", (_CutShort,), {"payload": payload})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/tiny.onnx"
        moved = model_zoo.NamedModel(**{**vars(model), "url": url})
        monkeypatch.setitem(model_zoo.MODELS, "tiny", moved)
        result = _group(colour_folder, tmp_path / "out", "--json")
        _fallback_checks(result, colour_folder, tmp_path, "broke off")
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_partial_files_of_killed_downloads_are_removed(tmp_path, tiny, online):
    import fcntl

    cache = model_zoo._models_cache()
    cache.mkdir(parents=True)
    stale = cache / ".tiny.onnx.0badc0de.part"
    stale.write_bytes(b"half a model")
    live = cache / ".tiny.onnx.1ive1ive.part"
    with open(live, "wb") as handle:  # another process downloading right now
        fcntl.flock(handle, fcntl.LOCK_EX)
        path = model_zoo.model_path("tiny")
        assert not stale.exists() and live.exists()
    assert path == cache / "tiny.onnx" and path.is_file()


def test_a_named_model_asked_for_offline_is_one_line(tmp_path, colour_folder, tiny):
    result = _group(colour_folder, tmp_path / "out", "--features", "embed:tiny")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "$IMGCLUST_OFFLINE forbids downloads" in result.output
    assert f"download {tiny[1].url}" in result.output


def test_assign_places_images_in_the_normalised_map_space(tmp_path, colour_folder):
    """An image model's embeddings mapped by UMAP are compared by their angles (rows at unit
    length after the PCA); a saved model places new images in that same space."""
    path = _zoo_classifier(tmp_path / "m.onnx")
    out = tmp_path / "groups"
    made = CliRunner().invoke(
        cli, ["group", str(colour_folder), "--features", f"embed:{path}", "--reduce", "umap",
              "-k", "3", "--save-model", "--no-cache", "-o", str(out), "--json"],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["parameters"]["normalize_rows"] is True
    assert json.loads((out / "model" / "model.json").read_text())["normalize_rows"] is True
    reference = np.load(out / "model" / "model.npz")["reference"]
    np.testing.assert_allclose(np.linalg.norm(reference, axis=1), 1.0, rtol=1e-5)
    assigned = CliRunner().invoke(
        cli, ["assign", str(out / "model"), str(colour_folder), "-o", str(tmp_path / "a")]
    )
    assert assigned.exit_code == 0, assigned.output
    assert_assigned_as_grouped(out, tmp_path / "a", colour_folder)
