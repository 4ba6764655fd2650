"""``imgclust label``: a page in the browser to label the representatives.

A small server from the standard library (:mod:`http.server`), bound to 127.0.0.1 only. Every
request must carry the random token of the URL it prints (as ``?token=`` or the
``X-Imgclust-Token`` header) and a ``Host`` of this machine; anything else is refused. It
serves one page, the list of representatives as JSON, their thumbnails (by index: no path
from a request ever reaches the file system) and takes labels, which it saves to
``labels.csv`` after every change through a temporary file and a rename. The page builds
every piece of user text with ``textContent``, so a file name or a label is shown, never run.

Every malformed request gets a 4xx answer (never a traceback on the console): a length or an
index that is not plain ASCII digits, a body that is not a JSON object of text (however deeply
nested), a body shorter than it says (a client that stops sending is answered 408 after
:data:`READ_TIMEOUT` seconds, and one that trickles a byte at a time is cut off after three,
so no handler thread waits forever), a label that is not printable text. Writes must come from the
page itself: a POST needs ``Content-Type: application/json`` (which a cross-site form cannot
send without a preflight this server never grants) and, when the browser says where it comes
from (``Origin``, ``Sec-Fetch-Site``), this server's own origin.
"""

from __future__ import annotations

import contextlib
import csv
import hmac
import json
import os
import re
import secrets
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from imgclust.errors import InvalidParameterError
from imgclust.io.outputs import csv_text, write_text_atomic
from imgclust.semi.representatives import THUMBNAILS, read_to_label

__all__ = ["READ_TIMEOUT", "LabelServer"]

LABELS_FILE = "labels.csv"
_MAX_BODY = 1 << 20
#: Seconds a client may keep the server waiting for the next part of its request before it is
#: answered 408 and dropped.
READ_TIMEOUT = 10.0
#: A whole request must arrive within this many read timeouts (a client trickling one byte at
#: a time is cut off).
_DEADLINE_TIMEOUTS = 3
_DIGITS = re.compile(r"[0-9]{1,9}")
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


def _handler(store: LabelStore, token: str, read_timeout: float):
    page = _PAGE.read_bytes()

    class Handler(BaseHTTPRequestHandler):
        server_version = "imgclust-label"
        timeout = read_timeout  # socket timeout: a slow or silent client cannot hold a thread

        def log_message(self, format, *args):
            pass

        def setup(self) -> None:
            super().setup()
            # The socket's timeout bounds each wait for a byte; a client sending one byte
            # every few seconds would pass it for ever. A whole request must arrive within
            # three read timeouts: past that the connection is shut, its thread freed.
            self._deadline = threading.Timer(_DEADLINE_TIMEOUTS * read_timeout, self._cut_off)
            self._deadline.daemon = True
            self._deadline.start()

        def _cut_off(self) -> None:
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        def finish(self) -> None:
            self._deadline.cancel()
            super().finish()

        def _arrived(self) -> None:
            """The request is read: answering it is not held to the deadline."""
            self._deadline.cancel()

        def send_error(self, code, message=None, explain=None):
            # http.server answers an unknown method with 501 and an unknown HTTP version with
            # 505; both are the client's mistake here: 405 and 400
            code = {501: 405, 505: 400}.get(int(code), code)
            super().send_error(code, message, explain)

        def _allowed(self) -> bool:
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
            if host not in ("127.0.0.1", "localhost"):
                return False
            query = parse_qs(urlsplit(self.path).query)
            given = self.headers.get("X-Imgclust-Token") or (query.get("token") or [""])[0]
            return hmac.compare_digest(given.encode(), token.encode())

        def _same_origin(self) -> bool:
            """A write from this server's own page: no other site may post labels, even one
            that learnt the token."""
            port = self.server.server_address[1]
            origin = self.headers.get("Origin")
            if origin is not None and origin not in (
                f"http://127.0.0.1:{port}",
                f"http://localhost:{port}",
            ):
                return False
            site = self.headers.get("Sec-Fetch-Site")
            return site in (None, "same-origin", "none")

        def _send(self, status: HTTPStatus, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header(
                "Content-Security-Policy",
                "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
                "script-src 'unsafe-inline'; connect-src 'self'",
            )
            self.end_headers()
            self.wfile.write(body)

        def _refuse(self, status: HTTPStatus, message: str) -> None:
            self.close_connection = True
            self._send(status, message.encode(), "text/plain; charset=utf-8")

        def do_GET(self) -> None:
            self._arrived()
            if not self._allowed():
                return self._refuse(HTTPStatus.FORBIDDEN, "forbidden: open the URL with its token")
            route = urlsplit(self.path).path
            if route == "/":
                return self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
            if route == "/api/items":
                body = json.dumps(store.listing()).encode()
                return self._send(HTTPStatus.OK, body, "application/json")
            thumb = _THUMB.fullmatch(route)
            if thumb:
                data = store.thumbnail(int(thumb.group(1)))
                if data is not None:
                    return self._send(HTTPStatus.OK, data, "image/png")
            self._refuse(HTTPStatus.NOT_FOUND, "not found")

        def do_POST(self) -> None:
            if not self._allowed():
                return self._refuse(HTTPStatus.FORBIDDEN, "forbidden: open the URL with its token")
            if urlsplit(self.path).path != "/api/labels":
                return self._refuse(HTTPStatus.NOT_FOUND, "not found")
            if not self._same_origin():
                return self._refuse(HTTPStatus.FORBIDDEN, "forbidden: labels come from the page")
            kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if kind != "application/json":
                return self._refuse(
                    HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the labels as application/json"
                )
            given = (self.headers.get("Content-Length") or "").strip()
            if not _DIGITS.fullmatch(given) or not 0 < int(given) <= _MAX_BODY:
                return self._refuse(
                    HTTPStatus.BAD_REQUEST,
                    f"send the labels as a JSON object with a Content-Length of 1 to {_MAX_BODY}",
                )
            try:
                body = self.rfile.read(int(given))
            except OSError:  # the client stopped sending: the socket timed out
                return self._refuse(HTTPStatus.REQUEST_TIMEOUT, "the request body did not arrive")
            self._arrived()
            if len(body) < int(given):
                return self._refuse(HTTPStatus.BAD_REQUEST, "the body is shorter than it says")
            try:
                changes = json.loads(body)
                if not isinstance(changes, dict):
                    raise ValueError
                labelled = store.update(changes)
            except (ValueError, KeyError, RecursionError):
                return self._refuse(
                    HTTPStatus.BAD_REQUEST, "labels must map representatives to text"
                )
            body = json.dumps({"saved": True, "labelled": labelled}).encode()
            self._send(HTTPStatus.OK, body, "application/json")

    return Handler


class _Server(ThreadingHTTPServer):
    """A threading server with a long listen queue (50 requests at once are queued, not
    reset) that reports a failed request in one line instead of a traceback."""

    request_queue_size = 128
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, (ConnectionError, TimeoutError)):
            print(f"imgclust label: a request failed: {error!r}", file=sys.stderr)


class LabelServer:
    """The labelling server of a representatives folder.

    Parameters
    ----------
    folder : path
        A folder written by ``imgclust representatives``.
    port : int, default=0
        0 picks a free port.
    token : str, optional
        The secret of the URL (default: 128 random bits).
    read_timeout : float, default=READ_TIMEOUT
        Seconds a client may take to send a request before it is answered 408.

    Examples
    --------
    >>> server = LabelServer("digits-representatives")  # doctest: +SKIP
    >>> server.start(); print(server.url)  # doctest: +SKIP
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        *,
        port: int = 0,
        token: str | None = None,
        read_timeout: float = READ_TIMEOUT,
    ):
        self.store = LabelStore(Path(folder))
        self.token = token or secrets.token_urlsafe(16)
        try:
            self.httpd = _Server(
                ("127.0.0.1", port), _handler(self.store, self.token, read_timeout)
            )
        except OSError as exc:
            raise InvalidParameterError(
                f"port {port} cannot be used ({exc.strerror}); pick another --port or leave it out"
            ) from None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        """The address to open, token included."""
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
