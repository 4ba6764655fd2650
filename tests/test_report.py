"""report.html: escaped, offline, every image loaded, in headless Chromium."""

from __future__ import annotations

import csv
import json
import re
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
        table.locator("th").nth(2).click()
        sizes = [int(t) for t in table.locator("tbody tr td:nth-child(3)").all_inner_texts()]
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
    assert _run("choose-k", hostile_photo, "-k", "auto", "--k-range", "2-4", "-o", choose,
                "-q").exit_code == 0  # fmt: skip
    assert _run("edges", hostile_photo, "-k", 3, "-o", edges, "-q").exit_code == 0
    with report_browser.open(choose / "report.html", "choose-k-report.png") as page:
        rows = page.locator("table.sortable tbody tr").all_inner_texts()
        assert [r.split("\t")[0] for r in rows] == ["2", "3", "4"]
        assert HOSTILE in page.inner_text("header")
    with report_browser.open(edges / "report.html", "edges-report.png", min_images=2) as page:
        assert "boundaries" in page.inner_text("main").lower()


@pytest.mark.parametrize("command", ["segment", "choose-k", "edges"])
def test_no_report_writes_no_page(command, hostile_photo, tmp_path):
    out = tmp_path / command
    k = ["--k-range", "2-3"] if command == "choose-k" else ["-k", "2"]
    result = _run(command, hostile_photo, *k, "--no-report", "-o", out, "--json")
    assert result.exit_code == 0
    assert "report" not in json.loads(result.output)
    assert not (out / "report.html").exists() and any(out.iterdir())


def _files_section_links(page: str) -> list[str]:
    section = page.split("<h2>Files</h2>", 1)[1].split("</ul>", 1)[0]
    return re.findall(r'<a href="([^"]+)">', section)


def _assert_every_output_is_linked(folder: Path) -> None:
    """The Files section links every output of the folder (folders with a slash), and every
    link leads to something that is there."""
    page = (folder / "report.html").read_text()
    links = _files_section_links(page)
    outputs = {
        p.name + ("/" if p.is_dir() else "")
        for p in folder.iterdir()
        if not p.name.startswith(".") and p.name != "report.html"
    }
    assert set(links) == outputs
    assert all((folder / link).exists() for link in links)


@pytest.fixture(scope="module")
def digits_agglomerative(tmp_path_factory) -> Path:
    """The digits article's run, with agglomerative clustering (PCA keeps the test short)."""
    out = tmp_path_factory.mktemp("digits") / "group"
    result = _run("group", "--dataset", "digits", "-k", 10, "--method", "agglomerative",
                  "--reduce", "pca", "--dims", 20, "--no-cache", "--save-model", "-o", out,
                  "-q")  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def test_digits_report_shows_centres_dendrogram_and_a_diagonal(digits_agglomerative):
    out = digits_agglomerative
    page = (out / "report.html").read_text()
    for name in ("centers.png", "dendrogram.png", "confusion.png", "embedding.png"):
        assert f'src="{name}"' in page and (out / name).is_file()
    _assert_every_output_is_linked(out)
    # the confusion matrix's columns are in the order of their matched labels: a diagonal
    with open(out / "confusion.csv") as handle:
        rows = list(csv.reader(handle))
    matrix = np.array([[int(v) for v in row[1:]] for row in rows[1:]])
    evaluation = json.loads((out / "evaluation.json").read_text())
    matched = round(evaluation["accuracy_one_to_one"] * evaluation["labelled_images"])
    assert np.trace(matrix) == matched  # the one-to-one matches, and no better order exists
    assert np.trace(matrix) / matrix.sum() > 0.7


def test_assign_writes_clusters_and_a_report(digits_agglomerative, tmp_path, report_browser):
    images = tmp_path / "new"
    for digit in range(3):
        (images / str(digit)).mkdir(parents=True)
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i in range(30):
        pixels = (digits.images[i] * 255 / 16).astype(np.uint8)
        Image.fromarray(pixels).save(images / str(digits.target[i] % 3) / f"{i}.png")
    out = tmp_path / "assigned"
    result = _run("assign", digits_agglomerative / "model", images, "-o", out, "-q")
    assert result.exit_code == 0, result.output
    placed = sorted(p.name for p in (out / "clusters").glob("*/*.png"))
    assert placed == sorted(f"{i}.png" for i in range(30)) or len(placed) == 30
    assert (out / "report.html").is_file() and any((out / "galleries").iterdir())
    _assert_every_output_is_linked(out)
    with report_browser.open(out / "report.html", "assign-report.png", min_images=2) as page:
        assert "30" in page.inner_text("main")


def test_every_report_links_its_files(hostile_photo, tmp_path):
    for command, args in {
        "segment": ["-k", "3", "--superpixels", "100"],
        "choose-k": ["-k", "auto", "--k-range", "2-4"],
        "edges": ["-k", "3"],
    }.items():
        out = tmp_path / command
        assert _run(command, hostile_photo, *args, "-o", out, "-q").exit_code == 0
        _assert_every_output_is_linked(out)


@pytest.mark.parametrize("width", [1280, 390])
def test_new_report_sections_at_desktop_and_phone_width(
    digits_agglomerative, hostile_photo, tmp_path, report_browser, width
):
    """The main figures use the page's width (not a thumbnail's) and no table is cut off."""
    segment_out = tmp_path / "segment"
    assert _run("segment", hostile_photo, "-k", "4", "--superpixels", "200", "-o", segment_out,
                "-q").exit_code == 0  # fmt: skip
    pages = {
        "group-digits": (digits_agglomerative / "report.html", "dendrogram.png"),
        "segment-superpixels": (segment_out / "report.html", "superpixels_vs_pixels.png"),
    }
    for name, (report, figure) in pages.items():
        with report_browser.open(report, f"{name}-{width}.png", width=width, min_images=3) as page:
            shown, natural = page.evaluate(
                f"() => {{ const i = document.querySelector('img[src=\"{figure}\"]');"
                " return [i.getBoundingClientRect().width, i.naturalWidth]; }"
            )
            main = page.evaluate("() => document.querySelector('main').clientWidth")
            assert shown >= 0.8 * min(main, natural)  # as wide as it is or the page allows
            clipped = page.evaluate(
                "() => [...document.querySelectorAll('table')].filter(t =>"
                " t.getBoundingClientRect().right > document.documentElement.clientWidth + 1"
                " && getComputedStyle(t.parentElement).overflowX !== 'auto').length"
            )
            assert clipped == 0
            hidden_rows = page.evaluate(  # no table in a box shorter than itself
                "() => [...document.querySelectorAll('table')].filter(t =>"
                " t.parentElement.scrollHeight > t.parentElement.clientHeight + 1).length"
            )
            assert hidden_rows == 0
            scales = page.evaluate(  # contact sheets of any size at one scale, on a phone too
                "() => [...document.querySelectorAll('.sheets img')].map(i =>"
                " i.getBoundingClientRect().width / i.naturalWidth)"
            )
            if name == "group-digits":
                assert len(scales) == 10 and max(scales) - min(scales) < 0.01, scales
                assert (max(scales) > 0.99) == (width == 1280)  # shrunk only where needed


@pytest.mark.parametrize("seed", range(3))
def test_edge_preview_keeps_every_edge(seed):
    from imgclust.report.plots import edges_preview, pooled_edges

    rng = np.random.default_rng(seed)
    edges = np.zeros((1000, 1500), dtype=bool)
    rows, cols = rng.integers(0, 1000, 40), rng.integers(0, 1500, 40)
    edges[rows, cols] = True  # isolated one-pixel edges: averaging would erase them
    small = pooled_edges(edges, 300)
    assert max(small.shape) <= 300 and small[rows // 5, cols // 5].all()
    assert small.sum() <= 40
    preview = np.asarray(edges_preview(np.zeros((1000, 1500, 3), np.uint8), edges, 300))
    assert (preview == (255, 0, 0)).all(axis=2).sum() == small.sum()


def test_a_label_no_cluster_maps_to_says_so():
    from imgclust.report.html import per_label_rows

    rows = per_label_rows({"cat": {"precision": 0.5, "recall": 1.0},
                           "dog": {"precision": float("nan"), "recall": 0.0}})  # fmt: skip
    assert rows == [["cat", "0.500", "1.000"], ["dog", "no cluster mapped to it", "0.000"]]
