"""report.html: escaped, offline, every image loaded, in headless Chromium."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from imgclust.cli import cli
from imgclust.report.html import Report

HOSTILE = "<img src=x onerror=alert(1)>.png"


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_user_text_is_escaped(tmp_path):
    page = (
        Report("imgclust test", HOSTILE)
        .facts([("name", HOSTILE)])
        .table(["file"], [[HOSTILE]])
        .render({"labels": "<script>alert(2)</script>"}, {"total": 1.0})
    )
    assert HOSTILE not in page and "<script>alert(2)" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;.png" in page
    assert "http://" not in page and "https://" not in page  # nothing from the network


def test_long_tables_show_their_head_and_say_how_many_more():
    rows = ([n, n * n] for n in range(10**9))  # read no further than shown
    page = Report("t", "s").table(["n", "square"], rows, total=10**9, limit=3).render({}, {})
    assert "<td>2</td><td>4</td>" in page and "<td>3</td>" not in page
    assert "999,999,997 more rows" in page


@pytest.fixture
def grouped(tmp_path) -> Path:
    """A grouping of 3 colours x 8 images, one image named like an HTML injection, one corrupt."""
    root = tmp_path / "images"
    rng = np.random.default_rng(0)
    for g, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        folder = root / f"group{g}"
        folder.mkdir(parents=True)
        for i in range(8):
            name = HOSTILE if (g, i) == (0, 0) else f"{i}.png"
            pixels = np.clip(np.array(colour) + rng.integers(-10, 11, (16, 16, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(folder / name)
    (root / "group1" / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    result = _run("group", root, "-k", "auto", "--k-range", "2-4", "--labels", "folders",
                  "--reduce", "pca", "--no-cache", "-o", out, "-q")  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def test_group_writes_a_report_unless_told_not_to(grouped, tmp_path):
    page = (grouped / "report.html").read_text()
    for name in ("embedding.png", "choose_k.png", "confusion.png", "galleries/cluster_0.jpg"):
        assert f'src="{name}"' in page
    assert "broken.png" in page  # the skipped file is listed
    assert HOSTILE not in page
    assert "imgclust group" in page and "--k-range" in page  # the command to run it again
    images = grouped.parent / "images"
    out = tmp_path / "quiet"
    assert _run("group", images, "-k", 3, "--reduce", "pca", "--no-cache", "--no-report",
                "-o", out, "-q").exit_code == 0  # fmt: skip
    assert not (out / "report.html").exists() and (out / "assignments.csv").exists()


def test_group_report_in_headless_chromium(grouped, tmp_path, chromium):
    executable, sync_playwright = chromium
    errors: list[str] = []
    dialogs: list[str] = []
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("request", lambda r: None if r.url.startswith("file://") else outside.append(r.url))
        page.goto((grouped / "report.html").as_uri())
        page.evaluate("() => document.querySelectorAll('img').forEach(i => i.loading = 'eager')")
        for image in page.locator("main img").all():
            image.scroll_into_view_if_needed()
        widths = page.evaluate(
            "() => Promise.all([...document.querySelectorAll('main img')].map(i =>"
            " i.decode().then(() => i.naturalWidth, () => 0)))"
        )
        assert len(widths) >= 5 and all(w > 0 for w in widths)
        assert HOSTILE in page.inner_text("main")
        assert page.locator("img[src='x']").count() == 0
        # a click on a header sorts the table; a click on an image opens it large
        table = page.locator("table.sortable").first
        table.locator("th").nth(1).click()
        sizes = [int(t) for t in table.locator("tbody tr td:nth-child(2)").all_inner_texts()]
        assert sizes == sorted(sizes)
        page.locator("main img").first.click()
        assert page.locator("#large").is_visible()
        page.screenshot(path=str(tmp_path / "group-report.png"), full_page=True)
        browser.close()
    assert errors == [] and dialogs == [] and outside == []
    assert (tmp_path / "group-report.png").stat().st_size > 0
