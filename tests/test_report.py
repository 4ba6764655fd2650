"""report.html: escaped, offline, every image loaded, in headless Chromium."""

from __future__ import annotations

import json
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


def test_group_report_in_headless_chromium(grouped, report_browser):
    with report_browser.open(grouped / "report.html", "group-report.png", min_images=5) as page:
        assert HOSTILE in page.inner_text("main")
        # a click on a header sorts the table; a click on an image opens it large
        table = page.locator("table.sortable").first
        table.locator("th").nth(1).click()
        sizes = [int(t) for t in table.locator("tbody tr td:nth-child(2)").all_inner_texts()]
        assert sizes == sorted(sizes)
        page.locator("main img").first.click()
        assert page.locator("#large").is_visible()


@pytest.fixture
def hostile_photo(tmp_path, photo) -> Path:
    """scikit-image's astronaut, small, saved under a file name that is an HTML injection."""
    folder = tmp_path / "photos"
    folder.mkdir()
    path = folder / HOSTILE
    Image.fromarray(photo).save(path)
    return path


def test_segment_report_shows_every_plot_and_the_palette(hostile_photo, tmp_path, report_browser):
    out = tmp_path / "segment"
    assert _run("segment", hostile_photo, "-k", "auto", "--k-range", "2-5", "-o", out,
                "-q").exit_code == 0  # fmt: skip
    page_text = (out / "report.html").read_text()
    for name in ("comparison.png", "palette.png", "colors3d.png", "choose_k.png"):
        assert f'src="{name}"' in page_text
    palette = json.loads((out / "palette.json").read_text())
    for cluster in palette["clusters"]:  # every colour of the palette, as a swatch
        assert f'style="background:{cluster["hex"]}"' in page_text
    with report_browser.open(out / "report.html", "segment-report.png", min_images=4) as page:
        assert HOSTILE in page.inner_text("header")
        assert "imgclust segment" in page.inner_text("main") and "--k-range" in page.inner_text(
            "main"
        )


def test_choose_k_and_edges_reports(hostile_photo, tmp_path, report_browser):
    choose = tmp_path / "choose-k"
    edges = tmp_path / "edges"
    assert _run("choose-k", hostile_photo, "--k", "2-4", "-o", choose, "-q").exit_code == 0
    assert _run("edges", hostile_photo, "-k", 3, "-o", edges, "-q").exit_code == 0
    with report_browser.open(choose / "report.html", "choose-k-report.png") as page:
        rows = page.locator("table.sortable tbody tr").all_inner_texts()
        assert [r.split("\t")[0] for r in rows] == ["2", "3", "4"]
        assert HOSTILE in page.inner_text("header")
    with report_browser.open(edges / "report.html", "edges-report.png", min_images=3) as page:
        assert "boundaries" in page.inner_text("main").lower()


@pytest.mark.parametrize("command", ["segment", "choose-k", "edges"])
def test_no_report_writes_no_page(command, hostile_photo, tmp_path):
    out = tmp_path / command
    k = ["--k", "2-3"] if command == "choose-k" else ["-k", "2"]
    result = _run(command, hostile_photo, *k, "--no-report", "-o", out, "--json")
    assert result.exit_code == 0
    assert "report" not in json.loads(result.output)
    assert not (out / "report.html").exists() and any(out.iterdir())
