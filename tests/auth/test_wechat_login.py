"""WeChat login end to end: the app, wechatpy and a fake WeChat server over real HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.fakes.wechat_server import FakeWeChat


@pytest.mark.sqlite_too
async def test_login_creates_member_and_token_opens_me(client: httpx.AsyncClient, wechat: FakeWeChat) -> None:
    wechat.add_code("c1", "openid-1", "union-1")
    r = await client.post("/v1/auth/wechat/login", json={"code": "c1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    assert body["user"]["id"] > 0 and body["user"]["level"] is None
    assert "session_key" not in r.text
    assert "/cgi-bin/token" not in wechat.paths()  # login needs no access token
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["id"] == body["user"]["id"]
    assert me.json()["next_level"]["name"] == "Community Starter"
    assert me.json()["points_to_next"] == 5


async def test_login_again_finds_same_member(client: httpx.AsyncClient, wechat: FakeWeChat) -> None:
    wechat.add_code("a", "same-openid")
    wechat.add_code("b", "same-openid")
    first = (await client.post("/v1/auth/wechat/login", json={"code": "a"})).json()
    second = (await client.post("/v1/auth/wechat/login", json={"code": "b"})).json()
    assert first["user"]["id"] == second["user"]["id"]


async def test_login_links_member_created_by_integrator(
    client: httpx.AsyncClient, wechat: FakeWeChat, make_key: object
) -> None:
    headers = await make_key("users:write")  # type: ignore[operator]
    r = await client.put("/v1/users/M-1", json={"openid": "linked-openid", "nickname": "Mei"}, headers=headers)
    assert r.status_code == 201
    wechat.add_code("c", "linked-openid")
    login = (await client.post("/v1/auth/wechat/login", json={"code": "c"})).json()
    assert login["user"]["external_id"] == "M-1"
    assert login["user"]["nickname"] == "Mei"


@pytest.mark.parametrize(
    ("errcode", "status", "code"),
    [
        (40029, 401, "wechat_invalid_code"),
        (45011, 429, "wechat_rate_limited"),
        (40226, 403, "wechat_user_restricted"),
        (-1, 503, "wechat_unavailable"),
    ],
)
async def test_wechat_errors_map_to_clear_statuses(
    client: httpx.AsyncClient, wechat: FakeWeChat, errcode: int, status: int, code: str
) -> None:
    wechat.add_code("bad", "x")
    wechat.fail_codes["bad"] = errcode
    r = await client.post("/v1/auth/wechat/login", json={"code": "bad"})
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


async def test_unknown_code_is_401(client: httpx.AsyncClient, wechat: FakeWeChat) -> None:
    r = await client.post("/v1/auth/wechat/login", json={"code": "never-issued"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "wechat_invalid_code"


async def test_wechat_down_is_503_not_500(client: httpx.AsyncClient, wechat: FakeWeChat) -> None:
    wechat.add_code("c", "o")
    wechat.down = True
    r = await client.post("/v1/auth/wechat/login", json={"code": "c"})
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "wechat_unavailable"


async def test_wechat_timeout_is_503(client: httpx.AsyncClient, wechat: FakeWeChat) -> None:
    wechat.add_code("c", "o")
    wechat.delay_seconds = 3.0  # beyond the 2 s timeout the tests configure
    r = await client.post("/v1/auth/wechat/login", json={"code": "c"})
    assert r.status_code == 503


async def test_login_body_rejects_unknown_fields(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/auth/wechat/login", json={"code": "x", "extra": 1})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "validation_error"
    assert any(d["field"].endswith("extra") for d in err["details"])


async def test_one_person_logging_in_through_six_apps_at_once_becomes_one_member(
    app: object, wechat: FakeWeChat
) -> None:
    # Mini Programs of one open platform: different openids, the same unionid (one person), at the same moment.
    for i in range(6):
        wechat.add_code(f"u{i}", f"app{i}-openid", "shared-union")
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    clients = [httpx.AsyncClient(transport=transport, base_url=f"http://c{i}") for i in range(6)]
    try:
        replies = await asyncio.gather(
            *(c.post("/v1/auth/wechat/login", json={"code": f"u{i}"}) for i, c in enumerate(clients))
        )
    finally:
        for c in clients:
            await c.aclose()
    assert [r.status_code for r in replies] == [200] * 6, [r.text for r in replies]
    assert len({r.json()["user"]["id"] for r in replies}) == 1
    async with app.state.db.sessionmaker() as s:  # type: ignore[attr-defined]
        members = (await s.execute(text("SELECT count(*), count(unionid) FROM users"))).one()
    assert tuple(members) == (1, 1)


@pytest.mark.parametrize("sub", [99999999999999999999999, 0, -5])
async def test_a_signed_token_naming_no_possible_member_is_a_401(
    client: httpx.AsyncClient, app: object, sub: int
) -> None:
    from app.auth.tokens import issue_user_token

    token, _ttl = issue_user_token(app.state.settings, sub)  # type: ignore[attr-defined]
    r = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token", r.text


async def test_a_busy_wechat_is_asked_once_more_and_the_login_goes_through(
    client: httpx.AsyncClient, wechat: FakeWeChat
) -> None:
    """-1 (system busy) does not spend the code: asked again after a short pause, as WeChat advises."""
    wechat.add_code("busy-once", "openid-busy")
    wechat.fail_once["busy-once"] = -1
    r = await client.post("/v1/auth/wechat/login", json={"code": "busy-once"})
    assert r.status_code == 200, r.text
    assert wechat.login_codes.count("busy-once") == 2
    # Busy twice in a row is a 503, after two asks, not more.
    wechat.add_code("busy", "openid-busy-2")
    wechat.fail_codes["busy"] = -1
    r = await client.post("/v1/auth/wechat/login", json={"code": "busy"})
    assert r.status_code == 503 and wechat.login_codes.count("busy") == 2


async def test_a_login_replayed_after_a_lost_race_does_not_spend_its_code_twice(
    client: httpx.AsyncClient, wechat: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transaction lost a deadlock after WeChat took the code: the replay reuses the exchange (a second
    jscode2session with a used code would answer 'invalid code' for a login that had worked)."""
    from sqlalchemy.exc import DBAPIError

    from app.users import service as users_service

    class _Deadlock(Exception):
        pgcode = "40P01"

    real = users_service.find_or_create_by_openid
    calls = {"n": 0}

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise DBAPIError("INSERT INTO users …", {}, _Deadlock("deadlock detected"))
        return await real(*args, **kwargs)

    monkeypatch.setattr(users_service, "find_or_create_by_openid", flaky)
    wechat.add_code("once-only", "openid-replayed")
    r = await client.post("/v1/auth/wechat/login", json={"code": "once-only"})
    assert r.status_code == 200, r.text
    assert calls["n"] == 2 and wechat.login_codes.count("once-only") == 1
