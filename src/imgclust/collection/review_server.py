"""``imgclust review``: the map of a ``group`` output folder in the browser, with editing.

A server on 127.0.0.1 behind a token (:mod:`imgclust._local_server`: the label server's
protections). Routes: the page, the map's data (``/api/map``), sprite sheets by number
(``/sprites/N``), an image by its row (``/image/N``: the original, re-encoded as a JPEG of at
most :data:`IMAGE_SIDE` pixels, so only images of the reviewed run are ever read), and one
write (``/api/edit``), saved into ``review.json`` before it is answered. No path from a
request reaches the file system.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import threading
from http import HTTPStatus
from pathlib import Path

from PIL import Image

from imgclust._local_server import Answer, BadRequest, LocalServer, json_answer
from imgclust.collection.review import ReviewStore
from imgclust.collection.sources import decode_image
from imgclust.errors import ImageReadError, ImgclustError
from imgclust.io.images import read_regular_file
from imgclust.report.image_map import MAP_FOLDER, map_script, map_style

__all__ = ["IMAGE_SIDE", "ReviewServer"]

#: Longer side of an image shown large on the review page.
IMAGE_SIDE = 1600
_PAGE = Path(__file__).with_name("review_page.html")
_SPRITES = re.compile(r"/sprites/([0-9]{1,4})")
_IMAGE = re.compile(r"/image/([0-9]{1,9})")
#: An edit moves at most this many bytes of JSON (100,000 image numbers fit easily).
_MAX_BODY = 8 << 20


class _ReviewApplication:
    name = "review"
    max_body = _MAX_BODY

    def __init__(self, store: ReviewStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        page = _PAGE.read_text(encoding="utf-8")
        page = page.replace("/*MAP_STYLE*/", map_style()).replace("/*MAP_SCRIPT*/", map_script())
        self.page = page.encode()
        self.sheets = self._sheets()
        self.images = self._image_files()

    def _sheets(self) -> list[str]:
        sprites = (self.store.map_data or {}).get("sprites") or {}
        sheets = sprites.get("sheets") if isinstance(sprites, dict) else None
        expected = [f"{MAP_FOLDER}/sprites_{n:03d}.jpg" for n in range(len(sheets or []))]
        return expected if sheets == expected else []

    def _image_files(self) -> list[Path] | None:
        """The file of each image: the run's folder and the image's id (a path under it)."""
        run = self.store.summary.get("run")
        root = run.get("images") if isinstance(run, dict) else None
        if not isinstance(root, str) or not Path(root).is_dir():
            return None
        base = Path(root).resolve()
        return [base / image_id for image_id in self.store.ids]

    def map_data(self) -> dict:
        with self._lock:
            data = self.store.payload()
            data.update(self.store.state())
        if data.get("sprites"):  # by number; the page adds its token to these addresses
            sheets = [f"/sprites/{n}" for n in range(len(self.sheets))]
            data["sprites"] = dict(data["sprites"], sheets=sheets) if sheets else None
        data["images"] = self.images is not None  # the originals can be shown large
        folder = str(self.store.folder)
        data["apply_command"] = shlex.join(["imgclust", "review", folder, "--apply"])
        return data

    def get(self, route: str) -> Answer | None:
        if route == "/":
            return HTTPStatus.OK, self.page, "text/html; charset=utf-8"
        if route == "/api/map":
            return json_answer(self.map_data())
        sheet = _SPRITES.fullmatch(route)
        if sheet and int(sheet.group(1)) < len(self.sheets):
            path = self.store.folder / self.sheets[int(sheet.group(1))]
            try:
                return HTTPStatus.OK, read_regular_file(path), "image/jpeg"
            except (OSError, ImageReadError):
                return None
        image = _IMAGE.fullmatch(route)
        if image and self.images is not None and int(image.group(1)) < len(self.images):
            return self._image(self.images[int(image.group(1))])
        return None

    @staticmethod
    def _image(path: Path) -> Answer | None:
        try:
            picture = decode_image(read_regular_file(path), draft_size=IMAGE_SIDE)
        except (OSError, ImageReadError):
            return None
        picture = picture.convert("RGB")
        picture.thumbnail((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=88)
        return HTTPStatus.OK, buffer.getvalue(), "image/jpeg"

    def post(self, route: str, body: dict) -> Answer | None:
        if route != "/api/edit":
            return None
        with self._lock:
            try:
                state = self.store.edit(body)
            except ValueError as exc:
                raise BadRequest(str(exc)) from None
            except (OSError, ImgclustError) as exc:  # a full disk: nothing was changed
                message = f"review.json could not be saved ({exc}); nothing was changed"
                return HTTPStatus.INTERNAL_SERVER_ERROR, message.encode(), "text/plain"
        return json_answer(state)


class ReviewServer(LocalServer):
    """The review page of a ``group`` output folder.

    Parameters
    ----------
    folder : path
        An output folder of ``imgclust group``.
    **server_options
        ``port``, ``token``, ``read_timeout`` of :class:`~imgclust._local_server.LocalServer`.

    Examples
    --------
    >>> server = ReviewServer("photos-groups")  # doctest: +SKIP
    >>> server.start(); print(server.url)  # doctest: +SKIP
    """

    def __init__(self, folder: str | os.PathLike, **server_options) -> None:
        self.store = ReviewStore(folder)
        super().__init__(_ReviewApplication(self.store), **server_options)
