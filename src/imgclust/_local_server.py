"""A small web server on 127.0.0.1 for the pages that change an output folder (``imgclust
label``, ``imgclust review``), built on :mod:`http.server` from the standard library.

It binds 127.0.0.1 only. Every request must carry the random token of the URL it prints (as
``?token=`` or the ``X-Imgclust-Token`` header) and a ``Host`` of this machine (no DNS
rebinding); anything else is refused. No path from a request ever reaches the file system:
the application answers a fixed set of routes.

Every malformed request gets a 4xx answer, never a traceback on the console: a length that is
not plain ASCII digits, a body that is not a JSON object (however deeply nested), a body
shorter than it says (a client that stops sending is answered 408 after ``read_timeout``
seconds, and one that trickles a byte at a time is cut off after three, so no handler thread
waits for ever). Writes must come from the page itself: a POST needs ``Content-Type:
application/json`` (which a cross-site form cannot send without a preflight this server never
grants) and, when the browser says where it comes from (``Origin``, ``Sec-Fetch-Site``), this
server's own origin.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import re
import secrets
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from imgclust.errors import InvalidParameterError

__all__ = ["READ_TIMEOUT", "Answer", "BadRequest", "LocalServer"]

#: Seconds a client may keep the server waiting for the next part of its request before it is
#: answered 408 and dropped.
READ_TIMEOUT = 10.0
#: A whole request must arrive within this many read timeouts (a client trickling one byte at
#: a time is cut off).
_DEADLINE_TIMEOUTS = 3
_DIGITS = re.compile(r"[0-9]{1,9}")

#: What a route answers: status, body and content type.
Answer = tuple[HTTPStatus, bytes, str]


class BadRequest(ValueError):
    """A request the application refuses: answered 400 with this message."""


class Application(Protocol):
    name: str
    max_body: int

    def get(self, route: str) -> Answer | None: ...

    def post(self, route: str, body: dict) -> Answer | None: ...


def json_answer(data: object) -> Answer:
    return HTTPStatus.OK, json.dumps(data, ensure_ascii=False).encode(), "application/json"


def _handler(app: Application, token: str, read_timeout: float):
    class Handler(BaseHTTPRequestHandler):
        server_version = f"imgclust-{app.name}"
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
            """A write from this server's own page: no other site may write, even one that
            learnt the token."""
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
            answer = app.get(urlsplit(self.path).path)
            if answer is None:
                return self._refuse(HTTPStatus.NOT_FOUND, "not found")
            self._send(*answer)

        def do_POST(self) -> None:
            if not self._allowed():
                return self._refuse(HTTPStatus.FORBIDDEN, "forbidden: open the URL with its token")
            if not self._same_origin():
                return self._refuse(HTTPStatus.FORBIDDEN, "forbidden: writes come from the page")
            kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if kind != "application/json":
                return self._refuse(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send application/json")
            given = (self.headers.get("Content-Length") or "").strip()
            if not _DIGITS.fullmatch(given) or not 0 < int(given) <= app.max_body:
                return self._refuse(
                    HTTPStatus.BAD_REQUEST,
                    f"send a JSON object with a Content-Length of 1 to {app.max_body}",
                )
            try:
                body = self.rfile.read(int(given))
            except OSError:  # the client stopped sending: the socket timed out
                return self._refuse(HTTPStatus.REQUEST_TIMEOUT, "the request body did not arrive")
            self._arrived()
            if len(body) < int(given):
                return self._refuse(HTTPStatus.BAD_REQUEST, "the body is shorter than it says")
            try:
                data = json.loads(body)
                if not isinstance(data, dict):
                    raise BadRequest("send a JSON object")
                answer = app.post(urlsplit(self.path).path, data)
            except (ValueError, RecursionError) as exc:  # BadRequest, JSON errors
                message = str(exc) if isinstance(exc, BadRequest) else "the body is not JSON"
                return self._refuse(HTTPStatus.BAD_REQUEST, message)
            if answer is None:
                return self._refuse(HTTPStatus.NOT_FOUND, "not found")
            self._send(*answer)

    return Handler


class _Server(ThreadingHTTPServer):
    """A threading server with a long listen queue (50 requests at once are queued, not
    reset) that reports a failed request in one line instead of a traceback."""

    request_queue_size = 128
    daemon_threads = True
    command = "imgclust"

    def handle_error(self, request, client_address) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, (ConnectionError, TimeoutError)):
            print(f"{self.command}: a request failed: {error!r}", file=sys.stderr)


class LocalServer:
    """Serve ``app`` on 127.0.0.1 behind a token.

    Parameters
    ----------
    app : Application
        Answers GET and POST requests by route (``get(route)``, ``post(route, body)``;
        None for an unknown route).
    port : int, default=0
        0 picks a free port.
    token : str, optional
        The secret of the URL (default: 128 random bits).
    read_timeout : float, default=READ_TIMEOUT
        Seconds a client may take to send a request before it is answered 408.
    """

    def __init__(
        self,
        app: Application,
        *,
        port: int = 0,
        token: str | None = None,
        read_timeout: float = READ_TIMEOUT,
    ):
        self.token = token or secrets.token_urlsafe(16)
        try:
            self.httpd = _Server(("127.0.0.1", port), _handler(app, self.token, read_timeout))
        except OSError as exc:
            raise InvalidParameterError(
                f"port {port} cannot be used ({exc.strerror}); pick another --port or leave it out"
            ) from None
        self.httpd.command = f"imgclust {app.name}"
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
