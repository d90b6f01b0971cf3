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
    # Probes that use HEAD (load balancers, uptime checkers) get the same status, without a body.
    for path in ("/healthz", "/readyz"):
        r = await client.head(path)
        assert r.status_code == 200 and r.content == b"", (path, r.status_code)
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


async def test_ready_is_503_until_the_database_is_migrated_to_head(tmp_path: Any, fake_wechat: Any) -> None:
    """A replica started before `laurel db upgrade` ran is not put in rotation: no schema, or an older one."""
    from app.kit import migrate
    from tests.conftest import _in_thread

    url = f"sqlite+aiosqlite:///{tmp_path}/ready.db"
    app = create_app(make_settings(url, fake_wechat.base_url))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/readyz")
        assert r.status_code == 503 and r.json()["error"]["code"] == "not_ready", r.text
        _in_thread(migrate.upgrade, url, "0007_event_outcomes")
        r = await c.get("/readyz")
        assert r.status_code == 503, r.text
        assert r.json()["error"]["details"]["current"] == ["0007_event_outcomes"]
        _in_thread(migrate.upgrade, url)
        assert (await c.get("/readyz")).status_code == 200
    await app.state.db.dispose()
