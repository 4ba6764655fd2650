"""Output folders: nothing of the user's is lost, nothing stale is left, nothing is read back.

The rule under test: a run deletes or replaces only what an earlier imgclust run wrote into
its output folder (the record ``.imgclust-outputs.json``); anything else in the way is a
one-line refusal that changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from imgclust.cli import cli
from imgclust.errors import OutputError, OutputExistsError
from imgclust.io.outputs import (
    RECORD_NAME,
    StagedOutputDir,
    check_output_dir,
    read_record,
    remove_abandoned_staging,
)


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (links as their target) -> a hash of its content."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            found[path.relative_to(folder).as_posix()] = "link:" + os.readlink(path)
        elif path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            found[path.relative_to(folder).as_posix()] = digest
    return found


def _no_staging_left(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.fixture
def photos(tmp_path) -> Path:
    """20 small images of two kinds, and a folder of the user's among them."""
    folder = tmp_path / "P"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(20):
        colour = (220, 40, 40) if i % 2 else (40, 40, 220)
        pixels = np.clip(np.array(colour) + rng.integers(-15, 16, (16, 16, 3)), 0, 255)
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"img{i:02d}.png")
    return folder


def _users_folder(root: Path, name: str) -> dict[str, str]:
    (root / name).mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (1, 2, 3)).save(root / name / "holiday.jpg")
    (root / name / "README").write_text("my photos, do not touch")
    return _tree(root / name)


# --- data loss --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["galleries", "clusters", "model", "report.html"])
def test_a_users_file_named_like_an_output_is_refused_not_deleted(photos, name):
    if name == "report.html":
        (photos / name).write_text("<p>my notes</p>")
        mine = _tree(photos)
    else:
        _users_folder(photos, name)
        mine = _tree(photos)
    args = ["group", photos, "-k", 2, "-o", photos, "--overwrite", "--save-model"]
    result = _run(*args, "--reduce", "pca", "--no-cache", "-q")
    assert result.exit_code == 1
    assert f"{photos / name} is in the way" in result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert _tree(photos) == mine  # nothing written, nothing removed
    assert _no_staging_left(photos.parent)


def test_a_users_folder_the_run_does_not_write_is_no_obstacle(photos):
    mine = _users_folder(photos, "model")
    _users_folder(photos, "clusters")
    args = ["-k", 2, "-o", photos, "--overwrite", "--reduce", "pca", "--no-cache", "-q"]
    result = _run("group", photos, *args, "--export", "none")  # no clusters/, no model/
    assert result.exit_code == 0, result.output
    assert _tree(photos / "model") == mine and (photos / "assignments.csv").exists()


def test_representatives_refuse_a_users_thumbnails_folder(photos):
    mine = _users_folder(photos, "thumbnails")
    result = _run(
        "representatives", photos, "-k", 3, "-o", photos, "--overwrite", "--reduce", "pca",
        "--no-cache", "-q",
    )  # fmt: skip
    assert result.exit_code == 1 and "thumbnails is in the way" in result.output
    assert _tree(photos / "thumbnails") == mine


def test_a_users_file_inside_an_output_folder_is_kept(photos, tmp_path):
    out = tmp_path / "out"
    args = ["--reduce", "pca", "--no-cache", "--export", "copy", "-q"]
    assert _run("group", photos, "-k", 3, "-o", out, *args).exit_code == 0
    mine = _users_folder(out, "clusters/2/extra")
    (out / "clusters" / "0" / "notes.txt").write_text("mine")
    assert _run("group", photos, "-k", 2, "-o", out, "--overwrite", *args).exit_code == 0
    assert _tree(out / "clusters" / "2" / "extra") == mine
    assert (out / "clusters" / "0" / "notes.txt").read_text() == "mine"
    # cluster 2's images, written by the first run, are gone; the folder holding mine stays
    assert sorted(p.name for p in (out / "clusters" / "2").iterdir()) == ["extra"]


# --- stale results ----------------------------------------------------------------------


def _imgclust_files(folder: Path) -> set[str]:
    return set(read_record(folder).owned_files())


def test_overwrite_leaves_exactly_the_new_outputs_and_the_users_files(tmp_path, photo):
    image = tmp_path / "photo.png"
    Image.fromarray(photo).save(image)
    out = tmp_path / "out"
    first = _run("segment", image, "-k", "auto", "--k-range", "2-4", "-o", out, "-q")
    assert first.exit_code == 0 and (out / "choose_k.csv").exists()
    (out / "mine.txt").write_text("mine")
    again = _run("segment", image, "-k", "3", "-o", out, "--overwrite", "-q")
    assert again.exit_code == 0
    assert not (out / "choose_k.csv").exists() and not (out / "choose_k.png").exists()
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk == _imgclust_files(out) | {RECORD_NAME, "mine.txt"}
    assert json.loads((out / "palette.json").read_text())["n_clusters"] == 3


def test_a_group_rerun_drops_the_evaluation_and_model_it_does_not_write(tmp_path):
    images = tmp_path / "labelled"
    rng = np.random.default_rng(1)
    for label, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        (images / label).mkdir(parents=True)
        for i in range(8):
            pixels = np.clip(np.array(colour) + rng.integers(-10, 11, (12, 12, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(images / label / f"{i}.png")
    out = tmp_path / "out"
    args = ["--reduce", "pca", "--no-cache", "-q", "-o", out]
    first = _run("group", images, "-k", 2, "--labels", "folders", "--save-model", *args)
    assert first.exit_code == 0
    assert (out / "evaluation.json").exists() and (out / "model" / "model.json").exists()
    second = _run("group", images, "-k", 3, "--overwrite", *args)
    assert second.exit_code == 0
    for stale in ("evaluation.json", "confusion.csv", "confusion.png", "model"):
        assert not (out / stale).exists(), stale
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk == _imgclust_files(out) | {RECORD_NAME}
    # and assign, pointed at the folder, no longer finds a model of the earlier K
    refused = _run("assign", out / "model", images, "-o", tmp_path / "assigned")
    assert refused.exit_code == 2 and "does not exist" in refused.output


# --- outputs read as inputs -------------------------------------------------------------


def test_outputs_in_the_input_folder_are_never_read_back(photos):
    counts = []
    for _ in range(3):
        result = _run(
            "group", photos, "-o", photos, "--overwrite", "-k", 2, "--reduce", "pca",
            "--no-cache", "--export", "copy", "--json",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        counts.append(json.loads(result.output)["images"])
    assert counts == [20, 20, 20]
    # nor are the outputs of another imgclust run nested in the folder
    nested = _run("segment", photos / "img00.png", "-k", 2, "-o", photos / "seg", "-q")
    assert nested.exit_code == 0
    result = _run("group", photos, "-o", photos / "g", "-k", 2, "--reduce", "pca", "--json")
    assert json.loads(result.output)["images"] == 20


# --- modes, places that cannot be written, killed runs -----------------------------------


@pytest.mark.parametrize(
    ("umask", "folder", "file"), [(0o022, 0o755, 0o644), (0o027, 0o750, 0o640)]
)
def test_outputs_follow_the_umask(tmp_path, four_colour_image, umask, folder, file):
    image = tmp_path / "blocks.png"
    Image.fromarray(four_colour_image).save(image)
    previous = os.umask(umask)
    try:
        out = tmp_path / "out"
        assert _run("segment", image, "-k", 2, "-o", out, "-q").exit_code == 0
        rerun = _run("segment", image, "-k", 3, "-o", out, "--overwrite", "-q")
        assert rerun.exit_code == 0
    finally:
        os.umask(previous)
    assert out.stat().st_mode & 0o777 == folder
    for name in ("report.html", "palette.json", "segmented.png", RECORD_NAME):
        assert (out / name).stat().st_mode & 0o777 == file, name


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("command", ["segment", "group", "classify"])
def test_a_place_that_cannot_be_written_is_refused_before_any_work(
    tmp_path, photos, monkeypatch, command
):
    """/proc refuses new folders to every user, root included (permission bits do not)."""
    import imgclust.collection.jobs as group_jobs
    import imgclust.pixels.jobs as pixel_jobs

    def no_work(*args, **kwargs):
        raise AssertionError("the work started")

    monkeypatch.setattr(pixel_jobs, "prepare_image", no_work)
    monkeypatch.setattr(pixel_jobs, "_read_with_preview", no_work)
    monkeypatch.setattr(group_jobs, "cluster_images", no_work)
    target = {"segment": photos / "img00.png", "group": photos, "classify": photos / "img00.png"}
    result = _run(command, target[command], "-k", 2, "-o", "/proc/self/imgclust-out")
    assert result.exit_code == 1 and "cannot write in /proc/self" in result.output
    assert "Traceback" not in result.output and result.output.count("\n") == 1


def test_an_output_under_a_file_is_refused(tmp_path, four_colour_image):
    image = tmp_path / "blocks.png"
    Image.fromarray(four_colour_image).save(image)
    (tmp_path / "notes.txt").write_text("mine")
    result = _run("segment", image, "-o", tmp_path / "notes.txt" / "out")
    assert result.exit_code == 1 and "notes.txt is a file" in result.output
    assert (tmp_path / "notes.txt").read_text() == "mine"
    with pytest.raises(OutputError):
        check_output_dir(tmp_path / "notes.txt" / "a" / "b")


def test_staging_folders_of_killed_runs_are_removed_and_live_ones_kept(tmp_path):
    out = tmp_path / "out"
    script = (
        "import os, signal, sys\n"
        "from imgclust.io.outputs import StagedOutputDir\n"
        "with StagedOutputDir(sys.argv[1]) as stage:\n"
        "    (stage.path / 'half.png').write_bytes(b'half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", script, str(out)], check=False)
    assert killed.returncode == -signal.SIGKILL
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    assert len(left) == 1 and (left[0] / "half.png").exists()
    (tmp_path / ".out.mine.tmp").mkdir()  # the user's, not a staging folder: kept
    with StagedOutputDir(out) as live:
        # a second run now: the killed run's folder goes, the live one stays
        assert remove_abandoned_staging(out) == 0  # already removed when `live` started
        assert not left[0].exists() and live.path.exists()
        assert remove_abandoned_staging(out) == 0 and live.path.exists()
        (live.path / "done.txt").write_text("done")
    assert (out / "done.txt").read_text() == "done"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.mine.tmp", "out"]


def test_a_killed_run_into_an_existing_folder_leaves_nothing_for_long(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("mine")
    script = (
        "import os, signal, sys\n"
        "from imgclust.io.outputs import StagedOutputDir\n"
        "with StagedOutputDir(sys.argv[1], overwrite=True) as stage:\n"
        "    (stage.path / 'half.png').write_bytes(b'half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(out)], check=False)
    assert len(list(out.iterdir())) == 2  # mine.txt and the killed run's staging folder
    assert remove_abandoned_staging(out) == 1
    assert [p.name for p in out.iterdir()] == ["mine.txt"]


def test_an_existing_folder_is_staged_inside_itself(tmp_path, monkeypatch):
    """A mounted volume (`-v out:/out`) is a folder whose parent is another file system:
    nothing can be renamed from the parent into it, so the run stages inside it."""
    out = tmp_path / "out"
    out.mkdir()
    with StagedOutputDir(out) as stage:  # an empty folder: no --overwrite needed
        assert stage.path.parent == out
        (stage.path / "a.txt").write_text("1")
    assert sorted(p.name for p in out.iterdir()) == [RECORD_NAME, "a.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    renames_out_of_the_parent = []
    real_rename = os.rename
    monkeypatch.setattr(os, "rename", lambda a, b: renames_out_of_the_parent.append(a))
    with StagedOutputDir(out, overwrite=True) as stage:
        (stage.path / "b.txt").write_text("2")
    monkeypatch.setattr(os, "rename", real_rename)
    assert renames_out_of_the_parent == []
    assert sorted(p.name for p in out.iterdir()) == [RECORD_NAME, "b.txt"]


def test_an_output_the_user_changed_is_the_users(tmp_path, four_colour_image):
    image = tmp_path / "blocks.png"
    Image.fromarray(four_colour_image).save(image)
    out = tmp_path / "out"
    assert _run("segment", image, "-k", 2, "-o", out, "-q").exit_code == 0
    (out / "report.html").write_text("<p>my notes on this run</p>")  # same path, user's text
    result = _run("segment", image, "-k", 3, "-o", out, "--overwrite", "-q")
    assert result.exit_code == 1 and "changed since imgclust wrote it" in result.output
    assert (out / "report.html").read_text() == "<p>my notes on this run</p>"
    # one the new run does not write is kept rather than deleted as stale
    assert _run("segment", image, "-k", 2, "-o", out, "--overwrite", "--no-report").exit_code == 0
    assert (out / "report.html").read_text() == "<p>my notes on this run</p>"


def test_a_hard_linked_export_of_an_edited_photo_is_still_imgclusts(photos, tmp_path):
    out = tmp_path / "out"
    args = ["-k", 2, "-o", out, "--reduce", "pca", "--no-cache", "--export", "hardlink", "-q"]
    assert _run("group", photos, *args).exit_code == 0
    exported = next((out / "clusters" / "0").iterdir())
    original = photos / exported.name.split("_", 1)[1]
    assert os.path.samefile(exported, original)
    with open(original, "ab") as handle:  # the user edits the photo in place
        handle.write(b"edited")
    assert _run("group", photos, *args, "--overwrite").exit_code == 0
    assert original.read_bytes().endswith(b"edited")  # the photo itself is never touched


def test_a_copied_or_forged_record_does_not_make_the_users_files_imgclusts(tmp_path):
    out = tmp_path / "out"
    with StagedOutputDir(out) as stage:
        (stage.path / "holiday.jpg").write_text("imgclust's")
    record = (out / RECORD_NAME).read_text()
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "holiday.jpg").write_text("the user's own photo")
    (photos / RECORD_NAME).write_text(record)  # a record that names the user's file
    with StagedOutputDir(photos, overwrite=True) as stage:
        (stage.path / "other.txt").write_text("new")
    assert (photos / "holiday.jpg").read_text() == "the user's own photo"


def test_a_record_cannot_make_a_run_delete_outside_its_folder(tmp_path):
    (tmp_path / "precious.txt").write_text("mine")
    out = tmp_path / "out"
    with StagedOutputDir(out) as stage:
        (stage.path / "a.txt").write_text("1")
    record = json.loads((out / RECORD_NAME).read_text())
    info = (tmp_path / "precious.txt").stat()
    stamp = [info.st_size, info.st_mtime_ns, info.st_ino]  # its true stamp
    for path in ("../precious.txt", str(tmp_path / "precious.txt"), "a/../../precious.txt"):
        record["files"][path] = stamp
    (out / RECORD_NAME).write_text(json.dumps(record))
    with StagedOutputDir(out, overwrite=True) as stage:
        (stage.path / "b.txt").write_text("2")
    assert (tmp_path / "precious.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == [RECORD_NAME, "b.txt"]


# --- the property: whatever is there, the user's files stay -------------------------------

_PART = st.sampled_from(["a", "b", "galleries", "x.png", "report.html", "0"])
_PATH = st.lists(_PART, min_size=1, max_size=3).map("/".join)
_PATHS = st.lists(_PATH, max_size=6, unique=True)


def _place(root: Path, paths: list[str], content: str) -> list[str]:
    """Write each of ``paths`` under ``root`` unless something is in its way; the written."""
    written = []
    for path in paths:
        target = root / path
        parents_free = all(
            not p.exists() or p.is_dir() for p in list(target.parents)[: path.count("/")]
        )
        if parents_free and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content + path)
            written.append(path)
    return written


def _run_staged(out: Path, paths: list[str], content: str) -> bool:
    """A run that writes ``paths``; whether it landed (False: refused)."""
    try:
        with StagedOutputDir(out, overwrite=True) as stage:
            _place(stage.path, paths, content)
    except OutputExistsError:
        return False
    return True


@settings(max_examples=150, deadline=None)
@given(before=_PATHS, earlier=_PATHS, after=_PATHS, new=_PATHS)
def test_whatever_is_in_the_folder_the_users_files_survive(before, earlier, after, new):
    with tempfile.TemporaryDirectory() as temporary:
        out = Path(temporary) / "out"
        out.mkdir()
        _place(out, before, "user ")
        _run_staged(out, earlier, "earlier ")
        _place(out, after, "user ")
        ours = read_record(out).owned_files()
        theirs = {p: h for p, h in _tree(out).items() if p not in ours}
        theirs.pop(RECORD_NAME, None)
        snapshot = _tree(out)
        landed = _run_staged(out, new, "new ")
        tree = _tree(out)
        for path, digest in theirs.items():  # every file of the user's, unchanged
            assert tree.get(path) == digest, path
        if not landed:
            assert tree == snapshot  # a refusal changes nothing
        else:
            written = set(_place(Path(temporary) / "probe", new, "new "))
            assert set(read_record(out).files) == written
            for path in written:
                assert (out / path).read_text() == "new " + path
            assert set(tree) == set(theirs) | written | {RECORD_NAME}
        assert _no_staging_left(Path(temporary))


# --- a commit interrupted during its moves (issue 30) -----------------------------------------


def _first_run(out: Path) -> None:
    with StagedOutputDir(out) as stage:
        for name in ("a.txt", "b.txt", "old.txt"):
            (stage.path / name).write_text(f"first {name}")
        (stage.path / "sub").mkdir()
        (stage.path / "sub" / "c.txt").write_text("first c")
    (out / "mine.txt").write_text("the user's")


def _second_files(stage: Path) -> None:
    for name in ("a.txt", "b.txt"):
        (stage / name).write_text(f"second {name}")
    (stage / "sub").mkdir()
    (stage / "sub" / "c.txt").write_text("second c")


def _interrupting(monkeypatch, *, after: int, times: int) -> None:
    """``os.replace`` out of a staging folder raises KeyboardInterrupt from the move number
    ``after`` on, ``times`` times (the moves of the commit, then of its clean-up)."""
    import imgclust.io.outputs as outputs

    real = os.replace
    state = {"moves": 0, "raised": 0}

    def replace(source, target):
        if ".imgclust-staging." in str(source) and ".imgclust-commit" not in str(source):
            state["moves"] += 1
            if state["moves"] > after and state["raised"] < times:
                state["raised"] += 1
                raise KeyboardInterrupt
        return real(source, target)

    monkeypatch.setattr(outputs.os, "replace", replace)


def _holds_the_second_run(out: Path) -> None:
    assert (out / "a.txt").read_text() == "second a.txt"
    assert (out / "b.txt").read_text() == "second b.txt"
    assert (out / "sub" / "c.txt").read_text() == "second c"
    assert not (out / "old.txt").exists()  # the first run's, not written again
    assert (out / "mine.txt").read_text() == "the user's"
    record = read_record(out)
    assert record.readable and sorted(record.owned_files()) == ["a.txt", "b.txt", "sub/c.txt"]
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [RECORD_NAME]


def test_ctrl_c_during_the_moves_still_lands_the_new_results(tmp_path, monkeypatch):
    out = tmp_path / "out"
    _first_run(out)
    _interrupting(monkeypatch, after=1, times=1)
    with pytest.raises(KeyboardInterrupt), StagedOutputDir(out, overwrite=True) as stage:
        _second_files(stage.path)
    _holds_the_second_run(out)


def test_a_run_killed_during_its_moves_is_finished_by_the_next(tmp_path, monkeypatch):
    out = tmp_path / "out"
    _first_run(out)
    _interrupting(monkeypatch, after=1, times=10**6)  # its clean-up cannot finish either
    with pytest.raises(KeyboardInterrupt), StagedOutputDir(out, overwrite=True) as stage:
        _second_files(stage.path)
    assert len(list(out.glob(".imgclust-staging.*"))) == 1  # left for the next run
    monkeypatch.undo()
    check_output_dir(out, overwrite=True)  # the next run, before any work
    _holds_the_second_run(out)
    with StagedOutputDir(out, overwrite=True) as stage:  # and it can then write its own
        (stage.path / "a.txt").write_text("third")
    assert (out / "a.txt").read_text() == "third" and not (out / "b.txt").exists()


def test_a_run_killed_between_its_rename_and_the_lock_leaves_nothing_behind(tmp_path):
    out = tmp_path / "out"
    _first_run(out)
    (out / ".imgclust-staging.lock").write_text("")  # as a run killed right after its rename
    check_output_dir(out, overwrite=True)
    assert not (out / ".imgclust-staging.lock").exists()
