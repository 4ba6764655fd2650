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
