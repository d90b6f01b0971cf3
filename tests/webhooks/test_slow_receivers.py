"""A receiver that trickles its answer must not hold the webhook dispatcher past the delivery timeout."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from app.notifications.fanout import fanout_all
from app.webhooks.dispatcher import dispatch_webhooks_once
from tests.api import ADMIN, badge, event

NOW = datetime.now(UTC)


@contextmanager
def trickling_receiver(head: bytes, body: bytes, every: float, seconds: float) -> Iterator[str]:
    """Answers each request with `head` at once, then `body` a byte every `every` s (for `seconds` at most)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)
                conn.sendall(head)
                ends = time.monotonic() + seconds
                for byte in body:
                    if stop.is_set() or time.monotonic() > ends:
                        return
                    conn.sendall(bytes([byte]))
                    time.sleep(every)
            except OSError:
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/hooks"
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


async def _one_delivery(client: httpx.AsyncClient, url: str) -> int:
    r = await client.post("/v1/admin/webhooks", json={"url": url, "events": ["badge.awarded"]}, headers=ADMIN)
    assert r.status_code == 201, r.text
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}])
    await event(client, "M1", "visit", NOW)
    return int(r.json()["id"])


async def _run(app: FastAPI) -> float:
    await fanout_all(app.state.db.sessionmaker, app.state.settings)
    started = time.monotonic()
    assert await asyncio.wait_for(
        dispatch_webhooks_once(app.state.db.sessionmaker, app.state.settings, now=datetime.now(UTC)), 30
    ) == 1
    return time.monotonic() - started


async def test_an_answer_whose_body_trickles_in_is_taken_at_its_status_line(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The status is all a delivery needs: a 200 whose body never ends (a byte every 0.3 s, within the read
    timeout each time) held the whole batch, and the next runs, for as long as the receiver kept going."""
    monkeypatch.setattr(app.state.settings, "webhook_timeout_seconds", 1.0)
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nContent-Type: text/plain\r\n\r\n"
    with trickling_receiver(head, b"x" * 100_000, every=0.3, seconds=20) as url:
        endpoint_id = await _one_delivery(client, url)
        assert await _run(app) < 5
    (d,) = (await client.get(f"/v1/admin/webhooks/{endpoint_id}/deliveries", headers=ADMIN)).json()["items"]
    assert d["status"] == "delivered" and d["last_status_code"] == 200


async def test_an_answer_that_never_finishes_its_headers_times_out_and_is_retried(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.state.settings, "webhook_timeout_seconds", 1.0)
    with trickling_receiver(b"HTTP/1.1 200 OK\r\n", b"X-Slow: " + b"y" * 1000, every=0.3, seconds=20) as url:
        endpoint_id = await _one_delivery(client, url)
        assert await _run(app) < 5
    (d,) = (await client.get(f"/v1/admin/webhooks/{endpoint_id}/deliveries", headers=ADMIN)).json()["items"]
    assert d["status"] == "pending" and d["attempts"] == 1 and d["last_status_code"] is None
    assert "Timeout" in d["last_error"]
