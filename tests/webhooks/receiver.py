"""A local webhook receiver on 127.0.0.1: records every request and answers scripted status codes."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str = ""
    statuses: deque[int] = field(default_factory=deque)  # answered in order, then 200
    fail_once: dict[bytes, int] = field(default_factory=dict)  # first body containing the key gets this status
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    delay: float = 0.0  # seconds to wait before answering (a slow receiver)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        rec = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with rec.lock:
            rec.received.append(Received({k: v for k, v in self.headers.items()}, body))
            hit = next((k for k in rec.fail_once if k in body), None)
            status = rec.fail_once.pop(hit) if hit is not None else (rec.statuses.popleft() if rec.statuses else 200)
        if rec.delay:
            time.sleep(rec.delay)
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, receiver: Receiver) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.receiver = receiver


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    rec = Receiver()
    server = _Server(rec)
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
