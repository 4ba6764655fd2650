"""Shared fixtures: small images whose answers are known by hand."""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

FOUR_COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [250, 250, 250]], dtype=np.uint8)


@pytest.fixture(autouse=True)
def _own_feature_cache(tmp_path, monkeypatch):
    """Each test has a feature cache of its own: none reads the user's ~/.cache/imgclust, or
    features another test (or an earlier imgclust) left there."""
    monkeypatch.setenv("IMGCLUST_CACHE_DIR", str(tmp_path / ".feature-cache"))


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """Nothing is downloaded at test time: the default image model of photos cannot be had
    (colour and texture stand in, with a warning) unless a test serves or pins one."""
    from imgclust.collection import model_zoo

    monkeypatch.setenv(model_zoo.OFFLINE_ENV, "1")
    monkeypatch.delenv(model_zoo.DEFAULT_MODEL_ENV, raising=False)
    monkeypatch.delenv(model_zoo.MODELS_DIR_ENV, raising=False)
    yield
    model_zoo.set_default_model(None)


@pytest.fixture
def four_colour_image() -> np.ndarray:
    """12x10 RGB image: four flat blocks of known colour, 30 pixels each."""
    img = np.empty((12, 10, 3), dtype=np.uint8)
    for i, colour in enumerate(FOUR_COLOURS):
        img[i * 3 : (i + 1) * 3] = colour
    return img


@pytest.fixture
def photo() -> np.ndarray:
    """A real photo shipped with scikit-image, cut small to keep tests fast."""
    from skimage import data

    return data.astronaut()[::4, ::4].copy()


#: Screenshots of the reports, kept after the run (CI can publish the folder).
ARTEFACTS = Path(
    os.environ.get("IMGCLUST_TEST_ARTEFACTS", Path(__file__).parent.parent / "test-artefacts")
)


class ReportBrowser:
    """Opens report pages in headless Chromium and checks what every report must satisfy."""

    def __init__(self, browser) -> None:
        self.browser = browser
        self.artefacts = ARTEFACTS
        ARTEFACTS.mkdir(exist_ok=True)

    @contextmanager
    def watched_page(self, *, allowed: str = "file://", width: int = 390, height: int = 844):
        """A new page, and the problems seen on it: console errors, dialogs (a script that
        ran) and requests for anything not starting with ``allowed``. Closed on leaving."""
        problems: list[str] = []
        page = self.browser.new_page(viewport={"width": width, "height": height})
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("dialog", lambda d: (problems.append(f"dialog {d.message}"), d.dismiss()))
        page.on(
            "request",
            lambda r: None if r.url.startswith(allowed) else problems.append(f"request {r.url}"),
        )
        try:
            yield page, problems
        finally:
            page.close()

    @contextmanager
    def open(self, report: Path, screenshot: str, *, width: int = 390, min_images: int = 1):
        """Open ``report`` (at phone width by default) and yield the page.

        On leaving: a full-page screenshot goes to ``ARTEFACTS/screenshot``, and the test fails
        on a console error, a dialog (a script that ran), a request that is not for a local
        file, an image that did not load, or fewer than ``min_images`` images.
        """
        with self.watched_page(width=width) as (page, problems):
            page.goto(Path(report).as_uri())
            page.evaluate(
                "() => document.querySelectorAll('img').forEach(i => i.loading = 'eager')"
            )
            widths = page.evaluate(
                "() => Promise.all([...document.querySelectorAll('main img')].map(i =>"
                " i.decode().then(() => i.naturalWidth, () => 0)))"
            )
            yield page
            injected = page.locator("img[src='x']").count()  # an unescaped file name
            page.screenshot(path=str(ARTEFACTS / screenshot), full_page=True)
        assert problems == [] and injected == 0
        assert len(widths) >= min_images and all(w > 0 for w in widths), widths


@pytest.fixture(scope="session")
def report_browser():
    """A headless Chromium for the whole session; the tests skip, saying why, without it."""
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        pytest.skip("no Chromium here (Debian package 'chromium'; .ci/run installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed (pip install '.[test]')")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield ReportBrowser(browser)
        browser.close()


def http_request(url, data=None, headers=None):
    """Status and body of a GET (a POST of ``data`` as JSON, as the pages send it)."""
    if data is not None:
        headers = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}
PER_GROUP = 20


def _flat(colour, seed: int, size: int = 16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(-12, 13, size=(size, size, 3))
    return np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)


@pytest.fixture
def colour_folder(tmp_path) -> Path:
    """Three folders of 20 noisy flat-colour images each (PNG and JPEG)."""
    root = tmp_path / "images"
    for g, (name, colour) in enumerate(COLOURS.items()):
        (root / name).mkdir(parents=True)
        for i in range(PER_GROUP):
            suffix = ".png" if i % 2 else ".jpg"
            Image.fromarray(_flat(colour, 100 * g + i)).save(
                root / name / f"{name}_{i:02d}{suffix}"
            )
    return root


@pytest.fixture
def served_model(tmp_path, monkeypatch):
    """A small model published on a local server and registered as ``tiny``; downloads
    allowed (from that server only)."""
    import hashlib

    from imgclust.collection import model_zoo
    from tests.test_embed import _Server, _torchvision_like

    monkeypatch.delenv(model_zoo.OFFLINE_ENV, raising=False)

    folder = tmp_path / "published"
    folder.mkdir()
    path = _torchvision_like(folder / "tiny.onnx")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    server = _Server(folder)
    model = model_zoo.NamedModel(
        "tiny", "tiny.onnx", server.url("tiny.onnx"), f"sha256:{digest}", path.stat().st_size,
        "caffe", "a test model",
    )  # fmt: skip
    monkeypatch.setitem(model_zoo.MODELS, "tiny", model)
    yield server, model
    server.stop()
