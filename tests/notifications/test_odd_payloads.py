"""Outbox payloads holding text that merely looks like a date-time must not stop the fan-out."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from app.models import Notification
from tests.api import ADMIN, badge, event
from tests.notifications.conftest import Kit

NOW = datetime.now(UTC)


async def test_an_external_id_that_reads_as_a_date_beyond_year_9999_does_not_stall_the_fanout(kit: Kit) -> None:
    """A member's external id is free text within [A-Za-z0-9_.:@-]: "9999-12-31T23:59:59-14:00" parses as an
    ISO date-time whose program-time form is in year 10000. Its badge.awarded payload (which carries the
    external id) stalled every fan-out batch with an OverflowError, so no one heard of anything again, and
    the member's own inbox answered 500."""
    await badge(kit.client, "first-visit", [{"event": "visit", "threshold": 1}], name="First Visit")
    odd = "9999-12-31T23:59:59-14:00"
    r = await kit.client.put(f"/v1/users/{odd}", json={}, headers=ADMIN)
    assert r.status_code in (200, 201), r.text
    await event(kit.client, odd, "visit", NOW)
    m = await kit.member()
    await event(kit.client, m.external_id, "visit", NOW)

    assert await kit.fanout() >= 2
    async with kit.app.state.db.sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(Notification))).scalar_one() == 2
    inbox = (await kit.client.get("/v1/me/notifications", headers=m.headers)).json()
    assert inbox["total"] == 1 and inbox["items"][0]["params"]["badge"] == "first-visit"
    # The odd id is kept as the text it is, not turned into a time.
    async with kit.app.state.db.sessionmaker() as s:
        params = [n.params for n in (await s.execute(select(Notification))).scalars()]
    assert odd in {p.get("user_id") for p in params}
