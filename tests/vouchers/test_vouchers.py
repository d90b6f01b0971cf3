"""Vouchers: pool issuing, exhausted pool held as pending and fulfilled when codes arrive, generated codes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.challenges.conftest import step

pytestmark = pytest.mark.sqlite_too


async def _voucher(client: httpx.AsyncClient, admin_headers: dict[str, str], **body: Any) -> dict[str, Any]:
    payload = {"key": "coffee", "name": "Free coffee", "description": "Any size", "face_value": 25.5,
               "validity_days": 30, **body}
    r = await client.post("/v1/admin/vouchers", json=payload, headers=admin_headers)
    assert r.status_code == 201, r.text
    return r.json()


async def _complete(client: httpx.AsyncClient, m: Any, send: Any, at: str) -> dict[str, Any]:
    assert (await client.post("/v1/challenges/one-post/join", headers=m.headers)).status_code == 201
    out = await send(m, "post", at)
    assert out["challenges"][-1]["status"] == "completed"
    return out


async def test_pool_exhausted_is_pending_then_issued_when_codes_are_added(
    client: httpx.AsyncClient, admin_headers: dict[str, str], member: Any, send: Any, make_challenge: Any,
    outbox: Any, clock: Any, backend: str,
) -> None:
    v = await _voucher(client, admin_headers, codes=["ONLY-1"])
    assert (v["codes_total"], v["codes_available"], v["pending_count"], v["warning"]) == (1, 1, 0, None)
    await make_challenge("one-post", [step("Post", "post")], rewards={"voucher": "coffee"})
    clock.set("2026-11-20T10:00:00+08:00")
    first, second = await member(), await member()

    out = await _complete(client, first, send, "2026-11-20T10:05:00+08:00")
    assert out["challenges"][-1]["rewards"]["voucher"]["status"] == "issued"
    mine = (await client.get("/v1/me/vouchers", headers=first.headers)).json()
    assert [(x["voucher"], x["code"], x["status"], x["face_value"]) for x in mine] == [
        ("coffee", "ONLY-1", "issued", 25.5)]
    assert mine[0]["expires_at"] == "2026-12-20T10:00:00+08:00"  # issued at the clock (10:00), +30 days
    assert mine[0]["key"] == "coffee"  # the definition's key under the name every other resource uses

    out = await _complete(client, second, send, "2026-11-20T10:06:00+08:00")
    assert out["challenges"][-1]["rewards"]["voucher"] | {} == {
        "key": "coffee", "member_voucher_id": out["challenges"][-1]["rewards"]["voucher"]["member_voucher_id"],
        "status": "pending", "code": None, "expires_at": None, "warning": "voucher_pool_exhausted"}
    mine = (await client.get("/v1/me/vouchers", headers=second.headers)).json()
    assert [(x["status"], x["code"]) for x in mine] == [("pending", None)]
    admin_view = (await client.get("/v1/admin/vouchers/coffee", headers=admin_headers)).json()
    assert (admin_view["pending_count"], admin_view["codes_available"], admin_view["warning"]) == (
        1, 0, "voucher_pool_exhausted")
    stats = (await client.get("/v1/admin/challenges/one-post/stats", headers=admin_headers)).json()
    assert stats["voucher"] == {"key": "coffee", "pending_count": 1, "codes_available": 0,
                                "warning": "voucher_pool_exhausted"}

    clock.set("2026-11-21T10:00:00+08:00")
    r = await client.post("/v1/admin/vouchers/coffee/codes", json={"codes": ["ONLY-1", "NEW-1", "NEW-2"]},
                          headers=admin_headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"added": 2, "duplicates": 1, "fulfilled": 1, "codes_available": 1, "pending_count": 0,
                        "warning": None}
    mine = (await client.get("/v1/me/vouchers", headers=second.headers)).json()
    assert [(x["status"], x["code"]) for x in mine] == [("issued", "NEW-1")]
    assert mine[0]["expires_at"] == "2026-12-21T10:00:00+08:00"  # validity counts from issuing
    issued = await outbox("voucher.issued")
    assert [(p["user_id"], p["code"]) for p in issued] == [(first.external_id, "ONLY-1"),
                                                           (second.external_id, "NEW-1")]


async def test_an_issued_voucher_keeps_its_terms_when_the_definition_is_edited(
    client: httpx.AsyncClient, admin_headers: dict[str, str], member: Any, send: Any, make_challenge: Any,
    clock: Any, backend: str,
) -> None:
    await _voucher(client, admin_headers, codes=["ONLY-1"])
    await make_challenge("one-post", [step("Post", "post")], rewards={"voucher": "coffee"})
    clock.set("2026-11-20T10:00:00+08:00")
    holder, waiting = await member(), await member()
    await _complete(client, holder, send, "2026-11-20T10:05:00+08:00")
    await _complete(client, waiting, send, "2026-11-20T10:06:00+08:00")  # the pool is empty: pending
    r = await client.patch("/v1/admin/vouchers/coffee", json={"face_value": 1, "name": "1 off"},
                           headers=admin_headers)
    assert r.status_code == 200, r.text
    mine = (await client.get("/v1/me/vouchers", headers=holder.headers)).json()
    assert [(x["name"], x["face_value"], x["code"]) for x in mine] == [("Free coffee", 25.5, "ONLY-1")]
    # Not yet issued: it will be issued on the terms in force then.
    r = await client.post("/v1/admin/vouchers/coffee/codes", json={"codes": ["NEW-1"]}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["fulfilled"] == 1
    r = await client.patch("/v1/admin/vouchers/coffee", json={"face_value": 2, "name": "2 off"},
                           headers=admin_headers)
    mine = (await client.get("/v1/me/vouchers", headers=waiting.headers)).json()
    assert [(x["name"], x["face_value"], x["code"]) for x in mine] == [("1 off", 1.0, "NEW-1")]


async def test_fulfil_job_hands_out_codes_to_pending_vouchers(
    app: Any, client: httpx.AsyncClient, admin_headers: dict[str, str], member: Any, send: Any,
    make_challenge: Any, clock: Any, backend: str,
) -> None:
    await _voucher(client, admin_headers)
    await make_challenge("one-post", [step("Post", "post")], rewards={"voucher": "coffee"})
    clock.set("2026-11-20T10:00:00+08:00")
    m = await member()
    await _complete(client, m, send, "2026-11-20T10:05:00+08:00")
    # Switch the voucher to generated codes: the job (and the update itself) fulfil what is pending.
    from app.vouchers import tasks
    async with app.state.db.sessionmaker() as s, s.begin():
        assert await tasks.fulfil_pending(s, app.state.settings) == 0
    r = await client.patch("/v1/admin/vouchers/coffee", json={"generated": True}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["pending_count"] == 0
    mine = (await client.get("/v1/me/vouchers", headers=m.headers)).json()
    assert mine[0]["status"] == "issued" and len(mine[0]["code"]) == 12


async def test_generated_voucher_and_crud(
    client: httpx.AsyncClient, admin_headers: dict[str, str], member: Any, send: Any, make_challenge: Any,
    clock: Any, backend: str,
) -> None:
    r = await client.post("/v1/admin/vouchers", headers=admin_headers,
                          json={"key": "bad", "name": "x", "codes": ["A"], "generated": True})
    assert r.status_code == 422
    v = await _voucher(client, admin_headers, generated=True, validity_days=None)
    assert v["codes_available"] is None and v["warning"] is None
    await make_challenge("one-post", [step("Post", "post")], rewards={"voucher": "coffee"})
    clock.set("2026-11-20T10:00:00+08:00")
    m = await member()
    await _complete(client, m, send, "2026-11-20T10:05:00+08:00")
    mine = (await client.get("/v1/me/vouchers", headers=m.headers)).json()
    assert mine[0]["status"] == "issued" and mine[0]["expires_at"] is None and len(mine[0]["code"]) == 12
    r = await client.put("/v1/admin/vouchers/coffee", headers=admin_headers,
                         json={"name": "Coffee", "face_value": 30, "validity_days": 7, "generated": True})
    assert r.status_code == 200 and r.json()["name"] == "Coffee" and r.json()["issued_count"] == 1
    assert (await client.post("/v1/admin/vouchers/coffee/codes", json={"codes": ["X"]},
                              headers=admin_headers)).status_code == 409
    r = await client.delete("/v1/admin/vouchers/coffee", headers=admin_headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "voucher_in_use"
    await _voucher(client, admin_headers, key="spare")
    assert (await client.delete("/v1/admin/vouchers/spare", headers=admin_headers)).status_code == 204
    listed = (await client.get("/v1/admin/vouchers", headers=admin_headers)).json()
    assert [x["key"] for x in listed] == ["coffee"]
    assert (await client.get("/v1/admin/vouchers/spare", headers=admin_headers)).status_code == 404


async def test_a_boolean_is_not_a_number_of_validity_days(
    client: httpx.AsyncClient, admin_headers: dict[str, str], backend: str
) -> None:
    # `"validity_days": true` was read as vouchers valid for 1 day.
    r = await client.post("/v1/admin/vouchers", headers=admin_headers,
                          json={"key": "coffee", "name": "Free coffee", "validity_days": True})
    assert r.status_code == 422, r.text
    assert [d["field"] for d in r.json()["error"]["details"]] == ["body.validity_days"]
    await _voucher(client, admin_headers)
    for method in ("PUT", "PATCH"):
        r = await client.request(method, "/v1/admin/vouchers/coffee", headers=admin_headers,
                                 json={"name": "Free coffee", "validity_days": True})
        assert r.status_code == 422, (method, r.text)
    assert (await client.get("/v1/admin/vouchers/coffee", headers=admin_headers)).json()["validity_days"] == 30


@pytest.mark.parametrize("field", ["name", "description", "face_value", "generated"])
async def test_a_patch_setting_a_required_field_to_null_is_refused(
    client: httpx.AsyncClient, admin_headers: dict[str, str], backend: str, field: str
) -> None:
    await _voucher(client, admin_headers)
    r = await client.patch("/v1/admin/vouchers/coffee", headers=admin_headers, json={field: None})
    assert r.status_code == 422, r.text
    assert [d["field"] for d in r.json()["error"]["details"]] == [f"body.{field}"]
    r = await client.patch("/v1/admin/vouchers/coffee", headers=admin_headers, json={"validity_days": None})
    assert r.status_code == 200 and r.json()["validity_days"] is None  # no expiry: null means something here


async def test_a_whole_number_written_as_a_float_is_a_number_of_validity_days(
    client: httpx.AsyncClient, admin_headers: dict[str, str], backend: str
) -> None:
    """30.0 is 30 in JSON (a Python integration writes it so): refused only booleans were meant to be."""
    assert (await _voucher(client, admin_headers, validity_days=30.0))["validity_days"] == 30
    for method in ("PUT", "PATCH"):
        r = await client.request(method, "/v1/admin/vouchers/coffee", headers=admin_headers,
                                 json={"name": "Free coffee", "validity_days": 14.0})
        assert r.status_code == 200 and r.json()["validity_days"] == 14, (method, r.text)


async def test_a_voucher_with_unused_codes_is_not_switched_to_generated_codes(
    client: httpx.AsyncClient, admin_headers: dict[str, str], member: Any, send: Any, make_challenge: Any,
    clock: Any, backend: str,
) -> None:
    """A voucher has an uploaded pool or generated codes, not both (as its POST says): switched by a PATCH or PUT
    while uploaded codes were unused, it kept them as codes_total but handed members made-up codes the merchant's
    till does not know, and the uploaded ones never."""
    await _voucher(client, admin_headers)
    r = await client.post("/v1/admin/vouchers/coffee/codes", json={"codes": ["A1", "A2"]}, headers=admin_headers)
    assert r.status_code == 200, r.text
    for method, body in (("PATCH", {"generated": True}), ("PUT", {"name": "Free coffee", "generated": True})):
        r = await client.request(method, "/v1/admin/vouchers/coffee", json=body, headers=admin_headers)
        assert r.status_code == 409, (method, r.text)
        assert r.json()["error"]["code"] == "voucher_has_codes"
        assert r.json()["error"]["details"] == {"codes_available": 2}
    await make_challenge("one-post", [step("Post", "post")], rewards={"voucher": "coffee"})
    clock.set("2026-11-20T10:00:00+08:00")
    m = await member()
    await _complete(client, m, send, "2026-11-20T10:05:00+08:00")
    assert [x["code"] for x in (await client.get("/v1/me/vouchers", headers=m.headers)).json()] == ["A1"]
