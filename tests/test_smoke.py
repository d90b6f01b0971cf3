"""The service starts, answers its probes, and renders errors in one shape."""

from __future__ import annotations

import gc
from typing import Any

import httpx
import pytest

from app.main import GC_THRESHOLD, create_app
from tests.conftest import make_settings


@pytest.mark.sqlite_too
async def test_health_and_ready_on_both_backends(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ready"
    assert r.headers["x-request-id"]


async def test_unknown_route_is_json_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/nope")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


async def test_trailing_slash_is_a_json_404_not_a_redirect(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/admin/badges/")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


async def test_startup_raises_the_collectors_threshold(tmp_path: Any, fake_wechat: Any) -> None:
    """Batches allocate hundreds of thousands of short-lived objects: the default threshold cost ~40 % of a
    batch with live challenges in collector passes."""
    before = gc.get_threshold()
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path}/gc.db", fake_wechat.base_url))
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_threshold()[0] == GC_THRESHOLD > before[0]
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
