"""A local stand-in for a Discord webhook, for tests and the benchmark: nothing leaves 127.0.0.1.

    with WebhookReceiver() as hook:
        hook.script(rate_limited(0.05), rate_limited(0.05))  # then `hook.default`: 204
        DiscordNotifier(hook.url).send("info", "hello")
        assert hook.received[-1].json["embeds"][0]["description"] == "hello"

Each POST (and GET: a heartbeat monitor's ping) is recorded in ``received`` before it is answered, so requests that
hang or are dropped are recorded too. Answers are taken from the queue filled by
``script()``, then ``default`` for every later request. ``url`` is shaped like a
real webhook URL and carries ``token`` (a canary: tests assert it never reaches a
log). Stopping the receiver releases hanging requests and joins every thread.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

CANARY_TOKEN = "canary-TOKEN_3f9c1e7a-must-never-be-logged"  # noqa: S105 - a canary, not a secret
WEBHOOK_ID = "123456789"


@dataclass(frozen=True)
class Reply:
    """How the receiver answers one request.

    behaviour: "answer" sends `status`, `headers` and `body` (JSON-encoded unless
    None); "hang" never answers (until the receiver stops); "drop" closes the
    connection without a word.
    """

    status: int = 204
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    behaviour: Literal["answer", "hang", "drop"] = "answer"


NO_CONTENT = Reply(204)  # what Discord answers to a delivered message
HANG = Reply(behaviour="hang")
DROP = Reply(behaviour="drop")
UNKNOWN_WEBHOOK = Reply(404, {"code": 10015, "message": "Unknown Webhook"})  # a deleted webhook


def rate_limited(retry_after: float, *, in_body: bool = True, in_header: bool = False) -> Reply:
    """A 429 as Discord sends it: `retry_after` seconds in the JSON body and/or the Retry-After header."""
    body = {"message": "You are being rate limited.", "global": False}
    if in_body:
        body["retry_after"] = retry_after
    return Reply(429, body, {"Retry-After": str(retry_after)} if in_header else {})


def server_error(status: int = 500) -> Reply:
    """A 5xx answer."""
    return Reply(status, {"message": "Internal Server Error", "code": 0})


@dataclass(frozen=True)
class Received:
    """One recorded request. `headers` names are lower-case; `json` is None if the body is not JSON."""

    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    at: float  # time.monotonic() when it arrived


def refused_url(token: str = CANARY_TOKEN) -> str:
    """A webhook-shaped URL on a 127.0.0.1 port nobody listens on: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/webhooks/{WEBHOOK_ID}/{token}"


class WebhookReceiver:
    """A threaded HTTP server on 127.0.0.1 (or another loopback `host`; free port) that records and
    answers webhook POSTs."""

    def __init__(self, *, token: str = CANARY_TOKEN, default: Reply = NO_CONTENT, host: str = "127.0.0.1") -> None:
        self.token = token
        self.default = default
        self.received: list[Received] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server(self, host)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="webhook-receiver"
        )

    @property
    def url(self) -> str:
        """``http://<host>:<port>/api/webhooks/123456789/<token>``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api/webhooks/{WEBHOOK_ID}/{self.token}"

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with `replies`, in order; `default` after them."""
        with self._lock:
            self._replies.extend(replies)

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging requests, stop serving and join every thread."""
        self._stopping.set()
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()  # joins the request threads

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _record(self, request: Received) -> Reply:
        with self._lock:
            self.received.append(request)
            return self._replies.popleft() if self._replies else self.default


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # so server_close() joins the request threads
    block_on_close = True

    def __init__(self, receiver: WebhookReceiver, host: str) -> None:
        super().__init__((host, 0), _Handler)
        self.receiver = receiver


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 5  # never wait forever on a client that sends nothing

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        headers = {name.lower(): value for name, value in self.headers.items()}
        receiver = self.server.receiver
        reply = receiver._record(Received(self.path, headers, body, parsed, time.monotonic()))
        self.close_connection = True
        if reply.behaviour == "hang":
            receiver._stopping.wait()
        if reply.behaviour != "answer":
            return
        data = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # a push monitor's ping (src/notifications/heartbeat.py): recorded the same way
        self.do_POST()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test output is not the place for an access log."""
