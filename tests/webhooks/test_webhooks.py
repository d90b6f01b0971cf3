"""Signed webhooks against a local receiver: retries with backoff, dead letters, ordering, redelivery."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.notifications.fanout import fanout_all
from app.webhooks import signing
from app.webhooks.dispatcher import backoff, dispatch_webhooks_once
from app.worker import runner
from tests.api import ADMIN, badge, event
from tests.webhooks.receiver import Receiver

NOW = datetime.now(UTC)


async def _endpoint(client: httpx.AsyncClient, url: str, events: list[str]) -> dict[str, Any]:
    r = await client.post("/v1/admin/webhooks", json={"url": url, "events": events}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return r.json()


async def _dispatch(app: FastAPI, now: datetime) -> int:
    await fanout_all(app.state.db.sessionmaker, app.state.settings)
    now = max(now, datetime.now(UTC))  # never before the fan-out queued the deliveries
    return await dispatch_webhooks_once(app.state.db.sessionmaker, app.state.settings, now=now)


async def _log(client: httpx.AsyncClient, endpoint_id: int) -> list[dict[str, Any]]:
    r = await client.get(f"/v1/admin/webhooks/{endpoint_id}/deliveries", headers=ADMIN)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def _badge_delivery(client: httpx.AsyncClient, receiver: Receiver) -> dict[str, Any]:
    """An endpoint for badge.awarded and one award queued for it (member M1's first visit)."""
    ep = await _endpoint(client, receiver.url, ["badge.awarded"])
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}])
    await event(client, "M1", "visit", NOW)
    return ep


async def test_backoff_counts_from_the_failure_not_from_the_claim(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    """A receiver that is slow to fail is not retried the moment its answer arrives."""
    ep = await _badge_delivery(client, receiver)
    receiver.statuses.append(503)
    receiver.delay = 1.0
    t0 = datetime.now(UTC)
    assert await _dispatch(app, t0) == 1
    (d,) = await _log(client, ep["id"])
    assert datetime.fromisoformat(d["next_attempt_at"]) >= t0 + timedelta(seconds=1 + 2)
    attempted = datetime.fromisoformat(d["history"][0]["attempted_at"])
    assert attempted >= t0 + timedelta(seconds=1)  # when the answer came


async def test_failing_twice_then_succeeding_is_delivered_once_with_a_verifiable_signature(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    ep = await _badge_delivery(client, receiver)
    receiver.statuses.extend([500, 503])
    t0 = datetime.now(UTC)
    assert await _dispatch(app, t0) == 1
    assert await _dispatch(app, t0 + timedelta(seconds=1)) == 0  # backing off (2 s)
    assert await _dispatch(app, t0 + timedelta(seconds=2.5)) == 1
    assert await _dispatch(app, t0 + timedelta(seconds=2.5 + 3)) == 0  # backing off (4 s)
    assert await _dispatch(app, t0 + timedelta(seconds=2.5 + 4.5)) == 1  # delivered 7 s after the first try
    assert await _dispatch(app, t0 + timedelta(hours=30)) == 0
    assert len(receiver.received) == 3
    ids = {json.loads(r.body)["id"] for r in receiver.received}
    assert len(ids) == 1  # the same delivery id every time: receivers dedupe on it
    last = receiver.received[-1]
    assert signing.verify(ep["secret"], last.body, last.headers["X-Laurel-Signature"])
    assert not signing.verify("wrong-secret-0123456789", last.body, last.headers["X-Laurel-Signature"])
    assert not signing.verify(ep["secret"], last.body + b" ", last.headers["X-Laurel-Signature"])
    doc = json.loads(last.body)
    assert doc["event"] == "badge.awarded" and doc["data"]["badge"] == "first-visit" and doc["data"]["user_id"] == "M1"
    (d,) = await _log(client, ep["id"])
    assert d["status"] == "delivered" and d["attempts"] == 3 and d["last_status_code"] == 200
    assert d["response_code"] == 200  # "status, response code, attempts"
    assert [a["status_code"] for a in d["history"]] == [500, 503, 200]


def test_backoff_starts_at_two_seconds_doubles_and_keeps_retrying_for_24_hours() -> None:
    assert [backoff(n).total_seconds() for n in range(1, 7)] == [2, 4, 8, 16, 32, 64]
    assert backoff(15) == backoff(40) == timedelta(hours=6)
    elapsed, attempts = timedelta(), 1
    while elapsed + backoff(attempts) <= timedelta(hours=24):
        elapsed += backoff(attempts)
        attempts += 1
    assert attempts == 17 and elapsed > timedelta(hours=20)  # still trying late in the 24-hour window


async def test_the_running_worker_delivers_a_webhook_failing_twice_within_seconds(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import jobs  # noqa: F401  (registers the jobs)

    monkeypatch.setattr(runner, "JOBS", [j for j in runner.JOBS if j.name in ("notifications.fanout",
                                                                            "webhooks.dispatch")])
    ep = await _endpoint(client, receiver.url, ["badge.awarded"])
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}])
    receiver.statuses.extend([500, 502])
    worker = runner.Worker(app.state.db.sessionmaker, app.state.settings)
    started = time.monotonic()
    await event(client, "M1", "visit", NOW)
    worker.start()
    try:
        while time.monotonic() - started < 20:
            items = await _log(client, ep["id"])
            if items and items[0]["status"] == "delivered":
                break
            await asyncio.sleep(0.2)
    finally:
        await worker.stop()
    took = time.monotonic() - started
    (d,) = await _log(client, ep["id"])
    assert d["status"] == "delivered" and d["attempts"] == 3, d
    assert len(receiver.received) == 3 and len({json.loads(r.body)["id"] for r in receiver.received}) == 1
    assert took < 15  # fan-out and dispatch poll every second; retries after 2 s and 4 s


async def test_signature_is_timestamped_so_old_ones_are_refused() -> None:
    body = b'{"id":"x"}'
    header = signing.sign("s" * 20, body, timestamp=1_000_000)
    assert signing.verify("s" * 20, body, header, now=1_000_100)
    assert not signing.verify("s" * 20, body, header, now=1_000_000 + 3600)
    t, v1 = header.split(",")
    assert t == "t=1000000" and v1.startswith("v1=") and len(v1) == 3 + 64


async def test_an_endpoint_that_never_answers_is_dead_lettered_after_24_hours(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    ep = await _endpoint(client, receiver.url, ["*"])
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}])
    await event(client, "M1", "visit", NOW)
    receiver.statuses.extend([500] * 100)
    clock = datetime.now(UTC)
    await fanout_all(app.state.db.sessionmaker, app.state.settings)
    for _ in range(40):
        await _dispatch(app, clock)
        clock += timedelta(minutes=40)
    deliveries = await _log(client, ep["id"])
    assert deliveries and all(d["status"] == "dead" for d in deliveries)
    # 2 s, 4 s, 8 s … doubling to every 6 h: with a run every 40 minutes, 16 attempts fit in the 24 hours.
    assert all(14 <= d["attempts"] <= 17 for d in deliveries)
    # Redeliver: same delivery id, a fresh window, and this time it works.
    receiver.statuses.clear()
    target = deliveries[0]["delivery_id"]
    # Not while the endpoint is disabled: nothing would be sent to it.
    await client.patch(f"/v1/admin/webhooks/{ep['id']}", json={"enabled": False}, headers=ADMIN)
    r = await client.post(f"/v1/admin/webhooks/{ep['id']}/deliveries/{target}/redeliver", headers=ADMIN)
    assert r.status_code == 409 and r.json()["error"]["code"] == "webhook_disabled", r.text
    await client.patch(f"/v1/admin/webhooks/{ep['id']}", json={"enabled": True}, headers=ADMIN)
    r = await client.post(f"/v1/admin/webhooks/{ep['id']}/deliveries/{target}/redeliver", headers=ADMIN)
    assert r.status_code == 200 and r.json()["status"] == "pending"
    before = len(receiver.received)
    await dispatch_webhooks_once(app.state.db.sessionmaker, app.state.settings)
    assert len(receiver.received) == before + 1
    assert json.loads(receiver.received[-1].body)["id"] == target
    assert (await client.post(f"/v1/admin/webhooks/{ep['id']}/deliveries/nope/redeliver",
                              headers=ADMIN)).status_code == 404


async def test_a_members_deliveries_stay_in_order_while_an_earlier_one_is_retrying(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    await _endpoint(client, receiver.url, ["badge.awarded"])
    await badge(client, "one", [{"event": "visit", "threshold": 1}])
    await badge(client, "two", [{"event": "visit", "threshold": 2}])
    await event(client, "M1", "visit", NOW - timedelta(minutes=2))
    await event(client, "M1", "visit", NOW - timedelta(minutes=1))
    await event(client, "M2", "visit", NOW - timedelta(minutes=1))
    receiver.fail_once[b'"user_id":"M1"'] = 500  # M1's first delivery fails once
    t0 = datetime.now(UTC)
    assert await _dispatch(app, t0) == 2  # M1's first (fails) and M2's; M1's second waits
    sent = [json.loads(r.body)["data"] for r in receiver.received]
    assert sorted((d["user_id"], d["badge"]) for d in sent) == [("M1", "one"), ("M2", "one")]
    assert await _dispatch(app, t0 + timedelta(seconds=1)) == 0  # still waiting behind the retry (2 s)
    assert await _dispatch(app, t0 + timedelta(seconds=3)) == 1  # M1 "one" succeeds
    assert await _dispatch(app, t0 + timedelta(seconds=4)) == 1  # then M1 "two"
    m1 = [json.loads(r.body)["data"]["badge"] for r in receiver.received if b'"M1"' in r.body]
    assert m1 == ["one", "one", "two"]


async def test_webhook_crud_and_validation(client: httpx.AsyncClient) -> None:
    bad = await client.post("/v1/admin/webhooks", json={"url": "ftp://x.example", "events": ["badge.awarded"]},
                            headers=ADMIN)
    assert bad.status_code == 422
    bad = await client.post("/v1/admin/webhooks", json={"url": "https://x.example/h", "events": ["Badge!"]},
                            headers=ADMIN)
    assert bad.status_code == 422
    created = await _endpoint(client, "https://crm.example/hooks", ["level.reached", "badge.awarded"])
    assert created["secret"].startswith("whsec_") and created["secret_hint"] == created["secret"][-4:]
    got = (await client.get(f"/v1/admin/webhooks/{created['id']}", headers=ADMIN)).json()
    assert "secret" not in got and got["events"] == ["badge.awarded", "level.reached"]
    r = await client.patch(f"/v1/admin/webhooks/{created['id']}", json={"enabled": False}, headers=ADMIN)
    assert r.json()["enabled"] is False
    assert len((await client.get("/v1/admin/webhooks", headers=ADMIN)).json()) == 1
    assert (await client.delete(f"/v1/admin/webhooks/{created['id']}", headers=ADMIN)).status_code == 204
    assert (await client.get(f"/v1/admin/webhooks/{created['id']}", headers=ADMIN)).status_code == 404
    assert (await client.get("/v1/admin/webhooks")).status_code == 401


@pytest.mark.sqlite_too
async def test_publishing_a_challenge_reaches_webhooks_and_members_are_told_once_by_the_scheduler(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver, login: Any
) -> None:
    from app.notifications import scheduler

    ep = await _endpoint(client, receiver.url, ["challenge.published"])
    headers = await login("o-published-1")
    r = await client.put("/v1/users/P1", json={"openid": "o-published-1"}, headers=ADMIN)
    assert r.status_code in (200, 201), r.text
    body = {"key": "spring", "title": "Spring walk", "steps": [
        {"title": "Visit", "criterion": {"event": "visit", "threshold": 1}}]}
    assert (await client.post("/v1/admin/challenges", json=body, headers=ADMIN)).status_code == 201
    assert (await client.post("/v1/admin/challenges/spring/publish", headers=ADMIN)).status_code == 200
    assert (await client.post("/v1/admin/challenges/spring/publish", headers=ADMIN)).status_code == 200  # no-op
    assert await _dispatch(app, datetime.now(UTC)) == 1
    (got,) = receiver.received
    doc = json.loads(got.body)
    assert doc["event"] == "challenge.published" and doc["data"]["challenge"] == "spring"
    assert doc["data"]["title"] == "Spring walk" and doc["data"]["published_at"]
    async with app.state.db.sessionmaker() as s, s.begin():
        await scheduler.challenge_available(s, app.state.settings)
    inbox = (await client.get("/v1/me/notifications", headers=headers)).json()
    assert [n["kind"] for n in inbox["items"]] == ["challenge_available"]  # the fan-out added none of its own
    (d,) = await _log(client, ep["id"])
    assert d["status"] == "delivered"


@pytest.mark.parametrize(
    "url", ["http://[::1/h", "http://exa mple.com/h", "http://x.test:99999/h", "https://", "http:///h", "http://x.test:0/"]
)
async def test_an_address_the_dispatcher_cannot_send_to_is_refused_when_saved(
    client: httpx.AsyncClient, url: str
) -> None:
    r = await client.post("/v1/admin/webhooks", json={"url": url, "events": ["badge.awarded"]}, headers=ADMIN)
    assert r.status_code == 422, r.text
    ok = await _endpoint(client, "https://hooks.example.com:8443/laurel?x=1", ["badge.awarded"])
    r = await client.patch(f"/v1/admin/webhooks/{ok['id']}", json={"url": url}, headers=ADMIN)
    assert r.status_code == 422, r.text


async def test_an_unparsable_stored_address_fails_its_own_delivery_and_the_others_are_delivered_once(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    # An endpoint saved before addresses were checked: httpx refuses its URL before sending anything.
    bad = await _endpoint(client, "https://bad.example/h", ["badge.awarded"])
    async with app.state.db.sessionmaker() as session, session.begin():
        await session.execute(
            text("UPDATE webhook_endpoints SET url = 'http://[::1/h' WHERE id = :id"), {"id": bad["id"]}
        )
    good = await _badge_delivery(client, receiver)
    for minutes in (0, 2, 4):
        await _dispatch(app, NOW + timedelta(minutes=minutes))
    assert [d["status"] for d in await _log(client, good["id"])] == ["delivered"]
    assert len(receiver.received) == 1
    (failed,) = await _log(client, bad["id"])
    assert failed["status"] == "pending" and failed["attempts"] >= 1 and "InvalidURL" in failed["last_error"]


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:5432/", "http://169.254.169.254/latest/meta-data", "http://10.0.0.5/hook", "http://[::1]/h",
    "http://localhost:8080/h", "http://api.localhost/h", "http://[::ffff:192.168.1.1]/h", "http://0.0.0.0/h",
])
async def test_in_production_a_webhook_to_a_private_address_is_refused(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """No SSRF: an API key cannot make the dispatcher POST to the database port or the cloud metadata service."""
    monkeypatch.setattr(app.state.settings, "env", "production")
    r = await client.post("/v1/admin/webhooks", json={"url": url, "events": ["*"]}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["code"] == "url_not_allowed", r.text
    assert r.json()["error"]["details"][0]["field"] == "body.url"
    ok = await _endpoint(client, "https://crm.example.com/hooks", ["*"])
    r = await client.patch(f"/v1/admin/webhooks/{ok['id']}", json={"url": url}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["code"] == "url_not_allowed"
    r = await client.put(f"/v1/admin/webhooks/{ok['id']}", json={"url": url, "events": ["*"]}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["code"] == "url_not_allowed"


async def test_a_delivery_whose_host_resolves_to_a_private_address_is_not_sent(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name is resolved before each attempt: one that points inside (set up while allowed, or re-pointed since)
    is a failed attempt that says why, and nothing reaches the address."""
    hostname_url = receiver.url.replace("127.0.0.1", "localhost")  # a name, not a literal, for 127.0.0.1
    ep = await _endpoint(client, hostname_url, ["badge.awarded"])
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}])
    await event(client, "M1", "visit", NOW)
    monkeypatch.setattr(app.state.settings, "webhook_private_hosts", False)
    assert await _dispatch(app, datetime.now(UTC)) == 1
    assert receiver.received == []
    [delivery] = await _log(client, ep["id"])
    assert delivery["status"] == "pending" and "not public" in delivery["last_error"], delivery
    assert "127.0.0.1" not in delivery["last_error"]  # the deliveries log does not map internal names to addresses
    monkeypatch.setattr(app.state.settings, "webhook_private_hosts", None)  # test env: local receivers allowed
    assert await _dispatch(app, datetime.now(UTC) + timedelta(minutes=1)) == 1
    assert len(receiver.received) == 1


async def test_a_checked_delivery_connects_to_the_address_it_checked_not_a_second_lookup(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No DNS rebinding: the host is resolved once, the answer is vetted, and the connection goes to that address
    with the name kept in the Host header (and as the TLS server name for https). Here the name resolves only
    through the check (and to the local receiver, counted as public for the test): the delivery can only
    arrive if the client did not look the name up again."""
    from app.webhooks import addresses

    async def resolve(host: str) -> list[str]:
        assert host == "hooks.rebind.test"
        return ["127.0.0.1"]

    monkeypatch.setattr(addresses, "_resolve", resolve)
    monkeypatch.setattr(addresses, "_refusal", lambda address: None)
    monkeypatch.setattr(app.state.settings, "webhook_private_hosts", False)
    url = receiver.url.replace("127.0.0.1", "hooks.rebind.test")
    ep = await _endpoint(client, url, ["badge.awarded"])
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}])
    await event(client, "M1", "visit", NOW)
    assert await _dispatch(app, datetime.now(UTC)) == 1
    assert len(receiver.received) == 1, await _log(client, ep["id"])
    port = url.split(":")[2].split("/")[0]
    assert receiver.received[0].headers["Host"] == f"hooks.rebind.test:{port}"
    target = await addresses.delivery_target("https://hooks.rebind.test/h")
    assert (target.url, target.headers, target.extensions) == (
        "https://127.0.0.1/h", {"Host": "hooks.rebind.test"}, {"sni_hostname": "hooks.rebind.test"})


async def test_an_endpoint_deleted_while_its_delivery_is_in_flight_does_not_lose_the_others_log(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    """The other endpoint's delivery is recorded as delivered (not sent again after its lease runs out)."""
    from tests.webhooks.receiver import webhook_receiver

    with webhook_receiver() as slow:
        slow.delay = 1.0
        doomed = await _endpoint(client, slow.url, ["badge.awarded"])
        kept = await _endpoint(client, receiver.url, ["badge.awarded"])
        await badge(client, "first-visit", [{"event": "visit", "threshold": 1}])
        await event(client, "M1", "visit", NOW)
        await fanout_all(app.state.db.sessionmaker, app.state.settings)
        sending = asyncio.create_task(
            dispatch_webhooks_once(app.state.db.sessionmaker, app.state.settings, now=datetime.now(UTC)))
        await asyncio.sleep(0.5)  # both claimed and sent; the slow one has not answered yet
        r = await client.delete(f"/v1/admin/webhooks/{doomed['id']}", headers=ADMIN)
        assert r.status_code == 204, r.text
        assert await sending == 2
    [delivery] = await _log(client, kept["id"])
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 1), delivery


class _Pinned:
    """Production mode with a resolver the test controls (every address counted public, the receiver's local)."""

    def __init__(self, app: FastAPI, monkeypatch: pytest.MonkeyPatch, answers: dict[str, Any]) -> None:
        from app.webhooks import addresses

        async def resolve(host: str) -> list[str]:
            answer = answers[host]
            if isinstance(answer, BaseException):
                raise answer
            return list(answer)

        monkeypatch.setattr(addresses, "_resolve", resolve)
        monkeypatch.setattr(addresses, "_refusal", lambda address: None)
        monkeypatch.setattr(app.state.settings, "webhook_private_hosts", False)


async def test_a_host_whose_check_lookup_fails_is_not_sent_unpinned(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check's lookup failing (a name server can fail on purpose) must not let the client look it up itself."""
    ep = await _endpoint(client, receiver.url.replace("127.0.0.1", "localhost"), ["badge.awarded"])
    _Pinned(app, monkeypatch, {"localhost": OSError("temporary failure in name resolution")})
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}])
    await event(client, "M1", "visit", NOW)
    assert await _dispatch(app, datetime.now(UTC)) == 1
    assert receiver.received == []
    [d] = await _log(client, ep["id"])
    assert d["status"] == "pending" and "could not be resolved" in d["last_error"], d


async def test_a_host_that_cannot_be_resolved_costs_only_its_own_delivery(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name the resolver cannot even encode (a 64-character label) fails its attempt; the batch is recorded."""
    good = await _endpoint(client, receiver.url.replace("127.0.0.1", "good.test"), ["badge.awarded"])
    bad_host = "a" * 64 + ".example"
    bad = await _endpoint(client, f"https://{bad_host}/h", ["badge.awarded"])
    _Pinned(app, monkeypatch, {"good.test": ["127.0.0.1"], bad_host: UnicodeError("label too long")})
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}])
    await event(client, "M1", "visit", NOW)
    assert await _dispatch(app, datetime.now(UTC)) == 2
    [ok] = await _log(client, good["id"])
    [failed] = await _log(client, bad["id"])
    assert (ok["status"], ok["attempts"], len(receiver.received)) == ("delivered", 1, 1)
    assert failed["status"] == "pending" and failed["attempts"] == 1


async def test_an_internationalised_host_is_pinned_by_its_ascii_name_and_a_proxy_is_left_to_resolve(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.webhooks import addresses

    _Pinned(app, monkeypatch, {"xn--bcher-kva.example": ["203.0.113.7"]})
    target = await addresses.delivery_target("https://bücher.example:8443/h")
    assert (target.url, target.headers, target.extensions) == (
        "https://203.0.113.7:8443/h", {"Host": "xn--bcher-kva.example:8443"},
        {"sni_hostname": "xn--bcher-kva.example"})
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    target = await addresses.delivery_target("https://bücher.example:8443/h")
    assert (target.refusal, target.url, target.headers, target.proxy) == (
        None, "https://bücher.example:8443/h", {}, "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", ".example")  # not through the proxy: pinned again
    target = await addresses.delivery_target("https://bücher.example:8443/h")
    assert (target.url, target.proxy) == ("https://203.0.113.7:8443/h", None)


async def test_a_host_no_proxy_exempts_is_still_pinned_not_resolved_again_by_the_client(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a proxy in the environment and NO_PROXY covering the host, the client must not connect directly by
    resolving the name itself: the check's answer (an address where nothing listens) is where it goes."""
    ep = await _endpoint(client, receiver.url.replace("127.0.0.1", "localhost"), ["badge.awarded"])
    _Pinned(app, monkeypatch, {"localhost": ["127.0.0.3"]})
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "localhost")
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}])
    await event(client, "M1", "visit", NOW)
    assert await _dispatch(app, datetime.now(UTC)) == 1
    assert receiver.received == []
    [d] = await _log(client, ep["id"])
    assert d["status"] == "pending" and "ConnectError" in d["last_error"], d


async def test_a_pinned_delivery_tries_the_hosts_next_address_when_one_cannot_be_reached(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a client resolving the name itself would: the first address refuses connections, the second answers."""
    port = receiver.url.split(":")[2].split("/")[0]  # the receiver listens on 127.0.0.1 only: not on 127.0.0.3
    ep = await _endpoint(client, receiver.url.replace("127.0.0.1", "multi.test"), ["badge.awarded"])
    _Pinned(app, monkeypatch, {"multi.test": ["127.0.0.3", "127.0.0.1"]})
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}])
    await event(client, "M1", "visit", NOW)
    assert await _dispatch(app, datetime.now(UTC)) == 1
    [d] = await _log(client, ep["id"])
    assert d["status"] == "delivered" and receiver.received[0].headers["Host"] == f"multi.test:{port}", d


async def test_through_an_egress_proxy_a_checked_delivery_is_sent_by_name_via_the_proxy(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check still runs; the proxy (here the local receiver, taking the proxied request) resolves and connects."""
    proxy = receiver.url.rsplit("/", 1)[0]  # http://127.0.0.1:<port>
    ep = await _endpoint(client, "http://hooks.proxied.test/h", ["badge.awarded"])
    _Pinned(app, monkeypatch, {"hooks.proxied.test": ["203.0.113.9"]})
    monkeypatch.setenv("HTTP_PROXY", proxy)
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}])
    await event(client, "M1", "visit", NOW)
    assert await _dispatch(app, datetime.now(UTC)) == 1
    [d] = await _log(client, ep["id"])
    assert d["status"] == "delivered", d
    assert receiver.received[0].headers["Host"] == "hooks.proxied.test"


async def test_a_receiver_behind_basic_auth_gets_its_credentials_and_responses_mask_the_password(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    url = receiver.url.replace("http://", "http://laurel:s3cret@", 1)
    ep = await _endpoint(client, url, ["badge.awarded"])
    shown = url.replace(":s3cret@", ":****@")
    assert ep["url"] == shown
    assert (await client.get(f"/v1/admin/webhooks/{ep['id']}", headers=ADMIN)).json()["url"] == shown
    assert [e["url"] for e in (await client.get("/v1/admin/webhooks", headers=ADMIN)).json()] == [shown]
    # The admin app sends back what it fetched: the stored password stays.
    r = await client.patch(f"/v1/admin/webhooks/{ep['id']}", json={"url": shown, "description": "POS"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["url"] == shown, r.text
    r = await client.put(f"/v1/admin/webhooks/{ep['id']}", json={"url": shown, "events": ["badge.awarded"]},
                         headers=ADMIN)
    assert r.status_code == 200 and r.json()["url"] == shown, r.text
    await badge(client, "first-visit", [{"event": "visit", "threshold": 1}])
    await event(client, "M1", "visit", NOW)
    assert await _dispatch(app, NOW) == 1
    (got,) = receiver.received
    assert got.headers["Authorization"] == "Basic " + base64.b64encode(b"laurel:s3cret").decode()


async def test_a_redelivered_delivery_backs_off_from_two_seconds_again(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    """After a redeliver, a failure was retried only 6 h later (the backoff went on from the attempts made before it
    was dead-lettered), so the fresh 24 h window held about four attempts instead of the documented 2 s, 4 s, 8 s…"""
    ep = await _badge_delivery(client, receiver)
    receiver.statuses.extend([500] * 100)
    clock = datetime.now(UTC)
    for _ in range(40):
        await _dispatch(app, clock)
        clock += timedelta(minutes=40)
    (d,) = await _log(client, ep["id"])
    assert d["status"] == "dead" and d["attempts"] >= 14
    async with app.state.db.sessionmaker() as s, s.begin():  # that was in the two days before today's redeliver
        await s.execute(text("UPDATE webhook_attempts SET attempted_at = attempted_at - interval '2 days'"))
    r = await client.post(f"/v1/admin/webhooks/{ep['id']}/deliveries/{d['delivery_id']}/redeliver", headers=ADMIN)
    assert r.status_code == 200 and r.json()["status"] == "pending"
    t = datetime.now(UTC)
    assert await _dispatch(app, t) == 1  # fails again
    (d,) = await _log(client, ep["id"])
    waits = datetime.fromisoformat(d["next_attempt_at"]) - t
    assert waits < timedelta(seconds=10), waits
    assert await _dispatch(app, t + waits + timedelta(seconds=1)) == 1  # and again: 4 s
    (d,) = await _log(client, ep["id"])
    assert datetime.fromisoformat(d["next_attempt_at"]) - (t + waits) < timedelta(seconds=10)
    assert d["attempts"] == len(d["history"])  # the log still counts every attempt
