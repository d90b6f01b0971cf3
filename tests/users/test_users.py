"""Integrator member sync and friends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.api import ADMIN, badge, event


@pytest.mark.sqlite_too
async def test_upsert_creates_then_updates_partially(client: httpx.AsyncClient, make_key: Any) -> None:
    h = await make_key("users:write")
    r = await client.put(
        "/v1/users/M-9", json={"nickname": "Li", "city": "Shanghai", "tier": "premium", "segments": ["vip"]}, headers=h
    )
    assert r.status_code == 201, r.text
    assert r.json()["segments"] == ["vip"]
    r = await client.put("/v1/users/M-9", json={"city": "Beijing"}, headers=h)
    assert r.status_code == 200
    body = r.json()
    assert (body["nickname"], body["city"], body["tier"]) == ("Li", "Beijing", "premium")


@pytest.mark.sqlite_too
async def test_a_blank_city_or_tier_is_no_city_or_tier(client: httpx.AsyncClient) -> None:
    # Reports group members by tier and leaderboards by city: "" beside null would be two blank groups.
    r = await client.put("/v1/users/M-B", json={"city": " Shanghai ", "tier": "gold"}, headers=ADMIN)
    assert (r.json()["city"], r.json()["tier"]) == ("Shanghai", "gold")
    r = await client.put("/v1/users/M-B", json={"city": "", "tier": "  "}, headers=ADMIN)
    assert r.status_code == 200 and (r.json()["city"], r.json()["tier"]) == (None, None)
    tiers = (await client.get("/v1/admin/analytics/tiers", headers=ADMIN)).json()
    assert [row["tier"] for row in tiers] == [None]


@pytest.mark.sqlite_too
async def test_an_avatar_is_an_http_url_and_a_script_url_is_refused(client: httpx.AsyncClient) -> None:
    """The Mini Program shows the avatar as a web image; leaderboards show it to other members."""
    for bad in ("javascript:alert(1)", "data:image/png;base64,AAAA", "ftp://files.example/a.png", "http://"):
        r = await client.put("/v1/users/M-AV", json={"avatar_url": bad}, headers=ADMIN)
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "body.avatar_url", (bad, r.text)
    assert (await client.get("/v1/admin/users/M-AV", headers=ADMIN)).status_code == 404  # nothing was created
    r = await client.put("/v1/users/M-AV", json={"avatar_url": " https://thirdwx.qlogo.cn/a/132 "}, headers=ADMIN)
    assert r.status_code == 201 and r.json()["avatar_url"] == "https://thirdwx.qlogo.cn/a/132"
    cloud = "cloud://prod-1a2b.7072-prod-1a2b-1300000000/avatars/m-av.png"  # WeChat Cloud storage
    r = await client.put("/v1/users/M-AV", json={"avatar_url": cloud}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["avatar_url"] == cloud
    r = await client.put("/v1/users/M-AV", json={"avatar_url": ""}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["avatar_url"] is None


async def test_openid_owned_by_other_member_is_409(client: httpx.AsyncClient, make_key: Any) -> None:
    h = await make_key("users:write")
    await client.put("/v1/users/A", json={"openid": "o-1"}, headers=h)
    r = await client.put("/v1/users/B", json={"openid": "o-1"}, headers=h)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "openid_conflict"


async def test_unionid_owned_by_other_member_is_409_and_changes_nothing(
    client: httpx.AsyncClient, make_key: Any
) -> None:
    h = await make_key("users:write")
    assert (await client.put("/v1/users/A", json={"unionid": "u-1"}, headers=h)).status_code == 201
    r = await client.put("/v1/users/B", json={"unionid": "u-1", "city": "Xi'an"}, headers=h)
    assert r.status_code == 409, r.text
    assert r.json()["error"] == {"code": "unionid_conflict", "message": "unionid already belongs to another member",
                                 "details": {"external_id": "A"}}
    assert (await client.get("/v1/admin/users/B/events", headers=ADMIN)).status_code == 404  # not created half-way


async def test_upsert_rejects_unknown_fields_and_oversized_values(client: httpx.AsyncClient, make_key: Any) -> None:
    h = await make_key("users:write")
    assert (await client.put("/v1/users/A", json={"nick": "x"}, headers=h)).status_code == 422
    assert (await client.put("/v1/users/A", json={"nickname": "x" * 500}, headers=h)).status_code == 422


async def test_set_friends_replaces_list(client: httpx.AsyncClient, make_key: Any) -> None:
    h = await make_key("users:write")
    r = await client.put("/v1/users/A/friends", json={"friends": ["B", "C", "A", "B"]}, headers=h)
    assert r.status_code == 200
    assert r.json()["friends"] == ["B", "C"]
    r = await client.put("/v1/users/A/friends", json={"friends": ["D"]}, headers=h)
    assert r.json()["friends"] == ["D"]


async def test_body_too_large_is_413_json(client: httpx.AsyncClient, make_key: Any) -> None:
    h = await make_key("users:write")
    r = await client.put(
        "/v1/users/A/friends",
        content=b'{"friends": ["' + b"x" * 3_000_000 + b'"]}',
        headers={**h, "content-type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


async def test_friend_ids_must_be_valid_external_ids(client: httpx.AsyncClient, make_key: Any) -> None:
    h = await make_key("users:write")
    r = await client.put("/v1/users/A/friends", json={"friends": ["bad id!"]}, headers=h)
    assert r.status_code == 422
    assert (await client.put("/v1/users/A/friends", json={"friends": [""]}, headers=h)).status_code == 422


async def test_segments_are_short_distinct_tags(client: httpx.AsyncClient) -> None:
    r = await client.put("/v1/users/SEG-1", json={"segments": ["vip", "new", "vip"]}, headers=ADMIN)
    assert r.status_code == 201, r.text
    assert r.json()["segments"] == ["vip", "new"]
    for bad in (["x" * 65], [""]):
        r = await client.put("/v1/users/SEG-1", json={"segments": bad}, headers=ADMIN)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["details"][0]["field"] == "body.segments.0"


@pytest.mark.sqlite_too
async def test_a_member_who_logged_in_before_the_crm_sent_their_openid_is_one_member(
    client: httpx.AsyncClient, login: Any
) -> None:
    """The usual order: POS events create M-1001, the member logs in (an openid no one knows yet, so a login-only
    member), then the CRM syncs M-1001's openid. The two records become M-1001, with what the member did in the
    Mini Program meanwhile (consent, preferences, challenges joined); the login's token then lands on M-1001."""
    await badge(client, "first-purchase", [{"event": "purchase", "threshold": 1}], points=5)
    await event(client, "M-1001", "purchase", datetime.now(UTC) - timedelta(minutes=1), amount=10)
    before = await login(openid="o-mei", unionid="u-mei")
    assert (await client.get("/v1/me", headers=before)).json()["points"] == 0  # a separate, login-only member
    r = await client.post("/v1/me/subscriptions", headers=before,
                          json={"request_id": "r-1", "results": {"tmpl-badge": "accept"}})
    assert r.status_code == 200, r.text
    r = await client.put("/v1/me/preferences", json={"leaderboard_opt_out": True}, headers=before)
    assert r.status_code == 200, r.text
    r = await client.put("/v1/users/M-1001", json={"openid": "o-mei", "nickname": "Mei"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert (r.json()["openid"], r.json()["unionid"], r.json()["nickname"]) == ("o-mei", "u-mei", "Mei")
    assert (await client.get("/v1/me", headers=before)).status_code == 401  # that member is gone: log in again
    after = await login(openid="o-mei", unionid="u-mei")
    me = (await client.get("/v1/me", headers=after)).json()
    assert (me["external_id"], me["points"]) == ("M-1001", 5)
    wall = {b["key"]: b for b in (await client.get("/v1/me/badges", headers=after)).json()}
    assert wall["first-purchase"]["earned"] is True
    credits = (await client.get("/v1/me/subscriptions", headers=after)).json()["templates"]
    assert {t["template_id"]: t["credits"] for t in credits}.get("tmpl-badge") == 1
    assert (await client.get("/v1/me/preferences", headers=after)).json()["leaderboard_opt_out"] is True
    overview = (await client.get("/v1/admin/analytics/overview", headers=ADMIN)).json()
    assert overview["members"] == 1
    # A member already known by another openid is not folded: that is a conflict to resolve by hand.
    other = await login(openid="o-zed")
    assert (await client.get("/v1/me", headers=other)).status_code == 200
    r = await client.put("/v1/users/M-1001", json={"openid": "o-zed"}, headers=ADMIN)
    assert r.status_code == 409 and r.json()["error"]["code"] == "openid_conflict"


@pytest.mark.sqlite_too
async def test_a_folded_members_token_never_opens_the_member_given_its_id_next(
    client: httpx.AsyncClient, login: Any
) -> None:
    """SQLite hands the highest rowid out again once its row is deleted: a token names the member row it was
    issued for (its id and creation), not just an id."""
    await client.put("/v1/users/M-1001", json={"nickname": "Mei"}, headers=ADMIN)
    old = await login(openid="o-mei")  # a login-only member, the newest row
    assert (await client.put("/v1/users/M-1001", json={"openid": "o-mei"}, headers=ADMIN)).status_code == 200
    assert (await client.get("/v1/me", headers=old)).status_code == 401
    await client.put("/v1/users/M-2002", json={"nickname": "Zed"}, headers=ADMIN)  # the next member created
    r = await client.get("/v1/me", headers=old)
    assert r.status_code == 401, r.text


@pytest.mark.sqlite_too
async def test_a_new_external_id_taking_a_login_only_member_is_created(
    client: httpx.AsyncClient, login: Any
) -> None:
    """The member logged in first (a login-only member, no integrator id), then the CRM syncs a member id no one
    has used with that openid: for the integrator the member at /v1/users/M-NEW did not exist, so the PUT made
    it (201, as for any other new id), and the same PUT again is an update (200)."""
    headers = await login(openid="o-first")
    r = await client.put("/v1/users/M-NEW", json={"openid": "o-first", "nickname": "Mei"}, headers=ADMIN)
    assert r.status_code == 201, r.text
    assert (r.json()["external_id"], r.json()["openid"]) == ("M-NEW", "o-first")
    assert (await client.get("/v1/me", headers=headers)).json()["external_id"] == "M-NEW"  # the same record
    r = await client.put("/v1/users/M-NEW", json={"openid": "o-first", "nickname": "Mei"}, headers=ADMIN)
    assert r.status_code == 200, r.text
