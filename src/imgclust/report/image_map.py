"""The map of a collection that a person explores: ``embedding.csv``, sprite sheets, and the
interactive map section of ``report.html``.

Every image is a point at its place on the run's 2-D map (:func:`map_2d` of the clustering
space). The report carries the points as JSON inside the page (``<`` escaped, so no data can
close the script) and draws them on a canvas with ``image_map.js``; thumbnails come from
sprite sheets in ``map/`` (fixed-size cells, :data:`SPRITE_SIDE` pixels, :data:`SHEET_CELLS` a
sheet), so a page of 100,000 images loads a few dozen pictures, not 100,000. Nothing is
fetched from outside the folder: the page works from disk, zipped and mailed.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np
from PIL import Image

from imgclust.report.collection_plots import cluster_colours, map_2d

__all__ = [
    "EMBEDDING_CSV",
    "MAP_FOLDER",
    "SHEET_CELLS",
    "SPRITE_SIDE",
    "MapPoints",
    "cluster_table",
    "hex_colour",
    "map_payload",
    "map_section",
    "read_embedding_csv",
    "read_map_data",
    "write_embedding_csv",
    "write_map_data",
    "write_sprites",
]

EMBEDDING_CSV = "embedding.csv"
MAP_FOLDER = "map"
#: The map's data (:func:`map_payload`) beside its sprite sheets, for the pages written later
#: (``propagate``'s report, ``imgclust review``).
MAP_DATA = f"{MAP_FOLDER}/points.json"
#: Side of a thumbnail cell of the sprite sheets, in pixels.
SPRITE_SIDE = 48
#: Cells a row of a sheet, and cells a sheet (a sheet is at most 1,536 x 1,536 pixels).
SHEET_COLUMNS = 32
SHEET_CELLS = SHEET_COLUMNS * SHEET_COLUMNS
_SHEET_QUALITY = 80
_NOISE = "#bbbbbb"
_ASSETS = Path(__file__).parent
_QUANTA = 65535  # map positions are sent as whole numbers 0..65535 of the map's extent


@dataclass
class MapPoints:
    """The images of a run as points of its map.

    Attributes
    ----------
    ids : list of str
        The id of each image (the ``path`` column of ``assignments.csv``).
    xy : (n, 2) ndarray
        Place of each image on the 2-D map.
    clusters : (n,) int ndarray
        Cluster of each image (-1 for noise).
    ranks : (n,) int ndarray, optional
        Rank of each image in its cluster (1 nearest the centre).
    truth : list of str or None, optional
        Known label of each image.
    names : dict of int to str
        A name given to a cluster (``imgclust review``).
    files : list of path or None, optional
        The file of each image, for links that open it.
    """

    ids: list[str]
    xy: np.ndarray
    clusters: np.ndarray
    ranks: np.ndarray | None = None
    truth: Sequence[str | None] | None = None
    names: dict[int, str] = field(default_factory=dict)
    files: Sequence[os.PathLike | None] | None = None

    @classmethod
    def of(cls, embedding: np.ndarray, labels: np.ndarray, ids: list[str], **keywords):
        """Points from a clustering space (its first two principal axes beyond 2-D)."""
        xy = map_2d(np.asarray(embedding, dtype=np.float64))
        return cls(ids, xy, np.asarray(labels, dtype=np.int64), **keywords)


def write_embedding_csv(folder: Path, points: MapPoints) -> None:
    """``embedding.csv``: path, x, y, cluster, label (empty where unknown) of every image; the
    coordinates to float32 precision, as the map holds them."""
    truth = points.truth if points.truth is not None else [None] * len(points.ids)
    with open(Path(folder) / EMBEDDING_CSV, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "x", "y", "cluster", "label"])
        xy = np.asarray(points.xy, dtype=np.float32)
        for image_id, (x, y), cluster, label in zip(
            points.ids, xy.tolist(), points.clusters.tolist(), truth, strict=True
        ):
            writer.writerow([image_id, f"{x:.9g}", f"{y:.9g}", cluster, label or ""])


def read_embedding_csv(folder: Path) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """Ids, positions, clusters and labels of ``embedding.csv`` (ValueError if damaged)."""
    ids, xy, clusters, labels = [], [], [], []
    with open(Path(folder) / EMBEDDING_CSV, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        if next(reader, None) != ["path", "x", "y", "cluster", "label"]:
            raise ValueError("its header is not path,x,y,cluster,label")
        for row in reader:
            if len(row) != 5:
                raise ValueError(f"row {len(ids) + 2} has {len(row)} fields, not 5")
            ids.append(row[0])
            xy.append((float(row[1]), float(row[2])))
            clusters.append(int(row[3]))
            labels.append(row[4])
    positions = np.array(xy, dtype=np.float64).reshape(-1, 2)
    if not np.isfinite(positions).all():
        raise ValueError("a position is not a finite number")
    return ids, positions, np.array(clusters, dtype=np.int64), labels


def write_sprites(
    folder: Path,
    count: int,
    thumbnail: Callable[[int], Image.Image],
    advance: Callable[[int], None] | None = None,
) -> list[str]:
    """Thumbnails of images ``0 .. count - 1`` (``thumbnail(i)``, at most :data:`SPRITE_SIDE`
    a side) in sprite sheets ``map/sprites_NNN.jpg``; returns their paths relative to
    ``folder``. The images are made on one thread a core (Pillow decodes without the GIL)."""
    (Path(folder) / MAP_FOLDER).mkdir(exist_ok=True)
    advance = advance or (lambda n=1: None)
    sheets = []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for first in range(0, count, SHEET_CELLS):
            cells = min(SHEET_CELLS, count - first)
            rows = -(-cells // SHEET_COLUMNS)
            sheet = Image.new(
                "RGB", (min(cells, SHEET_COLUMNS) * SPRITE_SIDE, rows * SPRITE_SIDE), "white"
            )
            for cell, image in enumerate(pool.map(thumbnail, range(first, first + cells))):
                image = _fitted(image.convert("RGB"))
                x = (cell % SHEET_COLUMNS) * SPRITE_SIDE + (SPRITE_SIDE - image.width) // 2
                y = (cell // SHEET_COLUMNS) * SPRITE_SIDE + (SPRITE_SIDE - image.height) // 2
                sheet.paste(image, (x, y))
            name = f"{MAP_FOLDER}/sprites_{first // SHEET_CELLS:03d}.jpg"
            sheet.save(Path(folder) / name, quality=_SHEET_QUALITY)
            sheets.append(name)
            advance(cells)
    return sheets


def _fitted(image: Image.Image) -> Image.Image:
    """``image`` at most :data:`SPRITE_SIDE` a side; a smaller one (an 8x8 digit, a 32-pixel
    icon) enlarged to fill the cell by whole pixels, so it can be seen."""
    if max(image.size) > SPRITE_SIDE:
        image.thumbnail((SPRITE_SIDE, SPRITE_SIDE), Image.Resampling.LANCZOS)
    elif max(image.size) < SPRITE_SIDE:
        scale = SPRITE_SIDE / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.NEAREST)
    return image


def _links(files: Sequence[os.PathLike | None], folder: Path) -> dict | None:
    """Relative URLs from ``folder`` to each file, as a common root and each file's rest."""
    if not files or any(f is None for f in files):
        return None
    base = Path(folder).resolve()
    urls = [
        quote(os.fsencode(os.path.relpath(Path(f).resolve(), base)).replace(os.sep.encode(), b"/"))
        for f in files
    ]
    root = os.path.commonprefix(urls)  # noqa: RUF071 - cut back to a whole folder below
    root = root[: root.rfind("/") + 1]
    return {"root": root, "paths": [url[len(root) :] for url in urls]}


def hex_colour(rgba) -> str:
    """``#rrggbb`` of a colour of floats 0..1 (matplotlib's ``to_hex``, without importing
    matplotlib into the commands that only link a report)."""
    return "#" + "".join(f"{round(float(v) * 255):02x}" for v in rgba[:3])


def _quantised(xy: np.ndarray) -> np.ndarray:
    """Places scaled into whole numbers ``0 .. 65535`` of the map's longer side (the shorter
    one centred), y downwards as on a screen."""
    if not len(xy):
        return np.zeros((0, 2), dtype=np.int64)
    spans = np.ptp(xy, axis=0)
    extent = float(spans.max()) or 1.0
    unit = (xy - xy.min(axis=0) + (extent - spans) / 2) / extent
    unit[:, 1] = 1 - unit[:, 1]
    return np.rint(unit * _QUANTA).astype(np.int64)


def cluster_table(clusters: np.ndarray, names: dict[int, str]) -> list[dict]:
    """Each cluster's id, name, colour (as ``embedding.png`` draws it) and size; noise last."""
    ids, sizes = np.unique(np.asarray(clusters, dtype=np.int64), return_counts=True)
    size = dict(zip(ids.tolist(), sizes.tolist(), strict=True))
    found = [c for c in size if c >= 0]
    colours = cluster_colours(max(found, default=0) + 1)
    return [
        {
            "id": c,
            "name": names.get(c, ""),
            "colour": _NOISE if c < 0 else hex_colour(colours[c]),
            "size": size[c],
        }
        for c in found + [c for c in size if c < 0]
    ]


def map_payload(
    points: MapPoints, *, sheets: list[str] | None = None, folder: Path | None = None
) -> dict:
    """What the page's map script reads: positions scaled into ``0 .. 65535`` (the map's
    aspect kept, y downwards as on screen), clusters with their colours, names and sizes,
    labels, ids, links to the files (relative to ``folder``) and the sprite sheets."""
    places = _quantised(np.asarray(points.xy, dtype=np.float64).reshape(-1, 2))
    n = len(places)
    clusters = np.asarray(points.clusters, dtype=np.int64)
    table = cluster_table(clusters, points.names)
    payload: dict = {
        "n": n,
        "x": places[:, 0].tolist(),
        "y": places[:, 1].tolist(),
        "c": clusters.tolist(),
        "r": None if points.ranks is None else np.asarray(points.ranks).astype(int).tolist(),
        "clusters": table,
        "names": list(points.ids),
        "labels": None,
        "l": None,
        "links": _links(points.files, folder) if points.files is not None and folder else None,
        "sprites": None,
    }
    if points.truth is not None and any(t for t in points.truth):
        labels = sorted({t for t in points.truth if t})
        code = {label: k for k, label in enumerate(labels)}
        payload["labels"] = labels
        payload["l"] = [code[t] if t else -1 for t in points.truth]
    if sheets:
        payload["sprites"] = {
            "side": SPRITE_SIDE,
            "columns": SHEET_COLUMNS,
            "per_sheet": SHEET_CELLS,
            "sheets": sheets,
        }
    return payload


def write_map_data(folder: Path, payload: dict) -> None:
    """``map/points.json``: the map's data, for the pages written after the run."""
    (Path(folder) / MAP_FOLDER).mkdir(exist_ok=True)
    (Path(folder) / MAP_DATA).write_text(
        json.dumps(payload, ensure_ascii=False, separators=(",", ":")), encoding="utf-8"
    )


def read_map_data(folder: Path) -> dict | None:
    """The map's data written with the run's outputs, or None (no map, or a damaged file)."""
    try:
        payload = json.loads((Path(folder) / MAP_DATA).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return payload if isinstance(payload, dict) and isinstance(payload.get("n"), int) else None


def _asset(name: str) -> str:
    return (_ASSETS / name).read_text(encoding="utf-8")


def map_script() -> str:
    """The map's script and its style, for a page that builds a map with
    ``ImgclustMap.create`` itself (the review page)."""
    return _asset("image_map.js")


def map_style() -> str:
    return _asset("image_map.css")


def json_for_script(data: object) -> str:
    """``data`` as JSON that can sit inside a ``<script>`` element: every ``<`` escaped, so
    nothing in it can end the element."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def map_section(payload: dict) -> str:
    """The HTML of the interactive map: its style, its data and its script."""
    return (
        f"<style>{map_style()}</style>"
        '<div data-imgclust-map="imgclust-map-data"></div>'
        f'<script type="application/json" id="imgclust-map-data">{json_for_script(payload)}'
        "</script>"
        f"<script>{map_script()}</script>"
    )
