"""A lean HTTP path for the busiest call, `POST /v1/events`, in front of FastAPI (see `LaurelAPI` in
app/main.py, which hands it such requests before the framework's own middleware).

Why: with group commit the engine spends well under half of an event's CPU; the rest went to FastAPI
resolving the route and its dependencies for every request (≈0.15–0.2 ms of Python per call on the
benchmark machine, more than the event's share of the shared transaction). This middleware answers the
ordinary case itself — a bearer API key with `events:write`, a JSON body that is a valid event, an
ingestion that succeeds — through the same code the endpoint calls (`EventIn`, the coalescer) and with
the same response body. A stored key is checked by the coalescer inside the transaction that records the
event, one query per group: a revoked key stops at once, and a busy integrator costs no transaction of
its own per request.

Everything else goes on, unchanged and with the body it read, to the full FastAPI app (`self.app`): a missing or wrong
key, a body that does not validate, and an ingestion that raised. The endpoint then answers with its usual
error (401/403/422/409/503…) because it meets the same condition again; re-running a failed ingestion is
safe, as a failure applies nothing and an event id is idempotent.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from app.auth.service import bootstrap_principal
from app.auth.tokens import split_prefix
from app.events.schemas import EventIn, IngestResult
from app.kit.middleware import read_body, replaying

PATH = "/v1/events"


class IngestFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            return  # the client went away before sending its body
        result = await _ingest(scope, body)
        if result is None:
            await self.app(scope, replaying(body, receive), send)
            return
        payload = result.model_dump_json().encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(payload)).encode()), (b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})


async def _ingest(scope: Scope, body: bytes) -> IngestResult | None:
    """The event's outcome, or None when the full app should answer instead."""
    authorization = content_type = None
    for name, value in scope["headers"]:
        if name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
        elif name == b"content-type" and content_type is None:
            content_type = value.decode("latin-1")
    if authorization is None or content_type is None:
        return None
    if content_type.partition(";")[0].strip().lower() != "application/json":
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()  # as FastAPI's HTTPBearer reads it
    if scheme.lower() != "bearer" or not token:
        return None
    state = scope["app"].state
    stored: str | None = None  # a stored key is checked by the coalescer, in the transaction of the event
    if bootstrap_principal(state.settings, token) is None:
        if split_prefix(token) is None:
            return None  # a member's token, or nothing we issued
        stored = token
    try:
        item = EventIn.model_validate(json.loads(body))
    except Exception:
        return None
    try:
        result: IngestResult = await state.coalescer.ingest(item, stored)
    except Exception:  # the database is down, the event was refused…: the full app meets it again and says so
        return None
    return result
