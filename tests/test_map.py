"""The map of a collection: embedding.csv, sprite sheets, and the report's interactive map
driven in headless Chromium (hover, legend, lasso, search)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from imgclust.cli import cli
from imgclust.report.image_map import (
    SHEET_CELLS,
    SPRITE_SIDE,
    MapPoints,
    json_for_script,
    map_payload,
    read_embedding_csv,
    write_embedding_csv,
    write_sprites,
)

HOSTILE = "<img src=x onerror=alert(1)>.png"


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_payload_keeps_the_maps_shape_and_turns_y_downwards():
    xy = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 5.0]])
    points = MapPoints(["a", "b", "c"], xy, np.array([0, 0, 1]), names={1: "top"})
    data = map_payload(points)
    assert data["x"] == [0, 65535, 65535]
    # the taller side is half the wider: centred, and the highest point is nearest the top
    assert data["y"][0] == data["y"][1] > data["y"][2]
    assert data["y"][0] - data["y"][2] == pytest.approx(65535 / 2, abs=1)
    assert [c["id"] for c in data["clusters"]] == [0, 1]
    assert data["clusters"][1]["name"] == "top" and data["clusters"][0]["size"] == 2


def test_data_in_a_script_cannot_close_it():
    text = json_for_script({"names": ["</script><script>alert(1)</script>", "<!--"]})
    assert "<" not in text
    assert json.loads(text)["names"][0].startswith("</script>")


def test_embedding_csv_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    xy = rng.normal(size=(50, 2)).astype(np.float32)
    ids = [f'folder/{i},odd "name".png' for i in range(50)]
    truth = [None if i % 7 == 0 else f"label {i % 3}" for i in range(50)]
    clusters = rng.integers(-1, 4, 50)
    write_embedding_csv(tmp_path, MapPoints(ids, xy, clusters, truth=truth))
    read_ids, read_xy, read_clusters, labels = read_embedding_csv(tmp_path)
    assert read_ids == ids and (read_clusters == clusters).all()
    assert np.array_equal(read_xy.astype(np.float32), xy)  # float32 exactly
    assert labels == [t or "" for t in truth]


def test_sprites_hold_every_image_at_its_cell(tmp_path):
    count = SHEET_CELLS + 5
    colours = [(i % 256, (i * 7) % 256, (i * 13) % 256) for i in range(count)]
    sheets = write_sprites(
        tmp_path, count, lambda i: Image.new("RGB", (SPRITE_SIDE, SPRITE_SIDE), colours[i])
    )
    assert sheets == ["map/sprites_000.jpg", "map/sprites_001.jpg"]
    with Image.open(tmp_path / sheets[1]) as second:
        assert second.size == (5 * SPRITE_SIDE, SPRITE_SIDE)
        pixel = second.convert("RGB").getpixel((SPRITE_SIDE * 3 + 24, 24))
    assert np.abs(np.subtract(pixel, colours[SHEET_CELLS + 3])).max() <= 8  # JPEG


@pytest.fixture
def grouped_map(colour_folder) -> Path:
    """60 images of 3 colours grouped, one of them named like an HTML injection."""
    (colour_folder / "red" / "red_00.jpg").rename(colour_folder / "red" / HOSTILE)
    out = colour_folder.parent / "out"
    result = _run("group", colour_folder, "-k", 3, "--reduce", "pca", "--labels", "folders",
                  "--no-cache", "-o", out, "-q")  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def test_group_writes_embedding_csv_and_the_map(grouped_map):
    with open(grouped_map / "assignments.csv", newline="", encoding="utf-8") as handle:
        assigned = {row["path"]: row for row in csv.DictReader(handle)}
    ids, _xy, clusters, labels = read_embedding_csv(grouped_map)
    assert sorted(ids) == sorted(assigned) and len(ids) == 60  # every image
    assert all(int(assigned[i]["cluster"]) == c for i, c in zip(ids, clusters, strict=True))
    assert set(labels) == {"red", "green", "blue"}
    data = json.loads((grouped_map / "map" / "points.json").read_text())
    assert data["n"] == 60 and data["names"] == ids and len(data["sprites"]["sheets"]) == 1
    assert all((grouped_map / s).is_file() for s in data["sprites"]["sheets"])
    # links open the originals, relative to the output folder
    link = data["links"]["root"] + data["links"]["paths"][0]
    assert (grouped_map / link).resolve() == (grouped_map.parent / "images" / ids[0]).resolve()


def test_no_report_no_map_but_embedding_csv(colour_folder, tmp_path):
    out = tmp_path / "plain"
    assert _run("group", colour_folder, "-k", 3, "--reduce", "pca", "--no-cache",
                "--no-report", "-o", out, "-q").exit_code == 0  # fmt: skip
    assert (out / "embedding.csv").is_file() and not (out / "map").exists()


def _screen(page, data: dict, rows) -> list[tuple[float, float]]:
    """Where the map draws images ``rows`` on the page (the whole map in view)."""
    box = page.locator(".imap-canvas").bounding_box()
    base = min(box["width"], box["height"]) * 0.94
    ox, oy = (box["width"] - base) / 2, (box["height"] - base) / 2
    return [
        (
            box["x"] + ox + data["x"][i] / 65535 * base,
            box["y"] + oy + data["y"][i] / 65535 * base,
        )
        for i in rows
    ]


def _listed(page) -> set[str]:
    return set(page.locator(".imap-grid .imap-thumb").evaluate_all("e => e.map(b => b.title)"))


def test_the_map_in_chromium(grouped_map, report_browser):
    data = json.loads((grouped_map / "map" / "points.json").read_text())
    with report_browser.open(grouped_map / "report.html", "group-map.png") as page:
        page.locator("[data-drawn-at]").wait_for()
        page.locator(".imap-canvas").scroll_into_view_if_needed()
        # hovering over a point shows that image and its file name
        positions = np.array(_screen(page, data, range(data["n"])))
        spread = np.linalg.norm(positions[:, None] - positions[None], axis=2)
        np.fill_diagonal(spread, np.inf)
        for row in (int(spread.min(axis=1).argmax()), data["names"].index(f"red/{HOSTILE}")):
            page.mouse.move(*positions[row])
            assert page.locator(".imap-tip").is_visible()
            assert page.locator(".imap-tip-name").inner_text() == data["names"][row]
            style = page.locator(".imap-tip-image").get_attribute("style")
            assert "map/sprites_000.jpg" in style
        # a cluster chosen in the legend lists exactly its members
        page.locator(".imap-legend button").nth(1).click()
        members = {n for n, c in zip(data["names"], data["c"], strict=True) if c == 1}
        assert _listed(page) == members
        page.locator(".imap-legend button").nth(1).click()  # off again
        # a lasso around the left half of the map selects exactly the images drawn there
        box = page.locator(".imap-canvas").bounding_box()
        middle = box["x"] + box["width"] / 2
        corners = [(box["x"] + 2, box["y"] + 2), (middle, box["y"] + 2),
                   (middle, box["y"] + box["height"] - 2),
                   (box["x"] + 2, box["y"] + box["height"] - 2)]  # fmt: skip
        page.locator(".imap-lasso").click()
        page.mouse.move(*corners[0])
        page.mouse.down()
        for corner in [*corners[1:], corners[0]]:
            page.mouse.move(*corner, steps=4)
        page.mouse.up()
        inside = {data["names"][i] for i, (x, _) in enumerate(positions) if x < middle}
        assert inside and _listed(page) == inside
        # a search by file name finds the point
        page.locator(".imap-search").fill("green_07")
        page.locator(".imap-search").press("Enter")
        assert _listed(page) == {"green/green_07.png"}
        assert "1 found" in page.locator(".imap-status").inner_text()


def test_the_map_is_usable_from_the_keyboard(grouped_map, report_browser):
    with report_browser.open(grouped_map / "report.html", "group-map-keys.png") as page:
        page.locator("[data-drawn-at]").wait_for()
        canvas = page.locator(".imap-canvas")
        before = canvas.screenshot()
        canvas.focus()
        page.keyboard.press("+")
        page.keyboard.press("ArrowLeft")
        page.wait_for_timeout(100)
        assert canvas.screenshot() != before  # zoomed and panned
        page.keyboard.press("0")
        page.wait_for_timeout(100)
        assert canvas.screenshot() == before
        page.locator(".imap-legend button").first.focus()
        page.keyboard.press("Enter")
        assert page.locator(".imap-members").is_visible()


def test_assign_places_new_images_on_the_training_map(colour_folder, tmp_path):
    out, assigned = tmp_path / "groups", tmp_path / "assigned"
    assert _run("group", colour_folder, "-k", 3, "--reduce", "pca", "--no-cache",
                "--save-model", "-o", out, "-q").exit_code == 0  # fmt: skip
    assert _run("assign", out / "model", colour_folder / "blue", "-o", assigned,
                "-q").exit_code == 0  # fmt: skip
    ids, xy, _clusters, _ = read_embedding_csv(assigned)
    assert len(ids) == 20
    trained_ids, trained_xy, _, _ = read_embedding_csv(out)
    trained = dict(zip(trained_ids, trained_xy.tolist(), strict=True))
    own = np.array([trained[f"blue/{Path(i).name}"] for i in ids])
    # each new image lands among the training images nearest it: the blue ones
    assert np.abs(xy - own).max() < np.ptp(trained_xy, axis=0).max() / 10
    page = (assigned / "report.html").read_text()
    assert 'data-imgclust-map="imgclust-map-data"' in page


def test_a_model_saved_before_maps_were_kept_still_assigns_with_a_map(colour_folder, tmp_path):
    out, assigned = tmp_path / "groups", tmp_path / "assigned"
    assert _run("group", colour_folder, "-k", 3, "--reduce", "pca", "--no-cache",
                "--save-model", "-o", out, "-q").exit_code == 0  # fmt: skip
    with np.load(out / "model" / "model.npz") as saved:
        assert {"map_reference", "map_positions"} <= set(saved.files)
        arrays = {k: saved[k] for k in saved.files if not k.startswith("map_")}
    np.savez_compressed(out / "model" / "model.npz", **arrays)
    assert _run("assign", out / "model", colour_folder, "-o", assigned, "-q").exit_code == 0
    ids, xy, _, _ = read_embedding_csv(assigned)
    assert len(ids) == 60 and np.isfinite(xy).all() and np.ptp(xy, axis=0).min() > 0


def test_a_tap_on_a_touch_screen_shows_the_image_first(grouped_map, report_browser):
    data = json.loads((grouped_map / "map" / "points.json").read_text())
    page = report_browser.browser.new_page(viewport={"width": 390, "height": 844}, has_touch=True)
    try:
        page.goto((grouped_map / "report.html").as_uri())
        page.locator("[data-drawn-at]").wait_for()
        page.locator(".imap-canvas").scroll_into_view_if_needed()
        positions = _screen(page, data, range(data["n"]))
        spread = [
            min(abs(x - a) + abs(y - b) for j, (a, b) in enumerate(positions) if j != i)
            for i, (x, y) in enumerate(positions)
        ]
        row = int(np.argmax(spread))
        page.touchscreen.tap(*positions[row])
        assert page.locator(".imap-tip").is_visible()
        assert page.locator(".imap-tip-name").inner_text() == data["names"][row]
        with page.expect_popup() as opened:  # the second tap opens the file
            page.touchscreen.tap(*positions[row])
        popup = opened.value
        popup.wait_for_load_state()
        name = data["names"][row].split("/")[-1]
        assert popup.url.startswith("file://") and popup.url.endswith(quote(name))
        popup.close()
    finally:
        page.close()
