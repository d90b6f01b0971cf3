"""The registered jobs run through the worker's runner (advisory lock, JobContext) and deliver end to end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.worker import runner
from tests.api import badge, event
from tests.fakes.wechat_server import FakeWeChat
from tests.notifications.conftest import Kit


async def test_jobs_run_through_the_runner(kit: Kit, wechat: FakeWeChat) -> None:
    from app import jobs  # noqa: F401  (registers the jobs)

    by_name = {j.name: j for j in runner.JOBS}
    await kit.template()
    await badge(kit.client, "first-visit", [{"event": "visit", "threshold": 1}])
    m = await kit.member()
    await kit.credit(m)
    await event(kit.client, m.external_id, "visit", datetime.now(UTC))
    sm, settings, gw = kit.app.state.db.sessionmaker, kit.settings, kit.app.state.wechat
    assert await runner.run_job_once(sm, settings, by_name["notifications.fanout"], gw) == 1
    assert await runner.run_job_once(sm, settings, by_name["notifications.wechat"], gw) == 1
    assert await runner.run_job_once(sm, settings, by_name["webhooks.dispatch"], gw) == 0
    for name in ("notifications.challenge_available", "notifications.challenge_expiring", "outbox.cleanup"):
        assert await runner.run_job_once(sm, settings, by_name[name], gw) == 0
    assert len(wechat.sent) == 1


def test_time_based_jobs_and_dispatchers_run_every_few_seconds() -> None:
    from app import jobs  # noqa: F401  (registers the jobs)

    every = {j.name: j.every_seconds for j in runner.JOBS}
    assert every["notifications.fanout"] <= 1 and every["webhooks.dispatch"] <= 1  # a 2 s retry is sent on time
    assert every["notifications.wechat"] <= 5
    assert every["notifications.challenge_available"] <= 5
    assert 5 <= every["notifications.challenge_expiring"] <= 30
    assert 5 <= every["notifications.rank_improved"] <= 60


@pytest.mark.sqlite_too
async def test_after_outbox_cleanup_new_rows_are_still_delivered(kit: Kit, backend: str) -> None:
    """Cleanup deletes the newest processed rows too: the next row must not reuse an id (SQLite did), or its
    notification and webhook deliveries collide with the deleted row's and are skipped as done."""
    from sqlalchemy import update

    from app import jobs  # noqa: F401  (registers the jobs)
    from app.models import OutboxMessage

    by_name = {j.name: j for j in runner.JOBS}
    sm, settings, gw = kit.app.state.db.sessionmaker, kit.settings, kit.app.state.wechat
    await badge(kit.client, "first-visit", [{"event": "visit", "threshold": 1}])
    first, second = await kit.member(), await kit.member()
    await event(kit.client, first.external_id, "visit", datetime.now(UTC))
    await runner.run_job_once(sm, settings, by_name["notifications.fanout"], gw)
    async with sm() as s, s.begin():  # processed long ago: the cleanup takes every row, the newest included
        await s.execute(update(OutboxMessage).values(processed_at=datetime.now(UTC) - timedelta(days=30)))
    assert await runner.run_job_once(sm, settings, by_name["outbox.cleanup"], gw)
    await event(kit.client, second.external_id, "visit", datetime.now(UTC))
    await runner.run_job_once(sm, settings, by_name["notifications.fanout"], gw)
    inbox = (await kit.client.get("/v1/me/notifications", headers=second.headers)).json()
    assert [n["kind"] for n in inbox["items"]] == ["badge_unlocked"], inbox
