"""``imgclust label``: a page in the browser to label the representatives.

A server on 127.0.0.1 behind a token (:mod:`imgclust._local_server`, which also says how
malformed and foreign requests are refused). It serves one page, the list of representatives
as JSON, their thumbnails (by index: no path from a request ever reaches the file system)
and takes labels, which it saves to ``labels.csv`` after every change through a temporary
file and a rename. The page builds every piece of user text with ``textContent``, so a file
name or a label is shown, never run.

Besides the refusals of every such server (a length that is not plain ASCII digits, a body
that is not a JSON object, a client that stops sending or trickles, a write from another
origin), an index that is not plain ASCII digits and a label that is not printable text are
refused with a 4xx.
"""

from __future__ import annotations

import csv
import os
import re
import threading
from http import HTTPStatus
from pathlib import Path

from imgclust._local_server import Answer, BadRequest, LocalServer, json_answer
from imgclust.errors import InvalidParameterError
from imgclust.io.outputs import csv_text, write_text_atomic
from imgclust.semi.representatives import THUMBNAILS, read_to_label

__all__ = ["LabelServer"]

LABELS_FILE = "labels.csv"
_MAX_BODY = 1 << 20
_THUMB = re.compile(r"/thumb/([0-9]{1,9})")
_PAGE = Path(__file__).with_name("label_page.html")


class LabelStore:
    """The representatives of a folder and their labels, saved on every change."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.items = read_to_label(folder)
        if not self.items:
            raise InvalidParameterError(f"{folder}: to_label.csv lists no representatives")
        self.path = folder / LABELS_FILE
        self.labels = {row["path"]: (row.get("label") or "") for row in self.items}
        self._lock = threading.Lock()
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        try:
            with open(self.path, newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise InvalidParameterError(
                f"{self.path} cannot be read ({exc}); move it away to start labelling afresh"
            ) from None
        for row in rows:
            if row.get("path") in self.labels:
                self.labels[row["path"]] = row.get("label") or ""

    def listing(self) -> list[dict]:
        return [
            {
                "index": n,
                "path": row["path"],
                "cluster": int(row["cluster"]),
                "label": self.labels[row["path"]],
            }
            for n, row in enumerate(self.items)
        ]

    def thumbnail(self, index: int) -> bytes | None:
        if not 0 <= index < len(self.items):
            return None
        root = (self.folder / THUMBNAILS).resolve()
        path = (root / f"{int(self.items[index]['cluster'])}.png").resolve()
        if path.parent != root or not path.is_file():
            return None
        return path.read_bytes()

    def update(self, changes: dict) -> int:
        """Set the labels of ``changes`` (path -> label) and save; returns how many are set.

        A label must be text that a file can hold: a lone surrogate (valid JSON, ``"\\ud800"``)
        or a control character is refused, so a save never fails after the page was told
        that its labels were kept."""
        unknown = [p for p in changes if p not in self.labels]
        if unknown or not all(_text_a_file_can_hold(v) for v in changes.values()):
            raise KeyError("not a representative, or a label that is not text")
        with self._lock:
            for path, label in changes.items():
                self.labels[path] = label.strip()[:200]
            self._save()
            return sum(1 for v in self.labels.values() if v)

    def _save(self) -> None:
        rows = [[row["path"], self.labels[row["path"]]] for row in self.items]
        write_text_atomic(self.path, csv_text(["path", "label"], rows))


def _text_a_file_can_hold(value) -> bool:
    """Printable text: no lone surrogate (which UTF-8 cannot encode), no control character."""
    return isinstance(value, str) and value.isprintable()


class _LabelApplication:
    """The routes of the labelling page: the page, the list, thumbnails by index, labels."""

    name = "label"
    max_body = _MAX_BODY

    def __init__(self, store: LabelStore) -> None:
        self.store = store
        self.page = _PAGE.read_bytes()

    def get(self, route: str) -> Answer | None:
        if route == "/":
            return HTTPStatus.OK, self.page, "text/html; charset=utf-8"
        if route == "/api/items":
            return json_answer(self.store.listing())
        thumb = _THUMB.fullmatch(route)
        data = self.store.thumbnail(int(thumb.group(1))) if thumb else None
        return None if data is None else (HTTPStatus.OK, data, "image/png")

    def post(self, route: str, body: dict) -> Answer | None:
        if route != "/api/labels":
            return None
        try:
            labelled = self.store.update(body)
        except KeyError:
            raise BadRequest("labels must map representatives to text") from None
        return json_answer({"saved": True, "labelled": labelled})


class LabelServer(LocalServer):
    """The labelling server of a representatives folder.

    Parameters
    ----------
    folder : path
        A folder written by ``imgclust representatives``.
    **server_options
        ``port``, ``token``, ``read_timeout`` of :class:`~imgclust._local_server.LocalServer`.

    Examples
    --------
    >>> server = LabelServer("digits-representatives")  # doctest: +SKIP
    >>> server.start(); print(server.url)  # doctest: +SKIP
    """

    def __init__(self, folder: str | os.PathLike, **server_options) -> None:
        self.store = LabelStore(Path(folder))
        super().__init__(_LabelApplication(self.store), **server_options)
