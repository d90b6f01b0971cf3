"""The member's badge collection, details, sharing, and admin grants, revokes, audit and statistics."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select, update

from app.kit.clock import utcnow
from app.models import UserBadge
from tests.api import ADMIN, awarded, badge, event

NOW = datetime.now(UTC) - timedelta(minutes=1)


async def _member(client: httpx.AsyncClient, login: Any, external_id: str) -> dict[str, str]:
    await client.put(f"/v1/users/{external_id}", json={"openid": f"o-{external_id}"}, headers=ADMIN)
    return await login(openid=f"o-{external_id}")  # type: ignore[no-any-return]


@pytest.mark.sqlite_too
async def test_collection_shows_earned_and_locked_with_live_progress(client: httpx.AsyncClient, login: Any) -> None:
    me = await _member(client, login, "M1")
    crit = {
        "event": "visit",
        "aggregate": "count_distinct",
        "field": "store_id",
        "threshold": 3,
        "window": {"type": "calendar", "unit": "month"},
    }
    await badge(client, "store-explorer", [crit], name="Store Explorer", translations={"zh-CN": {"name": "探店达人"}})
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}])
    await badge(client, "hidden-vip", [], visibility="invite_only")
    await badge(client, "draft-one", [{"event": "visit", "threshold": 1}], status="draft")
    await event(client, "M1", "visit", NOW, store_id="S1")
    await event(client, "M1", "visit", NOW, store_id="S2")
    items = {b["key"]: b for b in (await client.get("/v1/me/badges", headers=me)).json()}
    assert set(items) == {"store-explorer", "first-visit"}
    explorer = items["store-explorer"]
    assert explorer["earned"] is False and explorer["earned_at"] is None
    assert explorer["progress"]["current"] == 2 and explorer["progress"]["target"] == 3
    # Counts are whole numbers, as in the event's reply (2, not 2.0).
    assert (type(explorer["progress"]["current"]), type(explorer["progress"]["target"])) == (int, int)
    assert explorer["progress"]["text"] == "2 of 3 stores this month"  # the issue's own example
    assert explorer["progress"]["window_end"] is not None
    first = items["first-visit"]
    assert first["earned"] is True and first["earned_at"] and first["progress"] is None
    assert first["rarity"] == 1.0
    zh = {b["key"]: b for b in (await client.get("/v1/me/badges", headers={**me, "Accept-Language": "zh-CN"})).json()}
    assert zh["store-explorer"]["name"] == "探店达人"


async def test_rarity_is_share_of_members(client: httpx.AsyncClient, login: Any) -> None:
    me = await _member(client, login, "R1")
    await client.put("/v1/users/R2", json={}, headers=ADMIN)
    await client.put("/v1/users/R3", json={}, headers=ADMIN)
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}])
    await event(client, "R1", "visit", NOW)
    detail = (await client.get("/v1/badges/first-visit", headers=me)).json()
    assert detail["rarity"] == 1 / 3 and detail["rarity_percent"] == 33.33  # the share exact, the percent rounded
    stats = (await client.get("/v1/admin/badges/first-visit/stats", headers=ADMIN)).json()
    assert stats["rarity"] == 1 / 3
    await client.put("/v1/users/R4", json={}, headers=ADMIN)
    detail = (await client.get("/v1/badges/first-visit", headers=me)).json()
    assert detail["rarity"] == 0.25 and detail["rarity_percent"] == 25.0


async def test_share_card_only_for_held_badge(client: httpx.AsyncClient, login: Any) -> None:
    me = await _member(client, login, "S1")
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}], icon="trophy")
    r = await client.get("/v1/me/badges/first-visit/share", headers=me)
    assert r.status_code == 404
    await event(client, "S1", "visit", NOW)
    share = (await client.get("/v1/me/badges/first-visit/share", headers=me)).json()
    assert share["path"].startswith("/pages/") and "first-visit" in share["path"]
    assert share["image_url"].endswith("/v1/icons/trophy.svg")
    assert share["timeline"]["query"] == share["query"]


async def test_an_svg_icon_is_shared_as_the_configured_png_card(
    app: Any, client: httpx.AsyncClient, login: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WeChat's share card shows PNG/JPEG only; the built-in icons are SVG."""
    card = "https://cdn.brand.example/share-card.png"
    monkeypatch.setattr(app.state.settings, "share_image_url", card)
    me = await _member(client, login, "S2")
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}], icon="trophy")
    await event(client, "S2", "visit", NOW)
    share = (await client.get("/v1/me/badges/first-visit/share", headers=me)).json()
    assert share["image_url"] == card and share["timeline"]["image_url"] == card


async def test_badge_icon_urls_hold_with_a_public_base_url_ending_in_a_slash(
    app: Any, client: httpx.AsyncClient, login: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`LAUREL_PUBLIC_BASE_URL=https://cdn.example.com/` gave badges "https://cdn.example.com//v1/icons/…", a path
    no route serves, while the icon library (same setting) gave single-slash URLs."""
    monkeypatch.setattr(app.state.settings, "public_base_url", "https://cdn.example.com/")
    me = await _member(client, login, "S3")
    created = await badge(client, "first-visit", [{"event": "visit", "threshold": 1}], icon="trophy")
    assert created["icon_url"] == "https://cdn.example.com/v1/icons/trophy.svg"
    await event(client, "S3", "visit", NOW)
    (mine,) = [b for b in (await client.get("/v1/me/badges", headers=me)).json() if b["key"] == "first-visit"]
    assert mine["icon_url"] == "https://cdn.example.com/v1/icons/trophy.svg"
    share = (await client.get("/v1/me/badges/first-visit/share", headers=me)).json()
    assert share["image_url"] == "https://cdn.example.com/v1/icons/trophy.svg"
    assert (await client.get(share["image_url"].removeprefix("https://cdn.example.com"))).status_code == 200


@pytest.mark.parametrize("icon_form", ["upload:{id}", "{id}"])
async def test_an_uploaded_svg_icon_is_shared_as_the_configured_png_card(
    app: Any, client: httpx.AsyncClient, login: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, icon_form: str
) -> None:
    """An uploaded SVG referenced by its id has a URL without ".svg": it was handed to WeChat as the share image,
    which shows PNG and JPEG only, instead of the configured card (as a built-in SVG icon is)."""
    card = "https://cdn.brand.example/share-card.png"
    monkeypatch.setattr(app.state.settings, "share_image_url", card)
    monkeypatch.setattr(app.state.settings, "icon_upload_dir", str(tmp_path / "icons"))
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"><circle cx="4" cy="4" r="3"/></svg>'
    r = await client.post("/v1/admin/icons", files={"file": ("star.svg", svg, "image/svg+xml")}, headers=ADMIN)
    assert r.status_code == 201, r.text
    icon = icon_form.format(id=r.json()["id"])
    me = await _member(client, login, "S4")
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}], icon=icon)
    await event(client, "S4", "visit", NOW)
    share = (await client.get("/v1/me/badges/first-visit/share", headers=me)).json()
    assert share["image_url"] == card and share["timeline"]["image_url"] == card


async def test_an_uploaded_webp_icon_is_shared_as_the_configured_card_and_a_png_as_itself(
    app: Any, client: httpx.AsyncClient, login: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """WeChat's share card shows PNG and JPEG only: an uploaded WebP icon was handed to it as the share image
    (only SVG fell back to the configured card)."""
    card = "https://cdn.brand.example/share-card.png"
    monkeypatch.setattr(app.state.settings, "share_image_url", card)
    monkeypatch.setattr(app.state.settings, "icon_upload_dir", str(tmp_path / "icons"))
    webp = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
    png = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS"
           b"\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
    me = await _member(client, login, "S5")
    expected: dict[str, str | None] = {}
    uploads = (("webp-visit", "a.webp", webp, "image/webp"), ("png-visit", "a.png", png, "image/png"))
    for key, name, data, mime in uploads:
        r = await client.post("/v1/admin/icons", files={"file": (name, data, mime)}, headers=ADMIN)
        assert r.status_code == 201, r.text
        assert r.json()["content_type"] == mime
        await badge(client, key, [{"event": "visit", "threshold": 1}], icon=f"upload:{r.json()['id']}")
        expected[key] = card if mime == "image/webp" else None
    await event(client, "S5", "visit", NOW)
    for key, want in expected.items():
        share = (await client.get(f"/v1/me/badges/{key}/share", headers=me)).json()
        icon_url = (await client.get(f"/v1/badges/{key}", headers=me)).json()["icon_url"]
        assert share["image_url"] == (want or icon_url) == share["timeline"]["image_url"], (key, share)


async def test_manual_grant_and_revoke_are_audited(client: httpx.AsyncClient, make_key: Any) -> None:
    ops = await make_key("admin", name="ops-console")
    await badge(client, "vip", [], visibility="invite_only", points=30)
    await client.put("/v1/users/G1", json={}, headers=ADMIN)
    r = await client.post("/v1/admin/users/G1/badges/vip", json={"reason": "launch guest"}, headers=ops)
    assert r.status_code == 201, r.text
    assert r.json()["points_credited"] == 30
    # The reply names the award's stored time, as the member's awards list does.
    held = (await client.get("/v1/admin/users/G1/badges", headers=ADMIN)).json()
    assert [a["awarded_at"] for a in held] == [r.json()["awarded_at"]]
    again = await client.post("/v1/admin/users/G1/badges/vip", json={"reason": "twice"}, headers=ops)
    assert again.status_code == 409
    assert (await client.post("/v1/admin/users/G1/badges/vip", json={}, headers=ops)).status_code == 422
    r = await client.request("DELETE", "/v1/admin/users/G1/badges/vip", json={"reason": "mistake"}, headers=ops)
    assert r.status_code == 200 and r.json()["points_reversed"] == 30
    assert (await client.delete("/v1/admin/users/G1/badges/vip?reason=x", headers=ops)).status_code == 404
    log = (await client.get("/v1/admin/audit", headers=ADMIN)).json()
    assert [(e["action"], e["actor"], e["reason"], e["user_id"]) for e in log["items"]] == [
        ("badge.revoke", "ops-console", "mistake", "G1"),
        ("badge.grant", "ops-console", "launch guest", "G1"),
    ]
    ledger = await client.get("/v1/admin/users/G1/events", headers=ADMIN)
    assert ledger.status_code == 200


async def test_a_revoke_takes_back_what_the_award_credited_not_the_badges_edited_points(
    client: httpx.AsyncClient,
) -> None:
    await badge(client, "vip", [], visibility="invite_only", points=10)
    await client.put("/v1/users/G2", json={}, headers=ADMIN)
    r = await client.post("/v1/admin/users/G2/badges/vip", json={"reason": "guest"}, headers=ADMIN)
    assert r.status_code == 201 and r.json()["points_credited"] == 10
    r = await client.post("/v1/admin/users/G2/points", json={"amount": 500, "reason": "goodwill"}, headers=ADMIN)
    assert r.status_code in (200, 201), r.text
    r = await client.patch("/v1/admin/badges/vip", json={"points": 200}, headers=ADMIN)
    assert r.status_code == 200, r.text
    r = await client.request("DELETE", "/v1/admin/users/G2/badges/vip", json={"reason": "mistake"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["points_reversed"] == 10
    assert (await client.get("/v1/admin/users/G2", headers=ADMIN)).json()["points"] == 500


async def test_badge_stats(client: httpx.AsyncClient) -> None:
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}])
    for m in ("A", "B", "C"):
        await event(client, m, "visit", NOW)
    await client.put("/v1/users/D", json={}, headers=ADMIN)
    stats = (await client.get("/v1/admin/badges/first-visit/stats", headers=ADMIN)).json()
    assert stats["holders"] == 3 and stats["members"] == 4 and stats["rarity"] == 0.75
    assert stats["first_awarded_at"] <= stats["last_awarded_at"]
    assert sum(d["count"] for d in stats["awards_per_day"]) == 3


async def test_badge_stats_awards_per_day_counts_whole_program_days(client: httpx.AsyncClient, app: Any) -> None:
    """`days=7` is the last 7 dates of the program calendar, today included, each counted whole: the window used
    to start at this instant 7 days ago, so its first date (an eighth one) held only the awards made after this
    time of day, and read as a quiet day."""
    await badge(client, "regular", [{"event": "visit", "threshold": 1}], repeatable=True)
    for m in ("A", "B", "C", "D"):
        await event(client, m, "visit", NOW)
    tz = ZoneInfo("Asia/Shanghai")
    now = utcnow()
    today = now.astimezone(tz).date()
    six_days_ago = datetime.combine(today - timedelta(days=6), time(0), tzinfo=tz)  # the window's first midnight
    seven_days_ago = six_days_ago - timedelta(days=1)
    moments = {  # award → when, each on a known program date
        1: six_days_ago + timedelta(seconds=1),  # first date of the window, just after its midnight
        2: six_days_ago + timedelta(hours=23, minutes=59),  # same date, late in it
        3: seven_days_ago + timedelta(hours=23, minutes=59),  # the day before: outside the 7 days
        4: seven_days_ago + timedelta(seconds=1),
    }
    async with app.state.db.sessionmaker() as s:
        ids = list((await s.execute(select(UserBadge.id).order_by(UserBadge.id))).scalars())
        assert len(ids) == 4
        for n, award_id in enumerate(ids, start=1):
            await s.execute(update(UserBadge).where(UserBadge.id == award_id).values(awarded_at=moments[n]))
        await s.commit()
    stats = (await client.get("/v1/admin/badges/regular/stats", params={"days": 7}, headers=ADMIN)).json()
    assert stats["awards"] == 4
    assert stats["awards_per_day"] == [{"date": (today - timedelta(days=6)).isoformat(), "count": 2}]
    stats = (await client.get("/v1/admin/badges/regular/stats", params={"days": 8}, headers=ADMIN)).json()
    assert stats["awards_per_day"] == [
        {"date": (today - timedelta(days=7)).isoformat(), "count": 2},
        {"date": (today - timedelta(days=6)).isoformat(), "count": 2},
    ]
    stats = (await client.get("/v1/admin/badges/regular/stats", params={"days": 1}, headers=ADMIN)).json()
    assert stats["awards_per_day"] == []


async def test_badge_crud(client: httpx.AsyncClient) -> None:
    body = {
        "key": "store-explorer",
        "name": "Store Explorer",
        "description": "Explore",
        "how_to_earn": "Visit 3",
        "icon": "map-pin",
        "criteria": [{"event": "visit", "threshold": 3}],
        "points": 20,
        "visibility": "public",
        "repeatable": False,
        "status": "draft",
        "translations": {"zh-CN": {"name": "探店达人", "description": "…", "how_to_earn": "…"}},
    }
    r = await client.post("/v1/admin/badges", json=body, headers=ADMIN)
    assert r.status_code == 201
    assert r.json()["created_at"] == r.json()["updated_at"]  # one instant, not two clock reads
    assert (await client.post("/v1/admin/badges", json=body, headers=ADMIN)).status_code == 409
    r = await client.patch("/v1/admin/badges/store-explorer", json={"status": "active"}, headers=ADMIN)
    assert r.json()["status"] == "active" and r.json()["activated_at"]
    for nulled in ("status", "criteria", "name"):  # a field that cannot be empty, patched to null: 422, not 500
        r = await client.patch("/v1/admin/badges/store-explorer", json={nulled: None}, headers=ADMIN)
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == f"body.{nulled}", r.text
    assert (await client.get("/v1/admin/badges/store-explorer", headers=ADMIN)).json()["status"] == "active"
    r = await client.put("/v1/admin/badges/store-explorer", json={**body, "name": "Explorer"}, headers=ADMIN)
    assert r.json()["name"] == "Explorer"
    assert (await client.get("/v1/admin/badges/nope", headers=ADMIN)).status_code == 404
    assert (await client.delete("/v1/admin/badges/store-explorer", headers=ADMIN)).status_code == 204
    assert (await client.get("/v1/admin/badges", headers=ADMIN)).json() == []


@pytest.mark.sqlite_too
async def test_admin_views_return_criteria_as_posted(client: httpx.AsyncClient, backend: str) -> None:
    explorer = {"event": "visit", "where": [{"field": "store_id", "op": "exists"}], "aggregate": "count_distinct",
                "field": "store_id", "threshold": 3, "window": {"type": "calendar", "unit": "month"}}
    spender = {"event": "purchase", "aggregate": "sum", "field": "amount", "threshold": 999.5,
               "window": {"type": "rolling", "days": 7}}
    minimal = {"event": "purchase", "threshold": 1}
    r = await client.post("/v1/admin/badges", headers=ADMIN, json={
        "key": "as-posted", "name": "As Posted", "criteria": [explorer, spender, minimal], "points": 3})
    assert r.status_code == 201, r.text
    posted = [explorer, spender, minimal]
    assert r.json()["criteria"] == posted
    assert json.dumps(r.json()["criteria"][0]["threshold"]) == "3"  # 3 stays 3, not 3.0
    assert (await client.get("/v1/admin/badges/as-posted", headers=ADMIN)).json()["criteria"] == posted
    listed = (await client.get("/v1/admin/badges", headers=ADMIN)).json()
    assert listed[0]["criteria"] == posted
    r = await client.patch("/v1/admin/badges/as-posted", json={"name": "Renamed"}, headers=ADMIN)
    assert r.json()["criteria"] == posted
    # Evaluated with the defaults all the same: one purchase earns it only together with the other two criteria.
    await event(client, "AP", "purchase", NOW, amount=1000)
    for store in ("S1", "S2"):
        await event(client, "AP", "visit", NOW, store_id=store)
    out = await event(client, "AP", "visit", NOW, store_id="S3")
    assert [b["key"] for b in out["badges_awarded"]] == ["as-posted"]


@pytest.mark.sqlite_too
@pytest.mark.parametrize("amount", ["1" + "0" * 400, "1e308", "-1e16"])
async def test_an_amount_beyond_a_quadrillion_is_422_naming_it(client: httpx.AsyncClient, amount: str) -> None:
    raw = (
        '{"id": "huge", "user_id": "H1", "type": "purchase", "occurred_at": "' + NOW.isoformat() + '", '
        '"attributes": {"amount": ' + amount + "}}"
    )
    r = await client.post("/v1/events", content=raw, headers={**ADMIN, "content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert any("amount" in d["field"] for d in r.json()["error"]["details"])
    assert (await client.get("/v1/admin/users/H1/events", headers=ADMIN)).status_code == 404


@pytest.mark.sqlite_too
async def test_huge_values_in_a_summed_field_are_not_amounts_and_the_collection_still_shows(
    client: httpx.AsyncClient, login: Any
) -> None:
    me = await _member(client, login, "H2")
    await badge(client, "big-total", [{"event": "purchase", "aggregate": "sum", "field": "total", "threshold": 1000}])
    for i, total in enumerate([1e308, 1e308, "1e400", 10**400, 400]):
        raw = json.dumps({"id": f"t{i}", "user_id": "H2", "type": "purchase", "occurred_at": NOW.isoformat(),
                          "attributes": {"total": total}})
        r = await client.post("/v1/events", content=raw, headers={**ADMIN, "content-type": "application/json"})
        assert r.status_code == 200, r.text
    mine = await client.get("/v1/me/badges", headers=me)
    assert mine.status_code == 200, mine.text
    (item,) = [b for b in mine.json() if b["key"] == "big-total"]
    assert item["earned"] is False and item["progress"]["current"] == 400
    assert (await client.get("/v1/badges/big-total", headers=me)).status_code == 200


async def test_draft_and_archived_badges_cannot_be_granted(client: httpx.AsyncClient) -> None:
    await client.put("/v1/users/G2", json={}, headers=ADMIN)
    for status in ("draft", "archived"):
        await badge(client, f"b-{status}", [{"event": "visit", "threshold": 1}], status=status)
        r = await client.post(f"/v1/admin/users/G2/badges/b-{status}", json={"reason": "try"}, headers=ADMIN)
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "badge_not_active"
    assert (await client.get("/v1/admin/users/G2/badges", headers=ADMIN)).json() == []


@pytest.mark.sqlite_too
async def test_a_repeatable_badge_shows_the_way_to_its_next_award(client: httpx.AsyncClient, login: Any) -> None:
    """'Regular' is earned at every 3rd visit: after the first award a visit reports (and the wall shows) progress
    toward the 6th, not '4 of 3' at 100 %."""
    await badge(client, "regular", [{"event": "visit", "threshold": 3}], repeatable=True)
    await client.put("/v1/users/RG", json={"openid": "o-rg"}, headers=ADMIN)
    outcomes = [await event(client, "RG", "visit", NOW) for _ in range(4)]
    assert [awarded(o) for o in outcomes] == [[], [], ["regular"], []]
    assert [[(p["current"], p["target"]) for p in o["progress"]] for o in outcomes] == [
        [(1, 3)], [(2, 3)], [], [(4, 6)]]
    wall = {b["key"]: b for b in (await client.get("/v1/me/badges", headers=await login(openid="o-rg"))).json()}
    regular = wall["regular"]
    assert regular["earned"] is True and regular["times_earned"] == 1
    assert (regular["progress"]["current"], regular["progress"]["target"]) == (4, 6)
    assert regular["progress"]["percent"] == round(4 / 6 * 100, 1) and regular["progress"]["text"] == "4 of 6 visits"


@pytest.mark.sqlite_too
async def test_a_new_badge_does_not_start_from_a_deleted_badges_progress(
    client: httpx.AsyncClient, backend: str
) -> None:
    """SQLite gives a deleted badge's id to the next one: its members' counters must not carry over."""
    three_visits = [{"event": "visit", "threshold": 3}]
    await badge(client, "regular", three_visits)
    for _ in range(2):
        await event(client, "D1", "visit", NOW)
    assert (await client.delete("/v1/admin/badges/regular", headers=ADMIN)).status_code == 204
    await badge(client, "newcomer", three_visits, points=5)
    assert awarded(await event(client, "D1", "visit", NOW)) == []
    assert awarded(await event(client, "D1", "visit", NOW)) == []
    assert awarded(await event(client, "D1", "visit", NOW)) == ["newcomer"]


def test_progress_texts_name_what_is_counted() -> None:
    """"2 of 3 stores this month": the noun comes from the distinct field or the counted event's type."""
    from decimal import Decimal

    from app.badges.service import _unit
    from app.rules.criteria import Criterion

    def unit(target: int, **c: Any) -> str:
        return _unit(Criterion.model_validate({"threshold": target, **c}), Decimal(target))

    assert unit(3, event="visit", aggregate="count_distinct", field="store_id") == " stores"
    assert unit(2, event="purchase", aggregate="count_distinct", field="category") == " categories"
    assert unit(1, event="visit", aggregate="count_distinct", field="city") == " city"
    assert unit(7, event="check_in") == " check-ins"
    assert unit(1, event="purchase") == " purchase"
    assert unit(5, event="badge.awarded") == " badges"
    assert unit(2, event="profile.bio") == " bios"
    assert unit(1000, event="purchase", aggregate="sum", field="amount") == ""


async def test_an_unreachable_threshold_is_refused_on_save(client: httpx.AsyncClient) -> None:
    body = {"key": "huge", "name": "Huge", "criteria": [{"event": "visit", "threshold": 1e300}]}
    r = await client.post("/v1/admin/badges", json=body, headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "body.criteria.0.threshold", r.text
    step = {"title": "Buy", "criterion": {"event": "purchase", "threshold": 1e20}}
    r = await client.post("/v1/admin/challenges", json={"key": "huge", "title": "Huge", "steps": [step]}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "body.steps.0.criterion.threshold"


async def test_a_held_badge_set_back_to_draft_or_archived_stays_on_its_holders_wall_without_progress(
    client: httpx.AsyncClient, login: Any
) -> None:
    holder = await _member(client, login, "HD1")
    other = await _member(client, login, "HD2")
    await badge(client, "regular", [{"event": "visit", "threshold": 2}], repeatable=True)
    await badge(client, "first-post", [{"event": "post", "threshold": 1}])
    for i in range(3):
        await event(client, "HD1", "visit", NOW, store_id=f"S{i}")
    await event(client, "HD1", "post", NOW)
    mine = {b["key"]: b for b in (await client.get("/v1/me/badges", headers=holder)).json()}
    assert mine["regular"]["progress"]["text"] == "3 of 4 visits"  # toward its next award while it is active
    r = await client.patch("/v1/admin/badges/regular", json={"status": "archived"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    r = await client.patch("/v1/admin/badges/first-post", json={"status": "draft"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    mine = {b["key"]: b for b in (await client.get("/v1/me/badges", headers=holder)).json()}
    assert set(mine) == {"regular", "first-post"} and all(b["earned"] for b in mine.values())
    assert mine["regular"]["progress"] is None  # archived: it cannot be earned again
    assert (await client.get("/v1/badges/first-post", headers=holder)).status_code == 200
    assert (await client.get("/v1/me/badges/first-post/share", headers=holder)).status_code == 200
    # Someone who does not hold them sees neither.
    assert (await client.get("/v1/me/badges", headers=other)).json() == []
    assert (await client.get("/v1/badges/first-post", headers=other)).status_code == 404


@pytest.mark.sqlite_too
async def test_raising_a_threshold_keeps_every_members_progress(client: httpx.AsyncClient, login: Any) -> None:
    me = await _member(client, login, "TH1")
    crit = {"event": "visit", "aggregate": "count_distinct", "field": "store_id", "threshold": 3}
    await badge(client, "explorer", [crit])
    for store in ("S1", "S2"):
        await event(client, "TH1", "visit", NOW, store_id=store)
    r = await client.patch("/v1/admin/badges/explorer", json={"criteria": [{**crit, "threshold": 4}]}, headers=ADMIN)
    assert r.status_code == 200, r.text
    (item,) = [b for b in (await client.get("/v1/me/badges", headers=me)).json() if b["key"] == "explorer"]
    assert item["progress"]["text"] == "2 of 4 stores"
    out = await event(client, "TH1", "visit", NOW, store_id="S3")
    assert awarded(out) == [] and out["progress"][0]["current"] == 3
    # Counting something else is another counter: it starts from zero.
    r = await client.patch("/v1/admin/badges/explorer", json={"criteria": [{**crit, "field": "city"}]}, headers=ADMIN)
    assert r.status_code == 200, r.text
    (item,) = [b for b in (await client.get("/v1/me/badges", headers=me)).json() if b["key"] == "explorer"]
    assert item["progress"]["current"] == 0
