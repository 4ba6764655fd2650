"""imgclust review: edits saved at once, the server's refusals, the page in Chromium, and the
apply step that regroups the folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from imgclust.cli import cli
from imgclust.collection.review import REVIEW_FILE, ReviewStore
from imgclust.collection.review_server import ReviewServer
from imgclust.report.image_map import read_embedding_csv
from imgclust.reviews import apply_review

from .conftest import http_request


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def grouped(colour_folder) -> Path:
    out = colour_folder.parent / "out"
    result = _run("group", colour_folder, "-k", 3, "--reduce", "pca", "--labels", "folders",
                  "--save-model", "--no-cache", "-o", out, "-q")  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def _assignments(folder: Path) -> dict[str, int]:
    with open(folder / "assignments.csv", newline="", encoding="utf-8") as handle:
        return {row["path"]: int(row["cluster"]) for row in csv.DictReader(handle)}


def test_edits_are_saved_at_once_and_resumed(grouped):
    store = ReviewStore(grouped)
    reds = [i for i, name in enumerate(store.ids) if name.startswith("red/")]
    red = int(store.clusters[reds[0]])
    state = store.edit({"action": "move", "rows": reds[:5], "to": "new"})
    new = max(c["id"] for c in state["clusters"])
    assert sorted(c["size"] for c in state["clusters"]) == [5, 15, 20, 20]
    store.edit({"action": "name", "cluster": red, "name": "rouge, красный"})
    resumed = ReviewStore(grouped)  # a second session
    assert resumed.changes == 2 and resumed.names == {red: "rouge, красный"}
    assert (resumed.clusters[reds[:5]] == new).all()
    resumed.edit({"action": "merge", "from": new, "into": red})
    assert (resumed.clusters[reds] == red).all()
    resumed.edit({"action": "undo"})
    assert (resumed.clusters[reds[:5]] == new).all()
    before = resumed.clusters.copy()
    resumed.edit({"action": "split", "cluster": red})
    assert (resumed.clusters != before).sum() > 0
    assert set(np.unique(resumed.clusters[reds])) == {red, new, new + 1}


@pytest.mark.parametrize(
    "edit",
    [
        {"action": "move", "rows": [], "to": 0},
        {"action": "move", "rows": [10**30], "to": 0},
        {"action": "move", "rows": [-1], "to": 0},
        {"action": "move", "rows": [True], "to": 0},
        {"action": "move", "rows": ["1"], "to": 0},
        {"action": "move", "rows": [1], "to": 99},
        {"action": "move", "rows": [1], "to": "../x"},
        {"action": "merge", "from": 0, "into": 0},
        {"action": "name", "cluster": 0, "name": "a\nb"},
        {"action": "name", "cluster": 0, "name": "\ud800"},
        {"action": "name", "cluster": 0, "name": "x" * 101},
        {"action": "name", "cluster": 0, "name": 5},
        {"action": "undo"},
        {"action": "delete everything"},
        {},
    ],
)
def test_malformed_edits_change_nothing(grouped, edit):
    store = ReviewStore(grouped)
    with pytest.raises(ValueError):
        store.edit(edit)
    assert not (grouped / REVIEW_FILE).exists() and store.changes == 0


def test_a_review_of_other_images_is_refused_in_one_line(grouped):
    ReviewStore(grouped).edit({"action": "name", "cluster": 0, "name": "x"})
    data = json.loads((grouped / REVIEW_FILE).read_text())
    data["images"] = "0" * 32
    (grouped / REVIEW_FILE).write_text(json.dumps(data))
    result = _run("review", grouped, "--apply")
    assert result.exit_code == 1 and "reviews other images" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_not_a_group_folder_is_one_line(tmp_path):
    result = _run("review", tmp_path, "--apply")
    assert result.exit_code == 1 and "not an output folder of 'imgclust group' or" in result.output


def test_apply_regroups_the_folder_and_keeps_the_users_files(grouped):
    (grouped / "notes.txt").write_text("mine")
    _, xy_before, _, _ = read_embedding_csv(grouped)
    store = ReviewStore(grouped)
    reds = [i for i, name in enumerate(store.ids) if name.startswith("red/")]
    moved = [store.ids[i] for i in reds[:4]]
    store.edit({"action": "move", "rows": reds[:4], "to": "new"})
    store.edit({"action": "name", "cluster": int(store.clusters[reds[-1]]), "name": "rouge"})
    result = _run("review", grouped, "--apply", "-q")
    assert result.exit_code == 0, result.output
    clusters = _assignments(grouped)
    assert len({clusters[m] for m in moved}) == 1
    small = clusters[moved[0]]
    assert sum(1 for c in clusters.values() if c == small) == 4  # its own cluster
    summary = json.loads((grouped / "clusters.json").read_text())
    assert summary["n_clusters"] == 4 and summary["parameters"]["reviewed"] == {"changes": 2}
    named = [c for c in summary["clusters"] if c.get("name") == "rouge"]
    assert named and named[0]["size"] == 16
    exported = sorted(
        p.name.split("_", 1)[1] for p in (grouped / "clusters" / str(small)).iterdir()
    )
    assert exported == sorted(Path(m).name for m in moved)
    _, xy_after, _, _ = read_embedding_csv(grouped)
    assert np.array_equal(xy_before, xy_after)  # the same map
    assert (grouped / "notes.txt").read_text() == "mine"
    assert "rouge" in (grouped / "report.html").read_text()
    model = json.loads((grouped / "model" / "model.json").read_text())
    assert model["n_clusters"] == 4 and "rouge" in model["names"].values()
    review = json.loads((grouped / REVIEW_FILE).read_text())
    assert review["applied"] and ReviewStore(grouped).names  # the next review starts there


def test_assign_keeps_the_reviewed_names(grouped, colour_folder, tmp_path):
    store = ReviewStore(grouped)
    blue = int(store.clusters[store.ids.index("blue/blue_03.png")])
    store.edit({"action": "name", "cluster": blue, "name": "bleu"})
    apply_review(grouped)
    out = tmp_path / "assigned"
    assert _run("assign", grouped / "model", colour_folder / "blue", "-o", out,
                "--json").exit_code == 0  # fmt: skip
    page = (out / "report.html").read_text()
    assert "bleu" in page


@pytest.fixture
def review_server(grouped):
    server = ReviewServer(grouped, read_timeout=1.0)
    server.start()
    yield server
    server.stop()


def test_the_server_refuses_foreign_and_malformed_requests(review_server, grouped):
    base = f"http://127.0.0.1:{review_server.port}"
    token = f"?token={review_server.token}"
    edit = json.dumps({"action": "name", "cluster": 0, "name": "x"}).encode()
    assert http_request(f"{base}/api/map")[0] == 403
    assert http_request(f"{base}/api/edit?token=wrong", edit)[0] == 403
    for path in ("/sprites/9", "/sprites/..%2F..%2Fclusters.json", "/image/999", "/x",
                 "/../clusters.json", "/image/-1"):  # fmt: skip
        assert http_request(f"{base}{path}{token}")[0] == 404, path
    refused = [
        http_request(f"{base}/api/edit{token}", edit, {"Origin": "http://evil.example"}),
        http_request(f"{base}/api/edit{token}", edit, {"Sec-Fetch-Site": "cross-site"}),
        http_request(f"{base}/api/edit{token}", edit, {"Content-Type": "text/plain"}),
        http_request(f"{base}/api/edit{token}", b"[1, 2]"),
        http_request(f"{base}/api/edit{token}", b"{" * 100000),
        http_request(f"{base}/api/edit{token}", b'{"action": "move", "rows": [1e400], "to": 0}'),
        http_request(f"{base}/api/edit{token}", b'{"action": "split", "cluster": 7}'),
        http_request(f"{base}/api/other{token}", edit),
    ]
    assert [status for status, _ in refused] == [403, 403, 415, 400, 400, 400, 400, 404]
    assert not (grouped / REVIEW_FILE).exists()  # nothing changed
    status, body = http_request(f"{base}/api/edit{token}", edit)
    assert status == 200 and json.loads(body)["changes"] == 1
    status, body = http_request(f"{base}/api/map{token}")
    assert status == 200 and json.loads(body)["clusters"][0]["name"] == "x"
    status, picture = http_request(f"{base}/image/3{token}")
    assert status == 200 and picture[:2] == b"\xff\xd8"  # a JPEG of the original
    assert http_request(f"{base}/sprites/0{token}")[0] == 200


def test_a_move_in_the_browser_survives_a_reload_and_the_apply(
    review_server, grouped, report_browser
):
    with report_browser.watched_page(allowed=f"http://127.0.0.1:{review_server.port}/") as (
        page,
        problems,
    ):
        page.goto(review_server.url)
        page.locator("body[data-ready]").wait_for()
        page.locator(".imap-search").fill("blue_1")  # blue_10 .. blue_19
        page.locator(".imap-search").press("Enter")
        assert "10 images selected" in page.locator("#selection").inner_text()
        page.locator("#move-target").select_option("new")
        page.locator("#move").click()
        page.locator("#saved", has_text="Saved: 1 change").wait_for()
        page.reload()
        page.locator("body[data-ready]").wait_for()
        sizes = page.locator(".imap-legend button").all_inner_texts()
        assert any(text.endswith(": 10") for text in sizes), sizes
    assert problems == []
    apply_review(grouped)
    clusters = _assignments(grouped)
    moved = {clusters[f"blue/blue_{i}.png"] for i in range(11, 20, 2)}
    moved |= {clusters[f"blue/blue_{i}.jpg"] for i in range(10, 20, 2)}
    assert len(moved) == 1 and list(clusters.values()).count(moved.pop()) == 10


def test_a_representatives_review_names_become_the_labels_propagate_reads(colour_folder):
    reps = colour_folder.parent / "reps"
    assert _run("representatives", colour_folder, "-k", 4, "--reduce", "pca", "--holdout", 6,
                "--no-cache", "-o", reps, "-q").exit_code == 0  # fmt: skip
    summary = json.loads((reps / "representatives.json").read_text())
    store = ReviewStore(reps)
    assert store.kind == "representatives"
    for rep in summary["representatives"]:  # each named after its representative's colour
        colour = rep["path"].split("/")[0]
        store.edit({"action": "name", "cluster": rep["cluster"], "name": f"{colour}!"})
    result = _run("review", reps, "--apply", "-q")
    assert result.exit_code == 0, result.output
    with open(reps / "to_label.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert all(row["label"] == row["path"].split("/")[0] + "!" for row in rows), rows
    assert json.loads((reps / "representatives.json").read_text())["held_out"] == 6
    assert _run("propagate", reps, "-q").exit_code == 0  # the names are the labels
    with open(reps / "propagated.csv", newline="", encoding="utf-8") as handle:
        propagated = list(csv.DictReader(handle))
    labelled = [row for row in propagated if row["label"]]
    assert {row["label"] for row in labelled} == {"red!", "green!", "blue!"}


def test_a_dataset_grouping_is_reviewed_and_applied(tmp_path):
    out = tmp_path / "digits"
    assert _run("group", "--dataset", "digits", "-k", 10, "--reduce", "pca", "--no-cache",
                "-o", out, "-q").exit_code == 0  # fmt: skip
    server = ReviewServer(out)
    server.start()
    try:
        base, token = f"http://127.0.0.1:{server.port}", f"?token={server.token}"
        status, body = http_request(f"{base}/api/map{token}")
        assert status == 200 and json.loads(body)["images"] is False  # no files to show
        assert http_request(f"{base}/image/0{token}")[0] == 404
    finally:
        server.stop()
    ReviewStore(out).edit({"action": "merge", "from": 9, "into": 8})
    summary = apply_review(out)
    assert summary["n_clusters"] == 9 and summary["evaluation"]["accuracy_majority"] > 0.5


def test_an_edit_that_cannot_be_saved_changes_nothing(review_server, grouped, monkeypatch):
    from imgclust.errors import OutputError

    def full_disk(self):
        raise OutputError("No space left on device")

    store = review_server.store
    before = store.clusters.copy()
    monkeypatch.setattr(ReviewStore, "save", full_disk)
    base, token = f"http://127.0.0.1:{review_server.port}", f"?token={review_server.token}"
    move = json.dumps({"action": "move", "rows": [0, 1, 2], "to": "new"}).encode()
    status, body = http_request(f"{base}/api/edit{token}", move)
    assert status == 500 and b"nothing was changed" in body
    assert np.array_equal(store.clusters, before) and store.changes == 0
    assert not (grouped / REVIEW_FILE).exists()


def test_the_review_command_serves_until_ctrl_c(grouped):
    import signal
    import subprocess
    import sys

    server = subprocess.Popen(
        [sys.executable, "-m", "imgclust", "review", str(grouped), "--no-open"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert "Reviewing 60 images in 3 groups" in server.stdout.readline()
        url = server.stdout.readline().strip()
        status, body = http_request(url.replace("/?", "/api/map?"))
        assert status == 200 and json.loads(body)["n"] == 60
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0 and err == ""
    assert f"imgclust review {grouped} --apply" in out
