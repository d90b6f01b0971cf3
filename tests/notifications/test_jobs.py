"""The registered jobs run through the worker's runner (advisory lock, JobContext) and deliver end to end."""

from __future__ import annotations

from datetime import UTC, datetime

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
