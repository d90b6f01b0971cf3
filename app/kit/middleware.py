"""Pure ASGI middleware (cheaper than BaseHTTPMiddleware on the ingestion path)."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import error_body
from app.kit.handlers import RETRY_HEADER
from app.kit.logging import request_id_var

log = logging.getLogger("laurel.http")
_RID_OK = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
IN_CONTEXT = "laurel.request_context"  # scope key: an outer RequestContextMiddleware already wraps this request


def new_request_id() -> str:
    """128 random bits as hex: unique enough to trace a request, without uuid4's system call per request."""
    return f"{random.getrandbits(128):032x}"


class BodyTooLarge(Exception):
    pass


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None if the client went away first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that hands an app the body already read, then the client's further messages (disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class RequestContextMiddleware:
    """Request id (echoed in X-Request-ID), a JSON access log line, and a request body size cap."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or IN_CONTEXT in scope:
            await self.app(scope, receive, send)
            return
        scope[IN_CONTEXT] = True
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if incoming and _RID_OK.match(incoming) else new_request_id()
        token = request_id_var.set(rid)
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        length = headers.get(b"content-length")
        try:
            if length is not None and length.isdigit() and int(length) > self.max_body:
                await self._too_large(send_wrapper)
                return
            received = 0

            async def receive_wrapper() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body:
                        raise BodyTooLarge()
                return message

            try:
                await self.app(scope, receive_wrapper, send_wrapper)
            except BodyTooLarge:
                await self._too_large(send_wrapper)
        finally:
            if log.isEnabledFor(logging.INFO):  # the access line's fields cost something even when dropped
                log.info(
                    "request",
                    extra={
                        "fields": {
                            "method": scope.get("method"),
                            "path": scope.get("path"),
                            "status": status_holder["status"],
                            "ms": round((time.perf_counter() - started) * 1000, 2),
                        }
                    },
                )
            request_id_var.reset(token)

    async def _too_large(self, send: Any) -> None:
        body = json.dumps(error_body("payload_too_large", f"Request body exceeds {self.max_body} bytes", None)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


class UnhandledErrors:
    """An exception escaping `app` becomes the API's JSON 500 (logged with the request id), as FastAPI's own
    error middleware would make it; for apps mounted in front of the framework (see `LaurelAPI`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except BodyTooLarge:
            raise  # the request context answers 413
        except Exception:
            logging.getLogger("laurel.errors").exception("unhandled error")
            if started:
                raise  # too late for a JSON answer: the server closes the connection
            body = json.dumps(error_body("internal_error", "Internal server error", None)).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})


class RetryConflictsMiddleware:
    """Run a write request again when its transaction lost a deadlock, serialization or unique-key race.

    The handler marks such failures (an internal header on its 503 or 409); the transaction was rolled back as a
    whole, so replaying the buffered request body is safe. Only the final attempt's response is sent.
    """

    def __init__(self, app: ASGIApp, attempts: int = 3) -> None:
        self.app = app
        self.attempts = attempts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            return  # the client went away before sending its body
        for attempt in range(self.attempts):
            captured: list[Message] = []

            async def capture(message: Message, sink: list[Message] = captured) -> None:
                sink.append(message)

            await self.app(scope, replaying(body, receive), capture)
            start = captured[0] if captured else None
            retry = start is not None and any(k == RETRY_HEADER for k, _ in start.get("headers", []))
            if retry and attempt < self.attempts - 1:
                await asyncio.sleep(random.uniform(0.005, 0.03) * (attempt + 1))
                continue
            for message in captured:
                if message["type"] == "http.response.start":
                    message = {
                        **message,
                        "headers": [(k, v) for k, v in message.get("headers", []) if k != RETRY_HEADER],
                    }
                await send(message)
            return
