"""Inputs as an attacker or an odd file system makes them (issue 30): files that never end,
names that are not text, text that means something to matplotlib, XML or a terminal. Each
case is skipped with a reason or refused in one line; none hangs, eats memory or crashes.
Commands that could hang run in a child process with a deadline."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file kinds")


def _imgclust(*args, timeout: float = 60) -> subprocess.CompletedProcess:
    """The command in a child process, killed (and the test failed) past ``timeout``."""
    environment = {**os.environ, "IMGCLUST_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "imgclust", *map(str, args)],
        capture_output=True,
        timeout=timeout,
        env=environment,
    )


def _colour_folder(root: Path, per: int = 6) -> Path:
    for g, colour in enumerate(((200, 40, 40), (40, 40, 200))):
        (root / str(g)).mkdir(parents=True)
        for i in range(per):
            pixels = np.clip(np.array(colour) + 6 * i, 0, 255).astype(np.uint8)
            Image.fromarray(np.broadcast_to(pixels, (24, 24, 3)).copy()).save(
                root / str(g) / f"{i}.png"
            )
    return root


def test_pipes_and_devices_among_images_are_skipped(tmp_path):
    images = _colour_folder(tmp_path / "images")
    os.mkfifo(images / "0" / "pipe.png")
    (images / "0" / "zero.jpg").symlink_to("/dev/zero")
    (images / "1" / "random.png").symlink_to("/dev/urandom")
    out = tmp_path / "out"
    done = _imgclust("group", images, "-k", "2", "-o", out, "-q")
    assert done.returncode == 0, done.stderr.decode()
    with open(out / "skipped.csv", newline="") as handle:
        skipped = {row["path"]: row["reason"] for row in csv.DictReader(handle)}
    assert skipped == {
        "0/pipe.png": "is a named pipe (FIFO), not a file of image data; skipped",
        "0/zero.jpg": "is a character device, not a file of image data; skipped",
        "1/random.png": "is a character device, not a file of image data; skipped",
    }
    with open(out / "assignments.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 12


@pytest.mark.parametrize("command", ["segment", "classify", "edges"])
def test_a_pipe_given_as_the_input_is_one_line(tmp_path, command):
    if command == "classify":
        pytest.importorskip("rasterio", reason="the raster extra is not installed")
    pipe = tmp_path / "scene.tif"
    os.mkfifo(pipe)
    done = (
        _imgclust(command, pipe, "-k", "3", "-o", tmp_path / "out")
        if command != "edges"
        else (_imgclust(command, pipe, "-o", tmp_path / "out"))
    )
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr.decode()
    assert "named pipe (FIFO)" in lines[0] and "Traceback" not in lines[0]
    assert not (tmp_path / "out").exists()


def test_names_that_are_not_text_and_dollar_folders_are_grouped(tmp_path):
    from click.testing import CliRunner

    from imgclust.cli import cli

    root = tmp_path / "images"
    for folder, colour in (("Price $5", (200, 40, 40)), ("$$", (40, 40, 200))):
        (root / folder).mkdir(parents=True)
        for i in range(6):
            pixels = np.clip(np.array(colour) + 6 * i, 0, 255).astype(np.uint8)
            image = Image.fromarray(np.broadcast_to(pixels, (24, 24, 3)).copy())
            image.save(root / folder / f"{i}.png")
    latin1 = os.fsencode(root / "$$") + b"/caf\xe9.png"  # an old archive's Latin-1 name
    with open(latin1, "wb") as handle:
        handle.write((root / "$$" / "0.png").read_bytes())
    (root / "$$" / "\x1b[2Jclear.png").write_bytes((root / "$$" / "1.png").read_bytes())
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["group", str(root), "-k", "2", "--labels", "folders", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output  # the escape sequence is shown, not obeyed
    text = (out / "assignments.csv").read_bytes().decode("utf-8")  # valid UTF-8
    rows = {r["path"]: r for r in csv.DictReader(text.splitlines())}
    assert rows["$$/caf\\xe9.png"]["label"] == "$$" and "$$/\\x1b[2Jclear.png" in rows
    assert rows["Price $5/0.png"]["label"] == "Price $5"
    assert json_file(out / "evaluation.json")["accuracy_majority"] == 1.0
    assert (out / "confusion.png").is_file() and (out / "embedding.png").is_file()
    exported = [p.name for p in (out / "clusters").rglob("*.png")]
    assert len(exported) == 14 and any(name.endswith("_caf_.png") for name in exported)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "caf\\xe9.png" in page and "\x1b" not in page


def json_file(path: Path) -> dict:
    import json

    return json.loads(path.read_text(encoding="utf-8"))


def test_an_error_about_an_odd_name_stays_one_line(tmp_path):
    from click.testing import CliRunner

    from imgclust.cli import cli

    missing = tmp_path / "two\nlines\x1b[2J.png"
    result = CliRunner().invoke(cli, ["segment", str(missing), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "two\\nlines\\x1b[2J.png" in lines[0] and "\x1b" not in lines[0]
