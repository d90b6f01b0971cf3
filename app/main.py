"""Application factory: settings, database, middleware, error handlers, routers."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from app import plugins  # noqa: F401  (registers engine listeners)
from app.config import Settings, get_settings
from app.events import fastpath
from app.events.coalescer import Coalescer
from app.integrations.wechat.gateway import WeChatGateway
from app.kit import clock, handlers
from app.kit import logging as laurel_logging
from app.kit.db import Database
from app.kit.middleware import RequestContextMiddleware, RetryConflictsMiddleware, UnhandledErrors
from app.routers import include_all

API_DESCRIPTION = """Laurel turns what members do (purchases, visits, check-ins, posts) into badges, points,
levels, challenges and leaderboards for a WeChat Mini Program loyalty program.

Callers: Mini Program members (WeChat login → bearer JWT), the admin web app and integrators (bearer API
keys with scopes `admin`, `events:write`, `users:write`, `analytics:read`). Every error is
`{"error": {"code", "message", "details"}}`."""


class LaurelAPI(FastAPI):
    """FastAPI, with the busiest call entering in front of the framework's own middleware.

    Why: `POST /v1/events` is answered by a lean path (app/events/fastpath.py); inside FastAPI it still
    passed through Starlette's and FastAPI's middleware layers (error catching, telemetry, body limit), ~5 %
    of the server's CPU at 32 clients. Here it gets our request context (request id, access log, body cap)
    and the lean path; whatever the lean path leaves goes through the whole framework as usual.
    """

    _lean: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        shown = clock.program_zone.set(self.state.settings.tz)  # responses show datetimes in program time
        try:
            await self._serve(scope, receive, send)
        finally:
            clock.program_zone.reset(shown)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == fastpath.PATH and scope["method"] == "POST":
            if self._lean is None:
                settings: Settings = self.state.settings
                self._lean = RequestContextMiddleware(
                    UnhandledErrors(fastpath.IngestFastPath(self._framework)), max_body_bytes=settings.max_body_bytes
                )
            scope["app"] = self
            await self._lean(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def _framework(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


GC_THRESHOLD = 50_000  # allocations between young-generation collections (CPython's default: 700)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    laurel_logging.configure(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from app.worker import runner

        worker = runner.start_in_app(app) if settings.worker_enabled else None
        # What exists now (modules, the app, caches) lives as long as the process: keep it out of the cyclic
        # collector's scans, which otherwise walk it on every full collection (a long-tail pause per request).
        gc.collect()
        gc.freeze()
        # A request allocates many short-lived objects (a batch of 1,000 events with live challenges: hundreds
        # of thousands) and the default threshold (700) ran the collector so often that it took ~40 % of such
        # a batch's time; reference counting frees nearly all of them anyway.
        gc.set_threshold(GC_THRESHOLD, 20, 20)
        try:
            yield
        finally:
            if worker is not None:
                await worker.stop()
            await app.state.coalescer.close()  # the groups in flight commit (or fail) before the pool closes
            await asyncio.to_thread(app.state.wechat.close)  # waits for in-flight WeChat calls
            await app.state.db.dispose()

    # No 307 redirects between "/path" and "/path/": every answer is the API's JSON.
    app = LaurelAPI(
        title="Laurel", version="0.1.0", description=API_DESCRIPTION, lifespan=lifespan, redirect_slashes=False
    )
    app.state.settings = settings
    app.state.db = Database(settings)
    app.state.coalescer = Coalescer(app.state.db, settings)
    app.state.wechat = WeChatGateway(
        app_id=settings.wechat_app_id,
        app_secret=settings.wechat_app_secret,
        base_url=settings.wechat_api_base_url,
        timeout=settings.wechat_timeout_seconds,
    )
    handlers.install(app)
    app.add_middleware(RetryConflictsMiddleware)  # inner: replays a request whose transaction deadlocked
    # Outermost of ours; POST /v1/events meets it (and the lean path) in front of the framework: see LaurelAPI.
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    include_all(app)
    return app


app = create_app()
